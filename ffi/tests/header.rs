//! include/octo.h is exactly what cbindgen generates from ffi/src (no drift, no hand edits).

use std::path::Path;

const GENERATED: &str = include_str!(concat!(env!("OUT_DIR"), "/octo.h"));

#[test]
fn committed_header_matches_cbindgen_output() {
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../include/octo.h");
    if std::env::var_os("OCTO_BLESS").is_some() {
        std::fs::write(&committed, GENERATED).expect("writing include/octo.h");
        return;
    }
    let on_disk = std::fs::read_to_string(&committed).unwrap_or_default();
    assert!(
        on_disk == GENERATED,
        "include/octo.h differs from cbindgen's output for ffi/src; regenerate it with \
         `OCTO_BLESS=1 cargo test -p octo-ffi --test header` and commit it"
    );
}
