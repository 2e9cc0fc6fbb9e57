#!/usr/bin/env python3
"""Compares the C++ Echo server (examples/echo_server: a generated Thrift EchoProcessor on
octo::thrift::Server) with the Rust Echo server (octo-bench serve), interleaved in one run.

Both servers run at once, each with one shard pinned to the same CPU; the load generator
(octo-bench load, 1 KiB OCTO Echo) runs pinned to another CPU and drives them in turn,
alternating the order every round. For every run it records QPS and the server's CPU time
(utime + stime from /proc), so it reports two ratios, C++ over Rust, as medians over rounds:
  qps        requests per second
  per_cpu_s  requests per server CPU-second (less sensitive to a noisy, shared machine)

  bench/compare.py --echo-server BUILD/examples/echo_server --octo-bench target/release/octo-bench
                   [--handler thrift|direct] [--rounds 5] [--secs 3] [--conns 8] [--depth 16]
                   [--server-cpu 0] [--load-cpu 1]
--handler thrift (default) runs the generated EchoProcessor; direct, the hand-written handler
(echo_server --handler direct, what the Rust Echo server does): the binding's cost alone.
Loopback only; every process it starts is stopped before it exits.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def start(argv):
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    m = re.match(r"listening on (\S+)", line)
    if not m:
        p.kill()
        raise SystemExit(f"{argv[0]} did not start: {line!r}")
    return p, m.group(1)


def load(bench, addr, a):
    argv = [bench, "load", "--addr", addr, "--conns", str(a.conns), "--depth", str(a.depth),
            "--size", "1024", "--secs", str(a.secs), "--warmup", "0.5", "--cpu", str(a.load_cpu),
            "--json"]
    out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=a.secs + 60)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--echo-server", required=True)
    ap.add_argument("--octo-bench", required=True)
    ap.add_argument("--handler", choices=["thrift", "direct"], default="thrift")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--secs", type=float, default=3.0)
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--depth", type=int, default=16)
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--load-cpu", type=int, default=1)
    a = ap.parse_args()

    cpu = str(a.server_cpu)
    servers = {}
    try:
        servers["rust"] = start([a.octo_bench, "serve", "--addr", "127.0.0.1:0", "--shards", "1", "--cpus", cpu])
        servers["cpp"] = start([a.echo_server, "--addr", "127.0.0.1:0", "--shards", "1", "--cpus", cpu,
                                "--handler", a.handler])
        runs = {"rust": [], "cpp": []}
        for r in range(a.rounds):
            order = ["rust", "cpp"] if r % 2 == 0 else ["cpp", "rust"]
            for name in order:
                proc, addr = servers[name]
                before = cpu_seconds(proc.pid)
                result = load(a.octo_bench, addr, a)
                used = cpu_seconds(proc.pid) - before
                qps = result["qps"]
                # CPU time covers warm-up and drain as well: count every request it served then.
                per_cpu = qps * (a.secs + 0.5) / used if used > 0 else float("nan")
                runs[name].append({"qps": qps, "per_cpu_s": per_cpu, "p99_us": result.get("p99_us")})
                print(f"round {r + 1} {name:4}: {qps:10.0f} req/s  {per_cpu:10.0f} req/CPU-s", flush=True)
        ratios = {
            k: statistics.median(c[k] / rr[k] for c, rr in zip(runs["cpp"], runs["rust"]))
            for k in ("qps", "per_cpu_s")
        }
        summary = {
            "handler": a.handler, "rounds": a.rounds, "secs": a.secs, "conns": a.conns, "depth": a.depth,
            "rust_qps_median": statistics.median(x["qps"] for x in runs["rust"]),
            "cpp_qps_median": statistics.median(x["qps"] for x in runs["cpp"]),
            "cpp_over_rust_qps": round(ratios["qps"], 3),
            "cpp_over_rust_per_cpu_s": round(ratios["per_cpu_s"], 3),
        }
        print(json.dumps(summary))
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    sys.exit(main())
