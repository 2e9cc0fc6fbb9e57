//! `octo-bench runtimes`: octo's loop against tokio (current_thread) on the same Echo work, in
//! one run: each server in its own process pinned to one CPU, the generator pinned to another,
//! servers interleaved round by round. Reports QPS, requests per server-CPU-second (from
//! /proc/PID/stat utime+stime over the measuring window) and, with `--perf`, syscalls and
//! rescheduling IPIs per request (perf tracepoints over the same window).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::args::Args;
use crate::load::{self, LoadSpec, Proto};

struct ServerKind {
    name: &'static str,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
}

const SERVERS: &[ServerKind] = &[
    ServerKind {
        name: "octo",
        args: &["--runtime", "octo", "--mode", "echo", "--taskrun", "defer"],
        env: &[],
    },
    ServerKind {
        name: "octo-nowaitsends",
        args: &["--runtime", "octo", "--mode", "echo", "--taskrun", "defer"],
        env: &[("OCTO_WAIT_SENDS", "0")],
    },
    ServerKind {
        name: "octo-coop",
        args: &["--runtime", "octo", "--mode", "echo", "--taskrun", "coop"],
        env: &[],
    },
    ServerKind {
        name: "octo-plain",
        args: &["--runtime", "octo", "--mode", "echo", "--taskrun", "plain"],
        env: &[],
    },
    ServerKind {
        name: "octo-raw",
        args: &["--runtime", "octo", "--mode", "raw", "--taskrun", "defer"],
        env: &[],
    },
    ServerKind {
        name: "octo-pollfirst",
        args: &["--runtime", "octo", "--mode", "echo", "--taskrun", "defer"],
        env: &[("OCTO_RECV_POLL_FIRST", "1")],
    },
    ServerKind {
        name: "tokio",
        args: &["--runtime", "tokio", "--mode", "echo"],
        env: &[],
    },
    ServerKind {
        name: "tokio-raw",
        args: &["--runtime", "tokio", "--mode", "raw"],
        env: &[],
    },
];

struct Running {
    child: Child,
    addr: SocketAddr,
    pid: u32,
}

impl Drop for Running {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) of the child we started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn start(kind: &ServerKind, cpu: usize, nice: i32) -> Result<Running, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new("nice")
        .arg("-n")
        .arg(nice.to_string())
        .arg("taskset")
        .arg("-c")
        .arg(cpu.to_string())
        .arg(exe)
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--shards",
            "1",
            "--cpus",
            &cpu.to_string(),
        ])
        .args(kind.args)
        .envs(kind.env.iter().copied())
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("start {}: {e}", kind.name))?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().ok_or("no stdout")?)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    // "listening on ADDR pid PID (...)"
    let mut words = line.split_whitespace();
    let (Some("listening"), Some("on"), Some(addr), Some("pid"), Some(pid)) = (
        words.next(),
        words.next(),
        words.next(),
        words.next(),
        words.next(),
    ) else {
        let _ = child.kill();
        return Err(format!("{} did not start: {line:?}", kind.name));
    };
    let addr = addr.parse().map_err(|e| format!("{e}"))?;
    let pid = pid.parse().map_err(|e| format!("{e}"))?;
    Ok(Running { child, addr, pid })
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); utime is field 14, stime field 15.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64
}

fn perf(args: &[String], secs: f64) -> Option<std::thread::JoinHandle<Vec<(String, f64)>>> {
    let mut cmd = Command::new("perf");
    cmd.arg("stat")
        .arg("-x,")
        .args(args)
        .arg("--")
        .arg("sleep")
        .arg(format!("{secs}"));
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let child = cmd.spawn().ok()?;
    Some(std::thread::spawn(move || {
        let out = child
            .wait_with_output()
            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
            .unwrap_or_default();
        out.lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                Some((f.get(2)?.to_string(), f.first()?.parse::<f64>().ok()?))
            })
            .collect()
    }))
}

