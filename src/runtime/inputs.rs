//! Calibration inputs: supplied (`--calibrate DIR`: ONNX test-data directories or `.npy` /
//! `.npz` files named by input) or synthesized from the model's input signature.
//!
//! Synthetic inputs (README, "What the default measures"): dynamic dimensions from
//! `--input-shape` or defaults (batch 1; image-like inputs 224×224 or the model's `imgsz`
//! metadata, then other sizes if the model refuses them; id sequences 16; other dimensions
//! 512, 64, 32, ...); float inputs N(0, 1); integer ids uniform below the row count of the
//! table they index; masks of ones; integers the graph compares with constants (directly, or
//! after reshapes, casts and index selections) take those constants (and, for an equality,
//! half of it as well, so both branches run); recurrent
//! state inputs start at zero and are warmed up by running the model (see `calibrate`).
use std::collections::{HashMap, HashSet};
use std::path::Path;

use prost::Message;

use super::array::{Array, Values};
use crate::error::{Error, Result};
use crate::onnx::dtype;
use crate::onnx::proto::{
    tensor_shape_proto::dimension, type_proto, GraphProto, ModelProto, NodeProto, TensorProto,
};

/// One set of inputs for one run: (input name, tensor).
pub type Feeds = Vec<(String, Array)>;

/// A dimension of a declared input.
#[derive(Debug, Clone, PartialEq)]
pub enum Dim {
    Known(i64),
    /// Unknown; the symbol when it has one (inputs sharing a symbol share the value).
    Symbol(Option<String>),
}

/// A declared graph input that is not an initializer.
#[derive(Debug, Clone)]
pub struct InputSpec {
    pub name: String,
    pub data_type: i32,
    pub dims: Vec<Dim>,
}

/// What an input means, as far as the graph tells.
#[derive(Debug, Clone, PartialEq)]
pub enum Role {
    /// Plain values: N(0, 1) for floats, small non-negative integers otherwise.
    Plain,
    /// Indices into a table of `rows` rows.
    Ids { rows: i64 },
    /// Compared with these constants.
    Constrained(Vec<f64>),
    /// An attention mask: ones.
    Mask,
    /// Recurrent state: zeros, then warmed up by running the model.
    State,
}

