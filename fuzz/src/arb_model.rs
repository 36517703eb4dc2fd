//! Arbitrary ONNX models and encoder settings for the `roundtrip` target, drawn from the
//! fuzzer's bytes with `arbitrary::Unstructured`.
//!
//! Models: a main graph whose initializers have every element type (float, float16,
//! bfloat16, double, complex, every integer width, int4/uint4/2-bit/float8/float6 packed in
//! `raw_data`, bool, string), odd shapes (0-d, 0-sized dims), names that are missing, empty,
//! duplicated or non-ASCII, data in `raw_data` or the typed fields, and some tensors the
//! encoder must leave in the graph (non-canonical or malformed data). Each initializer feeds
//! a weight input (MatMul, Gemm, Conv, Gather; directly or through Transpose), an arithmetic
//! input, a shape input, a graph output, or nothing. `Constant` nodes (value, value_floats,
//! value_ints; also one of a custom domain), a node with a `tensors` attribute, `If`
//! subgraphs nested up to depth 3, a sparse initializer, a function and a training-info graph.
//! No external data (it needs files beside the model).
//!
//! Settings: lossless, or lossy with each quantizer family and its parameters in the ranges
//! `nnc encode` accepts (δ ∈ [0, 1], μ > 0, minifloat E ≤ 8, M ≤ 23, 1 ≤ E + M ≤ 23; a fixed
//! step, a σ fraction per tensor or per channel, or thesis mode with 2 ≤ K ≤ 24), RDO
//! factors, `fine_bits`, `all_tensors`, `min_elements`, rANS chunk sizes and zstd levels.
use arbitrary::{Result, Unstructured};

use nnc::encoder::EncodeOptions;
use nnc::lossless::LosslessOptions;
use nnc::onnx::dtype;
use nnc::onnx::proto::attribute_proto::AttributeType;
use nnc::onnx::proto::*;
use nnc::quant::float::{f32_to_bf16, f32_to_f16};
use nnc::quant::minifloat::Layout;
use nnc::quant::policy::{Family, LossyOptions, StepRule};

use crate::seed::Rng;

/// One round-trip case.
#[derive(Debug, Clone)]
pub struct Case {
    pub model: ModelProto,
    pub opts: EncodeOptions,
}

/// Elements of one tensor at most, and of the whole model (keeps an execution in the
/// milliseconds, including zstd level 19).
const MAX_ELEMENTS: u64 = 2048;
const MODEL_ELEMENTS: u64 = 12_000;

pub fn case(u: &mut Unstructured<'_>) -> Result<Case> {
    let opts = options(u)?;
    let mut g = Gen {
        u,
        counter: 0,
        budget: MODEL_ELEMENTS,
    };
    let model = g.model()?;
    Ok(Case { model, opts })
}

/// True with probability `num/den`; false once the input is used up (`Unstructured::ratio`
/// returns true then, which would make every optional part appear).
fn maybe(u: &mut Unstructured<'_>, num: u8, den: u8) -> Result<bool> {
    Ok(!u.is_empty() && u.ratio(num, den)?)
}

fn pos_f32(u: &mut Unstructured<'_>, common: &[f32]) -> Result<f32> {
    if maybe(u, 1, 4)? {
        let v = f32::from_bits(u.arbitrary()?);
        if v > 0.0 && v.is_finite() {
            return Ok(v);
        }
    }
    Ok(*u.choose(common)?)
}

