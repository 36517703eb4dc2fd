//! Big models in bounded memory (issue 13, spec §10): decoding to files writes each external
//! tensor as it is decoded, `max_alloc` bounds what is held at once rather than the model, and
//! the streaming encoder writes the same bytes as the one that holds every coded tensor.
//! `tools/bench_memory.py` measures the same at 1 to 12 GB (peak RSS of the command-line tool).
#[path = "common/alloc.rs"]
mod alloc;
mod common;

use std::path::Path;

use alloc::peak_of;
use common::{kv, raw};
use nnc::onnx::proto::{GraphProto, ModelProto, TensorProto};
use nnc::{DecodeOptions, EncodeOptions, Error, Limits};
use prost::Message;

/// Tensors of the model `write_external_model` writes, and the bytes of each.
const TENSORS: usize = 16;
const TENSOR_BYTES: usize = 1 << 20;

/// Float values that byte-plane coding cannot shrink much (as trained weights): a hash of
/// the index, as a float in [-1, 1).
fn noise(seed: u64, n: usize) -> Vec<u8> {
    (0..n as u64)
        .flat_map(|i| {
            let mut x = (i ^ (seed << 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            x ^= x >> 29;
            x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x ^= x >> 32;
            ((x >> 40) as f32 / (1u64 << 23) as f32 - 1.0).to_le_bytes()
        })
        .collect()
}

/// `dir/m.onnx` with `TENSORS` float tensors of `TENSOR_BYTES`, all in `dir/w.bin`; returns
/// the external file's bytes.
fn write_external_model(dir: &Path) -> Vec<u8> {
    let mut bin = Vec::new();
    let mut g = GraphProto {
        name: Some("g".into()),
        ..Default::default()
    };
    for i in 0..TENSORS {
        let data = noise(i as u64, TENSOR_BYTES / 4);
        let mut t: TensorProto = raw(
            &format!("w{i}"),
            1,
            &[(TENSOR_BYTES / 4) as i64],
            Vec::new(),
        );
        t.raw_data = None;
        t.data_location = Some(1);
        t.external_data = vec![
            kv("location", "w.bin"),
            kv("offset", &bin.len().to_string()),
            kv("length", &data.len().to_string()),
        ];
        bin.extend_from_slice(&data);
        g.initializer.push(t);
    }
    let m = ModelProto {
        ir_version: Some(8),
        graph: Some(g),
        ..Default::default()
    };
    std::fs::write(dir.join("m.onnx"), m.encode_to_vec()).unwrap();
    std::fs::write(dir.join("w.bin"), &bin).unwrap();
    bin
}

/// `dir/m.nnc`, the lossless encode of `write_external_model(dir)`.
fn packed_external_model(dir: &Path) -> std::path::PathBuf {
    write_external_model(dir);
    let packed = dir.join("m.nnc");
    let lossless = EncodeOptions {
        lossy: None,
        ..EncodeOptions::default()
    };
    nnc::encode_file(&dir.join("m.onnx"), &packed, &lossless).unwrap();
    packed
}

fn single_thread(max_alloc: u64) -> DecodeOptions {
    DecodeOptions {
        parallel: false,
        limits: Limits {
            max_alloc,
            ..Limits::default()
        },
        ..DecodeOptions::default()
    }
}

#[test]
fn decoding_to_files_holds_one_tensor_and_max_alloc_bounds_what_is_held() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let bin = write_external_model(dir);
    let packed = dir.join("m.nnc");
    let lossless = EncodeOptions {
        lossy: None,
        ..EncodeOptions::default()
    };
    nnc::encode_file(&dir.join("m.onnx"), &packed, &lossless).unwrap();
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();

    // A limit of twice one tensor: the file decodes, tensor by tensor, to the same bytes.
    let max_alloc = 2 * TENSOR_BYTES as u64;
    let (r, peak) = peak_of(|| {
        nnc::decode_file(
            &packed,
            &out.join("m.onnx"),
            single_thread(max_alloc),
            false,
        )
    });
    r.unwrap();
    assert_eq!(std::fs::read(out.join("w.bin")).unwrap(), bin);
    // Outputs get the permissions of any new file (the umask's), not a temporary file's 0600.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        std::fs::write(dir.join("plain"), b"").unwrap();
        for f in ["m.onnx", "w.bin"] {
            assert_eq!(mode(&out.join(f)), mode(&dir.join("plain")), "{f}");
        }
        assert_eq!(mode(&packed), mode(&dir.join("plain")), "m.nnc");
    }
    // What decoding holds: the tensor, its payload and the I/O buffers (1 MiB each for the
    // input and for each of the two outputs), not the 16 MiB of the model.
    let bound = 3 * TENSOR_BYTES + 3 * (1 << 20) + (1 << 20);
    common::say(&format!(
        "decode_file: peak {:.1} MB for {} MB of tensors (bound {:.1} MB)",
        peak as f64 / 1e6,
        TENSORS * TENSOR_BYTES / 1_000_000,
        bound as f64 / 1e6
    ));
    assert!(peak <= bound, "peak {peak} over {bound}");

    // Building the whole model in memory holds every tensor: the same limit refuses it.
    let bytes = std::fs::read(&packed).unwrap();
    match nnc::decode_to_bytes(bytes.as_slice(), single_thread(max_alloc)) {
        Err(Error::Limit { what, limit, .. }) => {
            assert_eq!(what, "decoded bytes held (max_alloc)");
            assert_eq!(limit, max_alloc);
        }
        other => panic!("{:?}", other.map(|b| b.len())),
    }
    // With the limit that fits, the inline model holds the same bytes.
    let inline = nnc::decode_to_bytes(bytes.as_slice(), single_thread(u64::MAX)).unwrap();
    let m = ModelProto::decode(inline.as_slice()).unwrap();
    let data: Vec<u8> = m
        .graph
        .unwrap()
        .initializer
        .into_iter()
        .flat_map(|t| t.raw_data.unwrap())
        .collect();
    assert_eq!(data, bin);
}

