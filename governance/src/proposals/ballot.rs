//! Secret-ballot credentials: blind tokens over the Ristretto group, so that a member whose
//! *participation* is signed in the log can cast exactly one *ballot* the node cannot link back
//! to them. Two protocols, recorded per proposal by its `gov.ballot_key` entry ([`Protocol`]):
//! **2** is RFC 9497's VOPRF (ciphersuite ristretto255-SHA512) by the `voprf` crate, for every
//! new secret ballot; **1** is this project's original construction of the same shape, kept so
//! that ballots published under it still recount.
//!
//! The protocol, per proposal `p` and voting class `c` (the node's key `k_c`, public
//! `K_c = k_c·G`, published in the log by a `gov.ballot_key` entry before anyone takes part):
//!
//! 1. The voter makes a one-time Ed25519 key; its public key is the *token* `t`. They blind the
//!    input `p ‖ t` with a random scalar `r` and sign, with their member key, a participation
//!    entry carrying the blinded element `M = r·H(p ‖ t)` ([`Blinding`]; RFC 9497 `Blind`). `M`
//!    is a uniformly random group element: it says nothing about `t`.
//! 2. The node answers `Z = k_c·M` with a proof that `log_G K_c = log_M Z` ([`Evaluation`];
//!    RFC 9497 `BlindEvaluate`); the voter checks it against the key published in the log (so
//!    the node cannot tag a voter with a key of their own) and unblinds the credential
//!    ([`Blinding::unblind`]; RFC 9497 `Finalize`).
//! 3. The voter signs a `gov.ballot` with the one-time key — proposal, class, credential, the
//!    vote — and hands it to the node's ballot box, which returns a signed receipt.
//! 4. At the close the node publishes every ballot in one or more `gov.ballots` entries, sorted
//!    by ballot id, together with `k_c`; anyone then recomputes each credential from `k_c`, `p`
//!    and `t` ([`ClassKey::credential`]; RFC 9497 `Evaluate`) and checks that no class has more
//!    ballots than signed participations.
//!
//! | | protocol 1 (original) | protocol 2 (RFC 9497 VOPRF) |
//! |---|---|---|
//! | `H` | SHA-512 of a domain and length-prefixed `p`, `t`, Ristretto's one-way map | RFC 9497 `HashToGroup` (hash_to_ristretto255, its DST) of `p ‖ t` |
//! | proof | Chaum–Pedersen, this module's transcript hash | RFC 9497 `GenerateProof` (`c ‖ s`) |
//! | credential | the group element `k_c·H(p, t)`, 32 bytes | RFC 9497 `Finalize` output, 64 bytes |
//! | class key | `SHA-512` of the node seed, `p`, `c`, reduced | RFC 9497 `DeriveKeyPair` from a seed of the node seed, `p`, `c` |

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use ed25519_dalek::SigningKey;
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha512};
use voprf::{BlindedElement, EvaluationElement, Proof, Ristretto255, VoprfClient, VoprfServer};

const SEED_DOMAIN: &[u8] = b"coopledger/ballot-seed\0";
const KEY_DOMAIN: &[u8] = b"coopledger/ballot-key\0";
const KEY_SEED_DOMAIN: &[u8] = b"coopledger/ballot-key-seed/v2\0";
/// RFC 9497 `DeriveKeyPair`'s `info` for class keys of protocol 2.
const KEY_INFO: &[u8] = b"coopledger ballot class key";
const TOKEN_DOMAIN: &[u8] = b"coopledger/ballot-token\0";
const PROOF_DOMAIN: &[u8] = b"coopledger/ballot-dleq\0";
const NONCE_DOMAIN: &[u8] = b"coopledger/ballot-dleq-nonce\0";
const RECEIPT_DOMAIN: &[u8] = b"coopledger/ballot-receipt\0";

