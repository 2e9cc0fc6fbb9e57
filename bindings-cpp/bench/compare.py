#!/usr/bin/env python3
"""The C++ Echo server (examples/echo_server) against the Rust Echo server: bench/compare's
octo, cpp-thrift (a generated Thrift EchoProcessor on octo::thrift::Server, what a Whale user
writes) and cpp-direct (a hand-written handler: the binding's own cost) rows, interleaved in one
run, each server pinned to one CPU with one shard and octo's client on another.

  bindings-cpp/bench/compare.py [--handler thrift|direct|both] [bench/compare options...]

Builds bindings-cpp/build (Release, against target/release's libocto) first if it is missing.
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def main():
    args = sys.argv[1:]
    handler = "both"
    if "--handler" in args:
        i = args.index("--handler")
        handler = args[i + 1]
        del args[i:i + 2]
    rows = {"thrift": "cpp-thrift", "direct": "cpp-direct", "both": "cpp-thrift,cpp-direct"}
    if handler not in rows:
        sys.exit(f"--handler must be thrift, direct or both, not {handler!r}")
    build = os.path.join(ROOT, "bindings-cpp", "build")
    if not os.path.exists(os.path.join(build, "examples", "echo_server")):
        target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
        subprocess.run(["cargo", "build", "--release", "-p", "octo-ffi", "-p", "octo-bench"],
                       cwd=ROOT, check=True)
        subprocess.run(["cmake", "-S", os.path.join(ROOT, "bindings-cpp"), "-B", build,
                        "-DCMAKE_BUILD_TYPE=Release", "-DOCTO_INCLUDE_DIR=" + os.path.join(ROOT, "include"),
                        "-DOCTO_LIB_DIR=" + os.path.join(target, "release")], check=True)
        subprocess.run(["cmake", "--build", build, "-j", str(os.cpu_count() or 2)], check=True)
    cmd = [os.path.join(ROOT, "bench", "compare"), "--servers", "octo," + rows[handler],
           "--no-open-loop"] + args
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    main()
