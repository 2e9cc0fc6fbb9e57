//! octo-bench: the servers and the load generator that measure octo.
//!
//! ```text
//! octo-bench serve --addr HOST:PORT [--shards N] [--service NAME] [--cpus LIST]
//!                  [--runtime octo|tokio] [--mode echo|raw] [--taskrun defer|coop|plain]
//! octo-bench load  --addr HOST:PORT [--conns N] [--depth D] [--size BYTES] [--secs S]
//!                  [--proto octo|thrift] [--service NAME] [--cpu N] [--json]
//! octo-bench runtimes [--secs S] [--rounds R] [--scenarios 8x1,8x16,64x1] [--servers LIST]
//!                  [--server-cpu N] [--load-cpu N] [--size BYTES] [--perf] [--nice N]
//! ```
//!
//! `serve` runs until SIGINT/SIGTERM and prints `listening on ADDR pid PID` when ready.
//! `runtimes` starts each server pinned to one CPU, drives it from another, interleaved, and
//! prints QPS, requests per server-CPU-second and (with `--perf`) syscalls and IPIs per request.

mod args;
mod load;
mod runtimes;
mod serve;
mod tokio_echo;

use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage:\n  octo-bench serve --addr HOST:PORT [--shards N] [--service NAME] [--cpus LIST] \
         [--runtime octo|tokio] [--mode echo|raw] [--taskrun defer|coop|plain]\n  \
         octo-bench load --addr HOST:PORT [--conns N] [--depth D] [--size BYTES] [--secs S] \
         [--proto octo|thrift] [--service NAME] [--cpu N] [--json]\n  \
         octo-bench runtimes [--secs S] [--rounds R] [--scenarios 8x1,8x16,64x1] [--servers LIST] \
         [--server-cpu N] [--load-cpu N] [--size BYTES] [--perf]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1);
    let Some(cmd) = argv.next() else {
        return usage();
    };
    let args = match args::Args::parse(argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("octo-bench: {e}");
            return usage();
        }
    };
    let result = match cmd.as_str() {
        "serve" => serve::run(&args),
        "load" => load::run_cli(&args),
        "runtimes" => runtimes::run(&args),
        "-h" | "--help" | "help" => return usage(),
        other => Err(format!("unknown command {other}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("octo-bench {cmd}: {e}");
            ExitCode::FAILURE
        }
    }
}
