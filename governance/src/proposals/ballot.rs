//! Secret-ballot credentials: blind tokens over the Ristretto group (a blinded
//! Diffie–Hellman evaluation, as in the Privacy Pass / RFC 9497 OPRF shape, with a Chaum–Pedersen
//! proof that the node used the published key), so that a member whose *participation* is signed
//! in the log can cast exactly one *ballot* the node cannot link back to them.
//!
//! The protocol, per proposal and voting class `c` (the node's key `k_c`, public `K_c = k_c·G`,
//! published in the log by a `gov.ballot_key` entry before anyone takes part):
//!
//! 1. The voter makes a one-time Ed25519 key; its public key is the *token* `t`. They pick a
//!    random scalar `r` and sign, with their member key, a participation entry carrying
//!    `M = r·H(p, t)` ([`Blinding`]). `M` is a uniformly random group element: it says nothing
//!    about `t`.
//! 2. The node answers `Z = k_c·M` with a proof that `log_G K_c = log_M Z` ([`Evaluation`]); the
//!    voter checks it (so the node cannot tag a voter with a key of their own) and computes the
//!    credential `W = r⁻¹·Z = k_c·H(p, t)`.
//! 3. The voter signs a `gov.ballot` with the one-time key — proposal, class, `W`, the vote —
//!    and hands it to the node's ballot box, which returns a signed receipt.
//! 4. At the close the node publishes every ballot in one or more `gov.ballots` entries, sorted
//!    by ballot id, together with `k_c`; anyone then checks each `W = k_c·H(p, t)` and that no
//!    class has more ballots than signed participations.
//!
//! `H(p, t)` hashes to the group with SHA-512 and Ristretto's one-way map (RFC 9496 §4.3.4).

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha512};

const SEED_DOMAIN: &[u8] = b"coopledger/ballot-seed\0";
const KEY_DOMAIN: &[u8] = b"coopledger/ballot-key\0";
const TOKEN_DOMAIN: &[u8] = b"coopledger/ballot-token\0";
const PROOF_DOMAIN: &[u8] = b"coopledger/ballot-dleq\0";
const NONCE_DOMAIN: &[u8] = b"coopledger/ballot-dleq-nonce\0";
const RECEIPT_DOMAIN: &[u8] = b"coopledger/ballot-receipt\0";

/// SHA-512 over length-prefixed parts (so no two part lists hash alike).
fn wide_hash(domain: &[u8], parts: &[&[u8]]) -> [u8; 64] {
    let mut h = Sha512::new();
    h.update(domain);
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    h.finalize().into()
}

fn hash_scalar(domain: &[u8], parts: &[&[u8]]) -> Scalar {
    Scalar::from_bytes_mod_order_wide(&wide_hash(domain, parts))
}

/// `H(p, t)`: the token's group element for proposal `p`.
pub fn token_point(proposal: &[u8; 32], token: &[u8; 32]) -> RistrettoPoint {
    RistrettoPoint::from_uniform_bytes(&wide_hash(TOKEN_DOMAIN, &[proposal, token]))
}

/// A group element from its 32-byte encoding; `None` unless canonical and not the identity.
pub fn point(bytes: &[u8]) -> Option<RistrettoPoint> {
    let p = CompressedRistretto::from_slice(bytes).ok()?.decompress()?;
    (!p.is_identity()).then_some(p)
}

/// The node's source of per-proposal ballot keys, derived from its signing key so that nothing
/// more needs keeping secret or backing up.
#[derive(Clone)]
pub struct BallotSecrets {
    seed: [u8; 32],
}

impl std::fmt::Debug for BallotSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BallotSecrets(..)")
    }
}

