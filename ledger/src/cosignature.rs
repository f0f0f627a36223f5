//! C2SP tlog-cosignature v1, Ed25519 (signature type 0x04): a witness's timestamped statement
//! that a checkpoint is the largest consistent tree head it has seen for that log; the witness
//! keys `<name>+<hex key id>+<base64(0x04 ‖ key)>`; and the "k of these n witnesses" policy a
//! verifier applies before trusting a checkpoint.
//!
//! A cosignature line is `— <witness name> base64(key id ‖ u64 BE timestamp ‖ signature)`, the
//! key id `SHA-256(name ‖ 0x0A ‖ 0x04 ‖ key)[:4]`, and the signed message
//! `"cosignature/v1\ntime <timestamp>\n" ‖ checkpoint text` (c2sp.org/tlog-cosignature).

use crate::codec::b64_encode;
use crate::note::{key_id, parse_vkey, valid_name, NoteError, SignedNote};
use crate::sig::{verify_one, SignedMessage};
use ed25519_dalek::{Signer as _, SigningKey};

/// Signature type byte of Ed25519 cosignature/v1.
pub const ALG_COSIGNATURE_V1: u8 = 0x04;
/// Largest timestamp the format allows.
const MAX_TIMESTAMP: u64 = (1 << 63) - 1;

/// The message a witness signs: two header lines, then the checkpoint text.
pub fn message(text: &str, timestamp: u64) -> Vec<u8> {
    format!("cosignature/v1\ntime {timestamp}\n{text}").into_bytes()
}

/// A witness's signing half.
#[derive(Clone)]
pub struct Cosigner {
    name: String,
    key: SigningKey,
    id: u32,
}

impl std::fmt::Debug for Cosigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cosigner")
            .field("name", &self.name)
            .field("id", &format_args!("{:08x}", self.id))
            .finish_non_exhaustive()
    }
}

impl Cosigner {
    /// A witness named `name` (a schema-less URL, by convention). One key must serve one name
    /// only: the v1 message does not commit to the name.
    pub fn new(name: &str, key: SigningKey) -> Result<Cosigner, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::BadName(name.to_owned()));
        }
        let ak = [&[ALG_COSIGNATURE_V1][..], key.verifying_key().as_bytes()].concat();
        Ok(Cosigner {
            name: name.to_owned(),
            id: key_id(name, &ak),
            key,
        })
    }

    /// The witness name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The witness key string, `<name>+<hex key id>+<base64(0x04 ‖ key)>`.
    pub fn vkey(&self) -> String {
        let ak = [
            &[ALG_COSIGNATURE_V1][..],
            self.key.verifying_key().as_bytes(),
        ]
        .concat();
        format!("{}+{:08x}+{}", self.name, self.id, b64_encode(ak))
    }

    /// The matching verifier.
    pub fn witness_key(&self) -> WitnessKey {
        WitnessKey {
            name: self.name.clone(),
            id: self.id,
            key: self.key.verifying_key().to_bytes(),
        }
    }

    /// The signature line (with its final newline) cosigning checkpoint `text` at `timestamp`
    /// (POSIX seconds).
    pub fn cosign(&self, text: &str, timestamp: u64) -> Result<String, NoteError> {
        if timestamp > MAX_TIMESTAMP {
            return Err(NoteError::Malformed("cosignature timestamp above 2^63−1"));
        }
        let sig = self.key.sign(&message(text, timestamp)).to_bytes();
        let blob = [
            &self.id.to_be_bytes()[..],
            &timestamp.to_be_bytes(),
            &sig[..],
        ]
        .concat();
        Ok(format!("\u{2014} {} {}\n", self.name, b64_encode(blob)))
    }
}

/// A witness's verifying half, from its key string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessKey {
    name: String,
    id: u32,
    key: [u8; 32],
}