/// The blind-token protocol of one proposal's secret ballot. The `gov.ballot_key` entry says
/// which (`protocol: 2`, or nothing for 1), so a recount of an old log uses the protocol its
/// ballots were issued under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// 1: the original construction (credentials are group elements).
    Original,
    /// 2: RFC 9497 VOPRF, ristretto255-SHA512 (credentials are 64-byte PRF outputs).
    Rfc9497,
}

impl Protocol {
    /// What the node uses for every new secret ballot.
    pub const CURRENT: Protocol = Protocol::Rfc9497;

    /// Its number in `gov.ballot_key` and the proposal record.
    pub fn number(self) -> u64 {
        match self {
            Protocol::Original => 1,
            Protocol::Rfc9497 => 2,
        }
    }

    /// From its number; `None` if unknown.
    pub fn from_number(n: u64) -> Option<Protocol> {
        match n {
            1 => Some(Protocol::Original),
            2 => Some(Protocol::Rfc9497),
            _ => None,
        }
    }

    /// Length in bytes of a ballot's credential.
    pub fn credential_len(self) -> usize {
        match self {
            Protocol::Original => 32,
            Protocol::Rfc9497 => 64,
        }
    }
}

/// The RFC 9497 input of a token: `p ‖ t`.
fn voprf_input(proposal: &[u8; 32], token: &[u8; 32]) -> [u8; 64] {
    let mut input = [0u8; 64];
    input[..32].copy_from_slice(proposal);
    input[32..].copy_from_slice(token);
    input
}

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

    /// The key for one class of one proposal under `protocol`; `None` only in the negligible
    /// case that RFC 9497's `DeriveKeyPair` finds no key.
    pub fn class_key(
        &self,
        proposal: &[u8; 32],
        class: &str,
        protocol: Protocol,
    ) -> Option<ClassKey> {
        let k = match protocol {
            Protocol::Original => {
                hash_scalar(KEY_DOMAIN, &[&self.seed, proposal, class.as_bytes()])
            }
            Protocol::Rfc9497 => {
                let wide = wide_hash(KEY_SEED_DOMAIN, &[&self.seed, proposal, class.as_bytes()]);
                derive_key_pair(&wide[..32], KEY_INFO)?
            }
        };
        (k != Scalar::ZERO).then_some(ClassKey { k, protocol })
    }
}

/// RFC 9497 `DeriveKeyPair(seed, info)`: the secret scalar.
fn derive_key_pair(seed: &[u8], info: &[u8]) -> Option<Scalar> {
    let server = VoprfServer::<Ristretto255>::new_from_seed(seed, info).ok()?;
    // `serialize` is skS ‖ pkS.
    let bytes: [u8; 32] = server.serialize().get(..32)?.try_into().ok()?;
    Option::<Scalar>::from(Scalar::from_canonical_bytes(bytes))
}

/// One class's ballot key for one proposal (secret until the close, then published).
#[derive(Clone, PartialEq, Eq)]
pub struct ClassKey {
    k: Scalar,
    protocol: Protocol,
}

impl std::fmt::Debug for ClassKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClassKey({:?}, ..)", self.protocol)
    }
}

impl ClassKey {
    /// From the 32-byte little-endian encoding published at the close; `None` unless canonical
    /// and non-zero.
    pub fn from_bytes(bytes: &[u8], protocol: Protocol) -> Option<ClassKey> {
        let b: [u8; 32] = bytes.try_into().ok()?;
        let k = Option::<Scalar>::from(Scalar::from_canonical_bytes(b))?;
        (k != Scalar::ZERO).then_some(ClassKey { k, protocol })
    }

