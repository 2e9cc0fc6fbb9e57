//! `octo-bench compare` (wrapped by bench/compare): octo and its peers, one run, same workload.
//! Every server runs in its own process pinned to `--server-cpu` (0); the generator runs on
//! `--load-cpu` (1). Rounds are interleaved (octo, netty, thrift-cpp, ..., octo, ...) so drift
//! on a shared machine hits all alike; the medians and the ratios to octo are reported. Server
//! CPU comes from /proc/PID/stat over each measuring window, so "requests per server-CPU-second"
//! separates the servers even when the generator is the bottleneck.
//!
//! The Java binding's Echo servers (`java-thrift`: a generated Thrift `Echo.Processor` through
//! `ThriftService`; `java-raw`: a handler without the Thrift library) join when the Java side has
//! been built (`bindings-java/target`: classes, test classes, the natives and the test class
//! path that `bindings-java/bench/compare.py` or `scripts/test.d/60-java.sh` leave there); a
//! summary then gives issue 7's ratios (QPS over octo's, requests per server-CPU-second over
//! Netty's, medians of per-round ratios).
//!
//! Each entry is a server and the generator that drives it. The octo client cannot call the raw
//! frame echo (it answers a request with the request itself, which no client accepts as an
//! answer), so octo and the raw echo are also compared with the prebuilt-frame generator.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::args::Args;
use crate::client_load::{self, ClientLoadSpec, Outcome};
use crate::hiccup;
use crate::load::Proto;
use crate::load_cli;
use crate::measure;
use crate::procs::{self, ServerProc};
use crate::run_cmd::parse_workloads;

/// How long `compare` measures the machine's own stalls before its open loops.
const STALL_SECS: f64 = 3.0;

/// How one server is started.
#[derive(Clone, Copy, PartialEq)]
enum Launch {
    /// `octo-bench serve` with these extra arguments.
    Own(&'static [&'static str]),
    /// A script under bench/peers taking PORT.
    Peer(&'static str),
    /// A server built outside this crate, run with `--addr --shards --cpus` and these extra
    /// arguments if it is present: the C ABI example (the `bench/compare` script builds it) or
    /// the C++ binding's example (scripts/test.d/70-cpp.sh builds it; a generated Thrift
    /// EchoProcessor on octo, or with `--handler direct` a hand-written handler).
    Built(BuiltServer, &'static [&'static str]),
    /// The Java binding's Echo server (`com.meituan.octo.bench.EchoServerMain PORT 1 MODE`) from
    /// `bindings-java/target`, with the Netty peer's heap flags, if that has been built.
    Java(&'static str),
}

#[derive(Clone, Copy, PartialEq)]
enum BuiltServer {
    CAbi,
    Cpp,
}

impl BuiltServer {
    fn path(self) -> PathBuf {
        match self {
            BuiltServer::CAbi => {
                let target = std::env::var_os("CARGO_TARGET_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| workspace().join("target"));
                target.join("c-abi").join("echo_server")
            }
            BuiltServer::Cpp => workspace().join("bindings-cpp/build/examples/echo_server"),
        }
    }

    fn built_by(self) -> &'static str {
        match self {
            BuiltServer::CAbi => "bench/compare",
            BuiltServer::Cpp => "scripts/test.d/70-cpp.sh",
        }
    }
}

struct Entry {
    name: &'static str,
    server: &'static str,
    launch: Launch,
    proto: Proto,
    raw_generator: bool,
}

