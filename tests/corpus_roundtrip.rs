//! Lossless round trip of every real corpus model: encode (lossless), decode, compare the
//! ModelProto with the original, and run both in onnxruntime (tools/evaluate.py --exact),
//! which must report bit-identical outputs.
mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use common::*;
use nnc::DecodeOptions;

/// Runs `tools/evaluate.py ORIG CAND --exact` for every (name, orig, cand), two at a time
/// (output to files, not pipes, so no child can block on a full pipe); returns the failures.
fn evaluate_exact(jobs: &[(String, PathBuf, PathBuf)], logs: &Path) -> Vec<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/evaluate.py");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let mut failures = Vec::new();
    let mut running: Vec<(usize, Child, Instant)> = Vec::new();
    let mut next = 0usize;
    while next < jobs.len() || !running.is_empty() {
        while running.len() < 2 && next < jobs.len() {
            let (name, orig, cand) = &jobs[next];
            let out = File::create(logs.join(format!("{name}.stdout"))).unwrap();
            let err = File::create(logs.join(format!("{name}.stderr"))).unwrap();
            let child = Command::new(&python)
                .arg(&script)
                .arg(orig)
                .arg(cand)
                .arg("--exact")
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {python} {}: {e}", script.display()));
            running.push((next, child, Instant::now()));
            next += 1;
        }
        let (i, mut child, t) = running.remove(0);
        let status = child.wait().unwrap();
        let name = &jobs[i].0;
        say(&format!(
            "{name}: evaluate.py --exact: {status} ({:.1} s)",
            t.elapsed().as_secs_f64()
        ));
        if !status.success() {
            let read = |ext: &str| {
                std::fs::read_to_string(logs.join(format!("{name}.{ext}"))).unwrap_or_default()
            };
            let stdout = read("stdout");
            let tail: Vec<&str> = stdout.lines().rev().take(15).collect();
            failures.push(format!(
                "{name}: evaluate.py --exact exited with {status}\n--- stderr ---\n{}\n\
                 --- stdout (last lines) ---\n{}",
                read("stderr"),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
    }
    failures
}

#[test]
fn every_corpus_model_round_trips_bit_exactly() {
    let models = corpus_models();
    let dir = tempfile::tempdir().unwrap();
    let mut jobs = Vec::new();
    say(&format!(
        "{:<36} {:>11} {:>11} {:>7} {:>8} {:>8}",
        "model", "onnx bytes", "nnc bytes", "ratio", "enc s", "dec s"
    ));
    for path in &models {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let nnc_path = dir.path().join(format!("{name}.nnc"));
        let out = dir.path().join(&name);
        std::fs::create_dir(&out).unwrap();
        let decoded = out.join(format!("{name}.onnx"));

        let t = Instant::now();
        let report = nnc::encode_file(path, &nnc_path, &lossless())
            .unwrap_or_else(|e| panic!("{name}: encode failed: {e}"));
        let enc_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        nnc::decode_file(&nnc_path, &decoded, DecodeOptions::default(), false)
            .unwrap_or_else(|e| panic!("{name}: decode failed: {e}"));
        let dec_s = t.elapsed().as_secs_f64();

        let onnx_len = std::fs::metadata(path).unwrap().len();
        let nnc_len = std::fs::metadata(&nnc_path).unwrap().len();
        assert_eq!(report.total_bytes, nnc_len, "{name}: report total_bytes");
        say(&format!(
            "{:<36} {:>11} {:>11} {:>7.3} {:>8.2} {:>8.2}",
            name,
            onnx_len,
            nnc_len,
            onnx_len as f64 / nnc_len as f64,
            enc_s,
            dec_s
        ));
        assert!(
            nnc_len < onnx_len,
            "{name}: .nnc ({nnc_len} bytes) is not smaller than the .onnx ({onnx_len} bytes)"
        );

        let original = read_model(path);
        assert_models_equal(&original, &read_model(&decoded), &name);
        // The file (written around its large tensors, which are decoded into place after)
        // holds exactly the bytes the in-memory decoder serializes.
        let packed = std::fs::read(&nnc_path).unwrap();
        assert!(
            std::fs::read(&decoded).unwrap()
                == nnc::decode_to_bytes(packed.as_slice(), DecodeOptions::default()).unwrap(),
            "{name}: decode_file and decode_to_bytes differ"
        );
        // Nothing but the model beside it (the corpus models have no external data).
        let entries: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
        assert_eq!(
            entries.len(),
            1,
            "{name}: stray files in the output directory"
        );

        jobs.push((name, path.clone(), decoded));
    }
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let failures = evaluate_exact(&jobs, &logs);
    assert!(
        failures.is_empty(),
        "onnxruntime outputs differ:\n{}",
        failures.join("\n\n")
    );
}

/// `fine_bits` (mantissas of non-weight float tensors rounded before lossless coding) never
/// makes a tensor's record larger than coding it exact: a table of exact values (silero's
/// STFT basis) can code smaller unrounded, and then stays exact.
#[test]
fn fine_bits_never_codes_a_tensor_larger_than_exact() {
    let payloads = |model: &nnc::onnx::proto::ModelProto, fine: Option<u8>| {
        let opts = nnc::EncodeOptions {
            // Nothing quantized: every float tensor feeding arithmetic is a candidate for
            // the rounding (as tensors are that the calibrating encoder keeps off the grid).
            lossy: Some(nnc::LossyOptions {
                fine_bits: fine,
                min_elements: u64::MAX,
                ..nnc::LossyOptions::default()
            }),
            records_only: true,
            ..nnc::EncodeOptions::default()
        };
        let bytes = encode_with(model, None, &opts);
        let mut d = nnc::Decoder::new(
            bytes.as_slice(),
            DecodeOptions {
                keep_payload: true,
                ..DecodeOptions::default()
            },
        )
        .unwrap();
        let mut out = std::collections::BTreeMap::new();
        while let Some(t) = d.next_tensor().unwrap() {
            out.insert(t.name.clone(), (t.coding, t.payload.len(), t.data));
        }
        out
    };
    let mut rounded = 0;
    for path in corpus_models() {
        let model = read_model(&path);
        let exact = payloads(&model, None);
        for (name, (coding, len, data)) in payloads(&model, Some(13)) {
            let (c0, len0, data0) = &exact[&name];
            assert!(
                len <= *len0,
                "{}: {name} codes to {len} bytes with fine_bits 13, {len0} exact",
                path.display()
            );
            if coding == *c0 && coding != nnc::Coding::Quantized {
                rounded += usize::from(data != *data0);
            }
        }
    }
    // The rounding is used somewhere (the test would pass vacuously otherwise).
    assert!(rounded > 0, "no tensor was rounded");
}

/// `nnc encode` rounds the mantissas of biases and normalization parameters to 12 bits unless
/// told otherwise (`--fine-bits 23` keeps them exact), and the file is smaller for it: on the
/// direction classifier, whose 35 batch normalizations are not folded into its convolutions,
/// every such value decodes to its original rounded to 12 mantissa bits.
#[test]
fn the_command_line_rounds_normalization_parameters_to_12_mantissa_bits() {
    let path = corpus_dir().join("ch_ppocr_mobile_v2.0_cls_infer.onnx");
    assert!(
        path.exists(),
        "{} missing: run tools/fetch_corpus.sh",
        path.display()
    );
    // The float values of the model's batch-normalization parameters (`Constant` nodes in
    // this export), by name.
    let params =
        |m: &nnc::onnx::proto::ModelProto| -> std::collections::BTreeMap<String, Vec<f32>> {
            let mut out = std::collections::BTreeMap::new();
            for n in &m.graph.as_ref().unwrap().node {
                let name = n.output.first().cloned().unwrap_or_default();
                if n.op_type.as_deref() != Some("Constant") || !name.contains("_bn_") {
                    continue;
                }
                let t = n.attribute[0].t.as_deref().unwrap();
                let v: Vec<f32> = match &t.raw_data {
                    Some(r) if !r.is_empty() => r
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                        .collect(),
                    _ => t.float_data.clone(),
                };
                out.insert(name, v);
            }
            out
        };
    let original = params(&read_model(&path));
    // 35 batch normalizations of 4 parameters each.
    assert!(
        original.len() >= 100,
        "{} normalization parameters",
        original.len()
    );
    let dir = tempfile::tempdir().unwrap();
    let mut sizes = Vec::new();
    for (extra, bits) in [(None, 12u8), (Some("23"), 23)] {
        let out = dir.path().join(format!("cls{bits}.nnc"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nnc"));
        cmd.arg("encode")
            .arg(&path)
            .arg(&out)
            .args(["--weight-domain", "--quiet"]);
        if let Some(b) = extra {
            cmd.args(["--fine-bits", b]);
        }
        let status = cmd.status().unwrap();
        assert!(status.success(), "nnc encode {extra:?}: {status}");
        let bytes = std::fs::read(&out).unwrap();
        sizes.push(bytes.len());
        let decoded = params(&decode_inline(&bytes));
        let mut changed = 0usize;
        for (name, orig) in &original {
            let got = &decoded[name];
            assert_eq!(got.len(), orig.len(), "{name}");
            for (&x, &y) in orig.iter().zip(got) {
                // Parameters of fewer than 16 values stay exact.
                let want = if orig.len() < 16 {
                    x
                } else {
                    nnc::quant::policy::round_mantissa(x, bits)
                };
                assert_eq!(
                    y.to_bits(),
                    want.to_bits(),
                    "{name}: {x:e} decodes to {y:e}, {want:e} expected with {bits} mantissa bits"
                );
                changed += usize::from(y.to_bits() != x.to_bits());
            }
        }
        if bits == 12 {
            assert!(changed > 0, "no value was rounded by the default");
        }
    }
    assert!(
        sizes[0] < sizes[1],
        "the default ({} bytes) is not smaller than exact normalization parameters ({})",
        sizes[0],
        sizes[1]
    );
}
