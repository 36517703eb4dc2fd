//! Vectors that pin a reading of the spec where another reading passed every earlier vector
//! (issue 11): count-0 streams of modes 4 and 5, a compact model whose sum `S` exceeds 65536,
//! the dead-zone order of operations with a δ for which the orders differ, the walk order of
//! `initializer` against `sparse_initializer`, a μ-law entry −0.0, the expansion rule's
//! boundary.
use super::*;

pub(super) fn pinned() -> Vec<Case> {
    vec![
        case(
            "empty-class-streams",
            "Empty FLOAT tensors whose streams of count 0 use mode 4 (a quantized level stream: \
             two classes, segment 1, a class stream of 0 symbols, chunk 1) and mode 5 (plane 2 \
             of planes: two classes, chunk 1): every field of the mode is present (spec §7.1).",
            model(graph(
                "g",
                vec![
                    raw("c4", dtype::FLOAT, &[0], vec![]),
                    raw("c5", dtype::FLOAT, &[0, 3], vec![]),
                ],
                vec![],
            )),
        )
        .sections(&["§7.1", "§7.3.2", "§7.3.3", "§7.6.2"])
        .lossy_edit(super::super::edits::empty_class_streams)
        .facts(&["mode:4", "mode:5"]),
        compact_excess(),
        deadzone_order(),
        case(
            "walk-initializer-before-sparse",
            "Initializers and sparse initializers, with every sparse_initializer before the \
             first initializer in the serialized graph: the walk visits initializer, then \
             sparse_initializer (values, indices), whatever the order on the wire (spec \
             §5.2).",
            model(graph(
                "g",
                vec![
                    floats("a", &[4], &[1.0, 2.0, 3.0, 4.0]),
                    floats("b", &[2], &[5.0, 6.0]),
                ],
                vec![],
            ))
            .with_sparse(),
        )
        .sections(&["§5.2"])
        .edit(super::super::edits::sparse_first_on_the_wire),
        quant_case(
            "mulaw-table-negative-zero",
            "mu-law payload whose table entry T[0] is -0.0: not negative, so accepted; level 0 \
             reconstructs -0 (spec §7.6.4).",
            quant(
                Family::MuLaw { mu: 255.0 },
                StepRule::StdFraction(1.0 / 16.0),
            ),
            dtype::FLOAT,
            &["quantizer:mulaw"],
        )
        .sections(&["§7.6.4"])
        .lossy_edit(super::super::edits::mulaw_negative_zero),
        expansion_boundary(0),
        case(
            "graph-unknown-fields",
            "The lifted model carries fields unknown to onnx-ml.proto (ModelProto fields 1000 \
             and 1001, GraphProto field 1002): a decoder skips them for the walk and drops them \
             from the rebuilt model, which equals the encoder's input (spec §5.1 step 6).",
            model(graph(
                "g",
                vec![floats("a", &[4], &[1.0, 2.0, 3.0, 4.0])],
                vec![],
            )),
        )
        .sections(&["§5.1"])
        .edit(super::super::edits::unknown_fields),
    ]
}

trait WithSparse {
    fn with_sparse(self) -> Self;
}

impl WithSparse for ModelProto {
    /// Adds a sparse initializer "s" (values FLOAT [2], indices INT64 [2]) of dims [8].
    fn with_sparse(mut self) -> Self {
        let g = self.graph.as_mut().expect("graph");
        g.sparse_initializer.push(SparseTensorProto {
            values: Some(floats("s", &[2], &[7.0, 8.0])),
            indices: Some(raw("s_idx", dtype::INT64, &[2], {
                let mut b = 1i64.to_le_bytes().to_vec();
                b.extend_from_slice(&5i64.to_le_bytes());
                b
            })),
            dims: vec![8],
        });
        self
    }
}

/// A UINT8 tensor of 5 frequent values and 250 values that occur once: its compact model
/// (mode 3) gives each rare symbol frequency 1, so `S` = Σ max(1, floor(a·65536/A)) exceeds
/// 65536 and step 4 of §7.2.2 takes the excess in passes over the frequent symbols (taking it
/// all from the most frequent, or in one pass, decodes other bytes).
fn compact_excess() -> Case {
    let mut data = Vec::new();
    for (i, n) in [
        (1u8, 15000usize),
        (2, 14000),
        (3, 13000),
        (4, 12500),
        (5, 11000),
    ] {
        data.extend(std::iter::repeat_n(i, n));
    }
    for v in 6..=255u8 {
        data.push(v);
    }
    // Interleave so that every chunk sees every frequent symbol.
    let mut rng = Rng::new(71);
    for i in (1..data.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        data.swap(i, j);
    }
    let n = data.len() as i64;
    case(
        "compact-model-excess",
        "A UINT8 tensor of 65750 bytes: 5 frequent values and 250 values that occur once. \
         Its compact model has S > 65536 (the 250 rare symbols get frequency 1), so step 4 of \
         the normalization removes the excess in passes over the symbols by decreasing count \
         (spec §7.2.2).",
        model(graph("g", vec![raw("u", dtype::UINT8, &[n], data)], vec![])),
    )
    .sections(&["§7.2.2"])
    .facts(&["coding:planes", "mode:3"])
}

