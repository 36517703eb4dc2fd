//! Vectors of quantized tensors (spec §7.6) and the quantized examples of §13.2.
use super::*;

pub(super) fn quant_case(
    name: &str,
    description: &str,
    l: LossyOptions,
    dt: i32,
    facts: &[&str],
) -> Case {
    quant_case_dims(name, description, l, dt, facts, &[16, 32])
}

/// [`quant_case`] with a tensor of shape `dims` (rank 2).
pub(super) fn quant_case_dims(
    name: &str,
    description: &str,
    l: LossyOptions,
    dt: i32,
    facts: &[&str],
    dims: &[i64],
) -> Case {
    let seed = name
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
    let mut rng = Rng::new(seed);
    let w = rng.weights(dims.iter().product::<i64>() as usize, 0.05);
    let bytes = match dt {
        dtype::FLOAT16 => u16_bytes(&w.iter().map(|&x| f32_to_f16(x)).collect::<Vec<_>>()),
        dtype::BFLOAT16 => u16_bytes(&w.iter().map(|&x| f32_to_bf16(x)).collect::<Vec<_>>()),
        dtype::DOUBLE => f64_bytes(&w.iter().map(|&x| x as f64).collect::<Vec<_>>()),
        _ => f32_bytes(&w),
    };
    let t = raw("w", dt, dims, bytes);
    let mut f = vec!["coding:quantized"];
    f.extend_from_slice(facts);
    case(name, description, model(weights_graph("g", vec![t])))
        .lossy(l)
        .facts(&f)
}

