//! `octo-bench run`, the README's main command: an octo Echo server (its own process, one shard
//! on `--server-cpu`, default 0) driven by octo's client (`--load-cpu`, default 1) through the
//! standard workloads (8x1, 64x1, 8x16 closed loop, 1 KiB), then an open loop at half the best
//! closed-loop rate, and the machine's own stalls with the p99 they alone would give that open
//! loop (`hiccup.rs`). Prints the table and writes `run.json` and `latency.svg` under
//! bench/results/latest/ (or `--out DIR`).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use crate::args::Args;
use crate::client_load::{self, ClientLoadSpec, Outcome};
use crate::hiccup;
use crate::load::Proto;
use crate::measure;
use crate::procs;
use crate::report::{self, Row};

/// How long `run` measures the machine's own stalls.
const STALL_SECS: f64 = 2.0;

pub fn default_out_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("results")
        .join("latest")
}

pub fn parse_workloads(s: &str) -> Result<Vec<(usize, usize)>, String> {
    s.split(',')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let bad = || format!("bad workload {w} (want CONNSxDEPTH)");
            let (c, d) = w.split_once('x').ok_or_else(bad)?;
            Ok((c.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?))
        })
        .collect()
}

pub fn run(args: &Args) -> Result<(), String> {
    let secs: f64 = args.get("secs", 5.0)?;
    let warmup: f64 = args.get("warmup", (secs / 5.0).clamp(0.2, 1.0))?;
    let size: usize = args.get("size", 1024)?;
    let server_cpu: usize = args.get("server-cpu", 0)?;
    let load_cpu: usize = args.get("load-cpu", 1)?;
    let workloads = parse_workloads(args.str("workloads").unwrap_or("8x1,64x1,8x16"))?;
    let open_loop = !args.flag("no-open-loop");
    let out = args
        .str("out")
        .map(PathBuf::from)
        .unwrap_or_else(default_out_dir);

    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let cpu = server_cpu.to_string();
    let server = procs::start(
        "octo echo",
        server_cpu,
        &exe.to_string_lossy(),
        &[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--shards",
            "1",
            "--cpus",
            &cpu,
            "--mode",
            "echo",
        ]
        .map(String::from),
        Duration::from_secs(30),
    )?;
    println!(
        "# octo Echo server pid {} on CPU {server_cpu} ({}); octo client on CPU {load_cpu}; {size} B messages, {secs} s per workload after {warmup} s warm-up",
        server.pid, server.addr
    );
    let spec = |conns, depth, rate| ClientLoadSpec {
        addr: server.addr,
        conns,
        depth,
        size,
        secs,
        warmup,
        proto: Proto::Octo,
        service: "Echo".into(),
        cpu: Some(load_cpu),
        rate,
        server_pid: Some(server.pid),
        progress: true,
        busy_poll: true,
    };
    let mut results: Vec<(String, Outcome, f64)> = Vec::new();
    for &(conns, depth) in &workloads {
        eprintln!("{conns} conns x depth {depth}:");
        let o = client_load::run(&spec(conns, depth, None))?;
        results.push((format!("{conns}x{depth}"), o, measure::loadavg()));
    }
    if open_loop {
        // Half the best closed-loop rate, over as many connections as reached it.
        let (peak, conns) = results
            .iter()
            .zip(&workloads)
            .map(|(r, w)| (r.1.qps(), w.0))
            .fold((0.0, 64), |a, b| if b.0 > a.0 { b } else { a });
        if peak > 0.0 {
            let rate = (peak / 2.0).round();
            eprintln!(
                "open loop at {rate:.0} calls/s (half the best closed-loop rate), {conns} conns:"
            );
            let o = client_load::run(&spec(conns, 1, Some(rate)))?;
            results.push((format!("open {conns} @{rate:.0}/s"), o, measure::loadavg()));
        }
    }
    // What the machine itself takes from the two CPUs (the server idles meanwhile), and the
    // p99 that alone would give the open loop at the loads it ran at.
    let stalls = if open_loop {
        Some(hiccup::measure(&[server_cpu, load_cpu], STALL_SECS))
    } else {
        None
    };
    drop(server);

    let rows: Vec<Row> = results
        .iter()
        .map(|(l, o, la)| Row {
            label: l.clone(),
            outcome: o,
            loadavg: *la,
        })
        .collect();
    println!("{}", report::table_header());
    for r in &rows {
        println!("{}", report::table_row(r));
    }
    let floors = stalls.as_ref().and_then(|stalls| {
        let (_, o, _) = results.iter().find(|r| r.0.starts_with("open"))?;
        Some(hiccup::open_loop_estimate(stalls, o))
    });
    if let (Some(stalls), Some((text, _))) = (&stalls, &floors) {
        println!("\n{}\n{text}", hiccup::describe(stalls));
    }
    std::fs::create_dir_all(&out).map_err(|e| format!("create {}: {e}", out.display()))?;
    let json = json!({
        "command": "octo-bench run",
        "size": size, "secs": secs, "warmup": warmup,
        "server_cpu": server_cpu, "load_cpu": load_cpu,
        "generator": "octo client",
        "results": rows.iter().map(report::json_row).collect::<Vec<_>>(),
        "stalls": stalls.as_deref().map(hiccup::json),
        "open_loop_floor": floors.map(|f| f.1),
    });
    let json_path = out.join("run.json");
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    )
    .map_err(|e| format!("write {}: {e}", json_path.display()))?;
    let lines: Vec<(String, &hdrhistogram::Histogram<u64>)> = results
        .iter()
        .map(|(l, o, _)| (l.clone(), &o.latency_us))
        .collect();
    let svg_path = out.join("latency.svg");
    std::fs::write(
        &svg_path,
        report::svg(
            &format!("octo Echo {size} B, latency by percentile (octo-bench run)"),
            &lines,
        ),
    )
    .map_err(|e| format!("write {}: {e}", svg_path.display()))?;
    println!("wrote {} and {}", json_path.display(), svg_path.display());
    // An open loop above what the generator can send leaves calls its own client refused
    // (Overloaded, never sent): say so, but that is the generator's limit, not a failed call.
    let mut failed = 0;
    for (label, o, _) in &results {
        let refused = if label.starts_with("open") {
            o.refused_by_generator()
        } else {
            0
        };
        if refused > 0 {
            eprintln!(
                "note: {label}: the generator could not keep up with the rate; its own client \
                 refused {refused} calls (Overloaded, never sent), so this row's latency shows \
                 the generator's backlog, not the server's"
            );
        }
        failed += o.error_count() - refused;
    }
    if failed > 0 {
        return Err(format!("{failed} calls failed"));
    }
    if results.iter().any(|r| r.1.requests == 0) {
        return Err("a workload completed no call".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_workloads;

    #[test]
    fn workloads_are_conns_x_depth_separated_by_commas() {
        assert_eq!(
            parse_workloads("8x1,64x1,8x16"),
            Ok(vec![(8, 1), (64, 1), (8, 16)])
        );
    }

    #[test]
    fn a_workload_without_x_is_refused() {
        assert!(parse_workloads("8").is_err());
    }
}
