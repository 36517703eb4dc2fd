//! `nnc analyze` and `nnc sweep` (the thesis as a tool) end to end on a corpus model, through
//! their clap argument structs: statistics and distribution fits, and a quick sweep whose
//! `--eval` command is a shell one-liner (the decoded file's size) to test the plumbing.
use std::path::PathBuf;

use clap::Parser;
use nnc::analysis::cli::{AnalyzeArgs, SweepArgs};
use nnc::analysis::sweep::{grid, Grid};

const MODEL: &str = "ch_ppocr_mobile_v2.0_cls_infer.onnx";

/// The corpus model, or a failure that says how to get it.
fn model() -> PathBuf {
    let dir = match std::env::var_os("NNC_CORPUS") {
        Some(c) if !c.is_empty() => PathBuf::from(c).join("models"),
        _ => PathBuf::from(std::env::var_os("HOME").expect("HOME or NNC_CORPUS must be set"))
            .join(".cache/nnc-corpus/models"),
    };
    let p = dir.join(MODEL);
    assert!(
        p.is_file(),
        "corpus model {} is missing: fetch the corpus with tools/fetch_corpus.sh \
         (or point NNC_CORPUS at a directory holding models/{MODEL})",
        p.display()
    );
    p
}

#[derive(Parser)]
struct Analyze {
    #[command(flatten)]
    args: AnalyzeArgs,
}

#[derive(Parser)]
struct Sweep {
    #[command(flatten)]
    args: SweepArgs,
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("nnc-analysis-test-{}-{name}", std::process::id()))
}

#[test]
fn analyze_reports_statistics_and_ranks_distributions() {
    let m = model();
    let svg = tmp("hist.svg");
    let a = Analyze::try_parse_from([
        "analyze",
        m.to_str().unwrap(),
        "--json",
        "--plot",
        svg.to_str().unwrap(),
    ])
    .unwrap();
    let mut out = Vec::new();
    a.args.execute(&mut out).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let model = &v["model"];
    let count = model["count"].as_u64().unwrap();
    assert!(count > 100_000, "{model}");
    let h = model["raw_entropy_bits"].as_f64().unwrap();
    assert!(h > 10.0 && h < 32.0, "raw entropy {h}");
    let tensors = v["tensors"].as_array().unwrap();
    assert_eq!(
        tensors.len() as u64,
        model["float_tensors"].as_u64().unwrap()
    );
    assert_eq!(
        tensors
            .iter()
            .map(|t| t["count"].as_u64().unwrap())
            .sum::<u64>(),
        count
    );
    for t in tensors {
        let s = t["sparsity"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&s));
        assert!(t["min"].as_f64().unwrap() <= t["max"].as_f64().unwrap());
        assert!(t["std"].as_f64().unwrap() >= 0.0);
    }
    let d = &v["distribution"];
    let fits = d["fits"].as_array().unwrap();
    assert_eq!(fits.len(), 9, "{d}");
    for key in ["ranking_sse", "ranking_kl"] {
        let mut r: Vec<&str> = d[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        assert_eq!(r.len(), 9);
        r.sort();
        r.dedup();
        assert_eq!(r.len(), 9, "{key} is not a permutation");
    }
    for f in fits {
        assert!(f["kl"].as_f64().unwrap() >= 0.0 && f["sse"].as_f64().unwrap() >= 0.0);
        assert!(!f["method"].as_str().unwrap().is_empty());
    }
    // The symmetric heavy-tailed candidates beat the uniform and exponential ones.
    let kl = |name: &str| {
        fits.iter().find(|f| f["distribution"] == name).unwrap()["kl"]
            .as_f64()
            .unwrap()
    };
    assert!(kl("laplace") < kl("uniform") && kl("laplace") < kl("exponential"));
    let text = std::fs::read_to_string(&svg).unwrap();
    std::fs::remove_file(&svg).ok();
    assert!(text.starts_with("<svg") && text.contains("</svg>") && text.contains("laplace"));

    // Text output.
    let a = Analyze::try_parse_from(["analyze", m.to_str().unwrap(), "--weights-only"]).unwrap();
    let mut out = Vec::new();
    a.args.execute(&mut out).unwrap();
    let s = String::from_utf8(out).unwrap();
    assert!(
        s.contains("ranking by KL:") && s.contains("totals over weight tensors"),
        "{s}"
    );
}