pub(super) fn quantized() -> Vec<Case> {
    let mf = |e, m| Family::Minifloat {
        layout: Layout {
            exp_bits: e,
            man_bits: m,
        },
    };
    let std = StepRule::StdFraction(1.0 / 8.0);
    let mut v = vec![
        quant_case(
            "quant-midtread",
            "Midtread quantizer (spec §7.6.3), one step for the tensor.",
            quant(Family::Midtread, std),
            dtype::FLOAT,
            &["quantizer:midtread"],
        ),
        quant_case(
            "quant-midrise",
            "Midrise quantizer (spec §7.6.3).",
            quant(Family::Midrise, std),
            dtype::FLOAT,
            &["quantizer:midrise"],
        ),
    ];
    for (tag, d) in [
        ("0", 0.0f32),
        ("0.25", 0.25),
        ("0.5", 0.5),
        ("0.75", 0.75),
        ("1", 1.0),
    ] {
        v.push(quant_case(
            &format!("quant-deadzone-{tag}"),
            &format!("Dead-zone quantizer with delta = {d} (spec §7.6.3)."),
            quant(Family::DeadZone { delta: d }, std),
            dtype::FLOAT,
            &["quantizer:deadzone"],
        ));
    }
    v.push(quant_case(
        "quant-mulaw",
        "mu-law quantizer, mu = 255, 64 levels over [-max|w|, max|w|]: the payload carries the \
         table of reconstructed magnitudes (spec §7.6.4).",
        quant(Family::MuLaw { mu: 255.0 }, std),
        dtype::FLOAT,
        &["quantizer:mulaw"],
    ));
    for (e, m, what) in [
        (4u8, 3u8, "E4M3"),
        (5, 2, "E5M2"),
        (
            5,
            10,
            "E5M10, the IEEE half layout (all exponent codes finite)",
        ),
        (2, 1, "E2M1"),
        (0, 4, "E0M4 (no exponent: 16 uniform magnitudes)"),
        (3, 0, "E3M0 (powers of two)"),
        (8, 7, "E8M7, the bfloat16 layout"),
    ] {
        v.push(quant_case(
            &format!("quant-minifloat-e{e}m{m}"),
            &format!("Minifloat quantizer {what}, scaled to the tensor's range (spec §7.6.5)."),
            quant(mf(e, m), std),
            dtype::FLOAT,
            &["quantizer:minifloat"],
        ));
    }
    let mut pc = quant(
        Family::DeadZone { delta: 0.3 },
        StepRule::StdFraction(1.0 / 16.0),
    );
    pc.per_channel = true;
    v.push(quant_case(
        "quant-per-channel",
        "Dead-zone quantizer with one step per output channel (16 steps, spec §7.6.2).",
        pc,
        dtype::FLOAT,
        &["per-channel"],
    ));
    v.push(quant_case_dims(
        "quant-per-channel-large",
        "Dead-zone quantizer (delta = 0.5) with one step per output channel on a 64 x 128 \
         tensor (spec §7.6.2): the base of valid/update-low-rank.",
        pc,
        dtype::FLOAT,
        &["per-channel"],
        &[64, 128],
    ));
    let mut pc_mt = quant(Family::Midtread, StepRule::StdFraction(1.0 / 16.0));
    pc_mt.per_channel = true;
    v.push(quant_case(
        "quant-per-channel-midtread-f16",
        "Midtread with per-channel steps on a float16 tensor (spec §7.6.2, §7.6.6).",
        pc_mt,
        dtype::FLOAT16,
        &["per-channel", "dtype:float16"],
    ));
    let thesis = |bits| StepRule::Thesis {
        min: -0.08,
        max: 0.08,
        levels_bits: bits,
    };
    v.push(
        quant_case(
            "quant-thesis",
            "Thesis mode: one range [-0.08, 0.08] for the model, 2^4 levels, step 0.01, values \
         outside the range clamped, levels limited to ±8.",
            quant(Family::Midtread, thesis(4)),
            dtype::FLOAT,
            &["quantizer:midtread"],
        )
        .sections(&["§7.6.7"]),
    );
    v.push(quant_case(
        "quant-thesis-mulaw",
        "Thesis mode with the mu-law quantizer (mu = 100, 2^5 levels over [-0.08, 0.08]).",
        quant(Family::MuLaw { mu: 100.0 }, thesis(5)),
        dtype::FLOAT,
        &["quantizer:mulaw"],
    ));
    v.push(quant_case(
        "quant-thesis-minifloat",
        "Thesis mode with the E3M2 minifloat (no scaling: scale exponent 0).",
        quant(mf(3, 2), thesis(4)),
        dtype::FLOAT,
        &["quantizer:minifloat"],
    ));
    v.push(quant_case(
        "quant-float16",
        "A float16 tensor quantized (dead zone): reconstructions rounded to binary16 (spec \
         §7.6.6).",
        quant(Family::DeadZone { delta: 0.5 }, std),
        dtype::FLOAT16,
        &["dtype:float16"],
    ));
    v.push(quant_case(
        "quant-bfloat16",
        "A bfloat16 tensor quantized (midrise): reconstructions rounded to bfloat16 (spec \
         §7.6.6).",
        quant(Family::Midrise, std),
        dtype::BFLOAT16,
        &["dtype:bfloat16"],
    ));
    v.push(quant_case(
        "quant-bfloat16-minifloat",
        "A bfloat16 tensor with the E4M3 minifloat quantizer.",
        quant(mf(4, 3), std),
        dtype::BFLOAT16,
        &["dtype:bfloat16", "quantizer:minifloat"],
    ));
    v.push(quant_case(
        "quant-double",
        "A float64 tensor quantized (midtread): reconstructions in binary64.",
        quant(Family::Midtread, std),
        dtype::DOUBLE,
        &["dtype:double"],
    ));
    v.push(quant_case(
        "quant-width-2",
        "Midtread with a tiny step: levels up to a few thousand, symbols 2 bytes wide.",
        quant(Family::Midtread, StepRule::Fixed(1.0 / 65536.0)),
        dtype::FLOAT,
        &["width:2"],
    ));
    v.push(quant_width_4());
    v.push(quant_storages());
    v.extend(spec_quantized_examples());
    v.push(quant_mixed());
    v
}

