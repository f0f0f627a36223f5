//! Recovery kits (`coopledger_node::recovery`, `recovery_*`) on a node run in-process: a kit
//! is stored only with an accepted `member.key_add` of its backup key (a refused entry — a
//! stranger's, or a key already known — stores nothing); it is handed out by its locator only
//! while its key is a current key of a member; one key may have several kits (code, passkey);
//! a member's new backup key drops the old key's kits; a revoked
//! backup key's kit is no longer handed out; bad parameters are named over JSON-RPC.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

use coopledger_e2e::{now_ms, sign, start_in_process};
use coopledger_governance::bylaws::Bylaws;
use coopledger_governance::rules::key_add_message;
use coopledger_governance::{member_id, Founder, Genesis, Role};
use coopledger_ledger::codec::b64_encode;
use coopledger_ledger::Envelope;
use coopledger_node::folder;
use coopledger_node::recovery::KitError;
use ed25519_dalek::{Signer as _, SigningKey};
use serde_json::{json, Value};

const ORIGIN: &str = "recovery.example.coop/ledger";

fn key_add(signer: &SigningKey, seq: u64, backup: &SigningKey, member: &str) -> Envelope {
    let proof = backup.sign(&key_add_message(ORIGIN, member));
    sign(
        signer,
        ORIGIN,
        "member.key_add",
        seq,
        now_ms(),
        json!({"key": b64_encode(backup.verifying_key().to_bytes()),
               "proof": b64_encode(proof.to_bytes()), "label": "recovery"}),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kit_is_kept_only_for_an_accepted_backup_key_and_only_while_it_is_current() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("coop");
    let device = SigningKey::from_bytes(&[3; 32]);
    let stranger = SigningKey::from_bytes(&[66; 32]);
    let member = member_id(&device.verifying_key().to_bytes());
    folder::create(&data, ORIGIN, |node| Genesis {
        name: "Recovery co-op".into(),
        node_key: node.verifying_key().to_bytes(),
        founders: vec![
            Founder {
                key: SigningKey::from_bytes(&[2; 32]).verifying_key().to_bytes(),
                class: "members".into(),
                roles: vec![Role::Board],
            },
            Founder {
                key: device.verifying_key().to_bytes(),
                class: "members".into(),
                roles: vec![],
            },
        ],
        bylaws: Bylaws::single_class(),
    })
    .await
    .unwrap();
    let (running, stop) = start_in_process(&data, None).await.unwrap();
    let kits = running.node.recovery.clone();
    let (first, second) = ([0x11u8; 32], [0x22u8; 32]);
    let backup = SigningKey::from_bytes(&[40; 32]);
    let sealed = vec![0xAB; 76];

    // A stranger's key_add is refused by the rules: nothing is kept.
    let refused = kits
        .store(
            key_add(&stranger, 1, &backup, &member),
            first,
            sealed.clone(),
        )
        .await;
    assert!(matches!(refused, Err(KitError::Rejected(_))), "{refused:?}");
    assert!(kits.fetch(&first).unwrap().is_none());
    // Bad shapes are named before anything is submitted.
    let tiny = kits
        .store(key_add(&device, 1, &backup, &member), first, vec![1; 10])
        .await;
    assert!(
        matches!(tiny, Err(KitError::Field { field: "kit", .. })),
        "{tiny:?}"
    );
    let attest = sign(
        &device,
        ORIGIN,
        "coop.attest",
        1,
        now_ms(),
        coopledger_e2e::attest(1),
    )
    .unwrap();
    let wrong = kits.store(attest, first, sealed.clone()).await;
    assert!(
        matches!(wrong, Err(KitError::Field { field: "entry", .. })),
        "{wrong:?}"
    );

    // The member's own: kept, and handed out by its locator.
    let entry = key_add(&device, 1, &backup, &member);
    let r = kits
        .store(entry.clone(), first, sealed.clone())
        .await
        .unwrap();
    let kit = kits.fetch(&first).unwrap().unwrap();
    assert_eq!(kit.member, member);
    assert_eq!(kit.key, b64_encode(backup.verifying_key().to_bytes()));
    assert_eq!(kit.sealed, b64_encode(&sealed));
    assert_eq!(kit.index, r.index);
    // Another key's kit cannot take the same locator.
    let other = SigningKey::from_bytes(&[41; 32]);
    let taken = kits
        .store(key_add(&device, 2, &other, &member), first, sealed.clone())
        .await;
    assert!(
        matches!(
            taken,
            Err(KitError::Field {
                field: "locator",
                ..
            })
        ),
        "{taken:?}"
    );
    // A key the co-op already knows is refused by the rules, and the first kit stays.
    let again = kits
        .store(
            key_add(&device, 2, &backup, &member),
            second,
            sealed.clone(),
        )
        .await;
    assert!(matches!(again, Err(KitError::Rejected(_))), "{again:?}");
    assert!(kits.fetch(&second).unwrap().is_none());

    // The same backup key sealed a second time (a passkey's kit), by sending its entry again:
    // both kits are kept.
    let passkey_locator = [0x33u8; 32];
    let key_add_replay = entry.clone();
    let again = kits
        .store(entry, passkey_locator, vec![0xEF; 76])
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.index, r.index);
    assert!(kits.fetch(&first).unwrap().is_some());
    assert!(kits.fetch(&passkey_locator).unwrap().is_some());
    // A new code: the new kit is kept, the old one dropped.
    let second_entry = key_add(&device, 2, &other, &member);
    kits.store(second_entry.clone(), second, vec![0xCD; 76])
        .await
        .unwrap();
    assert!(kits.fetch(&first).unwrap().is_none());
    assert_eq!(
        kits.fetch(&second).unwrap().unwrap().sealed,
        b64_encode([0xCD; 76])
    );

    // Replaying the first backup key's entry (public on the log) cannot drop the newer key's
    // kits.
    let replay = kits
        .store(key_add_replay.clone(), [0x44; 32], vec![0x01; 76])
        .await;
    assert!(
        matches!(replay, Err(KitError::Field { field: "entry", .. })),
        "{replay:?}"
    );
    assert!(kits.fetch(&second).unwrap().is_some());
    // At most four kits per backup key.
    for n in 0..3u8 {
        kits.store(second_entry.clone(), [0x50 + n; 32], vec![0x02; 76])
            .await
            .unwrap();
    }
    let fifth = kits
        .store(second_entry.clone(), [0x60; 32], vec![0x02; 76])
        .await;
    assert!(
        matches!(
            fifth,
            Err(KitError::Field {
                field: "locator",
                ..
            })
        ),
        "{fifth:?}"
    );

    // Over JSON-RPC: a missing kit is 2001 naming locator; a short locator is named.
    use jsonrpsee::core::client::ClientT;
    let http = jsonrpsee::http_client::HttpClientBuilder::default()
        .build(format!("http://{}", running.addr))
        .unwrap();
    let call = |locator: Vec<u8>| {
        let http = &http;
        async move {
            http.request::<Value, _>("recovery_kit", jsonrpsee::rpc_params![b64_encode(locator)])
                .await
        }
    };
    for (locator, code) in [(first.to_vec(), 2001), (vec![1u8; 8], -32602)] {
        match call(locator).await {
            Err(jsonrpsee::core::ClientError::Call(e)) => {
                assert_eq!(e.code(), code, "{e:?}");
                let data = e.data().map(|d| d.get().to_owned()).unwrap_or_default();
                assert!(data.contains(r#""field":"locator""#), "{e:?}");
            }
            other => panic!("expected an error naming locator, got {other:?}"),
        }
    }
    let found = call(second.to_vec()).await.unwrap();
    assert_eq!(found["member"], member.as_str(), "{found}");
    // (The client's kept-alive connection would hold the node's graceful stop.)
    drop(http);

    // Once the backup key is revoked, its kit is not handed out.
    let revoke = sign(
        &device,
        ORIGIN,
        "member.key_revoke",
        3,
        now_ms(),
        json!({"key": b64_encode(other.verifying_key().to_bytes())}),
    )
    .unwrap();
    running.node.log.submit(revoke).await.unwrap();
    assert!(kits.fetch(&second).unwrap().is_none());

    // (Anything holding the ledger would keep `stopped` waiting for it.)
    drop(kits);
    stop.send(()).unwrap();
    running.stopped().await;
}
