package com.meituan.octo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

class NativeMemoryTest {
    private static final long CALLS = 1_000_000;
    /** Growth of the resident set over the million calls that counts as a leak. */
    private static final long LIMIT_KB = 32 * 1024;

    private static long number(String json, String key) {
        Matcher m = Pattern.compile("\"" + key + "\":(\\d+)").matcher(json);
        assertTrue(m.find(), key + " missing in " + json);
        return Long.parseLong(m.group(1));
    }

    @Test
    void aMillionCallsKeepNativeMemoryFlat() throws Exception {
        // A child JVM whose heap is fixed and pre-touched: its RSS moves only with native memory.
        List<String> cmd = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xcheck:jni", "-Xms256m", "-Xmx256m", "-XX:+AlwaysPreTouch", "-XX:+UseSerialGC",
                "-Djava.library.path=" + System.getenv("OCTO_NATIVE_DIR"),
                "-cp", System.getProperty("java.class.path"), MemoryLoop.class.getName(),
                String.valueOf(CALLS), "100000", "100000", "128");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        assertTrue(p.waitFor(3, TimeUnit.MINUTES), "the loop did not finish");
        assertEquals(0, p.exitValue(), out);
        String json = out.lines().filter(l -> l.startsWith("{")).reduce((a, b) -> b).orElse(out);
        System.out.println("native memory over " + CALLS + " calls: " + json);
        assertEquals(0, number(json, "failures"), json);
        long growth = number(json, "rss_end_kb") - number(json, "rss_after_warmup_kb");
        assertTrue(growth < LIMIT_KB, "RSS grew by " + growth + " KiB over " + CALLS + " calls: " + json);
    }
}