/// Quantized tensors in every storage that can hold them (spec §7.6): typed (float_data and
/// double_data), external, and a Constant's value_floats.
pub(super) fn quant_storages() -> Case {
    let mut rng = Rng::new(302);
    let mut typed_f = typed("typed.float", dtype::FLOAT, &[8, 16]);
    typed_f.float_data = rng.weights(128, 0.1);
    let mut typed_d = typed("typed.double", dtype::DOUBLE, &[4, 16]);
    typed_d.double_data = (0..64).map(|_| rng.gauss(0.1)).collect();
    let ext_data = f32_bytes(&rng.weights(96, 0.1));
    let ext = external_tensor(
        "external.float",
        dtype::FLOAT,
        &[6, 16],
        &[("location", "q.bin")],
    );
    let list = rng.weights(100, 0.1);
    let g = graph(
        "g",
        vec![typed_f, typed_d, ext],
        vec![node(
            "Constant",
            &[],
            &["list"],
            vec![attr_floats("value_floats", &list)],
        )],
    );
    let mut c = case(
        "quant-storages",
        "Quantized tensors (midtread, sigma/8 steps) in storages typed (float_data, \
         double_data), external and value_floats: decoded, each gets its reconstructions in \
         its own place.",
        model(g),
    )
    .lossy(quant(Family::Midtread, StepRule::StdFraction(1.0 / 8.0)))
    .sections(&["§6.3", "§7.6"])
    .facts(&[
        "coding:quantized",
        "storage:typed",
        "storage:external",
        "storage:value_floats",
    ]);
    c.files = vec![("q.bin".into(), ext_data)];
    c
}

/// The quantized records of spec §13.2, each in a file of its own: a MatMul weight of dims
/// [2, 3] encoded with the options the spec names (13.2.3 made by hand, as in the spec).
pub(super) fn spec_quantized_examples() -> Vec<Case> {
    let w = |dt: i32, bytes: Vec<u8>| model(weights_graph("g", vec![raw("w", dt, &[2, 3], bytes)]));
    let lossy = |family, step| LossyOptions {
        family,
        step,
        min_elements: 1,
        ..LossyOptions::default()
    };
    vec![
        case(
            "spec-example-midtread",
            "Spec §13.2.1: midtread with step 0.25 on 0, 0.3, -0.2, 0.5, -0.7, 1.3 (stored \
             symbols).",
            w(dtype::FLOAT, f32_bytes(&[0.0, 0.3, -0.2, 0.5, -0.7, 1.3])),
        )
        .lossy(lossy(Family::Midtread, StepRule::Fixed(0.25)))
        .sections(&["§13", "§13.2", "§13.2.1"])
        .facts(&["coding:quantized", "quantizer:midtread", "mode:0"]),
        case(
            "spec-example-minifloat-e4m3",
            "Spec §13.2.2: minifloat E4M3 scaled by 2^-3 on 0, -0, 0.00029296875, 1, -2.75, \
             31 (a subnormal code, a tie to the even code).",
            w(
                dtype::FLOAT,
                f32_bytes(&[0.0, -0.0, 0.000_292_968_75, 1.0, -2.75, 31.0]),
            ),
        )
        .lossy(lossy(
            Family::Minifloat {
                layout: Layout {
                    exp_bits: 4,
                    man_bits: 3,
                },
            },
            StepRule::StdFraction(1.0 / 16.0),
        ))
        .sections(&["§13", "§13.2", "§13.2.2"])
        .facts(&["coding:quantized", "quantizer:minifloat"]),
        case(
            "spec-example-deadzone-per-channel-f16",
            "Spec §13.2.3 (made by hand): a FLOAT16 tensor, dead zone delta 0.25 with steps 0.5 \
             and 0.1 per channel; shows the two roundings of spec §7.6.6.",
            w(dtype::FLOAT16, vec![0; 12]),
        )
        .lossy_edit(super::super::edits::spec_deadzone_f16)
        .sections(&["§13", "§13.2", "§13.2.3", "§7.6.6"])
        .facts(&["coding:quantized", "quantizer:deadzone", "per-channel"]),
        case(
            "spec-example-mulaw",
            "Spec §13.2.4: mu-law (mu 255, thesis mode, range -1..1, 2^2 levels) on 0, 0.01, \
             -0.05, 0.3, -1, 0.8, with its table of 3 magnitudes.",
            w(dtype::FLOAT, f32_bytes(&[0.0, 0.01, -0.05, 0.3, -1.0, 0.8])),
        )
        .lossy(lossy(
            Family::MuLaw { mu: 255.0 },
            StepRule::Thesis {
                min: -1.0,
                max: 1.0,
                levels_bits: 2,
            },
        ))
        .sections(&["§13", "§13.2", "§13.2.4"])
        .facts(&["coding:quantized", "quantizer:mulaw"]),
    ]
}