#[test]
fn an_inline_output_is_written_around_its_large_tensors_without_holding_them() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let packed = packed_external_model(dir);
    let bytes = std::fs::read(&packed).unwrap();
    let want = nnc::decode_to_bytes(bytes.as_slice(), single_thread(u64::MAX)).unwrap();
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    // All 16 tensors go into the model file, yet a limit of two tensors is enough: they are
    // decoded straight into their place in the file after the model around them is written
    // (the in-memory decoder above needs them all at once, and the same limit refuses it).
    let max_alloc = 2 * TENSOR_BYTES as u64;
    assert!(nnc::decode_to_bytes(bytes.as_slice(), single_thread(max_alloc)).is_err());
    for parallel in [false, true] {
        let o = out.join(format!("inline-{parallel}.onnx"));
        let opts = DecodeOptions {
            parallel,
            ..single_thread(max_alloc)
        };
        nnc::decode_file(&packed, &o, opts, true).unwrap();
        assert_eq!(std::fs::read(&o).unwrap(), want, "parallel {parallel}");
    }
    let names: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn a_bad_tensor_decoded_into_place_leaves_no_output() {
    use nnc::container::record::Prefix;
    use nnc::container::{kind, FILE_HEADER_LEN};
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let packed = packed_external_model(dir);
    let mut bytes = std::fs::read(&packed).unwrap();
    // The last TENSOR record (a 1 MiB tensor, decoded in the second pass): its payload's first
    // byte made an unknown coding, its CRCs made right again.
    let (mut at, mut last) = (FILE_HEADER_LEN, None);
    while at + 24 <= bytes.len() {
        let hl = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        let pl = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap()) as usize;
        if bytes[at] == kind::TENSOR {
            last = Some((at, hl, pl));
        }
        at += 24 + hl + pl;
    }
    let (at, hl, pl) = last.unwrap();
    let (h, p) = (at + 24, at + 24 + hl);
    bytes[p] = 0xEE;
    let prefix = Prefix::build(bytes[at], bytes[at + 1], &bytes[h..p], &bytes[p..p + pl]);
    bytes[at..at + 24].copy_from_slice(&prefix);
    let bad = dir.join("bad.nnc");
    std::fs::write(&bad, &bytes).unwrap();
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    let err = nnc::decode_file(&bad, &out.join("m.onnx"), DecodeOptions::default(), true)
        .expect_err("a bad payload decodes");
    assert!(err.to_string().contains("w15"), "{err}");
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        0,
        "an output was left"
    );
}

