//! `coop-bench`: one fixed, pre-signed workload of `coop.attest` entries, driven at the same
//! concurrency against coopledger over JSON-RPC (one entry a request, then bulk requests),
//! PostgreSQL (an app verifying each signature, synchronous commit) and anvil, back to back in
//! one run; prints entries/s, latency percentiles, CPU used and the ratios between them.
//!
//! Run it from `scripts/bench.sh`, which builds the release binaries first. It refuses to run
//! while a compiler runs (`--smoke` skips that check for a quick functional pass: its figures
//! are not measurements).

#![forbid(unsafe_code)]

mod anvil;
mod coop;
mod drive;
mod host;
mod http;
mod postgres;
mod report;
mod workload;

use anyhow::{Context, Result};
use clap::Parser;
use drive::Measured;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use workload::Workload;

#[derive(Debug, Parser)]
#[command(
    name = "coop-bench",
    about = "coopledger against PostgreSQL and anvil, one workload, one run"
)]
struct Args {
    /// Entries in the workload (pre-signed before any clock starts).
    #[arg(long, default_value_t = 28_000)]
    entries: usize,
    /// Members signing them (each client owns whole members).
    #[arg(long, default_value_t = 700)]
    members: usize,
    /// Concurrent clients, each with one connection, sending one request after another.
    #[arg(long, default_value_t = 96)]
    clients: usize,
    /// Entries per request in the bulk runs.
    #[arg(long, default_value_t = 50)]
    bulk: usize,
    /// Entries for the one-client runs (coopledger and PostgreSQL alone, one at a time).
    #[arg(long, default_value_t = 3_000)]
    alone: usize,
    /// Entries sent to anvil (the first of the workload; anvil is ~100× slower).
    #[arg(long, default_value_t = 2_000)]
    anvil_entries: usize,
    /// Folder for the data of the systems under test (on the disk being measured; a tmpfs
    /// would make fsync free). Default: a fresh folder under the system's temp dir.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Which systems to run (all by default; a subset is for profiling one of them).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [System::Coop, System::Postgres, System::Anvil, System::Cluster])]
    systems: Vec<System>,
    /// Keep the data folders of the systems under test (their path is printed) for inspection.
    #[arg(long)]
    keep: bool,
    /// Paced runs after the closed ones: requests due on a fixed schedule, at these fractions
    /// of one node's closed-loop rate in this run, on a fresh node and on three fresh replicas
    /// (the whole workload each); a request the system held up is timed from when it was due.
    /// `--paced none` for none.
    #[arg(long, value_delimiter = ',', default_value = "0.25,0.5", value_parser = parse_fraction)]
    paced: Vec<Option<f64>>,
    /// The rate, entries/s, `--paced` takes fractions of, instead of one node's closed-loop
    /// rate in this run (to pace a subset of the systems, e.g. three replicas alone to profile
    /// them).
    #[arg(long)]
    pace_base: Option<f64>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// A quick functional pass: skips the quiet-machine check; the figures are not measurements.
    #[arg(long)]
    smoke: bool,
}