struct Sample {
    qps: f64,
    per_cpu_sec: f64,
    cpu_util: f64,
    syscalls_per_req: Option<f64>,
    ipis_per_req: Option<f64>,
    p99_us: u64,
    errors: u64,
}

fn measure(
    kind: &ServerKind,
    spec: &LoadSpec,
    server_cpu: usize,
    with_perf: bool,
    nice: i32,
) -> Result<Sample, String> {
    let server = start(kind, server_cpu, nice)?;
    let mut spec = spec.clone();
    spec.addr = server.addr;
    let pid = server.pid;
    let warmup = spec.warmup;
    let secs = spec.secs;
    let observer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs_f64(warmup));
        let (mut sys, mut ipi) = (None, None);
        if with_perf {
            sys = perf(
                &[
                    "-e".into(),
                    "raw_syscalls:sys_enter".into(),
                    "-p".into(),
                    pid.to_string(),
                ],
                secs,
            );
            ipi = perf(
                &[
                    "-a".into(),
                    "-C".into(),
                    server_cpu.to_string(),
                    "-e".into(),
                    "irq_vectors:reschedule_entry,irq_vectors:call_function_single_entry".into(),
                ],
                secs,
            );
        }
        let t0 = cpu_ticks(pid);
        std::thread::sleep(Duration::from_secs_f64(secs));
        let t1 = cpu_ticks(pid);
        let sys = sys.and_then(|h| h.join().ok()).unwrap_or_default();
        let ipi = ipi.and_then(|h| h.join().ok()).unwrap_or_default();
        (t0.zip(t1).map(|(a, b)| b.saturating_sub(a)), sys, ipi)
    });
    let result = load::run(&spec)?;
    let (ticks, sys, ipi) = observer.join().map_err(|_| "observer thread failed")?;
    drop(server);
    let cpu_secs = ticks
        .map(|t| t as f64 / ticks_per_sec())
        .unwrap_or(f64::NAN);
    let reqs = result.requests as f64;
    let syscalls: f64 = sys.iter().map(|(_, v)| v).sum();
    let ipis: f64 = ipi.iter().map(|(_, v)| v).sum();
    Ok(Sample {
        qps: result.qps(),
        per_cpu_sec: reqs / cpu_secs,
        cpu_util: cpu_secs / result.elapsed.as_secs_f64(),
        syscalls_per_req: (with_perf && !sys.is_empty()).then(|| syscalls / reqs),
        ipis_per_req: (with_perf && !ipi.is_empty()).then(|| ipis / reqs),
        p99_us: result.latency_us.value_at_quantile(0.99),
        errors: result.errors,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

pub fn run(args: &Args) -> Result<(), String> {
    let secs: f64 = args.get("secs", 5.0)?;
    let rounds: usize = args.get("rounds", 2)?;
    let size: usize = args.get("size", 1024)?;
    let server_cpu: usize = args.get("server-cpu", 0)?;
    let load_cpu: usize = args.get("load-cpu", 1)?;
    let with_perf = args.flag("perf");
    // Other work on a shared machine preempts server and generator alike; a lower nice value
    // (for both) keeps runs comparable. 0 leaves priorities alone.
    let nice: i32 = args.get("nice", 0)?;
    if nice != 0 {
        // SAFETY: setpriority on our own process; failure only leaves the priority unchanged.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
    }
    let scenarios: Vec<(usize, usize)> = args
        .str("scenarios")
        .unwrap_or("8x1,8x16,64x1")
        .split(',')
        .map(|s| {
            let (c, d) = s
                .split_once('x')
                .ok_or_else(|| format!("bad scenario {s}"))?;
            Ok((
                c.parse().map_err(|_| format!("bad scenario {s}"))?,
                d.parse().map_err(|_| format!("bad scenario {s}"))?,
            ))
        })
        .collect::<Result<_, String>>()?;
    let wanted: Vec<&str> = args
        .str("servers")
        .unwrap_or(
            "octo,octo-nowaitsends,octo-pollfirst,octo-coop,octo-plain,octo-raw,tokio,tokio-raw",
        )
        .split(',')
        .collect();
    let servers: Vec<&ServerKind> = SERVERS
        .iter()
        .filter(|s| wanted.contains(&s.name))
        .collect();
    if servers.is_empty() {
        return Err("no known server in --servers".into());
    }
    println!(
        "# Echo {size} B, server on CPU {server_cpu}, generator on CPU {load_cpu}, {secs} s per run, {rounds} rounds, interleaved, nice {nice}"
    );
    for &(conns, depth) in &scenarios {
        let spec = LoadSpec {
            addr: "127.0.0.1:1".parse().unwrap(),
            conns,
            depth,
            size,
            secs,
            warmup: 1.0,
            proto: Proto::Octo,
            service: "Echo".into(),
            cpu: Some(load_cpu),
        };
        let mut samples: Vec<Vec<Sample>> = servers.iter().map(|_| Vec::new()).collect();
        for round in 0..rounds {
            for (i, kind) in servers.iter().enumerate() {
                let s = measure(kind, &spec, server_cpu, with_perf, nice)?;
                println!(
                    "{{\"scenario\":\"{conns}x{depth}\",\"round\":{round},\"server\":\"{}\",\"qps\":{:.0},\"req_per_cpu_s\":{:.0},\"cpu_util\":{:.2},\"syscalls_per_req\":{},\"ipis_per_req\":{},\"p99_us\":{},\"errors\":{}}}",
                    kind.name,
                    s.qps,
                    s.per_cpu_sec,
                    s.cpu_util,
                    s.syscalls_per_req.map_or("null".into(), |v| format!("{v:.3}")),
                    s.ipis_per_req.map_or("null".into(), |v| format!("{v:.3}")),
                    s.p99_us,
                    s.errors
                );
                samples[i].push(s);
            }
        }
        // Other work on the machine only ever lowers a run's throughput: the best round is the
        // least disturbed one, so it is shown next to the median.
        let best = |i: usize| samples[i].iter().map(|s| s.qps).fold(0.0, f64::max);
        let tokio_best = servers.iter().position(|k| k.name == "tokio").map(best);
        let tokio_qps = servers
            .iter()
            .position(|k| k.name == "tokio")
            .map(|i| median(samples[i].iter().map(|s| s.qps).collect()));
        println!("\n## {conns} conns x depth {depth} (medians of {rounds})");
        println!("| server | req/s | vs tokio | best req/s | best vs tokio | req per server-CPU-s | server CPU | syscalls/req | IPIs/req | p99 us |");
        println!("|---|---|---|---|---|---|---|---|---|---|");
        for (i, kind) in servers.iter().enumerate() {
            let s = &samples[i];
            let qps = median(s.iter().map(|x| x.qps).collect());
            let opt = |f: &dyn Fn(&Sample) -> Option<f64>| {
                let v: Vec<f64> = s.iter().filter_map(f).collect();
                if v.is_empty() {
                    "-".to_string()
                } else {
                    format!("{:.2}", median(v))
                }
            };
            println!(
                "| {} | {:.0} | {} | {:.0} | {} | {:.0} | {:.0}% | {} | {} | {:.0} |",
                kind.name,
                qps,
                tokio_qps.map_or("-".into(), |t| format!("{:.2}", qps / t)),
                best(i),
                tokio_best.map_or("-".into(), |t| format!("{:.2}", best(i) / t)),
                median(s.iter().map(|x| x.per_cpu_sec).collect()),
                100.0 * median(s.iter().map(|x| x.cpu_util).collect()),
                opt(&|x| x.syscalls_per_req),
                opt(&|x| x.ipis_per_req),
                median(s.iter().map(|x| x.p99_us as f64).collect()),
            );
        }
        println!();
    }
    Ok(())
}
