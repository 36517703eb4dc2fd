//! The probe model: a copy of a model in which chosen tensors are graph inputs instead of
//! constants, so that one runtime session can run the model with any values for them (the
//! calibrating encoder perturbs one weight at a time without building a new session).
//!
//! A tensor can become an input when it is an initializer or the value of a `Constant` node,
//! in the main graph or in a subgraph (`If`/`Loop`/`Scan` bodies see the values of the
//! graphs around them). A tensor inside a subgraph becomes a main-graph input under a fresh
//! name, and the subgraph's references to it are renamed. Tensors elsewhere (function bodies,
//! attributes of other operators, sparse initializers, training graphs) stay constants.
use std::collections::{HashMap, HashSet};

use super::lift::{restore, Lifted};
use super::proto::{
    tensor_shape_proto, type_proto, GraphProto, ModelProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};
use super::walk::{walk, SlotMut};
use crate::container::tensor_header::Storage;
use crate::error::{Error, Result};

/// A model whose chosen tensors are graph inputs.
pub struct Probe {
    pub model: ModelProto,
    /// Per tensor in walk order: the graph input that now carries it, when it became one.
    pub inputs: Vec<Option<String>>,
}

const MARK: &str = "\u{0}nnc-probe:";

/// Builds the probe of `model`, a model whose tensors `lift` took out as `lifted`; `feed[i]`
/// asks for the i-th tensor of the walk to become an input. Every other tensor's data goes
/// back in from `lifted`, external data inline, so the probe runs without its files.
pub fn build(
    model: &ModelProto,
    lifted: &[Lifted],
    feed: &[bool],
    max_depth: u32,
) -> Result<Probe> {
    let mut model = model.clone();
    let mut k = 0usize;
    walk(&mut model, max_depth, &mut |_, slot| {
        let i = k;
        k += 1;
        let Some(l) = lifted.get(i).filter(|l| !l.in_graph) else {
            return Ok(());
        };
        match slot {
            SlotMut::Tensor(t) if feed.get(i).copied().unwrap_or(false) => {
                t.doc_string = Some(format!("{MARK}{i}"));
            }
            SlotMut::Tensor(t) if l.storage == Storage::External => {
                t.raw_data = Some(l.data.to_vec());
                t.external_data.clear();
                t.data_location = None;
            }
            slot => {
                if !restore(slot, l.storage, l.data.to_vec()) {
                    return Err(Error::input(
                        Some(&l.name),
                        "internal: tensor data does not go back into its place",
                    ));
                }
            }
        }
        Ok(())
    })?;
    let mut inputs = vec![None; lifted.len()];
    let mut taken = Taken {
        used: names_of(&model),
        added: Vec::new(),
        inputs: &mut inputs,
        fresh: 0,
    };
    if let Some(g) = model.graph.as_mut() {
        let listed: HashSet<String> = g.input.iter().filter_map(|v| v.name.clone()).collect();
        taken.graph(g, true, &listed);
        let added = std::mem::take(&mut taken.added);
        g.input.extend(added);
    }
    // Marks left anywhere else (functions, other attributes) are cleared: those stay constants.
    walk(&mut model, max_depth, &mut |_, slot| {
        if let SlotMut::Tensor(t) = slot {
            if t.doc_string.as_deref().is_some_and(|d| d.starts_with(MARK)) {
                t.doc_string = None;
            }
        }
        Ok(())
    })?;
    Ok(Probe { model, inputs })
}

/// The walk index a tensor was marked with.
fn mark_of(doc: &Option<String>) -> Option<usize> {
    doc.as_deref()?.strip_prefix(MARK)?.parse().ok()
}

struct Taken<'a> {
    /// Every value name of the model, so that fresh names collide with none.
    used: HashSet<String>,
    /// Inputs to add to the main graph.
    added: Vec<ValueInfoProto>,
    inputs: &'a mut Vec<Option<String>>,
    fresh: usize,
}

