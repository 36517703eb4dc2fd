//! The checked-in `include/nnc.h` is what cbindgen generates from `src/lib.rs` today.
//! `NNC_BLESS=1 cargo test -p nnc-capi --test header` rewrites it.
use std::path::Path;

#[test]
fn header_is_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen failed");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let path = dir.join("include/nnc.h");
    if std::env::var_os("NNC_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let checked_in = std::fs::read(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "capi/include/nnc.h is stale: regenerate it with \
         `NNC_BLESS=1 cargo test -p nnc-capi --test header` and commit it"
    );
}