impl BallotSecrets {
    /// Derives the ballot secrets from the node's signing key.
    pub fn from_node_key(key: &SigningKey) -> BallotSecrets {
        let wide = wide_hash(SEED_DOMAIN, &[&key.to_bytes()]);
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&wide[..32]);
        BallotSecrets { seed }
    }

    /// The key for one class of one proposal.
    pub fn class_key(&self, proposal: &[u8; 32], class: &str) -> ClassKey {
        ClassKey(hash_scalar(
            KEY_DOMAIN,
            &[&self.seed, proposal, class.as_bytes()],
        ))
    }
}

/// One class's ballot key for one proposal (secret until the close, then published).
#[derive(Clone, PartialEq, Eq)]
pub struct ClassKey(Scalar);

impl std::fmt::Debug for ClassKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClassKey(..)")
    }
}

impl ClassKey {
    /// From the 32-byte little-endian encoding published at the close; `None` unless canonical
    /// and non-zero.
    pub fn from_bytes(bytes: &[u8]) -> Option<ClassKey> {
        let b: [u8; 32] = bytes.try_into().ok()?;
        let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(b))?;
        (s != Scalar::ZERO).then_some(ClassKey(s))
    }

    /// The 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// `K = k·G`, the public key published before voting.
    pub fn public(&self) -> [u8; 32] {
        RistrettoPoint::mul_base(&self.0).compress().to_bytes()
    }

    /// The credential of `token`: `k·H(p, t)`.
    pub fn credential(&self, proposal: &[u8; 32], token: &[u8; 32]) -> [u8; 32] {
        (self.0 * token_point(proposal, token))
            .compress()
            .to_bytes()
    }

    /// `Z = k·M` and a Chaum–Pedersen proof that the same `k` makes the public key; `None` if
    /// `blinded` is not a valid group element. The proof's nonce is derived from `k` and `M`, so
    /// the answer for one participation is always the same.
    pub fn evaluate(&self, blinded: &[u8]) -> Option<Evaluation> {
        let m = point(blinded)?;
        let z = self.0 * m;
        let nonce = hash_scalar(NONCE_DOMAIN, &[&self.0.to_bytes(), blinded]);
        let a = RistrettoPoint::mul_base(&nonce);
        let b = nonce * m;
        let public = self.public();
        let z_bytes = z.compress().to_bytes();
        let c = challenge(
            &public,
            blinded,
            &z_bytes,
            &a.compress().to_bytes(),
            &b.compress().to_bytes(),
        );
        let s = nonce - c * self.0;
        Some(Evaluation {
            evaluated: z_bytes,
            challenge: c.to_bytes(),
            response: s.to_bytes(),
        })
    }
}

fn challenge(public: &[u8], m: &[u8], z: &[u8], a: &[u8], b: &[u8]) -> Scalar {
    hash_scalar(PROOF_DOMAIN, &[public, m, z, a, b])
}

/// The node's answer to a participation: `Z = k·M` and the proof `(c, s)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// `Z`.
    pub evaluated: [u8; 32],
    /// `c`.
    pub challenge: [u8; 32],
    /// `s`.
    pub response: [u8; 32],
}

impl Evaluation {
    /// Checks the proof against the published key and the voter's blinded element:
    /// `c = H(K, M, Z, s·G + c·K, s·M + c·Z)`.
    pub fn verify(&self, public: &[u8], blinded: &[u8]) -> bool {
        let (Some(k), Some(m), Some(z)) = (point(public), point(blinded), point(&self.evaluated))
        else {
            return false;
        };
        let (Some(c), Some(s)) = (
            Option::<Scalar>::from(Scalar::from_canonical_bytes(self.challenge)),
            Option::<Scalar>::from(Scalar::from_canonical_bytes(self.response)),
        ) else {
            return false;
        };
        let a = RistrettoPoint::mul_base(&s) + c * k;
        let b = s * m + c * z;
        challenge(
            public,
            blinded,
            &self.evaluated,
            &a.compress().to_bytes(),
            &b.compress().to_bytes(),
        ) == c
    }
}

/// The voter's secret side of one participation.
#[derive(Clone)]
pub struct Blinding {
    r: Scalar,
    blinded: [u8; 32],
}

