//! What the log measures about itself, as Prometheus metrics: submissions accepted and refused
//! (by reason), batch sizes, the time from arrival to acknowledgement, fsync latency, the tree
//! and checkpoint sizes and when the latest checkpoint was released. The node serves them at
//! `GET /metrics` (`rpc`); the log only keeps them.

use super::{Receipt, SubmitError};
use crate::entry::Rejection;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::time::Duration;

/// Why a submission was refused: the rule's stable name for a co-op rule, else the kind of
/// refusal (`malformed`, `bad_signature`, `replay`, …, `overloaded`, `stopped`, `storage`).
/// Bounded: rule names are the state machine's own, never the submitter's words.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Refusal {
    /// See the type.
    pub reason: String,
}

/// Which file an fsync made durable.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Synced {
    /// `database` (a batch's WriteBatch) or `record` (`COOP-SIGNED`).
    pub file: String,
}

/// The log's metrics (cheap to update: atomics).
#[derive(Debug)]
pub struct LogMetrics {
    accepted: Counter,
    duplicates: Counter,
    refused: Family<Refusal, Counter>,
    batch_entries: Histogram,
    ack_seconds: Histogram,
    fsync_seconds: Family<Synced, Histogram>,
    tree_size: Gauge,
    checkpoint_size: Gauge,
    recorded_size: Gauge,
    released_at_ms: Gauge,
    speculated: Family<Speculated, Counter>,
}

/// Whether a batch this replica proposed was applied from its speculation.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Speculated {
    /// `used` (sequenced while Raft replicated it) or `sequenced_again`.
    pub outcome: String,
}

fn seconds_buckets() -> Histogram {
    // 50 µs … ~26 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 20))
}

impl Default for LogMetrics {
    fn default() -> LogMetrics {
        LogMetrics {
            accepted: Counter::default(),
            duplicates: Counter::default(),
            refused: Family::default(),
            batch_entries: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            ack_seconds: seconds_buckets(),
            fsync_seconds: Family::new_with_constructor(seconds_buckets),
            tree_size: Gauge::default(),
            checkpoint_size: Gauge::default(),
            recorded_size: Gauge::default(),
            released_at_ms: Gauge::default(),
            speculated: Family::default(),
        }
    }
}

/// The label of a refusal.
pub fn refusal_reason(r: &Rejection) -> &str {
    match r {
        Rejection::Malformed { .. } => "malformed",
        Rejection::TooLarge { .. } => "too_large",
        Rejection::WrongCoop { .. } => "wrong_coop",
        Rejection::UnknownType { .. } => "unknown_type",
        Rejection::TimestampOutOfWindow { .. } => "timestamp_out_of_window",
        Rejection::BadSignature => "bad_signature",
        Rejection::UnknownSigner { .. } => "unknown_signer",
        Rejection::Replay { .. } => "replay",
        Rejection::Rule { rule, .. } => rule,
    }
}

fn gauge(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl LogMetrics {
    /// Adds every metric to `registry` (names prefixed `coop_`).
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("coop");
        r.register(
            "entries_accepted",
            "Submitted entries accepted into the log",
            self.accepted.clone(),
        );
        r.register(
            "entries_duplicate",
            "Submitted entries already in the log (answered with their first receipt)",
            self.duplicates.clone(),
        );
        r.register(
            "entries_refused",
            "Submitted entries refused, by rule or kind of refusal",
            self.refused.clone(),
        );
        r.register(
            "batch_entries",
            "Entries sequenced per batch (the log.state entry not counted)",
            self.batch_entries.clone(),
        );
        r.register(
            "ack_seconds",
            "Time from a submission's arrival at the log to its acknowledgement",
            self.ack_seconds.clone(),
        );
        r.register(
            "fsync_seconds",
            "Time to make a write durable: a batch's WriteBatch, or the COOP-SIGNED append",
            self.fsync_seconds.clone(),
        );
        r.register(
            "tree_size",
            "Entries durable in the log",
            self.tree_size.clone(),
        );
        r.register(
            "checkpoint_size",
            "Size of the latest released checkpoint",
            self.checkpoint_size.clone(),
        );
        r.register(
            "checkpoint_recorded_size",
            "Size of the newest checkpoint in COOP-SIGNED (a replica records behind its releases; \
             a single node before each release)",
            self.recorded_size.clone(),
        );
        r.register(
            "checkpoint_released_timestamp_ms",
            "When the latest checkpoint was released (Unix ms)",
            self.released_at_ms.clone(),
        );
        r.register(
            "proposals_applied",
            "Batches this replica proposed, by whether their sequencing during replication was used",
            self.speculated.clone(),
        );
    }

    /// One submission's outcome, `took` after it arrived.
    pub(crate) fn submitted(&self, answer: &Result<Receipt, SubmitError>, took: Duration) {
        match answer {
            Ok(r) => {
                if r.duplicate {
                    self.duplicates.inc();
                } else {
                    self.accepted.inc();
                }
                self.ack_seconds.observe(took.as_secs_f64());
            }
            Err(e) => {
                let reason = match e {
                    SubmitError::Rejected(r) => refusal_reason(r),
                    SubmitError::Overloaded => "overloaded",
                    SubmitError::Stopped => "stopped",
                    SubmitError::Storage(_) => "storage",
                    SubmitError::NotLeader { .. } => "not_leader",
                    SubmitError::NoQuorum => "no_quorum",
                };
                self.refused
                    .get_or_create(&Refusal {
                        reason: reason.to_owned(),
                    })
                    .inc();
            }
        }
    }

    /// A batch of `entries` sequenced.
    pub(crate) fn batch(&self, entries: usize) {
        self.batch_entries.observe(entries as f64);
    }

    /// A batch this replica proposed was applied: from its speculation (`used`) or not.
    pub(crate) fn speculation(&self, used: bool) {
        let outcome = if used { "used" } else { "sequenced_again" };
        self.speculated
            .get_or_create(&Speculated {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// How many batches this replica proposed were applied from their speculation (`used`)
    /// and how many were sequenced again.
    pub fn speculations(&self) -> (u64, u64) {
        let get = |o: &str| {
            self.speculated
                .get_or_create(&Speculated {
                    outcome: o.to_owned(),
                })
                .get()
        };
        (get("used"), get("sequenced_again"))
    }

    /// An fsync of `file` took `took`.
    pub(crate) fn synced(&self, file: &str, took: Duration) {
        self.fsync_seconds
            .get_or_create(&Synced {
                file: file.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// The durable tree now holds `size` entries.
    pub(crate) fn durable(&self, size: u64) {
        self.tree_size.set(gauge(size));
    }

    /// `COOP-SIGNED`'s newest checkpoint is now of `size`.
    pub(crate) fn recorded(&self, size: u64) {
        self.recorded_size.set(gauge(size));
    }

    /// Size of the newest checkpoint in `COOP-SIGNED`.
    pub fn recorded_size(&self) -> u64 {
        u64::try_from(self.recorded_size.get()).unwrap_or(0)
    }

    /// A checkpoint of `size` was released at `at_ms`.
    pub(crate) fn released(&self, size: u64, at_ms: u64) {
        self.checkpoint_size.set(gauge(size));
        self.released_at_ms.set(gauge(at_ms));
    }

    /// When the latest checkpoint was released (Unix ms; 0 before the first since start-up).
    pub fn released_at_ms(&self) -> u64 {
        u64::try_from(self.released_at_ms.get()).unwrap_or(0)
    }
}
