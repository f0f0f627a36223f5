//! End-to-end erasure (DESIGN §7) over a real node and the `coop` CLI: a member gives personal
//! attributes, which the node keeps off the log, encrypted under the member's own key; only
//! salted commitments reach the log. After `coop personal erase`, neither the plaintext nor the
//! member's data key nor the ciphertext is in any file of the data folder — searched byte for
//! byte, after checking the search finds the key and ciphertext before — and the profile
//! entry's proof and the member's consent bundle still verify offline.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

mod common;

use common::{files_holding, member_id, ok, refused};
use coopledger_e2e::Node;
use coopledger_ledger::store::Store;
use std::path::PathBuf;

const NAME: &str = "Ada Quintessa Patient-7f3e";
const EMAIL: &str = "ada.7f3e.private@example.org";

#[test]
fn after_erasure_no_file_of_the_node_holds_the_data_and_proofs_still_verify() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("coop");
    let node = Node::start(&data, &[]).unwrap();
    let rpc = node.http_url();
    let member_key = data.join("demo-keys/member.key");
    let member_key = member_key.to_str().unwrap();
    let treasurer_key = data.join("demo-keys/treasurer.key");
    let member = member_id(member_key);
    let run = |args: &[&str]| {
        let mut v = vec!["--rpc", rpc.as_str()];
        v.extend_from_slice(args);
        ok(&v)
    };
    let fail = |args: &[&str]| {
        let mut v = vec!["--rpc", rpc.as_str()];
        v.extend_from_slice(args);
        refused(&v)
    };

    let out = run(&[
        "personal",
        "submit",
        "--key",
        member_key,
        "--attr",
        &format!("full_name={NAME}"),
        "--attr",
        &format!("email={EMAIL}"),
    ]);
    let index: String = out
        .split("accepted at index ")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let shown = run(&["personal", "show", "--key", member_key]);
    assert!(shown.contains(NAME) && shown.contains(EMAIL), "{shown}");
    // Only the member or the board may read it.
    let err = fail(&[
        "personal",
        "show",
        "--key",
        treasurer_key.to_str().unwrap(),
        "--member",
        &member,
    ]);
    assert!(
        err.contains("2004") || err.contains("only by the member"),
        "{err}"
    );
    // The log holds the signed commitments, never the values.
    let entry = run(&["entry", &index]);
    assert!(entry.contains("member.profile"), "{entry}");
    assert!(!entry.contains(NAME) && !entry.contains(EMAIL), "{entry}");

    let vkey = run(&["vkey"]).trim().to_owned();
    let proof = d.join("profile.proof.json");
    run(&["prove", &index, "-o", proof.to_str().unwrap()]);
    node.terminate().unwrap();

    // Before erasure: the search does find the member's data key and ciphertext on disk (so
    // its silence later means something), and the plaintext is nowhere even now.
    let (data_key, sealed) = {
        let store = Store::open(&data.join("ledger")).unwrap();
        let k = store
            .offlog_get(format!("pii-key/{member}").as_bytes())
            .unwrap()
            .expect("the member's data key is stored");
        let c = store
            .offlog_get(format!("pii-data/{member}").as_bytes())
            .unwrap()
            .expect("the member's data is stored");
        (k, c)
    };
    assert!(
        !files_holding(&data, &data_key).is_empty(),
        "key not found before erasure"
    );
    assert!(
        !files_holding(&data, &sealed).is_empty(),
        "data not found before erasure"
    );
    for plain in [NAME, EMAIL] {
        assert!(
            files_holding(&data, plain.as_bytes()).is_empty(),
            "{plain} in clear on disk"
        );
    }

    let node = Node::start(&data, &[]).unwrap();
    let rpc = node.http_url();
    let run = |args: &[&str]| {
        let mut v = vec!["--rpc", rpc.as_str()];
        v.extend_from_slice(args);
        ok(&v)
    };
    let fail = |args: &[&str]| {
        let mut v = vec!["--rpc", rpc.as_str()];
        v.extend_from_slice(args);
        refused(&v)
    };
    let out = run(&["personal", "erase", "--key", member_key]);
    assert!(out.contains("destroyed on the node"), "{out}");
    let err = fail(&["personal", "show", "--key", member_key]);
    assert!(err.contains("no personal data"), "{err}");
    let err = fail(&[
        "personal",
        "submit",
        "--key",
        member_key,
        "--attr",
        "full_name=again",
    ]);
    assert!(err.contains("pii.erased"), "{err}");
    // The member's consent bundle (no consent: a proof of absence) verifies after erasure.
    let bundle = d.join("member.bundle.json");
    run(&[
        "consent",
        "export",
        "--member",
        &member,
        "-o",
        bundle.to_str().unwrap(),
    ]);
    node.terminate().unwrap();

    // After erasure: nothing of it in any file of the data folder.
    assert_eq!(
        files_holding(&data, &data_key),
        Vec::<PathBuf>::new(),
        "data key survived"
    );
    assert_eq!(
        files_holding(&data, &sealed),
        Vec::<PathBuf>::new(),
        "ciphertext survived"
    );
    for plain in [NAME, EMAIL] {
        assert_eq!(
            files_holding(&data, plain.as_bytes()),
            Vec::<PathBuf>::new()
        );
    }
    // …and the log still proves what it held: the profile entry (commitments only), offline.
    let out = ok(&["verify", proof.to_str().unwrap(), "--vkey", &vkey]);
    assert!(
        out.starts_with(&format!("VALID: entry {index} (member.profile")),
        "{out}"
    );
    let out = ok(&["verify-bundle", bundle.to_str().unwrap(), "--vkey", &vkey]);
    assert!(out.starts_with("VALID"), "{out}");
}