impl WitnessKey {
    /// Parses `<name>+<8 hex digits>+<base64(0x04 ‖ 32-byte key)>`, checking the key id.
    pub fn parse(vkey: &str) -> Result<WitnessKey, NoteError> {
        let (name, id, key) = parse_vkey(vkey, ALG_COSIGNATURE_V1)?;
        Ok(WitnessKey { name, id, key })
    }

    /// The witness name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key string it was parsed from, `<name>+<hex key id>+<base64(0x04 ‖ key)>`.
    pub fn vkey(&self) -> String {
        let ak = [&[ALG_COSIGNATURE_V1][..], &self.key[..]].concat();
        format!("{}+{:08x}+{}", self.name, self.id, b64_encode(ak))
    }

    /// The 4-byte key id.
    pub fn key_id(&self) -> u32 {
        self.id
    }
}

/// One verified cosignature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosigned {
    /// Witness name.
    pub witness: String,
    /// When it cosigned (POSIX seconds).
    pub timestamp: u64,
}

/// `timestamp ‖ signature` of a cosignature line (after the key id).
pub fn split_signature(sig: &[u8]) -> Result<(u64, [u8; 64]), NoteError> {
    if sig.len() != 8 + 64 {
        return Err(NoteError::Malformed(
            "cosignature is not timestamp ‖ 64-byte signature",
        ));
    }
    let (ts, s) = sig.split_at(8);
    let ts = u64::from_be_bytes(
        ts.try_into()
            .map_err(|_| NoteError::Malformed("cosignature timestamp"))?,
    );
    if ts > MAX_TIMESTAMP {
        return Err(NoteError::Malformed("cosignature timestamp above 2^63−1"));
    }
    let s: [u8; 64] = s
        .try_into()
        .map_err(|_| NoteError::Malformed("cosignature signature"))?;
    Ok((ts, s))
}

/// The cosignatures on `note` by `witnesses`, with `note.Open` semantics: a line by a known
/// (name, key id) that does not verify is an error; lines by other keys are ignored; one per
/// witness counts.
pub fn cosignatures(
    note: &SignedNote,
    witnesses: &[WitnessKey],
) -> Result<Vec<Cosigned>, NoteError> {
    let mut out: Vec<Cosigned> = Vec::new();
    for s in &note.signatures {
        let Some(w) = witnesses
            .iter()
            .find(|w| w.name == s.name && w.id == s.key_id)
        else {
            continue;
        };
        let (timestamp, sig) = split_signature(&s.sig)?;
        let msg = message(&note.text, timestamp);
        if !verify_one(&SignedMessage {
            key: &w.key,
            msg: &msg,
            sig: &sig,
        }) {
            return Err(NoteError::BadSignature(s.name.clone()));
        }
        if !out.iter().any(|c| c.witness == w.name) {
            out.push(Cosigned {
                witness: w.name.clone(),
                timestamp,
            });
        }
    }
    Ok(out)
}

/// "At least `k` of these witnesses": what a verifier requires before trusting a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessPolicy {
    /// The witnesses.
    pub witnesses: Vec<WitnessKey>,
    /// How many must have cosigned.
    pub k: usize,
}

