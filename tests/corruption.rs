//! Damaged files: truncating a `.nnc` anywhere, or flipping any byte, must give an error
//! (never a panic, never a model). The CLI reports the byte offset on one line and leaves no
//! output behind. Also: `nnc inspect --json` and deterministic encoding.
mod common;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::process::Command;

use common::*;
use nnc::container::tensor_header::{Coding, Storage};
use nnc::{DecodeOptions, Error};

enum Outcome {
    Err(Error),
    Ok,
    Panic(String),
}

/// Decodes `bytes` completely (every tensor, the index, the trailer, the model rebuilt).
fn decode_fully(bytes: &[u8]) -> Outcome {
    let r = catch_unwind(AssertUnwindSafe(|| {
        nnc::decode_to_bytes(bytes, DecodeOptions::default())
    }));
    match r {
        Ok(Ok(_)) => Outcome::Ok,
        Ok(Err(e)) => Outcome::Err(e),
        Err(p) => Outcome::Panic(
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default(),
        ),
    }
}

/// Checks one damaged input; returns a description of the problem, if any. Counts the rules
/// of the errors in `rules`.
fn check_damaged(
    original: &[u8],
    damaged: &[u8],
    what: &str,
    at: usize,
    rules: &mut BTreeMap<String, usize>,
) -> Option<String> {
    match decode_fully(damaged) {
        Outcome::Err(e) => {
            let (key, offset) = match &e {
                Error::Format { rule, offset, .. } => (rule.name().to_string(), Some(*offset)),
                Error::Limit { what, offset, .. } => (format!("limit: {what}"), Some(*offset)),
                other => (format!("other: {other}"), None),
            };
            *rules.entry(key).or_default() += 1;
            match offset {
                None => Some(format!(
                    "{what} at {at} ({}): error without a byte offset: {e}",
                    describe_offset(original, at)
                )),
                Some(o) if o > damaged.len() as u64 + 16 => Some(format!(
                    "{what} at {at}: error offset {o} beyond the input ({} bytes): {e}",
                    damaged.len()
                )),
                Some(_) => None,
            }
        }
        Outcome::Ok => Some(format!(
            "{what} at {at} ({}): decoded without error",
            describe_offset(original, at)
        )),
        Outcome::Panic(msg) => Some(format!(
            "{what} at {at} ({}): PANIC: {msg}",
            describe_offset(original, at)
        )),
    }
}

