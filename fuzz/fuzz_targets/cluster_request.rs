//! A join or leave request as the leader's `cluster_join` / `cluster_leave` read it from a
//! stranger: decoding and verifying arbitrary JSON never panics and never accepts a signature
//! the log key did not make; the same fields signed by the key are refused, if at all, only
//! for a field other than the signature.
#![no_main]

use coopledger_cluster_formats::membership::ClusterRequest;
use coopledger_cluster_formats::ReplicaAddr;
use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;

const NOW: u64 = 1_800_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = serde_json::from_slice::<ClusterRequest>(data) else {
        return;
    };
    let key = SigningKey::from_bytes(&[7; 32]);
    let stranger = SigningKey::from_bytes(&[8; 32]);
    let addr = ReplicaAddr {
        public: req.public.clone(),
        cluster: req.cluster.clone(),
    };
    let signed = ClusterRequest::sign(&key, &req.action, req.id, Some(&addr), req.ts);
    match signed.verify(&key.verifying_key(), NOW) {
        Ok(()) => {
            // Accepted under the log key: a stranger's key never accepts the same request.
            assert!(signed.verify(&stranger.verifying_key(), NOW).is_err());
            // The fuzzed request verifies only if it carries the very signature.
            if req.verify(&key.verifying_key(), NOW).is_ok() {
                assert_eq!(req.sig, signed.sig);
            }
        }
        Err(e) => assert_ne!(e.field, "sig", "a log-key signature refused: {e}"),
    }
});
