//! Drives one system with many concurrent clients and measures it: entries a second, latency
//! percentiles, CPU used by the server and by this load generator.
//!
//! Two ways to drive it. *Closed*: every client sends its next request as soon as the last is
//! answered, so the system runs flat out — the throughput figure. Its latencies are those of a
//! saturated system: with `c` clients each waiting on one answer, the mean latency is `c` ÷ the
//! throughput (Little's law), so a system half as fast shows latencies twice as long whatever
//! its own delay. *Paced*: requests are due on a fixed schedule (an offered rate), and an
//! answer's latency counts from when its request was due whenever the system held it up (its
//! client still waited on an earlier answer), not from when the client got round to sending it
//! — so a stall is charged to every request it held up (the "coordinated omission" a closed
//! loop hides). That is what a member waits at a given load.

use crate::host;
use anyhow::{anyhow, Result};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Barrier};

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
    /// Every window's answers, in time order ([`windows`]).
    pub windows: Vec<Window>,
    pub server_cpu: Duration,
    pub loadgen_cpu: Duration,
    /// A paced run: the rate offered, entries a second, and how many requests went out late
    /// (their client was still waiting on an earlier answer when they were due: the system
    /// fell behind the schedule).
    pub paced: Option<Paced>,
}

/// How a paced run went against its schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paced {
    /// Entries a second offered.
    pub offered: f64,
    /// Requests that were due while their client still waited on an earlier answer.
    pub late: usize,
    /// Requests sent.
    pub requests: usize,
}

