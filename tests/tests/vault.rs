//! The personal-data vault writes nothing before the rules accept the entry (issue 13 item 3),
//! on a node run in-process:
//!
//! 1. a stranger's profile for a member (refused: unknown signer) never replaces the member's
//!    data — not for a moment, while readers read concurrently;
//! 2. a crash between the accepted entry and its data leaves the commitment without data, and
//!    resubmitting the same entry stores it;
//! 3. concurrent refused calls change nothing;
//! 4. the member's own accepted updates, sent concurrently, leave the data of the latest
//!    accepted profile — the one whose commitments the log holds;
//!
//! and a signed read request is good for one read, on one co-op, for 30 seconds (item 4).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

use coopledger_e2e::{now_ms, sign, start_in_process};
use coopledger_governance::bylaws::Bylaws;
use coopledger_governance::personal::{commitment, record};
use coopledger_governance::{member_id, Founder, Genesis, Role};
use coopledger_ledger::codec::b64_encode;
use coopledger_ledger::Envelope;
use coopledger_node::folder;
use coopledger_node::vault::{read_message, Attribute, VaultError};
use ed25519_dalek::Signer as _;
use ed25519_dalek::SigningKey;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

const ORIGIN: &str = "vault.example.coop/ledger";

fn profile(
    key: &SigningKey,
    member: &str,
    seq: u64,
    name: &str,
    salt: u8,
) -> (Envelope, BTreeMap<String, Attribute>) {
    let env = sign(
        key,
        ORIGIN,
        "member.profile",
        seq,
        now_ms(),
        json!({"member": member, "attributes": {"name": b64_encode(commitment(&[salt; 32], name))}}),
    )
    .unwrap();
    let attrs = BTreeMap::from([(
        "name".to_owned(),
        Attribute {
            value: name.to_owned(),
            salt: b64_encode([salt; 32]),
        },
    )]);
    (env, attrs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_personal_data_is_written_before_the_rules_accept_its_entry() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("coop");
    let member_key = SigningKey::from_bytes(&[3; 32]);
    let stranger = SigningKey::from_bytes(&[66; 32]);
    let member = member_id(&member_key.verifying_key().to_bytes());
    folder::create(&data, ORIGIN, |node| Genesis {
        name: "Vault co-op".into(),
        node_key: node.verifying_key().to_bytes(),
        founders: vec![
            Founder {
                key: SigningKey::from_bytes(&[2; 32]).verifying_key().to_bytes(),
                class: "members".into(),
                roles: vec![Role::Board],
            },
            Founder {
                key: member_key.verifying_key().to_bytes(),
                class: "members".into(),
                roles: vec![],
            },
        ],
        bylaws: Bylaws::single_class(),
    })
    .await
    .unwrap();
    let (running, stop) = start_in_process(&data, None).await.unwrap();
    let node = running.node.clone();
    let vault = node.vault.clone();
    let name =
        |v: &coopledger_node::Vault| v.read(&member).unwrap().map(|a| a["name"].value.clone());

    // The member's own profile.
    let (env, attrs) = profile(&member_key, &member, 1, "Ada", 1);
    vault.submit_profile(env, attrs).await.unwrap();
    assert_eq!(name(&vault).as_deref(), Some("Ada"));

    // 1 and 3: 150 strangers' profiles for the member, 10 at a time, while a reader watches.
    let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let reader = {
        let (vault, watching, member) = (vault.clone(), watching.clone(), member.clone());
        tokio::task::spawn_blocking(move || {
            let mut reads = 0u32;
            while watching.load(std::sync::atomic::Ordering::Relaxed) {
                let v = vault
                    .read(&member)
                    .unwrap()
                    .map(|a| a["name"].value.clone());
                assert_eq!(
                    v.as_deref(),
                    Some("Ada"),
                    "a refused profile's data was visible"
                );
                reads += 1;
            }
            reads
        })
    };
    for round in 0..15u64 {
        let mut calls = Vec::new();
        for i in 0..10u64 {
            let (env, attrs) = profile(&stranger, &member, round * 10 + i + 1, "Mallory", 9);
            let vault = vault.clone();
            calls.push(tokio::spawn(async move {
                vault.submit_profile(env, attrs).await
            }));
        }
        for c in calls {
            match c.await.unwrap() {
                Err(VaultError::Rejected(_)) => {}
                other => panic!("a stranger's profile was not refused: {other:?}"),
            }
        }
    }
    watching.store(false, std::sync::atomic::Ordering::Relaxed);
    let reads = reader.await.unwrap();
    assert!(reads > 0);
    assert_eq!(name(&vault).as_deref(), Some("Ada"));

    // 2: the entry is accepted but the node "crashes" before storing the data (submitted to the
    // log directly); the commitment is in the log, no data is; the same entry again stores it.
    let (env, attrs) = profile(&member_key, &member, 2, "Ada Lovelace", 2);
    let first = node.log.submit(env.clone()).await.unwrap();
    assert_eq!(
        name(&vault).as_deref(),
        Some("Ada"),
        "old data until the retry"
    );
    let again = vault.submit_profile(env, attrs).await.unwrap();
    assert_eq!(again.index, first.index);
    assert!(again.duplicate);
    assert_eq!(name(&vault).as_deref(), Some("Ada Lovelace"));

    // 4: the member's own updates, sent together: the data is the latest accepted profile's.
    let mut calls = Vec::new();
    for (seq, who) in [(3, "A. Lovelace"), (4, "Augusta Ada King")] {
        let (env, attrs) = profile(&member_key, &member, seq, who, seq as u8);
        let vault = vault.clone();
        calls.push(tokio::spawn(async move {
            vault.submit_profile(env, attrs).await
        }));
    }
    for c in calls {
        // One may be refused as out of order (seq 4 before 3); none may leave stale data.
        let _ = c.await.unwrap();
    }
    let rec = record(node.log.as_ref(), &member).unwrap().unwrap();
    let stored = vault.read(&member).unwrap().unwrap();
    let salt: [u8; 32] = coopledger_ledger::codec::b64_decode(&stored["name"].salt)
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(
        rec.attributes["name"],
        b64_encode(commitment(&salt, &stored["name"].value)),
        "the stored data opens the commitment the log holds"
    );

    // The data folder alone decrypts nothing: the data key is stored wrapped under the vault
    // key, which is in no file of the folder, and the folder is private to the node's user.
    let wrapped = node
        .log
        .offlog_get(format!("pii-key/{member}").as_bytes())
        .unwrap()
        .unwrap();
    assert_eq!((wrapped.len(), wrapped[0]), (61, 1), "a wrapped key");
    let other = coopledger_node::Vault::new(
        node.log.clone(),
        coopledger_node::vault::VaultKey::from_bytes([8; 32]),
    );
    let err = other.read(&member).unwrap_err().to_string();
    assert!(err.contains("does not unwrap"), "{err}");
    let kek = coopledger_e2e::TEST_VAULT_KEY;
    let mut files = vec![data.clone()];
    while let Some(d) = files.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                files.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                assert!(
                    !bytes.windows(32).any(|w| w == kek),
                    "{} holds the vault key",
                    p.display()
                );
            }
        }
    }
    {
        use std::os::unix::fs::PermissionsExt;
        for d in [data.clone(), data.join("ledger")] {
            let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", d.display());
        }
    }
    // A key stored bare (before wrapping existed) is wrapped at start-up and still reads.
    let legacy = "m-00000000000000aa";
    let bare = [4u8; 32];
    node.log
        .offlog_put(format!("pii-key/{legacy}").as_bytes(), &bare)
        .unwrap();
    let old = {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        let plain =
            br#"{"name":{"salt":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","value":"Grace"}}"#;
        let sealed = chacha20poly1305::ChaCha20Poly1305::new((&bare).into())
            .encrypt(
                (&[0u8; 12]).into(),
                Payload {
                    msg: plain,
                    aad: &[b"coopledger/v1/pii\0".as_slice(), legacy.as_bytes()].concat(),
                },
            )
            .unwrap();
        [[0u8; 12].as_slice(), &sealed].concat()
    };
    node.log
        .offlog_put(format!("pii-data/{legacy}").as_bytes(), &old)
        .unwrap();
    assert_eq!(vault.wrap_bare_keys().unwrap(), 1);
    assert_eq!(vault.read(legacy).unwrap().unwrap()["name"].value, "Grace");
    assert_eq!(vault.wrap_bare_keys().unwrap(), 0);

    // Read requests are good for one read, on this co-op, for 30 seconds.
    let request = |ts: u64, nonce: [u8; 16], origin: &str| {
        let msg = read_message(origin, &member, ts, &nonce);
        (
            ts,
            nonce,
            member_key.verifying_key().to_bytes(),
            member_key.sign(&msg).to_bytes(),
        )
    };
    let check = |(ts, nonce, signer, sig): (u64, [u8; 16], [u8; 32], [u8; 64])| {
        vault
            .authorise_read(&member, ts, &nonce, &signer, &sig)
            .map_err(|e| e.to_string())
    };
    let now = now_ms();
    let fresh = request(now, [1; 16], ORIGIN);
    check(fresh).unwrap();
    let again = check(fresh).unwrap_err();
    assert!(again.contains("nonce"), "{again}");
    let ahead = check(request(now + 240_000, [2; 16], ORIGIN)).unwrap_err();
    assert!(ahead.starts_with("ts"), "{ahead}");
    let stale = check(request(now - 31_000, [3; 16], ORIGIN)).unwrap_err();
    assert!(stale.starts_with("ts"), "{stale}");
    let elsewhere = check(request(now, [4; 16], "other.example.coop/ledger")).unwrap_err();
    assert!(elsewhere.starts_with("sig"), "{elsewhere}");
    check(request(now, [5; 16], ORIGIN)).unwrap();

    // (Anything still holding the ledger would keep `stopped` waiting for it.)
    drop((vault, other, node));
    let _ = stop.send(());
    running.stopped().await;
}

