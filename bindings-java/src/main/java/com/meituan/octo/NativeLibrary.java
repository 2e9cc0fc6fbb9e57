package com.meituan.octo;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Locale;

/**
 * Loads octo's natives (libocto.so and the JNI glue libocto-jni.so) once per class loader, the
 * way Netty and RocksJava do: from {@code java.library.path} first, otherwise from the copies
 * the jar carries under {@code META-INF/native/linux-x86_64/}, extracted into a private
 * temporary directory (both files side by side: the glue finds libocto.so through its
 * {@code $ORIGIN} rpath). The glue registers every native method in {@code JNI_OnLoad}. The system
 * property {@code octo.native.workdir} names another directory to extract into (e.g. when the
 * temporary directory is mounted noexec).
 */
public final class NativeLibrary {
    /** The glue's name for {@link System#loadLibrary}. */
    static final String GLUE = "octo-jni";
    /** Where the jar keeps the natives for this platform. */
    static final String JAR_DIR = "META-INF/native/";

    /** Where the natives were loaded from. */
    public enum Source {
        /** Found on {@code java.library.path}. */
        LIBRARY_PATH,
        /** Extracted from the jar (or class path) into a temporary directory. */
        EXTRACTED
    }

    private static volatile Source source;
    private static Throwable failure;

    private NativeLibrary() {}

    /** Loads the natives if that has not happened yet; throws {@link UnsatisfiedLinkError} if impossible. */
    public static void load() {
        if (source != null) {
            return;
        }
        synchronized (NativeLibrary.class) {
            if (source != null) {
                return;
            }
            if (failure != null) {
                throw linkError("octo's natives failed to load earlier", failure);
            }
            try {
                source = loadOnce();
            } catch (Throwable t) {
                failure = t;
                throw t instanceof UnsatisfiedLinkError ? (UnsatisfiedLinkError) t : linkError("loading octo's natives", t);
            }
        }
    }

    /** Where the natives came from (loading them first if needed). */
    public static Source source() {
        load();
        return source;
    }

    /** The version of the loaded libocto ("MAJOR.MINOR.PATCH"), loading it first if needed. */
    public static String version() {
        load();
        return Native.version();
    }

    /** The platform directory name used in the jar, e.g. {@code linux-x86_64}. */
    static String platform() {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
        if (!os.startsWith("linux")) {
            throw new UnsatisfiedLinkError("octo runs on Linux only (io_uring); this is " + os);
        }
        switch (arch) {
            case "amd64":
            case "x86_64":
                return "linux-x86_64";
            case "aarch64":
                return "linux-aarch_64";
            default:
                throw new UnsatisfiedLinkError("no octo natives for the architecture " + arch);
        }
    }

    private static Source loadOnce() throws IOException {
        String platform = platform();
        UnsatisfiedLinkError fromPath;
        try {
            System.loadLibrary(GLUE);
            return Source.LIBRARY_PATH;
        } catch (UnsatisfiedLinkError e) {
            fromPath = e;
        }
        String dir = JAR_DIR + platform + "/";
        ClassLoader loader = NativeLibrary.class.getClassLoader();
        if (loader.getResource(dir + "lib" + GLUE + ".so") == null) {
            throw linkError("octo's natives are neither on java.library.path ("
                    + System.getProperty("java.library.path") + ") nor in the jar under " + dir, fromPath);
        }
        String workdir = System.getProperty("octo.native.workdir");
        Path tmp = workdir == null
                ? Files.createTempDirectory("octo-native-")
                : Files.createTempDirectory(Path.of(workdir), "octo-native-");
        try {
            Path octo = extract(loader, dir + "libocto.so", tmp.resolve("libocto.so"));
            Path glue = extract(loader, dir + "lib" + GLUE + ".so", tmp.resolve("lib" + GLUE + ".so"));
            System.load(glue.toAbsolutePath().toString());
            // Mapped now: the files can go (Linux keeps mapped files alive), leaving nothing behind.
            Files.deleteIfExists(glue);
            Files.deleteIfExists(octo);
        } finally {
            Files.deleteIfExists(tmp);
        }
        return Source.EXTRACTED;
    }

    private static Path extract(ClassLoader loader, String resource, Path to) throws IOException {
        try (InputStream in = loader.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IOException("the jar lacks " + resource);
            }
            Files.copy(in, to, StandardCopyOption.REPLACE_EXISTING);
        }
        return to;
    }

    private static UnsatisfiedLinkError linkError(String message, Throwable cause) {
        UnsatisfiedLinkError e = new UnsatisfiedLinkError(message + (cause == null ? "" : ": " + cause));
        e.initCause(cause);
        return e;
    }
}
