//! Signed-note vectors from Go's `golang.org/x/mod/sumdb/note` (note_test.go, example_test.go)
//! and the C2SP signed-note spec, via `ledger/testdata/signed-note.json`; plus checkpoint rules.

use super::*;
use serde_json::Value;

fn vectors() -> Value {
    serde_json::from_str(include_str!("../testdata/signed-note.json")).unwrap()
}

fn seed(hexs: &str) -> SigningKey {
    SigningKey::from_bytes(&hex::decode(hexs).unwrap().try_into().unwrap())
}

#[test]
fn go_sumdb_keys_give_the_published_verifier_keys() {
    let v = vectors();
    for k in v["keys"].as_array().unwrap() {
        let name = k["name"].as_str().unwrap();
        let vkey = k["vkey"].as_str().unwrap();
        let parsed = NoteVerifier::parse(vkey).unwrap();
        assert_eq!(parsed.name(), name);
        assert_eq!(
            hex::encode(parsed.public_key()),
            k["public_key_hex"].as_str().unwrap()
        );
        if let Some(s) = k["seed_hex"].as_str() {
            let signer = NoteSigner::new(name, seed(s)).unwrap();
            assert_eq!(signer.vkey(), vkey, "{name}");
        }
    }
}

#[test]
fn go_sumdb_notes_verify_and_signing_reproduces_them() {
    let v = vectors();
    let keys: Vec<NoteVerifier> = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| NoteVerifier::parse(k["vkey"].as_str().unwrap()).unwrap())
        .collect();
    for n in v["notes"].as_array().unwrap() {
        let text = n["note"].as_str().unwrap();
        let note = SignedNote::parse(text.as_bytes()).unwrap();
        let mut signed_by = note.verify(&keys).unwrap();
        signed_by.sort();
        let mut want: Vec<String> = n["verifies_with"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect();
        want.sort();
        assert_eq!(signed_by, want);
        // Each key alone also opens it.
        for k in keys.iter().filter(|k| want.iter().any(|w| w == k.name())) {
            assert!(note.verify(std::slice::from_ref(k)).is_ok());
        }
    }
    // Ed25519 is deterministic: PeterNeumann's seed reproduces the first note's first line.
    let first = v["notes"][0]["note"].as_str().unwrap();
    let note = SignedNote::parse(first.as_bytes()).unwrap();
    let signer = NoteSigner::new(
        "PeterNeumann",
        seed(v["keys"][0]["seed_hex"].as_str().unwrap()),
    )
    .unwrap();
    let mine = signer.sign(&note.text).unwrap();
    assert!(first.starts_with(&mine), "{mine}");
}

#[test]
fn go_sumdb_invalid_verifier_keys_are_rejected() {
    for bad in vectors()["invalid_vkeys"].as_array().unwrap() {
        assert!(NoteVerifier::parse(bad.as_str().unwrap()).is_err(), "{bad}");
    }
    for bad in [
        "",
        "name",
        "name+1234567+AQ==",
        "na me+00000000+AQ==",
        "+00000000+AQ==",
    ] {
        assert!(NoteVerifier::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn malformed_notes_are_rejected() {
    let v = vectors();
    let good = v["notes"][1]["note"].as_str().unwrap();
    let key = NoteVerifier::parse(v["keys"][2]["vkey"].as_str().unwrap()).unwrap();
    assert!(SignedNote::parse(good.as_bytes())
        .unwrap()
        .verify(std::slice::from_ref(&key))
        .is_ok());
    let (text, sig) = good.split_once("\n\n").unwrap();
    let sig_line = sig.trim_end();
    let cases: Vec<(String, &str)> = vec![
        (
            format!("{text}\n{sig_line}\n"),
            "text not followed by a blank line",
        ),
        (
            format!("{text}\n\n{sig_line}"),
            "last signature line without newline",
        ),
        (format!("\u{1}{text}\n\n{sig_line}\n"), "control character"),
        (
            format!("{text}\n\n{sig_line}\nnot a signature\n"),
            "trailing non-signature line",
        ),
        (
            format!("{text}\n\n\u{2014} example.com/foo  {}\n", &sig_line[20..]),
            "space in name",
        ),
        (
            format!("{text}\n\n{}", format!("{sig_line}\n").repeat(101)),
            "more than 100 signatures",
        ),
    ];
    for (note, why) in cases {
        let res = SignedNote::parse(note.as_bytes())
            .and_then(|n| n.verify(std::slice::from_ref(&key)).map(|_| ()));
        assert!(res.is_err(), "{why}");
    }
    assert!(SignedNote::parse(b"\xffabc\n\n").is_err(), "0xff");
    // A valid note with a tampered text fails verification.
    let tampered = good.replacen("example", "exAmple", 1);
    assert!(matches!(
        SignedNote::parse(tampered.as_bytes())
            .unwrap()
            .verify(&[key]),
        Err(NoteError::BadSignature(_))
    ));
}

#[test]
fn checkpoint_round_trip_and_origin_binding() {
    let signer = NoteSigner::new("coop.example/ledger", seed(&"11".repeat(32))).unwrap();
    let cp = Checkpoint {
        origin: "coop.example/ledger".into(),
        size: 42,
        root: crate::hash::sha256(b"root"),
        extensions: vec![],
    };
    let note = signer.sign(&cp.to_text()).unwrap();
    let opened = SignedCheckpoint::open(&note, &signer.verifier()).unwrap();
    assert_eq!(opened.checkpoint, cp);
    // Same key, different name: the key id differs, so the signature is not recognised.
    let other = NoteSigner::new("other.example/ledger", seed(&"11".repeat(32))).unwrap();
    assert!(SignedCheckpoint::open(&note, &other.verifier()).is_err());
    // Signed by the right key but claiming another origin.
    let wrong = Checkpoint {
        origin: "evil.example/ledger".into(),
        ..cp.clone()
    };
    let note = signer.sign(&wrong.to_text()).unwrap();
    assert!(matches!(
        SignedCheckpoint::open(&note, &signer.verifier()),
        Err(NoteError::OriginMismatch { .. })
    ));
    for bad in [
        "o\n01\nAAAA\n",
        "o\n-1\n",
        "o\n1\nAAAA\n",
        "\n1\n",
        "o\n1\n",
    ] {
        assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
    }
}
