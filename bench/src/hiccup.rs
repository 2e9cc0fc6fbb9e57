//! `octo-bench hiccup`: how much time the machine itself takes away from a running thread, and
//! what that alone does to an open loop's tail latency.
//!
//! One thread per CPU, pinned, all at once, each spinning on the clock and recording every gap
//! between two consecutive clock reads (the idea of Azul's jHiccup). A busy loop that makes no
//! system call and touches no shared memory should see gaps of well under a microsecond; a
//! longer gap is time the CPU was taken away: an interrupt, a kernel thread, or, on a virtual
//! machine, the hypervisor running something else on the physical core (which the guest's steal
//! counter does not always show). Both CPUs spin together because that is when a latency run
//! uses them both: on the 2-vCPU machines this project is measured on, a lone busy CPU loses
//! almost nothing while two busy ones lose 1-2% of their time in stalls of 1-17 ms.
//!
//! The floor: a call that falls due while its generator's or its server's CPU is stalled waits
//! out the rest of the stall however fast both are, then the backlog the stall left (see
//! [`floor`]). So stalls like the measured ones alone would put an open loop's p99 at about
//! that figure. It is an estimate, not a bound for any one run: the stalls are measured just
//! before or after the run rather than during it, they come and go from minute to minute, and
//! two CPUs that spin all the time lose more than two that are half busy (measured on these
//! machines: 1-2.7% of the time in gaps over 1 ms against about 0.25%). A run whose p99 is near
//! the estimate is limited by the machine, not by the code.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::args::Args;
use crate::client_load::Outcome;

/// Gaps shorter than this are not kept (they cannot move a percentile that is counted in
/// hundreds of microseconds).
const KEEP_FROM: Duration = Duration::from_micros(20);

/// At most this many gaps are kept per CPU (a machine that stalls that often has said enough).
const KEEP_MAX: usize = 1 << 20;

/// What one CPU lost while its thread spun.
#[derive(Clone, Debug)]
pub struct CpuStalls {
    pub cpu: usize,
    /// Whether the thread could be pinned to `cpu` (if not, it ran wherever the kernel put it).
    pub pinned: bool,
    /// How long the thread spun.
    pub spun: Duration,
    /// Every gap of at least [`KEEP_FROM`] between two clock reads, in nanoseconds.
    pub gaps_ns: Vec<u64>,
    /// The longest gap.
    pub max: Duration,
}

impl CpuStalls {
    /// How many gaps were longer than `over`, and what fraction of the spinning time they took.
    pub fn lost(&self, over: Duration) -> (usize, f64) {
        let over = over.as_nanos() as u64;
        let (n, sum) = self
            .gaps_ns
            .iter()
            .filter(|&&g| g > over)
            .fold((0usize, 0u64), |(n, s), &g| (n + 1, s + g));
        (n, sum as f64 / self.spun.as_nanos().max(1) as f64)
    }
}

/// Spins one pinned thread on each of `cpus`, all at once, for `secs`.
pub fn measure(cpus: &[usize], secs: f64) -> Vec<CpuStalls> {
    measure_with_duty(cpus, secs, None)
}

/// A CPU that is busy only part of the time: its thread spins for `busy`, sleeps for `idle`,
/// and so on; its gaps are recorded only while it spins.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Duty {
    pub cpu: usize,
    pub busy: Duration,
    pub idle: Duration,
}

impl Duty {
    /// `CPU:BUSY_US/IDLE_US`, e.g. `1:700/300`.
    pub fn parse(text: &str) -> Result<Duty, String> {
        let bad = || format!("bad --duty {text}: want CPU:BUSY_US/IDLE_US, e.g. 1:700/300");
        let (cpu, cycle) = text.split_once(':').ok_or_else(bad)?;
        let (busy, idle) = cycle.split_once('/').ok_or_else(bad)?;
        let num = |v: &str| v.trim().parse::<u64>().map_err(|_| bad());
        let duty = Duty {
            cpu: cpu.trim().parse().map_err(|_| bad())?,
            busy: Duration::from_micros(num(busy)?),
            idle: Duration::from_micros(num(idle)?),
        };
        if duty.busy.is_zero() {
            return Err(bad());
        }
        Ok(duty)
    }
}