impl std::fmt::Debug for Blinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Blinding(..)")
    }
}

impl Blinding {
    /// Blinds `token` for `proposal` with 64 random bytes (the caller's RNG); `None` in the
    /// negligible case that they reduce to zero.
    pub fn new(proposal: &[u8; 32], token: &[u8; 32], random: &[u8; 64]) -> Option<Blinding> {
        let r = Scalar::from_bytes_mod_order_wide(random);
        if r == Scalar::ZERO {
            return None;
        }
        let blinded = (r * token_point(proposal, token)).compress().to_bytes();
        Some(Blinding { r, blinded })
    }

    /// `M`, for the participation entry.
    pub fn blinded(&self) -> [u8; 32] {
        self.blinded
    }

    /// The credential `r⁻¹·Z`, once the evaluation is verified against the published key;
    /// `None` if it does not verify.
    pub fn unblind(&self, public: &[u8], e: &Evaluation) -> Option<[u8; 32]> {
        if !e.verify(public, &self.blinded) {
            return None;
        }
        let z = point(&e.evaluated)?;
        Some((self.r.invert() * z).compress().to_bytes())
    }
}

/// What the node signs as a ballot-box receipt:
/// `"coopledger/ballot-receipt\0" ‖ origin ‖ 0x0A ‖ proposal id ‖ ballot entry id`.
pub fn receipt_message(origin: &str, proposal: &[u8; 32], ballot: &[u8; 32]) -> Vec<u8> {
    [
        RECEIPT_DOMAIN,
        origin.as_bytes(),
        b"\n",
        proposal.as_slice(),
        ballot.as_slice(),
    ]
    .concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> BallotSecrets {
        BallotSecrets::from_node_key(&SigningKey::from_bytes(&[7; 32]))
    }

    #[test]
    fn blind_credential_equals_the_direct_one_and_the_proof_binds_the_key() {
        let (p, t) = ([1u8; 32], [2u8; 32]);
        let k = secrets().class_key(&p, "drivers");
        let b = Blinding::new(&p, &t, &[9; 64]).unwrap();
        let e = k.evaluate(&b.blinded()).unwrap();
        assert!(e.verify(&k.public(), &b.blinded()));
        assert_eq!(b.unblind(&k.public(), &e), Some(k.credential(&p, &t)));
        // Another class's key (a node tagging one voter) fails the voter's check.
        let other = secrets().class_key(&p, "riders");
        let tagged = other.evaluate(&b.blinded()).unwrap();
        assert_eq!(b.unblind(&k.public(), &tagged), None);
        // A tampered answer fails too.
        let mut bad = e.clone();
        bad.evaluated = k.public();
        assert!(!bad.verify(&k.public(), &b.blinded()));
        // Deterministic: the same participation gets the same answer.
        assert_eq!(k.evaluate(&b.blinded()), Some(e));
    }

    #[test]
    fn keys_differ_per_proposal_and_class_and_round_trip() {
        let s = secrets();
        let a = s.class_key(&[1; 32], "drivers");
        assert_ne!(a, s.class_key(&[2; 32], "drivers"));
        assert_ne!(a, s.class_key(&[1; 32], "riders"));
        assert_eq!(ClassKey::from_bytes(&a.to_bytes()), Some(a));
        assert_eq!(ClassKey::from_bytes(&[0; 32]), None);
        assert_eq!(ClassKey::from_bytes(&[0xff; 32]), None);
        assert!(point(&[0; 32]).is_none(), "the identity is refused");
    }

    #[test]
    fn the_blinded_element_does_not_depend_on_the_token_alone() {
        let p = [1u8; 32];
        let b1 = Blinding::new(&p, &[2; 32], &[3; 64]).unwrap();
        let b2 = Blinding::new(&p, &[2; 32], &[4; 64]).unwrap();
        assert_ne!(b1.blinded(), b2.blinded());
    }
}
