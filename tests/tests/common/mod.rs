//! Helpers shared by the CLI-driven end-to-end tests: run `coop` expecting success or failure,
//! read what it printed, make keys, wait for tallies.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a panic is a test failure with a message; not every test uses every helper"
)]

use coopledger_e2e::coop;
use coopledger_governance::bylaws::{Bylaws, MemberClass};
use coopledger_governance::tally::VotingMode;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Runs `coop` and insists on success; returns stdout.
pub fn ok(args: &[&str]) -> String {
    let (code, out, err) = coop(args).unwrap();
    assert_eq!(code, 0, "coop {args:?} failed:\n{out}\n{err}");
    out
}

/// Runs `coop` expecting failure; returns stderr.
pub fn refused(args: &[&str]) -> String {
    let (code, out, err) = coop(args).unwrap();
    assert_ne!(code, 0, "coop {args:?} should have failed:\n{out}");
    err
}

/// The value printed after `label: ` on some line.
pub fn after(out: &str, label: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in:\n{out}"))
        .trim()
        .to_owned()
}

/// Every regular file under `dir` (files that vanish while a node runs are skipped), and the
/// ones among them holding `needle` — for "in no file of the data folder" checks.
pub fn files_holding(dir: &Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    assert!(needle.len() >= 16, "search for something distinctive");
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(list) = std::fs::read_dir(&d) else {
            continue;
        };
        for p in list.flatten().map(|e| e.path()) {
            if p.is_dir() {
                todo.push(p);
            } else if std::fs::read(&p)
                .unwrap_or_default()
                .windows(needle.len())
                .any(|w| w == needle)
            {
                out.push(p);
            }
        }
    }
    out
}

pub fn key(dir: &Path, name: &str) -> String {
    let p = dir.join(format!("{name}.key"));
    ok(&["key", "new", "-o", p.to_str().unwrap()]);
    p.to_str().unwrap().to_owned()
}

pub fn member_id(key: &str) -> String {
    let out = ok(&["key", "show", key]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v["memberId"].as_str().unwrap().to_owned()
}

/// Waits until the node's clerk has recorded the tally, then returns it.
pub fn tally_when_closed(rpc: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, out, _) = coop(&["--rpc", rpc, "tally", "show", id]).unwrap();
        if code == 0 {
            return serde_json::from_str(&out).unwrap();
        }
        assert!(Instant::now() < deadline, "no tally for {id}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A ride-hail co-op's bylaws v1: drivers 60% and riders 40% of the vote, votes of a second or
/// more, no notice.
pub fn ride_hail_bylaws() -> Bylaws {
    let mut b = Bylaws::single_class();
    b.classes = BTreeMap::from([
        ("drivers".to_string(), MemberClass { votes: true }),
        ("riders".to_string(), MemberClass { votes: true }),
    ]);
    b.voting = VotingMode::ClassWeighted {
        weights: BTreeMap::from([("drivers".into(), 600_000), ("riders".into(), 400_000)]),
        cap_ppm: None,
        legacy_cap_field: false,
    };
    for d in b.decisions.values_mut() {
        d.min_duration_ms = 1_000;
        d.min_notice_ms = 0;
    }
    b
}

/// `coop init` of a single-class co-op whose votes may last a second (so tests can vote and
/// wait for the tally), with `founders` as `--founder` specs (`@keyfile[:roles]`).
pub fn init_quick_vote_coop(data: &Path, origin: &str, name: &str, founders: &[String]) {
    init_quick_vote_coop_with(data, origin, name, founders, |_| {});
}

/// [`init_quick_vote_coop`] with the bylaws changed by `tweak` first.
pub fn init_quick_vote_coop_with(
    data: &Path,
    origin: &str,
    name: &str,
    founders: &[String],
    tweak: impl FnOnce(&mut Bylaws),
) {
    let mut bylaws = Bylaws::single_class();
    tweak(&mut bylaws);
    for r in bylaws.decisions.values_mut() {
        r.min_duration_ms = 1_000;
        r.min_notice_ms = 0;
    }
    let file = data.with_extension("bylaws.json");
    std::fs::write(&file, serde_json::to_vec(&bylaws).unwrap()).unwrap();
    let mut args = vec![
        "init".to_owned(),
        "--data".into(),
        data.to_str().unwrap().into(),
        "--origin".into(),
        origin.into(),
        "--name".into(),
        name.into(),
        "--bylaws".into(),
        file.to_str().unwrap().into(),
    ];
    for f in founders {
        args.push("--founder".into());
        args.push(f.clone());
    }
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
}

/// The ride-hail co-op of the secret-ballot tests in `data`: special resolutions by secret
/// ballot (no revotes, no proxies), founders board (a driver), driver, rider, rider2 with key
/// files in `dir`. Returns (names, key files).
pub fn init_secret_ballot_coop(dir: &Path, data: &Path) -> ([&'static str; 4], Vec<String>) {
    let mut bylaws = ride_hail_bylaws();
    if let Some(special) = bylaws
        .decisions
        .get_mut(&coopledger_governance::bylaws::DecisionKind::Special)
    {
        special.secret = true;
        special.revote = false;
        special.proxies.allowed = false;
    }
    let bylaws_file = dir.join("bylaws.json");
    std::fs::write(&bylaws_file, serde_json::to_string(&bylaws).unwrap()).unwrap();
    let names = ["board", "driver", "rider", "rider2"];
    let keys: Vec<String> = names.iter().map(|n| key(dir, n)).collect();
    let classes = [
        "board,class=drivers",
        "class=drivers",
        "class=riders",
        "class=riders",
    ];
    let mut init = vec![
        "init".to_string(),
        "--data".into(),
        data.to_str().unwrap().into(),
        "--origin".into(),
        "rides.example.coop/ledger".into(),
        "--name".into(),
        "Ride-hail Data Co-op".into(),
        "--bylaws".into(),
        bylaws_file.to_str().unwrap().into(),
    ];
    for (k, c) in keys.iter().zip(classes) {
        init.push("--founder".into());
        init.push(format!("@{k}:{c}"));
    }
    ok(&init.iter().map(String::as_str).collect::<Vec<_>>());
    (names, keys)
}

/// The repository's root.
pub fn repo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs a browser driver of `portal/e2e` (headless Chromium) on `work`; returns its JSON report,
/// which must list no page or console error.
pub fn drive(script: &str, work: &Path) -> Value {
    let run = std::process::Command::new("node")
        .arg(format!("e2e/{script}"))
        .arg(work)
        .current_dir(repo().join("portal"))
        .output()
        .expect("node (Node.js) runs the browser driver; scripts/setup.sh installs it");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "the driver failed: {stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["errors"], serde_json::json!([]), "{report}");
    report
}

/// With `COOP_PORTAL_SHOTS=DIR`, keeps the screenshots of `work` in DIR (how `docs/portal/` is
/// refreshed).
pub fn keep_shots(work: &Path) {
    if let Some(dir) = std::env::var_os("COOP_PORTAL_SHOTS") {
        std::fs::create_dir_all(&dir).unwrap();
        for e in std::fs::read_dir(work.join("shots")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), Path::new(&dir).join(e.file_name())).unwrap();
        }
    }
}