/// Truncates at each offset in `offsets` and flips each byte at those offsets with each mask.
/// The damaged inputs are spread over the available cores.
fn damage_all(what: &str, bytes: &[u8], offsets: &[usize], masks: &[u8]) {
    assert!(
        matches!(decode_fully(bytes), Outcome::Ok),
        "{what}: the undamaged file must decode"
    );
    // (offset, None: truncate there; Some(mask): flip that byte)
    let mut jobs: Vec<(usize, Option<u8>)> = offsets.iter().map(|&k| (k, None)).collect();
    for &mask in masks {
        jobs.extend(offsets.iter().map(|&i| (i, Some(mask))));
    }
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    let results: Vec<(Vec<String>, BTreeMap<String, usize>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let jobs = &jobs;
                s.spawn(move || {
                    let mut problems = Vec::new();
                    let mut rules = BTreeMap::new();
                    let mut damaged = bytes.to_vec();
                    for &(at, mask) in jobs.iter().skip(t).step_by(threads) {
                        let p = match mask {
                            None => {
                                check_damaged(bytes, &bytes[..at], "truncation", at, &mut rules)
                            }
                            Some(m) => {
                                damaged[at] ^= m;
                                let what = format!("xor {m:#04x}");
                                let p = check_damaged(bytes, &damaged, &what, at, &mut rules);
                                damaged[at] ^= m;
                                p
                            }
                        };
                        problems.extend(p);
                    }
                    (problems, rules)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut problems = Vec::new();
    let mut rules: BTreeMap<String, usize> = BTreeMap::new();
    for (p, r) in results {
        problems.extend(p);
        for (k, n) in r {
            *rules.entry(k).or_default() += n;
        }
    }
    say(&format!(
        "{what}: {} bytes, {} offsets, {} damaged inputs; errors by rule: {rules:?}",
        bytes.len(),
        offsets.len(),
        jobs.len()
    ));
    if !problems.is_empty() {
        let n = problems.len();
        problems.sort();
        problems.truncate(40);
        panic!(
            "{what}: {n} damaged inputs not rejected cleanly:\n{}",
            problems.join("\n")
        );
    }
}

fn small_nnc() -> Vec<u8> {
    encode(&small_model(), None)
}

#[test]
fn small_file_covers_several_codings_and_storages() {
    let bytes = small_nnc();
    assert!(
        bytes.len() > 1000 && bytes.len() < 16 * 1024,
        "{} bytes",
        bytes.len()
    );
    let (_, tensors) = read_tensors(&bytes[..], DecodeOptions::default()).unwrap();
    let codings: Vec<Coding> = tensors.iter().map(|t| t.coding).collect();
    let storages: Vec<Storage> = tensors.iter().map(|t| t.storage).collect();
    for c in [Coding::Raw, Coding::Planes, Coding::Zstd] {
        assert!(
            codings.contains(&c),
            "small_model no longer provokes {c:?}: {codings:?}"
        );
    }
    for s in [
        Storage::RawData,
        Storage::Typed,
        Storage::Inline,
        Storage::AttrFloats,
        Storage::AttrInts,
    ] {
        assert!(storages.contains(&s), "no {s:?} record: {storages:?}");
    }
}

#[test]
fn small_file_truncated_or_flipped_anywhere_is_an_error() {
    let bytes = small_nnc();
    let all: Vec<usize> = (0..bytes.len()).collect();
    damage_all("small_model", &bytes, &all, &[0xff, 0x01]);
    // Bytes after the trailer are an error too.
    for extra in [&[0u8][..], b"NNCE", &bytes[..]] {
        let mut longer = bytes.clone();
        longer.extend_from_slice(extra);
        assert!(
            matches!(decode_fully(&longer), Outcome::Err(_)),
            "{} bytes appended: not rejected",
            extra.len()
        );
    }
}

#[test]
fn external_data_file_truncated_or_flipped_anywhere_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("w.bin"),
        f32_bytes(&Rng(5).weights(300, 0.1)),
    )
    .unwrap();
    let m = model(graph(
        "g",
        vec![nnc::onnx::proto::TensorProto {
            data_location: Some(1),
            external_data: vec![kv("location", "w.bin")],
            ..tensor("ext", nnc::onnx::dtype::FLOAT, &[300])
        }],
        Vec::new(),
    ));
    let bytes = encode(&m, Some(dir.path()));
    let all: Vec<usize> = (0..bytes.len()).collect();
    damage_all("external model", &bytes, &all, &[0xff, 0x01]);
}

/// Offsets for a large file: `n` evenly spaced, plus the file header, the trailer, and the
/// fields of the first and last few records.
fn sample_offsets(bytes: &[u8], n: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).map(|i| i * bytes.len() / n).collect();
    v.extend(0..16);
    v.extend(bytes.len() - 16..bytes.len());
    let mut starts = Vec::new();
    let mut at = 16usize;
    while at + 24 <= bytes.len() - 16 {
        starts.push(at);
        let h = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        let p = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap()) as usize;
        at += 24 + h + p;
    }
    let k = starts.len();
    for (i, at) in starts.into_iter().enumerate() {
        if i >= 6 && i + 6 < k {
            continue;
        }
        let h = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        let p = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap()) as usize;
        // Kind, flags, lengths, both CRCs, first header byte, first and last payload byte.
        v.extend([at, at + 1, at + 4, at + 8, at + 16, at + 20, at + 24]);
        if p > 0 {
            v.extend([at + 24 + h, at + 24 + h + p - 1]);
        }
    }
    v.sort_unstable();
    v.dedup();
    v.retain(|&i| i < bytes.len());
    v
}

#[test]
fn corpus_file_truncated_or_flipped_at_sampled_offsets_is_an_error() {
    let path = smallest_corpus_model();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let bytes = encode(&read_model(&path), path.parent());
    let offsets = sample_offsets(&bytes, 2000);
    damage_all(&name, &bytes, &offsets, &[0xff]);
}

// ---------------------------------------------------------------------------------------------
// The command line

fn nnc_cmd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nnc"))
}

