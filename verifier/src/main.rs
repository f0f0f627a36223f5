//! `coop-verify`: one JSON request on stdin, one JSON answer on stdout (see the library's
//! documentation for the requests). Exit code 0 when answered, 2 when the input is not a
//! request or cannot be read. Built for `wasm32-wasip1` it is the portal's verifier.

use serde_json::json;
use std::io::{Read, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut input = String::new();
    if let Err(e) = std::io::stdin()
        .take(coopledger_verifier::MAX_REQUEST)
        .read_to_string(&mut input)
    {
        println!(
            "{}",
            json!({"error": format!("cannot read the request: {e}")})
        );
        return ExitCode::from(2);
    }
    let (out, code) = match coopledger_verifier::answer(&input) {
        Ok(a) => (a, ExitCode::SUCCESS),
        Err(e) => (e, ExitCode::from(2)),
    };
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{out}")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::from(2);
    }
    code
}