const ENTRIES: &[Entry] = &[
    Entry {
        name: "octo",
        server: "octo",
        launch: Launch::Own(&["--mode", "echo"]),
        proto: Proto::Octo,
        raw_generator: false,
    },
    Entry {
        name: "netty",
        server: "netty",
        launch: Launch::Peer("netty/run.sh"),
        proto: Proto::Octo,
        raw_generator: false,
    },
    Entry {
        name: "thrift-cpp",
        server: "thrift-cpp",
        launch: Launch::Peer("thrift-cpp/run.sh"),
        proto: Proto::Thrift,
        raw_generator: false,
    },
    Entry {
        name: "c-abi",
        server: "c-abi",
        launch: Launch::Built(BuiltServer::CAbi, &[]),
        proto: Proto::Octo,
        raw_generator: false,
    },
    Entry {
        name: "cpp-thrift",
        server: "cpp-thrift",
        launch: Launch::Built(BuiltServer::Cpp, &[]),
        proto: Proto::Octo,
        raw_generator: false,
    },
    Entry {
        name: "cpp-direct",
        server: "cpp-direct",
        launch: Launch::Built(BuiltServer::Cpp, &["--handler", "direct"]),
        proto: Proto::Octo,
        raw_generator: false,
    },
    Entry {
        name: "java-thrift",
        server: "java-thrift",
        launch: Launch::Java("thrift"),
        proto: Proto::Octo,
        raw_generator: false,
    },
    Entry {
        name: "java-raw",
        server: "java-raw",
        launch: Launch::Java("raw"),
        proto: Proto::Octo,
        raw_generator: false,
    },
    Entry {
        name: "octo/rawgen",
        server: "octo",
        launch: Launch::Own(&["--mode", "echo"]),
        proto: Proto::Octo,
        raw_generator: true,
    },
    Entry {
        name: "octo-raw/rawgen",
        server: "octo-raw",
        launch: Launch::Own(&["--mode", "raw"]),
        proto: Proto::Octo,
        raw_generator: true,
    },
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// `bindings-java/target` (or `$OCTO_JAVA_TARGET`): where Maven left the Java binding.
fn java_target() -> PathBuf {
    std::env::var_os("OCTO_JAVA_TARGET")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("bindings-java").join("target"))
}

/// The Java Echo server's command line (after `taskset -c CPU`), or why it cannot run.
fn java_command(mode: &str, port: u16) -> Result<(String, Vec<String>), String> {
    let t = java_target();
    let natives = t.join("native").join("linux-x86_64");
    let needed = [
        t.join("classes"),
        t.join("test-classes")
            .join("com/meituan/octo/bench/EchoServerMain.class"),
        t.join("test-classpath.txt"),
        natives.join("libocto-jni.so"),
    ];
    if let Some(missing) = needed.iter().find(|p| !p.exists()) {
        return Err(format!(
            "{} not built (bindings-java/bench/compare.py or scripts/test.d/60-java.sh builds it)",
            missing.display()
        ));
    }
    let deps = std::fs::read_to_string(t.join("test-classpath.txt"))
        .map_err(|e| format!("read {}: {e}", t.join("test-classpath.txt").display()))?;
    let class_path = format!(
        "{}:{}:{}",
        t.join("classes").display(),
        t.join("test-classes").display(),
        deps.trim()
    );
    let java = std::env::var("JAVA").unwrap_or_else(|_| "java".into());
    let args = [
        "-Xms512m",
        "-Xmx512m",
        "-XX:+UseCompressedOops",
        &format!("-Djava.library.path={}", natives.display()),
        "-cp",
        &class_path,
        "com.meituan.octo.bench.EchoServerMain",
        &port.to_string(),
        "1",
        mode,
    ]
    .map(String::from)
    .to_vec();
    Ok((java, args))
}

