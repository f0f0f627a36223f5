//! Drives one system with many concurrent clients and measures it: entries a second, latency
//! percentiles, CPU used by the server and by this load generator.

use crate::host;
use anyhow::{anyhow, Result};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Barrier;

/// A connected client of the system under test. `send` submits the entries with these indexes
/// in one request (one entry, or a bulk) and returns once the system acknowledges all of them
/// durably; any refusal is an error.
pub trait Client: Send + 'static {
    fn send(&mut self, entries: &[usize]) -> impl Future<Output = Result<()>> + Send;
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Measured {
    pub system: String,
    pub entries: usize,
    pub clients: usize,
    pub per_request: usize,
    pub wall: Duration,
    /// Every entry's latency (its request's), sorted.
    pub latencies: Vec<Duration>,
    /// The window of [`WINDOW`] whose answers waited longest on average (a stall — a flush,
    /// an election — shows here where a percentile blurs it).
    pub slowest: Option<Window>,
    pub server_cpu: Duration,
    pub loadgen_cpu: Duration,
}

/// Width of the windows answers are grouped in by when they arrived.
pub const WINDOW: Duration = Duration::from_millis(250);

/// The answers that arrived within one window of [`WINDOW`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// When the window opened, from the start of the run.
    pub from: Duration,
    /// Entries answered in it.
    pub entries: usize,
    /// Their mean latency.
    pub mean: Duration,
}

/// The window whose answers' mean latency is the highest, from each answer's
/// `(arrival since the start, latency, entries)`. Windows with fewer than `min_entries` entries
/// are left out (the last, part-empty window of a run would otherwise win by chance).
pub fn slowest_window(
    answers: &[(Duration, Duration, usize)],
    min_entries: usize,
) -> Option<Window> {
    let mut windows: std::collections::BTreeMap<u128, (usize, Duration)> =
        std::collections::BTreeMap::new();
    for (arrived, latency, entries) in answers {
        let w = windows
            .entry(arrived.as_nanos() / WINDOW.as_nanos())
            .or_default();
        w.0 += entries;
        w.1 += latency.saturating_mul(u32::try_from(*entries).unwrap_or(u32::MAX));
    }
    windows
        .into_iter()
        .filter(|(_, (entries, _))| *entries >= min_entries.max(1))
        .map(|(index, (entries, total))| Window {
            from: WINDOW.saturating_mul(u32::try_from(index).unwrap_or(u32::MAX)),
            entries,
            mean: total / u32::try_from(entries).unwrap_or(u32::MAX),
        })
        .max_by_key(|w| w.mean)
}

impl Measured {
    pub fn per_sec(&self) -> f64 {
        self.entries as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// The `q`-quantile latency (nearest rank).
    pub fn quantile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((q * self.latencies.len() as f64).ceil() as usize).max(1);
        self.latencies
            .get(rank.min(self.latencies.len()) - 1)
            .copied()
            .unwrap_or_default()
    }

    /// Cores the server kept busy on average.
    pub fn server_cores(&self) -> f64 {
        self.server_cpu.as_secs_f64() / self.wall.as_secs_f64().max(1e-9)
    }

    /// Cores this load generator kept busy on average.
    pub fn loadgen_cores(&self) -> f64 {
        self.loadgen_cpu.as_secs_f64() / self.wall.as_secs_f64().max(1e-9)
    }
}

/// Runs `plan` (`plan[client][request] = entry indexes`) with one connected client each, all
/// released at once; `server_cpu` samples the server's CPU time, before and after, while the
/// clients' connections are still open.
pub async fn measure<C: Client>(
    system: &str,
    plan: Vec<Vec<Vec<usize>>>,
    clients: Vec<C>,
    server_cpu: impl Fn() -> Result<host::CpuTimes>,
) -> Result<Measured> {
    if clients.len() != plan.len() {
        return Err(anyhow!(
            "{} clients for a plan of {}",
            clients.len(),
            plan.len()
        ));
    }
    let entries = plan.iter().flatten().map(Vec::len).sum();
    let per_request = plan
        .iter()
        .flatten()
        .map(Vec::len)
        .max()
        .unwrap_or_default();
    let n = clients.len();
    let start = Arc::new(Barrier::new(n + 1));
    let mut tasks = Vec::with_capacity(n);
    for (mut client, requests) in clients.into_iter().zip(plan) {
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::with_capacity(requests.len());
            start.wait().await;
            for request in &requests {
                let t = Instant::now();
                if let Err(e) = client.send(request).await {
                    return (client, Err(e));
                }
                answers.push((Instant::now(), t.elapsed(), request.len()));
            }
            (client, Ok(answers))
        }));
    }
    let server_before = server_cpu()?;
    let own_before = host::own_cpu_time()?;
    start.wait().await;
    let t0 = Instant::now();
    let mut latencies = Vec::with_capacity(entries);
    let mut answers = Vec::new();
    let mut connected = Vec::with_capacity(n);
    let mut failure = None;
    for task in tasks {
        let (client, result) = task.await?;
        connected.push(client);
        match result {
            Ok(client_answers) => {
                for (arrived, took, count) in client_answers {
                    latencies.extend(std::iter::repeat_n(took, count));
                    answers.push((arrived.saturating_duration_since(t0), took, count));
                }
            }
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    let wall = t0.elapsed();
    let server_cpu = server_cpu()?.since(&server_before);
    let loadgen_cpu = host::own_cpu_time()?.saturating_sub(own_before);
    drop(connected);
    if let Some(e) = failure {
        return Err(e.context(format!("{system}: a client failed")));
    }
    latencies.sort_unstable();
    // A window needs a tenth of the run's mean answers per window to count.
    let windows = (wall.as_nanos() / WINDOW.as_nanos()).max(1);
    let min_entries = usize::try_from(entries as u128 / windows / 10).unwrap_or(usize::MAX);
    let slowest = slowest_window(&answers, min_entries);
    Ok(Measured {
        system: system.to_owned(),
        entries,
        clients: n,
        per_request,
        wall,
        latencies,
        slowest,
        server_cpu,
        loadgen_cpu,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_slowest_window_is_the_one_whose_answers_waited_longest_on_average() {
        let answers = [
            (ms(10), ms(20), 10),
            (ms(200), ms(20), 10),
            // 250–500 ms: a stall — 4 entries at 90 ms, 4 at 30: mean 60.
            (ms(300), ms(90), 4),
            (ms(400), ms(30), 4),
            (ms(600), ms(25), 10),
            // The run's tail: one answer alone, slower still, too few to count.
            (ms(800), ms(200), 1),
        ];
        let w = slowest_window(&answers, 5).unwrap();
        assert_eq!(
            w,
            Window {
                from: ms(250),
                entries: 8,
                mean: ms(60)
            }
        );
        assert_eq!(slowest_window(&answers, 1).unwrap().from, ms(750));
        assert_eq!(slowest_window(&[], 1), None);
    }
}