    /// The 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.k.to_bytes()
    }

    /// The protocol it serves.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// `K = k·G`, the public key published before voting (RFC 9497's `pkS` for protocol 2).
    pub fn public(&self) -> [u8; 32] {
        RistrettoPoint::mul_base(&self.k).compress().to_bytes()
    }

    fn voprf(&self) -> Option<VoprfServer<Ristretto255>> {
        VoprfServer::<Ristretto255>::new_with_key(&self.k.to_bytes()).ok()
    }

    /// The credential of `token`: protocol 1 `k·H(p, t)`; protocol 2 RFC 9497
    /// `Evaluate(k, p ‖ t)`. `None` only if the input hashes to the identity (negligible).
    pub fn credential(&self, proposal: &[u8; 32], token: &[u8; 32]) -> Option<Vec<u8>> {
        match self.protocol {
            Protocol::Original => Some(
                (self.k * token_point(proposal, token))
                    .compress()
                    .to_bytes()
                    .to_vec(),
            ),
            Protocol::Rfc9497 => self.evaluate_input(&voprf_input(proposal, token)),
        }
    }

    /// RFC 9497 `Evaluate(k, input)`.
    fn evaluate_input(&self, input: &[u8]) -> Option<Vec<u8>> {
        self.voprf()?.evaluate(input).ok().map(|out| out.to_vec())
    }

    /// The answer to a blinded element: `Z = k·M` and a proof that the same `k` makes the
    /// public key; `None` if `blinded` is not a valid, non-identity group element. Protocol 2
    /// draws the proof's nonce from `rng` (RFC 9497 `BlindEvaluate`); protocol 1 derives it from
    /// `k` and `M`.
    pub fn evaluate<R: RngCore + CryptoRng>(
        &self,
        blinded: &[u8],
        rng: &mut R,
    ) -> Option<Evaluation> {
        match self.protocol {
            Protocol::Original => self.evaluate_original(blinded),
            Protocol::Rfc9497 => {
                let m = BlindedElement::<Ristretto255>::deserialize(blinded).ok()?;
                let answer = self.voprf()?.blind_evaluate(rng, &m);
                let evaluated: [u8; 32] = answer.message.serialize().get(..)?.try_into().ok()?;
                let proof = answer.proof.serialize();
                Some(Evaluation {
                    evaluated,
                    challenge: proof.get(..32)?.try_into().ok()?,
                    response: proof.get(32..)?.try_into().ok()?,
                })
            }
        }
    }

    fn evaluate_original(&self, blinded: &[u8]) -> Option<Evaluation> {
        let m = point(blinded)?;
        let z = self.k * m;
        let nonce = hash_scalar(NONCE_DOMAIN, &[&self.k.to_bytes(), blinded]);
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
        let s = nonce - c * self.k;
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

/// The node's answer to a participation: `Z = k·M` and the proof `(c, s)` (for protocol 2, the
/// two halves of RFC 9497's serialized `Proof`).
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
    /// Protocol 1's proof check against the published key and the voter's blinded element:
    /// `c = H(K, M, Z, s·G + c·K, s·M + c·Z)`. (Protocol 2's check is inside RFC 9497's
    /// `Finalize`, run by [`Blinding::unblind`].)
    fn verify_original(&self, public: &[u8], blinded: &[u8]) -> bool {
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
    blinded: [u8; 32],
    secret: BlindingSecret,
}

#[derive(Clone)]
enum BlindingSecret {
    Original {
        r: Scalar,
    },
    Rfc9497 {
        client: VoprfClient<Ristretto255>,
        input: Vec<u8>,
    },
}

impl std::fmt::Debug for Blinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Blinding(..)")
    }
}

impl Blinding {
    /// Blinds `token` for `proposal` under `protocol` with randomness from `rng`; `None` in the
    /// negligible case that the blind or the hashed input is zero.
    pub fn new<R: RngCore + CryptoRng>(
        protocol: Protocol,
        proposal: &[u8; 32],
        token: &[u8; 32],
        rng: &mut R,
    ) -> Option<Blinding> {
        match protocol {
            Protocol::Original => {
                let mut random = [0u8; 64];
                rng.fill_bytes(&mut random);
                let r = Scalar::from_bytes_mod_order_wide(&random);
                if r == Scalar::ZERO {
                    return None;
                }
                let blinded = (r * token_point(proposal, token)).compress().to_bytes();
                Some(Blinding {
                    blinded,
                    secret: BlindingSecret::Original { r },
                })
            }
            Protocol::Rfc9497 => Blinding::of_input(voprf_input(proposal, token).to_vec(), rng),
        }
    }