impl Taken<'_> {
    fn fresh_name(&mut self, i: usize) -> String {
        loop {
            let name = format!("nnc_probe_{i}_{}", self.fresh);
            self.fresh += 1;
            if self.used.insert(name.clone()) {
                return name;
            }
        }
    }

    /// Turns the marked initializers and `Constant` values of `g` (and of its subgraphs)
    /// into main-graph inputs. `main`: `g` is the main graph, whose names stay; `listed`:
    /// the main graph's declared inputs.
    fn graph(&mut self, g: &mut GraphProto, main: bool, listed: &HashSet<String>) {
        let mut renames: HashMap<String, String> = HashMap::new();
        let mut keep = Vec::with_capacity(g.initializer.len());
        for t in std::mem::take(&mut g.initializer) {
            let (Some(i), Some(name)) = (mark_of(&t.doc_string), t.name.clone()) else {
                keep.push(t);
                continue;
            };
            let input = if main {
                name.clone()
            } else {
                let fresh = self.fresh_name(i);
                renames.insert(name.clone(), fresh.clone());
                fresh
            };
            // An initializer that the graph also lists as an input (IR < 4) is fed there.
            if !(main && listed.contains(&name)) {
                self.added
                    .push(value_info(&input, t.data_type.unwrap_or(0), &t.dims));
            }
            self.inputs[i] = Some(input);
        }
        g.initializer = keep;
        let mut nodes = Vec::with_capacity(g.node.len());
        for mut n in std::mem::take(&mut g.node) {
            let is_constant = n.op_type.as_deref() == Some("Constant")
                && matches!(n.domain.as_deref(), None | Some("") | Some("ai.onnx"));
            let marked = if is_constant && n.output.len() == 1 && !n.output[0].is_empty() {
                n.attribute
                    .iter()
                    .find_map(|a| a.t.as_ref().and_then(|t| mark_of(&t.doc_string)))
            } else {
                None
            };
            if let (Some(i), Some(t)) = (
                marked,
                n.attribute.iter().find_map(|a| a.t.as_ref()).cloned(),
            ) {
                let name = n.output[0].clone();
                let input = if main {
                    name
                } else {
                    let fresh = self.fresh_name(i);
                    renames.insert(name, fresh.clone());
                    fresh
                };
                self.added
                    .push(value_info(&input, t.data_type.unwrap_or(0), &t.dims));
                self.inputs[i] = Some(input);
                continue;
            }
            for a in &mut n.attribute {
                if let Some(sub) = a.g.as_mut() {
                    self.graph(sub, false, listed);
                }
                for sub in &mut a.graphs {
                    self.graph(sub, false, listed);
                }
            }
            nodes.push(n);
        }
        g.node = nodes;
        if !renames.is_empty() {
            rename(g, &renames);
        }
    }
}

/// Renames value references in `g` and in the subgraphs it holds.
fn rename(g: &mut GraphProto, map: &HashMap<String, String>) {
    for n in &mut g.node {
        for s in n.input.iter_mut() {
            if let Some(to) = map.get(s.as_str()) {
                *s = to.clone();
            }
        }
        for a in &mut n.attribute {
            if let Some(sub) = a.g.as_mut() {
                rename(sub, map);
            }
            for sub in &mut a.graphs {
                rename(sub, map);
            }
        }
    }
    for v in g.output.iter_mut().chain(g.value_info.iter_mut()) {
        if let Some(to) = v.name.as_ref().and_then(|n| map.get(n)) {
            v.name = Some(to.clone());
        }
    }
}

fn value_info(name: &str, elem_type: i32, dims: &[i64]) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.to_owned()),
        r#type: Some(TypeProto {
            denotation: None,
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem_type),
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| tensor_shape_proto::Dimension {
                            denotation: None,
                            value: Some(tensor_shape_proto::dimension::Value::DimValue(d)),
                        })
                        .collect(),
                }),
            })),
        }),
        doc_string: None,
        metadata_props: Vec::new(),
    }
}

/// Every value name a model's graphs use (inputs, outputs, initializers, node outputs).
fn names_of(model: &ModelProto) -> HashSet<String> {
    fn graph(g: &GraphProto, out: &mut HashSet<String>) {
        out.extend(g.input.iter().filter_map(|v| v.name.clone()));
        out.extend(g.output.iter().filter_map(|v| v.name.clone()));
        out.extend(g.initializer.iter().filter_map(|t| t.name.clone()));
        for n in &g.node {
            out.extend(n.output.iter().cloned());
            out.extend(n.input.iter().cloned());
            for a in &n.attribute {
                if let Some(sub) = &a.g {
                    graph(sub, out);
                }
                for sub in &a.graphs {
                    graph(sub, out);
                }
            }
        }
    }
    let mut out = HashSet::new();
    if let Some(g) = &model.graph {
        graph(g, &mut out);
    }
    out
}

/// Operators that only move, select or retype data: what a graph output shows after them is
/// what their data input held.
const MOVES_DATA: &[&str] = &[
    "Identity",
    "Reshape",
    "Transpose",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Concat",
    "Slice",
    "Split",
    "Cast",
    "Gather",
    "Expand",
];

/// Operators whose outputs are thresholded element by element (detection and multi-label
/// scores, voice activity): a score saturated near 0 or 1 barely moves when the weights do, so
/// its SNR on a few inputs says nothing about the inputs that cross the threshold, while the
/// score before the squashing moves.
pub const SQUASHES: &[&str] = &["Sigmoid"];

