package com.meituan.octo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class NativeLibraryTest {
    private static String probe(String libraryPath, Path workdir) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xcheck:jni", "-cp", System.getProperty("java.class.path"), "-Djava.library.path=" + libraryPath));
        if (workdir != null) {
            cmd.add("-Docto.native.workdir=" + workdir);
        }
        cmd.add(LoaderProbe.class.getName());
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        return out;
    }

    @Test
    void theNativesOnJavaLibraryPathAreLoadedFirst() throws Exception {
        assertEquals("LIBRARY_PATH " + NativeLibrary.version() + " shards=1",
                probe(System.getenv("OCTO_NATIVE_DIR"), null));
    }

    @Test
    void withoutThemOnJavaLibraryPathTheJarsCopiesAreExtractedAndLeaveNothingBehind() throws Exception {
        Path empty = Files.createTempDirectory("no-natives");
        Path workdir = Files.createTempDirectory("octo-workdir");
        try {
            assertEquals("EXTRACTED " + NativeLibrary.version() + " shards=1", probe(empty.toString(), workdir));
            try (var left = Files.list(workdir)) {
                assertEquals(0, left.count());
            }
        } finally {
            Files.deleteIfExists(empty);
            Files.deleteIfExists(workdir);
        }
    }

    @Test
    void theLibraryIsTheVersionTheGlueWasBuiltFor() {
        assertTrue(NativeLibrary.version().matches("\\d+\\.\\d+\\.\\d+"), NativeLibrary.version());
    }
}
