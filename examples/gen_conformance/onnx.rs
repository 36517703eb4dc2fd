//! Small builders for ONNX messages (the prost types of `nnc::onnx::proto`) and a
//! deterministic source of test data. Data uses integer arithmetic and exact float operations
//! only (no `ln`, `sin`, ...), so that every platform generates the same bytes.
use nnc::onnx::proto::attribute_proto::AttributeType;
use nnc::onnx::proto::*;

/// SplitMix64: a tiny deterministic generator.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// Uniform in [0, 1), exactly a multiple of 2^-53.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    /// Roughly normal with mean 0 and standard deviation `sigma` (Irwin–Hall of 4 uniforms:
    /// sums and products only).
    pub fn gauss(&mut self, sigma: f64) -> f64 {
        let s = self.unit() + self.unit() + self.unit() + self.unit() - 2.0;
        s * sigma * 1.732_050_807_568_877_2
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
    /// `n` float32 weights, normal-ish with deviation `sigma`.
    pub fn weights(&mut self, n: usize, sigma: f64) -> Vec<f32> {
        (0..n).map(|_| self.gauss(sigma) as f32).collect()
    }
}

pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn f64_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn u16_bytes(v: &[u16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A tensor with `raw_data`.
pub fn raw(name: &str, dt: i32, dims: &[i64], data: Vec<u8>) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        data_type: Some(dt),
        dims: dims.to_vec(),
        raw_data: Some(data),
        ..Default::default()
    }
}

/// A FLOAT tensor with `raw_data`.
pub fn floats(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
    raw(name, 1, dims, f32_bytes(v))
}

/// A tensor with no data yet (fill a typed field afterwards).
pub fn typed(name: &str, dt: i32, dims: &[i64]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        data_type: Some(dt),
        dims: dims.to_vec(),
        ..Default::default()
    }
}

pub fn value_info(name: &str, elem: i32, dims: &[i64]) -> ValueInfoProto {
    use nnc::onnx::proto::tensor_shape_proto::{dimension::Value, Dimension};
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem),
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            value: Some(Value::DimValue(d)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn node(op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}

fn attr(name: &str, ty: AttributeType) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(ty as i32),
        ..Default::default()
    }
}

pub fn attr_t(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto {
        t: Some(Box::new(t)),
        ..attr(name, AttributeType::Tensor)
    }
}

pub fn attr_tensors(name: &str, ts: Vec<TensorProto>) -> AttributeProto {
    AttributeProto {
        tensors: ts,
        ..attr(name, AttributeType::Tensors)
    }
}

pub fn attr_g(name: &str, g: GraphProto) -> AttributeProto {
    AttributeProto {
        g: Some(Box::new(g)),
        ..attr(name, AttributeType::Graph)
    }
}

pub fn attr_graphs(name: &str, gs: Vec<GraphProto>) -> AttributeProto {
    AttributeProto {
        graphs: gs,
        ..attr(name, AttributeType::Graphs)
    }
}

pub fn attr_floats(name: &str, v: &[f32]) -> AttributeProto {
    AttributeProto {
        floats: v.to_vec(),
        ..attr(name, AttributeType::Floats)
    }
}

pub fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        ints: v.to_vec(),
        ..attr(name, AttributeType::Ints)
    }
}

pub fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        i: Some(v),
        ..attr(name, AttributeType::Int)
    }
}

pub fn attr_sparse(name: &str, s: SparseTensorProto) -> AttributeProto {
    AttributeProto {
        sparse_tensor: Some(Box::new(s)),
        ..attr(name, AttributeType::SparseTensor)
    }
}

pub fn attr_sparses(name: &str, s: Vec<SparseTensorProto>) -> AttributeProto {
    AttributeProto {
        sparse_tensors: s,
        ..attr(name, AttributeType::SparseTensors)
    }
}

pub fn graph(name: &str, initializer: Vec<TensorProto>, nodes: Vec<NodeProto>) -> GraphProto {
    GraphProto {
        name: Some(name.into()),
        initializer,
        node: nodes,
        ..Default::default()
    }
}

/// A model around `g` (IR version 10, default opset 21).
pub fn model(g: GraphProto) -> ModelProto {
    ModelProto {
        ir_version: Some(10),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(21),
        }],
        producer_name: Some("nnc conformance generator".into()),
        graph: Some(g),
        ..Default::default()
    }
}

/// A graph whose initializers all feed one node each (`MatMul` with input `x`), so that the
/// encoder's weight policy sees them as weights.
pub fn weights_graph(name: &str, ws: Vec<TensorProto>) -> GraphProto {
    let nodes = ws
        .iter()
        .map(|t| {
            let n = t.name.clone().unwrap_or_default();
            node("MatMul", &["x", &n], &[&format!("{n}.out")], vec![])
        })
        .collect();
    let mut g = graph(name, ws, nodes);
    g.input.push(value_info("x", 1, &[1]));
    g
}
