//! The portal in headless Chromium against a real node (`portal/e2e/portal.mjs` drives the
//! browser; this test makes the data, starts the node and judges the report): every page
//! renders in English and French with no missing message, the CSP header is the node's, the
//! keyboard reaches the content, the page refuses to run outside a secure context, a regulator
//! who drops a valid bundle sees VALID with what it proves and one changed byte gives INVALID
//! with the cause — and every vector of the suite (ed25519-speccheck, the transparency-dev
//! proof probes, the C2SP note vectors, canonical JSON, bundle tamper cases) gets the same
//! answer from the browser's verifier (WebAssembly) as from the native one. And a person's way
//! in (`portal/e2e/member.mjs`): they apply with a key made in the browser, the board admits
//! them in the browser, they vote, each receipt is checked in the page, and the result shows
//! after the close.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

mod common;

use common::{
    drive, init_quick_vote_coop_with, keep_shots, key, member_id, repo, tally_when_closed,
};
use coopledger_e2e::{coop, coop_bin, Node};
use coopledger_governance::bylaws::{DecisionKind, KeyResetRules, MemberClass, Method};
use coopledger_ledger::codec::b64_encode;
use serde_json::{json, Value};
use std::path::Path;

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The vector suite: every request the browser's verifier must answer as the native one does.
fn vector_requests(bundle: &str, vkey: &str) -> Vec<Value> {
    let data = repo().join("ledger/testdata");
    let mut out = Vec::new();
    // ed25519-speccheck: the signature rule's edge cases (small-order keys, non-canonical S…).
    for case in read_json(&data.join("ed25519-speccheck-cases.json"))
        .as_array()
        .unwrap()
    {
        out.push(
            json!({"op": "signature", "key": case["pub_key"], "message": case["message"],
                        "signature": case["signature"]}),
        );
    }
    // transparency-dev's RFC 9162 probes, happy and tampered.
    let mut files = Vec::new();
    let mut stack = vec![data.join("transparency-dev-merkle/testdata")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "json") {
                files.push(p);
            }
        }
    }
    files.sort();
    for f in files {
        let v = read_json(&f);
        let proof = v["proof"].as_array().cloned().unwrap_or_default();
        if v.get("leafIdx").is_some() {
            out.push(
                json!({"op": "inclusion", "leafHash": v["leafHash"], "index": v["leafIdx"],
                            "size": v["treeSize"], "proof": proof, "root": v["root"]}),
            );
        } else {
            out.push(
                json!({"op": "consistency", "size1": v["size1"], "size2": v["size2"],
                            "proof": proof, "root1": v["root1"], "root2": v["root2"]}),
            );
        }
    }
    // C2SP signed notes, each against every vector key.
    let notes = read_json(&data.join("signed-note.json"));
    for n in notes["notes"].as_array().unwrap() {
        for k in notes["keys"].as_array().unwrap() {
            out.push(json!({"op": "note", "note": n["note"], "vkey": k["vkey"]}));
        }
    }
    // Witness cosignatures (C2SP tlog-cosignature) on a checkpoint of a test log: two
    // witnesses, one unknown to the request, one line tampered, the wrong log key, a bad key.
    let log = coopledger_ledger::NoteSigner::new(
        "example.coop/log",
        ed25519_dalek::SigningKey::from_bytes(&[21; 32]),
    )
    .unwrap();
    let text = "example.coop/log\n12\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    let signed = log.sign(text).unwrap();
    let [w1, w2] = [22u8, 23].map(|n| {
        coopledger_ledger::cosignature::Cosigner::new(
            &format!("witness{n}.example.coop"),
            ed25519_dalek::SigningKey::from_bytes(&[n; 32]),
        )
        .unwrap()
    });
    let cosigned = format!(
        "{signed}{}{}",
        w1.cosign(text, 1_700_000_000).unwrap(),
        w2.cosign(text, 1_700_000_100).unwrap()
    );
    let tampered = {
        let line = w2.cosign(text, 1_700_000_100).unwrap();
        let (head, sig) = line.trim_end().rsplit_once(' ').unwrap();
        let mut raw = coopledger_ledger::codec::b64_decode(sig).unwrap();
        *raw.last_mut().unwrap() ^= 1;
        format!(
            "{signed}{}{head} {}\n",
            w1.cosign(text, 1_700_000_000).unwrap(),
            b64_encode(raw)
        )
    };
    for (note, vkey, witnesses) in [
        (&cosigned, log.vkey(), vec![w1.vkey(), w2.vkey()]),
        (&cosigned, log.vkey(), vec![w2.vkey()]),
        (&cosigned, log.vkey(), vec![]),
        (&tampered, log.vkey(), vec![w1.vkey(), w2.vkey()]),
        (&cosigned, w1.vkey(), vec![w1.vkey()]),
        (
            &cosigned,
            log.vkey(),
            vec!["witness+00000000+AAAA".to_owned()],
        ),
    ] {
        out.push(json!({"op": "cosigned", "note": note, "vkey": vkey, "witnesses": witnesses}));
    }
    // Canonical JSON (RFC 8785) against the Rust codec.
    for value in [
        json!({"b": 1, "a": [true, null, "é\u{2028}\"\\"], "": {"z": -0, "y": 9007199254740991_i64}}),
        json!({"n": 9007199254740992_i64}),
        json!({"f": 1.5}),
        json!([{"\u{1F600}": "\u{7f}\u{1f}"}, "\u{10FFFF}"]),
    ] {
        out.push(json!({"op": "canonical", "value": value}));
    }
    // The bundle and one-byte changes spread through it (each may break JSON, a proof, a
    // signature or a hash; the browser must name the same cause).
    out.push(json!({"op": "bundle", "text": bundle, "vkey": vkey}));
    let bytes = bundle.as_bytes();
    for i in 1..24 {
        let at = bytes.len() * i / 24;
        let mut changed = bytes.to_vec();
        changed[at] = if changed[at] == b'A' { b'B' } else { b'A' };
        if let Ok(text) = String::from_utf8(changed) {
            out.push(json!({"op": "bundle", "text": text, "vkey": vkey}));
        }
    }
    out.push(json!({"op": "bundle", "text": bundle, "vkey": "not a key"}));
    out
}

