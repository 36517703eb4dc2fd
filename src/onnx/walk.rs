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
//! Names are [`Name`]s: the pieces of the spec's name (a graph name, a literal, an index),
//! rendered only when a visitor asks, so that a walk that counts slots or checks lengths
//! costs time linear in the graph whatever the names (spec §11, CPU).
//!
//! [`walk`] visits every such place of a model (the encoder's view of its input);
//! [`walk_slots`] only the *slots* of a lifted model: places that hold no data there. A
//! tensor whose data stayed in the graph (`raw_data` set or a typed field non-empty, a
//! non-empty `value_floats`/`value_ints` list) is not a slot and has no record.
use std::fmt;

use super::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, SparseTensorProto, TensorProto,
};
use crate::error::{Error, Result};

/// A place holding tensor data.
pub enum SlotMut<'a> {
    /// A `TensorProto`. Its `name` field reads as absent during the visit: the walk lends it
    /// to the visitor as the slot's [`Name`].
    Tensor(&'a mut TensorProto),
    /// `value_floats` of a `Constant` node: a 1-D float tensor.
    Floats(&'a mut Vec<f32>),
    /// `value_ints` of a `Constant` node: a 1-D int64 tensor.
    Ints(&'a mut Vec<i64>),
}

/// One piece of a name: a string of the model, or a decimal index in brackets (`[i]`).
#[derive(Clone, Copy, Debug)]
enum Part<'a> {
    Str(&'a str),
    Index(usize),
}

const MAX_PARTS: usize = 8;

/// The name the walk gives a place (spec §5.2), kept as the pieces it is made of: its length
/// and comparisons cost nothing to allocate; `to_string` renders it.
#[derive(Clone, Copy, Debug)]
pub struct Name<'a> {
    parts: [Part<'a>; MAX_PARTS],
    n: usize,
}

impl<'a> Name<'a> {
    fn new(s: &'a str) -> Self {
        Name {
            parts: [Part::Str(""); MAX_PARTS],
            n: 1,
        }
        .with_first(s)
    }
    fn with_first(mut self, s: &'a str) -> Self {
        self.parts[0] = Part::Str(s);
        self
    }
    fn push(mut self, p: Part<'a>) -> Self {
        // The walk never nests more than MAX_PARTS pieces (function attribute, list index,
        // sparse part: 7); a longer name would be a bug of the walk, not of the input.
        if self.n < MAX_PARTS {
            self.parts[self.n] = p;
            self.n += 1;
        }
        self
    }
    fn plus(self, s: &'a str) -> Self {
        self.push(Part::Str(s))
    }
    fn index(self, i: usize) -> Self {
        self.push(Part::Index(i))
    }
    /// Length in bytes of the rendered name.
    pub fn len(&self) -> usize {
        self.parts[..self.n]
            .iter()
            .map(|p| match p {
                Part::Str(s) => s.len(),
                Part::Index(i) => 2 + decimal_len(*i),
            })
            .sum()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Whether the rendered name is `other`, byte for byte (no allocation).
    pub fn eq_str(&self, other: &str) -> bool {
        let mut rest = other.as_bytes();
        let mut buf = [0u8; 24];
        for p in &self.parts[..self.n] {
            let piece: &[u8] = match p {
                Part::Str(s) => s.as_bytes(),
                Part::Index(i) => render_index(*i, &mut buf),
            };
            match rest.strip_prefix(piece) {
                Some(r) => rest = r,
                None => return false,
            }
        }
        rest.is_empty()
    }
    /// The rendered name, or `None` when it is longer than `max` bytes or memory for it cannot
    /// be had (nothing is allocated then).
    pub fn to_string_within(&self, max: usize) -> Option<String> {
        let len = self.len();
        if len > max {
            return None;
        }
        let mut s = String::new();
        s.try_reserve_exact(len).ok()?;
        use fmt::Write;
        write!(s, "{self}").ok()?;
        Some(s)
    }
}

fn decimal_len(mut i: usize) -> usize {
    let mut n = 1;
    while i >= 10 {
        i /= 10;
        n += 1;
    }
    n
}

fn render_index(i: usize, buf: &mut [u8; 24]) -> &[u8] {
    let mut pos = buf.len();
    pos -= 1;
    buf[pos] = b']';
    let mut v = i;
    loop {
        pos -= 1;
        buf[pos] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    pos -= 1;
    buf[pos] = b'[';
    &buf[pos..]
}

impl fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.parts[..self.n] {
            match p {
                Part::Str(s) => f.write_str(s)?,
                Part::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

type Visitor<'f> = dyn FnMut(Name<'_>, SlotMut<'_>) -> Result<()> + 'f;

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
        let fname = func.name.as_deref().unwrap_or_default();
        for node in &mut func.node {
            w.node(node, 1)?;
        }
        for a in &mut func.attribute_proto {
            let aname = a.name.take();
            let base = Name::new(fname)
                .plus(".")
                .plus(aname.as_deref().unwrap_or_default());
            let r = w.attribute(a, aname.as_deref().unwrap_or_default(), base, false, 1);
            a.name = aname;
            r?;
        }
    }
    Ok(())
}

struct Walker<'a, 'f> {
    max_depth: u32,
    slots_only: bool,
    f: &'a mut Visitor<'f>,
}

impl Walker<'_, '_> {
    /// TENSOR(t, fallback): named `t.name` if present and not empty, else `fallback`.
    fn tensor(&mut self, t: &mut TensorProto, fallback: Name<'_>) -> Result<()> {
        let own = t.name.take();
        let r = match own.as_deref() {
            Some(n) if !n.is_empty() => self.tensor_named(t, Name::new(n)),
            _ => self.tensor_named(t, fallback),
        };
        t.name = own;
        r
    }

    fn tensor_named(&mut self, t: &mut TensorProto, name: Name<'_>) -> Result<()> {
        if self.slots_only && holds_data(t) {
            if t.data_location == Some(1) {
                return Err(Error::input(
                    name.to_string_within(1 << 16).as_deref(),
                    "tensor holds data in the graph and also names external data",
                ));
            }
            return Ok(());
        }
        (self.f)(name, SlotMut::Tensor(t))
    }

    fn sparse(&mut self, s: &mut SparseTensorProto, fallback: Name<'_>) -> Result<()> {
        if let Some(v) = s.values.as_mut() {
            let own = v.name.take();
            let name = match own.as_deref() {
                Some(n) if !n.is_empty() => Name::new(n),
                _ => fallback.plus(".values"),
            };
            let r = self.tensor_named(v, name);
            v.name = own;
            r?;
        }
        let base = match s.values.as_ref().and_then(|v| v.name.as_deref()) {
            Some(n) if !n.is_empty() => Name::new(n),
            _ => fallback,
        };
        if let Some(i) = s.indices.as_mut() {
            self.tensor(i, base.plus(".indices"))?;
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
        let gname = g.name.as_deref().unwrap_or_default();
        for (i, t) in g.initializer.iter_mut().enumerate() {
            self.tensor(t, Name::new(gname).plus(".initializer").index(i))?;
        }
        for (i, s) in g.sparse_initializer.iter_mut().enumerate() {
            self.sparse(s, Name::new(gname).plus(".sparse_initializer").index(i))?;
        }
        for node in &mut g.node {
            self.node(node, depth)?;
        }
        Ok(())
    }

    fn node(&mut self, node: &mut NodeProto, depth: u32) -> Result<()> {
        let base = match node.output.first() {
            Some(o) if !o.is_empty() => o.as_str(),
            _ => node.name.as_deref().unwrap_or_default(),
        };
        let is_constant = node.op_type.as_deref() == Some("Constant")
            && matches!(node.domain.as_deref(), None | Some("") | Some("ai.onnx"));
        for a in &mut node.attribute {
            let aname = a.name.take();
            let r = self.attribute(
                a,
                aname.as_deref().unwrap_or_default(),
                Name::new(base),
                is_constant,
                depth,
            );
            a.name = aname;
            r?;
        }
        Ok(())
    }

    /// ATTRIBUTE(a, base, constant, depth) of spec §5.2; `a.name` is lent as `aname`.
    fn attribute(
        &mut self,
        a: &mut AttributeProto,
        aname: &str,
        base: Name<'_>,
        is_constant: bool,
        depth: u32,
    ) -> Result<()> {
        let fallback = if is_constant {
            base
        } else {
            base.plus(".").plus(aname)
        };
        if let Some(t) = a.t.as_mut() {
            if is_constant && !base.is_empty() {
                // A Constant's value is known to the graph by the node's output name.
                let own = t.name.take();
                let r = self.tensor_named(t, base);
                t.name = own;
                r?;
            } else {
                self.tensor(t, fallback)?;
            }
        }
        for (i, t) in a.tensors.iter_mut().enumerate() {
            self.tensor(t, fallback.index(i))?;
        }
        if let Some(s) = a.sparse_tensor.as_mut() {
            self.sparse(s, fallback)?;
        }
        for (i, s) in a.sparse_tensors.iter_mut().enumerate() {
            self.sparse(s, fallback.index(i))?;
        }
        if let Some(g) = a.g.as_mut() {
            self.graph(g, depth + 1)?;
        }
        for g in &mut a.graphs {
            self.graph(g, depth + 1)?;
        }
        let lifted = |v: bool| !self.slots_only || v;
        if is_constant {
            match aname {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_render_measure_and_compare_alike() {
        let n = Name::new("g")
            .plus(".initializer")
            .index(12)
            .plus(".values");
        assert_eq!(n.to_string(), "g.initializer[12].values");
        assert_eq!(n.len(), "g.initializer[12].values".len());
        assert!(n.eq_str("g.initializer[12].values"));
        assert!(!n.eq_str("g.initializer[12].value"));
        assert!(!n.eq_str("g.initializer[12].valuesx"));
        assert_eq!(n.to_string_within(5), None);
        let z = Name::new("").index(0);
        assert_eq!((z.to_string().as_str(), z.len()), ("[0]", 3));
        assert!(Name::new("").is_empty());
    }
}
