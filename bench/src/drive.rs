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
    pub server_cpu: Duration,
    pub loadgen_cpu: Duration,
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
            let mut latencies = Vec::new();
            start.wait().await;
            for request in &requests {
                let t = Instant::now();
                if let Err(e) = client.send(request).await {
                    return (client, Err(e));
                }
                let took = t.elapsed();
                latencies.extend(std::iter::repeat_n(took, request.len()));
            }
            (client, Ok(latencies))
        }));
    }
    let server_before = server_cpu()?;
    let own_before = host::own_cpu_time()?;
    start.wait().await;
    let t0 = Instant::now();
    let mut latencies = Vec::with_capacity(entries);
    let mut connected = Vec::with_capacity(n);
    let mut failure = None;
    for task in tasks {
        let (client, result) = task.await?;
        connected.push(client);
        match result {
            Ok(l) => latencies.extend(l),
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
    Ok(Measured {
        system: system.to_owned(),
        entries,
        clients: n,
        per_request,
        wall,
        latencies,
        server_cpu,
        loadgen_cpu,
    })
}