#[test]
fn the_portal_serves_every_page_verifies_in_the_browser_and_agrees_with_the_native_verifier() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let node = Node::start(&data, &[]).unwrap();
    let url = node.http_url();
    assert!(
        node.banner
            .iter()
            .any(|l| l == &format!("portal: {url}/ (open it in a browser)")),
        "coop serve prints the portal's address: {:?}",
        node.banner
    );
    let vkey = node
        .banner
        .iter()
        .find_map(|l| l.strip_prefix("verifier key: "))
        .unwrap()
        .to_owned();

    // A member's consent bundle, exported with the CLI, and the same with one byte changed.
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let bundle_path = work.join("bundle.json");
    let member_key = data.join("demo-keys/member.key");
    let (code, out, err) = coop(&[
        "consent",
        "export",
        "--rpc",
        &url,
        "--key",
        member_key.to_str().unwrap(),
        "-o",
        bundle_path.to_str().unwrap(),
    ])
    .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    let bundle = std::fs::read_to_string(&bundle_path).unwrap();
    // One byte of the checkpoint's signature (the line after "— origin ").
    let at = bundle.find("— ").unwrap() + "— ".len() + vkey.split('+').next().unwrap().len() + 12;
    let mut tampered = bundle.clone().into_bytes();
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    std::fs::write(work.join("tampered.json"), &tampered).unwrap();
    std::fs::write(work.join("url"), &url).unwrap();
    std::fs::write(work.join("vkey"), &vkey).unwrap();
    // A well-formed verifier key that is not this node's (another co-op's).
    let other_vkey = coopledger_ledger::NoteSigner::new(
        "other.example.coop/ledger",
        ed25519_dalek::SigningKey::from_bytes(&[77; 32]),
    )
    .unwrap()
    .vkey();
    std::fs::write(work.join("other.vkey"), &other_vkey).unwrap();
    let requests = vector_requests(&bundle, &vkey);
    // As JSON texts: a JavaScript number cannot carry every u64 the probes use.
    let texts: Vec<String> = requests.iter().map(Value::to_string).collect();
    std::fs::write(
        work.join("requests.json"),
        serde_json::to_vec(&texts).unwrap(),
    )
    .unwrap();

    let report = drive("portal.mjs", &work);
    keep_shots(&work);
    assert_eq!(report["missing"], json!([]), "every message is translated");
    assert_eq!(
        report["csp"].as_str(),
        Some(coopledger_rpc::portal::CONTENT_SECURITY_POLICY)
    );
    for name in [
        "overview-en",
        "proposals-en",
        "verify-en",
        "overview-fr",
        "proposals-fr",
        "verify-fr",
        "me-en",
        "me-fr",
        "board-en",
        "board-fr",
        "consent-en",
        "consent-fr",
        "data-en",
        "data-fr",
        "treasurer-page-en",
        "treasurer-page-fr",
        "verify-valid",
        "verify-invalid",
        "insecure",
    ] {
        let shot = work.join("shots").join(format!("{name}.png"));
        assert!(
            std::fs::metadata(&shot).is_ok_and(|m| m.len() > 1000),
            "{name} was screenshotted"
        );
    }
    // A pinned key that is not the node's: the overview warns, every other page refuses the node;
    // with the node's own key pinned, pages work.
    let mismatch = report["pinMismatch"].as_str().unwrap();
    assert!(
        mismatch.starts_with("This node's verifier key is not the one pinned in this browser")
            && mismatch.contains(&other_vkey),
        "{mismatch}"
    );
    assert!(
        report["pinRefused"]
            .as_str()
            .unwrap()
            .contains("is not the one pinned in this browser"),
        "{}",
        report["pinRefused"]
    );
    assert_eq!(
        report["pinState"],
        "Pinned in this browser: pages refuse any other key."
    );
    assert_eq!(report["pinMismatchAfter"], false);
    assert_eq!(report["pinnedMe"], "My membership");
    assert_eq!(
        report["pages"]["overview-en"]["h1"],
        "Demo Drivers' Data Co-op"
    );
    assert_eq!(report["pages"]["proposals-fr"]["h1"], "Propositions");
    assert_eq!(report["pages"]["data-fr"]["h1"], "Mes données");
    assert_eq!(report["pages"]["consent-en"]["h1"], "My consents");
    assert_eq!(
        report["pages"]["verify-fr"]["h1"],
        "Vérifier un dossier de preuves"
    );
    assert_eq!(report["pages"]["overview-en"]["members"], "3");
    assert_eq!(
        (report["firstTab"].as_str(), report["afterSkip"].as_str()),
        (Some("skip"), Some("main"))
    );
    assert_eq!(
        report["insecure"],
        "This page must be opened over a secure connection"
    );

    // The regulator's drop: the browser's verdicts are the CLI's.
    assert_eq!(report["valid"]["valid"], true, "{report}");
    let headline = report["valid"]["headline"].as_str().unwrap();
    let (code, cli_out, _) = coop(&[
        "verify-bundle",
        bundle_path.to_str().unwrap(),
        "--vkey",
        &vkey,
    ])
    .unwrap();
    assert_eq!(code, 0);
    assert_eq!(
        cli_out.lines().next(),
        Some(format!("VALID: {headline}").as_str())
    );
    assert_eq!(report["tampered"]["valid"], false);
    let cause = report["tampered"]["cause"].as_str().unwrap();
    let (code, cli_out, _) = coop(&[
        "verify-bundle",
        work.join("tampered.json").to_str().unwrap(),
        "--vkey",
        &vkey,
    ])
    .unwrap();
    assert_eq!(code, 1);
    assert_eq!(cli_out.trim(), format!("INVALID: {cause}"));

    // Every vector: the browser's answer is the native verifier's, byte for byte.
    let answers = read_json(&work.join("answers.json"));
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), requests.len());
    let mut valid = 0;
    for (req, browser) in requests.iter().zip(answers) {
        let native = coopledger_verifier::answer(&req.to_string()).unwrap();
        assert_eq!(browser, &native, "request {req}");
        valid += usize::from(native["valid"] == true);
    }
    // The cosignature requests: both witnesses, the one asked for, none asked for, a tampered
    // line, the wrong log key, a malformed witness key.
    let cosigned: Vec<Value> = requests
        .iter()
        .filter(|r| r["op"] == "cosigned")
        .map(|r| coopledger_verifier::answer(&r.to_string()).unwrap())
        .collect();
    let names = |a: &Value| {
        a["cosigned"]
            .as_array()
            .map(|l| l.iter().map(|c| c["witness"].clone()).collect::<Vec<_>>())
    };
    assert_eq!(
        names(&cosigned[0]),
        Some(vec![
            json!("witness22.example.coop"),
            json!("witness23.example.coop")
        ])
    );
    assert_eq!(
        names(&cosigned[1]),
        Some(vec![json!("witness23.example.coop")])
    );
    assert_eq!(names(&cosigned[2]), Some(vec![]));
    for a in &cosigned[3..] {
        assert_eq!(a["valid"], false, "{a}");
    }
    // The suite has both verdicts in it (a suite of all-valid or all-invalid would prove little).
    assert!(
        valid > 10 && valid < requests.len() - 10,
        "{valid} of {}",
        requests.len()
    );
    println!(
        "portal: {} vectors agreed in {} ms; cold page load {} ms",
        requests.len(),
        report["vectorMs"],
        report["loadMs"]
    );
    node.terminate().unwrap();
}

