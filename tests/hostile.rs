//! Hostile inputs of issue 11, tried as an attacker would: every one must end in a typed error
//! (or decode, if valid) within the memory and time promised in spec §10–§11, leave nothing
//! behind, and touch no file outside the output directory. `NNC_HOSTILE_DIR=DIR cargo test
//! --release --test hostile write_cases` writes the attack files to DIR for
//! `tools/hostile.sh`, which measures the CLI on them (peak RSS, wall time).
mod common;
#[path = "hostile/gen.rs"]
mod gen;

use std::path::Path;
use std::time::Instant;

use gen::*;
use nnc::{DecodeOptions, Error};

#[path = "common/alloc.rs"]
mod alloc;
use alloc::peak_of;

/// The promise of issue 11 and spec §10: a file of `n` bytes is decoded or refused with at
/// most 16 MiB for each KiB of input beyond its first (a file under 1 KiB: 16 MiB in all), in
/// about a second for each KiB.
fn memory_promise(n: usize) -> usize {
    16 * (1 << 20) * n.div_ceil(1024).max(1)
}

fn single_thread() -> DecodeOptions {
    DecodeOptions {
        parallel: false,
        ..DecodeOptions::default()
    }
}

#[test]
fn every_attack_file_is_refused_within_the_promised_memory_and_time() {
    for c in nnc_cases() {
        let t = Instant::now();
        let (r, peak) = peak_of(|| nnc::decode_to_bytes(c.bytes.as_slice(), single_thread()));
        let secs = t.elapsed().as_secs_f64();
        common::say(&format!(
            "{:32} {:5} bytes: {:8.1} MB peak, {:6.3} s: {}",
            c.name,
            c.bytes.len(),
            peak as f64 / 1e6,
            secs,
            match &r {
                Ok(_) => "decoded".to_string(),
                Err(e) => e.to_string().chars().take(90).collect(),
            }
        ));
        assert!(
            matches!(r, Err(Error::Limit { .. }) | Err(Error::Format { .. })),
            "{}: {:?}",
            c.name,
            r.map(|b| b.len())
        );
        assert!(
            peak <= memory_promise(c.bytes.len()),
            "{}: {peak} bytes",
            c.name
        );
        assert!(
            secs <= 1.0 + c.bytes.len() as f64 / 1024.0,
            "{}: {secs} s",
            c.name
        );
    }
}

/// Names copied for each slot are charged before they are built: a few thousand slots that
/// each copy a 60 KB name fit the census of the graph but not the walk's budget.
#[test]
fn slot_names_are_charged_to_the_graph_budget() {
    let b = nnc(&graph_name_slots(60_000, 3_000), &[]);
    let (r, peak) = peak_of(|| nnc::decode_to_bytes(b.as_slice(), single_thread()));
    match r {
        Err(Error::Limit { what, .. }) => assert_eq!(what, "graph memory"),
        other => panic!("{:?}", other.map(|b| b.len())),
    }
    assert!(peak <= memory_promise(b.len()), "{peak}");
    // A name longer than max_name_len fails at its slot, before the slot's record.
    let b = nnc(&graph_name_slots(70_000, 1), &[]);
    match nnc::decode_to_bytes(b.as_slice(), single_thread()) {
        Err(Error::Limit { what, value, .. }) => {
            assert_eq!(
                (what, value),
                ("name length", 70_000 + ".initializer[0]".len() as u64)
            )
        }
        other => panic!("{:?}", other.map(|b| b.len())),
    }
}

/// The census bounds what prost really allocates, for graphs of every kind the tests build.
#[test]
fn census_bounds_what_parsing_allocates() {
    use prost::Message;
    let mut graphs = vec![
        empty_attributes(10_000),
        empty_nodes(10_000),
        empty_initializers(10_000),
        many_ints(10_000),
        node_output_names(1000, 1000),
        nested_graphs(30),
    ];
    for p in common::corpus_models().iter().take(2) {
        graphs.push(std::fs::read(p).unwrap());
    }
    for g in graphs {
        let c = nnc::onnx::wire::census(&g, u64::MAX).unwrap();
        let (m, peak) = peak_of(|| nnc::onnx::proto::ModelProto::decode(g.as_slice()).unwrap());
        drop(m);
        assert!(
            peak as u64 + g.len() as u64 <= c.memory,
            "census {} < parse {} + {}",
            c.memory,
            peak,
            g.len()
        );
        assert!(c.memory <= 6 * (peak as u64 + g.len() as u64) + 4096);
    }
}

