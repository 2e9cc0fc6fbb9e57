#!/usr/bin/env python3
"""Java binding benchmark: a thin wrapper over bench/compare (octo-bench compare).

It readies the Java side (mvn test-compile and the test class path in bindings-java/target, which
is what bench/compare needs to run the `java-thrift` and `java-raw` rows), then runs
`octo-bench compare` on the Rust Echo server (`octo`), the Java ones and the Netty peer, pinned and
interleaved; bench/compare prints the table and issue 7's ratios (QPS over octo's, requests per
server-CPU-second over Netty's, medians of per-round ratios). See bench/README.md, bench/compare.

`--client` then runs the Java async client (bench ClientMain, 2 caller threads, 256 calls in
flight, pinned to the load CPU with its shard) against the Rust Echo server (`octo-bench serve`,
pinned to the server CPU) and prints its calls per second.

Usage: compare.py [--rounds 3] [--secs 3] [--workloads 8x16,8x1] [--servers octo,java-thrift,java-raw,netty]
                  [--server-cpu 0] [--load-cpu 1] [--json FILE] [--client] [--client-only]
Prerequisites: octo-bench built in release (cargo build --release -p octo-bench, in $CARGO_TARGET_DIR
or target/), the natives (OCTO_LIB_DIR as for `mvn package`); the Netty peer builds itself.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
JAVA_DIR = os.path.dirname(HERE)
ROOT = os.path.dirname(JAVA_DIR)
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
BENCH = os.path.join(TARGET, "release", "octo-bench")


def java_cmd(cpu, main, *args):
    t = os.path.join(JAVA_DIR, "target")
    with open(os.path.join(t, "test-classpath.txt")) as f:
        cp = os.path.join(t, "classes") + ":" + os.path.join(t, "test-classes") + ":" + f.read().strip()
    native = os.path.join(t, "native", "linux-x86_64")
    return ["taskset", "-c", str(cpu), "java", "-Xms512m", "-Xmx512m", f"-Djava.library.path={native}",
            "-cp", cp, main, *args]


def prepare():
    """Compiles the Java benchmark classes and writes their class path (quick when up to date)."""
    cp = os.path.join(JAVA_DIR, "target", "test-classpath.txt")
    cmd = ["nice", "-n", "19", "mvn", "-B", "-q", "-Dstyle.color=never", "test-compile",
           "dependency:build-classpath", f"-Dmdep.outputFile={cp}", "-Dmdep.includeScope=test"]
    if subprocess.run(cmd + ["-o"], cwd=JAVA_DIR, capture_output=True).returncode != 0:
        out = subprocess.run(cmd, cwd=JAVA_DIR, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"mvn test-compile failed:\n{out.stdout}{out.stderr}")
    if not os.path.exists(BENCH):
        raise SystemExit(f"{BENCH} is missing: cargo build --release -p octo-bench")


def client_bench(a):
    """The Java async client against the Rust Echo server; returns ClientMain's JSON line."""
    serve = subprocess.Popen(["taskset", "-c", str(a.server_cpu), BENCH, "serve", "--addr", "127.0.0.1:0",
                              "--shards", "1"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = serve.stdout.readline()
        words = line.split()
        if "on" not in words:
            raise SystemExit(f"octo-bench serve did not start: {line!r}")
        addr = words[words.index("on") + 1]
        cmd = java_cmd(a.load_cpu, "com.meituan.octo.bench.ClientMain", addr, str(a.secs), "256", "2", "1")
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=a.secs + 120)
        if out.returncode != 0:
            raise SystemExit(f"client bench failed: {out.stdout}{out.stderr}")
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        serve.terminate()
        serve.wait(10)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--secs", type=float, default=3)
    ap.add_argument("--workloads", default="8x16,8x1")
    ap.add_argument("--servers", default="octo,java-thrift,java-raw,netty")
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--load-cpu", type=int, default=1)
    ap.add_argument("--json", help="bench/compare's JSON (default bench/results/latest/compare.json)")
    ap.add_argument("--client", action="store_true", help="then the Java async client benchmark")
    ap.add_argument("--client-only", action="store_true", help="only the Java async client benchmark")
    a = ap.parse_args()
    prepare()
    if not a.client_only:
        cmd = [BENCH, "compare", "--servers", a.servers, "--workloads", a.workloads, "--rounds", str(a.rounds),
               "--secs", str(a.secs), "--server-cpu", str(a.server_cpu), "--load-cpu", str(a.load_cpu),
               "--no-open-loop"]
        if a.json:
            cmd += ["--json", a.json]
        rc = subprocess.run(cmd).returncode
        if rc != 0:
            sys.exit(rc)
    if a.client or a.client_only:
        print("java async client -> rust server:", json.dumps(client_bench(a)))


if __name__ == "__main__":
    main()