fn start(entry: &Entry, cpu: usize) -> Result<ServerProc, String> {
    let c = cpu.to_string();
    let wait = Duration::from_secs(300);
    match entry.launch {
        Launch::Own(extra) => {
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            let mut args: Vec<String> = [
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--shards",
                "1",
                "--cpus",
                &c,
            ]
            .map(String::from)
            .to_vec();
            args.extend(extra.iter().map(|s| s.to_string()));
            procs::start(entry.server, cpu, &exe.to_string_lossy(), &args, wait)
        }
        Launch::Peer(script) => {
            let path = workspace().join("bench").join("peers").join(script);
            let port = procs::free_port()?.to_string();
            procs::start(entry.server, cpu, &path.to_string_lossy(), &[port], wait)
        }
        Launch::Built(built, extra) => {
            let path = built.path();
            let mut args = ["--addr", "127.0.0.1:0", "--shards", "1", "--cpus", &c]
                .map(String::from)
                .to_vec();
            args.extend(extra.iter().map(|s| s.to_string()));
            procs::start(entry.server, cpu, &path.to_string_lossy(), &args, wait)
        }
        Launch::Java(mode) => {
            let (java, args) = java_command(mode, procs::free_port()?)?;
            procs::start(entry.server, cpu, &java, &args, wait)
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    }
}

struct Sample {
    entry: usize,
    workload: (usize, usize),
    round: usize,
    outcome: Outcome,
    loadavg: f64,
}

impl Sample {
    fn per_server_cpu(&self) -> f64 {
        self.outcome
            .server_cpu
            .filter(|c| *c > 0.0)
            .map_or(f64::NAN, |c| self.outcome.requests as f64 / c)
    }
    fn server_util(&self) -> f64 {
        self.outcome.server_cpu.unwrap_or(f64::NAN) / self.outcome.elapsed.as_secs_f64()
    }
    fn client_util(&self) -> f64 {
        self.outcome.client_cpu / self.outcome.elapsed.as_secs_f64()
    }
    fn json(&self) -> Value {
        let h = &self.outcome.latency_us;
        json!({
            "server": ENTRIES[self.entry].name,
            "workload": format!("{}x{}", self.workload.0, self.workload.1),
            "round": self.round,
            "qps": self.outcome.qps().round(),
            "server_cpu_util": self.server_util(),
            "req_per_server_cpu_s": self.per_server_cpu().round(),
            "client_cpu_util": self.client_util(),
            "p50_us": h.value_at_quantile(0.5), "p99_us": h.value_at_quantile(0.99),
            "p999_us": h.value_at_quantile(0.999), "max_us": h.max(),
            "errors": self.outcome.errors,
            "loadavg": self.loadavg,
        })
    }
}

pub fn run(args: &Args) -> Result<(), String> {
    let secs: f64 = args.get("secs", 4.0)?;
    let warmup: f64 = args.get("warmup", 1.0)?;
    let jvm_warmup: f64 = args.get("jvm-warmup", 5.0)?;
    let rounds: usize = args.get("rounds", 2)?;
    let size: usize = args.get("size", 1024)?;
    let server_cpu: usize = args.get("server-cpu", 0)?;
    let load_cpu: usize = args.get("load-cpu", 1)?;
    let workloads = parse_workloads(args.str("workloads").unwrap_or("8x1,64x1,8x16"))?;
    let open_loop = !args.flag("no-open-loop");
    let wanted: Vec<String> = args
        .str("servers")
        .unwrap_or(
            "octo,netty,thrift-cpp,c-abi,cpp-thrift,java-thrift,java-raw,octo/rawgen,octo-raw/rawgen",
        )
        .split(',')
        .map(String::from)
        .collect();
    let json_path = args
        .str("json")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::run_cmd::default_out_dir().join("compare.json"));

    // Start each server once; the same process serves every round (the JVM keeps its JIT work).
    let mut servers: Vec<(&str, ServerProc)> = Vec::new();
    let mut entries = Vec::new();
    for (i, e) in ENTRIES.iter().enumerate() {
        if !wanted.iter().any(|w| w == e.name) {
            continue;
        }
        if let Launch::Built(built, _) = e.launch {
            if !built.path().exists() {
                eprintln!(
                    "skipping {}: {} not built ({} builds it)",
                    e.name,
                    built.path().display(),
                    built.built_by()
                );
                continue;
            }
        }
        if let Launch::Java(mode) = e.launch {
            if let Err(why) = java_command(mode, 0) {
                eprintln!("skipping {}: {why}", e.name);
                continue;
            }
        }
        if !servers.iter().any(|(s, _)| *s == e.server) {
            let p = start(e, server_cpu)?;
            eprintln!(
                "{} pid {} on CPU {server_cpu} at {}",
                e.server, p.pid, p.addr
            );
            servers.push((e.server, p));
        }
        entries.push(i);
    }
    if entries.is_empty() {
        return Err("no server to compare (see --servers)".into());
    }
    let find = |server: &str| {
        servers
            .iter()
            .find(|(s, _)| *s == server)
            .map(|(_, p)| (p.addr, p.pid))
            .expect("started above")
    };
    let spec = |e: &Entry, (conns, depth): (usize, usize), secs: f64, rate: Option<f64>| {
        let (addr, pid) = find(e.server);
        ClientLoadSpec {
            addr,
            conns,
            depth,
            size,
            secs,
            warmup,
            proto: e.proto,
            service: "Echo".into(),
            cpu: Some(load_cpu),
            rate,
            server_pid: Some(pid),
            progress: false,
            busy_poll: true,
        }
    };
    let drive = |e: &Entry, s: &ClientLoadSpec| {
        if e.raw_generator {
            load_cli::run_raw(s)
        } else {
            client_load::run(s)
        }
    };
    // Warm-up, discarded: the JVM compiles its hot paths; the others fill their caches.
    for &i in &entries {
        let e = &ENTRIES[i];
        let jvm = e.server == "netty" || matches!(e.launch, Launch::Java(_));
        let w = if jvm { jvm_warmup } else { 0.5 };
        eprintln!("warm-up {} ({w} s, discarded)", e.name);
        drive(e, &spec(e, (64, 1), w, None))?;
    }

    println!(
        "# Echo {size} B; servers on CPU {server_cpu}, generator on CPU {load_cpu}; {secs} s per run after {warmup} s warm-up; {rounds} rounds interleaved; loadavg at start {:.2}",
        measure::loadavg()
    );
    let mut samples = Vec::new();
    for round in 0..rounds {
        for &w in &workloads {
            for &i in &entries {
                let e = &ENTRIES[i];
                let o = drive(e, &spec(e, w, secs, None))?;
                let s = Sample {
                    entry: i,
                    workload: w,
                    round,
                    outcome: o,
                    loadavg: measure::loadavg(),
                };
                eprintln!(
                    "round {round} {}x{} {:<16} {:>9.0} req/s  server CPU {:>4.0}%  {:>9.0} req/server-CPU-s  client CPU {:>4.0}%  p99 {} us  errors {}  load {:.2}",
                    w.0,
                    w.1,
                    e.name,
                    s.outcome.qps(),
                    100.0 * s.server_util(),
                    s.per_server_cpu(),
                    100.0 * s.client_util(),
                    s.outcome.latency_us.value_at_quantile(0.99),
                    s.outcome.error_count(),
                    s.loadavg
                );
                samples.push(s);
            }
        }
    }

    // Open loop on octo at half its best closed-loop rate: the latency target's measurement.
    let mut open = None;
    if open_loop {
        if let Some(&oi) = entries.iter().find(|&&i| ENTRIES[i].name == "octo") {
            // The peak: the best workload's median closed-loop rate (a single lucky round would
            // overstate it), and the connections it was reached with (an open loop spreads its
            // rate over the same number of connections).
            let (peak, conns) = workloads
                .iter()
                .map(|&w| {
                    let qps: Vec<f64> = samples
                        .iter()
                        .filter(|s| s.entry == oi && s.workload == w)
                        .map(|s| s.outcome.qps())
                        .collect();
                    (median(qps), w.0)
                })
                .fold((0.0, 64), |a, b| if b.0 > a.0 { b } else { a });
            // What the machine itself takes from the two CPUs (the servers idle meanwhile), and
            // so the p99 its stalls alone would give the open loops (an estimate).
            let stalls = hiccup::measure(&[server_cpu, load_cpu], STALL_SECS);
            println!("\n{}", hiccup::describe(&stalls));
            // Half the peak (the target's point), then a quarter (where the latency is when the
            // generator has room to spare), as many rounds as the closed loops, interleaved: one
            // 3 s run can fall into tens of milliseconds of the host's time slicing (see
            // bench/README.md), so the p99 quoted is the median of the rounds, each listed.
            let shares = [("half", 0.5), ("a quarter", 0.25)];
            let mut runs = Vec::new();
            let mut p99s: Vec<Vec<u64>> = vec![Vec::new(); shares.len()];
            for (round, (si, &(label, share))) in
                (0..rounds.max(1)).flat_map(|r| shares.iter().enumerate().map(move |s| (r, s)))
            {
                let rate = (peak * share).round();
                let o = drive(
                    &ENTRIES[oi],
                    &spec(&ENTRIES[oi], (conns, 1), secs, Some(rate)),
                )?;
                let h = &o.latency_us;
                p99s[si].push(h.value_at_quantile(0.99));
                println!(
                    "open loop octo {conns} conns at {rate:.0}/s ({label} of the best closed-loop median {peak:.0}, round {}): {:.0} req/s, p50 {} us, p99 {} us, p99.9 {} us, max {} us, errors {}, client CPU {:.0}% working and {:.0}% polling idle, load {:.2}",
                    round + 1,
                    o.qps(),
                    h.value_at_quantile(0.5),
                    h.value_at_quantile(0.99),
                    h.value_at_quantile(0.999),
                    h.max(),
                    o.error_count(),
                    100.0 * o.client_cpu / o.elapsed.as_secs_f64().max(1e-9),
                    100.0 * o.client_polled / o.elapsed.as_secs_f64().max(1e-9),
                    measure::loadavg()
                );
                let (floor_text, floor) = hiccup::open_loop_estimate(&stalls, &o);
                println!("{floor_text}");
                runs.push(json!({
                    "server": "octo", "conns": conns, "rate": rate, "share_of_peak": share,
                    "round": round + 1,
                    "peak_closed_loop_qps": peak.round(),
                    "qps": o.qps().round(), "p50_us": h.value_at_quantile(0.5),
                    "p99_us": h.value_at_quantile(0.99), "p999_us": h.value_at_quantile(0.999),
                    "max_us": h.max(), "errors": o.errors,
                    "client_cpu_util": o.client_cpu / o.elapsed.as_secs_f64().max(1e-9),
                    "client_idle_polling_s": o.client_polled,
                    "loadavg": measure::loadavg(), "floor": floor,
                }));
            }
            let mut medians = Vec::new();
            for (&(label, share), p99) in shares.iter().zip(&p99s) {
                let under = p99.iter().filter(|&&us| us <= 1000).count();
                let list: Vec<String> = p99.iter().map(|us| us.to_string()).collect();
                let med = median(p99.iter().map(|&us| us as f64).collect()).round() as u64;
                println!(
                    "open loop at {label} of the peak: p99 median {med} us over {} rounds ({} us); at most 1 ms in {under} of {}",
                    p99.len(),
                    list.join(", "),
                    p99.len()
                );
                medians.push(json!({
                    "share_of_peak": share, "p99_us_median": med, "p99_us": p99,
                    "rounds_at_most_1ms": under,
                }));
            }
            open = Some(json!({
                "stalls": hiccup::json(&stalls), "runs": runs, "p99_medians": medians,
            }));
        }
    }
    drop(servers);

    let mut summary = Vec::new();
    for &w in &workloads {
        println!(
            "\n## {} conns x depth {} (medians of {rounds} rounds)",
            w.0, w.1
        );
        println!(
            "| server | req/s | vs octo | server CPU | req per server-CPU-s | octo's advantage | client CPU | p99 us | errors | load |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|");
        let of = |i: usize| -> Vec<&Sample> {
            samples
                .iter()
                .filter(|s| s.entry == i && s.workload == w)
                .collect()
        };
        let med =
            |i: usize, f: &dyn Fn(&Sample) -> f64| median(of(i).iter().map(|s| f(s)).collect());
        let base = |name: &str| entries.iter().copied().find(|&i| ENTRIES[i].name == name);
        for &i in &entries {
            let e = &ENTRIES[i];
            // Ratios within a generator: the raw-generator pair compares with each other.
            let reference = if e.raw_generator {
                base("octo/rawgen")
            } else {
                base("octo")
            };
            let qps = med(i, &|s| s.outcome.qps());
            let per_cpu = med(i, &|s| s.per_server_cpu());
            let (rq, rc) = reference.map_or((f64::NAN, f64::NAN), |r| {
                (
                    qps / med(r, &|s| s.outcome.qps()),
                    med(r, &|s| s.per_server_cpu()) / per_cpu,
                )
            });
            let errors: u64 = of(i).iter().map(|s| s.outcome.error_count()).sum();
            let p99 = med(i, &|s| s.outcome.latency_us.value_at_quantile(0.99) as f64);
            let load = med(i, &|s| s.loadavg);
            println!(
                "| {} | {:.0} | {:.2} | {:.0}% | {:.0} | {:.2}x | {:.0}% | {:.0} | {} | {:.2} |",
                e.name,
                qps,
                rq,
                100.0 * med(i, &|s| s.server_util()),
                per_cpu,
                rc,
                100.0 * med(i, &|s| s.client_util()),
                p99,
                errors,
                load
            );
            summary.push(json!({
                "workload": format!("{}x{}", w.0, w.1), "server": e.name,
                "generator": if e.raw_generator { "raw frames" } else { "octo client" },
                "qps": qps.round(), "qps_vs_reference": rq,
                "server_cpu_util": med(i, &|s| s.server_util()),
                "req_per_server_cpu_s": per_cpu.round(),
                "reference_req_per_server_cpu_s_over_this": rc,
                "client_cpu_util": med(i, &|s| s.client_util()),
                "p99_us": p99, "errors": errors, "loadavg": load,
            }));
        }
    }
    println!(
        "\n(vs octo: req/s over octo's; octo's advantage: octo's requests per server-CPU-second over this server's. \
         Rows ending /rawgen are driven by the prebuilt-frame generator and compared with octo/rawgen.)"
    );
    let java = java_ratios(&entries, &samples, &workloads);
    let doc = json!({
        "command": "bench/compare",
        "size": size, "secs": secs, "warmup": warmup, "jvm_warmup": jvm_warmup, "rounds": rounds,
        "server_cpu": server_cpu, "load_cpu": load_cpu,
        "workloads": workloads.iter().map(|w| format!("{}x{}", w.0, w.1)).collect::<Vec<_>>(),
        "summary": summary,
        "open_loop": open,
        "java": java,
        "samples": samples.iter().map(Sample::json).collect::<Vec<_>>(),
    });
    if let Some(dir) = json_path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&doc).unwrap_or_default(),
    )
    .map_err(|e| format!("write {}: {e}", json_path.display()))?;
    println!("wrote {}", json_path.display());
    Ok(())
}

