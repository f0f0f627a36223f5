//! Edge-case signatures: single and batched verdicts must agree on every one of them, in every
//! batch composition tried, and honest signatures must also pass ed25519-dalek's `verify_strict`.

use super::*;
use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT as B, EIGHT_TORSION};
use ed25519_dalek::{Signer, SigningKey, Verifier as _};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

struct Case {
    name: &'static str,
    key: [u8; 32],
    msg: Vec<u8>,
    sig: [u8; 64],
    /// Our verdict.
    ours: bool,
    /// What ed25519-dalek `verify_strict` says (for the record of where the rules differ).
    dalek_strict: bool,
}

/// Signs with a raw secret scalar and a chosen `R` offset, as a malicious signer could.
fn raw_sign(
    a: Scalar,
    a_bytes: [u8; 32],
    msg: &[u8],
    r: Scalar,
    r_offset: EdwardsPoint,
) -> [u8; 64] {
    let big_r = (r * B + r_offset).compress();
    let mut h = Sha512::new();
    h.update(big_r.as_bytes());
    h.update(a_bytes);
    h.update(msg);
    let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
    let s = r + k * a;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(big_r.as_bytes());
    sig[32..].copy_from_slice(s.as_bytes());
    sig
}

fn cases() -> Vec<Case> {
    let mut rng = StdRng::seed_from_u64(7);
    let mut out = Vec::new();
    let sk = SigningKey::from_bytes(&rng.gen());
    let key = sk.verifying_key().to_bytes();
    for i in 0..6u8 {
        let msg = vec![i; 10 + i as usize];
        let sig = sk.sign(&msg).to_bytes();
        out.push(Case {
            name: "honest",
            key,
            msg,
            sig,
            ours: true,
            dalek_strict: true,
        });
    }
    // Wrong message.
    let sig = sk.sign(b"one").to_bytes();
    out.push(Case {
        name: "wrong message",
        key,
        msg: b"two".to_vec(),
        sig,
        ours: false,
        dalek_strict: false,
    });
    // S + ℓ: non-canonical scalar (malleability); RFC 8032 requires rejection.
    let honest = sk.sign(b"malleable").to_bytes();
    let s = Scalar::from_canonical_bytes(honest[32..].try_into().unwrap()).unwrap();
    let l_bytes: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut s_plus_l = [0u8; 32];
    let mut carry = 0u16;
    for j in 0..32 {
        let v = s.as_bytes()[j] as u16 + l_bytes[j] as u16 + carry;
        s_plus_l[j] = v as u8;
        carry = v >> 8;
    }
    if carry == 0 {
        let mut sig = honest;
        sig[32..].copy_from_slice(&s_plus_l);
        out.push(Case {
            name: "S + l",
            key,
            msg: b"malleable".to_vec(),
            sig,
            ours: false,
            dalek_strict: false,
        });
    }
    // Small-order public key (the identity), with a signature that satisfies the equation.
    let ident = EdwardsPoint::default().compress().to_bytes();
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&ident);
    out.push(Case {
        name: "identity key and R, S = 0",
        key: ident,
        msg: b"anything".to_vec(),
        sig,
        ours: false,
        dalek_strict: false,
    });
    // Non-canonical encoding of a key: y = p + 1 (decodes to y = 1, a small-order point anyway)
    // and of R: take an honest R and flip to y + p where possible (only for y < 19).
    let mut noncanon = [0xffu8; 32];
    noncanon[0] = 0xee; // p + 1 = 2^255 - 18
    noncanon[31] = 0x7f;
    out.push(Case {
        name: "non-canonical key encoding",
        key: noncanon,
        msg: b"x".to_vec(),
        sig: honest,
        ours: false,
        dalek_strict: false,
    });
    // A scalar-chosen key with torsion in R: cofactorless rejects, cofactored accepts.
    let a = Scalar::from_bytes_mod_order(rng.gen());
    let a_bytes = (a * B).compress().to_bytes();
    for (t, tp) in EIGHT_TORSION.iter().enumerate().skip(1) {
        let msg = format!("torsion in R {t}").into_bytes();
        let r = Scalar::from_bytes_mod_order(rng.gen());
        let sig = raw_sign(a, a_bytes, &msg, r, *tp);
        out.push(Case {
            name: "mixed-order R",
            key: a_bytes,
            msg,
            sig,
            ours: true,
            dalek_strict: false,
        });
    }
    // A mixed-order public key A + T: the signer knows `a`, the equation holds up to torsion.
    let a_mixed = (a * B + EIGHT_TORSION[1]).compress().to_bytes();
    let msg = b"mixed key".to_vec();
    let r = Scalar::from_bytes_mod_order(rng.gen());
    let sig = raw_sign(a, a_mixed, &msg, r, EdwardsPoint::default());
    out.push(Case {
        name: "mixed-order A",
        key: a_mixed,
        msg,
        sig,
        ours: true,
        dalek_strict: false,
    });
    out
}

