//! The walk (spec §5.2): visits every place a tensor can live in a `ModelProto`, in one fixed
//! order that the encoder and every decoder share, so the n-th tensor record belongs to the
//! n-th slot of the walk.
//!
//! Order: the main graph, then each `training_info` (initialization, then algorithm), then
//! each function. Within a graph: `initializer` in order, then `sparse_initializer` (values,
//! then indices), then each node. Within a node, each attribute in order: `t`, `tensors`,
//! `sparse_tensor` (values, indices), `sparse_tensors`, `g` (recursively), `graphs`; and for
//! a `Constant` node of the default domain, the lists `value_floats` and `value_ints`.
//! Within a function: each node, then each `attribute_proto` default.
//!
//! [`walk`] visits every such place of a model (the encoder's view of its input);
//! [`walk_slots`] only the *slots* of a lifted model: places that hold no data there. A
//! tensor whose data stayed in the graph (`raw_data` set or a typed field non-empty, a
//! non-empty `value_floats`/`value_ints` list) is not a slot and has no record.
use super::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, SparseTensorProto, TensorProto,
};
use crate::error::{Error, Result};

/// A place holding tensor data.
pub enum SlotMut<'a> {
    Tensor(&'a mut TensorProto),
    /// `value_floats` of a `Constant` node: a 1-D float tensor.
    Floats(&'a mut Vec<f32>),
    /// `value_ints` of a `Constant` node: a 1-D int64 tensor.
    Ints(&'a mut Vec<i64>),
}

type Visitor<'f> = dyn FnMut(String, SlotMut<'_>) -> Result<()> + 'f;

/// Visits every place of `model` that can hold tensor data, in walk order, with its name: for
/// the value of a `Constant` node, the node's output name (the name the graph uses for it);
/// otherwise the tensor's own name, else a name derived from the node output or graph part
/// holding it.
pub fn walk(model: &mut ModelProto, max_depth: u32, f: &mut Visitor<'_>) -> Result<()> {
    walk_with(model, max_depth, false, f)
}

/// Visits the slots of a lifted model (spec §5.2): the places of [`walk`] that hold no data.
/// Fails on a tensor that holds data and also names external data.
pub fn walk_slots(model: &mut ModelProto, max_depth: u32, f: &mut Visitor<'_>) -> Result<()> {
    walk_with(model, max_depth, true, f)
}

/// Whether a tensor holds data in the model itself: `raw_data` set (even empty) or a typed
/// field non-empty.
pub fn holds_data(t: &TensorProto) -> bool {
    t.raw_data.is_some()
        || !t.float_data.is_empty()
        || !t.int32_data.is_empty()
        || !t.string_data.is_empty()
        || !t.int64_data.is_empty()
        || !t.double_data.is_empty()
        || !t.uint64_data.is_empty()
}

fn walk_with(
    model: &mut ModelProto,
    max_depth: u32,
    slots_only: bool,
    f: &mut Visitor<'_>,
) -> Result<()> {
    let w = &mut Walker {
        max_depth,
        slots_only,
        f,
    };
    if let Some(g) = model.graph.as_mut() {
        w.graph(g, 1)?;
    }
    for t in &mut model.training_info {
        if let Some(g) = t.initialization.as_mut() {
            w.graph(g, 1)?;
        }
        if let Some(g) = t.algorithm.as_mut() {
            w.graph(g, 1)?;
        }
    }
    for func in &mut model.functions {
        let fname = func.name.clone().unwrap_or_default();
        for node in &mut func.node {
            w.node(node, 1)?;
        }
        for a in &mut func.attribute_proto {
            w.attribute(
                a,
                &format!("{fname}.{}", a.name.clone().unwrap_or_default()),
                false,
                1,
            )?;
        }
    }
    Ok(())
}

struct Walker<'a, 'f> {
    max_depth: u32,
    slots_only: bool,
    f: &'a mut Visitor<'f>,
}

fn display(t: &TensorProto, fallback: &str) -> String {
    match t.name.as_deref() {
        Some(n) if !n.is_empty() => n.to_owned(),
        _ => fallback.to_owned(),
    }
}

impl Walker<'_, '_> {
    fn tensor(&mut self, t: &mut TensorProto, fallback: &str) -> Result<()> {
        let name = display(t, fallback);
        self.tensor_named(t, name)
    }

    fn tensor_named(&mut self, t: &mut TensorProto, name: String) -> Result<()> {
        if self.slots_only && holds_data(t) {
            if t.data_location == Some(1) {
                return Err(Error::input(
                    Some(&name),
                    "tensor holds data in the graph and also names external data",
                ));
            }
            return Ok(());
        }
        (self.f)(name, SlotMut::Tensor(t))
    }

    fn sparse(&mut self, s: &mut SparseTensorProto, fallback: &str) -> Result<()> {
        let base = s
            .values
            .as_ref()
            .map(|v| display(v, fallback))
            .unwrap_or_else(|| fallback.to_owned());
        if let Some(v) = s.values.as_mut() {
            self.tensor(v, &format!("{base}.values"))?;
        }
        if let Some(i) = s.indices.as_mut() {
            self.tensor(i, &format!("{base}.indices"))?;
        }
        Ok(())
    }

    fn graph(&mut self, g: &mut GraphProto, depth: u32) -> Result<()> {
        if depth > self.max_depth {
            return Err(Error::input(
                None,
                format!("subgraphs nested deeper than {}", self.max_depth),
            ));
        }
        let gname = g.name.clone().unwrap_or_default();
        for (i, t) in g.initializer.iter_mut().enumerate() {
            self.tensor(t, &format!("{gname}.initializer[{i}]"))?;
        }
        for (i, s) in g.sparse_initializer.iter_mut().enumerate() {
            self.sparse(s, &format!("{gname}.sparse_initializer[{i}]"))?;
        }
        for node in &mut g.node {
            self.node(node, depth)?;
        }
        Ok(())
    }

    fn node(&mut self, node: &mut NodeProto, depth: u32) -> Result<()> {
        let base = node
            .output
            .first()
            .filter(|o| !o.is_empty())
            .cloned()
            .or_else(|| node.name.clone())
            .unwrap_or_default();
        let is_constant = node.op_type.as_deref() == Some("Constant")
            && matches!(node.domain.as_deref(), None | Some("") | Some("ai.onnx"));
        for a in &mut node.attribute {
            self.attribute(a, &base, is_constant, depth)?;
        }
        Ok(())
    }

    fn attribute(
        &mut self,
        a: &mut AttributeProto,
        base: &str,
        is_constant: bool,
        depth: u32,
    ) -> Result<()> {
        let aname = a.name.clone().unwrap_or_default();
        let fallback = if is_constant {
            base.to_owned()
        } else {
            format!("{base}.{aname}")
        };
        if let Some(t) = a.t.as_mut() {
            if is_constant && !base.is_empty() {
                // A Constant's value is known to the graph by the node's output name.
                self.tensor_named(t, base.to_owned())?;
            } else {
                self.tensor(t, &fallback)?;
            }
        }
        for (i, t) in a.tensors.iter_mut().enumerate() {
            self.tensor(t, &format!("{fallback}[{i}]"))?;
        }
        if let Some(s) = a.sparse_tensor.as_mut() {
            self.sparse(s, &fallback)?;
        }
        for (i, s) in a.sparse_tensors.iter_mut().enumerate() {
            self.sparse(s, &format!("{fallback}[{i}]"))?;
        }
        if let Some(g) = a.g.as_mut() {
            self.graph(g, depth + 1)?;
        }
        for g in &mut a.graphs {
            self.graph(g, depth + 1)?;
        }
        let lifted = |v: bool| !self.slots_only || v;
        if is_constant {
            match aname.as_str() {
                "value_floats" if lifted(a.floats.is_empty()) => {
                    (self.f)(fallback, SlotMut::Floats(&mut a.floats))?
                }
                "value_ints" if lifted(a.ints.is_empty()) => {
                    (self.f)(fallback, SlotMut::Ints(&mut a.ints))?
                }
                _ => {}
            }
        }
        Ok(())
    }
}