#[test]
fn quick_sweep_with_eval_command() {
    let m = model();
    let original_size = std::fs::metadata(&m).unwrap().len() as f64;
    let svg = tmp("rd.svg");
    // The "metric" is the decoded file's size in bytes: close to the original's, since the
    // decoder writes the same raw float bytes back.
    let s = Sweep::try_parse_from([
        "sweep",
        m.to_str().unwrap(),
        "--grid",
        "quick",
        "--json",
        "--quiet",
        "--eval",
        "wc -c < {model}",
        "--max-drop",
        "1000",
        "--plot",
        svg.to_str().unwrap(),
    ])
    .unwrap();
    let mut out = Vec::new();
    s.args.execute(&mut out).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["original_metric"].as_f64(), Some(original_size));
    let points = v["points"].as_array().unwrap();
    assert_eq!(points.len(), grid(Grid::Quick).len());
    for p in points {
        let metric = p["metric"]
            .as_f64()
            .unwrap_or_else(|| panic!("no metric: {p}"));
        assert!((metric - original_size).abs() < 0.01 * original_size, "{p}");
        let h = p["entropy"].as_f64().unwrap();
        assert!(h > 0.0 && h < 32.0);
        assert!((p["cr"].as_f64().unwrap() - 32.0 / h).abs() < 1e-9);
        assert!((p["re"].as_f64().unwrap() - (32.0 - h) / 32.0).abs() < 1e-9);
        assert!(p["file_bytes"].as_u64().unwrap() < original_size as u64);
        assert!(p["coded_bits_per_weight"].as_f64().unwrap() > 0.0);
        assert!(p["quantized_weights"].as_u64().unwrap() > 0);
    }
    // Per-channel settings keep the model: far smaller weight MSE than the thesis's global
    // [-1, 1] grid applied to every tensor (which clamps batch-norm statistics).
    let mse = |mode: &str| {
        points
            .iter()
            .filter(|p| p["mode"] == mode)
            .map(|p| p["mse"].as_f64().unwrap())
            .fold(f64::INFINITY, f64::min)
    };
    assert!(mse("per-channel") < mse("thesis"));
    // The selections are the smallest rates among the points within the allowed drop.
    let within: Vec<&serde_json::Value> = points
        .iter()
        .filter(|p| p["drop"].as_f64().unwrap() <= 1000.0)
        .collect();
    let min_h = within
        .iter()
        .map(|p| p["entropy"].as_f64().unwrap())
        .fold(f64::INFINITY, f64::min);
    assert_eq!(v["best_by_entropy"]["entropy"].as_f64(), Some(min_h));
    let min_file = within
        .iter()
        .map(|p| p["file_bytes"].as_u64().unwrap())
        .min();
    assert_eq!(v["best_by_file_bytes"]["file_bytes"].as_u64(), min_file);
    let text = std::fs::read_to_string(&svg).unwrap();
    std::fs::remove_file(&svg).ok();
    assert!(text.starts_with("<svg") && text.contains("original model"));
}

#[test]
fn sweep_reads_json_metrics_and_prints_csv_and_tables() {
    let m = model();
    // A JSON object with a "metric" field, printed after other output.
    let cmd = r#"echo loading 123; printf '{"metric": %s}\n' "$(wc -c < {model})""#;
    let s = Sweep::try_parse_from([
        "sweep",
        m.to_str().unwrap(),
        "--grid",
        "quick",
        "--csv",
        "--quiet",
        "--eval",
        cmd,
    ])
    .unwrap();
    let mut out = Vec::new();
    s.args.execute(&mut out).unwrap();
    let csv = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + grid(Grid::Quick).len());
    assert!(lines[0].starts_with("mode,method,levels,"));
    let metric_col = lines[0].split(',').position(|c| c == "metric").unwrap();
    for l in &lines[1..] {
        let m: f64 = l.split(',').nth(metric_col).unwrap().parse().unwrap();
        assert!(m > 100_000.0, "{l}");
    }

    // Table output with a selection; no --eval: MSE only.
    let s = Sweep::try_parse_from([
        "sweep",
        m.to_str().unwrap(),
        "--grid",
        "quick",
        "--quiet",
        "--eval",
        "wc -c < {model}",
        "--max-drop",
        "0",
        "--lower-is-better",
    ])
    .unwrap();
    let mut out = Vec::new();
    s.args.execute(&mut out).unwrap();
    let t = String::from_utf8(out).unwrap();
    assert!(
        t.contains("smallest H") && t.contains("smallest file"),
        "{t}"
    );

    // An evaluation command that fails on the original model is an error.
    let s = Sweep::try_parse_from([
        "sweep",
        m.to_str().unwrap(),
        "--grid",
        "quick",
        "--quiet",
        "--eval",
        "test {model} = nothing",
    ])
    .unwrap();
    assert!(s.args.execute(&mut Vec::new()).is_err());
    // --max-drop needs --eval.
    assert!(Sweep::try_parse_from(["sweep", "m.onnx", "--max-drop", "0.1"]).is_err());
}