/// Encoder settings within the ranges of the command line (see `LossyArgs::options`).
pub fn options(u: &mut Unstructured<'_>) -> Result<EncodeOptions> {
    let lossless = LosslessOptions {
        chunk: if maybe(u, 1, 3)? {
            u.int_in_range(1..=1 << 16)?
        } else {
            *u.choose(&[1, 2, 7, 64, 1000, 4096, nnc::entropy::DEFAULT_CHUNK])?
        },
        zstd_level: *u.choose(&[1, 3, 19])?,
        wide: u.arbitrary()?,
    };
    let records_only = maybe(u, 1, 3)?;
    if maybe(u, 1, 3)? {
        return Ok(EncodeOptions {
            lossless,
            lossy: None,
            max_depth: None,
            limits: None,
            records_only,
            tensor_rules: None,
            base: None,
            base_no_grid: false,
            base_no_grid_for: None,
            replaced: None,
            compensated: None,
        });
    }
    let family = match u.int_in_range(0..=4)? {
        0 => Family::Midtread,
        1 => Family::Midrise,
        2 => Family::DeadZone {
            delta: if maybe(u, 1, 2)? {
                *u.choose(&[0.0, 0.5, 1.0, 0.25])?
            } else {
                u.int_in_range(0..=1_000_000u32)? as f32 / 1e6
            },
        },
        3 => Family::MuLaw {
            mu: pos_f32(u, &[255.0, 1.0, 0.001, 1e6, 100.0])?,
        },
        _ => {
            // The edges of the valid range (E + M = 23, E = 0, M = 0) half of the time.
            let (e, m) = if maybe(u, 1, 2)? {
                *u.choose(&[
                    (8, 15),
                    (0, 23),
                    (5, 10),
                    (8, 7),
                    (4, 3),
                    (1, 0),
                    (8, 0),
                    (0, 1),
                ])?
            } else {
                let e = u.int_in_range(0..=8u8)?;
                (e, u.int_in_range(0..=23 - e)?)
            };
            Family::Minifloat {
                layout: Layout {
                    exp_bits: e,
                    man_bits: if e + m == 0 { 1 } else { m },
                },
            }
        }
    };
    let step = match u.int_in_range(0..=2)? {
        0 => StepRule::Fixed(pos_f32(u, &[0.01, 0.001, 0.1, 1.0, 1e-6, 1e6])?),
        1 => StepRule::StdFraction(pos_f32(u, &[1.0 / 16.0, 1.0 / 32.0, 1.0 / 8.0, 1.0, 1e-4])?),
        _ => {
            let (min, max) = if maybe(u, 1, 4)? {
                let a = f32::from_bits(u.arbitrary()?);
                let b = f32::from_bits(u.arbitrary()?);
                if a.is_finite() && b.is_finite() && a != b {
                    (a.min(b), a.max(b))
                } else {
                    (-1.0, 1.0)
                }
            } else {
                *u.choose(&[
                    (-1.0, 1.0),
                    (-0.5, 0.5),
                    (0.0, 1.0),
                    (-8.0, 8.0),
                    (-1e-3, 1e-3),
                ])?
            };
            StepRule::Thesis {
                min,
                max,
                levels_bits: u.int_in_range(2..=24)?,
            }
        }
    };
    let levels_bits = match step {
        StepRule::Thesis { levels_bits, .. } => levels_bits,
        _ => 8,
    };
    Ok(EncodeOptions {
        lossless,
        lossy: Some(LossyOptions {
            family,
            step,
            per_channel: matches!(step, StepRule::StdFraction(_)) && u.arbitrary()?,
            min_elements: if maybe(u, 1, 5)? {
                u.arbitrary()?
            } else {
                *u.choose(&[0, 1, 16, 64, 1024])?
            },
            all_tensors: u.arbitrary()?,
            mulaw_levels_bits: levels_bits,
            rdo: if maybe(u, 1, 3)? {
                *u.choose(&[0.1155, 1.0, 0.01, 100.0])?
            } else {
                0.0
            },
            fine_bits: if maybe(u, 1, 4)? {
                Some(u.int_in_range(0..=22)?)
            } else {
                None
            },
            kernel_sums: u.arbitrary()?,
        }),
        max_depth: None,
        limits: None,
        records_only,
        base: None,
        base_no_grid: false,
        base_no_grid_for: None,
        replaced: None,
        compensated: None,
        // Per-tensor steps as the calibrating encoder sets them (any count: tensors past
        // the end follow the policy).
        tensor_rules: if maybe(u, 1, 3)? {
            let n = u.int_in_range(0..=32)?;
            let mut rules = Vec::with_capacity(n);
            for _ in 0..n {
                rules.push(match u.int_in_range(0..=2)? {
                    0 => nnc::encoder::TensorRule::Policy,
                    1 => nnc::encoder::TensorRule::Exact,
                    _ => nnc::encoder::TensorRule::Fraction(*u.choose(&[
                        1.0 / 1024.0,
                        1.0 / 16.0,
                        0.5,
                        4.0,
                    ])?),
                });
            }
            Some(std::sync::Arc::new(rules))
        } else {
            None
        },
    })
}