#[test]
fn single_verdicts_are_as_documented() {
    for c in cases() {
        let m = SignedMessage {
            key: &c.key,
            msg: &c.msg,
            sig: &c.sig,
        };
        assert_eq!(verify_one(&m), c.ours, "{}", c.name);
        let strict = ed25519_dalek::VerifyingKey::from_bytes(&c.key)
            .map(|k| {
                k.verify_strict(&c.msg, &ed25519_dalek::Signature::from_bytes(&c.sig))
                    .is_ok()
            })
            .unwrap_or(false);
        assert_eq!(strict, c.dalek_strict, "dalek verify_strict on {}", c.name);
        if c.dalek_strict {
            // Anything dalek-strict accepts, we accept: ordinary signers are never refused.
            assert!(c.ours, "{}", c.name);
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&c.key).unwrap();
            assert!(vk
                .verify(&c.msg, &ed25519_dalek::Signature::from_bytes(&c.sig))
                .is_ok());
        }
    }
}

#[test]
fn batch_verdicts_equal_single_verdicts_in_every_composition() {
    let all = cases();
    let mut rng = StdRng::seed_from_u64(99);
    for round in 0..200 {
        let n = rng.gen_range(1..=all.len());
        let picked: Vec<&Case> = (0..n).map(|_| &all[rng.gen_range(0..all.len())]).collect();
        let items: Vec<SignedMessage<'_>> = picked
            .iter()
            .map(|c| SignedMessage {
                key: &c.key,
                msg: &c.msg,
                sig: &c.sig,
            })
            .collect();
        let want: Vec<bool> = picked.iter().map(|c| c.ours).collect();
        assert_eq!(verify_many(&items), want, "round {round}");
    }
}

#[test]
fn batch_of_only_valid_signatures_passes_and_one_bad_is_pinpointed() {
    let mut rng = StdRng::seed_from_u64(1);
    let keys: Vec<SigningKey> = (0..64)
        .map(|_| SigningKey::from_bytes(&rng.gen()))
        .collect();
    let msgs: Vec<Vec<u8>> = (0..64u32).map(|i| i.to_be_bytes().to_vec()).collect();
    let pubs: Vec<[u8; 32]> = keys.iter().map(|k| k.verifying_key().to_bytes()).collect();
    let mut sigs: Vec<[u8; 64]> = keys
        .iter()
        .zip(&msgs)
        .map(|(k, m)| k.sign(m).to_bytes())
        .collect();
    let items = |sigs: &[[u8; 64]]| -> Vec<bool> {
        let v: Vec<SignedMessage<'_>> = (0..64)
            .map(|i| SignedMessage {
                key: &pubs[i],
                msg: &msgs[i],
                sig: &sigs[i],
            })
            .collect();
        verify_many(&v)
    };
    assert!(items(&sigs).iter().all(|v| *v));
    sigs[17][5] ^= 1;
    let verdicts = items(&sigs);
    assert_eq!(verdicts.iter().filter(|v| !**v).count(), 1);
    assert!(!verdicts[17]);
}

