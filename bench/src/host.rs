//! What the benchmark reads from the host: CPU time of processes (from `/proc`), whether a
//! compiler is running, free loopback ports.

use anyhow::{bail, Context, Result};
use std::time::Duration;

/// Programs whose presence means the machine is not quiet enough to measure.
const COMPILERS: &[&str] = &[
    "rustc", "cc1", "cc1plus", "clang", "clang++", "ld", "ld.lld", "lld", "mold", "tsc", "esbuild",
];

/// Refuses (with the names and pids found) while a compiler or linker runs on this machine.
pub fn ensure_quiet() -> Result<()> {
    let busy: Vec<String> = processes()?
        .into_iter()
        .filter(|p| COMPILERS.contains(&p.comm.as_str()))
        .map(|p| format!("{} (pid {})", p.comm, p.pid))
        .collect();
    if !busy.is_empty() {
        bail!(
            "a compiler is running ({}): the figures would measure it too; wait for it to finish",
            busy.join(", ")
        );
    }
    Ok(())
}

/// One process as `/proc/PID/stat` describes it.
#[derive(Debug, Clone)]
struct Proc {
    pid: u32,
    comm: String,
    ppid: u32,
    /// User plus system time, in clock ticks.
    ticks: u64,
}

fn stat(pid: u32) -> Option<Proc> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid …`: comm may hold spaces and parentheses; it ends at the last ')'.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    let rest: Vec<&str> = text.get(close + 2..)?.split(' ').collect();
    // After comm: state(0) ppid(1) … utime(11) stime(12).
    let ppid = rest.get(1)?.parse().ok()?;
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some(Proc {
        pid,
        comm,
        ppid,
        ticks: utime + stime,
    })
}

fn processes() -> Result<Vec<Proc>> {
    Ok(std::fs::read_dir("/proc")
        .context("cannot read /proc")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(stat)
        .collect())
}

/// CPU time used so far by `pid` and, with `children`, by each process it started directly
/// (PostgreSQL's backends are children of the postmaster), process by process.
pub fn cpu_times(pid: u32, children: bool) -> Result<CpuTimes> {
    let procs = if children {
        processes()?
            .into_iter()
            .filter(|p| p.pid == pid || p.ppid == pid)
            .collect()
    } else {
        vec![stat(pid).with_context(|| format!("process {pid} is gone"))?]
    };
    Ok(CpuTimes(
        procs
            .into_iter()
            .map(|p| {
                let ns = on_cpu_ns(p.pid).unwrap_or(p.ticks * 1_000_000_000 / clock_ticks());
                (p.pid, ns)
            })
            .collect(),
    ))
}

/// [`cpu_times`] of several processes together (the replicas of a cluster).
pub fn cpu_times_of(pids: &[u32]) -> Result<CpuTimes> {
    let mut all = std::collections::BTreeMap::new();
    for &pid in pids {
        all.extend(cpu_times(pid, false)?.0);
    }
    Ok(CpuTimes(all))
}

/// Nanoseconds process `pid`'s live threads have spent on a CPU: the scheduler's exact
/// `se.sum_exec_runtime` (milliseconds with six decimals) from `/proc/PID/task/*/sched`, where
/// `stat`'s 10 ms ticks would round away the few milliseconds of each short-lived backend.
fn on_cpu_ns(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0u64;
    for task in tasks.filter_map(Result::ok) {
        let text = std::fs::read_to_string(task.path().join("sched")).ok()?;
        let ms = text.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            (name.trim() == "se.sum_exec_runtime").then(|| value.trim().to_owned())
        })?;
        let (whole, frac) = ms.split_once('.').unwrap_or((&ms, "0"));
        let frac: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
        total += whole.parse::<u64>().ok()? * 1_000_000 + frac.parse::<u64>().ok()?;
    }
    Some(total)
}

/// CPU time used so far by this process (all threads).
pub fn own_cpu_time() -> Result<Duration> {
    Ok(cpu_times(std::process::id(), false)?.since(&CpuTimes::default()))
}

/// CPU nanoseconds used by each of a set of processes at one moment.
#[derive(Debug, Clone, Default)]
pub struct CpuTimes(std::collections::BTreeMap<u32, u64>);

impl CpuTimes {
    /// CPU time used between `earlier` and this sample by the processes alive now. A process
    /// that exited in between is not counted (its time is gone from `/proc`), nor is its time
    /// before `earlier`: sample while the connections being measured are open.
    pub fn since(&self, earlier: &CpuTimes) -> Duration {
        let ns: u64 = self
            .0
            .iter()
            .map(|(pid, t)| t.saturating_sub(earlier.0.get(pid).copied().unwrap_or(0)))
            .sum();
        Duration::from_nanos(ns)
    }
}

/// Clock ticks a second (`getconf CLK_TCK`; 100 on every Linux this runs on).
fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

/// A loopback port free right now (for servers that cannot be given port 0).
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind 127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// This process's real user id (from `/proc/self/status`).
pub fn own_uid() -> Result<u32> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix("Uid:")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .context("no Uid line in /proc/self/status")
}

/// Number of CPUs this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    #[test]
    fn cpu_time_grows_while_this_process_works() {
        let before = own_cpu_time().unwrap();
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let used = own_cpu_time().unwrap() - before;
        assert!(used >= Duration::from_millis(100), "{used:?}");
    }

    #[test]
    fn stat_reads_a_process_name_with_parentheses_and_spaces() {
        let me = stat(std::process::id()).unwrap();
        assert_eq!(me.pid, std::process::id());
        assert!(me.ppid > 0);
    }
}