/// How the values of a tensor are drawn.
#[derive(Debug, Clone, Copy)]
enum Dist {
    /// Any bit pattern (NaN, Inf, subnormals included).
    Bits,
    /// Weight-like: roughly normal with this scale.
    Normal(f64),
    Constant(f64),
    /// Mostly zero, a few large values.
    Sparse(f64),
    /// Special values: ±0, ±Inf, NaN, subnormals, extremes, mixed with normal ones.
    Special,
}

const SPECIAL: [f64; 12] = [
    0.0,
    -0.0,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    1e-45,
    -1e-310,
    f64::MAX,
    65504.0,
    -65520.0,
    3.4e38,
    1.0,
];

struct Gen<'a, 'b> {
    u: &'b mut Unstructured<'a>,
    counter: usize,
    /// Elements left for the rest of the model.
    budget: u64,
}

fn product(dims: &[i64]) -> u64 {
    dims.iter().map(|&d| d.max(0) as u64).product()
}

impl Gen<'_, '_> {
    fn name(&mut self) -> Result<Option<String>> {
        self.counter += 1;
        let n = self.counter;
        Ok(match self.u.int_in_range(0..=11)? {
            0 => None,
            1 => Some(String::new()),
            2 => Some(format!("重み.{n}")),
            3 => Some(format!("Gewicht/ü/{n}")),
            4 => Some(format!("😀 w{n}")),
            5 => Some("dup".to_owned()),
            6 => {
                let s: String = self.u.arbitrary()?;
                Some(s.chars().take(24).collect())
            }
            _ => Some(format!("t{n}")),
        })
    }

    fn dtype(&mut self) -> Result<i32> {
        Ok(match self.u.int_in_range(0..=9)? {
            0..=2 => dtype::FLOAT,
            3 => *self
                .u
                .choose(&[dtype::FLOAT16, dtype::BFLOAT16, dtype::DOUBLE])?,
            4 => dtype::STRING,
            _ => self.u.int_in_range(1..=28)?,
        })
    }

    fn dims(&mut self) -> Result<Vec<i64>> {
        let rank = self.u.int_in_range(0..=4)?;
        let mut d = Vec::with_capacity(rank);
        for _ in 0..rank {
            d.push(
                *self
                    .u
                    .choose(&[0i64, 1, 1, 2, 3, 4, 5, 7, 8, 16, 32, 64, 128])?,
            );
        }
        let cap = MAX_ELEMENTS.min(self.budget);
        while product(&d) > cap {
            match d.iter_mut().max() {
                Some(m) => *m /= 2,
                // A scalar over an exhausted budget: an empty 1-D tensor instead.
                None => d.push(0),
            }
        }
        self.budget -= product(&d);
        Ok(d)
    }

    fn dist(&mut self) -> Result<Dist> {
        let scale = *self.u.choose(&[0.05, 1.0, 1e-3, 1e4, 1e-30, 1e30, 0.5])?;
        Ok(match self.u.int_in_range(0..=7)? {
            0 => Dist::Bits,
            1 => Dist::Constant(*self.u.choose(&SPECIAL)?),
            2 => Dist::Sparse(scale),
            3 => Dist::Special,
            _ => Dist::Normal(scale),
        })
    }

    /// `n` values of `dist`.
    fn values(&mut self, dist: Dist, n: usize) -> Result<Vec<f64>> {
        let mut rng = Rng(self.u.arbitrary()?);
        Ok((0..n)
            .map(|_| match dist {
                Dist::Bits => f64::from_bits(rng.next_u64()),
                Dist::Normal(s) => rng.weight(s),
                Dist::Constant(v) => v,
                Dist::Sparse(s) => {
                    if rng.next_u64().is_multiple_of(16) {
                        rng.weight(s) * 8.0
                    } else {
                        0.0
                    }
                }
                Dist::Special => {
                    if rng.next_u64().is_multiple_of(4) {
                        SPECIAL[(rng.next_u64() % 12) as usize]
                    } else {
                        rng.weight(1.0)
                    }
                }
            })
            .collect())
    }