/// The ed25519-speccheck vectors (see `testdata/README.md`). Verdicts of our rule, case by case:
/// 0–2 have a small-order `A` or `R` → refused (rule 2); 3 passes both equations → accepted;
/// 4–5 pass only the cofactored equation (mixed-order points; 5 is the "pre-reduced scalar"
/// trap) → accepted; 6–7 have `S ≥ ℓ` → refused (rule 1); 8–9 have a non-canonical `R`
/// encoding → refused (rule 2). ed25519-dalek `verify_strict` accepts only case 3.
#[test]
fn speccheck_vectors_get_the_documented_verdicts_in_single_and_batch() {
    let cases: Vec<serde_json::Value> =
        serde_json::from_str(include_str!("../testdata/ed25519-speccheck-cases.json")).unwrap();
    let ours = [
        false, false, false, true, true, true, false, false, false, false,
    ];
    let strict = [
        false, false, false, true, false, false, false, false, false, false,
    ];
    let parsed: Vec<([u8; 32], Vec<u8>, [u8; 64])> = cases
        .iter()
        .map(|c| {
            let h = |k: &str| hex::decode(c[k].as_str().unwrap()).unwrap();
            (
                h("pub_key").try_into().unwrap(),
                h("message"),
                h("signature").try_into().unwrap(),
            )
        })
        .collect();
    assert_eq!(parsed.len(), 10);
    for (i, (key, msg, sig)) in parsed.iter().enumerate() {
        let m = SignedMessage { key, msg, sig };
        assert_eq!(verify_one(&m), ours[i], "case {i}");
        let dalek = ed25519_dalek::VerifyingKey::from_bytes(key)
            .map(|k| {
                k.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(sig))
                    .is_ok()
            })
            .unwrap_or(false);
        assert_eq!(dalek, strict[i], "dalek verify_strict, case {i}");
    }
    // Every subset (as a bit mask) batched: the same verdicts as alone.
    for mask in 1u32..(1 << 10) {
        let picked: Vec<usize> = (0..10).filter(|i| mask & (1 << i) != 0).collect();
        let items: Vec<SignedMessage<'_>> = picked
            .iter()
            .map(|&i| SignedMessage {
                key: &parsed[i].0,
                msg: &parsed[i].1,
                sig: &parsed[i].2,
            })
            .collect();
        let want: Vec<bool> = picked.iter().map(|&i| ours[i]).collect();
        assert_eq!(verify_many(&items), want, "subset {mask:#b}");
    }
}

#[test]
fn unreduced_y_encodings_are_recognised_by_bytes() {
    let mut p = [0xffu8; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    assert!(y_not_reduced(&p), "y = p");
    let mut p_sign = p;
    p_sign[31] = 0xff;
    assert!(y_not_reduced(&p_sign), "y = p with the sign bit");
    let mut max = [0xffu8; 32];
    max[31] = 0x7f;
    assert!(y_not_reduced(&max), "y = 2^255 - 1");
    let mut below = p;
    below[0] = 0xec;
    assert!(!y_not_reduced(&below), "y = p - 1 is canonical");
    let mut low = p;
    low[5] = 0xfe;
    assert!(!y_not_reduced(&low));
    // Agrees with re-encoding for every y in the tail [p - 40, 2^255 - 1] that decodes.
    for delta in 0u8..59 {
        let mut b = [0xffu8; 32];
        b[31] = 0x7f;
        b[0] = 0xff - delta;
        if let Some(pt) = CompressedEdwardsY(b).decompress() {
            assert_eq!(
                y_not_reduced(&b),
                pt.compress().to_bytes() != b,
                "y tail - {delta}"
            );
        }
    }
}