/// A valid file whose graph needs more than the default budget decodes once the caller
/// raises `max_graph_memory` and the expansion (the limit is the caller's choice).
#[test]
fn raised_limits_accept_an_expanding_graph() {
    let b = nnc(&empty_attributes(100_000), &[]);
    assert!(matches!(
        nnc::decode_to_bytes(b.as_slice(), DecodeOptions::default()),
        Err(Error::Limit {
            what: "graph memory",
            ..
        })
    ));
    let mut o = DecodeOptions::default();
    o.limits.max_expansion = 1 << 24;
    nnc::decode_to_bytes(b.as_slice(), o).unwrap();
}

fn write_to(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for c in nnc_cases() {
        std::fs::write(dir.join(c.name), &c.bytes).unwrap();
        common::say(&format!(
            "{:32} {:6} bytes  {}",
            c.name,
            c.bytes.len(),
            c.what
        ));
    }
    for (name, bytes) in onnx_cases() {
        std::fs::write(dir.join(name), &bytes).unwrap();
        common::say(&format!("{:32} {:6} bytes", name, bytes.len()));
    }
    std::fs::write(
        dir.join("external-bad-second.nnc"),
        external_model("w.bin", 0, true),
    )
    .unwrap();
    std::fs::write(
        dir.join("external-ok.nnc"),
        external_model("w.bin", 0, false),
    )
    .unwrap();
    std::fs::write(
        dir.join("external-same-name.nnc"),
        external_model("m.onnx", 0, false),
    )
    .unwrap();
    std::fs::write(
        dir.join("external-in-sub.nnc"),
        external_model("sub/w.bin", 0, false),
    )
    .unwrap();
    std::fs::write(
        dir.join("sparse-16g.nnc"),
        sparse_externals(4, (16 << 30) - 8),
    )
    .unwrap();
}

/// The `.onnx` attack files (encoder side).
fn onnx_cases() -> Vec<(&'static str, Vec<u8>)> {
    let mut long = ld(GRAPH_INITIALIZER, &{
        let mut t = float_slot(&"n".repeat(70_000), 1, None);
        t.extend(ld(TENSOR_RAW_DATA, &[0, 0, 128, 63]));
        t
    });
    long.extend(ld(GRAPH_NAME, b"g"));
    vec![
        ("enc-slot-names.onnx", node_output_names(60_000, 150_000)),
        (
            "enc-graph-name-slots.onnx",
            graph_name_slots(1_200, 250_000),
        ),
        ("enc-long-name.onnx", model(&long)),
        ("enc-empty-attributes.onnx", empty_attributes(500_000)),
    ]
}

#[test]
fn write_cases() {
    match std::env::var_os("NNC_HOSTILE_DIR") {
        Some(d) => write_to(Path::new(&d)),
        None => write_to(tempfile::tempdir().unwrap().path()),
    }
}

// ---------------------------------------------------------------------------------------------
// Outputs: whole, together, or not at all; never outside the output directory.

/// Files under `dir`, relative, sorted (directories end in `/`).
fn listing(dir: &Path) -> Vec<String> {
    fn go(root: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                out.push(format!("{rel}/"));
                go(root, &p, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut v = Vec::new();
    go(dir, dir, &mut v);
    v.sort();
    v
}

fn decode_in(dir: &Path, file: &[u8], out: &str) -> nnc::Result<()> {
    let input = dir.join("in.nnc.src");
    std::fs::write(&input, file).unwrap();
    let r = nnc::decode_file(&input, &dir.join(out), DecodeOptions::default(), false);
    std::fs::remove_file(&input).unwrap();
    r
}

#[test]
fn failed_decodes_leave_nothing_behind() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    // A bad tensor after an external one.
    assert!(decode_in(dir, &external_model("w.bin", 0, true), "m.onnx").is_err());
    assert_eq!(listing(dir), Vec::<String>::new());
    // An external file named like the model: refused, nothing written.
    assert!(matches!(
        decode_in(dir, &external_model("m.onnx", 0, false), "m.onnx"),
        Err(Error::Unsupported { .. })
    ));
    assert_eq!(listing(dir), Vec::<String>::new());
    // The output is a directory: refused up front, the directory untouched.
    std::fs::create_dir(dir.join("m.onnx")).unwrap();
    assert!(decode_in(dir, &external_model("w.bin", 0, false), "m.onnx").is_err());
    assert_eq!(listing(dir), vec!["m.onnx/"]);
    std::fs::remove_dir(dir.join("m.onnx")).unwrap();
    // The external file's directory is a regular file: fails after the model's temporary
    // file exists; both go, and so does the directory created on the way.
    std::fs::write(dir.join("sub"), b"x").unwrap();
    assert!(decode_in(dir, &external_model("a/sub/w.bin", 0, false), "m.onnx").is_ok());
    assert!(decode_in(dir, &external_model("sub/w.bin", 0, false), "n.onnx").is_err());
    assert_eq!(
        listing(dir),
        vec!["a/", "a/sub/", "a/sub/w.bin", "m.onnx", "sub"]
    );
    // Overlapping external tensors, and 4 sparse files of 16 GiB from a few hundred bytes.
    assert!(matches!(
        decode_in(dir, &sparse_externals(4, (16 << 30) - 8), "s.onnx"),
        Err(Error::Limit {
            what: "external data length",
            ..
        })
    ));
    assert_eq!(listing(dir).len(), 5);
}

#[cfg(unix)]
#[test]
fn symlinked_directories_inside_the_output_directory_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let outside = d.path().join("outside");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, out.join("sub")).unwrap();
    let r = decode_in(&out, &external_model("sub/w.bin", 0, false), "m.onnx");
    assert!(matches!(r, Err(Error::Unsupported { .. })), "{r:?}");
    assert_eq!(listing(&outside), Vec::<String>::new());
    assert_eq!(listing(&out), vec!["sub"]);
    // A link as the output model's name is replaced, its target untouched.
    std::fs::write(outside.join("victim"), b"keep").unwrap();
    std::os::unix::fs::symlink(outside.join("victim"), out.join("m.onnx")).unwrap();
    decode_in(&out, &external_model("w.bin", 0, false), "m.onnx").unwrap();
    assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"keep");
    assert!(!std::fs::symlink_metadata(out.join("m.onnx"))
        .unwrap()
        .file_type()
        .is_symlink());
}