    /// Canonical little-endian bytes of `elements` elements of `dt` (spec §6.2).
    fn data(&mut self, dt: i32, elements: u64) -> Result<Vec<u8>> {
        let len = dtype::byte_len(dt, elements).unwrap_or(0) as usize;
        let dist = self.dist()?;
        if matches!(dist, Dist::Bits) || !matches!(dtype::bits(dt), Some(8 | 16 | 32 | 64 | 128)) {
            let mut rng = Rng(self.u.arbitrary()?);
            let mut b = rng.bytes(len);
            if dt == dtype::BOOL {
                b.iter_mut().for_each(|x| *x &= 1);
            }
            return Ok(b);
        }
        let scalars = match dt {
            dtype::COMPLEX64 | dtype::COMPLEX128 => 2 * elements as usize,
            _ => elements as usize,
        };
        let v = self.values(dist, scalars)?;
        let mut out = Vec::with_capacity(len);
        for x in v {
            match dt {
                dtype::FLOAT | dtype::COMPLEX64 => out.extend((x as f32).to_le_bytes()),
                dtype::DOUBLE | dtype::COMPLEX128 => out.extend(x.to_le_bytes()),
                dtype::FLOAT16 => out.extend(f32_to_f16(x as f32).to_le_bytes()),
                dtype::BFLOAT16 => out.extend(f32_to_bf16(x as f32).to_le_bytes()),
                dtype::BOOL => out.push((x != 0.0) as u8),
                _ => {
                    // Integers: the value rounded, saturating; `as` keeps every width in range.
                    let i = x.round() as i64;
                    let w = dtype::bits(dt).unwrap_or(8) as usize / 8;
                    out.extend_from_slice(&i.to_le_bytes()[..w]);
                }
            }
        }
        Ok(out)
    }

