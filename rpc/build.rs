//! Embeds the portal's built files (`portal/dist`, made by `scripts/setup.sh` with `npm ci &&
//! npm run build` — never built here) into the binary as a table of
//! `(path, content type, bytes, gzipped bytes)`. Without a built portal the table is empty and
//! the node says at `/` how to build it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let dist = manifest.join("../portal/dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    println!("cargo:rerun-if-changed=build.rs");
    let mut files = Vec::new();
    if dist.is_dir() {
        walk(&dist, &mut files)?;
    }
    files.sort();
    let mut table = String::from(
        "/// The portal's files by path (included in `rpc::portal`, whose `Asset` they are).\n\
         pub static ASSETS: &[(&str, super::Asset)] = &[\n",
    );
    for f in &files {
        // `X.gz` (made by `npm run build`) is `X`'s compressed form, not a file of its own.
        if f.extension().is_some_and(|e| e == "gz") {
            continue;
        }
        let rel = f.strip_prefix(&dist)?.to_string_lossy().replace('\\', "/");
        let include = |p: &Path| -> std::io::Result<String> {
            Ok(format!(
                "include_bytes!({:?})",
                p.canonicalize()?.display().to_string()
            ))
        };
        let mut gz = f.clone().into_os_string();
        gz.push(".gz");
        let gz = PathBuf::from(gz);
        let compressed = if gz.is_file() {
            format!("Some({})", include(&gz)?)
        } else {
            "None".to_owned()
        };
        writeln!(
            table,
            "    ({:?}, super::Asset {{ content_type: {:?}, bytes: {}, gzipped: {compressed} }}),",
            format!("/{rel}"),
            content_type(f),
            include(f)?
        )?;
    }
    table.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("portal_assets.rs");
    std::fs::write(out, table)?;
    Ok(())
}