/// SIGTERM at any moment of `nnc decode` leaves every output or none (status 143), never a
/// temporary file or a part of the set.
#[cfg(unix)]
#[test]
fn sigterm_during_decode_leaves_all_outputs_or_none() {
    use std::process::Command;
    let d = tempfile::tempdir().unwrap();
    // 24 MiB of external data that does not compress: writing and syncing it takes a while.
    let mut g = Vec::new();
    let mut recs = Vec::new();
    let mut x = 0x9e3779b97f4a7c15u64;
    for i in 0..3 {
        let n = 2 << 20;
        let vals: Vec<f32> = (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                f32::from_bits((x as u32 & 0x3fff_ffff) | 0x3000_0000)
            })
            .collect();
        let name = format!("w{i}");
        g.extend(ld(
            GRAPH_INITIALIZER,
            &float_slot(&name, n as u64, Some((&format!("d{i}/w.bin"), 0))),
        ));
        recs.push(float_record(
            &name,
            nnc::container::tensor_header::Storage::External,
            &vals,
        ));
    }
    let file = d.path().join("big.nnc");
    std::fs::write(&file, nnc(&model(&g), &recs)).unwrap();
    let mut interrupted = 0;
    for delay_ms in [5u64, 20, 40, 60, 80, 100, 150, 200, 300, 600] {
        let out = d.path().join(format!("out{delay_ms}"));
        std::fs::create_dir(&out).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_nnc"))
            .args([
                "decode",
                file.to_str().unwrap(),
                out.join("m.onnx").to_str().unwrap(),
            ])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let status = child.wait().unwrap();
        let files = listing(&out);
        if status.success() {
            assert_eq!(files.len(), 7, "{files:?}");
        } else {
            interrupted += 1;
            assert_eq!(status.code(), Some(143), "{status:?}");
            assert_eq!(files, Vec::<String>::new(), "after {delay_ms} ms");
        }
    }
    common::say(&format!(
        "SIGTERM: {interrupted} of 10 decodes interrupted, none left a file"
    ));
}

// ---------------------------------------------------------------------------------------------
// Encoder paths: external data resolved with links followed, inside the model's directory,
// regular files only, never blocking.

#[cfg(unix)]
#[test]
fn encoder_external_paths_stay_inside_the_model_directory() {
    use std::os::unix::fs::symlink;
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("model");
    let outside = d.path().join("outside");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.bin"), [7u8; 16]).unwrap();
    std::fs::write(dir.join("real.bin"), [0u8; 16]).unwrap();
    let encode = |loc: &str| {
        let m = model(&ld(GRAPH_INITIALIZER, &float_slot("w", 4, Some((loc, 0)))));
        std::fs::write(dir.join("m.onnx"), m).unwrap();
        let out = d.path().join("out.nnc");
        let t = Instant::now();
        let r = nnc::encode_file(&dir.join("m.onnx"), &out, &common::lossless());
        assert!(t.elapsed().as_secs_f64() < 5.0, "{loc}: blocked");
        let _ = std::fs::remove_file(&out);
        r.map(|_| ())
    };
    encode("real.bin").unwrap();
    symlink(dir.join("real.bin"), dir.join("inner-link.bin")).unwrap();
    encode("inner-link.bin").unwrap();
    symlink(outside.join("secret.bin"), dir.join("link.bin")).unwrap();
    assert!(matches!(encode("link.bin"), Err(Error::Input { .. })));
    symlink(&outside, dir.join("sub")).unwrap();
    assert!(matches!(encode("sub/secret.bin"), Err(Error::Input { .. })));
    std::fs::create_dir(dir.join("adir")).unwrap();
    assert!(matches!(encode("adir"), Err(Error::Input { .. })));
    let fifo = dir.join("fifo.bin");
    let ok = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    assert!(matches!(encode("fifo.bin"), Err(Error::Input { .. })));
    assert!(encode("missing.bin").is_err());
}

