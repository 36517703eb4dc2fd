//! Replays the fuzzers' findings without cargo-fuzz (as ruzstd's `fuzz_regressions.rs`):
//! every file under `fuzz/regressions/` is decoded completely, tensor by tensor and with
//! `decode_to_bytes`, and must not panic (errors are fine). The committed seed files of the
//! `decode` target must still decode (regenerate them with
//! `cd fuzz && cargo run --release --example write_seeds` after a format change).
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use nnc::{DecodeOptions, Decoder};

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for e in entries {
        let p = e.expect("directory entry").path();
        if p.is_dir() {
            files_under(&p, out);
        } else if p.extension().is_none_or(|x| x != "md") {
            out.push(p);
        }
    }
}

/// Decodes `bytes` completely both ways; `Ok(true)` when both succeeded.
fn decode_fully(bytes: &[u8]) -> nnc::Result<bool> {
    let streamed = (|| {
        let mut d = Decoder::new(bytes, DecodeOptions::default())?;
        while d.next_tensor()?.is_some() {}
        Ok::<_, nnc::Error>(())
    })();
    let full = nnc::decode_to_bytes(bytes, DecodeOptions::default());
    streamed?;
    full.map(|_| true)
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

#[test]
fn fuzz_regressions_do_not_panic() {
    let dir = root().join("regressions");
    assert!(
        dir.join("README.md").is_file(),
        "{} is missing",
        dir.display()
    );
    let mut files = Vec::new();
    files_under(&dir, &mut files);
    files.sort();
    let mut panics = Vec::new();
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_else(|e| panic!("reading {}: {e}", f.display()));
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| decode_fully(&bytes))) {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panics.push(format!("{}: {msg}", f.display()));
        }
    }
    assert!(
        panics.is_empty(),
        "{} of {} regression inputs panic:\n{}",
        panics.len(),
        files.len(),
        panics.join("\n")
    );
}

#[test]
fn fuzz_seed_files_still_decode() {
    let mut files = Vec::new();
    files_under(&root().join("seeds").join("decode"), &mut files);
    assert!(!files.is_empty(), "no seed files under fuzz/seeds/decode");
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        match decode_fully(&bytes) {
            Ok(true) => {}
            other => panic!(
                "seed {} no longer decodes ({:?}); regenerate the seeds: \
                 cd fuzz && cargo run --release --example write_seeds",
                f.display(),
                other.err()
            ),
        }
    }
}