/// When a request is due, from the start of a paced run offering `per_sec` entries a second:
/// entry `first` (the request's first) of the workload, in the workload's order — entries are
/// offered evenly, one every `1/per_sec` seconds, whichever client owns their signer.
pub fn due(first: usize, per_sec: f64) -> Duration {
    Duration::from_secs_f64(first as f64 / per_sec.max(1e-9))
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

/// Every window of [`WINDOW`] that received answers, in time order, from each answer's
/// `(arrival since the start, latency, entries)`: the run's latency over time (where a flush
/// or a stall fell, how long a cold start lasted).
pub fn windows(answers: &[(Duration, Duration, usize)]) -> Vec<Window> {
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
        .filter(|(_, (entries, _))| *entries > 0)
        .map(|(index, (entries, total))| Window {
            from: WINDOW.saturating_mul(u32::try_from(index).unwrap_or(u32::MAX)),
            entries,
            mean: total / u32::try_from(entries).unwrap_or(u32::MAX),
        })
        .collect()
}

/// The window whose answers' mean latency is the highest (of [`windows`]). Windows with fewer
/// than `min_entries` entries are left out (the last, part-empty window of a run would
/// otherwise win by chance).
pub fn slowest_window(
    answers: &[(Duration, Duration, usize)],
    min_entries: usize,
) -> Option<Window> {
    windows(answers)
        .into_iter()
        .filter(|w| w.entries >= min_entries.max(1))
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

/// Runs `plan` (`plan[client][request] = entry indexes`) closed: one connected client each,
/// all released at once, each sending its next request when the last is answered;
/// `server_cpu` samples the server's CPU time, before and after, while the clients'
/// connections are still open.
pub async fn measure<C: Client>(
    system: &str,
    plan: Vec<Vec<Vec<usize>>>,
    clients: Vec<C>,
    server_cpu: impl Fn() -> Result<host::CpuTimes>,
) -> Result<Measured> {
    drive(system, plan, clients, None, server_cpu).await
}

/// Runs `plan` paced: requests due ([`due`]) at `per_sec` entries a second in all. A client
/// still waiting on an answer sends its next request late, and its latency counts from when it
/// was due; any other counts from when it went out.
pub async fn measure_paced<C: Client>(
    system: &str,
    plan: Vec<Vec<Vec<usize>>>,
    clients: Vec<C>,
    per_sec: f64,
    server_cpu: impl Fn() -> Result<host::CpuTimes>,
) -> Result<Measured> {
    if !(per_sec.is_finite() && per_sec > 0.0) {
        return Err(anyhow!(
            "{system}: cannot pace at {per_sec} entries a second"
        ));
    }
    drive(system, plan, clients, Some(per_sec), server_cpu).await
}

async fn drive<C: Client>(
    system: &str,
    plan: Vec<Vec<Vec<usize>>>,
    clients: Vec<C>,
    pace: Option<f64>,
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
    let requests: usize = plan.iter().map(Vec::len).sum();
    // Every client ready, then the clock starts and is handed to them.
    let ready = Arc::new(Barrier::new(n + 1));
    let (clock, _) = watch::channel(None::<Instant>);
    let mut tasks = Vec::with_capacity(n);
    for (mut client, requests) in clients.into_iter().zip(plan) {
        let ready = ready.clone();
        let mut clock = clock.subscribe();
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::with_capacity(requests.len());
            let mut late = 0usize;
            ready.wait().await;
            let t0 = match clock.wait_for(Option::is_some).await.map(|t| *t) {
                Ok(Some(t0)) => t0,
                _ => return (client, Err(anyhow!("the run was called off"))),
            };
            for request in &requests {
                // Closed: from now. Paced: from when the request was due if the system held
                // it up, else from when it went out.
                let t = match pace {
                    None => Instant::now(),
                    Some(rate) => {
                        let due = t0 + due(request.first().copied().unwrap_or_default(), rate);
                        // Late: the previous answer came after this request was due, so the
                        // wait since then counts. On time, the timer waking a little after
                        // `due` is not the system's doing, so it does not.
                        if answers
                            .last()
                            .is_some_and(|(answered, _, _)| *answered > due)
                        {
                            late += 1;
                            due
                        } else {
                            tokio::time::sleep_until(due.into()).await;
                            Instant::now()
                        }
                    }
                };
                if let Err(e) = client.send(request).await {
                    return (client, Err(e));
                }
                answers.push((Instant::now(), t.elapsed(), request.len()));
            }
            (client, Ok((answers, late)))
        }));
    }
    let server_before = server_cpu()?;
    let own_before = host::own_cpu_time()?;
    ready.wait().await;
    let t0 = Instant::now();
    clock.send_replace(Some(t0));
    let mut latencies = Vec::with_capacity(entries);
    let mut answers = Vec::new();
    let mut connected = Vec::with_capacity(n);
    let mut failure = None;
    let mut late = 0;
    for task in tasks {
        let (client, result) = task.await?;
        connected.push(client);
        match result {
            Ok((client_answers, client_late)) => {
                late += client_late;
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
    let spans = (wall.as_nanos() / WINDOW.as_nanos()).max(1);
    let min_entries = usize::try_from(entries as u128 / spans / 10).unwrap_or(usize::MAX);
    let slowest = slowest_window(&answers, min_entries);
    let windows = windows(&answers);
    Ok(Measured {
        system: system.to_owned(),
        entries,
        clients: n,
        per_request,
        wall,
        latencies,
        slowest,
        windows,
        server_cpu,
        loadgen_cpu,
        paced: pace.map(|offered| Paced {
            offered,
            late,
            requests,
        }),
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
        // The whole series, in time order, every window that had an answer.
        let all = windows(&answers);
        let from: Vec<Duration> = all.iter().map(|w| w.from).collect();
        assert_eq!(from, [ms(0), ms(250), ms(500), ms(750)]);
        assert_eq!((all[0].entries, all[0].mean), (20, ms(20)));
        assert_eq!(all[1], w);
        assert_eq!((all[3].entries, all[3].mean), (1, ms(200)));
    }

    /// Answers in 1 ms, except the request holding entry `stall`, which takes 110 ms.
    struct Stalling {
        stall: usize,
    }

    impl Client for Stalling {
        async fn send(&mut self, entries: &[usize]) -> Result<()> {
            let took = if entries.contains(&self.stall) {
                110
            } else {
                1
            };
            tokio::time::sleep(ms(took)).await;
            Ok(())
        }
    }

    fn no_server() -> Result<host::CpuTimes> {
        host::cpu_times(std::process::id(), false)
    }

    #[tokio::test]
    async fn paced_a_stall_is_charged_to_every_request_it_held_up_closed_to_one() {
        // One client, ten requests; paced at 50 a second they are due every 20 ms. Request 2
        // (due at 40 ms) is answered at ~150 ms, so requests 3–7 (due at 60…140 ms) go out
        // late and wait ~90, 70, 50, 30, 10 ms before they are even sent.
        let plan = || vec![(0..10).map(|i| vec![i]).collect::<Vec<_>>()];
        let paced = measure_paced(
            "paced",
            plan(),
            vec![Stalling { stall: 2 }],
            50.0,
            no_server,
        )
        .await
        .unwrap();
        let p = paced.paced.unwrap();
        assert_eq!((p.requests, p.offered), (10, 50.0));
        assert!(p.late >= 5, "{p:?}");
        // The second-slowest answer is request 3's: sent ~90 ms after it was due.
        assert!(paced.latencies[8] >= ms(80), "{:?}", paced.latencies);
        // Paced, the run lasts its schedule: the last request is due at 180 ms.
        assert!(paced.wall >= ms(180), "{:?}", paced.wall);

        // Closed, the stall shows once: every other request is timed from when it was sent.
        let closed = measure("closed", plan(), vec![Stalling { stall: 2 }], no_server)
            .await
            .unwrap();
        assert_eq!(closed.paced, None);
        assert!(closed.latencies[9] >= ms(110), "{:?}", closed.latencies);
        assert!(closed.latencies[8] < ms(50), "{:?}", closed.latencies);
    }

    #[test]
    fn paced_entries_are_due_evenly_in_the_workloads_order() {
        // 100 entries a second: one due every 10 ms, whichever client sends it.
        assert_eq!(due(0, 100.0), ms(0));
        assert_eq!(due(1, 100.0), ms(10));
        assert_eq!(due(14, 100.0), ms(140));
    }
}