/// The model's graph inputs that are not initializers, with their declared types.
pub fn signature(model: &ModelProto) -> Vec<InputSpec> {
    let Some(g) = &model.graph else {
        return Vec::new();
    };
    let inits: std::collections::HashSet<&str> = g
        .initializer
        .iter()
        .filter_map(|t| t.name.as_deref())
        .collect();
    g.input
        .iter()
        .filter_map(|v| {
            let name = v.name.clone()?;
            if inits.contains(name.as_str()) {
                return None;
            }
            let (data_type, dims) = match v.r#type.as_ref()?.value.as_ref()? {
                type_proto::Value::TensorType(t) => (
                    t.elem_type.unwrap_or(0),
                    t.shape
                        .as_ref()
                        .map(|s| {
                            s.dim
                                .iter()
                                .map(|d| match &d.value {
                                    Some(dimension::Value::DimValue(v)) if *v > 0 => Dim::Known(*v),
                                    Some(dimension::Value::DimParam(p)) if !p.is_empty() => {
                                        Dim::Symbol(Some(p.clone()))
                                    }
                                    _ => Dim::Symbol(None),
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                ),
                _ => (0, Vec::new()),
            };
            Some(InputSpec {
                name,
                data_type,
                dims,
            })
        })
        .collect()
}

/// The roles of `inputs` as the graph implies them.
pub fn roles(model: &ModelProto, inputs: &[InputSpec]) -> Vec<Role> {
    let Some(g) = &model.graph else {
        return vec![Role::Plain; inputs.len()];
    };
    let consts = constants(g);
    let outputs: Vec<String> = g.output.iter().filter_map(|o| o.name.clone()).collect();
    inputs
        .iter()
        .map(|spec| {
            let lower = spec.name.to_lowercase();
            if dtype::is_float(spec.data_type) {
                let stateful = ["state", "hidden", "cache", "past", "memory"]
                    .iter()
                    .any(|k| lower.contains(k))
                    || matches!(lower.as_str(), "h0" | "c0" | "hx" | "cx" | "h" | "c");
                return if stateful && state_output(&spec.name, &outputs).is_some() {
                    Role::State
                } else {
                    Role::Plain
                };
            }
            let mut compared = Vec::new();
            let mut rows = None;
            let carried = carriers(g, &spec.name);
            for n in &g.node {
                let op = n.op_type.as_deref().unwrap_or("");
                for (k, inp) in n.input.iter().enumerate() {
                    if !carried.contains(inp) {
                        continue;
                    }
                    match op {
                        "Equal" | "Greater" | "Less" | "GreaterOrEqual" | "LessOrEqual" => {
                            if let Some(c) = n.input.get(1 - k.min(1)).and_then(|o| consts.get(o)) {
                                if let Some(&v) = c.first() {
                                    compared.push(v);
                                    if op == "Equal" {
                                        // The other branch needs another value.
                                        compared.push((v / 2.0).trunc());
                                    }
                                }
                            }
                        }
                        "Gather" if k == 1 => {
                            rows = rows.or_else(|| table_rows(g, &n.input[0]));
                        }
                        _ => {}
                    }
                }
            }
            if !compared.is_empty() {
                compared.dedup();
                Role::Constrained(compared)
            } else if let Some(rows) = rows {
                Role::Ids { rows }
            } else if lower.contains("mask") {
                Role::Mask
            } else {
                Role::Plain
            }
        })
        .collect()
}

/// `name` and the values of the main graph that carry its values on unchanged (through at most
/// four reshapes, casts, squeezes, index selections and the like): an exporter may compare a
/// scalar input only after `Reshape` and `Gather` (silero-vad's op-18 export compares
/// `Gather(Reshape(sr), 0)` with 16000), or look up ids after a `Cast`.
fn carriers(g: &GraphProto, name: &str) -> HashSet<String> {
    let mut set = HashSet::from([name.to_owned()]);
    let mut front = vec![name.to_owned()];
    for _ in 0..4 {
        let mut next = Vec::new();
        for n in &g.node {
            let op = n.op_type.as_deref().unwrap_or("");
            let passes = matches!(
                op,
                "Reshape" | "Squeeze" | "Unsqueeze" | "Flatten" | "Cast" | "Identity" | "Gather"
                    | "Slice" | "Expand"
            );
            if passes && n.input.first().is_some_and(|i| front.contains(i)) {
                for o in &n.output {
                    if set.insert(o.clone()) {
                        next.push(o.clone());
                    }
                }
            }
        }
        if next.is_empty() {
            break;
        }
        front = next;
    }
    set
}

/// The output that carries the next value of state input `name` (`stateN` for `state`, ...).
pub fn state_output<'a>(name: &str, outputs: &'a [String]) -> Option<&'a String> {
    let stem = name
        .trim_end_matches(|c: char| c.is_ascii_digit() || c == '_' || c == '.')
        .to_lowercase();
    outputs.iter().find(|o| {
        let o = o.to_lowercase();
        o != name.to_lowercase()
            && (o.starts_with(&stem) || (stem.len() == 1 && o.starts_with(&format!("{stem}n"))))
    })
}

/// Values of constant tensors of the main graph (initializers and `Constant` nodes), widened
/// to f64, for the small ones (up to 16 elements).
fn constants(g: &GraphProto) -> HashMap<String, Vec<f64>> {
    let mut out = HashMap::new();
    let mut add = |name: &str, t: &TensorProto| {
        if let Some(v) = small_values(t) {
            out.insert(name.to_owned(), v);
        }
    };
    for t in &g.initializer {
        if let Some(n) = &t.name {
            add(n, t);
        }
    }
    for n in &g.node {
        if n.op_type.as_deref() == Some("Constant") {
            if let (Some(o), Some(t)) = (
                n.output.first(),
                n.attribute.iter().find_map(|a| a.t.as_ref()),
            ) {
                add(o, t);
            }
        }
    }
    out
}

fn small_values(t: &TensorProto) -> Option<Vec<f64>> {
    let n: i64 = t.dims.iter().product();
    if n > 16 {
        return None;
    }
    let bytes = match &t.raw_data {
        Some(b) => b.clone(),
        None => dtype::typed_to_bytes(t)?,
    };
    let dt = t.data_type.unwrap_or(0);
    let v = Values::from_le_bytes(dt, &bytes)?;
    Some(match v {
        Values::I64(v) => v.iter().map(|&x| x as f64).collect(),
        Values::I32(v) => v.iter().map(|&x| x as f64).collect(),
        Values::U8(v) => v.iter().map(|&x| x as f64).collect(),
        Values::I8(v) => v.iter().map(|&x| x as f64).collect(),
        other => other.to_f64()?,
    })
}

/// Rows of the table a `Gather` reads: an initializer or `Constant`, possibly through
/// `DequantizeLinear`, `Cast` or `Identity`.
fn table_rows(g: &GraphProto, name: &str) -> Option<i64> {
    let mut name = name.to_owned();
    for _ in 0..4 {
        if let Some(t) = g
            .initializer
            .iter()
            .find(|t| t.name.as_deref() == Some(&name))
        {
            return t.dims.first().copied().filter(|&r| r > 0);
        }
        let producer: &NodeProto = g
            .node
            .iter()
            .find(|n| n.output.iter().any(|o| o == &name))?;
        match producer.op_type.as_deref() {
            Some("Constant") => {
                return producer
                    .attribute
                    .iter()
                    .find_map(|a| a.t.as_ref())
                    .and_then(|t| t.dims.first().copied())
                    .filter(|&r| r > 0)
            }
            Some("DequantizeLinear" | "Cast" | "Identity") => {
                name = producer.input.first()?.clone()
            }
            _ => return None,
        }
    }
    None
}

/// A small deterministic generator (SplitMix64) for synthetic inputs.
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
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.uniform().max(f64::MIN_POSITIVE);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

/// The concrete shapes to try for the inputs, best guess first. `fixed` gives shapes from
/// `--input-shape`; `imgsz` the model's own image size metadata, if any.
pub fn shape_plans(
    inputs: &[InputSpec],
    fixed: &HashMap<String, Vec<i64>>,
    imgsz: Option<(i64, i64)>,
) -> Vec<Vec<Vec<i64>>> {
    const PLANS: usize = 5;
    let images: Vec<(i64, i64)> = imgsz
        .into_iter()
        .chain([(224, 224), (48, 320), (64, 256), (32, 32), (640, 640)])
        .collect();
    let seqs = [512i64, 256, 1024, 64, 16];
    let others = [1i64, 32, 64, 16, 224];
    let mut plans = Vec::new();
    for p in 0..PLANS {
        let mut symbols: HashMap<String, i64> = HashMap::new();
        let plan = inputs
            .iter()
            .map(|spec| {
                if let Some(s) = fixed.get(&spec.name) {
                    return s.clone();
                }
                let rank = spec.dims.len();
                let known = |i: usize| match spec.dims.get(i) {
                    Some(Dim::Known(v)) => Some(*v),
                    _ => None,
                };
                // NCHW or NHWC with a known channel count of 1, 3 or 4.
                let image = rank == 4
                    && (matches!(known(1), Some(1 | 3 | 4)) || matches!(known(3), Some(1 | 3 | 4)));
                let (ih, iw) = images[p.min(images.len() - 1)];
                let spatial = if matches!(known(1), Some(1 | 3 | 4)) {
                    [2, 3]
                } else {
                    [1, 2]
                };
                spec.dims
                    .iter()
                    .enumerate()
                    .map(|(i, d)| match d {
                        Dim::Known(v) => *v,
                        Dim::Symbol(sym) => {
                            let v = if i == 0 {
                                1
                            } else if image && spatial.contains(&i) {
                                if i == spatial[0] {
                                    ih
                                } else {
                                    iw
                                }
                            } else if !dtype::is_float(spec.data_type) {
                                [16, 32, 8, 64, 1][p]
                            } else if rank == 2 {
                                seqs[p]
                            } else {
                                others[p]
                            };
                            match sym {
                                Some(s) => *symbols.entry(s.clone()).or_insert(v),
                                None => v,
                            }
                        }
                    })
                    .collect()
            })
            .collect();
        if !plans.contains(&plan) {
            plans.push(plan);
        }
    }
    plans
}

/// `count` synthetic input sets for `inputs` with `shapes` (one plan of `shape_plans`).
pub fn synthesize(
    inputs: &[InputSpec],
    roles: &[Role],
    shapes: &[Vec<i64>],
    count: usize,
    seed: u64,
) -> Vec<Feeds> {
    synthesize_from(inputs, roles, shapes, count, None, seed)
}

/// `count` input sets; `pick` chooses among constrained values for all of them (by default
/// each set takes the next value).
pub fn synthesize_from(
    inputs: &[InputSpec],
    roles: &[Role],
    shapes: &[Vec<i64>],
    count: usize,
    pick: Option<usize>,
    seed: u64,
) -> Vec<Feeds> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|k| {
            let k = pick.unwrap_or(k);
            inputs
                .iter()
                .zip(roles)
                .zip(shapes)
                .map(|((spec, role), shape)| {
                    let n: usize = shape.iter().map(|&d| d.max(0) as usize).product();
                    let values = make_values(spec.data_type, role, n, k, &mut rng);
                    (
                        spec.name.clone(),
                        Array {
                            shape: shape.clone(),
                            values,
                        },
                    )
                })
                .collect()
        })
        .collect()
}

