//! `octo-bench load`: one load run against a server already running, with octo's client
//! (`--generator octo`, the default) or the prebuilt-frame generator (`--generator raw`, closed
//! loop only), then the latency table and optionally a JSON file.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::args::Args;
use crate::client_load::{self, ClientLoadSpec, Outcome};
use crate::load::{self, Proto};
use crate::measure::{self, Cpu};
use crate::report::{self, Row};

pub fn spec_from(args: &Args) -> Result<ClientLoadSpec, String> {
    let raw = load::spec_from(args)?;
    let rate: f64 = args.get("rate", 0.0)?;
    let pid: i64 = args.get("server-pid", -1)?;
    Ok(ClientLoadSpec {
        addr: raw.addr,
        conns: raw.conns,
        depth: raw.depth,
        size: raw.size,
        secs: raw.secs,
        warmup: raw.warmup,
        proto: raw.proto,
        service: raw.service,
        cpu: raw.cpu,
        rate: (rate > 0.0).then_some(rate),
        server_pid: (pid > 0).then_some(pid as u32),
        progress: !args.flag("quiet"),
        busy_poll: !args.flag("no-busy-poll"),
    })
}

/// Runs the prebuilt-frame generator and reports in the same shape as the client's.
pub fn run_raw(spec: &ClientLoadSpec) -> Result<Outcome, String> {
    if spec.rate.is_some() {
        return Err("--generator raw is closed-loop only (no --rate)".into());
    }
    let raw = load::LoadSpec {
        addr: spec.addr,
        conns: spec.conns,
        depth: spec.depth,
        size: spec.size,
        secs: spec.secs,
        warmup: spec.warmup,
        proto: spec.proto,
        service: spec.service.clone(),
        cpu: spec.cpu,
    };
    // The raw generator measures its own window after warm-up; sample CPU over the same span.
    let pid = spec.server_pid;
    let (warmup, secs) = (spec.warmup, spec.secs);
    let observer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs_f64(warmup));
        let a = Cpu::sample(pid);
        let t = Instant::now();
        std::thread::sleep(std::time::Duration::from_secs_f64(secs));
        (a, Cpu::sample(pid), t.elapsed())
    });
    let r = load::run(&raw)?;
    let (a, b, _) = observer.join().map_err(|_| "observer failed")?;
    let (client_cpu, server_cpu) = measure::cpu_delta(&a, &b);
    let mut errors = BTreeMap::new();
    if r.errors > 0 {
        errors.insert("ConnectionFailed".to_string(), r.errors);
    }
    Ok(Outcome {
        requests: r.requests,
        elapsed: r.elapsed,
        latency_us: r.latency_us,
        errors,
        client_cpu,
        client_polled: 0.0,
        server_cpu,
    })
}

pub fn run(args: &Args) -> Result<(), String> {
    let spec = spec_from(args)?;
    let generator = args.str("generator").unwrap_or("octo");
    let outcome = match generator {
        "octo" => client_load::run(&spec)?,
        "raw" => run_raw(&spec)?,
        other => return Err(format!("bad --generator {other}")),
    };
    let label = format!(
        "{}x{} {}B{}",
        spec.conns,
        spec.depth,
        spec.size,
        spec.rate.map_or(String::new(), |r| format!(" @{r:.0}/s"))
    );
    let row = Row {
        label,
        outcome: &outcome,
        loadavg: measure::loadavg(),
    };
    println!(
        "# {} generator, {} framing, {} for {} s (after {} s warm-up)",
        generator,
        match spec.proto {
            Proto::Octo => "OCTO",
            Proto::Thrift => "Thrift",
        },
        spec.addr,
        spec.secs,
        spec.warmup
    );
    println!("{}", report::table_header());
    println!("{}", report::table_row(&row));
    let mut v = report::json_row(&row);
    v["generator"] = generator.into();
    v["addr"] = spec.addr.to_string().into();
    if args.flag("json") {
        // A bare --json: one line, last on stdout, with the keys the other benches' scripts read.
        let h = &outcome.latency_us;
        v["errors_by_kind"] = v["errors"].take();
        v["errors"] = outcome.error_count().into();
        v["p50_us"] = h.value_at_quantile(0.5).into();
        v["p99_us"] = h.value_at_quantile(0.99).into();
        v["p999_us"] = h.value_at_quantile(0.999).into();
        v["max_us"] = h.max().into();
        println!("{v}");
    } else if let Some(path) = args.str("json") {
        std::fs::write(path, serde_json::to_string_pretty(&v).unwrap_or_default())
            .map_err(|e| format!("write {path}: {e}"))?;
        println!("wrote {path}");
    }
    if outcome.error_count() > 0 {
        return Err(format!("{} calls failed", outcome.error_count()));
    }
    Ok(())
}
