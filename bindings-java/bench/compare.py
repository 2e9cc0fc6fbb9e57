#!/usr/bin/env python3
"""Java binding benchmark: Echo servers pinned to one core, driven in the same run, interleaved.

Servers (each `taskset -c SERVER_CPU`, one shard / one event loop):
  rust         octo-bench serve (the Rust Echo server on octo)
  java-thrift  the Java Echo server: generated Echo.Processor on octo through ThriftService
  java-raw     the Java raw handler (no Thrift library; see EchoServerMain.rawEcho)
  netty        bench/peers/netty, the Dorado-like Netty + libthrift OCTO Echo peer

The load is `octo-bench load` pinned to LOAD_CPU. Each round runs every server once (order rotated),
after one warm-up pass. For each run: requests/s, and requests per server-CPU-second (utime+stime
of the whole server process, every thread, from /proc/PID/stat, over the measured window).
The client benchmark (`--client`) runs the Java async client (bench ClientMain) against the Rust
server. Medians over rounds and the ratios are printed; --json writes them as one JSON object.

Usage: compare.py [--rounds 5] [--secs 3] [--conns 8] [--depth 16] [--size 1024]
                  [--server-cpu 0] [--load-cpu 1] [--servers rust,java-thrift,java-raw,netty]
                  [--client] [--json]
Prerequisites: octo-bench built in release (cargo build --release -p octo-bench), the natives
(OCTO_LIB_DIR as for `mvn package`); this script compiles the Java side itself (mvn test-compile
and the test class path) and the Netty peer builds itself (bench/peers/build.sh).
"""
import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
JAVA_DIR = os.path.dirname(HERE)
ROOT = os.path.dirname(JAVA_DIR)
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
BENCH = os.path.join(TARGET, "release", "octo-bench")
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """utime + stime of every thread of the process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def java_cmd(cpu, main, *args):
    cp = os.path.join(JAVA_DIR, "target", "classes") + ":" + os.path.join(JAVA_DIR, "target", "test-classes")
    with open(os.path.join(JAVA_DIR, "target", "test-classpath.txt")) as f:
        cp += ":" + f.read().strip()
    native = os.path.join(JAVA_DIR, "target", "native", "linux-x86_64")
    return ["taskset", "-c", str(cpu), "java", "-Xms512m", "-Xmx512m", f"-Djava.library.path={native}",
            "-cp", cp, main, *args]


def start(name, cpu):
    port = free_port()
    if name == "rust":
        cmd = ["taskset", "-c", str(cpu), BENCH, "serve", "--addr", f"127.0.0.1:{port}", "--shards", "1"]
    elif name == "java-thrift":
        cmd = java_cmd(cpu, "com.meituan.octo.bench.EchoServerMain", str(port), "1", "thrift")
    elif name == "java-raw":
        cmd = java_cmd(cpu, "com.meituan.octo.bench.EchoServerMain", str(port), "1", "raw")
    elif name == "netty":
        cmd = ["taskset", "-c", str(cpu), os.path.join(ROOT, "bench", "peers", "netty", "run.sh"), str(port), "1"]
    else:
        raise SystemExit(f"unknown server {name}")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    if "listening" not in line:
        p.kill()
        raise SystemExit(f"{name} did not start: {line!r}")
    return p, port


def load(port, a, secs, warmup):
    cmd = [BENCH, "load", "--addr", f"127.0.0.1:{port}", "--conns", str(a.conns), "--depth", str(a.depth),
           "--size", str(a.size), "--secs", str(secs), "--warmup", str(warmup), "--cpu", str(a.load_cpu), "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + warmup + 60)
    if out.returncode != 0:
        raise SystemExit(f"load failed: {out.stdout}{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(p, port, a):
    before = cpu_seconds(p.pid)
    r = load(port, a, a.secs, 0)
    used = cpu_seconds(p.pid) - before
    return {"qps": r["qps"], "errors": r["errors"], "p50_us": r["p50_us"], "p99_us": r["p99_us"],
            "req_per_cpu_s": r["requests"] / used if used > 0 else float("nan"), "cpu_s": used}


def client_bench(a, rust_port):
    # Two caller threads sharing the load core with the client's shard thread, 256 calls in flight.
    cmd = java_cmd(a.load_cpu, "com.meituan.octo.bench.ClientMain", f"127.0.0.1:{rust_port}", str(a.secs),
                   "256", "2", "1")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=a.secs + 120)
    if out.returncode != 0:
        raise SystemExit(f"client bench failed: {out.stdout}{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def prepare():
    """Compiles the Java benchmark classes and writes their class path (skipped when up to date)."""
    cp = os.path.join(JAVA_DIR, "target", "test-classpath.txt")
    cmd = ["mvn", "-B", "-q", "-Dstyle.color=never", "test-compile", "dependency:build-classpath",
           f"-Dmdep.outputFile={cp}", "-Dmdep.includeScope=test"]
    if subprocess.run(cmd + ["-o"], cwd=JAVA_DIR, capture_output=True).returncode != 0:
        out = subprocess.run(cmd, cwd=JAVA_DIR, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"mvn test-compile failed:\n{out.stdout}{out.stderr}")
    if not os.path.exists(BENCH):
        raise SystemExit(f"{BENCH} is missing: cargo build --release -p octo-bench")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--secs", type=float, default=3)
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--depth", type=int, default=16)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--load-cpu", type=int, default=1)
    ap.add_argument("--servers", default="rust,java-thrift,java-raw,netty")
    ap.add_argument("--client", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    names = a.servers.split(",")
    prepare()
    running = {}
    try:
        for n in names:
            running[n] = start(n, a.server_cpu)
        for n in names:  # warm-up: JIT, connection setup
            load(running[n][1], a, 2, 0)
        runs = {n: [] for n in names}
        for r in range(a.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for n in order:
                m = measure(running[n][0], running[n][1], a)
                runs[n].append(m)
                print(f"round {r + 1} {n:12s} {m['qps']:10.0f} req/s  {m['req_per_cpu_s']:10.0f} req/cpu-s  "
                      f"p50 {m['p50_us']} us  p99 {m['p99_us']} us  errors {m['errors']}", file=sys.stderr)
        result = {"config": vars(a), "servers": {}}
        for n in names:
            result["servers"][n] = {
                "qps_median": statistics.median(m["qps"] for m in runs[n]),
                "req_per_cpu_s_median": statistics.median(m["req_per_cpu_s"] for m in runs[n]),
                "errors": sum(m["errors"] for m in runs[n]),
                "runs": runs[n],
            }
        s = result["servers"]
        ratios = {}
        for j in ("java-thrift", "java-raw"):
            if j in s and "rust" in s:
                # Per-round ratios (same round, adjacent runs) are less noisy than ratios of medians.
                ratios[f"{j}/rust qps"] = statistics.median(
                    x["qps"] / y["qps"] for x, y in zip(runs[j], runs["rust"]))
            if j in s and "netty" in s:
                ratios[f"{j}/netty req_per_cpu_s"] = statistics.median(
                    x["req_per_cpu_s"] / y["req_per_cpu_s"] for x, y in zip(runs[j], runs["netty"]))
                ratios[f"{j}/netty qps"] = statistics.median(
                    x["qps"] / y["qps"] for x, y in zip(runs[j], runs["netty"]))
        result["ratios"] = ratios
        if a.client and "rust" in running:
            result["java_client_vs_rust_server"] = client_bench(a, running["rust"][1])
    finally:
        for p, _ in running.values():
            p.send_signal(signal.SIGTERM)
        for p, _ in running.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
    for n, v in result["servers"].items():
        print(f"{n:12s} median {v['qps_median']:10.0f} req/s  {v['req_per_cpu_s_median']:10.0f} req/cpu-s  "
              f"errors {v['errors']}")
    for k, v in result["ratios"].items():
        print(f"{k:32s} {v:6.2f}")
    if "java_client_vs_rust_server" in result:
        print("java async client -> rust server:", json.dumps(result["java_client_vs_rust_server"]))
    if a.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