/// `SQUASHES` and `Softmax`, for supplied (real) calibration inputs. A classifier's
/// probabilities saturate at 0 and 1 on most real inputs, so their SNR on a few of them says
/// little of the others: the text-direction classifier's encodes at `--target snr=30..62`
/// measured 13–30 dB on held-out inputs, and 31–40 dB with its scores targeted at
/// `snr=22..30`. Not on synthetic inputs: there targeting them was measured to overspend (the
/// text-direction and orientation classifiers reached 58–83 dB on real inputs, at 0.7–0.75 of
/// the size).
pub const SQUASHES_AND_SOFTMAX: &[&str] = &["Sigmoid", "Softmax"];

/// At most this many logit tensors are added as outputs.
const MAX_LOGITS: usize = 16;

/// The logits of a model: the data inputs of the `squashes` nodes of the main graph whose
/// results reach a graph output through operators that only move data (`Concat`, `Reshape`,
/// `Transpose`, …), in the order of the graph's outputs; none that is already a graph input,
/// output or initializer. The calibrating encoder targets them as well as the outputs.
pub fn logits(model: &ModelProto, squashes: &[&str]) -> Vec<String> {
    let Some(g) = &model.graph else {
        return Vec::new();
    };
    let standard = |n: &super::proto::NodeProto| {
        matches!(n.domain.as_deref(), None | Some("") | Some("ai.onnx"))
    };
    let producer: HashMap<&str, &super::proto::NodeProto> = g
        .node
        .iter()
        .flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n)))
        .collect();
    let taken: HashSet<&str> = g
        .input
        .iter()
        .chain(&g.output)
        .filter_map(|v| v.name.as_deref())
        .chain(g.initializer.iter().filter_map(|t| t.name.as_deref()))
        .collect();
    let mut found: Vec<String> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for out in g.output.iter().filter_map(|v| v.name.as_deref()) {
        let mut stack = vec![out];
        while let Some(name) = stack.pop() {
            if !seen.insert(name) || found.len() >= MAX_LOGITS {
                continue;
            }
            let Some(n) = producer.get(name).filter(|n| standard(n)) else {
                continue;
            };
            let op = n.op_type.as_deref().unwrap_or("");
            if squashes.contains(&op) {
                if let Some(x) = n.input.first().filter(|x| !x.is_empty()) {
                    if !taken.contains(x.as_str()) && !found.contains(x) {
                        found.push(x.clone());
                    }
                }
            } else if MOVES_DATA.contains(&op) {
                // Data inputs only: the shape, axes and index inputs come from constants.
                let data = if op == "Concat" { n.input.len() } else { 1 };
                stack.extend(n.input.iter().take(data).rev().map(String::as_str));
            }
        }
    }
    found
}

/// Adds `names` (tensors of the main graph) to the graph's outputs, without types: the
/// runtime infers them.
pub fn add_outputs(model: &mut ModelProto, names: &[String]) {
    if let Some(g) = &mut model.graph {
        for n in names {
            g.output.push(ValueInfoProto {
                name: Some(n.clone()),
                ..Default::default()
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::proto::NodeProto;

    fn node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
        NodeProto {
            op_type: Some(op.into()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            ..Default::default()
        }
    }

    fn value(name: &str) -> ValueInfoProto {
        ValueInfoProto {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    #[test]
    fn logits_are_found_through_data_moves_and_only_before_the_squashes_asked_for() {
        // boxes ++ Sigmoid(scores) → Reshape → out0; Softmax(cls) → out1; Sigmoid(x) is
        // an output already; a Sigmoid of a custom domain is not the standard one.
        let mut custom = node("Sigmoid", &["c"], "cs");
        custom.domain = Some("com.example".into());
        let model = ModelProto {
            graph: Some(GraphProto {
                node: vec![
                    node("Conv", &["x", "w"], "scores"),
                    node("Sigmoid", &["scores"], "probs"),
                    node("Concat", &["boxes", "probs"], "cat"),
                    node("Reshape", &["cat", "shape"], "out0"),
                    node("Softmax", &["cls"], "out1"),
                    node("Sigmoid", &["x"], "out2"),
                    custom,
                    node("Identity", &["cs"], "out3"),
                ],
                input: vec![value("x")],
                output: vec![value("out0"), value("out1"), value("out2"), value("out3")],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(logits(&model, SQUASHES), vec!["scores".to_string()]);
        assert_eq!(
            logits(&model, SQUASHES_AND_SOFTMAX),
            vec!["scores".to_string(), "cls".to_string()]
        );
        let mut m = model.clone();
        add_outputs(&mut m, &logits(&model, SQUASHES));
        let outs: Vec<_> = m
            .graph
            .unwrap()
            .output
            .iter()
            .map(|v| v.name.clone().unwrap())
            .collect();
        assert_eq!(outs, ["out0", "out1", "out2", "out3", "scores"]);
    }
}
