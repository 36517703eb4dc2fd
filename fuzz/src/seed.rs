//! The seed model and the valid `.nnc` files built from it with nnc's own encoder. The
//! `decode_mutated` target edits these at startup-built files; `examples/write_seeds.rs`
//! writes them (and the corpora seeds) under `fuzz/seeds/`.
use nnc::encoder::EncodeOptions;
use nnc::lossless::LosslessOptions;
use nnc::onnx::dtype;
use nnc::onnx::proto::attribute_proto::AttributeType;
use nnc::onnx::proto::*;
use nnc::quant::minifloat::Layout;
use nnc::quant::policy::{Family, LossyOptions, StepRule};

/// SplitMix64: deterministic data without a dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Roughly normal with standard deviation `scale` (sum of four uniforms).
    pub fn weight(&mut self, scale: f64) -> f64 {
        let s: f64 = (0..4).map(|_| self.unit()).sum();
        (s - 2.0) * scale * 1.732
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

fn tensor(name: &str, dt: i32, dims: &[i64]) -> TensorProto {
    TensorProto {
        name: Some(name.to_owned()),
        data_type: Some(dt),
        dims: dims.to_vec(),
        ..Default::default()
    }
}

fn raw(name: &str, dt: i32, dims: &[i64], data: Vec<u8>) -> TensorProto {
    TensorProto {
        raw_data: Some(data),
        ..tensor(name, dt, dims)
    }
}

fn f32s(rng: &mut Rng, n: usize, scale: f64) -> Vec<f32> {
    (0..n).map(|_| rng.weight(scale) as f32).collect()
}

fn le(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn attr(name: &str, ty: AttributeType) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_owned()),
        r#type: Some(ty as i32),
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        op_type: Some(op.to_owned()),
        name: Some(format!("{op}_{}", outputs.first().unwrap_or(&""))),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn constant(output: &str, a: AttributeProto) -> NodeProto {
    NodeProto {
        attribute: vec![a],
        ..node("Constant", &[], &[output])
    }
}

/// A model of a few KB: quantizable weights feeding MatMuls (float 16×8, float16 8×4, double
/// 8×8, and float 8×8 in an `If` branch), a float tensor that stays lossless (a
/// LayerNormalization scale), bfloat16, int64, bool, uint8, int4 and string tensors in raw
/// and typed fields, a scalar, an empty tensor, `Constant` nodes (tensor, value_floats,
/// value_ints), a sparse initializer and a function. `big` adds a 16×256 float weight whose
/// channels differ in spread, so that lossy files hold a channel-class stream (spec §7.3.2).
pub fn model(big: bool) -> ModelProto {
    let mut rng = Rng(0x6e6e63);
    let mut init = vec![
        raw(
            "fc.weight",
            dtype::FLOAT,
            &[16, 8],
            le(&f32s(&mut rng, 128, 0.05)),
        ),
        TensorProto {
            float_data: f32s(&mut rng, 16, 0.1),
            ..tensor("fc.bias", dtype::FLOAT, &[16])
        },
        raw(
            "norm.scale",
            dtype::FLOAT,
            &[32],
            le(&f32s(&mut rng, 32, 1.0)),
        ),
        TensorProto {
            int32_data: (0..32)
                .map(|_| nnc::quant::float::f32_to_f16(rng.weight(0.5) as f32) as i32)
                .collect(),
            ..tensor("half", dtype::FLOAT16, &[8, 4])
        },
        raw(
            "brain",
            dtype::BFLOAT16,
            &[2, 8],
            (0..16)
                .flat_map(|_| nnc::quant::float::f32_to_bf16(rng.weight(2.0) as f32).to_le_bytes())
                .collect(),
        ),
        TensorProto {
            double_data: vec![1.0, -0.0, 1e-300, f64::MAX],
            ..tensor("dbl", dtype::DOUBLE, &[4])
        },
        TensorProto {
            double_data: (0..64).map(|_| rng.weight(0.1)).collect(),
            ..tensor("dbl.w", dtype::DOUBLE, &[8, 8])
        },
        TensorProto {
            int64_data: vec![1, -1, 0, i64::MAX, i64::MIN, 42],
            ..tensor("ids", dtype::INT64, &[2, 3])
        },
        TensorProto {
            int32_data: vec![1, 0, 0, 1, 1],
            ..tensor("mask", dtype::BOOL, &[5])
        },
        raw(
            "lut",
            dtype::UINT8,
            &[300],
            (0..300).map(|i| ((i % 29) * 7) as u8).collect(),
        ),
        raw("noise", dtype::UINT8, &[24], rng.bytes(24)),
        raw("int4", 22, &[5], vec![0x21, 0x43, 0x05]),
        TensorProto {
            string_data: vec![
                b"cat".to_vec(),
                Vec::new(),
                "Gewicht ✓ 重み".as_bytes().to_vec(),
            ],
            ..tensor("labels", dtype::STRING, &[3])
        },
        TensorProto {
            float_data: vec![3.5],
            ..tensor("scalar", dtype::FLOAT, &[])
        },
        raw("empty", dtype::FLOAT, &[0, 4], Vec::new()),
    ];
    if big {
        let w: Vec<f32> = (0..16 * 256)
            .map(|i| (rng.weight(0.002) * (1 + (i / 256) % 8 * 3) as f64) as f32)
            .collect();
        init.push(raw("proj.weight", dtype::FLOAT, &[16, 256], le(&w)));
    }
    // A tensor kept in the graph as it is (non-canonical: int4 packed in int32_data).
    init.push(TensorProto {
        int32_data: vec![0x21, 0x43],
        ..tensor("int4_typed", 22, &[4])
    });
    let mut vf = attr("value_floats", AttributeType::Floats);
    vf.floats = f32s(&mut rng, 12, 1.0);
    let mut vi = attr("value_ints", AttributeType::Ints);
    vi.ints = vec![0, 1, -1, 7];
    let mut vt = attr("value", AttributeType::Tensor);
    vt.t = Some(Box::new(TensorProto {
        float_data: vec![1.0, 2.0, 3.0, 4.0],
        ..tensor("", dtype::FLOAT, &[2, 2])
    }));
    let then_branch = GraphProto {
        name: Some("then".into()),
        initializer: vec![raw(
            "then.w",
            dtype::FLOAT,
            &[8, 8],
            le(&f32s(&mut rng, 64, 0.2)),
        )],
        node: vec![node("MatMul", &["h", "then.w"], &["then.y"])],
        output: vec![ValueInfoProto {
            name: Some("then.y".into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut else_const = attr("value", AttributeType::Tensor);
    else_const.t = Some(Box::new(TensorProto {
        float_data: vec![0.0; 8],
        ..tensor("", dtype::FLOAT, &[1, 8])
    }));
    let else_branch = GraphProto {
        name: Some("else".into()),
        node: vec![constant("else.y", else_const)],
        ..Default::default()
    };
    let mut then_attr = attr("then_branch", AttributeType::Graph);
    then_attr.g = Some(Box::new(then_branch));
    let mut else_attr = attr("else_branch", AttributeType::Graph);
    else_attr.g = Some(Box::new(else_branch));
    let mut if_node = node("If", &["cond"], &["z"]);
    if_node.attribute = vec![then_attr, else_attr];
    let graph = GraphProto {
        name: Some("seed".into()),
        initializer: init,
        sparse_initializer: vec![SparseTensorProto {
            values: Some(TensorProto {
                float_data: vec![0.5, -2.0],
                ..tensor("sp", dtype::FLOAT, &[2])
            }),
            indices: Some(TensorProto {
                int64_data: vec![1, 6],
                ..tensor("sp_idx", dtype::INT64, &[2])
            }),
            dims: vec![2, 4],
        }],
        node: vec![
            node("MatMul", &["x", "fc.weight"], &["h0"]),
            node("MatMul", &["x", "half"], &["m1"]),
            node("MatMul", &["x", "dbl.w"], &["m2"]),
            node("MatMul", &["x", "proj.weight"], &["m3"]),
            node("Add", &["h0", "fc.bias"], &["h1"]),
            node("LayerNormalization", &["h1", "norm.scale"], &["h"]),
            constant("cf", vf),
            constant("ci", vi),
            constant("ct", vt),
            if_node,
        ],
        input: vec![ValueInfoProto {
            name: Some("x".into()),
            ..Default::default()
        }],
        output: vec![ValueInfoProto {
            name: Some("z".into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut fconst = attr("value", AttributeType::Tensor);
    fconst.t = Some(Box::new(TensorProto {
        float_data: vec![0.25; 3],
        ..tensor("", dtype::FLOAT, &[3])
    }));
    let function = FunctionProto {
        name: Some("Scale".into()),
        domain: Some("com.example".into()),
        input: vec!["a".into()],
        output: vec!["b".into()],
        node: vec![constant("k", fconst), node("Mul", &["a", "k"], &["b"])],
        ..Default::default()
    };
    ModelProto {
        ir_version: Some(10),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(21),
        }],
        producer_name: Some("nnc-fuzz".into()),
        graph: Some(graph),
        functions: vec![function],
        metadata_props: vec![StringStringEntryProto {
            key: Some("ключ".into()),
            value: Some("значение".into()),
        }],
        ..Default::default()
    }
}

fn lossy(family: Family, step: StepRule) -> LossyOptions {
    LossyOptions {
        family,
        step,
        per_channel: matches!(step, StepRule::StdFraction(_)),
        min_elements: 32,
        ..LossyOptions::default()
    }
}

/// The encoder settings of the seed files: lossless (with small tensors in the graph, and
/// with a record for every tensor), and one per quantizer family.
pub fn settings() -> Vec<(&'static str, EncodeOptions)> {
    let small_chunks = LosslessOptions {
        chunk: 16,
        zstd_level: 3,
        wide: true,
    };
    vec![
        ("lossless", EncodeOptions::default()),
        (
            "lossless_records_only",
            EncodeOptions {
                records_only: true,
                ..Default::default()
            },
        ),
        (
            "deadzone_channel",
            EncodeOptions {
                lossy: Some(lossy(
                    Family::DeadZone { delta: 0.5 },
                    StepRule::StdFraction(0.0625),
                )),
                ..Default::default()
            },
        ),
        (
            "mulaw",
            EncodeOptions {
                lossy: Some(LossyOptions {
                    // 2^5 levels over ±max|w|: a table much smaller than the tensor.
                    mulaw_levels_bits: 5,
                    ..lossy(Family::MuLaw { mu: 255.0 }, StepRule::StdFraction(0.0625))
                }),
                ..Default::default()
            },
        ),
        (
            "minifloat_e4m3_thesis",
            EncodeOptions {
                lossy: Some(lossy(
                    Family::Minifloat {
                        layout: Layout {
                            exp_bits: 4,
                            man_bits: 3,
                        },
                    },
                    StepRule::Thesis {
                        min: -1.0,
                        max: 1.0,
                        levels_bits: 8,
                    },
                )),
                ..Default::default()
            },
        ),
        (
            "midrise_fixed_all_small_chunks",
            EncodeOptions {
                lossless: small_chunks,
                lossy: Some(LossyOptions {
                    all_tensors: true,
                    ..lossy(Family::Midrise, StepRule::Fixed(0.01))
                }),
                records_only: true,
                ..Default::default()
            },
        ),
        (
            "midtread_thesis_rdo_fine",
            EncodeOptions {
                lossy: Some(LossyOptions {
                    rdo: 0.1155,
                    fine_bits: Some(8),
                    min_elements: 16,
                    ..lossy(
                        Family::Midtread,
                        StepRule::Thesis {
                            min: -0.5,
                            max: 0.5,
                            levels_bits: 5,
                        },
                    )
                }),
                ..Default::default()
            },
        ),
        (
            // Steps of σ/2048 spread the levels over thousands of values: split levels
            // (stream mode 8).
            "midtread_split_levels",
            EncodeOptions {
                lossy: Some(lossy(Family::Midtread, StepRule::StdFraction(1.0 / 2048.0))),
                ..Default::default()
            },
        ),
    ]
}

/// The seed files: `(name, .nnc bytes)` for each of [`settings`].
pub fn files() -> Vec<(&'static str, Vec<u8>)> {
    settings()
        .into_iter()
        .map(|(name, opts)| {
            let (bytes, _) =
                nnc::encode_model(model(opts.lossy.is_some()), None, &opts, Vec::new())
                    .unwrap_or_else(|e| panic!("encoding seed {name}: {e}"));
            (name, bytes)
        })
        .collect()
}