fn make_values(data_type: i32, role: &Role, n: usize, k: usize, rng: &mut Rng) -> Values {
    let ints = |rng: &mut Rng| -> Vec<i64> {
        match role {
            Role::Ids { rows } => (0..n).map(|_| rng.below(*rows as u64) as i64).collect(),
            Role::Constrained(c) => vec![c[k % c.len()] as i64; n],
            Role::Mask => vec![1; n],
            Role::State => vec![0; n],
            Role::Plain => (0..n).map(|_| rng.below(2) as i64).collect(),
        }
    };
    let floats = |rng: &mut Rng| -> Vec<f64> {
        match role {
            Role::State => vec![0.0; n],
            Role::Mask => vec![1.0; n],
            Role::Constrained(c) => vec![c[k % c.len()]; n],
            _ => (0..n).map(|_| rng.normal()).collect(),
        }
    };
    match data_type {
        dtype::INT64 => Values::I64(ints(rng)),
        dtype::INT32 => Values::I32(ints(rng).into_iter().map(|x| x as i32).collect()),
        dtype::UINT8 => Values::U8(match role {
            Role::Plain => (0..n).map(|_| rng.below(256) as u8).collect(),
            _ => ints(rng)
                .into_iter()
                .map(|x| x.clamp(0, 255) as u8)
                .collect(),
        }),
        dtype::INT8 => Values::I8(match role {
            Role::Plain => (0..n)
                .map(|_| (rng.below(256) as i64 - 128) as i8)
                .collect(),
            _ => ints(rng)
                .into_iter()
                .map(|x| x.clamp(-128, 127) as i8)
                .collect(),
        }),
        dtype::BOOL => Values::Bool(vec![true; n]),
        dt => Values::from_f64(dt, &floats(rng)).unwrap_or(Values::F32(vec![0.0; n])),
    }
}