    /// RFC 9497 `Blind(input)`.
    fn of_input<R: RngCore + CryptoRng>(input: Vec<u8>, rng: &mut R) -> Option<Blinding> {
        let b = VoprfClient::<Ristretto255>::blind(&input, rng).ok()?;
        let blinded: [u8; 32] = b.message.serialize().get(..)?.try_into().ok()?;
        Some(Blinding {
            blinded,
            secret: BlindingSecret::Rfc9497 {
                client: b.state,
                input,
            },
        })
    }

    /// `M`, for the participation entry.
    pub fn blinded(&self) -> [u8; 32] {
        self.blinded
    }

    /// The voter's secret state as bytes (the blind scalar, then `M`), for a device that keeps
    /// it between taking part and unblinding (the portal's WebAssembly is called afresh each
    /// time). Secret: whoever holds it and the node's answer holds the credential.
    pub fn to_bytes(&self) -> [u8; 64] {
        let r = match &self.secret {
            BlindingSecret::Original { r } => r.to_bytes(),
            BlindingSecret::Rfc9497 { client, .. } => {
                let mut b = [0u8; 32];
                b.copy_from_slice(client.serialize().get(..32).unwrap_or(&[0; 32]));
                b
            }
        };
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&r);
        out[32..].copy_from_slice(&self.blinded);
        out
    }

    /// The state [`Blinding::to_bytes`] gave, for `token` of `proposal` under `protocol`;
    /// `None` unless the scalar is canonical and non-zero and `M` a valid element (and, under
    /// protocol 1, `M` is the blinding of this token).
    pub fn from_bytes(
        protocol: Protocol,
        proposal: &[u8; 32],
        token: &[u8; 32],
        bytes: &[u8],
    ) -> Option<Blinding> {
        let r_bytes: [u8; 32] = bytes.get(..32)?.try_into().ok()?;
        let blinded: [u8; 32] = bytes.get(32..64)?.try_into().ok()?;
        let r = Option::<Scalar>::from(Scalar::from_canonical_bytes(r_bytes))?;
        if r == Scalar::ZERO || bytes.len() != 64 {
            return None;
        }
        let secret = match protocol {
            Protocol::Original => {
                let m = (r * token_point(proposal, token)).compress().to_bytes();
                (m == blinded).then_some(BlindingSecret::Original { r })?
            }
            // A state of another token fails later, in `unblind`: RFC 9497's `Finalize` checks
            // the node's proof against the `M` held here, which is not the one the node answered.
            Protocol::Rfc9497 => BlindingSecret::Rfc9497 {
                client: VoprfClient::<Ristretto255>::deserialize(bytes).ok()?,
                input: voprf_input(proposal, token).to_vec(),
            },
        };
        Some(Blinding { blinded, secret })
    }

    /// The credential, once the evaluation's proof is verified against the published key
    /// `public`; `None` if it does not verify.
    pub fn unblind(&self, public: &[u8], e: &Evaluation) -> Option<Vec<u8>> {
        match &self.secret {
            BlindingSecret::Original { r } => {
                if !e.verify_original(public, &self.blinded) {
                    return None;
                }
                let z = point(&e.evaluated)?;
                Some((r.invert() * z).compress().to_bytes().to_vec())
            }
            BlindingSecret::Rfc9497 { client, input } => {
                let pk = point(public)?;
                let z = EvaluationElement::<Ristretto255>::deserialize(&e.evaluated).ok()?;
                let proof =
                    Proof::<Ristretto255>::deserialize(&[e.challenge, e.response].concat()).ok()?;
                client
                    .finalize(input, &z, &proof, pk)
                    .ok()
                    .map(|out| out.to_vec())
            }
        }
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
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    const BOTH: [Protocol; 2] = [Protocol::Original, Protocol::Rfc9497];

    fn secrets() -> BallotSecrets {
        BallotSecrets::from_node_key(&SigningKey::from_bytes(&[7; 32]))
    }

    fn key(p: &[u8; 32], class: &str, protocol: Protocol) -> ClassKey {
        secrets().class_key(p, class, protocol).unwrap()
    }

    #[test]
    fn blind_credential_equals_the_direct_one_and_the_proof_binds_the_key() {
        let mut rng = StdRng::seed_from_u64(9);
        for protocol in BOTH {
            let (p, t) = ([1u8; 32], [2u8; 32]);
            let k = key(&p, "drivers", protocol);
            let b = Blinding::new(protocol, &p, &t, &mut rng).unwrap();
            let e = k.evaluate(&b.blinded(), &mut rng).unwrap();
            let credential = k.credential(&p, &t).unwrap();
            assert_eq!(credential.len(), protocol.credential_len());
            assert_eq!(b.unblind(&k.public(), &e), Some(credential));
            // Another class's key (a node tagging one voter) fails the voter's check.
            let other = key(&p, "riders", protocol);
            let tagged = other.evaluate(&b.blinded(), &mut rng).unwrap();
            assert_eq!(b.unblind(&k.public(), &tagged), None, "{protocol:?}");
            // So does a tampered answer or proof.
            let mut bad = e.clone();
            bad.evaluated = k.public();
            assert_eq!(b.unblind(&k.public(), &bad), None, "{protocol:?}");
            let mut bad = e.clone();
            bad.response[0] ^= 1;
            assert_eq!(b.unblind(&k.public(), &bad), None, "{protocol:?}");
            // Garbage is no group element.
            assert!(k.evaluate(&[0xff; 32], &mut rng).is_none());
            assert!(
                k.evaluate(&[0; 32], &mut rng).is_none(),
                "the identity is refused"
            );
        }
        // Protocol 1 answers one participation always the same way.
        let k = key(&[1; 32], "drivers", Protocol::Original);
        let b = Blinding::new(Protocol::Original, &[1; 32], &[2; 32], &mut rng).unwrap();
        assert_eq!(
            k.evaluate(&b.blinded(), &mut rng),
            k.evaluate(&b.blinded(), &mut rng)
        );
    }

    #[test]
    fn keys_differ_per_proposal_class_and_protocol_and_round_trip() {
        for protocol in BOTH {
            let a = key(&[1; 32], "drivers", protocol);
            assert_ne!(a, key(&[2; 32], "drivers", protocol));
            assert_ne!(a, key(&[1; 32], "riders", protocol));
            assert_eq!(ClassKey::from_bytes(&a.to_bytes(), protocol), Some(a));
            assert_eq!(ClassKey::from_bytes(&[0; 32], protocol), None);
            assert_eq!(ClassKey::from_bytes(&[0xff; 32], protocol), None);
        }
        assert_ne!(
            key(&[1; 32], "drivers", Protocol::Original).public(),
            key(&[1; 32], "drivers", Protocol::Rfc9497).public()
        );
        assert!(point(&[0; 32]).is_none(), "the identity is refused");
        for n in [1, 2] {
            assert_eq!(Protocol::from_number(n).map(Protocol::number), Some(n));
        }
        assert_eq!(Protocol::from_number(3), None);
    }

    #[test]
    fn a_blinding_carried_as_bytes_unblinds_the_same() {
        let mut rng = StdRng::seed_from_u64(11);
        for protocol in BOTH {
            let (p, t) = ([4u8; 32], [5u8; 32]);
            let k = key(&p, "drivers", protocol);
            let b = Blinding::new(protocol, &p, &t, &mut rng).unwrap();
            let e = k.evaluate(&b.blinded(), &mut rng).unwrap();
            let carried = Blinding::from_bytes(protocol, &p, &t, &b.to_bytes()).unwrap();
            assert_eq!(carried.blinded(), b.blinded());
            assert_eq!(carried.unblind(&k.public(), &e), k.credential(&p, &t));
            // Another token's state does not give this token's credential.
            let other = Blinding::from_bytes(protocol, &p, &[6; 32], &b.to_bytes());
            assert!(other.and_then(|o| o.unblind(&k.public(), &e)) != k.credential(&p, &t));
            assert!(Blinding::from_bytes(protocol, &p, &t, &[0; 64]).is_none());
            assert!(Blinding::from_bytes(protocol, &p, &t, &b.to_bytes()[..63]).is_none());
        }
    }

    #[test]
    fn the_blinded_element_does_not_depend_on_the_token_alone() {
        let mut rng = StdRng::seed_from_u64(3);
        for protocol in BOTH {
            let p = [1u8; 32];
            let b1 = Blinding::new(protocol, &p, &[2; 32], &mut rng).unwrap();
            let b2 = Blinding::new(protocol, &p, &[2; 32], &mut rng).unwrap();
            assert_ne!(b1.blinded(), b2.blinded());
        }
    }

    /// Hands out fixed bytes, then zeros: makes a scalar drawn from 64 random bytes equal to a
    /// given 32-byte scalar, as RFC 9497's vectors fix the blind and the proof's nonce.
    struct KnownBytes(Vec<u8>);

    impl RngCore for KnownBytes {
        fn next_u32(&mut self) -> u32 {
            rand_core::impls::next_u32_via_fill(self)
        }
        fn next_u64(&mut self) -> u64 {
            rand_core::impls::next_u64_via_fill(self)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for d in dest {
                *d = if self.0.is_empty() {
                    0
                } else {
                    self.0.remove(0)
                };
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    impl CryptoRng for KnownBytes {}

    #[test]
    fn rfc9497_ristretto255_voprf_vectors() {
        let v: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/vectors/rfc9497-ristretto255-sha512-voprf.json"
        ))
        .unwrap();
        let hex_of = |v: &serde_json::Value| hex::decode(v.as_str().unwrap()).unwrap();
        let sk = derive_key_pair(&hex_of(&v["seed"]), &hex_of(&v["keyInfo"])).unwrap();
        assert_eq!(sk.to_bytes().to_vec(), hex_of(&v["skSm"]), "DeriveKeyPair");
        let k = ClassKey::from_bytes(&hex_of(&v["skSm"]), Protocol::Rfc9497).unwrap();
        let pk = hex_of(&v["pkSm"]);
        assert_eq!(k.public().to_vec(), pk);
        let vectors = v["vectors"].as_array().unwrap();
        assert_eq!(vectors.len(), 2);
        for t in vectors {
            let input = hex_of(&t["Input"]);
            let b =
                Blinding::of_input(input.clone(), &mut KnownBytes(hex_of(&t["Blind"]))).unwrap();
            assert_eq!(b.blinded().to_vec(), hex_of(&t["BlindedElement"]), "Blind");
            let e = k
                .evaluate(&b.blinded(), &mut KnownBytes(hex_of(&t["Proof"]["r"])))
                .unwrap();
            assert_eq!(e.evaluated.to_vec(), hex_of(&t["EvaluationElement"]));
            assert_eq!(
                [e.challenge, e.response].concat(),
                hex_of(&t["Proof"]["proof"])
            );
            let output = hex_of(&t["Output"]);
            assert_eq!(b.unblind(&pk, &e), Some(output.clone()), "Finalize");
            assert_eq!(k.evaluate_input(&input), Some(output), "Evaluate");
            let mut forged = e.clone();
            forged.challenge[3] ^= 0x10;
            assert_eq!(b.unblind(&pk, &forged), None, "a bad proof is refused");
        }
    }
}