/// Issue 7's ratios for the Java servers, per workload: QPS over octo's and requests per
/// server-CPU-second over Netty's, each the median of per-round ratios (a round's runs are
/// adjacent, so drift on a shared machine cancels better than in a ratio of medians). Printed
/// as a table; returned for the JSON.
fn java_ratios(entries: &[usize], samples: &[Sample], workloads: &[(usize, usize)]) -> Value {
    let index = |name: &str| entries.iter().copied().find(|&i| ENTRIES[i].name == name);
    let javas: Vec<usize> = entries
        .iter()
        .copied()
        .filter(|&i| matches!(ENTRIES[i].launch, Launch::Java(_)))
        .collect();
    if javas.is_empty() {
        return Value::Null;
    }
    let (octo, netty) = (index("octo"), index("netty"));
    let find = |i: usize, w: (usize, usize), round: usize| {
        samples
            .iter()
            .find(|s| s.entry == i && s.workload == w && s.round == round)
    };
    // Median over rounds of f(this server's sample, the reference's sample).
    let ratio = |j: usize, reference: Option<usize>, w, f: &dyn Fn(&Sample, &Sample) -> f64| {
        let Some(r) = reference else {
            return f64::NAN;
        };
        median(
            samples
                .iter()
                .filter(|s| s.entry == j && s.workload == w)
                .filter_map(|s| find(r, w, s.round).map(|x| f(s, x)))
                .collect(),
        )
    };
    println!("\n## Java binding (issue 7 targets: QPS >= 0.70 of octo's; requests per server-CPU-second >= 1.3x Netty's)");
    println!(
        "| workload | server | QPS / octo's | req per server-CPU-s / Netty's | QPS / Netty's |"
    );
    println!("|---|---|---|---|---|");
    let mut out = Vec::new();
    for &w in workloads {
        for &j in &javas {
            let qps_octo = ratio(j, octo, w, &|s, r| s.outcome.qps() / r.outcome.qps());
            let cpu_netty = ratio(j, netty, w, &|s, r| s.per_server_cpu() / r.per_server_cpu());
            let qps_netty = ratio(j, netty, w, &|s, r| s.outcome.qps() / r.outcome.qps());
            println!(
                "| {}x{} | {} | {qps_octo:.2} | {cpu_netty:.2}x | {qps_netty:.2} |",
                w.0, w.1, ENTRIES[j].name
            );
            out.push(json!({
                "workload": format!("{}x{}", w.0, w.1), "server": ENTRIES[j].name,
                "qps_over_octo": qps_octo, "req_per_server_cpu_s_over_netty": cpu_netty,
                "qps_over_netty": qps_netty,
            }));
        }
    }
    Value::Array(out)
}