/// [`measure`], with one CPU on a duty cycle: how the machine treats one CPU while the other
/// is only partly busy (on these machines a CPU loses less the less busy the other is).
pub fn measure_with_duty(cpus: &[usize], secs: f64, duty: Option<Duty>) -> Vec<CpuStalls> {
    let start = Arc::new(Barrier::new(cpus.len()));
    let threads: Vec<_> = cpus
        .iter()
        .map(|&cpu| {
            let start = start.clone();
            let cycle = duty.filter(|d| d.cpu == cpu).map(|d| (d.busy, d.idle));
            std::thread::spawn(move || {
                let pinned = core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
                start.wait();
                CpuStalls {
                    pinned,
                    ..spin(cpu, Duration::from_secs_f64(secs), cycle)
                }
            })
        })
        .collect();
    threads.into_iter().filter_map(|t| t.join().ok()).collect()
}

/// Spins for `span`, or with `cycle` = (busy, idle) spins `busy` and sleeps `idle` in turn
/// until `span` has passed; `spun` is the time spent spinning.
fn spin(cpu: usize, span: Duration, cycle: Option<(Duration, Duration)>) -> CpuStalls {
    let keep_from = KEEP_FROM.as_nanos() as u64;
    let mut gaps_ns = Vec::new();
    let mut max = 0u64;
    let mut spun = Duration::ZERO;
    let t0 = Instant::now();
    let mut phase = t0;
    loop {
        let mut prev = phase;
        loop {
            let now = Instant::now();
            let gap = now.duration_since(prev).as_nanos() as u64;
            prev = now;
            max = max.max(gap);
            if gap >= keep_from && gaps_ns.len() < KEEP_MAX {
                gaps_ns.push(gap);
            }
            if now.duration_since(t0) >= span
                || cycle.is_some_and(|(busy, _)| now.duration_since(phase) >= busy)
            {
                break;
            }
        }
        spun += prev.duration_since(phase);
        match cycle {
            Some((_, idle)) if t0.elapsed() < span => std::thread::sleep(idle),
            _ => break,
        }
        phase = Instant::now();
    }
    CpuStalls {
        cpu,
        pinned: true,
        spun,
        gaps_ns,
        max: Duration::from_nanos(max),
    }
}

/// The latency that a share `q` (0.99 for p99) of an open loop's calls stays under when the
/// only delay is these stalls. A call due at a random moment waits out the rest of any stall
/// it falls into on any of the CPUs (the generator's and the server's), and then the backlog:
/// a CPU that was busy a share `load` of the time before the stall catches up only with the
/// share it had spare, so a stall of `g` delays the calls due over `g / (1 - load)`, the first
/// by `g`, the later ones less and less. The share of calls waiting longer than `x` is then the
/// sum, over every gap `g`, of `max(g - x, 0) / (1 - load)` over its CPU's spinning time; this
/// returns the smallest `x` at which that share is at most `1 - q`. `loads[i]` is the load of
/// `stalls[i]`'s CPU (0 where missing: the stall alone; at most 0.95). The ordinary queueing
/// of a busy generator and server comes on top.
pub fn floor(stalls: &[CpuStalls], loads: &[f64], q: f64) -> Duration {
    let budget = (1.0 - q).max(0.0);
    let late_share = |x: u64| -> f64 {
        stalls
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let load = loads.get(i).copied().unwrap_or(0.0).clamp(0.0, 0.95);
                let spun = s.spun.as_nanos().max(1) as f64 * (1.0 - load);
                s.gaps_ns
                    .iter()
                    .filter(|&&g| g > x)
                    .map(|&g| (g - x) as f64)
                    .sum::<f64>()
                    / spun
            })
            .sum()
    };
    if late_share(0) <= budget {
        return Duration::ZERO;
    }
    // late_share falls as x grows and is 0 at the longest gap: bisect to 1 us.
    let mut lo = 0u64;
    let mut hi = stalls
        .iter()
        .map(|s| s.max.as_nanos() as u64)
        .max()
        .unwrap_or(0);
    while hi - lo > 1_000 {
        let mid = lo + (hi - lo) / 2;
        if late_share(mid) <= budget {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Duration::from_nanos(hi)
}

/// A heading, one line per CPU and the estimates, as printed by `hiccup`, `run` and `compare`.
pub fn describe(stalls: &[CpuStalls]) -> String {
    let cpus: Vec<String> = stalls.iter().map(|s| s.cpu.to_string()).collect();
    let spun = stalls
        .iter()
        .map(|s| s.spun.as_secs_f64())
        .fold(0.0, f64::max);
    let mut out = format!(
        "the machine's own stalls ({spun:.0} s spinning on CPUs {} at once):\n",
        cpus.join(" and ")
    );
    for s in stalls {
        let (n100, f100) = s.lost(Duration::from_micros(100));
        let (n1, f1) = s.lost(Duration::from_millis(1));
        out.push_str(&format!(
            "  cpu {}{}: spun {:.1} s, max gap {} us; gaps > 100 us: {n100} ({:.2}% of the time); > 1 ms: {n1} ({:.2}%)\n",
            s.cpu,
            if s.pinned { "" } else { " (could not pin)" },
            s.spun.as_secs_f64(),
            s.max.as_micros(),
            100.0 * f100,
            100.0 * f1,
        ));
    }
    out.push_str(&format!(
        "  stalls like these alone would give an open loop across these CPUs p99 {} us, p99.9 {} us",
        floor(stalls, &[], 0.99).as_micros(),
        floor(stalls, &[], 0.999).as_micros()
    ));
    out
}

/// The p99 and p99.9, in microseconds, that these stalls alone would give an open loop that
/// kept its CPUs this busy (`loads[i]` for `stalls[i]`'s CPU); see [`floor`].
pub fn loaded_floors(stalls: &[CpuStalls], loads: &[f64]) -> (u64, u64) {
    (
        floor(stalls, loads, 0.99).as_micros() as u64,
        floor(stalls, loads, 0.999).as_micros() as u64,
    )
}

/// The p99 and p99.9 that the machine's stalls alone would give the open loop `o` at the CPU
/// loads it ran at (an estimate, see [`floor`]): a line to print and its JSON.
pub fn open_loop_estimate(stalls: &[CpuStalls], o: &Outcome) -> (String, Value) {
    let secs = o.elapsed.as_secs_f64().max(1e-9);
    let (server, client) = (o.server_cpu.unwrap_or(0.0) / secs, o.client_cpu / secs);
    let (p99, p999) = loaded_floors(stalls, &[server, client]);
    let h = &o.latency_us;
    (
        format!(
            "  at the open loop's loads (server {:.0}%, generator {:.0}%), stalls like these alone would give it p99 {p99} us, p99.9 {p999} us; it measured p99 {} us, p99.9 {} us",
            100.0 * server,
            100.0 * client,
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999)
        ),
        json!({
            "server_cpu_util": server, "client_cpu_util": client,
            "p99_floor_us": p99, "p999_floor_us": p999,
            "p99_us": h.value_at_quantile(0.99), "p999_us": h.value_at_quantile(0.999),
        }),
    )
}