impl WitnessPolicy {
    /// Checks the policy on a (log-signed) note; returns the cosignatures that count.
    pub fn check(&self, note: &SignedNote) -> Result<Vec<Cosigned>, NoteError> {
        let got = cosignatures(note, &self.witnesses)?;
        if got.len() < self.k {
            return Err(NoteError::NotEnoughCosignatures {
                have: got.len(),
                need: self.k,
            });
        }
        Ok(got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::b64_decode;

    const TEXT: &str =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    #[test]
    fn key_ids_and_timestamps_match_published_values() {
        // transparency-dev/formats note/note_cosigv1_test.go (TestCoSigV1NewVerifier): a native
        // cosignature/v1 witness key; its key id is SHA-256(name ‖ 0x0A ‖ 0x04 ‖ key)[:4].
        let w = WitnessKey::parse(
            "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",
        )
        .unwrap();
        assert_eq!((w.name(), w.key_id()), ("remora.n621.de", 0xda77_ade7));
        assert_eq!(
            w.vkey(),
            "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
        );
        // The same bytes under another id, and a type-0x01 key, are refused.
        assert_eq!(
            WitnessKey::parse(
                "remora.n621.de+da77ade8+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
            ),
            Err(NoteError::VerifierKeyIdMismatch)
        );
        assert!(
            WitnessKey::parse("TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6")
                .is_err()
        );
        // Same file (TestCosignatureTimestamp): key id ‖ timestamp 1727964367 ‖ signature.
        let blob = b64_decode("ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==").unwrap();
        assert_eq!(split_signature(&blob[4..]).unwrap().0, 1_727_964_367);
        // c2sp.org/tlog-cosignature's example line carries the time its example message shows.
        let blob = b64_decode("jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==").unwrap();
        assert_eq!(split_signature(&blob[4..]).unwrap().0, 1_679_315_147);
        assert_eq!(
            String::from_utf8(message(TEXT, 1_679_315_147)).unwrap(),
            "cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        );
    }

    fn witness(n: u8) -> Cosigner {
        Cosigner::new(
            &format!("witness{n}.example.coop"),
            SigningKey::from_bytes(&[n; 32]),
        )
        .unwrap()
    }

    #[test]
    fn cosignatures_verify_and_a_policy_counts_them() {
        let log = crate::note::NoteSigner::new(
            "example.com/behind-the-sofa",
            SigningKey::from_bytes(&[9; 32]),
        )
        .unwrap();
        let mut note = log.sign(TEXT).unwrap();
        let (a, b, c) = (witness(1), witness(2), witness(3));
        note.push_str(&a.cosign(TEXT, 1_700_000_000).unwrap());
        note.push_str(&b.cosign(TEXT, 1_700_000_001).unwrap());
        let parsed = SignedNote::parse(note.as_bytes()).unwrap();
        // The log's own signature still verifies with the log key; cosignatures are ignored there.
        assert_eq!(
            parsed.verify(&[log.verifier()]).unwrap(),
            vec![log.name().to_owned()]
        );
        let keys: Vec<WitnessKey> = [&a, &b, &c]
            .iter()
            .map(|w| WitnessKey::parse(&w.vkey()).unwrap())
            .collect();
        let got = cosignatures(&parsed, &keys).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[1],
            Cosigned {
                witness: b.name().into(),
                timestamp: 1_700_000_001
            }
        );
        let two_of_three = WitnessPolicy {
            witnesses: keys.clone(),
            k: 2,
        };
        assert_eq!(two_of_three.check(&parsed).unwrap().len(), 2);
        let all = WitnessPolicy {
            witnesses: keys.clone(),
            k: 3,
        };
        assert_eq!(
            all.check(&parsed),
            Err(NoteError::NotEnoughCosignatures { have: 2, need: 3 })
        );

        // A changed timestamp (or body) breaks the cosignature: it is an error, not a skip.
        let line = a.cosign(TEXT, 1_700_000_000).unwrap();
        let blob = b64_decode(line.trim_end().rsplit(' ').next().unwrap()).unwrap();
        let mut forged = blob.clone();
        forged[11] ^= 1;
        let bad = format!(
            "{}\u{2014} {} {}\n",
            log.sign(TEXT).unwrap(),
            a.name(),
            b64_encode(forged)
        );
        let parsed = SignedNote::parse(bad.as_bytes()).unwrap();
        assert_eq!(
            cosignatures(&parsed, &keys),
            Err(NoteError::BadSignature(a.name().into()))
        );
        // A cosignature over another size does not cover this checkpoint.
        let other =
            "example.com/behind-the-sofa\n20852164\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        let moved = format!("{}{}", log.sign(TEXT).unwrap(), a.cosign(other, 1).unwrap());
        let parsed = SignedNote::parse(moved.as_bytes()).unwrap();
        assert!(cosignatures(&parsed, &keys).is_err());
    }
}
