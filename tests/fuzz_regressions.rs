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

/// The outcome of decoding `bytes` with parallel chunk decoding on or off: the CRC32 of
/// every tensor's bytes, then the end (the error as `Debug` prints it).
fn outcome(bytes: &[u8], parallel: bool) -> (Vec<u32>, String) {
    let opts = DecodeOptions {
        parallel,
        ..DecodeOptions::default()
    };
    let mut tensors = Vec::new();
    let end = (|| {
        let mut d = Decoder::new(bytes, opts)?;
        while let Some(t) = d.next_tensor()? {
            tensors.push(crc32fast::hash(&t.data));
        }
        Ok::<_, nnc::Error>(())
    })();
    (tensors, format!("{end:?}"))
}

/// Finding of `buf_independent` (fuzz/regressions/buf_independent-parallel-error-order.nnc):
/// a payload with two damaged rANS chunk groups reported the error of whichever group a
/// thread finished first. The first error in file order is reported now, on any thread count.
#[test]
fn parallel_decoding_reports_the_same_outcome() {
    let mut files = Vec::new();
    files_under(&root().join("regressions"), &mut files);
    files_under(&root().join("seeds").join("decode"), &mut files);
    files.sort();
    let mut checked = 0;
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "nnc"))
    {
        let bytes = std::fs::read(f).unwrap();
        let one = outcome(&bytes, false);
        // More threads than cores, so groups finish in varying order.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(8)
            .build()
            .unwrap();
        for _ in 0..100 {
            assert_eq!(
                pool.install(|| outcome(&bytes, true)),
                one,
                "{}",
                f.display()
            );
        }
        checked += 1;
    }
    assert!(checked >= 2, "only {checked} files checked");
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

/// Finding of the `roundtrip` target (fuzz/regressions/roundtrip/quant-overflow-*.bin):
/// finite weights near the top of their type's range reconstruct to ±Inf, because the
/// encoder picks a level whose reconstruction exceeds the type's largest finite value and
/// the decoder rounded it to Inf. The encoder now keeps such a tensor lossless.
#[test]
fn quantized_reconstructions_stay_finite() {
    use nnc::onnx::proto::*;
    use nnc::quant::minifloat::Layout;
    use nnc::quant::policy::{Family, LossyOptions, StepRule};
    use prost::Message;

    let f16 = |v: &[f32]| -> Vec<u8> {
        v.iter()
            .flat_map(|x| nnc::quant::float::f32_to_f16(*x).to_le_bytes())
            .collect()
    };
    let f32b = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let cases = [
        (
            "float16 [-1.485, -0.131, 65504], midrise, step = σ",
            10,
            f16(&[-1.4853516, -0.13098145, 65504.0]),
            Family::Midrise,
            StepRule::StdFraction(1.0),
        ),
        (
            "float16 ±65504, midtread, step = σ/16",
            10,
            f16(&[65504.0, 60000.0, -65504.0, 0.0, 30000.0, -200.0, 1.0, 5.0]),
            Family::Midtread,
            StepRule::StdFraction(1.0 / 16.0),
        ),
        (
            "float32 1.98e38, minifloat E0M1",
            1,
            f32b(&[1.98e38, -3.0e38, 1.0, 0.5]),
            Family::Minifloat {
                layout: Layout {
                    exp_bits: 0,
                    man_bits: 1,
                },
            },
            StepRule::Fixed(0.01),
        ),
    ];
    for (what, dt, raw, family, step) in cases {
        let n = raw.len() / if dt == 1 { 4 } else { 2 };
        let model = ModelProto {
            graph: Some(GraphProto {
                initializer: vec![TensorProto {
                    name: Some("w".into()),
                    data_type: Some(dt),
                    dims: vec![n as i64],
                    raw_data: Some(raw),
                    ..Default::default()
                }],
                node: vec![NodeProto {
                    op_type: Some("MatMul".into()),
                    input: vec!["x".into(), "w".into()],
                    output: vec!["y".into()],
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let opts = nnc::EncodeOptions {
            lossy: Some(LossyOptions {
                family,
                step,
                per_channel: false,
                min_elements: 0,
                ..LossyOptions::default()
            }),
            ..Default::default()
        };
        let (file, _) = nnc::encode_model(model, None, &opts, Vec::new()).unwrap();
        let onnx = nnc::decode_to_bytes(file.as_slice(), DecodeOptions::default()).unwrap();
        let m = ModelProto::decode(onnx.as_slice()).unwrap();
        let raw = m.graph.unwrap().initializer[0].raw_data.clone().unwrap();
        let values: Vec<f32> = if dt == 1 {
            raw.chunks(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        } else {
            raw.chunks(2)
                .map(|c| nnc::quant::float::f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect()
        };
        assert!(
            values.iter().all(|v| v.is_finite()),
            "{what}: decoded {values:?}"
        );
    }
}