/// A tensor the caller's raised limits allow but the machine cannot hold: a typed error, not
/// an abort (allocation is fallible for every size that comes from the file).
#[test]
fn allocation_failure_is_a_typed_error() {
    use nnc::container::tensor_header::{Coding, Storage, TensorHeader};
    let n: u64 = 1 << 50;
    let mut t = vi(TENSOR_DIMS, n);
    t.extend(vi(TENSOR_DATA_TYPE, 2));
    t.extend(ld(TENSOR_NAME, b"huge"));
    let h = TensorHeader {
        data_type: 2,
        storage: Storage::RawData,
        coding: Coding::Zstd,
        name: "huge".into(),
        dims: vec![n],
        elements: n,
        data_bytes: n,
        params: Vec::new(),
    };
    let b = nnc(
        &model(&ld(GRAPH_INITIALIZER, &t)),
        &[(h, zstd::bulk::compress(&[0u8; 64], 3).unwrap())],
    );
    let mut o = single_thread();
    o.limits.max_alloc = u64::MAX;
    o.limits.max_elements = u64::MAX;
    o.limits.max_expansion = u64::MAX;
    match nnc::decode_to_bytes(b.as_slice(), o) {
        Err(Error::Limit { what, .. }) => assert_eq!(what, "memory (allocation failed)"),
        other => panic!("{:?}", other.map(|b| b.len())),
    }
}

/// `encode_file` parses a copy of its input without the `raw_data` contents and lifts them
/// from the map: tensors whose `raw_data` stays in the graph (a length that does not fit,
/// no data type) get their bytes back, and the model round-trips bit-exactly.
#[test]
fn encode_file_lifts_raw_data_from_the_map() {
    use prost::Message;
    let mut g = ld(GRAPH_INITIALIZER, &{
        let mut t = float_slot("ok", 2, None);
        t.extend(ld(TENSOR_RAW_DATA, &[0, 0, 128, 63, 0, 0, 0, 64]));
        t
    });
    g.extend(ld(GRAPH_INITIALIZER, &{
        let mut t = float_slot("odd", 2, None);
        t.extend(ld(TENSOR_RAW_DATA, &[1, 2, 3]));
        t
    }));
    g.extend(ld(GRAPH_INITIALIZER, &{
        let mut t = ld(TENSOR_NAME, b"untyped");
        t.extend(ld(TENSOR_RAW_DATA, &[7; 5]));
        t
    }));
    g.extend(ld(GRAPH_INITIALIZER, &{
        let mut t = float_slot("big", 1000, None);
        t.extend(ld(TENSOR_RAW_DATA, &vec![0x3f; 4000]));
        t
    }));
    let bytes = model(&g);
    let d = tempfile::tempdir().unwrap();
    let (input, out) = (d.path().join("m.onnx"), d.path().join("m.nnc"));
    std::fs::write(&input, &bytes).unwrap();
    nnc::encode_file(&input, &out, &common::lossless()).unwrap();
    let decoded = nnc::decode_to_bytes(
        std::fs::read(&out).unwrap().as_slice(),
        DecodeOptions::default(),
    )
    .unwrap();
    let original = nnc::onnx::proto::ModelProto::decode(bytes.as_slice()).unwrap();
    assert_eq!(decoded, original.encode_to_vec());
}

/// A model that would go over protobuf's 2 GB inline is refused from its graph alone, before
/// any tensor is decoded or any output file created (the file holds no tensor record at all).
#[test]
fn an_inline_model_over_2_gb_is_refused_before_decoding() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let g = ld(
        GRAPH_INITIALIZER,
        &float_slot("w", 600_000_000, Some(("w.bin", 0))),
    );
    let input = dir.join("in.nnc");
    std::fs::write(&input, nnc(&model(&g), &[])).unwrap();
    let r = nnc::decode_file(&input, &dir.join("m.onnx"), DecodeOptions::default(), true);
    match r {
        Err(Error::Unsupported { detail }) => {
            assert!(detail.contains("2 GB"), "{detail}");
            assert!(detail.contains("at least 24000000"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(listing(dir), vec!["in.nnc"]);
}
