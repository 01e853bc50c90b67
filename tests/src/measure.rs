//! What a child process cost — wall time, CPU time, peak resident memory — for benchmarks
//! that compare our binaries with reference tools run the same way in the same session.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// What a child process cost.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    /// Wall time from spawn to exit.
    pub wall: Duration,
    /// User + system CPU seconds.
    pub cpu: f64,
    /// Peak RSS in KiB.
    pub peak_kib: u64,
    /// Exited with status 0.
    pub ok: bool,
}

impl Cost {
    /// Peak RSS in MiB.
    pub fn peak_mib(&self) -> f64 {
        self.peak_kib as f64 / 1024.0
    }
}

/// Spawns `command` and waits for it; see [`wait_measured`].
pub fn run_measured(command: &mut Command) -> std::io::Result<Cost> {
    let started = Instant::now();
    let child = command.spawn()?;
    wait_measured(child, started)
}

/// Waits for `child`. Peak RSS is its `VmHWM`, sampled every 2 ms until it exits (`wait4`'s
/// `ru_maxrss` would report the parent's RSS, as the child is spawned with `CLONE_VM`); CPU time
/// comes from `wait4`.
pub fn wait_measured(child: Child, started: Instant) -> std::io::Result<Cost> {
    let pid = child.id() as libc::pid_t;
    let status_file = format!("/proc/{pid}/status");
    let mut peak = 0u64;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            if let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kib);
            }
        }
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `pid` is our unreaped child; the pointers are valid for the call.
        let rc = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if rc == pid {
            std::mem::forget(child); // reaped here
            let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            return Ok(Cost {
                wall: started.elapsed(),
                cpu: secs(usage.ru_utime) + secs(usage.ru_stime),
                peak_kib: peak,
                ok: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            });
        }
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
