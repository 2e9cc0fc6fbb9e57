package com.meituan.octo;

/** How calls travel on the wire (PROTOCOL.md section 1). */
public enum Framing {
    /** OCTO frames (0xABBA, a Thrift Header, then the Thrift message), as Dorado and Whale speak. */
    OCTO,
    /** Apache Thrift's framed transport (a 4-byte length, then the Thrift message), no Header. */
    THRIFT
}
