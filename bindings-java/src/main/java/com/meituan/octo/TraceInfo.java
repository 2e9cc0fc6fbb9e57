package com.meituan.octo;

/**
 * The TraceInfo an OCTO call carries (Header field 4). Absent strings are null; absent booleans
 * are null too.
 */
public record TraceInfo(
        String clientAppkey,
        String traceId,
        String spanId,
        String rootMessageId,
        String currentMessageId,
        String serverMessageId,
        Boolean debug,
        Boolean sample,
        String clientIp) {}
