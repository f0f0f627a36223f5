//! In-process checks of the server module: the OpenRPC document matches the registered methods
//! and the error table.

use super::*;

#[test]
fn openrpc_lists_every_method_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&[3u8; 32]);
    let log = Log::create(
        dir.path(),
        "test.example/log",
        key,
        CoopRules,
        Default::default(),
    )
    .unwrap();
    let log = Arc::new(log);
    let node = Node {
        ballots: Arc::new(coopledger_node::BallotBox::new(
            ed25519_dalek::SigningKey::from_bytes(&[3u8; 32]),
        )),
        vault: coopledger_node::Vault::new(
            log.clone(),
            coopledger_node::vault::VaultKey::from_bytes([5; 32]),
        ),
        recovery: coopledger_node::recovery::RecoveryKits::new(log.clone()),
        witness_keys: vec![],
        notice_texts: coopledger_node::notice_texts::NoticeTexts::new(log.clone()),
        witness: None,
        anchor_status: Default::default(),
        clerk: Default::default(),
        data: dir.path().to_owned(),
        admin_token: "t".into(),
        log,
        replica: None,
    };
    let m = module(&Arc::new(node), 20).unwrap();
    let mut registered: Vec<&str> = m.method_names().collect();
    registered.sort();
    let doc: Value = serde_json::from_str(OPENRPC).unwrap();
    let mut documented: Vec<&str> = doc["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    documented.sort();
    assert_eq!(registered, documented);
}

#[test]
fn openrpc_error_table_matches_the_code_table() {
    let doc: Value = serde_json::from_str(OPENRPC).unwrap();
    let listed: Vec<i64> = doc["x-error-codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_i64().unwrap())
        .collect();
    for (code, name, _) in error::TABLE {
        assert!(
            listed.contains(&(*code as i64)),
            "{name} missing from openrpc.json"
        );
    }
    assert_eq!(listed.len(), error::TABLE.len() + 1, "plus INVALID_PARAMS");
}
