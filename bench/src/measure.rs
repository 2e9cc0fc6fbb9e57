//! What a run costs outside the generator's own counters: CPU time of this process and of a
//! server process, and the machine's load average (the machine is shared: every figure says how
//! busy it was).

/// CPU time read at one instant: this process, and a server process if its pid is known.
pub struct Cpu {
    own: f64,
    server: Option<f64>,
}

impl Cpu {
    pub fn sample(server_pid: Option<u32>) -> Cpu {
        Cpu {
            own: own_cpu_secs(),
            server: server_pid.and_then(proc_cpu_secs),
        }
    }
}

/// (generator CPU seconds, server CPU seconds) between two samples.
pub fn cpu_delta(a: &Cpu, b: &Cpu) -> (f64, Option<f64>) {
    (
        b.own - a.own,
        a.server.zip(b.server).map(|(x, y)| (y - x).max(0.0)),
    )
}

fn own_cpu_secs() -> f64 {
    // SAFETY: rusage is plain data; getrusage only writes the struct we pass.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// utime + stime of a process, from /proc/PID/stat.
pub fn proc_cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); utime is field 14, stime field 15.
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks as f64 / hz)
}

/// The 1-minute load average.
pub fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}