#[test]
fn the_streaming_encoder_writes_what_the_holding_encoder_writes() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    write_external_model(dir);
    let mut models = vec![dir.join("m.onnx")];
    models.extend(common::corpus_models().into_iter().take(3));
    let lossy = EncodeOptions {
        lossy: Some(nnc::LossyOptions::default()),
        ..EncodeOptions::default()
    };
    let lossless = EncodeOptions::default();
    assert!(lossless.lossy.is_none());
    for m in &models {
        for opts in [&lossy, &lossless] {
            let prepared = nnc::encoder::prepare_file(m, opts).unwrap();
            let (streamed, report) = prepared.write(opts, Vec::new()).unwrap();
            let held = prepared.code(opts).unwrap();
            let (held, held_report) = held.write(&prepared, Vec::new(), None).unwrap();
            assert!(
                streamed == held,
                "{}: streamed and held bytes differ",
                m.display()
            );
            assert_eq!(report.total_bytes, streamed.len() as u64);
            assert_eq!(report.tensors.len(), held_report.tensors.len());
            // Streaming released the mapped pages of each tensor after writing it: the data
            // still reads the same (from the file again).
            let again = prepared.write(opts, Vec::new()).unwrap().0;
            assert!(again == streamed, "{}: not deterministic", m.display());
        }
    }
}

/// Decodes `packed` (whose bytes are `bytes`) from its path to `out` on this thread, checks
/// that the result is what a stream decode gives, and returns the decode's peak heap.
fn path_and_stream_agree(packed: &Path, bytes: &[u8], out: &Path) -> usize {
    let streamed = nnc::decode_to_bytes(bytes, single_thread(u64::MAX)).unwrap();
    let (r, peak) = peak_of(|| nnc::decode_file(packed, out, single_thread(u64::MAX), false));
    r.unwrap();
    assert!(
        std::fs::read(out).unwrap() == streamed,
        "path and stream decodes differ"
    );
    peak
}