/// A fraction of one node's rate in (0, 1], or `none`.
fn parse_fraction(text: &str) -> Result<Option<f64>, String> {
    if text == "none" {
        return Ok(None);
    }
    match text.parse::<f64>() {
        Ok(f) if f > 0.0 && f <= 1.0 => Ok(Some(f)),
        _ => Err(format!(
            "`{text}` is not a fraction of one node's rate in (0, 1] (nor `none`)"
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum System {
    Coop,
    Postgres,
    Anvil,
    /// coopledger on three replicas (Raft), against one node (`Coop`).
    Cluster,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(e) = run(args).await {
        eprintln!("coop-bench: {e:#}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<()> {
    if !args.smoke {
        host::ensure_quiet()?;
    }
    let root = match &args.dir {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    let t = Instant::now();
    let w = Arc::new(Workload::sign(
        args.members,
        args.entries,
        coopledger_ledger::log::now_ms(),
    )?);
    let avg = w.entries.iter().map(|e| e.json.len()).sum::<usize>() / w.entries.len().max(1);
    eprintln!(
        "signed {} entries by {} members ({avg} bytes each on average) in {:.1} s",
        w.entries.len(),
        w.members.len(),
        t.elapsed().as_secs_f64()
    );
    let ceiling = report::signature_ceiling(&w)?;
    eprintln!(
        "signature checks on all {} cores: {ceiling:.0}/s",
        host::cores()
    );

    let mut runs: Vec<Measured> = Vec::new();
    let all = args.entries;

    // coopledger: a fresh node for each run (the entries' sequence numbers are used up).
    let coop_runs = if args.systems.contains(&System::Coop) {
        vec![
            (report::COOP, all, args.clients, 1),
            (report::COOP_BULK, all, args.clients, args.bulk),
            (report::COOP_ALONE, args.alone, 1, 1),
        ]
    } else {
        Vec::new()
    };
    let mut disk_per_entry = None;
    for (n, (label, take, clients, per)) in coop_runs.into_iter().enumerate() {
        let node = coop::CoopNode::start(&root.path().join(format!("coop-{n}")), &w, clients)?;
        let plan = w.plan(take, clients, per);
        let conns = (0..plan.len())
            .map(|_| coop::CoopClient::connect(&node.url, w.clone()))
            .collect::<Result<Vec<_>>>()?;
        let pid = node.pid();
        let m = drive::measure(label, plan, conns, || host::cpu_times(pid, false)).await?;
        eprintln!("{}", report::line(&m));
        eprintln!("  the node's account: {}", node.account().await?);
        if n == 0 {
            // Bytes on disk per entry against the signed bytes themselves.
            let raw: usize = w.entries.iter().take(take).map(|e| e.json.len()).sum();
            let (stopped, disk) = node.stop_and_measure()?;
            disk_per_entry = Some((disk, raw, take));
            eprintln!(
                "  on disk: {stopped} bytes after a clean stop (write-ahead log), {disk} after a \
                 restart folded it into tables, for {take} entries of {raw} signed bytes: \
                 {:.2} bytes per signed byte",
                disk as f64 / raw.max(1) as f64
            );
        }
        runs.push(m);
    }

    let mut replica_cpu_us = None;
    if args.systems.contains(&System::Cluster) {
        // The same workload as the first single-node run, on three replicas: every entry is
        // acknowledged once a majority holds it.
        let cluster = coop::CoopCluster::start(&root.path().join("cluster"), &w, args.clients)?;
        let leader = cluster.leader()?;
        let plan = w.plan(all, args.clients, 1);
        let conns = (0..plan.len())
            .map(|_| coop::CoopClient::connect(&leader.url, w.clone()))
            .collect::<Result<Vec<_>>>()?;
        // Server cores: the three replicas together (each applies every batch).
        let pids: Vec<u32> = cluster.nodes.iter().map(coop::CoopNode::pid).collect();
        let each_before = pids
            .iter()
            .map(|p| host::cpu_times(*p, false))
            .collect::<Result<Vec<_>>>()?;
        let m = drive::measure(report::COOP_REPLICATED, plan, conns, || {
            host::cpu_times_of(&pids)
        })
        .await?;
        // Each replica's CPU per entry (the leader first): what one replica costs when it has
        // a machine of its own.
        let mut each = Vec::new();
        for (pid, before) in pids.iter().zip(&each_before) {
            let used = host::cpu_times(*pid, false)?.since(before);
            each.push(used.as_secs_f64() * 1e6 / m.entries.max(1) as f64);
        }
        eprintln!("{}\n  (server: all three replicas)", report::line(&m));
        eprintln!("  the leader's account: {}", leader.account().await?);
        if let Some((l, f)) = each.split_first() {
            eprintln!(
                "  CPU per entry: leader {l:.0} us, followers {} us",
                f.iter()
                    .map(|u| format!("{u:.0}"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            );
            replica_cpu_us = Some((*l, f.to_vec()));
        }
        runs.push(m);
    }

    run_paced(&args, &w, root.path(), &mut runs).await?;

    if args.systems.contains(&System::Postgres) {
        run_postgres(&args, &w, root.path(), &mut runs).await?;
    }
    if args.systems.contains(&System::Anvil) {
        run_anvil(&args, &w, &mut runs).await?;
    }

    let summary = report::Summary {
        smoke: args.smoke,
        cores: host::cores(),
        entry_bytes: avg,
        members: w.members.len(),
        signature_ceiling: ceiling,
        disk: disk_per_entry,
        runs,
        replica_cpu_us,
    };
    println!("{}", summary.markdown());
    if args.keep {
        eprintln!("data folders kept in {}", root.keep().display());
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&summary.json())?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// The paced runs: for each fraction of `--paced`, one node then three replicas, each fresh,
/// offered that fraction of one node's closed-loop rate over the whole workload.
async fn run_paced(
    args: &Args,
    w: &Arc<Workload>,
    root: &std::path::Path,
    runs: &mut Vec<Measured>,
) -> Result<()> {
    let fractions: Vec<f64> = args.paced.iter().flatten().copied().collect();
    if fractions.is_empty() {
        return Ok(());
    }
    let closed = runs
        .iter()
        .find(|m| m.system == report::COOP)
        .map(Measured::per_sec);
    let Some(base) = args.pace_base.or(closed) else {
        eprintln!(
            "paced runs skipped: they are paced by one node's closed-loop rate (--systems coop) \
             or --pace-base"
        );
        return Ok(());
    };
    if !(base.is_finite() && base > 0.0) {
        anyhow::bail!("--pace-base: {base} is not a rate in entries a second");
    }
    let all = args.entries;
    for (n, fraction) in fractions.into_iter().enumerate() {
        let rate = base * fraction;
        if args.systems.contains(&System::Coop) {
            let node = coop::CoopNode::start(&root.join(format!("paced-{n}")), w, args.clients)?;
            let plan = w.plan(all, args.clients, 1);
            let conns = (0..plan.len())
                .map(|_| coop::CoopClient::connect(&node.url, w.clone()))
                .collect::<Result<Vec<_>>>()?;
            let pid = node.pid();
            let label = report::paced(report::COOP, fraction);
            let m = drive::measure_paced(&label, plan, conns, rate, || host::cpu_times(pid, false))
                .await?;
            eprintln!("{}", report::line(&m));
            eprintln!("  the node's account: {}", node.account().await?);
            runs.push(m);
        }
        if args.systems.contains(&System::Cluster) {
            let cluster = coop::CoopCluster::start(
                &root.join(format!("paced-cluster-{n}")),
                w,
                args.clients,
            )?;
            let leader = cluster.leader()?;
            let plan = w.plan(all, args.clients, 1);
            let conns = (0..plan.len())
                .map(|_| coop::CoopClient::connect(&leader.url, w.clone()))
                .collect::<Result<Vec<_>>>()?;
            let pids: Vec<u32> = cluster.nodes.iter().map(coop::CoopNode::pid).collect();
            let label = report::paced(report::COOP_REPLICATED, fraction);
            let m = drive::measure_paced(&label, plan, conns, rate, || host::cpu_times_of(&pids))
                .await?;
            eprintln!("{}\n  (server: all three replicas)", report::line(&m));
            eprintln!("  the leader's account: {}", leader.account().await?);
            runs.push(m);
        }
    }
    Ok(())
}

/// PostgreSQL: one cluster, emptied between runs.
async fn run_postgres(
    args: &Args,
    w: &Arc<Workload>,
    root: &std::path::Path,
    runs: &mut Vec<Measured>,
) -> Result<()> {
    let all = args.entries;
    let pg_dir = root.join("postgres");
    std::fs::create_dir_all(&pg_dir)?;
    let pg = postgres::Postgres::start(&pg_dir, args.clients)?;
    pg.create_schema().await?;
    eprintln!("{}", pg.version);
    for (label, mode, table, take, clients, per) in [
        (
            report::PG,
            postgres::Mode::Single,
            "audit",
            all,
            args.clients,
            1,
        ),
        (
            report::PG_CHAINED,
            postgres::Mode::Chained,
            "audit_chained",
            all,
            args.clients,
            1,
        ),
        (
            report::PG_BULK,
            postgres::Mode::Bulk,
            "audit",
            all,
            args.clients,
            args.bulk,
        ),
        (
            report::PG_ALONE,
            postgres::Mode::Single,
            "audit",
            args.alone,
            1,
            1,
        ),
    ] {
        postgres::reset(&pg).await?;
        let plan = w.plan(take, clients, per);
        let mut conns = Vec::with_capacity(plan.len());
        for _ in 0..plan.len() {
            conns.push(postgres::PgClient::connect(&pg, w.clone(), mode).await?);
        }
        let pid = pg.pid();
        let m = drive::measure(label, plan, conns, || host::cpu_times(pid, true)).await?;
        let stored = postgres::count(&pg, table).await?;
        if stored != m.entries as u64 {
            anyhow::bail!("{label}: {stored} rows stored for {} entries", m.entries);
        }
        eprintln!("{}", report::line(&m));
        runs.push(m);
    }
    drop(pg);

    Ok(())
}

/// anvil: the first `--anvil-entries` entries.
async fn run_anvil(args: &Args, w: &Arc<Workload>, runs: &mut Vec<Measured>) -> Result<()> {
    let all = args.entries;
    let chain = anvil::Anvil::start().await?;
    eprintln!("{}", chain.version);
    let take = args.anvil_entries.min(all);
    let plan = w.plan(take, args.clients, 1);
    let mut conns = Vec::with_capacity(plan.len());
    for (n, requests) in plan.iter().enumerate() {
        let order: Vec<usize> = requests.iter().flatten().copied().collect();
        conns.push(anvil::AnvilClient::prepare(&chain, n, w, &order).await?);
    }
    let pid = chain.pid();
    let m = drive::measure(report::ANVIL, plan, conns, || host::cpu_times(pid, false)).await?;
    eprintln!("{}", report::line(&m));
    runs.push(m);
    drop(chain);
    Ok(())
}