/// Reads calibration inputs from `dir`: `test_data_set_*/input_*.pb` (ONNX test-data layout:
/// one set per directory, the J-th file for the J-th input unless the tensor names its input),
/// `*.npz` (one set per file, arrays named by input), or `NAME.npy` per input (samples along
/// the first axis: an array of the input's rank is split into batches of one, one of rank + 1
/// into its rows).
pub fn load_dir(dir: &Path, inputs: &[InputSpec]) -> Result<Vec<Feeds>> {
    let io = |e: std::io::Error| Error::io(format!("reading {}", dir.display()), e);
    let mut entries: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let mut sets = Vec::new();
    for sub in entries.iter().filter(|p| {
        p.is_dir()
            && p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("test_data_set"))
    }) {
        let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(sub)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("input_") && n.ends_with(".pb"))
            })
            .collect();
        files.sort_by_key(|p| {
            p.file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.strip_prefix("input_"))
                .and_then(|s| s.parse::<usize>().ok())
                .unwrap_or(usize::MAX)
        });
        let mut feeds = Feeds::new();
        for (j, f) in files.iter().enumerate() {
            let bytes =
                std::fs::read(f).map_err(|e| Error::io(format!("reading {}", f.display()), e))?;
            let t = TensorProto::decode(bytes.as_slice()).map_err(|e| {
                Error::input(None, format!("{}: not a TensorProto: {e}", f.display()))
            })?;
            let name = match t.name.as_deref() {
                Some(n) if inputs.iter().any(|s| s.name == n) => n.to_owned(),
                _ => inputs.get(j).map(|s| s.name.clone()).ok_or_else(|| {
                    Error::input(
                        None,
                        format!(
                            "{}: the model has only {} inputs",
                            f.display(),
                            inputs.len()
                        ),
                    )
                })?,
            };
            feeds.push((
                name,
                array_of(&t).map_err(|e| Error::input(None, format!("{}: {e}", f.display())))?,
            ));
        }
        if !feeds.is_empty() {
            sets.push(feeds);
        }
    }
    for f in entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "npz"))
    {
        sets.push(read_npz(f, inputs)?);
    }
    let npy: Vec<&std::path::PathBuf> = entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "npy"))
        .collect();
    if !npy.is_empty() {
        let mut per_input: Vec<(String, Vec<Array>)> = Vec::new();
        for f in npy {
            let stem = f
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("")
                .to_owned();
            let Some(spec) = inputs.iter().find(|s| s.name == stem) else {
                return Err(Error::input(
                    None,
                    format!("{}: the model has no input named {stem}", f.display()),
                ));
            };
            let bytes =
                std::fs::read(f).map_err(|e| Error::io(format!("reading {}", f.display()), e))?;
            let a = parse_npy(&bytes)
                .map_err(|e| Error::input(None, format!("{}: {e}", f.display())))?;
            per_input.push((stem, split_samples(a, spec.dims.len())));
        }
        let n = per_input.iter().map(|p| p.1.len()).min().unwrap_or(0);
        for k in 0..n {
            sets.push(
                per_input
                    .iter()
                    .map(|(name, v)| (name.clone(), v[k].clone()))
                    .collect(),
            );
        }
    }
    if sets.is_empty() {
        return Err(Error::input(
            None,
            format!(
                "{}: no calibration inputs (test_data_set_*/input_*.pb, *.npz or NAME.npy)",
                dir.display()
            ),
        ));
    }
    Ok(sets)
}

