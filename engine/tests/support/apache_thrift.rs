//! Apache Thrift's Python side of the interop tests: the tool checks and the code generated from
//! idl/ once per test process. Included by the test binaries that talk to a real Apache Thrift
//! peer with `#[path = "support/apache_thrift.rs"] mod apache_thrift;`.
#![allow(dead_code)] // each test binary uses its own part of it

use std::path::{Path, PathBuf};
use std::process::Command;

/// What a failing tool check tells the person running the tests.
pub const INSTALL_HINT: &str = "run scripts/install-deps.sh";

/// The repository's idl/ folder.
pub const IDL_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../idl");

/// The Python interpreter (`$PYTHON`, else `python3`).
pub fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Fails the test, naming the fix, unless the `thrift` compiler and the Python modules `thrift`
/// and `cramjam` are installed: an interop test must never pass silently without its peer.
pub fn require_tools() {
    match Command::new("thrift").arg("--version").output() {
        Ok(o) if o.status.success() => {}
        _ => panic!("the Apache Thrift compiler `thrift` is not installed: {INSTALL_HINT}"),
    }
    match Command::new(python())
        .args(["-c", "import thrift, cramjam"])
        .output()
    {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "Python modules `thrift`/`cramjam` are missing ({}): {INSTALL_HINT}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => panic!("cannot run {}: {e}: {INSTALL_HINT}", python()),
    }
}

/// Makes a fresh work directory `<tag>-<pid>` under the target's tmp dir (removing those of
/// earlier test processes that are gone) and generates Python code for idl/octo.thrift,
/// idl/echo.thrift and `extra_idls` into its `gen-py/`. Returns the work directory.
/// Call it once per process (behind a `OnceLock`).
pub fn generate_python(tag: &str, extra_idls: &[&str]) -> PathBuf {
    require_tools();
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    remove_stale_work_dirs(root, tag);
    let work = root.join(format!("{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let gen = work.join("gen-py");
    std::fs::create_dir_all(&gen).expect("create the work directory");
    let idls = [
        format!("{IDL_DIR}/octo.thrift"),
        format!("{IDL_DIR}/echo.thrift"),
    ];
    for idl in idls
        .iter()
        .map(String::as_str)
        .chain(extra_idls.iter().copied())
    {
        let out = Command::new("thrift")
            .args(["--gen", "py", "-out"])
            .arg(&gen)
            .arg(idl)
            .output()
            .expect("run thrift");
        assert!(
            out.status.success(),
            "thrift --gen py {idl} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    work
}

/// Removes `<tag>-<pid>` directories whose process is no longer running.
fn remove_stale_work_dirs(root: &Path, tag: &str) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    let prefix = format!("{tag}-");
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix(&prefix) {
            if pid.bytes().all(|b| b.is_ascii_digit()) && !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}