#[test]
fn a_person_applies_is_admitted_votes_and_sees_the_result_in_the_browser() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("coop");
    let (board, other) = drivers_coop(d, &data);
    let node = Node::start(&data, &[]).unwrap();
    member_journey(d, &node.http_url(), &board, &other);
    node.terminate().unwrap();
}

/// The same way in on a replicated co-op (issue 17: "the portal and the CLI work against any
/// node"), every page served by a follower of three replicas: what the browser signs there is
/// forwarded to the leader, the secret ballot reaches the leader's box, and the receipts, the
/// result and the consent bundle the page checks are the follower's reads. Afterwards every
/// replica holds it all, and the leader shows the person as a member.
#[test]
fn the_same_way_in_through_a_follower_of_three_replicas() {
    use coopledger_e2e::cluster::{caught_up_with, leader, three};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (board, other) = drivers_coop(d, &d.join("r1"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let replicas = rt.block_on(three(d)).unwrap();
    let (lead, lead_url) = rt.block_on(leader(&replicas)).unwrap();
    let follower = replicas.iter().find(|r| r.id != lead).unwrap().url();
    let member = member_journey(d, &follower, &board, &other);
    rt.block_on(caught_up_with(&replicas, &follower)).unwrap();
    let (code, shown, err) = coop(&["member", "show", "--rpc", &lead_url, &member]).unwrap();
    assert_eq!(code, 0, "{shown}{err}");
    assert!(shown.contains("active"), "{shown}");
    drop(replicas);
}

/// The drivers' co-op of the way-in tests in `data` (special resolutions by secret ballot);
/// returns the board's and the other founder's key files.
fn drivers_coop(d: &Path, data: &Path) -> (String, String) {
    let board = key(d, "board");
    let other = key(d, "founder");
    // Special resolutions are secret ballots (no revotes, no proxies).
    init_quick_vote_coop_with(
        data,
        "drivers.example.coop/ledger",
        "Drivers' Data Co-op",
        &[format!("@{board}:board"), format!("@{other}")],
        |b| {
            if let Some(special) = b.decisions.get_mut(&DecisionKind::Special) {
                special.secret = true;
                special.revote = false;
                special.proxies.allowed = false;
            }
        },
    );
    (board, other)
}

/// A person's way in through the portal at `url` (`portal/e2e/member.mjs`), and what the CLI
/// sees of it there; returns the new member's id.
fn member_journey(d: &Path, url: &str, board: &str, other: &str) -> String {
    let url = url.to_owned();
    let (board, other) = (board.to_owned(), other.to_owned());
    let work = d.join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("url"), &url).unwrap();
    std::fs::copy(&board, work.join("board.key")).unwrap();
    std::fs::copy(&other, work.join("founder.key")).unwrap();
    std::fs::write(work.join("coop"), coop_bin().unwrap().to_str().unwrap()).unwrap();
    std::fs::write(work.join("duration"), "6").unwrap();
    let text = work.join("notice.txt");
    std::fs::write(&text, "We sell trip data only to those you choose.").unwrap();
    std::fs::write(
        work.join("notice.json"),
        serde_json::to_vec(&json!({
            "notice": "trips", "version": 1, "controller": "drivers_coop",
            "purposes": ["dpv:ServiceProvision"], "dataCategories": ["pd:Location"],
            "operations": ["dpv:Share"], "recipients": ["city"],
            "retentionMs": 31_536_000_000u64, "jurisdiction": "CA-QC", "lawfulBasis": "dpv:Consent",
            "textFile": text.to_str().unwrap(), "language": "en", "specialCategory": false,
        }))
        .unwrap(),
    )
    .unwrap();

    let report = drive("member.mjs", &work);
    keep_shots(&work);
    assert_eq!(report["missing"], json!([]), "every message is translated");
    // The board proposed, registered the parties and published the notice from its page.
    assert_eq!(
        report["proposedNote"],
        "Proposed: Publish the Q1 data-sales report."
    );
    assert!(
        report["publishedNote"]
            .as_str()
            .unwrap()
            .starts_with("Published: trips v1"),
        "{}",
        report["publishedNote"]
    );
    for line in [
        "applyReceipt",
        "admitReceipt",
        "proposeReceipt",
        "voteReceipt",
        "grantReceipt",
        "renewReceipt",
    ] {
        let text = report[line].as_str().unwrap();
        assert!(
            text.starts_with("Your entry is number ")
                && text.contains("signed by drivers.example.coop/ledger"),
            "{line}: {text}"
        );
    }
    assert_eq!(report["pendingBefore"], 1);
    assert_eq!(
        report["signingAs"].as_str(),
        Some(format!("Signing as {}", member_id(&board)).as_str())
    );
    assert_eq!(report["outcome"], "adopted");
    // The result page: one member of three voted yes — participation 1/3 against a quorum of
    // 1/5, yes 1/1 against more than 1/2 — and the browser's recount agrees with the tally entry.
    assert_eq!(report["resultOutcome"], "adopted");
    let bar = report["participationBar"].as_str().unwrap();
    assert!(
        bar.contains("1/3") && bar.contains("quorum 1/5 met"),
        "{bar}"
    );
    let bar = report["yesBar"].as_str().unwrap();
    assert!(
        bar.contains("1/1") && bar.contains("threshold 1/2 met"),
        "{bar}"
    );
    // The secret ballot, cast from the browser: the box's receipt names a ballot the published
    // box holds, and the CLI finds it (`tally verify --receipt`); one participant, one ballot.
    let secret = report["secretProposal"].as_str().unwrap();
    assert_eq!(report["secretOutcome"], "adopted");
    let t = tally_when_closed(&url, secret);
    assert_eq!(
        (t["ballots"].as_u64(), t["participants"].as_u64()),
        (Some(1), Some(1)),
        "{t}"
    );
    let receipt = work.join("ballot.receipt.json");
    std::fs::write(&receipt, report["ballotReceipt"].as_str().unwrap()).unwrap();
    let (code, out, err) = coop(&[
        "--rpc",
        &url,
        "tally",
        "verify",
        secret,
        "--receipt",
        receipt.to_str().unwrap(),
    ])
    .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("is published in entry"), "{out}");
    let recount = report["recount"].as_str().unwrap();
    assert!(
        recount.starts_with("VALID") && recount.contains("is what the proved votes give"),
        "{recount}"
    );
    // Consent: given in the page, a use under it accepted, withdrawn in one click, the next use
    // refused by the node, and the exported bundle valid in the page.
    assert_eq!(report["grantStatus"], "valid");
    assert!(
        report["firstUse"].as_str().unwrap().contains("accepted"),
        "{}",
        report["firstUse"]
    );
    assert!(
        report["withdrawNote"]
            .as_str()
            .unwrap()
            .starts_with("Your consent is withdrawn, for good."),
        "{}",
        report["withdrawNote"]
    );
    let second = report["secondUse"].as_str().unwrap();
    assert!(second.starts_with("refused (exit 3)"), "{second}");
    assert!(second.contains("withdrawn"), "{second}");
    let verdict = report["exportVerdict"].as_str().unwrap();
    assert!(
        verdict.starts_with("VALID") && verdict.contains("the complete consent history of"),
        "{verdict}"
    );
    assert_eq!(report["download"], true);
    // The grant's history in the page: given, used (what, to whom, why), withdrawn; the notice's
    // text as the CLI handed it in, checked against its digest.
    let history = report["history"].as_array().unwrap();
    let events: Vec<&str> = history
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "consent.grant",
            "data.use",
            "consent.renew",
            "consent.withdraw"
        ]
    );
    assert!(
        report["renewNote"]
            .as_str()
            .unwrap()
            .starts_with("Renewed: your consent now runs until"),
        "{}",
        report["renewNote"]
    );
    let used = history[1]["text"].as_str().unwrap();
    assert!(
        used.contains("data used")
            && used.contains("sale to city for dpv:ServiceProvision (pd:Location)"),
        "{used}"
    );
    assert_eq!(
        report["noticeBody"],
        "We sell trip data only to those you choose."
    );
    assert!(
        report["noticeCheck"]
            .as_str()
            .unwrap()
            .starts_with("This text is the one the notice on the ledger commits to"),
        "{}",
        report["noticeCheck"]
    );
    // A new device added to the founder with their key file, and that old key revoked from the
    // new device: the key file can no longer sign.
    assert_eq!(
        report["laptopMember"].as_str(),
        Some(member_id(&other).as_str())
    );
    assert_eq!(
        report["keysAfterRevoke"],
        json!({"rows": 2, "revoked": 1, "revokeButtons": 0})
    );
    let (code, out, err) = coop(&[
        "--rpc",
        &url,
        "submit",
        "--key",
        &other,
        "--type",
        "coop.attest",
        "--payload",
        r#"{"digest":"0000000000000000000000000000000000000000000000000000000000000000","kind":"minutes"}"#,
    ])
    .unwrap();
    assert_eq!(code, 3, "{out}{err}");
    assert!(err.contains("revoked"), "{err}");
    let shots = work.join("shots");
    for name in [
        "me-applied",
        "board-pending",
        "board-admitted",
        "me-member",
        "proposals-voted",
        "proposals-result",
        "proposal-recounted",
        "secret-voted",
        "consent-given",
        "consent-withdrawn",
        "consent-exported",
        "me-two-keys",
        "me-revoked",
    ] {
        assert!(shots.join(format!("{name}.png")).exists(), "{name}");
    }

    // What the browser did is on the ledger as the CLI sees it: the person is a member, the
    // device key is theirs, and their yes is the one counted.
    let member = report["member"].as_str().unwrap();
    let (code, shown, _) = coop(&["member", "show", "--rpc", &url, member]).unwrap();
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("active"), "{shown}");
    let proposal = report["proposal"].as_str().unwrap();
    let tally = tally_when_closed(&url, proposal);
    assert_eq!(tally["outcome"], "adopted", "{tally}");
    assert_eq!(tally["ballots"], 1, "{tally}");
    member.to_owned()
}