/// The vault key file: made beside the folder when the vault is empty; once data keys are
/// wrapped under it, a node without it refuses to start (rather than make a new key and lose
/// the data), and starts again when it is back.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_without_its_vault_key_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("coop");
    let member_key = SigningKey::from_bytes(&[3; 32]);
    let member = member_id(&member_key.verifying_key().to_bytes());
    folder::create(&data, ORIGIN, |node| Genesis {
        name: "Vault co-op".into(),
        node_key: node.verifying_key().to_bytes(),
        founders: vec![Founder {
            key: member_key.verifying_key().to_bytes(),
            class: "members".into(),
            roles: vec![Role::Board],
        }],
        bylaws: Bylaws::single_class(),
    })
    .await
    .unwrap();
    let key_file = coopledger_node::VaultKeySource::beside(&data);
    let coopledger_node::VaultKeySource::File(path) = key_file.clone() else {
        panic!("a file source")
    };
    let start = |source: coopledger_node::VaultKeySource| {
        let data = data.clone();
        async move {
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            coopledger_node::Node::start(
                coopledger_node::NodeConfig {
                    data,
                    log: coopledger_ledger::LogConfig::default(),
                    witness_for: vec![],
                    witnesses: vec![],
                    vault_key: source,
                    anchoring: None,
                    frontend: Arc::new(coopledger_rpc::JsonRpc::default()),
                    cluster: None,
                },
                std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
                async move {
                    let _ = stopped.await;
                },
            )
            .await
            .map(|r| (r, stop))
        }
    };
    let (running, stop) = start(key_file.clone()).await.unwrap();
    assert!(
        path.exists(),
        "the vault key file is made beside the folder"
    );
    assert!(!path.starts_with(&data));
    let (env, attrs) = profile(&member_key, &member, 1, "Ada", 1);
    running.node.vault.submit_profile(env, attrs).await.unwrap();
    let _ = stop.send(());
    running.stopped().await;

    let saved = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    match start(key_file.clone()).await {
        Err(coopledger_node::NodeError::VaultKeyMissing(p)) => assert_eq!(p, path),
        other => panic!("expected VaultKeyMissing, got {:?}", other.map(|_| ())),
    }
    assert!(!path.exists(), "no new key was made over wrapped data");
    std::fs::write(&path, saved).unwrap();
    let (running, stop) = start(key_file).await.unwrap();
    assert_eq!(
        running.node.vault.read(&member).unwrap().unwrap()["name"].value,
        "Ada"
    );
    let _ = stop.send(());
    running.stopped().await;
}
