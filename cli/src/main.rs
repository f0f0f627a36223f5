//! The `coop` binary.
#![forbid(unsafe_code)]

/// mimalloc rather than glibc's malloc: allocation-heavy paths (JSON-RPC, Raft messages,
/// batches) spent ~12 % of a loaded machine's CPU in glibc's malloc and free (README,
/// "Three replicas beside one node", sessions 21 and 22).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    coopledger_cli::main()
}