#[test]
fn a_member_comes_back_with_a_recovery_code_and_the_board_resets_lost_keys() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("coop");
    let board = key(d, "board");
    let founder = key(d, "founder");
    // Key resets wait 5 s here (7 days by default).
    init_quick_vote_coop_with(
        &data,
        "drivers.example.coop/ledger",
        "Drivers' Data Co-op",
        &[format!("@{board}:board"), format!("@{founder}")],
        |b| b.key_reset = Some(KeyResetRules { wait_ms: 5_000 }),
    );
    let node = Node::start(&data, &[]).unwrap();
    let url = node.http_url();
    let work = d.join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("url"), &url).unwrap();
    std::fs::copy(&board, work.join("board.key")).unwrap();
    std::fs::copy(&founder, work.join("founder.key")).unwrap();

    let report = drive("recovery.mjs", &work);
    keep_shots(&work);
    assert_eq!(report["missing"], json!([]), "every message is translated");
    let member = member_id(&founder);
    assert_eq!(report["member"].as_str(), Some(member.as_str()));
    // 1. The code: 24 characters in groups of four, shown once; the backup key registered with
    // a receipt checked in the page; the code brings the membership to a new browser.
    let code = report["code"].as_str().unwrap();
    assert!(
        code.len() == 29 && code.split('-').all(|g| g.len() == 4),
        "{code}"
    );
    for line in ["codeReceipt", "recoverReceipt", "askReceipt"] {
        let text = report[line].as_str().unwrap();
        assert!(
            text.starts_with("Your entry is number ")
                && text.contains("signed by drivers.example.coop/ledger"),
            "{line}: {text}"
        );
    }
    assert_eq!(report["recoveredMember"].as_str(), Some(member.as_str()));
    assert!(
        report["recoveredNote"]
            .as_str()
            .unwrap()
            .starts_with("This device now acts for"),
        "{}",
        report["recoveredNote"]
    );
    // The passkey (WebAuthn PRF on Chromium's virtual authenticator) sealed the same backup key:
    // with the phone's device key gone, it brought the membership back.
    assert_eq!(report["passkeyMade"], "A passkey can open it too.");
    assert_eq!(report["passkeyMember"].as_str(), Some(member.as_str()));
    assert!(
        report["passkeyNote"]
            .as_str()
            .unwrap()
            .starts_with("This device now acts for"),
        "{}",
        report["passkeyNote"]
    );
    let typo = report["typo"].as_str().unwrap();
    assert!(typo.contains("no recovery kit is held"), "{typo}");
    assert!(
        report["malformed"].as_str().unwrap().contains("24 letters"),
        "{}",
        report["malformed"]
    );
    // The node holds the kit, not the code: no file of the data folder holds the code's text.
    let compact: String = code.chars().filter(|c| *c != '-').collect();
    for e in walk(&data) {
        let bytes = std::fs::read(&e).unwrap();
        assert!(
            !bytes
                .windows(compact.len())
                .any(|w| w == compact.as_bytes()),
            "{} holds the recovery code",
            e.display()
        );
    }
    // A device added from another device with its request; a request for someone else refused.
    assert_eq!(
        report["notMine"],
        "This request is for m-0000000000000000, not for you."
    );
    assert_eq!(
        report["addedNote"],
        "Added: the new device now acts for you."
    );
    assert_eq!(report["watchMember"].as_str(), Some(member.as_str()));
    // 2. The board's reset, vetoed by the member's current device.
    assert_eq!(report["request"]["member"].as_str(), Some(member.as_str()));
    assert_eq!(report["request"]["label"], "tablet");
    let asked = report["asked"].as_str().unwrap();
    assert!(
        asked.starts_with(&format!("The reset of {member} is waiting until")),
        "{asked}"
    );
    let alert = report["alert"].as_str().unwrap();
    assert!(
        alert.starts_with("The board asked to replace all your keys"),
        "{alert}"
    );
    assert!(
        report["vetoNote"]
            .as_str()
            .unwrap()
            .starts_with("You refused the reset"),
        "{}",
        report["vetoNote"]
    );
    assert_eq!(report["alertAfterVeto"], false);
    assert_eq!(report["pendingAfterVeto"], false);
    // 3. Asked again, not vetoed: refused before the wait, then done; every earlier key revoked.
    let early = report["early"].as_str().unwrap();
    assert!(early.contains("can be completed from"), "{early}");
    assert_eq!(report["resetMember"].as_str(), Some(member.as_str()));
    // founder key file, phone, recovery key, the phone's new key, laptop, watch: revoked; the
    // tablet: current.
    assert_eq!(report["keysAfterReset"], json!({"rows": 7, "revoked": 6}));
    assert_eq!(report["laptopRevoked"], true);
    let (code, out, err) = coop(&[
        "--rpc",
        &url,
        "submit",
        "--key",
        &founder,
        "--type",
        "coop.attest",
        "--payload",
        r#"{"digest":"0000000000000000000000000000000000000000000000000000000000000000","kind":"minutes"}"#,
    ])
    .unwrap();
    assert_eq!(code, 3, "{out}{err}");
    assert!(err.contains("revoked"), "{err}");
    // The log tells the story: the reset, its veto, the reset again and its completion.
    let vkey = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async {
            use coopledger_rpc::LedgerApiClient;
            coopledger_rpc::client::http_client(&url)
                .unwrap()
                .verifier_key()
                .await
        })
        .unwrap();
    let (code, out, err) = coop(&["--rpc", &url, "audit", "--vkey", &vkey]).unwrap();
    assert_eq!(code, 0, "{out}{err}");
    node.terminate().unwrap();
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn members_vote_by_every_method_and_by_proxy_in_the_browser() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("coop");
    let names = ["board", "ana", "ben", "cy", "dee", "eve"];
    let keys: Vec<String> = names.iter().map(|n| key(d, n)).collect();
    // Ordinary decisions by any method; observers are members whose class does not vote.
    init_quick_vote_coop_with(
        &data,
        "drivers.example.coop/ledger",
        "Drivers' Data Co-op",
        &[
            format!("@{}:board,class=members", keys[0]),
            format!("@{}:class=members", keys[1]),
            format!("@{}:class=members", keys[2]),
            format!("@{}:class=members", keys[3]),
            format!("@{}:class=observers", keys[4]),
            format!("@{}:class=members", keys[5]),
        ],
        |b| {
            b.classes
                .insert("observers".into(), MemberClass { votes: false });
            if let Some(ordinary) = b.decisions.get_mut(&DecisionKind::Ordinary) {
                ordinary.methods = vec![
                    Method::YesNo,
                    Method::SingleChoice,
                    Method::Approval,
                    Method::RankedChoice,
                ];
            }
        },
    );
    let node = Node::start(&data, &[]).unwrap();
    let url = node.http_url();
    let work = d.join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("url"), &url).unwrap();
    for (n, k) in names.iter().zip(&keys) {
        std::fs::copy(k, work.join(format!("{n}.key"))).unwrap();
        std::fs::write(work.join(format!("{n}.member")), member_id(k)).unwrap();
    }
    let propose = |title: &str, method: &str, choices: &[&str]| {
        let mut args = vec![
            "--rpc",
            &url,
            "proposal",
            "create",
            "--key",
            &keys[0],
            "--kind",
            "ordinary",
            "--title",
            title,
            "--method",
            method,
            "--duration",
            "40",
        ];
        for c in choices {
            args.extend(["--choice", c]);
        }
        let (code, out, err) = coop(&args).unwrap();
        assert_eq!(code, 0, "{out}{err}");
        out.lines()
            .find_map(|l| l.strip_prefix("proposal: "))
            .unwrap()
            .to_owned()
    };
    let ids = [
        propose(
            "Where to hold the assembly",
            "single_choice",
            &["Hall", "Online", "Park"],
        ),
        propose(
            "Which datasets to sell",
            "approval",
            &["Trips", "Shifts", "Ratings"],
        ),
        propose(
            "Name of the app",
            "ranked_choice",
            &["Alpha", "Beta", "Gamma"],
        ),
        propose("Adopt the data policy", "yes_no", &[]),
    ];
    for (i, id) in ids.iter().enumerate() {
        std::fs::write(work.join(format!("p{}", i + 1)), id).unwrap();
    }
    // The board ranks Beta first, eve Gamma (with the CLI).
    for (k, ranking) in [(&keys[0], "1"), (&keys[5], "2")] {
        let (code, out, err) = coop(&[
            "--rpc",
            &url,
            "vote",
            &ids[2],
            "--key",
            k,
            "--choices",
            ranking,
        ])
        .unwrap();
        assert_eq!(code, 0, "{out}{err}");
    }

    let report = drive("votes.mjs", &work);
    keep_shots(&work);
    assert_eq!(report["missing"], json!([]), "every message is translated");
    assert_eq!(report["errors"], json!([]), "{report}");
    assert_eq!(report["needCount"], "4 open proposal(s) need your vote.");
    // Why dee cannot vote: their class does not vote; no ballot is offered.
    assert_eq!(report["dee"]["state"], "class_not_voting");
    assert!(
        report["dee"]["text"]
            .as_str()
            .unwrap()
            .contains("observers"),
        "{}",
        report["dee"]
    );
    assert_eq!(report["dee"]["ballot"], false);
    assert_eq!(
        report["anaEligibility"],
        "You may vote on this proposal, in the class members."
    );
    assert_eq!(
        report["anaWeight"],
        "One member, one vote: 5 member(s) of your class may vote on it."
    );
    assert_eq!(report["anaNeeds"], true);
    for (line, vote) in [
        ("anaSingle", "Online"),
        ("anaApproval", "Trips, Ratings"),
        ("anaRanked", "1. Beta, 2. Gamma"),
        ("anaYes", "Yes"),
    ] {
        let text = report[line].as_str().unwrap();
        assert!(
            text.starts_with(&format!("You voted: {vote} (entry ")),
            "{line}: {text}"
        );
    }
    assert!(report["anaReceipt"]
        .as_str()
        .unwrap()
        .starts_with("Your entry is number "));
    // The proxy: cy gave it to ana before ana voted, then sees ana's vote.
    let ana = member_id(&keys[1]);
    assert!(
        report["cyProxyBefore"]
            .as_str()
            .unwrap()
            .starts_with(&format!("You gave your proxy to {ana}")),
        "{}",
        report["cyProxyBefore"]
    );
    assert!(report["cyProxyBefore"]
        .as_str()
        .unwrap()
        .ends_with("They have not voted yet."));
    assert!(report["cyProxyAfter"]
        .as_str()
        .unwrap()
        .contains("They voted: Yes"));
    assert_eq!(
        report["anaHeld"],
        "You hold 1 proxy(ies) on this proposal: your vote counts for them too."
    );
    assert_eq!(report["anaNeedsAfter"], false);
    assert_eq!(
        report["anaStandings"],
        json!(["voted", "voted", "voted", "voted"])
    );
    // The results, as the node's tallies say.
    let single = tally_when_closed(&url, &ids[0]);
    assert_eq!(single["winner"], 1, "{single}");
    let bars = report["singleBars"].as_array().unwrap();
    assert_eq!(bars.len(), 3);
    assert!(bars[1].as_str().unwrap().contains("elected"), "{bars:?}");
    assert!(!bars[0].as_str().unwrap().contains("elected"), "{bars:?}");
    let approval = tally_when_closed(&url, &ids[1]);
    assert_eq!(approval["winner"], 0, "{approval}");
    assert!(report["approvalBars"][0]
        .as_str()
        .unwrap()
        .contains("elected"));
    // Ranked: Alpha out in round 1, Beta elected in round 2 (cy's second preference).
    let ranked = tally_when_closed(&url, &ids[2]);
    assert_eq!(ranked["winner"], 1, "{ranked}");
    let rounds = report["rounds"].as_array().unwrap();
    let cell = |choice: u64, round: u64| {
        rounds
            .iter()
            .find(|c| c["choice"] == choice && c["round"] == round)
            .and_then(|c| c["text"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(cell(0, 1).contains("eliminated in round 1"), "{rounds:?}");
    assert!(cell(1, 2).contains("elected in round 2"), "{rounds:?}");
    let irv = &ranked["result"]["rankedChoice"]["rounds"];
    assert_eq!(irv.as_array().unwrap().len(), 2, "{ranked}");
    assert!(
        cell(1, 2).starts_with(irv[1]["totals"]["1"].as_str().unwrap()),
        "{rounds:?} {irv}"
    );
    assert!(
        report["rankedRecount"]
            .as_str()
            .unwrap()
            .starts_with("VALID"),
        "{}",
        report["rankedRecount"]
    );
    let yes_no = tally_when_closed(&url, &ids[3]);
    assert_eq!(
        (yes_no["byProxy"].as_u64(), yes_no["ballots"].as_u64()),
        (Some(1), Some(3)),
        "{yes_no}"
    );
    assert_eq!(report["yesNoOutcome"], "adopted");
    node.terminate().unwrap();
}

#[test]
fn a_receipt_in_the_page_names_its_witness_and_its_anchor_block() {
    use coopledger_e2e::{free_port, read_key, Anvil, ANVIL_KEY};
    use coopledger_ledger::cosignature::Cosigner;
    use coopledger_ledger::NoteSigner;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Two co-ops: the drivers' (in the browser) and the builders', which witnesses it.
    let mut coops = Vec::new();
    for name in ["drivers", "builders"] {
        let data = d.join(name);
        let board = key(d, &format!("{name}-board"));
        let origin = format!("{name}.example.coop/ledger");
        init_quick_vote_coop_with(&data, &origin, name, &[format!("@{board}:board")], |_| {});
        let node_key = read_key(&data.join("node.key")).unwrap();
        let log_vkey = NoteSigner::new(&origin, node_key.clone()).unwrap().vkey();
        let witness_vkey = Cosigner::new(
            &format!("{origin}/witness"),
            coopledger_node::witness::witness_key(&node_key),
        )
        .unwrap()
        .vkey();
        coops.push((data, log_vkey, witness_vkey));
    }
    let chain_port = free_port().unwrap();
    let _anvil = Anvil::start(chain_port).unwrap();
    let anchor_key = d.join("anchor.key");
    std::fs::write(&anchor_key, ANVIL_KEY).unwrap();
    let witness_port = free_port().unwrap();
    let builders = Node::start(
        &coops[1].0,
        &[
            "--listen",
            &format!("127.0.0.1:{witness_port}"),
            "--witness-for",
            &coops[0].1,
        ],
    )
    .unwrap();
    let drivers = Node::start(
        &coops[0].0,
        &[
            "--witness",
            &format!("http://127.0.0.1:{witness_port},{}", coops[1].2),
            "--anchor-rpc",
            &format!("http://127.0.0.1:{chain_port}"),
            "--anchor-chain-id",
            "31337",
            "--anchor-key",
            anchor_key.to_str().unwrap(),
            "--anchor-every-secs",
            "1",
            "--anchor-every-entries",
            "1",
            "--anchor-confirmations",
            "1",
        ],
    )
    .unwrap();
    let work = d.join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("url"), drivers.http_url()).unwrap();

    let report = drive("receipt.mjs", &work);
    keep_shots(&work);
    assert_eq!(report["errors"], json!([]), "{report}");
    assert_eq!(report["missing"], json!([]), "every message is translated");
    let line = report["line"].as_str().unwrap();
    assert!(line.starts_with("Your entry is number "), "{line}");
    let witnessed = report["witnessed"].as_str().unwrap();
    assert!(
        witnessed.starts_with("Witnessed by 1 co-op(s) (builders.example.coop/ledger/witness)"),
        "{witnessed}"
    );
    let anchored = report["anchored"].as_str().unwrap();
    assert!(
        anchored.starts_with("Anchored in block ") && anchored.contains("of chain 31337"),
        "{anchored}"
    );
    assert_eq!(report["problem"], false);
    drivers.terminate().unwrap();
    builders.terminate().unwrap();
}