/// Payloads of 4 MiB and more are decoded in place from a mapped input (issue 13): decoding a
/// file from its path holds the tensor, not its payload beside it, and gives the bytes that
/// decoding the same file from a stream gives; a damaged or cut-off payload is refused as it
/// is from a stream, and leaves no output.
#[test]
fn large_payloads_are_decoded_in_place() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let tensor = 32 << 20;
    let mut g = GraphProto {
        name: Some("g".into()),
        ..Default::default()
    };
    let cols = (tensor / 4096) as i64;
    g.initializer
        .push(raw("big", 1, &[1024, cols], noise(7, tensor / 4)));
    g.input.push(common::value_info("x", 1, &[1, 1024]));
    g.node
        .push(common::node("MatMul", "mm", &["x", "big"], &["y"]));
    g.output.push(common::value_info("y", 1, &[1, cols]));
    let m = ModelProto {
        ir_version: Some(8),
        graph: Some(g),
        opset_import: vec![nnc::onnx::proto::OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(13),
        }],
        ..Default::default()
    };
    std::fs::write(dir.join("m.onnx"), m.encode_to_vec()).unwrap();
    let packed = dir.join("m.nnc");
    let lossy = EncodeOptions {
        lossy: Some(nnc::LossyOptions::default()),
        ..EncodeOptions::default()
    };
    let report = nnc::encode_file(&dir.join("m.onnx"), &packed, &lossy).unwrap();
    assert_eq!(report.tensors[0].coding, nnc::Coding::Quantized);
    let bytes = std::fs::read(&packed).unwrap();
    assert!(bytes.len() > 4 << 20, "payload of {} bytes", bytes.len());
    let peak = path_and_stream_agree(&packed, &bytes, &dir.join("out.onnx"));
    // The tensor and the I/O buffers (1 MiB for the input, 1 MiB for the output), not the
    // tensor and its payload of about 6 MB.
    let bound = tensor + 3 * (1 << 20);
    common::say(&format!(
        "decode_file: peak {:.1} MB for a {} MB tensor with a {:.1} MB payload (bound {:.1} MB)",
        peak as f64 / 1e6,
        tensor >> 20,
        bytes.len() as f64 / 1e6,
        bound as f64 / 1e6
    ));
    assert!(peak <= bound, "peak {peak} over {bound}");
    // The library's decoder opened on a path decodes the same tensor; so does random access
    // through a mapped `Archive`, which holds the tensor and not its payload either.
    let mut dec = nnc::Decoder::open_path(&packed, DecodeOptions::default(), None).unwrap();
    let t = dec.next_tensor().unwrap().unwrap();
    assert_eq!(t.data.len(), tensor);
    assert!(dec.next_tensor().unwrap().is_none());
    let mut archive = nnc::Archive::open(&packed, single_thread(u64::MAX)).unwrap();
    let (r, peak) = peak_of(|| archive.tensor("big"));
    assert!(r.unwrap().data == t.data, "archive and decoder differ");
    let bound = tensor + (1 << 20);
    assert!(peak <= bound, "archive: peak {peak} over {bound}");

    // Damage in the middle of the payload, and a file cut off inside it: the same error from
    // the path as from a stream, and no output.
    let mut damaged = bytes.clone();
    let mid = bytes.len() / 2;
    damaged[mid] ^= 0x10;
    let cut = bytes[..mid].to_vec();
    for (what, b) in [("damaged", damaged), ("cut off", cut)] {
        let f = dir.join(format!("{what}.nnc"));
        std::fs::write(&f, &b).unwrap();
        let from_stream = nnc::decode_to_bytes(b.as_slice(), single_thread(u64::MAX))
            .unwrap_err()
            .to_string();
        let o = dir.join(format!("{what}.onnx"));
        let from_path = nnc::decode_file(&f, &o, DecodeOptions::default(), false)
            .unwrap_err()
            .to_string();
        assert_eq!(from_path, from_stream, "{what}");
        assert!(
            from_path.contains(if what == "cut off" {
                "truncated"
            } else {
                "CRC32"
            }),
            "{what}: {from_path}"
        );
        assert!(!o.exists(), "{what}: output left behind");
        let mut dec = nnc::Decoder::open_path(&f, DecodeOptions::default(), None).unwrap();
        assert_eq!(
            dec.next_tensor().unwrap_err().to_string(),
            from_stream,
            "{what}"
        );
    }
}

/// Lossless planes (spec §7.4) decode a window of each plane at a time into the tensor: a
/// file with a large float tensor decodes holding the tensor and a few MB, not its planes
/// beside it (a quarter of the tensor each for float32), and to the bytes a stream decode gives.
#[test]
fn planes_decode_without_holding_a_plane() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let tensor = 64 << 20;
    let mut g = GraphProto {
        name: Some("g".into()),
        ..Default::default()
    };
    // Trained-weight-like floats: most sign/exponent bytes repeat, mantissas do not, so the
    // encoder codes planes (with the top byte as the context of the next).
    let values: Vec<u8> = noise(3, tensor / 4)
        .chunks_exact(4)
        .flat_map(|b| (f32::from_le_bytes([b[0], b[1], b[2], b[3]]) * 0.05).to_le_bytes())
        .collect();
    g.initializer
        .push(raw("big", 1, &[(tensor / 4) as i64], values));
    let m = ModelProto {
        ir_version: Some(8),
        graph: Some(g),
        ..Default::default()
    };
    std::fs::write(dir.join("m.onnx"), m.encode_to_vec()).unwrap();
    let packed = dir.join("m.nnc");
    let report = nnc::encode_file(&dir.join("m.onnx"), &packed, &EncodeOptions::default()).unwrap();
    assert_eq!(report.tensors[0].coding, nnc::Coding::Planes);
    let bytes = std::fs::read(&packed).unwrap();
    let peak = path_and_stream_agree(&packed, &bytes, &dir.join("out.onnx"));
    // The tensor, the I/O buffers (1 MiB each) and one window of a plane and of its context
    // (4 MiB each), with some slack.
    let bound = tensor + 12 * (1 << 20);
    common::say(&format!(
        "planes: peak {:.1} MB for a {} MB tensor (bound {:.1} MB)",
        peak as f64 / 1e6,
        tensor >> 20,
        bound as f64 / 1e6
    ));
    assert!(peak <= bound, "peak {peak} over {bound}");
}