    /// The typed field holding canonical bytes `b` of `dt`, independently of nnc's own
    /// conversion; `false` for types without one (sub-byte types, float6).
    fn set_typed(t: &mut TensorProto, dt: i32, b: &[u8]) -> bool {
        let w = |n: usize| b.chunks_exact(n);
        match dt {
            dtype::FLOAT | dtype::COMPLEX64 => {
                t.float_data = w(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            }
            dtype::DOUBLE | dtype::COMPLEX128 => {
                t.double_data = w(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                    .collect()
            }
            dtype::INT64 => {
                t.int64_data = w(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                    .collect()
            }
            dtype::UINT64 => {
                t.uint64_data = w(8)
                    .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                    .collect()
            }
            dtype::UINT32 => {
                t.uint64_data = w(4)
                    .map(|c| u32::from_le_bytes(c.try_into().unwrap()) as u64)
                    .collect()
            }
            dtype::INT32 => {
                t.int32_data = w(4)
                    .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
                    .collect()
            }
            dtype::INT16 => {
                t.int32_data = w(2)
                    .map(|c| i16::from_le_bytes([c[0], c[1]]) as i32)
                    .collect()
            }
            dtype::INT8 => t.int32_data = b.iter().map(|&x| x as i8 as i32).collect(),
            dtype::UINT16 | dtype::FLOAT16 | dtype::BFLOAT16 => {
                t.int32_data = w(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]) as i32)
                    .collect()
            }
            dtype::UINT8 | dtype::BOOL | 17..=20 | 24 => {
                t.int32_data = b.iter().map(|&x| x as i32).collect()
            }
            _ => return false,
        }
        true
    }

    fn extras(&mut self, t: &mut TensorProto) -> Result<()> {
        if maybe(self.u, 1, 8)? {
            t.doc_string = Some("doc ✓".into());
        }
        if maybe(self.u, 1, 10)? {
            t.metadata_props = vec![StringStringEntryProto {
                key: Some("k".into()),
                value: self.name()?,
            }];
        }
        if maybe(self.u, 1, 16)? {
            t.segment = Some(tensor_proto::Segment {
                begin: Some(0),
                end: Some(1),
            });
        }
        Ok(())
    }

    /// An arbitrary tensor (see the module docs).
    fn tensor(&mut self) -> Result<TensorProto> {
        let dt = self.dtype()?;
        let dims = self.dims()?;
        let elements = product(&dims);
        let mut t = TensorProto {
            name: self.name()?,
            data_type: Some(dt),
            dims,
            ..Default::default()
        };
        self.extras(&mut t)?;
        if dt == dtype::STRING {
            let n = elements.min(64) as usize;
            t.dims = if n as u64 == elements {
                t.dims
            } else {
                vec![n as i64]
            };
            for _ in 0..n {
                let len = self.u.int_in_range(0..=12)?;
                let mut s = self.u.bytes(len)?.to_vec();
                if maybe(self.u, 1, 4)? {
                    s = format!("строка {len}").into_bytes();
                }
                t.string_data.push(s);
            }
            if maybe(self.u, 1, 10)? {
                // Count mismatch: stays in the graph.
                t.string_data.push(b"extra".to_vec());
            }
            return Ok(t);
        }
        let data = self.data(dt, elements)?;
        match self.u.int_in_range(0..=11)? {
            0..=4 => t.raw_data = Some(data),
            5..=9 => {
                if !Self::set_typed(&mut t, dt, &data) {
                    t.raw_data = Some(data);
                }
            }
            // The rest stay in the graph (or test the encoder's choice between the fields).
            10 => {
                t.raw_data = Some(data.clone());
                match self.u.int_in_range(0..=4)? {
                    0 => {
                        t.raw_data.as_mut().unwrap().push(7);
                    }
                    1 => {
                        Self::set_typed(&mut t, dt, &data);
                    }
                    2 => t.dims.push(-1),
                    3 => t.data_type = Some(*self.u.choose(&[0, 99, -3])?),
                    _ => t.data_type = None,
                }
            }
            _ => match self.u.int_in_range(0..=3)? {
                0 => t.float_data = vec![1.0; elements.min(8) as usize],
                1 => t.int32_data = vec![300, -300],
                2 => t.int64_data = vec![0; elements as usize + 1],
                _ => {} // no data at all
            },
        }
        Ok(t)
    }

    /// Nodes that consume `name` in one of several roles.
    fn consume(
        &mut self,
        name: &str,
        nodes: &mut Vec<NodeProto>,
        outputs: &mut Vec<String>,
    ) -> Result<()> {
        if name.is_empty() {
            return Ok(());
        }
        let n = |op: &str, inputs: Vec<&str>, out: String| NodeProto {
            op_type: Some(op.to_owned()),
            input: inputs.into_iter().map(str::to_owned).collect(),
            output: vec![out],
            ..Default::default()
        };
        self.counter += 1;
        let out = format!("v{}", self.counter);
        match self.u.int_in_range(0..=9)? {
            0..=2 => nodes.push(n("MatMul", vec!["x", name], out)),
            3 => nodes.push(n("Gemm", vec!["x", name, ""], out)),
            4 => nodes.push(n("Conv", vec!["x", name], out)),
            5 => nodes.push(n("Gather", vec![name, "idx"], out)),
            6 => {
                let mid = format!("{out}.t");
                nodes.push(n("Transpose", vec![name], mid.clone()));
                nodes.push(n("MatMul", vec!["x", &mid], out));
            }
            7 => nodes.push(n("Add", vec!["x", name], out)),
            8 => nodes.push(n("Reshape", vec!["x", name], out)),
            _ => outputs.push(name.to_owned()),
        }
        Ok(())
    }

    fn attr(name: &str, ty: AttributeType) -> AttributeProto {
        AttributeProto {
            name: Some(name.to_owned()),
            r#type: Some(ty as i32),
            ..Default::default()
        }
    }

    fn constant(&mut self, nodes: &mut Vec<NodeProto>, outputs: &mut Vec<String>) -> Result<()> {
        let out = self.name()?.unwrap_or_default();
        let a = match self.u.int_in_range(0..=4)? {
            0 | 1 => AttributeProto {
                t: Some(Box::new(self.tensor()?)),
                ..Self::attr("value", AttributeType::Tensor)
            },
            2 => {
                let n = self.u.int_in_range(0..=MAX_ELEMENTS.min(self.budget))?;
                self.budget -= n;
                let dist = self.dist()?;
                AttributeProto {
                    floats: self
                        .values(dist, n as usize)?
                        .into_iter()
                        .map(|x| x as f32)
                        .collect(),
                    ..Self::attr("value_floats", AttributeType::Floats)
                }
            }
            3 => {
                let n = self.u.int_in_range(0..=64)?;
                let mut rng = Rng(self.u.arbitrary()?);
                AttributeProto {
                    ints: (0..n)
                        .map(|_| rng.next_u64() as i64 >> (rng.next_u64() % 64))
                        .collect(),
                    ..Self::attr("value_ints", AttributeType::Ints)
                }
            }
            _ => AttributeProto {
                f: Some(1.5),
                ..Self::attr("value_float", AttributeType::Float)
            },
        };
        let custom = maybe(self.u, 1, 8)?;
        nodes.push(NodeProto {
            op_type: Some("Constant".into()),
            domain: custom.then(|| "com.custom".to_owned()),
            output: vec![out.clone()],
            attribute: vec![a],
            ..Default::default()
        });
        self.consume(&out, nodes, outputs)
    }

    fn graph(&mut self, depth: u32) -> Result<GraphProto> {
        let mut g = GraphProto {
            name: self.name()?,
            ..Default::default()
        };
        let mut outputs = Vec::new();
        let inits = self.u.int_in_range(0..=if depth == 1 { 6 } else { 3 })?;
        for _ in 0..inits {
            let t = self.tensor()?;
            let name = t.name.clone().unwrap_or_default();
            g.initializer.push(t);
            self.consume(&name, &mut g.node, &mut outputs)?;
        }
        if maybe(self.u, 1, 6)? {
            let k = self.u.int_in_range(0..=8)?;
            let mut rng = Rng(self.u.arbitrary()?);
            g.sparse_initializer.push(SparseTensorProto {
                values: Some(TensorProto {
                    name: self.name()?,
                    data_type: Some(dtype::FLOAT),
                    dims: vec![k],
                    float_data: (0..k).map(|_| rng.weight(1.0) as f32).collect(),
                    ..Default::default()
                }),
                indices: Some(TensorProto {
                    data_type: Some(dtype::INT64),
                    dims: vec![k],
                    int64_data: (0..k).collect(),
                    ..Default::default()
                }),
                dims: vec![k.max(1) * 2],
            });
        }
        for _ in 0..self.u.int_in_range(0..=2)? {
            self.constant(&mut g.node, &mut outputs)?;
        }
        if maybe(self.u, 1, 6)? {
            let n = self.u.int_in_range(0..=2)?;
            let mut a = Self::attr("pads", AttributeType::Tensors);
            for _ in 0..n {
                a.tensors.push(self.tensor()?);
            }
            g.node.push(NodeProto {
                op_type: Some("Custom".into()),
                domain: Some("com.custom".into()),
                output: vec![self.name()?.unwrap_or_default()],
                attribute: vec![a],
                ..Default::default()
            });
        }
        if depth < 3 && maybe(self.u, 1, 3)? {
            let mut then_b = Self::attr("then_branch", AttributeType::Graph);
            then_b.g = Some(Box::new(self.graph(depth + 1)?));
            let mut else_b = Self::attr("else_branch", AttributeType::Graph);
            else_b.g = Some(Box::new(self.graph(depth + 1)?));
            g.node.push(NodeProto {
                op_type: Some("If".into()),
                input: vec!["cond".into()],
                output: vec![format!("if{}", self.counter)],
                attribute: vec![then_b, else_b],
                ..Default::default()
            });
        }
        g.input = vec![ValueInfoProto {
            name: Some("x".into()),
            ..Default::default()
        }];
        g.output = outputs
            .into_iter()
            .map(|o| ValueInfoProto {
                name: Some(o),
                ..Default::default()
            })
            .collect();
        Ok(g)
    }

    fn model(&mut self) -> Result<ModelProto> {
        let mut m = ModelProto {
            ir_version: Some(10),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(21),
            }],
            producer_name: Some("nnc-fuzz".into()),
            graph: Some(self.graph(1)?),
            ..Default::default()
        };
        if maybe(self.u, 1, 6)? {
            let mut nodes = Vec::new();
            let mut outs = Vec::new();
            self.constant(&mut nodes, &mut outs)?;
            m.functions.push(FunctionProto {
                name: self.name()?,
                domain: Some("com.custom".into()),
                node: nodes,
                attribute_proto: vec![AttributeProto {
                    t: Some(Box::new(self.tensor()?)),
                    ..Self::attr("alpha", AttributeType::Tensor)
                }],
                ..Default::default()
            });
        }
        if maybe(self.u, 1, 8)? {
            m.training_info.push(TrainingInfoProto {
                initialization: Some(self.graph(2)?),
                ..Default::default()
            });
        }
        Ok(m)
    }
}