fn dir_listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Runs `nnc decode bad out.onnx` and `nnc verify bad`: both must fail with one stderr line
/// naming a byte offset, and decode must leave nothing behind.
fn check_cli_rejects(bad: &[u8], what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("bad.nnc");
    std::fs::write(&input, bad).unwrap();
    let out = dir.path().join("out.onnx");
    for args in [
        vec!["decode", input.to_str().unwrap(), out.to_str().unwrap()],
        vec!["verify", input.to_str().unwrap()],
        vec!["inspect", input.to_str().unwrap()],
    ] {
        let r = nnc_cmd().args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert!(
            !r.status.success(),
            "{what}: nnc {} succeeded on a damaged file",
            args[0]
        );
        assert_ne!(
            r.status.code(),
            Some(101),
            "{what}: nnc {} panicked: {stderr}",
            args[0]
        );
        let lines: Vec<&str> = stderr.trim_end().lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "{what}: nnc {}: stderr is not one line: {stderr:?}",
            args[0]
        );
        let line = lines[0];
        let offset = line
            .split("byte ")
            .nth(1)
            .and_then(|s| {
                s.split(|c: char| !c.is_ascii_digit())
                    .next()
                    .and_then(|d| d.parse::<u64>().ok())
            })
            .unwrap_or_else(|| panic!("{what}: nnc {}: no byte offset in {line:?}", args[0]));
        assert!(
            offset <= bad.len() as u64,
            "{what}: offset {offset} beyond the file"
        );
        assert_eq!(
            dir_listing(dir.path()),
            ["bad.nnc"],
            "{what}: nnc {} left files behind",
            args[0]
        );
    }
}

#[test]
fn cli_rejects_damaged_files_with_one_line_and_no_output() {
    let bytes = small_nnc();
    let mut flipped = bytes.clone();
    let mid = bytes.len() / 2;
    flipped[mid] ^= 0x10;
    check_cli_rejects(&flipped, "flipped byte");
    check_cli_rejects(&bytes[..bytes.len() - 5], "truncated file");
    check_cli_rejects(&bytes[..bytes.len() / 3], "truncated file (a third)");
    check_cli_rejects(b"not an nnc file at all", "text file");
    let mut tail = bytes.clone();
    tail.push(0);
    check_cli_rejects(&tail, "trailing byte");
}

