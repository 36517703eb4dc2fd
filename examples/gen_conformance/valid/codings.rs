//! Vectors of the lossless codings (spec §7.4, §7.5) and the symbol-stream modes (§7.1–§7.3).
use super::*;

pub(super) fn coding_raw() -> Case {
    let mut rng = Rng::new(11);
    let ts = vec![
        raw("random", dtype::UINT8, &[64], rng.bytes(64)),
        raw("tiny", dtype::INT16, &[3], vec![1, 0, 2, 0, 3, 0]),
    ];
    case(
        "coding-raw",
        "Coding raw: 64 random bytes (no coding is smaller) and a 6-byte tensor (under 16 \
         bytes the encoder does not try).",
        model(graph("g", ts, vec![])),
    )
    .sections(&["§7"])
    .facts(&["coding:raw"])
}

pub(super) fn coding_planes() -> Case {
    let mut rng = Rng::new(12);
    let w = rng.weights(256, 0.02);
    case(
        "coding-planes",
        "Coding planes of float32 weights: the sign-and-exponent plane under rANS, the low \
         mantissa planes stored (mode 0).",
        model(weights_graph("g", vec![floats("w", &[16, 16], &w)])),
    )
    .facts(&["coding:planes", "mode:0"])
}

pub(super) fn coding_zstd() -> Case {
    let pattern = b"nnc conformance: a repeating pattern ";
    let data: Vec<u8> = pattern.iter().copied().cycle().take(600).collect();
    case(
        "coding-zstd",
        "Coding zstd: a repeating byte pattern that zstd codes far smaller than byte planes.",
        model(graph(
            "g",
            vec![raw("text", dtype::UINT8, &[600], data)],
            vec![],
        )),
    )
    .facts(&["coding:zstd"])
}

pub(super) fn stream_exact() -> Case {
    // One frequent symbol last, rare sparse symbols before it: the exact model writes one
    // byte per gap and per frequency, the compact one three bytes per run.
    let mut rng = Rng::new(13);
    let data: Vec<u8> = (0..4000)
        .map(|_| {
            if rng.below(80) == 0 {
                (rng.below(10) * 17) as u8
            } else {
                250
            }
        })
        .collect();
    case(
        "stream-ans-exact",
        "A symbol stream in mode 2 (rANS with the exact frequency model): one frequent symbol \
         and ten rare, widely spaced ones.",
        model(graph(
            "g",
            vec![raw("sparse", dtype::UINT8, &[4000], data)],
            vec![],
        )),
    )
    .sections(&["§7.3.4"])
    .facts(&["coding:planes", "mode:2", "model:2"])
}

pub(super) fn stream_compact() -> Case {
    let mut rng = Rng::new(14);
    let data: Vec<u8> = (0..3000)
        .map(|_| (rng.gauss(6.0).round() as i64).clamp(-128, 127) as i8 as u8)
        .collect();
    case(
        "stream-ans-compact",
        "A symbol stream in mode 3 (rANS with the compact model): int8 values of a bell shape, \
         two runs of consecutive symbols.",
        model(graph(
            "g",
            vec![raw("bell", dtype::INT8, &[3000], data)],
            vec![],
        )),
    )
    .facts(&["coding:planes", "mode:3", "model:3"])
}

pub(super) fn stream_classes() -> Case {
    // 64 output channels whose spread grows with the channel index, one fixed step: the
    // level distributions differ by channel and channel classes pay.
    let mut rng = Rng::new(15);
    let mut w = Vec::new();
    for ch in 0..64 {
        let sigma = 0.01 * (1 + ch % 8 * 3) as f64;
        w.extend(rng.weights(80, sigma));
    }
    let l = quant(Family::Midtread, StepRule::Fixed(0.01));
    case(
        "stream-channel-classes",
        "A quantized 64x80 weight whose channels differ in spread: the level stream uses mode 4 \
         (channel classes, spec §7.3.2) with segments of 80 symbols and a class stream.",
        model(weights_graph("g", vec![floats("w", &[64, 80], &w)])),
    )
    .lossy(l)
    .facts(&["coding:quantized", "mode:4"])
}

/// Records for every tensor with the wide layouts on and the encoder option chunk = 4096,
/// so wide chunks are 65536 symbols (16 times the option).
fn wide_chunks_4096() -> EncodeOptions {
    EncodeOptions {
        lossless: LosslessOptions {
            chunk: 4096,
            wide: true,
            ..LosslessOptions::default()
        },
        ..lossless()
    }
}

/// Wide channel classes (mode 7, spec §7.3.6): 192 output channels of 683 levels whose
/// spread depends on the channel, chunk option 4096, so three wide chunks of 65536, 65536
/// and 64 symbols; segments (683) straddle rounds of 32 and chunk boundaries.
pub(super) fn stream_wide_classes() -> Case {
    let mut rng = Rng::new(19);
    let mut w = Vec::new();
    for ch in 0..192 {
        let sigma = 0.01 * (1 + ch % 8 * 3) as f64;
        w.extend(rng.weights(683, sigma));
    }
    let l = quant(Family::Midtread, StepRule::Fixed(0.01));
    let opts = wide_chunks_4096();
    case(
        "stream-wide-channel-classes",
        "A quantized 192x683 weight whose channels differ in spread: the level stream uses \
         mode 7 (wide channel classes, spec §7.3.6), segments of 683 symbols, in three wide \
         chunks of 65536, 65536 and 64 symbols (encoder option chunk = 4096).",
        model(weights_graph("g", vec![floats("w", &[192, 683], &w)])),
    )
    .opts(opts)
    .lossy(l)
    .sections(&["§7.3.6"])
    .facts(&["coding:quantized", "mode:7", "chunks:3"])
}

