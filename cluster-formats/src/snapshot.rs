//! The snapshot file a replica sends one that fell behind (`docs/replication.md` §5), and its
//! reader. Byte by byte:
//!
//! ```text
//! "coopledger-raft-snapshot/1\n"                 magic, 27 bytes
//! record(header JSON)                             {"meta", "size", "offlog"}
//! per segment, until `size` entries are covered:
//!   record(segment JSON)                          {"start", "count", "note"}
//!   record(entry) × count                         the ledger's entries start..start+count
//! record(key) record(value) × offlog              every off-log record, in key order
//! (end of file)
//! ```
//!
//! A record is a 4-byte big-endian length then that many bytes, at most [`MAX_RECORD`]. A
//! segment ends on a size the log key signed (`note` is that checkpoint), so a receiver checks
//! each segment against the co-op's key before applying any of it.
//!
//! The reader is synchronous over any [`std::io::Read`]: the node runs it on a blocking thread;
//! the fuzz target runs it over bytes. What it allocates is bounded by what it reads.

use crate::ReplicaAddr;
use openraft::SnapshotMeta;
use serde::{Deserialize, Serialize};
use std::io::Read;

/// The file's first bytes.
pub const MAGIC: &[u8] = b"coopledger-raft-snapshot/1\n";
/// Entries a snapshot segment holds at least (it ends on the next signed size).
pub const SEGMENT_ENTRIES: u64 = 4096;
/// Largest header, segment header, entry, key or value a snapshot may declare.
pub const MAX_RECORD: u32 = 16 * 1024 * 1024;

/// The snapshot's Raft metadata (last log id, membership, id).
pub type Meta = SnapshotMeta<u64, ReplicaAddr>;

/// The first record: what the snapshot covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Header {
    /// Raft's metadata of the snapshot (it must equal the metadata it travels with).
    pub meta: Meta,
    /// Ledger entries it holds (the applied size).
    pub size: u64,
    /// Off-log records it holds.
    pub offlog: u64,
}

/// The record opening a segment of history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Segment {
    /// Index of its first entry.
    pub start: u64,
    /// Entries in it (at least one).
    pub count: u64,
    /// The log key's checkpoint note at size `start + count`.
    pub note: String,
}

/// An off-log record: key, value.
pub type OfflogRecord = (Vec<u8>, Vec<u8>);

/// One segment as read: its opening record and the entries the caller keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRead {
    /// The segment's opening record.
    pub segment: Segment,
    /// Index of the first entry in `entries` (`max(start, keep_from)`).
    pub first: u64,
    /// The entries from `first` to the segment's end.
    pub entries: Vec<Vec<u8>>,
}

/// Why a snapshot file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Reading failed, or the file ended inside a record.
    #[error("reading the snapshot: {0}")]
    Io(#[from] std::io::Error),
    /// The magic bytes are not ours.
    #[error("not a coopledger snapshot")]
    NotASnapshot,
    /// A record declares more than [`MAX_RECORD`] bytes.
    #[error("snapshot record of {0} bytes is over the {MAX_RECORD}-byte limit")]
    Oversized(u32),
    /// The header or a segment's record does not parse.
    #[error("snapshot {what}: {reason}")]
    Malformed {
        /// Which record.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// Segments do not follow one another.
    #[error("segment at {start} of {count} entries where {due} was due")]
    OutOfOrder {
        /// Its start.
        start: u64,
        /// Its count.
        count: u64,
        /// Where the next segment had to start.
        due: u64,
    },
    /// A segment runs past the header's size.
    #[error("segment at {start} of {count} entries runs past the snapshot's {size}")]
    PastEnd {
        /// Its start.
        start: u64,
        /// Its count.
        count: u64,
        /// The header's size.
        size: u64,
    },
    /// The off-log part was asked for before every segment was read.
    #[error("history read up to {read} of {size} entries")]
    HistoryUnread {
        /// Entries read.
        read: u64,
        /// The header's size.
        size: u64,
    },
    /// Off-log keys are not in strictly increasing order (a duplicate or a reordering).
    #[error("off-log record {0} is not after the one before it")]
    OfflogOrder(u64),
    /// Bytes follow the last record.
    #[error("bytes after the snapshot's last record")]
    Trailing,
}

/// The 4-byte length that opens a record of `len` bytes.
pub fn record_prefix(len: usize) -> Result<[u8; 4], SnapshotError> {
    let n = u32::try_from(len).map_err(|_| SnapshotError::Oversized(u32::MAX))?;
    if n > MAX_RECORD {
        return Err(SnapshotError::Oversized(n));
    }
    Ok(n.to_be_bytes())
}

/// Reads a snapshot file in order: [`SnapshotReader::open`] (magic and header), then
/// [`SnapshotReader::next_segment`] until it answers `None`, then
/// [`SnapshotReader::finish`] (the off-log records, and the end of the file).
#[derive(Debug)]
pub struct SnapshotReader<R> {
    input: R,
    header: Header,
    /// Entries read so far.
    read: u64,
}

fn record(input: &mut impl Read) -> Result<Vec<u8>, SnapshotError> {
    let mut len = [0u8; 4];
    input.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len);
    if len > MAX_RECORD {
        return Err(SnapshotError::Oversized(len));
    }
    // Grows with what arrives, not with what the length claims.
    let mut buf = Vec::new();
    input.take(u64::from(len)).read_to_end(&mut buf)?;
    if buf.len() as u64 != u64::from(len) {
        return Err(SnapshotError::Io(std::io::ErrorKind::UnexpectedEof.into()));
    }
    Ok(buf)
}