pub fn json(stalls: &[CpuStalls]) -> Value {
    json!({
        "cpus": stalls.iter().map(|s| {
            let (n100, f100) = s.lost(Duration::from_micros(100));
            let (n1, f1) = s.lost(Duration::from_millis(1));
            json!({
                "cpu": s.cpu, "pinned": s.pinned, "spun_s": s.spun.as_secs_f64(), "max_gap_us": s.max.as_micros() as u64,
                "gaps_over_100us": n100, "time_in_gaps_over_100us": f100,
                "gaps_over_1ms": n1, "time_in_gaps_over_1ms": f1,
            })
        }).collect::<Vec<_>>(),
        "p99_floor_us": floor(stalls, &[], 0.99).as_micros() as u64,
        "p999_floor_us": floor(stalls, &[], 0.999).as_micros() as u64,
    })
}

/// `octo-bench hiccup [--secs S] [--cpus LIST]`.
pub fn run(args: &Args) -> Result<(), String> {
    let secs: f64 = args.get("secs", 5.0)?;
    if !(secs > 0.0 && secs <= 600.0) {
        return Err("--secs must be in (0, 600]".into());
    }
    let cpus = args.cpus("cpus")?.unwrap_or_else(|| vec![0, 1]);
    if cpus.is_empty() {
        return Err("--cpus names no CPU".into());
    }
    let have = std::thread::available_parallelism().map_or(1, |n| n.get());
    if let Some(c) = cpus.iter().find(|&&c| c >= have) {
        return Err(format!("no CPU {c}: this machine has {have}"));
    }
    let duty = args.str("duty").map(Duty::parse).transpose()?;
    if let Some(d) = duty {
        if !cpus.contains(&d.cpu) {
            return Err(format!("--duty names CPU {}, not in --cpus", d.cpu));
        }
        println!(
            "cpu {} busy {} us, idle {} us, in turn (its gaps counted while busy)",
            d.cpu,
            d.busy.as_micros(),
            d.idle.as_micros()
        );
    }
    let stalls = measure_with_duty(&cpus, secs, duty);
    println!("{}", describe(&stalls));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(spun_ms: u64, gaps_us: &[u64]) -> CpuStalls {
        CpuStalls {
            cpu: 0,
            pinned: true,
            spun: Duration::from_millis(spun_ms),
            gaps_ns: gaps_us.iter().map(|g| g * 1_000).collect(),
            max: Duration::from_micros(gaps_us.iter().copied().max().unwrap_or(0)),
        }
    }

    fn close(d: Duration, us: u64) -> bool {
        d.as_micros().abs_diff(us as u128) <= 2
    }

    #[test]
    fn no_stall_leaves_no_floor() {
        assert_eq!(floor(&[cpu(1_000, &[])], &[], 0.99), Duration::ZERO);
        assert_eq!(floor(&[], &[], 0.99), Duration::ZERO);
    }

    #[test]
    fn stalls_covering_less_than_the_tail_leave_no_floor() {
        // 5 ms lost in 1 s is 0.5%: at most 0.5% of calls wait at all.
        assert_eq!(floor(&[cpu(1_000, &[5_000])], &[], 0.99), Duration::ZERO);
    }

    #[test]
    fn one_long_stall_sets_the_floor_at_what_is_left_of_it_for_the_last_one_percent() {
        // A 20 ms stall in 1 s: calls due in its first 10 ms wait more than 10 ms, 1% of all.
        let f = floor(&[cpu(1_000, &[20_000])], &[], 0.99);
        assert!(close(f, 10_000), "{f:?}");
        // p99.9: only the first 1 ms of it counts, so 19 ms.
        let f = floor(&[cpu(1_000, &[20_000])], &[], 0.999);
        assert!(close(f, 19_000), "{f:?}");
    }

    #[test]
    fn stalls_on_both_cpus_add_up() {
        // 15 ms of stall on each CPU: together 3% of calls are delayed; the floor is where the
        // parts longer than x add up to 1%: 2 * (15 - x) = 10 -> x = 10 ms.
        let f = floor(&[cpu(1_000, &[15_000]), cpu(1_000, &[15_000])], &[], 0.99);
        assert!(close(f, 10_000), "{f:?}");
    }

    #[test]
    fn a_busy_cpu_stretches_a_stall_by_the_backlog_it_left() {
        // 5 ms in 1 s is 0.5% alone (no floor), but on a CPU 75% busy the backlog stretches
        // it over 20 ms: 2% of calls are delayed, by 5 ms down to 0, so 1% by more than 2.5 ms.
        let c = [cpu(1_000, &[5_000])];
        assert_eq!(floor(&c, &[0.0], 0.99), Duration::ZERO);
        let f = floor(&c, &[0.75], 0.99);
        assert!(close(f, 2_500), "{f:?}");
        // A load is the load of the CPU at the same index; a missing one counts as idle.
        let two = [cpu(1_000, &[]), cpu(1_000, &[5_000])];
        assert_eq!(floor(&two, &[0.75], 0.99), Duration::ZERO);
        assert!(close(floor(&two, &[0.0, 0.75], 0.99), 2_500));
    }

    #[test]
    fn lost_counts_only_gaps_over_the_bound() {
        let c = cpu(100, &[50, 200, 2_000]);
        assert_eq!(c.lost(Duration::from_micros(100)), (2, 0.022));
        assert_eq!(c.lost(Duration::from_millis(1)), (1, 0.02));
    }

    #[test]
    fn measuring_spins_on_every_cpu_for_the_time_asked() {
        let stalls = measure(&[0], 0.05);
        assert_eq!(stalls.len(), 1);
        let s = &stalls[0];
        assert!(s.spun >= Duration::from_millis(50), "{:?}", s.spun);
        assert!(s.max <= s.spun, "{:?} > {:?}", s.max, s.spun);
        assert!(s.gaps_ns.iter().all(|&g| g >= KEEP_FROM.as_nanos() as u64));
    }

    #[test]
    fn a_duty_cycle_counts_only_the_busy_time() {
        let duty = Duty::parse("0:1000/4000").unwrap();
        let wall = Instant::now();
        let stalls = measure_with_duty(&[0], 0.05, Some(duty));
        let wall = wall.elapsed();
        let s = &stalls[0];
        assert!(s.spun > Duration::ZERO);
        // At least one 4 ms sleep came between busy phases, and it is not counted.
        assert!(s.spun + duty.idle <= wall, "{:?} spun in {wall:?}", s.spun);
    }

    #[test]
    fn a_duty_cycle_is_read_as_cpu_busy_and_idle_microseconds() {
        assert_eq!(
            Duty::parse("1:700/300"),
            Ok(Duty {
                cpu: 1,
                busy: Duration::from_micros(700),
                idle: Duration::from_micros(300)
            })
        );
        for bad in ["1", "1:700", "x:1/1", "1:0/300", "1:7/-3", ""] {
            assert!(Duty::parse(bad).is_err(), "{bad}");
        }
    }
}
