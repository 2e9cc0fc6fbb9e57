package com.meituan.octo.peers;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * octo's Rust bench binary (bench/, {@code octo-bench}) as real processes for cross-language tests:
 * the Rust Echo server ({@code serve}) and the Rust load generator ({@code load}). The binary is
 * {@code $OCTO_BENCH_BIN} when set (scripts/test.d/60-java.sh), else built once per test run with
 * {@code cargo build --release -p octo-bench} (a no-op when fresh).
 */
public final class RustBench {
    private static Path binary;

    private RustBench() {}

    /** The repository root (OCTO_ROOT, set by the pom; else the parent of the working directory). */
    public static Path root() {
        String r = System.getenv("OCTO_ROOT");
        return (r != null ? Path.of(r) : Path.of("..")).toAbsolutePath().normalize();
    }

    /** The octo-bench binary, built if needed. */
    public static synchronized Path binary() throws IOException, InterruptedException {
        if (binary != null) {
            return binary;
        }
        String given = System.getenv("OCTO_BENCH_BIN");
        if (given != null && Files.isExecutable(Path.of(given))) {
            binary = Path.of(given);
            return binary;
        }
        String targetDir = System.getenv("CARGO_TARGET_DIR");
        Path target = targetDir != null ? Path.of(targetDir) : root().resolve("target");
        Path log = Files.createTempFile("octo-bench-build", ".log");
        Process p = new ProcessBuilder("cargo", "build", "--release", "-q", "-p", "octo-bench")
                .directory(root().toFile())
                .redirectErrorStream(true)
                .redirectOutput(log.toFile())
                .start();
        if (!p.waitFor(15, TimeUnit.MINUTES) || p.exitValue() != 0) {
            p.destroyForcibly();
            throw new IOException("cargo build -p octo-bench failed:\n" + Files.readString(log));
        }
        Files.deleteIfExists(log);
        binary = target.resolve("release").resolve("octo-bench");
        return binary;
    }

    /**
     * Runs octo's C client example ({@code ffi/examples/echo_client.c}: octo's Rust client through
     * the C ABI; a waited call, then COUNT calls in flight with callbacks, every echo checked)
     * against 127.0.0.1:{@code port}; returns what it printed. Uses the build 30-c-abi.sh made
     * ({@code target/c-abi/echo_client}), else compiles it with gcc.
     */
    public static String cEchoClient(int port, String service, int count, boolean thrift, String message)
            throws IOException, InterruptedException {
        String targetDir = System.getenv("CARGO_TARGET_DIR");
        Path target = targetDir != null ? Path.of(targetDir) : root().resolve("target");
        Path client = target.resolve("c-abi").resolve("echo_client");
        if (!Files.isExecutable(client)) {
            Path lib = Path.of(System.getenv("OCTO_NATIVE_DIR"));
            client = Files.createTempDirectory("octo-c-client").resolve("echo_client");
            Process cc = new ProcessBuilder("gcc", "-std=c11", "-D_GNU_SOURCE", "-O2", "-pthread",
                    "-I" + root().resolve("include"), root().resolve("ffi/examples/echo_client.c").toString(),
                    "-o", client.toString(), "-L" + lib, "-Wl,-rpath," + lib, "-locto")
                    .redirectErrorStream(true).start();
            String out = new String(cc.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!cc.waitFor(2, TimeUnit.MINUTES) || cc.exitValue() != 0) {
                throw new IOException("compiling echo_client.c failed: " + out);
            }
        }
        List<String> cmd = new ArrayList<>(List.of(client.toString(), "--addr", "127.0.0.1:" + port, "--service",
                service, "--count", String.valueOf(count)));
        if (thrift) {
            cmd.add("--thrift");
        }
        cmd.add(message);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
            p.destroyForcibly();
            throw new IOException("echo_client failed (exit " + p.exitValue() + "): " + out);
        }
        return out;
    }

    /** A port that was free a moment ago. */
    public static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    /** A running Rust Echo server ({@code octo-bench serve}); closing it stops the process. */
    public static final class Server implements AutoCloseable {
        private final Process process;
        public final int port;

        private Server(Process process, int port) {
            this.process = process;
            this.port = port;
        }

        @Override
        public void close() {
            process.destroy();
            try {
                if (!process.waitFor(10, TimeUnit.SECONDS)) {
                    process.destroyForcibly().waitFor();
                }
            } catch (InterruptedException e) {
                process.destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Starts {@code octo-bench serve} on 127.0.0.1 with {@code shards} shards and waits until it listens. */
    public static Server serve(int shards, String... extra) throws IOException, InterruptedException {
        int port = freePort();
        List<String> cmd = new ArrayList<>(List.of(binary().toString(), "serve", "--addr", "127.0.0.1:" + port,
                "--shards", String.valueOf(shards)));
        cmd.addAll(List.of(extra));
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.DISCARD).start();
        BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        String line = out.readLine();
        if (line == null || !line.startsWith("listening on")) {
            p.destroyForcibly();
            throw new IOException("octo-bench serve did not start: " + line);
        }
        return new Server(p, port);
    }

    /**
     * Runs {@code octo-bench load --json} against 127.0.0.1:{@code port} and returns its numbers
     * (requests, errors, qps, p50_us, ...).
     */
    public static Map<String, Double> load(int port, String proto, String service, int conns, int depth, double secs,
            double warmup, String... extra) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(binary().toString(), "load", "--addr", "127.0.0.1:" + port,
                "--proto", proto, "--service", service, "--conns", String.valueOf(conns), "--depth",
                String.valueOf(depth), "--secs", String.valueOf(secs), "--warmup", String.valueOf(warmup), "--json"));
        cmd.addAll(List.of(extra));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor((long) (secs + warmup) + 60, TimeUnit.SECONDS) || p.exitValue() != 0) {
            p.destroyForcibly();
            throw new IOException("octo-bench load failed: " + output);
        }
        Map<String, Double> numbers = new LinkedHashMap<>();
        Matcher m = Pattern.compile("\"(\\w+)\":(-?[0-9.]+)").matcher(output);
        while (m.find()) {
            numbers.put(m.group(1), Double.parseDouble(m.group(2)));
        }
        if (!numbers.containsKey("requests")) {
            throw new IOException("octo-bench load printed no numbers: " + output);
        }
        return numbers;
    }
}