fn json<T: serde::de::DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, SnapshotError> {
    serde_json::from_slice(bytes).map_err(|e| SnapshotError::Malformed {
        what,
        reason: e.to_string(),
    })
}

impl<R: Read> SnapshotReader<R> {
    /// Checks the magic bytes and reads the header.
    pub fn open(mut input: R) -> Result<SnapshotReader<R>, SnapshotError> {
        let mut magic = [0u8; MAGIC.len()];
        input.read_exact(&mut magic).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                SnapshotError::NotASnapshot
            } else {
                SnapshotError::Io(e)
            }
        })?;
        if magic != MAGIC {
            return Err(SnapshotError::NotASnapshot);
        }
        let header: Header = json("header", &record(&mut input)?)?;
        Ok(SnapshotReader {
            input,
            header,
            read: 0,
        })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The next segment, `None` once the header's size is covered. Entries below `keep_from`
    /// (those the receiver holds already) are read and dropped.
    pub fn next_segment(&mut self, keep_from: u64) -> Result<Option<SegmentRead>, SnapshotError> {
        if self.read >= self.header.size {
            return Ok(None);
        }
        let segment: Segment = json("segment", &record(&mut self.input)?)?;
        if segment.start != self.read || segment.count == 0 {
            return Err(SnapshotError::OutOfOrder {
                start: segment.start,
                count: segment.count,
                due: self.read,
            });
        }
        let end = segment
            .start
            .checked_add(segment.count)
            .filter(|end| *end <= self.header.size)
            .ok_or(SnapshotError::PastEnd {
                start: segment.start,
                count: segment.count,
                size: self.header.size,
            })?;
        let first = segment.start.max(keep_from).min(end);
        let mut entries = Vec::new();
        for index in segment.start..end {
            let entry = record(&mut self.input)?;
            if index >= first {
                entries.push(entry);
            }
        }
        self.read = end;
        Ok(Some(SegmentRead {
            segment,
            first,
            entries,
        }))
    }

    /// The off-log records (keys strictly increasing), once every segment is read; the file
    /// must end after them.
    pub fn finish(mut self) -> Result<Vec<OfflogRecord>, SnapshotError> {
        if self.read < self.header.size {
            return Err(SnapshotError::HistoryUnread {
                read: self.read,
                size: self.header.size,
            });
        }
        let mut offlog: Vec<OfflogRecord> = Vec::new();
        for i in 0..self.header.offlog {
            let key = record(&mut self.input)?;
            let value = record(&mut self.input)?;
            if offlog.last().is_some_and(|(k, _)| *k >= key) {
                return Err(SnapshotError::OfflogOrder(i));
            }
            offlog.push((key, value));
        }
        let mut more = [0u8; 1];
        match self.input.read(&mut more)? {
            0 => Ok(offlog),
            _ => Err(SnapshotError::Trailing),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        reason = "test code: a panic is a test failure with a message"
    )]

    use super::*;

    fn rec(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&record_prefix(bytes.len()).unwrap());
        out.extend_from_slice(bytes);
    }

    fn file(size: u64, segments: &[(u64, u64)], offlog: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        let header = Header {
            meta: Meta::default(),
            size,
            offlog: offlog.len() as u64,
        };
        rec(&mut out, &serde_json::to_vec(&header).unwrap());
        for &(start, count) in segments {
            let seg = Segment {
                start,
                count,
                note: "n".into(),
            };
            rec(&mut out, &serde_json::to_vec(&seg).unwrap());
            for i in start..start + count {
                rec(&mut out, format!("entry {i}").as_bytes());
            }
        }
        for (k, v) in offlog {
            rec(&mut out, k);
            rec(&mut out, v);
        }
        out
    }

    fn read_all(bytes: &[u8], keep_from: u64) -> Result<(Vec<Vec<u8>>, usize), SnapshotError> {
        let mut r = SnapshotReader::open(bytes)?;
        let mut kept = Vec::new();
        while let Some(s) = r.next_segment(keep_from)? {
            kept.extend(s.entries);
        }
        Ok((kept, r.finish()?.len()))
    }

    #[test]
    fn reads_what_the_format_describes_and_keeps_only_entries_asked_for() {
        let bytes = file(5, &[(0, 3), (3, 2)], &[(b"a", b"1"), (b"b", b"2")]);
        let (kept, offlog) = read_all(&bytes, 2).unwrap();
        assert_eq!(
            kept,
            vec![
                b"entry 2".to_vec(),
                b"entry 3".to_vec(),
                b"entry 4".to_vec()
            ]
        );
        assert_eq!(offlog, 2);
        let (all, _) = read_all(&bytes, 0).unwrap();
        assert_eq!(all.len(), 5);
    }

    #[test]
    fn refuses_gaps_overruns_disorder_truncation_and_trailing_bytes() {
        let gap = file(5, &[(0, 2), (3, 2)], &[]);
        assert!(matches!(
            read_all(&gap, 0),
            Err(SnapshotError::OutOfOrder { due: 2, .. })
        ));
        let past = file(4, &[(0, 5)], &[]);
        assert!(matches!(
            read_all(&past, 0),
            Err(SnapshotError::PastEnd { .. })
        ));
        let dup = file(0, &[], &[(b"a", b"1"), (b"a", b"2")]);
        assert!(matches!(
            read_all(&dup, 0),
            Err(SnapshotError::OfflogOrder(1))
        ));
        let whole = file(2, &[(0, 2)], &[(b"k", b"v")]);
        for cut in 0..whole.len() {
            assert!(
                read_all(&whole[..cut], 0).is_err(),
                "cut at {cut} read as whole"
            );
        }
        let mut trailing = whole.clone();
        trailing.push(0);
        assert!(matches!(
            read_all(&trailing, 0),
            Err(SnapshotError::Trailing)
        ));
        let mut foreign = whole;
        foreign[0] ^= 1;
        assert!(matches!(
            read_all(&foreign, 0),
            Err(SnapshotError::NotASnapshot)
        ));
    }

    #[test]
    fn a_record_declaring_more_than_the_limit_is_refused_before_reading_it() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&(MAX_RECORD + 1).to_be_bytes());
        assert!(matches!(
            SnapshotReader::open(&bytes[..]),
            Err(SnapshotError::Oversized(n)) if n == MAX_RECORD + 1
        ));
        assert!(record_prefix(MAX_RECORD as usize + 1).is_err());
    }

    #[test]
    fn the_history_must_be_read_before_the_offlog_part() {
        let bytes = file(2, &[(0, 2)], &[]);
        let r = SnapshotReader::open(&bytes[..]).unwrap();
        assert!(matches!(
            r.finish(),
            Err(SnapshotError::HistoryUnread { read: 0, size: 2 })
        ));
    }
}
