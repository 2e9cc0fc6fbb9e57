//! The C test programs in tests/c, compiled with gcc (-Wall -Wextra -Werror) against the
//! committed include/octo.h and this build's libocto.so, each run as its own process.
//! (scripts/test.d/30-c-abi.sh runs them again under valgrind and AddressSanitizer.)

use std::path::{Path, PathBuf};
use std::process::Command;

fn lib_dir() -> PathBuf {
    // This test is target/<profile>/deps/c_programs-<hash>; `cargo test` builds the cdylib
    // beside it (it is copied up to target/<profile> only by `cargo build`).
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent().expect("deps dir").to_path_buf()
}

fn run_c_program(name: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let lib = lib_dir();
    assert!(
        lib.join("libocto.so").exists(),
        "libocto.so not built in {}",
        lib.display()
    );
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c-tests");
    std::fs::create_dir_all(&out_dir).unwrap();
    let exe = out_dir.join(name);
    let status = Command::new("gcc")
        .args([
            "-std=c11",
            "-D_GNU_SOURCE",
            "-O1",
            "-g",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pthread",
        ])
        .arg("-I")
        .arg(root.join("include"))
        .arg(root.join("ffi/tests/c").join(format!("{name}.c")))
        .arg("-o")
        .arg(&exe)
        .arg(format!("-L{}", lib.display()))
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-locto")
        .status()
        .expect("gcc");
    assert!(status.success(), "gcc failed on {name}.c");
    let run = Command::new(&exe)
        .env_remove("LD_LIBRARY_PATH") // cargo's points at target/<profile> first, maybe stale
        .current_dir(&root)
        .status()
        .expect("running the C test");
    assert!(run.success(), "{name} failed: {run}");
}

#[test]
fn core_c_program_passes() {
    run_c_program("test_core");
}

#[test]
fn engine_c_program_passes() {
    run_c_program("test_engine");
}

#[test]
fn server_c_program_passes() {
    run_c_program("test_server");
}

#[test]
fn client_c_program_passes() {
    run_c_program("test_client");
}
