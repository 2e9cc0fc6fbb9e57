//! octo-bench: the servers and the load generator that measure octo.
//!
//! ```text
//! octo-bench serve --addr HOST:PORT [--shards N] [--service NAME] [--cpus LIST]
//!                  [--runtime octo|tokio] [--mode echo|raw] [--taskrun defer|coop|plain]
//! octo-bench load  --addr HOST:PORT [--conns N] [--depth D] [--size BYTES] [--secs S]
//!                  [--warmup S] [--proto octo|thrift] [--rate R] [--server-pid PID]
//!                  [--generator octo|raw] [--service NAME] [--cpu N] [--json [FILE]] [--quiet]
//!                  [--no-busy-poll]
//! octo-bench run   [--secs S] [--workloads 8x1,64x1,8x16] [--size BYTES] [--server-cpu N]
//!                  [--load-cpu N] [--out DIR] [--no-open-loop]
//! octo-bench compare [--secs S] [--rounds R] [--workloads ...] [--servers LIST] [--json FILE]
//! octo-bench runtimes [--secs S] [--rounds R] [--scenarios 8x1,8x16,64x1] [--servers LIST]
//!                  [--server-cpu N] [--load-cpu N] [--size BYTES] [--perf] [--nice N]
//! octo-bench hiccup [--secs S] [--cpus LIST] [--duty CPU:BUSY_US/IDLE_US]
//! ```
//!
//! `serve` runs until SIGINT/SIGTERM and prints `listening on ADDR pid PID` when ready.
//! `load` drives a running server with octo's own client (or, `--generator raw`, prebuilt
//! frames on a tokio thread); `run` starts a server and runs the standard workloads; `compare`
//! runs octo and its peers interleaved (bench/compare is its wrapper).
//! `runtimes` starts each server pinned to one CPU, drives it from another, interleaved, and
//! prints QPS, requests per server-CPU-second and (with `--perf`) syscalls and IPIs per request.
//! `hiccup` spins on the CPUs at once and reports the time the machine took away from them, and
//! the open-loop latency floor those stalls alone set (`run` and `compare` measure it too).

mod args;
mod client_load;
mod compare;
mod hiccup;
mod load;
mod load_cli;
mod measure;
mod procs;
mod report;
mod run_cmd;
mod runtimes;
mod serve;
mod tokio_echo;

use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage:\n  octo-bench serve --addr HOST:PORT [--shards N] [--service NAME] [--cpus LIST] \
         [--runtime octo|tokio] [--mode echo|raw] [--taskrun defer|coop|plain]\n  \
         octo-bench load --addr HOST:PORT [--conns N] [--depth D] [--size BYTES] [--secs S] \
         [--warmup S] [--proto octo|thrift] [--rate R] [--server-pid PID] [--generator octo|raw] \
         [--service NAME] [--cpu N] [--json [FILE]] [--quiet] [--no-busy-poll]\n  \
         octo-bench run [--secs S] [--workloads 8x1,64x1,8x16] [--size BYTES] [--server-cpu N] \
         [--load-cpu N] [--out DIR] [--no-open-loop]\n  \
         octo-bench compare [--secs S] [--rounds R] [--workloads LIST] [--servers LIST] [--json FILE]\n  \
         octo-bench runtimes [--secs S] [--rounds R] [--scenarios 8x1,8x16,64x1] [--servers LIST] \
         [--server-cpu N] [--load-cpu N] [--size BYTES] [--perf]\n  \
         octo-bench hiccup [--secs S] [--cpus LIST] [--duty CPU:BUSY_US/IDLE_US]"
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
        "load" => load_cli::run(&args),
        "run" => run_cmd::run(&args),
        "compare" => compare::run(&args),
        "runtimes" => runtimes::run(&args),
        "hiccup" => hiccup::run(&args),
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