/// Dead zone with δ = 0.3 and step 0.1 (both binary32, neither dyadic) on a DOUBLE tensor
/// with levels above 2^29, whose canonical bytes keep the binary64 reconstruction:
/// `(|q| + t) × Δ` with
/// `t = δ − 0.5` (spec §7.6.3) differs from `|q|·Δ + t·Δ` and from the same steps in binary32
/// for some elements; the generator checks both.
fn deadzone_order() -> Case {
    let step = 0.1f32;
    let delta = 0.3f32;
    let mut rng = Rng::new(3);
    // 128 distinct values, repeated, so that the levels code smaller than the doubles.
    // Levels in 2^29 .. 2^30 (the largest the format allows): |q| + t needs 54 bits there.
    let vals: Vec<f64> = (0..128)
        .map(|i| {
            let q = (1u64 << 29) as f64 + 1000.0 + rng.unit() * ((1u64 << 29) as f64 - 2000.0);
            let x = q * step as f64;
            if i % 3 == 0 {
                -x
            } else {
                x
            }
        })
        .collect();
    let w: Vec<f64> = (0..1024).map(|i| vals[i % 128]).collect();
    let (d, s) = (delta as f64, step as f64);
    let mut differ = [false; 2];
    for &x in &w {
        if x.abs() < d * s {
            continue;
        }
        let q = (x.abs() / s - d).ceil();
        if q == 0.0 {
            continue;
        }
        let spec = (q + (d - 0.5)) * s;
        let distributed = q * s + (d - 0.5) * s;
        let single = ((q as f32 + (delta - 0.5)) * step) as f64;
        differ[0] |= spec != distributed;
        differ[1] |= spec != single;
    }
    assert!(
        differ[0] && differ[1],
        "deadzone-order: the orders agree on every element {differ:?}"
    );
    let t = raw("w", dtype::DOUBLE, &[1024], f64_bytes(&w));
    quant_case(
        "quant-deadzone-order",
        "Dead zone on a DOUBLE tensor, delta = 0.3, step 0.1 (binary32), levels between 2^29 \
         and 2^30: the reconstruction \
         computes t = delta - 0.5, then |q| + t, then times the step, each in binary64 and \
         rounded (spec §7.6.3); |q|*step + t*step, or the same steps in binary32, give other \
         values for some elements.",
        quant(Family::DeadZone { delta }, StepRule::Fixed(step)),
        dtype::DOUBLE,
        &["quantizer:deadzone"],
    )
    .with_model(model(weights_graph("g", vec![t])))
    .sections(&["§7.6.3"])
}

/// A UINT8 tensor of zeros sized so that the expansion rule's bound is met exactly
/// (`extra` = 0: decodes) or passed by `extra` bytes (spec §10).
pub fn expansion_boundary(extra: u64) -> Case {
    let m = expansion_model(extra);
    let name = if extra == 0 {
        "expansion-boundary"
    } else {
        "expansion-boundary-over"
    };
    case(
        name,
        "One UINT8 tensor of zeros (one constant stream) whose data_bytes, plus the graph's L, \
         equals read x max_expansion + expansion_slack exactly with the default limits: \
         accepted, the rule is 'greater than' (spec §10).",
        m,
    )
    .sections(&["§10"])
}

/// The model of `expansion_boundary`: finds the element count for which
/// `L + n = read × 1024 + 8 MiB + extra`.
pub fn expansion_model(extra: u64) -> ModelProto {
    let limits = nnc::Limits::default();
    let mut n: u64 = 8 << 20;
    for _ in 0..8 {
        let m = model(graph(
            "g",
            vec![raw("z", dtype::UINT8, &[n as i64], vec![0; n as usize])],
            vec![],
        ));
        let opts = EncodeOptions {
            limits: Some(nnc::Limits {
                max_expansion: u64::MAX,
                ..limits
            }),
            ..lossless()
        };
        let (b, _) = nnc::encode_model(m.clone(), None, &opts, Vec::new()).expect("encode");
        let f = super::super::container::NncFile::parse(&b);
        let g = &f.recs[f.find(nnc::container::kind::GRAPH)[0]];
        let l = u64::from_le_bytes(g.header[1..9].try_into().unwrap());
        let t = f.find(nnc::container::kind::TENSOR)[0];
        let read = 16
            + f.recs[..=t]
                .iter()
                .map(|r| r.bytes().len() as u64)
                .sum::<u64>();
        let bound = read * limits.max_expansion + limits.expansion_slack + extra;
        if l + n == bound {
            return m;
        }
        n = bound - l;
    }
    panic!("expansion boundary: no fixed point");
}
