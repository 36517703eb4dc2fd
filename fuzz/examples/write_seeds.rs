//! Writes the committed seed corpora under `fuzz/seeds/<target>/`:
//!
//! - `decode/`: the seed `.nnc` files (`nnc_fuzz::seed::files`: lossless and one per
//!   quantizer family);
//! - `buf_independent/`: the same files behind mode byte 0, and a few edit scripts behind
//!   mode byte 1;
//! - `decode_mutated/`: edit scripts (the empty edit of each seed file, and a few edits);
//! - `roundtrip/`: deterministic pseudo-random bytes (the target draws models from them).
//!
//! Run from `fuzz/`: `cargo run --example write_seeds` (no sanitizer needed).
use std::fs;
use std::path::Path;

use nnc_fuzz::seed::{files, Rng};

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(name), bytes).unwrap();
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    for t in ["decode", "buf_independent", "decode_mutated", "roundtrip"] {
        let _ = fs::remove_dir_all(root.join(t));
    }
    let seeds = files();
    let mut total = 0;
    for (i, (name, bytes)) in seeds.iter().enumerate() {
        write(&root.join("decode"), &format!("{name}.nnc"), bytes);
        let mut b = vec![0u8];
        b.extend_from_slice(bytes);
        write(&root.join("buf_independent"), &format!("{name}.bin"), &b);
        write(
            &root.join("decode_mutated"),
            &format!("{name}.edits"),
            &[i as u8],
        );
        total += 2 * bytes.len() + 2;
    }
    // A few edits per seed: a tensor header byte, a payload byte, a dims field set to 2^32,
    // the graph protobuf, an inserted unknown record.
    let scripts: [&[u8]; 5] = [
        &[0, 4, 0, 0, 0x40],
        &[8, 5, 3, 0, 1],
        &[6, 4, 30, 0, 10],
        &[0, 0, 20, 0, 0x08],
        &[9, 4, 1, 0, 4],
    ];
    for i in 0..seeds.len() {
        for (j, s) in scripts.iter().enumerate() {
            let mut b = vec![i as u8];
            b.extend_from_slice(s);
            write(
                &root.join("decode_mutated"),
                &format!("edit_{i}_{j}.edits"),
                &b,
            );
            let mut m = vec![1u8];
            m.extend_from_slice(&b);
            if j < 2 {
                write(
                    &root.join("buf_independent"),
                    &format!("edit_{i}_{j}.bin"),
                    &m,
                );
            }
            total += b.len() + m.len();
        }
    }
    let mut rng = Rng(2024);
    for (i, len) in [64usize, 256, 512, 1024, 2048, 4096].iter().enumerate() {
        write(
            &root.join("roundtrip"),
            &format!("random_{i}.bin"),
            &rng.bytes(*len),
        );
        total += len;
    }
    println!(
        "wrote about {total} bytes of seeds under {}",
        root.display()
    );
}
