//! A snapshot file as a replica that fell behind reads it from a peer: the reader walks
//! arbitrary bytes without panicking or allocating past what it was given, and what it accepts
//! is a whole file — every entry the header counts, segments in order, nothing after the end.
#![no_main]

use coopledger_cluster_formats::snapshot::SnapshotReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte says from which index the receiver keeps entries (what it holds already).
    let Some((&keep, bytes)) = data.split_first() else {
        return;
    };
    let keep_from = u64::from(keep % 8);
    let Ok(mut reader) = SnapshotReader::open(bytes) else {
        return;
    };
    let size = reader.header().size;
    let mut next = 0u64;
    let mut kept = 0u64;
    loop {
        match reader.next_segment(keep_from) {
            Ok(Some(read)) => {
                assert_eq!(read.segment.start, next, "segments in order");
                assert!(read.segment.count > 0);
                next = read.segment.start + read.segment.count;
                assert!(next <= size, "no segment past the header's size");
                assert!(read.first >= read.segment.start && read.first <= next);
                assert_eq!(read.entries.len() as u64, next - read.first);
                kept += read.entries.len() as u64;
            }
            Ok(None) => break,
            Err(_) => return,
        }
    }
    assert_eq!(next, size);
    if let Ok(offlog) = reader.finish() {
        assert_eq!(kept, size - keep_from.min(size));
        assert!(
            offlog.windows(2).all(|w| w[0].0 < w[1].0),
            "keys increasing"
        );
    }
});
