//! The `coop` binary's offline commands: keys, init, and verify's handling of bad input.
//! (Having an integration test here also makes `cargo test --workspace` build the `coop`
//! binary that the end-to-end tests in `tests/` start.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

use std::process::Command;

fn coop(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_coop"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn key_new_writes_an_owner_only_file_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice.key");
    let p = path.to_str().unwrap();
    let (code, out, err) = coop(&["key", "new", "-o", p]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("public key: "), "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let before = std::fs::read(&path).unwrap();
    let (code, _, err) = coop(&["key", "new", "-o", p]);
    assert_eq!(code, 2);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);

    let (code, out, _) = coop(&["key", "show", p]);
    assert_eq!(code, 0);
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(out.contains(shown["public"].as_str().unwrap()));
    assert!(shown["memberId"].as_str().unwrap().starts_with("m-"));
}

#[test]
fn init_creates_a_co_op_from_founders_key_files_once() {
    let dir = tempfile::tempdir().unwrap();
    let board = dir.path().join("board.key");
    coop(&["key", "new", "-o", board.to_str().unwrap()]);
    let data = dir.path().join("data");
    let founder = format!("@{}:board,treasurer", board.display());
    let args = [
        "init",
        "--data",
        data.to_str().unwrap(),
        "--origin",
        "drivers.example.coop/ledger",
        "--name",
        "Drivers",
        "--founder",
        &founder,
    ];
    let (code, out, err) = coop(&args);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("verifier key: drivers.example.coop/ledger+"),
        "{out}"
    );
    assert!(data.join("node.key").exists() && data.join("ledger/CURRENT").exists());
    let (code, _, err) = coop(&args);
    assert_eq!(code, 2);
    assert!(err.contains("already holds a ledger"), "{err}");
    let (code, _, err) = coop(&[
        "init",
        "--data",
        dir.path().join("x").to_str().unwrap(),
        "--origin",
        "o",
        "--name",
        "n",
        "--founder",
        "not-a-key:board",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--founder"), "{err}");
}

#[test]
fn verify_rejects_what_is_not_a_proof_and_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("junk.json");
    std::fs::write(&f, "{\"hello\": 1}").unwrap();
    let vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    let (code, out, _) = coop(&["verify", f.to_str().unwrap(), "--vkey", vkey]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("INVALID"), "{out}");
    let (code, _, err) = coop(&[
        "verify",
        f.to_str().unwrap(),
        "--vkey",
        "PeterNeumann+00000000+AAAA",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--vkey"), "{err}");
    let (code, _, _) = coop(&[
        "verify",
        dir.path().join("missing").to_str().unwrap(),
        "--vkey",
        vkey,
    ]);
    assert_eq!(code, 2);
}

#[test]
fn serving_off_loopback_without_tls_is_refused_unless_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("coop");
    let d = data.to_str().unwrap();
    let (code, _, err) = coop(&["serve", "--data", d, "--listen", "0.0.0.0:0"]);
    assert_ne!(code, 0);
    assert!(err.contains("refusing to listen on 0.0.0.0"), "{err}");
    assert!(err.contains("--insecure-listen"), "{err}");
}

#[test]
fn a_snapshot_install_limit_is_refused_off_a_replica_before_anything_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("coop");
    let d = data.to_str().unwrap();
    let (code, _, err) = coop(&["serve", "--data", d, "--snapshot-install-secs", "5"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--snapshot-install-secs applies to a replica"),
        "{err}"
    );
    assert!(!data.exists(), "a folder was made");
    for bad in ["0", "3601", "ten"] {
        let (code, _, err) = coop(&["serve", "--data", d, "--snapshot-install-secs", bad]);
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(err.contains("--snapshot-install-secs"), "{bad}: {err}");
    }
    assert!(!data.exists(), "a folder was made");
}

#[test]
fn bylaws_schema_is_the_published_one_and_check_names_a_misspelt_field() {
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/bylaws");
    let (code, out, _) = coop(&["bylaws", "schema"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        std::fs::read_to_string(docs.join("bylaws.schema.json")).unwrap()
    );
    let example = docs.join("class-weighted.json");
    let (code, out, _) = coop(&["bylaws", "check", example.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ACCEPTED"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&example).unwrap()).unwrap();
    v["voting"]["cap_ppm"] = v["voting"]["capPpm"].take();
    v["voting"].as_object_mut().unwrap().remove("capPpm");
    v["decisions"]["special"]["quorum"]["minimumPPM"] = 1.into();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, v.to_string()).unwrap();
    let (code, out, _) = coop(&["bylaws", "check", bad.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("field `decisions.special.quorum.minimumPPM`"),
        "{out}"
    );
    // `coop init` refuses the same file, naming the field.
    let (code, _, err) = coop(&[
        "init",
        "--data",
        dir.path().join("coop").to_str().unwrap(),
        "--origin",
        "x.example/ledger",
        "--name",
        "X",
        "--bylaws",
        bad.to_str().unwrap(),
        "--founder",
        "new:board",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("decisions.special.quorum.minimumPPM"), "{err}");
}

/// A reader that stops reading (`coop … | head -1`) ends the command with exit code 2 and
/// nothing on standard error — not a panic, and not 0, which a script would take for a check
/// that passed. Here the pipe's reading end is closed before `coop` starts, so every write
/// fails.
#[test]
fn a_closed_output_pipe_ends_a_command_with_2_and_no_panic() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.key");
    coop(&["key", "new", "-o", key.to_str().unwrap()]);
    for args in [
        vec!["bylaws", "schema"],
        vec!["key", "show", key.to_str().unwrap()],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_coop"))
            .args(&args)
            .stdout(writer)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err, "", "{args:?}");
    }
}
