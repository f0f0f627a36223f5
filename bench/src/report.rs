//! The figures: the signature-check ceiling, one line per run, the table and the ratios.

use crate::drive::Measured;
use crate::workload::Workload;
use anyhow::{anyhow, Result};
use coopledger_ledger::entry::admit;
use coopledger_ledger::Envelope;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub const COOP: &str = "coopledger ledger_submit";
pub const COOP_BULK: &str = "coopledger ledger_submitBatch";
pub const COOP_ALONE: &str = "coopledger ledger_submit, one client";
pub const COOP_REPLICATED: &str = "coopledger ledger_submit, 3 replicas";
pub const PG: &str = "PostgreSQL, INSERT per entry";
pub const PG_CHAINED: &str = "PostgreSQL, prev-hash chain";
pub const PG_BULK: &str = "PostgreSQL, bulk INSERT";
pub const PG_ALONE: &str = "PostgreSQL, INSERT per entry, one client";
pub const ANVIL: &str = "anvil, entry as calldata, automine";

/// The label of `system` paced at `fraction` of one node's closed-loop rate.
pub fn paced(system: &str, fraction: f64) -> String {
    format!("{system}, paced at {:.0}%", fraction * 100.0)
}

/// Signatures a second the ledger's own batched check does on all cores over the whole workload
/// (parsing excluded): what no ingest path that checks every signature can beat here.
pub fn signature_ceiling(w: &Workload) -> Result<f64> {
    let envelopes = w
        .entries
        .iter()
        .map(|e| {
            let v: Value = serde_json::from_str(&e.json)?;
            Envelope::from_value(&v).map_err(|r| anyhow!("{r}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let n = envelopes.len();
    let t = Instant::now();
    let verdicts = admit(envelopes);
    let took = t.elapsed();
    if verdicts.iter().any(Result::is_err) {
        return Err(anyhow!("the workload holds a bad signature"));
    }
    Ok(n as f64 / took.as_secs_f64().max(1e-9))
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// A run's figures, formatted, in the table's column order.
fn cells(m: &Measured) -> [String; 9] {
    [
        m.system.clone(),
        m.entries.to_string(),
        m.clients.to_string(),
        m.per_request.to_string(),
        format!("{:.0}", m.per_sec()),
        ms(m.quantile(0.50)),
        ms(m.quantile(0.99)),
        format!("{:.2}", m.server_cores()),
        format!("{:.2}", m.loadgen_cores()),
    ]
}

/// One run, one line (printed as each run ends), then its tail: p99.9, the slowest answer and
/// the quarter-second whose answers waited longest.
pub fn line(m: &Measured) -> String {
    let [system, entries, clients, per, rate, p50, p99, server, loadgen] = cells(m);
    let mut out = format!(
        "{system}: {entries} entries, {clients} clients, {per} a request: {rate} entries/s, \
         p50 {p50}, p99 {p99}, server {server} cores, load generator {loadgen} cores\n  \
         tail: p99.9 {}, max {}",
        ms(m.quantile(0.999)),
        ms(m.quantile(1.0)),
    );
    if let Some(w) = &m.slowest {
        out.push_str(&format!(
            "; slowest {} ms of answers from {:.2} s: {} entries, mean {}",
            crate::drive::WINDOW.as_millis(),
            w.from.as_secs_f64(),
            w.entries,
            ms(w.mean)
        ));
    }
    if let Some(p) = &m.paced {
        out.push_str(&format!(
            "\n  paced: {:.0} entries/s offered, {} of {} requests due while their client \
             still waited on an earlier answer (their latency counts from when they were due)",
            p.offered, p.late, p.requests,
        ));
    }
    out
}

/// Everything one invocation measured.
#[derive(Debug)]
pub struct Summary {
    pub smoke: bool,
    pub cores: usize,
    pub entry_bytes: usize,
    pub members: usize,
    pub signature_ceiling: f64,
    /// coopledger's data folder after the single-submit run: (bytes on disk, signed bytes of
    /// the entries, entries).
    pub disk: Option<(u64, usize, usize)>,
    pub runs: Vec<Measured>,
    /// The three-replica run's CPU per entry, µs: the leader's, then each follower's.
    pub replica_cpu_us: Option<(f64, Vec<f64>)>,
}

impl Summary {
    fn run(&self, system: &str) -> Option<&Measured> {
        self.runs.iter().find(|m| m.system == system)
    }

    fn ratio(&self, a: &str, b: &str) -> Option<f64> {
        Some(self.run(a)?.per_sec() / self.run(b)?.per_sec())
    }

    /// A run's server CPU per entry, µs.
    pub fn cpu_per_entry_us(m: &Measured) -> f64 {
        m.server_cpu.as_secs_f64() * 1e6 / m.entries.max(1) as f64
    }

    /// `(what, value)` pairs: coopledger ÷ each peer in entries/s, and the bulk path against the
    /// signature ceiling.
    pub fn ratios(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        for (a, b) in [
            (COOP, PG),
            (COOP_BULK, PG),
            (COOP_BULK, PG_BULK),
            (COOP, PG_CHAINED),
            (COOP, ANVIL),
            (COOP_ALONE, PG_ALONE),
        ] {
            if let Some(r) = self.ratio(a, b) {
                out.push((format!("{a} ÷ {b}"), r));
            }
        }
        // Replication's goals (issue 17): throughput ≥ 0.5 of one node, p99 ≤ 2× one node's.
        if let Some(r) = self.ratio(COOP_REPLICATED, COOP) {
            out.push((format!("{COOP_REPLICATED} ÷ {COOP}"), r));
        }
        if let (Some(a), Some(b)) = (self.run(COOP_REPLICATED), self.run(COOP)) {
            out.push((
                format!("p99 of {COOP_REPLICATED} ÷ p99 of {COOP}"),
                a.quantile(0.99).as_secs_f64() / b.quantile(0.99).as_secs_f64().max(1e-9),
            ));
        }
        // The p99 at the same offered load: each paced run of three replicas against one
        // node's at that pace (at a pace past the replicas' capacity their queue grows, and
        // the ratio says so).
        let paced_runs = |system: &str| {
            let prefix = format!("{system}, paced");
            self.runs.iter().filter_map(move |m| {
                Some((m, m.paced?.offered)).filter(|_| m.system.starts_with(&prefix))
            })
        };
        for (a, offered) in paced_runs(COOP_REPLICATED) {
            if let Some((b, _)) = paced_runs(COOP).find(|(_, o)| *o == offered) {
                out.push((
                    format!("p99 of {} ÷ p99 of {}", a.system, b.system),
                    a.quantile(0.99).as_secs_f64() / b.quantile(0.99).as_secs_f64().max(1e-9),
                ));
            }
        }
        // What bounds replicas on machines of their own: the leader's CPU per entry against
        // one node's (here all three share the cores).
        if let (Some((leader, _)), Some(one)) = (&self.replica_cpu_us, self.run(COOP)) {
            out.push((
                format!("{COOP_REPLICATED} leader's CPU per entry ÷ {COOP}'s"),
                leader / Summary::cpu_per_entry_us(one).max(1e-9),
            ));
        }
        if let Some(bulk) = self.run(COOP_BULK) {
            out.push((
                format!("{COOP_BULK} ÷ signature ceiling"),
                bulk.per_sec() / self.signature_ceiling.max(1e-9),
            ));
        }
        out
    }

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        if self.smoke {
            s.push_str("**--smoke: a functional pass, not a measurement.**\n\n");
        }
        s.push_str(&format!(
            "{} cores; `coop.attest` entries of {} bytes on average by {} members; \
             signature-check ceiling (batched, all cores, this run): {:.0}/s\n\n",
            self.cores, self.entry_bytes, self.members, self.signature_ceiling
        ));
        s.push_str(
            "| system | entries | clients | per request | entries/s | p50 | p99 | server cores | load generator cores |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for m in &self.runs {
            s.push_str(&format!("| {} |\n", cells(m).join(" | ")));
        }
        s.push('\n');
        for (what, r) in self.ratios() {
            s.push_str(&format!("- {what}: {r:.2}×\n"));
        }
        if let Some((disk, raw, entries)) = self.disk {
            s.push_str(&format!(
                "- coopledger on disk after the `ledger_submit` run, stopped, started and stopped \
                 again (its write-ahead log folded into tables): {disk} bytes \
                 for {entries} entries ({raw} signed bytes): {:.2} bytes per signed byte, {:.0} \
                 bytes per entry\n",
                disk as f64 / raw.max(1) as f64,
                disk as f64 / entries.max(1) as f64
            ));
        }
        s
    }

    pub fn json(&self) -> Value {
        json!({
            "smoke": self.smoke,
            "cores": self.cores,
            "entryBytes": self.entry_bytes,
            "members": self.members,
            "signatureCeiling": self.signature_ceiling,
            "disk": self.disk.map(|(disk, raw, entries)| json!({
                "bytesOnDisk": disk, "signedBytes": raw, "entries": entries,
            })),
            "runs": self.runs.iter().map(|m| json!({
                "system": m.system,
                "entries": m.entries,
                "clients": m.clients,
                "perRequest": m.per_request,
                "entriesPerSec": m.per_sec(),
                "p50Ms": m.quantile(0.50).as_secs_f64() * 1000.0,
                "p99Ms": m.quantile(0.99).as_secs_f64() * 1000.0,
                "p999Ms": m.quantile(0.999).as_secs_f64() * 1000.0,
                "maxMs": m.quantile(1.0).as_secs_f64() * 1000.0,
                "slowestWindow": m.slowest.map(|w| json!({
                    "fromMs": w.from.as_secs_f64() * 1000.0,
                    "widthMs": crate::drive::WINDOW.as_secs_f64() * 1000.0,
                    "entries": w.entries,
                    "meanMs": w.mean.as_secs_f64() * 1000.0,
                })),
                "windows": m.windows.iter().map(|w| json!({
                    "fromMs": w.from.as_secs_f64() * 1000.0,
                    "entries": w.entries,
                    "meanMs": w.mean.as_secs_f64() * 1000.0,
                })).collect::<Vec<_>>(),
                "paced": m.paced.map(|p| json!({
                    "offeredPerSec": p.offered,
                    "lateRequests": p.late,
                    "requests": p.requests,
                })),
                "serverCores": m.server_cores(),
                "loadgenCores": m.loadgen_cores(),
            })).collect::<Vec<_>>(),
            "replicaCpuPerEntryUs": self.replica_cpu_us.as_ref().map(|(l, f)| json!({"leader": l, "followers": f})),
            "ratios": self.ratios().into_iter().map(|(k, v)| json!({"what": k, "ratio": v})).collect::<Vec<_>>(),
        })
    }
}
