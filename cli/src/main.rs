//! The `coop` binary.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    coopledger_cli::main()
}