pub(super) fn stream_context() -> Case {
    // ±2^e·(1 + m/8) with e even: each sign-and-exponent byte has its own exponent LSB and
    // (mostly) its own mantissa, so the plane below it is nearly determined by it.
    let mut rng = Rng::new(16);
    let w: Vec<f32> = (0..4096)
        .map(|_| {
            let e = [-8i32, -6, -4, -2, 0][rng.below(5) as usize];
            let m = if rng.below(5) == 0 {
                rng.below(8) as i32
            } else {
                (e * 5).rem_euclid(8)
            };
            let sign = if rng.below(2) == 0 { 1.0 } else { -1.0 };
            sign * f32::from_bits(((127 + e) as u32) << 23) * (1.0 + m as f32 / 8.0)
        })
        .collect();
    case(
        "stream-context-classes",
        "Planes of 4096 float32 values ±2^e·(1 + m/8) whose mantissa depends on the exponent: \
         the second plane is coded with context classes (mode 5, spec §7.3.3), its classes \
         taken from the top plane.",
        model(graph("g", vec![floats("ctx", &[64, 64], &w)], vec![])),
    )
    .facts(&["coding:planes", "mode:5"])
}

pub(super) fn chunks_many() -> Case {
    // Chunk 0 holds only the smallest symbol: it codes to zero words (spec §7.3).
    let mut rng = Rng::new(17);
    let mut data = vec![3u8; 64];
    data.extend((0..2936).map(|_| 3 + rng.below(5) as u8 + (rng.below(4) == 0) as u8 * 7));
    let opts = EncodeOptions {
        lossless: LosslessOptions {
            chunk: 64,
            wide: false,
            ..LosslessOptions::default()
        },
        ..lossless()
    };
    case(
        "chunks-many",
        "A 3000-symbol stream in 47 chunks of 64 symbols (encoder option chunk = 64); the \
         first chunk holds only the stream's smallest symbol and has zero words.",
        model(graph(
            "g",
            vec![raw("chunked", dtype::UINT8, &[3000], data)],
            vec![],
        )),
    )
    .opts(opts)
    .sections(&["§7.3", "§7.3.1"])
    .facts(&["chunks>=40", "empty-chunk"])
}

/// A long stream in the wide layout (mode 6, spec §7.3.5): 140001 bytes, chunk option 4096,
/// so three wide chunks of 65536, 65536 and 8929 symbols (not a multiple of the 32 lanes).
/// (The encoder keeps mode 6 only where it costs at most 0.15 % more than mode 2 or 3, so
/// the stream is long and not too predictable.)
pub(super) fn stream_wide() -> Case {
    let mut rng = Rng::new(18);
    let data: Vec<u8> = (0..140001)
        .map(|_| (rng.gauss(8.0).round() as i64).clamp(-128, 127) as i8 as u8)
        .collect();
    let opts = wide_chunks_4096();
    case(
        "stream-ans-wide",
        "A 140001-symbol stream in mode 6 (wide rANS, 32 lanes) with the exact or compact \
         model, in three chunks of 65536, 65536 and 8929 symbols (encoder option chunk = \
         4096).",
        model(graph(
            "g",
            vec![raw("wide", dtype::UINT8, &[140001], data)],
            vec![],
        )),
    )
    .opts(opts)
    .sections(&["§7.3.5"])
    .facts(&["coding:planes", "mode:6", "chunks:3"])
}

/// Split levels (mode 8, spec §7.3.7): a 32x64 weight quantized at a step of a
/// thousandth of its spread, so its levels spread over thousands of values; the encoder
/// codes them as tokens (k = 4) and raw bits where that is smaller.
pub(super) fn stream_split() -> Case {
    let mut rng = Rng::new(23);
    let w = rng.weights(32 * 64, 0.05);
    let l = quant(Family::Midtread, StepRule::Fixed(0.00005));
    case(
        "stream-split-levels",
        "A quantized 32x64 weight at a step of about a thousandth of its spread: its level \
         stream is split levels (mode 8, spec §7.3.7, k = 4), tokens in a rANS stream of \
         their own and the low bits of larger levels raw.",
        model(weights_graph("g", vec![floats("w", &[32, 64], &w)])),
    )
    .opts(wide_chunks_4096())
    .lossy(l)
    .facts(&["coding:quantized", "mode:8"])
}

/// Split levels with k = 2, m = 0 (spec §7.3.7): "stream-split-levels" edited, its levels
/// coded again with parameters the reference encoder does not choose.
pub(super) fn stream_split_k2() -> Case {
    let c = stream_split();
    let mut e = case(
        "stream-split-levels-k2-m0",
        "The weight of stream-split-levels with its levels coded again as split levels with \
         k = 2 and m = 0 (every raw bit below the highest one), its tokens in narrow rANS \
         chunks of 4096 (spec §7.3.7): parameters the reference encoder does not choose.",
        c.model.clone(),
    )
    .opts(c.opts.clone())
    .lossy_edit(super::super::edits::split_k2_m0)
    .facts(&["coding:quantized", "mode:8"]);
    e.exact = false;
    e
}
