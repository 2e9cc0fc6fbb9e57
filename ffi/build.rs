//! Generates octo.h from this crate's `extern "C"` surface with cbindgen, into OUT_DIR.
//!
//! The committed include/octo.h must equal it: the `header` test compares the two (and rewrites
//! include/octo.h when run with OCTO_BLESS=1), so the header can never drift from the code.

use std::env;
use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");

    let mut config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("ffi/cbindgen.toml");
    let major = env::var("CARGO_PKG_VERSION_MAJOR").expect("version");
    let minor = env::var("CARGO_PKG_VERSION_MINOR").expect("version");
    let patch = env::var("CARGO_PKG_VERSION_PATCH").expect("version");
    config.after_includes = Some(format!(
        "\n/* The version of octo this header belongs to; octo_version() gives the library's. */\n\
         #define OCTO_VERSION_MAJOR {major}\n\
         #define OCTO_VERSION_MINOR {minor}\n\
         #define OCTO_VERSION_PATCH {patch}\n\
         #define OCTO_VERSION_STRING \"{major}.{minor}.{patch}\"\n"
    ));
    let bindings = cbindgen::Builder::new()
        .with_src(crate_dir.join("src/lib.rs"))
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate octo.h from ffi/src");
    bindings.write_to_file(out_dir.join("octo.h"));
}
