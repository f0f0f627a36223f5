//! The one Ed25519 verdict every node and every replay gives (DESIGN §5), for single and batched
//! checks alike.
//!
//! The rule, in order:
//! 1. `S` must be a canonical scalar (`S < ℓ`), as RFC 8032 §5.1.7 requires.
//! 2. `A` (the public key) and `R` must be *canonical* point encodings (`y < p`, re-encoding gives
//!    the same 32 bytes) and must not be of small order.
//! 3. The *cofactored* equation `[8]([S]B − R − [k]A) = 0`, `k = SHA-512(R ‖ A ‖ M) mod ℓ`.
//!
//! Why cofactored: ed25519-dalek's `verify_strict` is cofactorless while any batch check is
//! effectively cofactored, so a signature whose `R` carries a torsion component could pass a batch
//! and fail alone — different verdicts on different nodes. With the cofactored equation in both,
//! a passing batch implies (except with probability 2⁻¹²⁸ over the batch's random weights) that
//! every member passes alone, and a failing batch falls back to single checks. So the verdict of
//! [`verify_many`] is exactly that of [`verify_one`] on every input; `sig_tests` checks this on
//! edge-case signatures. Signatures made by ordinary RFC 8032 signers (ed25519-dalek, Go,
//! libsodium, WebCrypto) pass both this rule and `verify_strict`.

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use rand::RngCore;
use sha2::{Digest, Sha512};

/// One signature to check: public key, message, signature, as raw bytes.
#[derive(Debug, Clone, Copy)]
pub struct SignedMessage<'a> {
    /// Ed25519 public key (`A`).
    pub key: &'a [u8; 32],
    /// The exact signed bytes.
    pub msg: &'a [u8],
    /// `R ‖ S`.
    pub sig: &'a [u8; 64],
}

/// True when the encoded `y` (the low 255 bits) is at least `p = 2^255 − 19`: such encodings
/// decode (reduced mod p) but are not canonical. Byte comparison, no field arithmetic.
fn y_not_reduced(bytes: &[u8; 32]) -> bool {
    let [first, middle @ .., last] = bytes;
    *first >= 0xed && middle.iter().all(|b| *b == 0xff) && (*last & 0x7f) == 0x7f
}

/// A point that passed rule 2. (The only canonical-`y` encodings with `x = 0` and the sign bit
/// set are `y = ±1`, both of small order, so the small-order check covers them.)
fn strict_point(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
    if y_not_reduced(bytes) {
        return None;
    }
    let p = CompressedEdwardsY(*bytes).decompress()?;
    if p.is_small_order() {
        return None;
    }
    Some(p)
}

/// Decoded public keys, so a member who signs often costs one decompression, not one per entry.
/// Bounded: cleared when full (a cache miss costs only time, never a different verdict).
fn key_point(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    const MAX_KEYS: usize = 100_000;
    static KEYS: OnceLock<Mutex<HashMap<[u8; 32], Option<EdwardsPoint>>>> = OnceLock::new();
    let cache = KEYS.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(hit) = cache.lock().ok().and_then(|c| c.get(bytes).copied()) {
        return hit;
    }
    let point = strict_point(bytes);
    if let Ok(mut c) = cache.lock() {
        if c.len() >= MAX_KEYS {
            c.clear();
        }
        c.insert(*bytes, point);
    }
    point
}

/// Rules 1 and 2, plus the challenge scalar: everything but the equation.
struct Prepared {
    a: EdwardsPoint,
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

fn prepare(m: &SignedMessage<'_>) -> Option<Prepared> {
    let (r_bytes, s_bytes) = m.sig.split_at(32);
    let r_bytes: [u8; 32] = r_bytes.try_into().ok()?;
    let s_bytes: [u8; 32] = s_bytes.try_into().ok()?;
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
    let a = key_point(m.key)?;
    let r = strict_point(&r_bytes)?;
    let mut h = Sha512::new();
    h.update(r_bytes);
    h.update(m.key);
    h.update(m.msg);
    let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
    Some(Prepared { a, r, s, k })
}

/// True when `key` is a canonical, non-small-order Ed25519 public key (rule 2 for `A`).
pub fn is_acceptable_key(key: &[u8; 32]) -> bool {
    strict_point(key).is_some()
}

/// The verdict for one signature.
pub fn verify_one(m: &SignedMessage<'_>) -> bool {
    let Some(p) = prepare(m) else { return false };
    // [S]B − [k]A − R, then multiply by the cofactor.
    let sb_minus_ka = EdwardsPoint::vartime_double_scalar_mul_basepoint(&p.k, &(-p.a), &p.s);
    (sb_minus_ka - p.r).mul_by_cofactor().is_identity()
}

/// The verdict for each of many signatures: one randomised cofactored batch equation for all that
/// pass rules 1–2; if it fails, each is checked alone. Always equal to mapping [`verify_one`].
pub fn verify_many(items: &[SignedMessage<'_>]) -> Vec<bool> {
    let prepared: Vec<Option<Prepared>> = items.iter().map(prepare).collect();
    let candidates: Vec<&Prepared> = prepared.iter().flatten().collect();
    if candidates.len() >= 2 && batch_equation_holds(&candidates) {
        return prepared.iter().map(Option::is_some).collect();
    }
    items.iter().map(verify_one).collect()
}

/// `[8]( (−Σ zᵢSᵢ)B + Σ zᵢRᵢ + Σ (zᵢkᵢ)Aᵢ ) = 0` with independent random 128-bit `zᵢ`.
fn batch_equation_holds(items: &[&Prepared]) -> bool {
    let mut rng = rand::thread_rng();
    let zs: Vec<Scalar> = items
        .iter()
        .map(|_| {
            let mut b = [0u8; 16];
            rng.fill_bytes(&mut b);
            Scalar::from(u128::from_le_bytes(b))
        })
        .collect();
    let b_coeff: Scalar = items.iter().zip(&zs).map(|(p, z)| z * p.s).sum();
    let scalars = std::iter::once(-b_coeff)
        .chain(zs.iter().copied())
        .chain(items.iter().zip(&zs).map(|(p, z)| z * p.k));
    let points = std::iter::once(curve25519_dalek::constants::ED25519_BASEPOINT_POINT)
        .chain(items.iter().map(|p| p.r))
        .chain(items.iter().map(|p| p.a));
    EdwardsPoint::vartime_multiscalar_mul(scalars, points)
        .mul_by_cofactor()
        .is_identity()
}

#[cfg(test)]
#[path = "sig_tests.rs"]
mod sig_tests;