fn array_of(t: &TensorProto) -> std::result::Result<Array, String> {
    let dt = t.data_type.unwrap_or(0);
    let bytes = match &t.raw_data {
        Some(b) => b.clone(),
        None => dtype::typed_to_bytes(t).ok_or("tensor data not readable")?,
    };
    let values = Values::from_le_bytes(dt, &bytes)
        .ok_or_else(|| format!("unsupported type {}", dtype::name(dt)))?;
    let a = Array {
        shape: t.dims.clone(),
        values,
    };
    if a.elements() != a.values.len() {
        return Err(format!("{} values for dims {:?}", a.values.len(), a.shape));
    }
    Ok(a)
}

/// Samples of one input from a stacked array.
fn split_samples(a: Array, rank: usize) -> Vec<Array> {
    if a.shape.is_empty() || (a.shape.len() != rank && a.shape.len() != rank + 1) {
        return vec![a];
    }
    let rows = a.shape[0].max(0) as usize;
    let keep_axis = a.shape.len() == rank;
    let inner: Vec<i64> = a.shape[1..].to_vec();
    let per = inner.iter().map(|&d| d.max(0) as usize).product::<usize>();
    let shape = if keep_axis {
        std::iter::once(1).chain(inner.iter().copied()).collect()
    } else {
        inner
    };
    (0..rows)
        .map(|r| Array {
            shape: shape.clone(),
            values: slice_values(&a.values, r * per, per),
        })
        .collect()
}

