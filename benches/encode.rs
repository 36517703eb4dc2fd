//! Where the encoder's own time goes, per weight, on one thread: the stages of quantizing and
//! coding one tensor (as `encoder::quantize_tensor` runs them) and the rate–distortion curve
//! the calibrating encoder measures for every tensor (57 step fractions).
//! Run: `cargo bench --bench encode` (prints a table; no timing
//! assertions). The target: the default encode at >= 200 MB/s of f32 per core,
//! model runs excluded.
use std::time::Instant;

use nnc::container::tensor_header::{Coding, Storage, TensorHeader};
use nnc::quant::{self, allocate, policy::LossyOptions};

/// A conv-like weight: `rows` output channels of `cols` Laplace values, the channels' scales
/// spread over two decades (as trained weights' are), as f32.
fn weights(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    let mut x = seed;
    let mut next = move || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let mut out = Vec::with_capacity(rows * cols);
    for _ in 0..rows {
        let scale = 0.002 * 100f64.powf(next());
        for _ in 0..cols {
            let u = next();
            let v = if u < 0.5 {
                scale * (2.0 * u).ln()
            } else {
                -scale * (2.0 * (1.0 - u)).ln()
            };
            out.push(v as f32);
        }
    }
    out
}

fn best_of<T, F: FnMut() -> T>(reps: usize, mut f: F) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..reps {
        let t = Instant::now();
        let r = f();
        best = best.min(t.elapsed().as_secs_f64());
        last = Some(r);
    }
    (best, last.expect("reps > 0"))
}

fn main() {
    // One thread: the figures are per core.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a thread pool");
    pool.install(run);
}

fn run() {
    let (rows, cols) = (512usize, 4608usize);
    let w = weights(rows, cols, 7);
    let n = w.len();
    let mb = 4.0 * n as f64 / 1e6;
    let dims = [rows as u64, cols as u64];
    let bytes: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
    println!(
        "encoder stages on one thread, a {rows}x{cols} float32 weight ({mb:.1} MB), best of 3; \
         MB/s of f32"
    );
    println!("{:<58} {:>9} {:>10}", "stage", "ms", "MB/s");
    let row = |name: &str, s: f64| println!("{name:<58} {:>9.1} {:>10.0}", 1e3 * s, mb / s);
    let l = LossyOptions::default();
    let (t, values) = best_of(3, || nnc::encoder::float_values(1, &bytes).expect("floats"));
    row("widen to f64 (float_values)", t);
    let (t, (params, limit)) = best_of(3, || l.params_for(&values, &dims).expect("params"));
    row("steps: σ and max per channel (params_for)", t);
    let kind = params.kind;
    let (t, symbols) = best_of(3, || {
        quant::quantize_map(
            n,
            |i| f32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap()) as f64,
            &params,
            limit,
            |q| quant::symbol(&kind, q),
        )
    });
    row("quantize to symbols (quantize_map)", t);
    let chunk = nnc::entropy::DEFAULT_CHUNK;
    let (t, payload) = best_of(3, || {
        quant::encode_symbols(&symbols, &params, chunk, cols, true, true, None).expect("coded")
    });
    row(
        &format!(
            "entropy code (encode_symbols: {:.2} bits/weight)",
            8.0 * payload.len() as f64 / n as f64
        ),
        t,
    );
    let header = TensorHeader {
        data_type: 1,
        storage: Storage::RawData,
        coding: Coding::Quantized,
        name: "w".into(),
        dims: dims.to_vec(),
        elements: n as u64,
        data_bytes: bytes.len() as u64,
        params: params.to_bytes(),
    };
    let (t, decoded) = best_of(3, || {
        quant::decode(&header, &payload, 0, true, None).expect("decodes")
    });
    row("decode the payload back (the encoder's check)", t);
    let (t, _) = best_of(3, || {
        std::hint::black_box(
            std::hint::black_box(&decoded)
                .chunks_exact(4)
                .zip(&values)
                .map(|(b, x)| {
                    let y = f32::from_le_bytes(b.try_into().unwrap()) as f64;
                    (x - y) * (x - y)
                })
                .sum::<f64>(),
        )
    });
    row("squared error of the decoded tensor", t);
    let fractions = allocate::fractions();
    let (t, c) = best_of(3, || {
        allocate::curve(&values, &dims, &l, &fractions, 32.0 * n as f64)
    });
    row(
        &format!(
            "rate-distortion curve ({} step fractions, calibrating only)",
            c.choices.len() - 1
        ),
        t,
    );
    let (setup, _) = best_of(3, || {
        allocate::curve(&values, &dims, &l, &[], 32.0 * n as f64)
    });
    row("  of which σ per channel and values sorted (once)", setup);
    for (k, what) in [(16, "σ/16"), (32, "σ/256"), (48, "σ/4096")] {
        let (t, _) = best_of(3, || {
            allocate::curve(&values, &dims, &l, &fractions[k..k + 1], 32.0 * n as f64)
        });
        row(&format!("  and one fraction ({what})"), t - setup);
    }
}
