//! `coop-bench --smoke` end to end at a small size: a real `coop serve`, three replicas of a
//! co-op, a PostgreSQL cluster and anvil are started, every entry of the workload is acknowledged by each (the run fails on
//! any refusal or missing row), and the table, JSON and ratios come out. No speed is asserted.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message"
)]

use serde_json::Value;
use std::process::Command;

#[test]
fn every_system_acknowledges_the_whole_workload_and_the_report_compares_them() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_coop-bench"))
        .args([
            "--smoke",
            "--entries",
            "400",
            "--members",
            "30",
            "--clients",
            "6",
        ])
        .args(["--bulk", "25", "--alone", "40", "--anvil-entries", "30"])
        .arg("--dir")
        .arg(dir.path())
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("not a measurement"), "{stdout}");

    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let runs = report["runs"].as_array().unwrap();
    let expected = [
        ("coopledger ledger_submit", 400, 1),
        ("coopledger ledger_submitBatch", 400, 25),
        ("coopledger ledger_submit, one client", 40, 1),
        ("coopledger ledger_submit, 3 replicas", 400, 1),
        ("coopledger ledger_submit, paced at 25%", 400, 1),
        ("coopledger ledger_submit, 3 replicas, paced at 25%", 400, 1),
        ("coopledger ledger_submit, paced at 50%", 400, 1),
        ("coopledger ledger_submit, 3 replicas, paced at 50%", 400, 1),
        ("PostgreSQL, INSERT per entry", 400, 1),
        ("PostgreSQL, prev-hash chain", 400, 1),
        ("PostgreSQL, bulk INSERT", 400, 25),
        ("PostgreSQL, INSERT per entry, one client", 40, 1),
        ("anvil, entry as calldata, automine", 30, 1),
    ];
    assert_eq!(runs.len(), expected.len(), "{report}");
    for (run, (system, entries, per)) in runs.iter().zip(expected) {
        assert_eq!(run["system"], system);
        assert_eq!(run["entries"], entries, "{run}");
        assert_eq!(run["perRequest"], per, "{run}");
        assert!(run["entriesPerSec"].as_f64().unwrap() > 0.0, "{run}");
        assert!(run["p99Ms"].as_f64().unwrap() >= run["p50Ms"].as_f64().unwrap());
        assert!(run["p999Ms"].as_f64().unwrap() >= run["p99Ms"].as_f64().unwrap());
        assert!(run["maxMs"].as_f64().unwrap() >= run["p999Ms"].as_f64().unwrap());
        // The slowest quarter-second: its mean lies between the fastest and slowest answers.
        let window = &run["slowestWindow"];
        assert!(window["entries"].as_u64().unwrap() > 0, "{run}");
        let mean = window["meanMs"].as_f64().unwrap();
        assert!(
            mean > 0.0 && mean <= run["maxMs"].as_f64().unwrap(),
            "{run}"
        );
        // The run over time: every entry answered in exactly one window, in time order.
        let windows = run["windows"].as_array().unwrap();
        let answered: u64 = windows.iter().map(|w| w["entries"].as_u64().unwrap()).sum();
        assert_eq!(answered, entries, "{run}");
        let starts: Vec<f64> = windows
            .iter()
            .map(|w| w["fromMs"].as_f64().unwrap())
            .collect();
        assert!(starts.windows(2).all(|p| p[0] < p[1]), "{run}");
        assert!(
            windows.iter().any(|w| w
                == &{
                    let mut slowest = window.clone();
                    slowest.as_object_mut().unwrap().remove("widthMs");
                    slowest
                }),
            "{run}"
        );
        assert!(stdout.contains(&format!("| {system} |")), "{stdout}");
    }
    // The paced runs: offered the stated fraction of one node's closed-loop rate, every request
    // accounted for; the closed runs carry no pace.
    let closed_rate = runs[0]["entriesPerSec"].as_f64().unwrap();
    for (run, fraction) in runs[4..8].iter().zip([0.25, 0.25, 0.5, 0.5]) {
        let paced = &run["paced"];
        let offered = paced["offeredPerSec"].as_f64().unwrap();
        assert!((offered - closed_rate * fraction).abs() < 1e-6, "{run}");
        assert_eq!(paced["requests"], 400, "{run}");
        assert!(paced["lateRequests"].as_u64().unwrap() <= 400, "{run}");
    }
    assert!(runs[0]["paced"].is_null(), "{}", runs[0]);
    assert!(
        stderr.contains("their latency counts from when they were due"),
        "{stderr}"
    );
    let one_client = runs[2]["clients"].as_u64().unwrap();
    assert_eq!(one_client, 1);
    assert_eq!(runs[0]["clients"], 6);
    let ratios = report["ratios"].as_array().unwrap();
    assert!(
        ratios
            .iter()
            .any(|r| r["what"] == "coopledger ledger_submit ÷ PostgreSQL, INSERT per entry"),
        "{report}"
    );
    for what in [
        "coopledger ledger_submit, 3 replicas ÷ coopledger ledger_submit",
        "p99 of coopledger ledger_submit, 3 replicas ÷ p99 of coopledger ledger_submit",
        "coopledger ledger_submit, 3 replicas leader's CPU per entry ÷ coopledger ledger_submit's",
        "p99 of coopledger ledger_submit, 3 replicas, paced at 25% ÷ p99 of coopledger ledger_submit, paced at 25%",
        "p99 of coopledger ledger_submit, 3 replicas, paced at 50% ÷ p99 of coopledger ledger_submit, paced at 50%",
    ] {
        assert!(ratios.iter().any(|r| r["what"] == what), "{what}: {report}");
    }
    // Each replica's CPU per entry: every replica applies every batch, so none is free.
    let cpu = &report["replicaCpuPerEntryUs"];
    assert!(cpu["leader"].as_f64().unwrap() > 0.0, "{cpu}");
    let followers = cpu["followers"].as_array().unwrap();
    assert_eq!(followers.len(), 2, "{cpu}");
    assert!(followers.iter().all(|f| f.as_f64().unwrap() > 0.0), "{cpu}");
    assert!(report["signatureCeiling"].as_f64().unwrap() > 0.0);
    // coopledger's folder measured after the single-submit run: every entry's signed bytes
    // are in it, so it cannot be smaller than them.
    let disk = &report["disk"];
    assert_eq!(disk["entries"], 400);
    assert!(
        disk["bytesOnDisk"].as_u64().unwrap() > disk["signedBytes"].as_u64().unwrap(),
        "{disk}"
    );
    assert!(stdout.contains("bytes per signed byte"), "{stdout}");
}

#[test]
fn without_smoke_it_refuses_while_a_compiler_runs() {
    // A process named `rustc` (`sleep` run through a link of that name: the kernel names a
    // process after the path it was started by). A link, not a copy: a copied file is open for
    // writing while the other test forks, and exec then fails with "Text file busy".
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("rustc");
    std::os::unix::fs::symlink("/bin/sleep", &fake).unwrap();
    let mut compiler = Command::new(&fake).arg("30").spawn().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_coop-bench"))
        .args(["--entries", "10", "--members", "2", "--clients", "1"])
        .output()
        .unwrap();
    let _ = compiler.kill();
    let _ = compiler.wait();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("a compiler is running (rustc"), "{stderr}");
}