fn slice_values(v: &Values, at: usize, n: usize) -> Values {
    match v {
        Values::F32(v) => Values::F32(v[at..at + n].to_vec()),
        Values::F64(v) => Values::F64(v[at..at + n].to_vec()),
        Values::F16(v) => Values::F16(v[at..at + n].to_vec()),
        Values::Bf16(v) => Values::Bf16(v[at..at + n].to_vec()),
        Values::I64(v) => Values::I64(v[at..at + n].to_vec()),
        Values::I32(v) => Values::I32(v[at..at + n].to_vec()),
        Values::I8(v) => Values::I8(v[at..at + n].to_vec()),
        Values::U8(v) => Values::U8(v[at..at + n].to_vec()),
        Values::Bool(v) => Values::Bool(v[at..at + n].to_vec()),
    }
}

fn read_npz(path: &Path, inputs: &[InputSpec]) -> Result<Feeds> {
    let err = |e: String| Error::input(None, format!("{}: {e}", path.display()));
    let f = std::fs::File::open(path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    let mut z = zip::ZipArchive::new(f).map_err(|e| err(format!("not a zip archive: {e}")))?;
    let mut feeds = Feeds::new();
    for i in 0..z.len() {
        let mut entry = z.by_index(i).map_err(|e| err(e.to_string()))?;
        let name = entry.name().trim_end_matches(".npy").to_owned();
        if !inputs.iter().any(|s| s.name == name) {
            return Err(err(format!("the model has no input named {name}")));
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).map_err(|e| err(e.to_string()))?;
        feeds.push((name, parse_npy(&bytes).map_err(err)?));
    }
    Ok(feeds)
}

/// Parses a `.npy` array (format versions 1–3, C order, little-endian numeric types).
pub fn parse_npy(b: &[u8]) -> std::result::Result<Array, String> {
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return Err("not a .npy file".into());
    }
    let (hlen, start) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        2 | 3 if b.len() >= 12 => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let header = b
        .get(start..start + hlen)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or("truncated .npy header")?;
    let field = |key: &str| -> Option<&str> {
        let at = header.find(&format!("'{key}'"))? + key.len() + 2;
        let rest = header[at..].trim_start().strip_prefix(':')?.trim_start();
        Some(rest)
    };
    let descr = field("descr")
        .and_then(|r| r.strip_prefix('\''))
        .and_then(|r| r.split('\'').next())
        .ok_or("no descr in .npy header")?;
    if field("fortran_order").is_some_and(|r| r.starts_with("True")) {
        return Err("Fortran-ordered arrays are not supported".into());
    }
    let shape_text = field("shape")
        .and_then(|r| r.strip_prefix('('))
        .and_then(|r| r.split(')').next())
        .ok_or("no shape in .npy header")?;
    let shape: Vec<i64> = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim_end_matches('L')
                .parse::<i64>()
                .map_err(|_| format!("bad shape {shape_text}"))
        })
        .collect::<std::result::Result<_, _>>()?;
    let data = &b[start + hlen..];
    let dt = match descr {
        "<f4" => dtype::FLOAT,
        "<f8" => dtype::DOUBLE,
        "<f2" => dtype::FLOAT16,
        "<i8" => dtype::INT64,
        "<i4" => dtype::INT32,
        "|i1" => dtype::INT8,
        "|u1" => dtype::UINT8,
        "|b1" => dtype::BOOL,
        d => return Err(format!("unsupported .npy type {d}")),
    };
    let n: usize = shape.iter().map(|&d| d.max(0) as usize).product();
    let need = n * dtype::unit_bytes(dt);
    if data.len() < need {
        return Err(format!(".npy data has {} bytes, {need} needed", data.len()));
    }
    let values = Values::from_le_bytes(dt, &data[..need]).ok_or("unsupported .npy type")?;
    Ok(Array { shape, values })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn npy_arrays_parse() {
        let data: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let a = parse_npy(&npy("<f4", "(2, 3)", &data)).unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.values, Values::F32(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
        let s = parse_npy(&npy("<i8", "()", &7i64.to_le_bytes())).unwrap();
        assert_eq!(s.shape, Vec::<i64>::new());
        assert_eq!(s.values, Values::I64(vec![7]));
        assert!(parse_npy(&npy("<f4", "(4,)", &data[..8])).is_err());
        assert!(parse_npy(&npy(">f4", "(1,)", &data[..4])).is_err());
    }

    #[test]
    fn stacked_samples_split_along_the_first_axis() {
        let a = Array {
            shape: vec![3, 2],
            values: Values::I64(vec![1, 2, 3, 4, 5, 6]),
        };
        // Rank 2 for a rank-2 input: three batches of one.
        let s = split_samples(a.clone(), 2);
        assert_eq!(s.len(), 3);
        assert_eq!(s[1].shape, vec![1, 2]);
        assert_eq!(s[1].values, Values::I64(vec![3, 4]));
        // Rank 2 for a rank-1 input: three rows.
        let s = split_samples(a, 1);
        assert_eq!(s[2].shape, vec![2]);
        assert_eq!(s[2].values, Values::I64(vec![5, 6]));
    }

    /// A node of `op` from `inputs` to `outputs` (also for the calibration's tests).
    pub(crate) fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
        NodeProto {
            op_type: Some(op.into()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn scalar(name: &str, v: i64) -> TensorProto {
        TensorProto {
            name: Some(name.into()),
            data_type: Some(dtype::INT64),
            int64_data: vec![v],
            ..Default::default()
        }
    }

    /// silero-vad's op-18 export: `Equal(Gather(Reshape(sr, [-1]), 0), 16000)` decides the
    /// branch; the comparison is found through the reshape and the index selection, and both
    /// values are synthesized. An input that only reaches a comparison through arithmetic is
    /// not constrained.
    #[test]
    fn comparisons_are_found_through_reshapes_and_selections() {
        let graph = GraphProto {
            node: vec![
                node("Reshape", &["sr", "minus_one"], &["r"]),
                node("Gather", &["r", "zero"], &["g"]),
                node("Equal", &["g", "rate"], &["is_16k"]),
                node("Add", &["n", "zero"], &["m"]),
                node("Equal", &["m", "rate"], &["other"]),
            ],
            initializer: vec![
                scalar("minus_one", -1),
                scalar("zero", 0),
                scalar("rate", 16000),
            ],
            ..Default::default()
        };
        let model = ModelProto {
            graph: Some(graph),
            ..Default::default()
        };
        let spec = |name: &str| InputSpec {
            name: name.into(),
            data_type: dtype::INT64,
            dims: vec![Dim::Known(1)],
        };
        let roles = roles(&model, &[spec("sr"), spec("n")]);
        assert_eq!(roles[0], Role::Constrained(vec![16000.0, 8000.0]));
        assert_eq!(roles[1], Role::Plain);
    }

    #[test]
    fn state_outputs_are_matched_by_name() {
        let outs = vec!["output".to_string(), "stateN".to_string()];
        assert_eq!(state_output("state", &outs), Some(&outs[1]));
        assert_eq!(state_output("input", &outs), None);
        let outs = vec!["y".to_string(), "hn".to_string(), "cn".to_string()];
        assert_eq!(state_output("h0", &outs), Some(&outs[1]));
        assert_eq!(state_output("c0", &outs), Some(&outs[2]));
    }

    #[test]
    fn shape_plans_fill_unknown_dims() {
        let spec = |name: &str, dt, dims: Vec<Dim>| InputSpec {
            name: name.into(),
            data_type: dt,
            dims,
        };
        let sym = |s: &str| Dim::Symbol(Some(s.into()));
        let inputs = vec![
            spec(
                "x",
                dtype::FLOAT,
                vec![
                    sym("b"),
                    Dim::Known(3),
                    Dim::Symbol(None),
                    Dim::Symbol(None),
                ],
            ),
            spec("ids", dtype::INT64, vec![sym("b"), sym("seq")]),
            spec("mask", dtype::INT64, vec![sym("b"), sym("seq")]),
        ];
        let plans = shape_plans(&inputs, &HashMap::new(), Some((320, 320)));
        assert_eq!(plans[0][0], vec![1, 3, 320, 320]);
        assert_eq!(plans[0][1], vec![1, 16]);
        assert_eq!(plans[0][1], plans[0][2]);
        assert_eq!(plans[1][0], vec![1, 3, 224, 224]);
        let fixed: HashMap<String, Vec<i64>> = [("x".to_string(), vec![2, 3, 8, 8])].into();
        assert_eq!(shape_plans(&inputs, &fixed, None)[0][0], vec![2, 3, 8, 8]);
    }
}
