//! Server processes a bench starts: spawned pinned to a CPU, ready once they print their
//! "listening on" line, stopped with SIGTERM when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running server process.
pub struct ServerProc {
    child: Child,
    pub addr: SocketAddr,
    pub pid: u32,
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) of the child we started (its pid stays ours until we wait).
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// A port free on 127.0.0.1 right now (for peers that take a port, not an address).
pub fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// Reads the ready line: `listening on ADDR pid PID ...` (octo) or `NAME pid PID listening on
/// PORT ...` (the peers).
fn parse_ready(line: &str) -> Option<(SocketAddr, u32)> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let after = |w: &str| {
        words
            .iter()
            .position(|x| *x == w)
            .and_then(|i| words.get(i + 1))
    };
    let pid = after("pid")?.parse().ok()?;
    let at = after("on")?;
    let addr = match at.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => SocketAddr::from(([127, 0, 0, 1], at.parse::<u16>().ok()?)),
    };
    Some((addr, pid))
}

/// Starts `program args` pinned to `cpu` (taskset) and waits up to `ready_within` for its ready
/// line (peers may build themselves first).
pub fn start(
    name: &str,
    cpu: usize,
    program: &str,
    args: &[String],
    ready_within: Duration,
) -> Result<ServerProc, String> {
    let mut child = Command::new("taskset")
        .arg("-c")
        .arg(cpu.to_string())
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("start {name}: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if line.contains("listening on") {
                let _ = tx.send(line);
                break;
            }
        }
        // Keep draining so the server never blocks on a full pipe.
        for _ in lines {}
    });
    let guard = |child: &mut Child| {
        // SAFETY: kill(2) of our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let _ = child.wait();
    };
    let line = match rx.recv_timeout(ready_within) {
        Ok(l) => l,
        Err(_) => {
            guard(&mut child);
            return Err(format!(
                "{name} did not report ready within {ready_within:?}"
            ));
        }
    };
    let Some((addr, pid)) = parse_ready(&line) else {
        guard(&mut child);
        return Err(format!("{name}: unexpected ready line {line:?}"));
    };
    Ok(ServerProc { child, addr, pid })
}

#[cfg(test)]
mod tests {
    use super::parse_ready;

    #[test]
    fn ready_line_of_octo_names_address_and_pid() {
        let (a, p) = parse_ready("listening on 127.0.0.1:4242 pid 77 (octo echo, defer)").unwrap();
        assert_eq!((a.port(), p), (4242, 77));
    }

    #[test]
    fn ready_line_of_a_peer_names_port_and_pid() {
        let (a, p) = parse_ready("netty-octo-echo pid 9 listening on 5151 (epoll)").unwrap();
        assert_eq!((a.to_string(), p), ("127.0.0.1:5151".to_string(), 9));
    }
}