/// Levels beyond 2^15 in magnitude (zigzag symbols of 4 bytes) but few of them, so that the
/// coded levels are smaller than the raw weights.
pub(super) fn quant_width_4() -> Case {
    let mut rng = Rng::new(301);
    let w: Vec<f32> = (0..512)
        .map(|_| [1.0f32, -1.0, 0.5, -0.75, 0.0, 1.5][rng.below(6) as usize])
        .collect();
    case(
        "quant-width-4",
        "Midtread with step 2^-20 on weights in {0, ±0.5, ±0.75, ±1, 1.5}: levels up to \
         1.5·2^20, symbols 4 bytes wide, entropy coded.",
        model(weights_graph("g", vec![floats("w", &[16, 32], &w)])),
    )
    .lossy(quant(Family::Midtread, StepRule::Fixed(1.0 / 1_048_576.0)))
    .facts(&["coding:quantized", "width:4"])
}

/// The default weight policy on a small network: weights quantized, the rest exact.
pub(super) fn quant_mixed() -> Case {
    let mut rng = Rng::new(300);
    let w1 = floats("fc1.weight", &[32, 48], &rng.weights(32 * 48, 0.05));
    let b1 = floats("fc1.bias", &[48], &rng.weights(48, 0.01));
    let w2 = raw(
        "fc2.weight",
        dtype::FLOAT16,
        &[48, 24],
        u16_bytes(
            &rng.weights(48 * 24, 0.05)
                .iter()
                .map(|&x| f32_to_f16(x))
                .collect::<Vec<_>>(),
        ),
    );
    let shape = raw(
        "shape",
        dtype::INT64,
        &[2],
        [1i64, -1].iter().flat_map(|x| x.to_le_bytes()).collect(),
    );
    let mut g = graph(
        "mlp",
        vec![w1, b1, w2, shape],
        vec![
            node("MatMul", &["x", "fc1.weight"], &["h"], vec![]),
            node("Add", &["h", "fc1.bias"], &["hb"], vec![]),
            node("Relu", &["hb"], &["r"], vec![]),
            node("Reshape", &["r", "shape"], &["rs"], vec![]),
            node("Cast", &["rs"], &["rh"], vec![attr_int("to", 10)]),
            node("MatMul", &["rh", "fc2.weight"], &["y"], vec![]),
        ],
    );
    g.input.push(value_info("x", 1, &[1, 32]));
    g.output.push(value_info("y", 10, &[1, 24]));
    let l = LossyOptions {
        min_elements: 256,
        ..LossyOptions::default()
    };
    case(
        "quant-default-policy",
        "The reference encoder's default lossy policy (dead zone delta 0.5, per-channel steps \
         sigma/16) on a two-layer network: the two MatMul weights (float32, float16) are \
         quantized, the bias and the INT64 shape stay exact.",
        model(g),
    )
    .lossy(l)
    .sections(&["§7.6.7"])
    .facts(&[
        "coding:quantized",
        "coding:planes",
        "per-channel",
        "dtype:float16",
    ])
}
