//! The decoder reads from any `std::io::Read`: whole buffers, one byte per call, or short
//! reads mixed with `Interrupted` errors must all give the same tensors and graph; the tensor
//! order is the one `nnc inspect` lists; serial and parallel decoding give the same bytes.
mod common;

use std::io::Read;
use std::process::Command;

use common::*;
use nnc::onnx::proto::ModelProto;
use nnc::{DecodeOptions, Decoder};

fn corpus_nnc() -> (String, Vec<u8>) {
    let path = smallest_corpus_model();
    let m = read_model(&path);
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    (name, encode(&m, path.parent()))
}

fn synthetic_nnc() -> Vec<u8> {
    encode(&rich_model(), None)
}

/// Decodes `nnc` through the three readers and checks they agree, tensor by tensor and on
/// the graph, and that the complete decode (`decode_to_bytes`) agrees too.
fn check_readers(what: &str, nnc_bytes: &[u8]) {
    let (g0, t0) = read_tensors(nnc_bytes, DecodeOptions::default())
        .unwrap_or_else(|e| panic!("{what}: whole-buffer reader: {e}"));
    assert!(!t0.is_empty(), "{what}: no tensors");
    let readers: Vec<(&str, Box<dyn Read + '_>)> = vec![
        ("one byte per read", Box::new(OneByte(nnc_bytes))),
        (
            "short reads and Interrupted",
            Box::new(Stuttering::new(nnc_bytes)),
        ),
    ];
    for (kind, r) in readers {
        let (g, t) = read_tensors(r, DecodeOptions::default())
            .unwrap_or_else(|e| panic!("{what}: {kind}: {e}"));
        assert_models_equal(&g0, &g, &format!("{what}: {kind}: graph"));
        assert_eq!(t.len(), t0.len(), "{what}: {kind}: tensor count");
        for (a, b) in t0.iter().zip(&t) {
            assert_eq!(a, b, "{what}: {kind}: tensor {:?}", a.name);
        }
    }
    let full = nnc::decode_to_bytes(nnc_bytes, DecodeOptions::default()).unwrap();
    assert_eq!(
        full,
        nnc::decode_to_bytes(OneByte(nnc_bytes), DecodeOptions::default()).unwrap(),
        "{what}: decode_to_bytes, one byte per read"
    );
    assert_eq!(
        full,
        nnc::decode_to_bytes(Stuttering::new(nnc_bytes), DecodeOptions::default()).unwrap(),
        "{what}: decode_to_bytes, short reads and Interrupted"
    );
}

#[test]
fn corpus_model_decodes_identically_through_every_reader() {
    let (name, nnc_bytes) = corpus_nnc();
    check_readers(&name, &nnc_bytes);
}

#[test]
fn synthetic_model_decodes_identically_through_every_reader() {
    check_readers("rich_model", &synthetic_nnc());
    check_readers("small_model", &encode(&small_model(), None));
}

#[test]
fn stuttering_reader_really_stutters() {
    // Guard for the test itself: the reader returns Interrupted, then short reads.
    let data = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    let mut r = Stuttering::new(&data);
    let mut buf = [0u8; 10];
    assert_eq!(
        r.read(&mut buf).unwrap_err().kind(),
        std::io::ErrorKind::Interrupted
    );
    let n = r.read(&mut buf).unwrap();
    assert!(n >= 1 && n < data.len());
    let mut o = OneByte(&data);
    assert_eq!(o.read(&mut buf).unwrap(), 1);
}

fn inspect_json(nnc_path: &std::path::Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_nnc"))
        .arg("inspect")
        .arg("--json")
        .arg(nnc_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "nnc inspect --json failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("nnc inspect --json: not one JSON object")
}

fn check_next_tensor_order(what: &str, nnc_bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.nnc");
    std::fs::write(&p, nnc_bytes).unwrap();
    let json = inspect_json(&p);
    let rows = json["tensors"].as_array().expect("tensors array");

    let mut d = Decoder::new(nnc_bytes, DecodeOptions::default()).unwrap();
    let count = d.tensor_count();
    let mut seen = 0usize;
    while let Some(t) = d.next_tensor().unwrap() {
        assert_eq!(t.ordinal, seen, "{what}: ordinal");
        let row = &rows[seen];
        assert_eq!(
            row["name"].as_str(),
            Some(t.name.as_str()),
            "{what}: #{seen}"
        );
        assert_eq!(
            row["dtype"].as_str(),
            Some(nnc::onnx::dtype::name(t.data_type)),
            "{what}: dtype of {}",
            t.name
        );
        let dims: Vec<u64> = row["dims"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(dims, t.dims, "{what}: dims of {}", t.name);
        assert_eq!(
            row["payload_bytes"].as_u64(),
            Some(t.payload_bytes),
            "{what}: payload of {}",
            t.name
        );
        seen += 1;
    }
    assert_eq!(seen, count, "{what}: tensor_count");
    assert_eq!(
        seen,
        rows.len(),
        "{what}: inspect lists {} tensors",
        rows.len()
    );
    assert_eq!(d.total_bytes(), nnc_bytes.len() as u64);
    // None again, and again: the decoder stays finished.
    assert!(d.next_tensor().unwrap().is_none());
    assert!(d.next_tensor().unwrap().is_none());
}

#[test]
fn next_tensor_follows_inspect_order_and_ends_with_none() {
    let (name, nnc_bytes) = corpus_nnc();
    check_next_tensor_order(&name, &nnc_bytes);
    check_next_tensor_order("rich_model", &synthetic_nnc());
}

fn check_parallel(what: &str, nnc_bytes: &[u8]) {
    let serial = DecodeOptions {
        parallel: false,
        ..DecodeOptions::default()
    };
    let parallel = DecodeOptions {
        parallel: true,
        ..DecodeOptions::default()
    };
    let a = nnc::decode_to_bytes(nnc_bytes, serial).unwrap();
    let b = nnc::decode_to_bytes(nnc_bytes, parallel).unwrap();
    assert!(a == b, "{what}: serial and parallel decoding differ");
    let (_, ta) = read_tensors(nnc_bytes, serial).unwrap();
    let (_, tb) = read_tensors(nnc_bytes, parallel).unwrap();
    assert_eq!(ta, tb, "{what}: tensors differ");
}

#[test]
fn serial_and_parallel_decoding_give_identical_bytes() {
    let path = smallest_corpus_model();
    let m: ModelProto = read_model(&path);
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    check_parallel(&name, &encode(&m, path.parent()));
    // Small rANS chunks: many chunks per stream, so the parallel path really splits work.
    let mut opts = lossless();
    opts.lossless.chunk = 1000;
    let small_chunks = encode_with(&m, path.parent(), &opts);
    check_parallel(&format!("{name} (chunk 1000)"), &small_chunks);
    assert_models_equal(&m, &decode_inline(&small_chunks), &name);
    opts.lossless.chunk = 5;
    check_parallel(
        "rich_model (chunk 5)",
        &encode_with(&rich_model(), None, &opts),
    );
}

/// `nnc inspect F | head` closes the pipe early: the command ends quietly with status 0
/// (it used to panic in `println!`).
#[test]
fn a_closed_output_pipe_ends_the_cli_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.nnc");
    std::fs::write(&p, synthetic_nnc()).unwrap();
    for args in [vec!["inspect"], vec!["inspect", "--json"], vec!["verify"]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_nnc"))
            .args(&args)
            .arg(&p)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Close the read end before the command writes anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !stderr.contains("panicked"),
            "nnc {args:?} with a closed stdout: {:?}, stderr {stderr}",
            out.status
        );
    }
}
