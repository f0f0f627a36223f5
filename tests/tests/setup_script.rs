//! `scripts/setup.sh` on machines that lack what the build needs: each case runs the real
//! script with stub package managers (`apt-get`, `npm`) on a PATH holding nothing else of
//! note, and a fake library folder, and checks what it installed.
//!
//! Also checked: npm, anvil, cargo-fuzz, Node.js and Chromium are installed when missing, and
//! never twice; the portal is built (verifier WebAssembly, `npm ci`, `npm run build`) where the
//! checkout has one.
//!
//! The case that matters most: a machine with only `libclang-cpp` (Debian's image ships
//! `libclang-cpp14`), which bindgen cannot load. The script must install `libclang-dev` there.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

type TestResult = Result<(), Box<dyn std::error::Error>>;

struct Machine {
    _dir: tempfile::TempDir,
    root: PathBuf,
    bin: PathBuf,
    libs: PathBuf,
    pg: PathBuf,
    log: PathBuf,
}

fn script(path: &Path, text: &str) -> std::io::Result<()> {
    fs::write(path, text)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
}

impl Machine {
    /// A checkout with the real script, a bin folder with the basic tools and a stub
    /// `apt-get` that logs its arguments and "installs" by creating the package's files.
    fn new(with_npm: bool) -> std::io::Result<Machine> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("checkout");
        let bin = dir.path().join("bin");
        let libs = dir.path().join("usr-lib");
        let log = dir.path().join("installs.log");
        let pg = dir.path().join("usr-lib-postgresql");
        fs::create_dir_all(root.join("scripts"))?;
        fs::create_dir_all(&pg)?;
        fs::create_dir_all(&bin)?;
        fs::create_dir_all(&libs)?;
        fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/setup.sh"),
            root.join("scripts/setup.sh"),
        )?;
        for tool in [
            "bash", "env", "id", "mkdir", "basename", "dirname", "cat", "chmod", "touch", "grep",
        ] {
            for d in ["/usr/bin", "/bin"] {
                let p = Path::new(d).join(tool);
                if p.exists() {
                    std::os::unix::fs::symlink(&p, bin.join(tool))?;
                    break;
                }
            }
        }
        let npm_stub = format!(
            "#!/bin/bash\necho \"npm $*\" >> {log}\nmkdir -p tools/node_modules/.bin\n\
             printf '#!/bin/sh\\n' > tools/node_modules/.bin/anvil\n\
             chmod +x tools/node_modules/.bin/anvil\n",
            log = log.display()
        );
        let apt = format!(
            "#!/bin/bash\necho \"apt-get $*\" >> {log}\n\
             for p in \"$@\"; do\n\
               case \"$p\" in\n\
                 libclang-dev) touch {libs}/libclang-14.so.1 ;;\n\
                 npm) cat > {bin}/npm <<'EOS'\n{npm_stub}EOS\n chmod +x {bin}/npm ;;\n\
                 nodejs) printf '#!/bin/sh\\nexit 0\\n' > {bin}/node; chmod +x {bin}/node ;;\n\
                 chromium) printf '#!/bin/sh\\n' > {bin}/chromium; chmod +x {bin}/chromium ;;\n\
                 iproute2) printf '#!/bin/sh\\n' > {bin}/ip; chmod +x {bin}/ip ;;\n\
                 postgresql) mkdir -p {pg}/15/bin; printf '#!/bin/sh\\n' > {pg}/15/bin/postgres; chmod +x {pg}/15/bin/postgres ;;\n\
               esac\n\
             done\n",
            log = log.display(),
            libs = libs.display(),
            bin = bin.display(),
            pg = pg.display(),
        );
        script(&bin.join("apt-get"), &apt)?;
        script(&bin.join("sudo"), "#!/bin/bash\nexec \"$@\"\n")?;
        if with_npm {
            script(&bin.join("npm"), &npm_stub)?;
            // A Node.js that passes the version check, and a Chromium.
            script(&bin.join("node"), "#!/bin/sh\nexit 0\n")?;
            script(&bin.join("chromium"), "#!/bin/sh\n")?;
            script(&bin.join("ip"), "#!/bin/sh\n")?;
            // And PostgreSQL where Debian puts it.
            fs::create_dir_all(pg.join("15/bin"))?;
            script(&pg.join("15/bin/postgres"), "#!/bin/sh\n")?;
        }
        Ok(Machine {
            _dir: dir,
            root,
            bin,
            libs,
            pg,
            log,
        })
    }

    /// Runs the script; returns its exit status and the install log.
    fn run(&self) -> std::io::Result<(bool, String, String)> {
        let out = Command::new(self.bin.join("bash"))
            .arg(self.root.join("scripts/setup.sh"))
            .env_clear()
            .env("PATH", &self.bin)
            .env("COOP_SETUP_LIBDIRS", &self.libs)
            .env("COOP_SETUP_PGROOT", &self.pg)
            .output()?;
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        Ok((
            out.status.success(),
            log,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }
}

#[test]
fn only_libclang_cpp_present_installs_libclang_dev() -> TestResult {
    let m = Machine::new(true)?;
    fs::write(m.libs.join("libclang-cpp.so.14"), b"")?;
    let (ok, log, err) = m.run()?;
    assert!(ok, "setup failed: {err}");
    assert!(
        log.contains("apt-get install -y -qq libclang-dev"),
        "libclang-dev was not installed; installs: {log:?}"
    );
    assert!(m.libs.join("libclang-14.so.1").exists());
    Ok(())
}

#[test]
fn a_loadable_libclang_is_left_alone() -> TestResult {
    for name in [
        "libclang.so",
        "libclang-14.so.1",
        "libclang.so.1",
        "libclang-14.so",
    ] {
        let m = Machine::new(true)?;
        fs::write(m.libs.join("libclang-cpp.so.14"), b"")?;
        fs::write(m.libs.join(name), b"")?;
        let (ok, log, err) = m.run()?;
        assert!(ok, "setup failed with {name}: {err}");
        assert!(
            !log.contains("apt-get"),
            "{name} is loadable, yet apt-get ran: {log:?}"
        );
    }
    Ok(())
}

#[test]
fn anvil_is_installed_and_npm_first_when_missing() -> TestResult {
    let m = Machine::new(false)?;
    fs::write(m.libs.join("libclang.so.1"), b"")?;
    let (ok, log, err) = m.run()?;
    assert!(ok, "setup failed: {err}");
    assert!(log.contains("apt-get install -y -qq nodejs npm"), "{log:?}");
    assert!(log.contains("apt-get install -y -qq chromium"), "{log:?}");
    assert!(log.contains("apt-get install -y -qq iproute2"), "{log:?}");
    assert!(log.contains("apt-get install -y -qq postgresql"), "{log:?}");
    assert!(m.pg.join("15/bin/postgres").exists());
    assert!(log.contains("npm install --prefix tools"), "{log:?}");
    assert!(log.contains("@foundry-rs/anvil@"), "{log:?}");
    assert!(m.root.join("tools/node_modules/.bin/anvil").exists());
    // A second run finds everything and installs nothing more.
    let before = log.lines().count();
    let (ok, log, err) = m.run()?;
    assert!(ok, "second run failed: {err}");
    assert_eq!(log.lines().count(), before, "{log:?}");
    Ok(())
}

#[test]
fn cargo_fuzz_is_installed_when_cargo_lacks_it() -> TestResult {
    let m = Machine::new(true)?;
    fs::write(m.libs.join("libclang.so.1"), b"")?;
    // A cargo without the fuzz subcommand until `cargo install cargo-fuzz` runs.
    let marker = m.bin.join("fuzz-installed");
    script(
        &m.bin.join("cargo"),
        &format!(
            "#!/bin/bash\necho \"cargo $*\" >> {log}\n\
             if [ \"$1\" = fuzz ]; then [ -e {marker} ]; exit $?; fi\n\
             if [ \"$1\" = install ]; then touch {marker}; fi\n",
            log = m.log.display(),
            marker = marker.display()
        ),
    )?;
    let (ok, log, err) = m.run()?;
    assert!(ok, "setup failed: {err}");
    assert!(
        log.contains("cargo install --quiet --locked cargo-fuzz@"),
        "{log:?}"
    );
    let before = log.lines().count();
    let (ok, log, err) = m.run()?;
    assert!(ok, "second run failed: {err}");
    assert!(
        !log.lines()
            .skip(before)
            .any(|l| l.starts_with("cargo install")),
        "installed twice: {log:?}"
    );
    Ok(())
}

#[test]
fn a_failed_install_fails_the_script() -> TestResult {
    let m = Machine::new(true)?;
    // apt-get "succeeds" but puts nothing where bindgen looks.
    script(
        &m.bin.join("apt-get"),
        &format!("#!/bin/bash\necho \"apt-get $*\" >> {}\n", m.log.display()),
    )?;
    let (ok, _, err) = m.run()?;
    assert!(!ok, "setup passed without a loadable libclang");
    assert!(err.contains("no libclang.so"), "{err}");
    Ok(())
}

#[test]
fn an_old_node_is_replaced() -> TestResult {
    let m = Machine::new(true)?;
    fs::write(m.libs.join("libclang.so.1"), b"")?;
    // A node that fails the version check (as Node.js 12 would).
    script(&m.bin.join("node"), "#!/bin/sh\nexit 1\n")?;
    let (ok, log, err) = m.run()?;
    assert!(ok, "setup failed: {err}");
    assert!(log.contains("apt-get install -y -qq nodejs npm"), "{log:?}");
    Ok(())
}

#[test]
fn the_portal_is_built_with_its_verifier() -> TestResult {
    let m = Machine::new(true)?;
    fs::write(m.libs.join("libclang.so.1"), b"")?;
    fs::create_dir_all(m.root.join("portal"))?;
    fs::write(m.root.join("portal/package.json"), b"{}")?;
    fs::write(m.root.join("portal/package-lock.json"), b"{}")?;
    // cargo "builds" the verifier; npm logs what it is asked and `npm ci` "installs".
    let wasm = m.root.join("target/wasm32-wasip1/wasm");
    script(
        &m.bin.join("cargo"),
        &format!(
            "#!/bin/bash\necho \"cargo $*\" >> {log}\n\
             if [ \"$1\" = build ]; then mkdir -p {wasm}; printf '\\0asm' > {wasm}/coop-verify.wasm; fi\n",
            log = m.log.display(),
            wasm = wasm.display()
        ),
    )?;
    script(
        &m.bin.join("npm"),
        &format!(
            "#!/bin/bash\necho \"npm $*\" >> {log}\n\
             if [ \"$1\" = ci ]; then mkdir -p node_modules; touch node_modules/.package-lock.json; fi\n\
             if [ \"$1\" = install ]; then mkdir -p tools/node_modules/.bin; printf '#!/bin/sh\\n' > tools/node_modules/.bin/anvil; chmod +x tools/node_modules/.bin/anvil; fi\n",
            log = m.log.display()
        ),
    )?;
    let (ok, log, err) = m.run()?;
    assert!(ok, "setup failed: {err}");
    assert!(
        log.contains(
            "cargo build --quiet --profile wasm -p coopledger-verifier --target wasm32-wasip1"
        ),
        "{log:?}"
    );
    assert_eq!(
        fs::read(m.root.join("portal/public/verifier.wasm"))?,
        b"\0asm"
    );
    assert!(log.contains("npm ci"), "{log:?}");
    assert!(log.contains("npm run --silent build"), "{log:?}");
    // Again: the packages are current, so no second `npm ci`; the build runs again.
    let (ok, log, err) = m.run()?;
    assert!(ok, "second run failed: {err}");
    assert_eq!(log.matches("npm ci").count(), 1, "{log:?}");
    assert_eq!(log.matches("npm run --silent build").count(), 2, "{log:?}");
    Ok(())
}
