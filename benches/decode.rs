//! Payload decoder alone (levels to f32) against this machine's memcpy ceiling.
//! Run: `cargo bench --bench decode` (prints a table; no timing assertions).
use std::time::Instant;

use nnc::container::tensor_header::{Coding, Storage, TensorHeader};
use nnc::quant::{self, Kind, QuantParams};

/// Deterministic discretized-Laplace levels with scale `b` (in steps).
fn levels(n: usize, b: f64, seed: u64) -> Vec<i64> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
            let v = if u < 0.5 {
                b * (2.0 * u).ln()
            } else {
                -b * (2.0 * (1.0 - u)).ln()
            };
            v.round() as i64
        })
        .collect()
}

fn best_of<F: FnMut()>(reps: usize, mut f: F) -> f64 {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let n = 1 << 22;
    println!("payload decoder, {n} levels, f32 output (best of 5); MB/s of f32 written");
    println!(
        "{:<52} {:>8} {:>10} {:>12} {:>10}",
        "case", "H bits", "coded bits", "MB/s", "vs memcpy"
    );
    let src = vec![1.0f32; n];
    let mut dst = vec![0.0f32; n];
    let memcpy = best_of(5, || {
        dst.copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&mut dst);
    });
    let memcpy_mbs = 4.0 * n as f64 / 1e6 / memcpy;
    println!(
        "{:<52} {:>8} {:>10} {:>12.0} {:>10.3}",
        "memcpy (ceiling)", "", "", memcpy_mbs, 1.0
    );
    // The default encoder's weights: a step per output channel, rows whose levels spread
    // differently, each row a segment, so that class modes (spec §7.3.2, §7.3.6) code them:
    // in mode 7 (wide) and mode 4, with rows of several lengths (rounds of 32 symbols that
    // straddle rows give their lanes different classes).
    let spreads = [1.0, 2.0, 4.0, 8.0, 16.0];
    let mixed = |row: usize| -> Vec<i64> {
        (0..n / row)
            .flat_map(|r| levels(row, spreads[r % spreads.len()], r as u64))
            .collect()
    };
    let mut cases = vec![
        (
            "laplace b=0.5".to_string(),
            levels(n, 0.5, 7),
            false,
            0,
            true,
        ),
        ("laplace b=4".to_string(), levels(n, 4.0, 7), false, 0, true),
        (
            "laplace b=20".to_string(),
            levels(n, 20.0, 7),
            false,
            0,
            true,
        ),
        (
            "laplace b=4 per-channel".to_string(),
            levels(n, 4.0, 7),
            true,
            0,
            true,
        ),
    ];
    for row in [n / 256, 576, 144, 100, 64, 48, 27, 9] {
        for wide in [true, false] {
            let label = format!("rows of {row} b=1..16 per-channel, classes");
            cases.push((label, mixed(row), true, row, wide));
        }
    }
    // `cargo bench --bench decode -- TEXT` runs only the cases whose label contains TEXT.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    for (label, lv, per_channel, segment, wide) in cases {
        if filter.as_ref().is_some_and(|f| !label.contains(f.as_str())) {
            continue;
        }
        let rows = n.checked_div(segment).unwrap_or(256);
        let n = lv.len();
        let dims = vec![rows as u64, (n / rows) as u64];
        let steps = if per_channel {
            (0..rows)
                .map(|i| 1e-3 * (1.0 + i as f32 / rows as f32))
                .collect()
        } else {
            vec![1e-3]
        };
        let params = QuantParams {
            kind: Kind::Midtread,
            steps,
        };
        let payload =
            quant::encode_payload_with(&lv, &params, nnc::entropy::DEFAULT_CHUNK, segment, wide)
                .expect("encode");
        // Stream mode (after the symbol width): 4/5 class modes, 6 and 7 the 32-lane layout.
        let label = format!("{label} (mode {})", payload[1]);
        let h = TensorHeader {
            data_type: 1,
            storage: Storage::RawData,
            coding: Coding::Quantized,
            name: "w".into(),
            dims,
            elements: n as u64,
            data_bytes: 4 * n as u64,
            params: params.to_bytes(),
        };
        let hist =
            nnc::entropy::histogram(&lv.iter().map(|&q| quant::zigzag(q)).collect::<Vec<_>>());
        let hbits = nnc::entropy::entropy_bits(&hist) / n as f64;
        if !per_channel {
            // The symbol stream alone into a buffer reused across runs (no allocation or page
            // faults of the output): the entropy decoder with reconstruction fused.
            let mut out = vec![0f32; n];
            let t = best_of(5, || {
                let mut c = nnc::bytes::Cursor::new(&payload[1..], 0, nnc::FormatRule::Payload);
                let step = 1e-3f32;
                nnc::entropy::decode_stream(
                    &mut c,
                    payload[0] as usize,
                    1 << 20,
                    |s| quant::unzigzag(s) as f32 * step,
                    &mut out,
                    false,
                )
                .expect("decode");
                std::hint::black_box(&mut out);
            });
            let mbs = 4.0 * n as f64 / 1e6 / t;
            println!(
                "{:<52} {:>8.3} {:>10.3} {:>12.0} {:>10.3}",
                format!("{label} stream only 1 thread"),
                hbits,
                8.0 * payload.len() as f64 / n as f64,
                mbs,
                mbs / memcpy_mbs
            );
        }
        for parallel in [false, true] {
            let t = best_of(5, || {
                std::hint::black_box(
                    quant::decode(&h, &payload, 0, parallel, None).expect("decode"),
                );
            });
            let mbs = 4.0 * n as f64 / 1e6 / t;
            let case = format!(
                "{label} {}",
                if parallel { "2 threads" } else { "1 thread" }
            );
            println!(
                "{:<52} {:>8.3} {:>10.3} {:>12.0} {:>10.3}",
                case,
                hbits,
                8.0 * payload.len() as f64 / n as f64,
                mbs,
                mbs / memcpy_mbs
            );
        }
    }
}