#[test]
fn cli_decode_of_a_good_file_writes_only_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("good.nnc");
    std::fs::write(&input, small_nnc()).unwrap();
    let out = dir.path().join("out.onnx");
    let r = nnc_cmd()
        .args(["decode", input.to_str().unwrap(), out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(dir_listing(dir.path()), ["good.nnc", "out.onnx"]);
    assert_models_equal(&small_model(), &read_model(&out), "CLI decode");
}

#[test]
fn cli_inspect_json_describes_the_file() {
    let bytes = small_nnc();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("m.nnc");
    std::fs::write(&input, &bytes).unwrap();
    let r = nnc_cmd()
        .args(["inspect", "--json", input.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let text = String::from_utf8(r.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("inspect --json is not one JSON object ({e}): {text}"));
    let obj = v.as_object().expect("a JSON object");
    for k in ["format_version", "total_bytes", "graph_bytes", "tensors"] {
        assert!(obj.contains_key(k), "missing key {k}: {text}");
    }
    assert!(v["format_version"].is_string() || v["format_version"].is_number());
    assert_eq!(v["total_bytes"].as_u64(), Some(bytes.len() as u64));
    assert!(v["graph_bytes"].as_u64().unwrap() > 0);
    let (_, tensors) = read_tensors(&bytes[..], DecodeOptions::default()).unwrap();
    let rows = v["tensors"].as_array().unwrap();
    assert_eq!(rows.len(), tensors.len());
    for (row, t) in rows.iter().zip(&tensors) {
        for k in [
            "name",
            "dtype",
            "dims",
            "coding",
            "elements",
            "payload_bytes",
        ] {
            assert!(row.get(k).is_some(), "tensor row without {k}: {row}");
        }
        assert_eq!(row["name"].as_str(), Some(t.name.as_str()));
        assert_eq!(
            row["dtype"].as_str(),
            Some(nnc::onnx::dtype::name(t.data_type))
        );
        assert!(row["coding"].is_string());
        assert!(row["payload_bytes"].is_u64());
        let dims: Vec<u64> = row["dims"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        assert_eq!(dims, t.dims, "{}", t.name);
        assert_eq!(
            row["elements"].as_u64(),
            Some(t.dims.iter().product::<u64>()),
            "{}",
            t.name
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Determinism

#[test]
fn encoding_is_deterministic() {
    let m = rich_model();
    assert_eq!(encode(&m, None), encode(&m, None));
    let path = smallest_corpus_model();
    let cm = read_model(&path);
    assert_eq!(encode(&cm, path.parent()), encode(&cm, path.parent()));
}

#[test]
fn cli_encoding_does_not_depend_on_the_thread_count() {
    // The largest corpus model: its big tensors split into many rANS chunks.
    let path = corpus_models()
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for mode in [&["--lossless"][..], &[][..]] {
        let mut outputs = Vec::new();
        for threads in [Some("1"), None, Some("2")] {
            let out = dir.path().join(format!("{}.nnc", outputs.len()));
            let mut cmd = nnc_cmd();
            cmd.arg("encode").arg(&path).arg(&out).args(mode);
            match threads {
                Some(n) => cmd.env("RAYON_NUM_THREADS", n),
                None => cmd.env_remove("RAYON_NUM_THREADS"),
            };
            let r = cmd.output().unwrap();
            assert!(
                r.status.success(),
                "nnc encode {mode:?}: {}",
                String::from_utf8_lossy(&r.stderr)
            );
            outputs.push(std::fs::read(&out).unwrap());
        }
        assert!(
            outputs[0] == outputs[1] && outputs[1] == outputs[2],
            "nnc encode {mode:?} of {}: RAYON_NUM_THREADS=1 / default / 2 give different files \
             ({} / {} / {} bytes)",
            path.display(),
            outputs[0].len(),
            outputs[1].len(),
            outputs[2].len()
        );
    }
}

/// What decoding `bytes` tensor by tensor yields: the CRC32 of each tensor's bytes in order,
/// then the end (the error as `Debug` prints it).
fn tensor_outcome(bytes: &[u8], parallel: bool) -> (Vec<u32>, String) {
    let opts = DecodeOptions {
        parallel,
        ..DecodeOptions::default()
    };
    let mut crcs = Vec::new();
    let end = (|| {
        let mut d = nnc::Decoder::new(bytes, opts)?;
        while let Some(t) = d.next_tensor()? {
            crcs.push(crc32fast::hash(&t.data));
        }
        Ok::<_, Error>(())
    })();
    (crcs, format!("{end:?}"))
}

/// Small tensors are read ahead and decoded on every core together: the tensors, and the
/// first error in file order with the tensors before it, are those of decoding one at a
/// time, whichever byte is damaged and whichever thread finishes first.
#[test]
fn read_ahead_keeps_file_order() {
    let bytes = encode(&rich_model(), None);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(8)
        .build()
        .unwrap();
    let clean = tensor_outcome(&bytes, false);
    assert!(clean.0.len() >= 10, "{} tensors", clean.0.len());
    assert_eq!(pool.install(|| tensor_outcome(&bytes, true)), clean);
    let mut errors = 0;
    for at in (0..bytes.len()).step_by(7) {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x55;
        let one = tensor_outcome(&damaged, false);
        errors += usize::from(one.1 != "Ok(())");
        for _ in 0..3 {
            assert_eq!(
                pool.install(|| tensor_outcome(&damaged, true)),
                one,
                "byte {at} ({})",
                describe_offset(&bytes, at)
            );
        }
    }
    assert!(errors > bytes.len() / 14, "{errors} damaged files failed");
    // Two errors: the invalid vectors whose payloads are damaged under valid CRCs, with
    // the index or trailer damaged as well (read in the same batch as the bad payload).
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance/invalid");
    let mut checked = 0;
    for f in std::fs::read_dir(&dir).unwrap() {
        let path = f.unwrap().path();
        if !path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("payload-")
        {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        for back in [1, 5, 9, 13, 20, 30] {
            let mut damaged = bytes.clone();
            let at = bytes.len().saturating_sub(back);
            damaged[at] ^= 0x55;
            let one = tensor_outcome(&damaged, false);
            assert_eq!(
                pool.install(|| tensor_outcome(&damaged, true)),
                one,
                "{} byte {at}",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 60, "{checked} cases");
}
