//! A census of a serialized `ModelProto` on the protobuf wire format, before it is parsed
//! (spec §5.1 step 5, §10 `graph memory`): how many messages, strings and repeated values
//! the parse would build, and an upper bound of the memory they take. Protobuf messages cost
//! far more in memory than on disk (an empty attribute is 2 bytes in the file and a few
//! hundred in memory), so the bytes of a graph say little about what parsing it allocates;
//! the census says it in one linear pass that allocates nothing, and stops as soon as the
//! estimate passes the caller's budget.
//!
//! The table of messages below follows `proto.rs` (the prost types of `onnx-ml.proto`):
//! for each message, each field number with what it holds. It was written from `proto.rs`
//! and is checked against prost by the tests of `tests/hostile.rs`, which count what parsing
//! really allocates.
use std::mem::size_of;

use super::proto;

/// What a field of a message holds, as far as memory goes.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// A number, a bool or an enum: no memory of its own.
    Scalar,
    /// A string or bytes field.
    Bytes,
    /// Repeated strings or bytes.
    RepeatedBytes,
    /// A message (index into `MESSAGES`).
    Message(usize),
    /// Repeated messages.
    RepeatedMessage(usize),
    /// Repeated varint-coded numbers of this many bytes in memory (packed or not).
    RepeatedVarint(usize),
    /// Repeated floats (fixed 32 bits).
    RepeatedFixed32,
    /// Repeated doubles (fixed 64 bits).
    RepeatedFixed64,
}

struct Message {
    #[allow(dead_code)]
    name: &'static str,
    size: usize,
    fields: &'static [(u32, Kind)],
}

const MODEL: usize = 9;
const TENSOR: usize = 14;
/// `TensorProto.raw_data`.
pub const RAW_DATA_FIELD: u32 = 9;

#[rustfmt::skip]
static MESSAGES: [Message; 28] = [
    // 0
    Message { name: "AttributeProto", size: size_of::<proto::AttributeProto>(), fields: &[(1, Kind::Bytes), (2, Kind::Scalar), (3, Kind::Scalar), (4, Kind::Bytes), (5, Kind::Message(14)), (6, Kind::Message(13)), (7, Kind::RepeatedFixed32), (8, Kind::RepeatedVarint(8)), (9, Kind::RepeatedBytes), (10, Kind::RepeatedMessage(14)), (11, Kind::RepeatedMessage(13)), (13, Kind::Bytes), (14, Kind::Message(19)), (15, Kind::RepeatedMessage(19)), (20, Kind::Scalar), (21, Kind::Bytes), (22, Kind::Message(16)), (23, Kind::RepeatedMessage(16))] },
    // 1
    Message { name: "ValueInfoProto", size: size_of::<proto::ValueInfoProto>(), fields: &[(1, Kind::Bytes), (2, Kind::Message(19)), (3, Kind::Bytes), (4, Kind::RepeatedMessage(11))] },
    // 2
    Message { name: "NodeProto", size: size_of::<proto::NodeProto>(), fields: &[(1, Kind::RepeatedBytes), (2, Kind::RepeatedBytes), (3, Kind::Bytes), (4, Kind::Bytes), (5, Kind::RepeatedMessage(0)), (6, Kind::Bytes), (7, Kind::Bytes), (8, Kind::Bytes), (9, Kind::RepeatedMessage(11)), (10, Kind::RepeatedMessage(4))] },
    // 3
    Message { name: "IntIntListEntryProto", size: size_of::<proto::IntIntListEntryProto>(), fields: &[(1, Kind::Scalar), (2, Kind::RepeatedVarint(8))] },
    // 4
    Message { name: "NodeDeviceConfigurationProto", size: size_of::<proto::NodeDeviceConfigurationProto>(), fields: &[(1, Kind::Bytes), (2, Kind::RepeatedMessage(5)), (3, Kind::Scalar)] },
    // 5
    Message { name: "ShardingSpecProto", size: size_of::<proto::ShardingSpecProto>(), fields: &[(1, Kind::Bytes), (2, Kind::RepeatedVarint(8)), (3, Kind::RepeatedMessage(3)), (4, Kind::RepeatedMessage(6))] },
    // 6
    Message { name: "ShardedDimProto", size: size_of::<proto::ShardedDimProto>(), fields: &[(1, Kind::Scalar), (2, Kind::RepeatedMessage(7))] },
    // 7
    Message { name: "SimpleShardedDimProto", size: size_of::<proto::SimpleShardedDimProto>(), fields: &[(1, Kind::Scalar), (2, Kind::Bytes), (3, Kind::Scalar)] },
    // 8
    Message { name: "TrainingInfoProto", size: size_of::<proto::TrainingInfoProto>(), fields: &[(1, Kind::Message(13)), (2, Kind::Message(13)), (3, Kind::RepeatedMessage(11)), (4, Kind::RepeatedMessage(11))] },
    // 9
    Message { name: "ModelProto", size: size_of::<proto::ModelProto>(), fields: &[(1, Kind::Scalar), (2, Kind::Bytes), (3, Kind::Bytes), (4, Kind::Bytes), (5, Kind::Scalar), (6, Kind::Bytes), (7, Kind::Message(13)), (8, Kind::RepeatedMessage(26)), (14, Kind::RepeatedMessage(11)), (20, Kind::RepeatedMessage(8)), (25, Kind::RepeatedMessage(27)), (26, Kind::RepeatedMessage(10))] },
    // 10
    Message { name: "DeviceConfigurationProto", size: size_of::<proto::DeviceConfigurationProto>(), fields: &[(1, Kind::Bytes), (2, Kind::Scalar), (3, Kind::RepeatedBytes)] },
    // 11
    Message { name: "StringStringEntryProto", size: size_of::<proto::StringStringEntryProto>(), fields: &[(1, Kind::Bytes), (2, Kind::Bytes)] },
    // 12
    Message { name: "TensorAnnotation", size: size_of::<proto::TensorAnnotation>(), fields: &[(1, Kind::Bytes), (2, Kind::RepeatedMessage(11))] },
    // 13
    Message { name: "GraphProto", size: size_of::<proto::GraphProto>(), fields: &[(1, Kind::RepeatedMessage(2)), (2, Kind::Bytes), (5, Kind::RepeatedMessage(14)), (10, Kind::Bytes), (11, Kind::RepeatedMessage(1)), (12, Kind::RepeatedMessage(1)), (13, Kind::RepeatedMessage(1)), (14, Kind::RepeatedMessage(12)), (15, Kind::RepeatedMessage(16)), (16, Kind::RepeatedMessage(11))] },
    // 14
    Message { name: "TensorProto", size: size_of::<proto::TensorProto>(), fields: &[(1, Kind::RepeatedVarint(8)), (2, Kind::Scalar), (3, Kind::Message(15)), (4, Kind::RepeatedFixed32), (5, Kind::RepeatedVarint(4)), (6, Kind::RepeatedBytes), (7, Kind::RepeatedVarint(8)), (8, Kind::Bytes), (9, Kind::Bytes), (10, Kind::RepeatedFixed64), (11, Kind::RepeatedVarint(8)), (12, Kind::Bytes), (13, Kind::RepeatedMessage(11)), (14, Kind::Scalar), (16, Kind::RepeatedMessage(11))] },
    // 15
    Message { name: "tensor_proto::Segment", size: size_of::<proto::tensor_proto::Segment>(), fields: &[(1, Kind::Scalar), (2, Kind::Scalar)] },
    // 16
    Message { name: "SparseTensorProto", size: size_of::<proto::SparseTensorProto>(), fields: &[(1, Kind::Message(14)), (2, Kind::Message(14)), (3, Kind::RepeatedVarint(8))] },
    // 17
    Message { name: "TensorShapeProto", size: size_of::<proto::TensorShapeProto>(), fields: &[(1, Kind::RepeatedMessage(18))] },
    // 18
    Message { name: "tensor_shape_proto::Dimension", size: size_of::<proto::tensor_shape_proto::Dimension>(), fields: &[(1, Kind::Scalar), (2, Kind::Bytes), (3, Kind::Bytes)] },
    // 19
    Message { name: "TypeProto", size: size_of::<proto::TypeProto>(), fields: &[(1, Kind::Message(20)), (4, Kind::Message(21)), (5, Kind::Message(22)), (6, Kind::Bytes), (7, Kind::Message(25)), (8, Kind::Message(24)), (9, Kind::Message(23))] },
    // 20
    Message { name: "type_proto::Tensor", size: size_of::<proto::type_proto::Tensor>(), fields: &[(1, Kind::Scalar), (2, Kind::Message(17))] },
    // 21
    Message { name: "type_proto::Sequence", size: size_of::<proto::type_proto::Sequence>(), fields: &[(1, Kind::Message(19))] },
    // 22
    Message { name: "type_proto::Map", size: size_of::<proto::type_proto::Map>(), fields: &[(1, Kind::Scalar), (2, Kind::Message(19))] },
    // 23
    Message { name: "type_proto::Optional", size: size_of::<proto::type_proto::Optional>(), fields: &[(1, Kind::Message(19))] },
    // 24
    Message { name: "type_proto::SparseTensor", size: size_of::<proto::type_proto::SparseTensor>(), fields: &[(1, Kind::Scalar), (2, Kind::Message(17))] },
    // 25
    Message { name: "type_proto::Opaque", size: size_of::<proto::type_proto::Opaque>(), fields: &[(1, Kind::Bytes), (2, Kind::Bytes)] },
    // 26
    Message { name: "OperatorSetIdProto", size: size_of::<proto::OperatorSetIdProto>(), fields: &[(1, Kind::Bytes), (2, Kind::Scalar)] },
    // 27
    Message { name: "FunctionProto", size: size_of::<proto::FunctionProto>(), fields: &[(1, Kind::Bytes), (4, Kind::RepeatedBytes), (5, Kind::RepeatedBytes), (6, Kind::RepeatedBytes), (7, Kind::RepeatedMessage(2)), (8, Kind::Bytes), (9, Kind::RepeatedMessage(26)), (10, Kind::Bytes), (11, Kind::RepeatedMessage(0)), (12, Kind::RepeatedMessage(1)), (13, Kind::Bytes), (14, Kind::RepeatedMessage(11))] },
];

/// Each message and repeated value is counted this many times its size: a vector that
/// doubles holds its old and its new buffer while it moves.
const GROWTH: u64 = 3;
/// Memory the allocator spends on one allocation besides its bytes (an estimate).
const ALLOC_OVERHEAD: u64 = 16;
/// Deepest nesting of messages the census (and `prost`, whose recursion limit this is)
/// accepts.
pub const MAX_NESTING: u32 = 100;

/// What a census found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Census {
    /// Messages, counting the model itself.
    pub messages: u64,
    /// Upper bound of the bytes the parsed model takes in memory (prost types; every
    /// message and repeated value counted at three times its size: a vector that doubles
    /// holds the old and the new buffer at once).
    pub memory: u64,
}

/// Why a census stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CensusError {
    /// The estimate passed the budget after `at` bytes.
    Budget { memory: u64, at: usize },
    /// The bytes are not a protobuf message of this schema.
    Malformed { at: usize, detail: &'static str },
}

/// Counts what parsing `bytes` as a `ModelProto` would build; fails as soon as the memory
/// estimate passes `budget`. Linear in `bytes.len()`, allocates nothing.
pub fn census(bytes: &[u8], budget: u64) -> Result<Census, CensusError> {
    let mut c = Counter {
        bytes,
        budget,
        census: Census {
            messages: 1,
            memory: MESSAGES[MODEL].size as u64 + bytes.len() as u64,
        },
    };
    c.charge(0, 0)?;
    c.message(MODEL, 0, bytes.len(), 1)?;
    Ok(c.census)
}

struct Counter<'a> {
    bytes: &'a [u8],
    budget: u64,
    census: Census,
}

fn malformed(at: usize, detail: &'static str) -> CensusError {
    CensusError::Malformed { at, detail }
}

impl Counter<'_> {
    fn charge(&mut self, bytes: u64, at: usize) -> Result<(), CensusError> {
        self.census.memory = self.census.memory.saturating_add(bytes);
        if self.census.memory > self.budget {
            return Err(CensusError::Budget {
                memory: self.census.memory,
                at,
            });
        }
        Ok(())
    }

    fn varint(&self, pos: &mut usize, end: usize) -> Result<u64, CensusError> {
        let start = *pos;
        let mut v = 0u64;
        for i in 0..10 {
            if *pos >= end {
                return Err(malformed(start, "varint cut off"));
            }
            let b = self.bytes[*pos];
            *pos += 1;
            if i == 9 && b > 1 {
                return Err(malformed(start, "varint over 64 bits"));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(malformed(start, "varint longer than 10 bytes"))
    }

    /// The message of type `m` in `bytes[start..end]`, at nesting `depth`.
    fn message(
        &mut self,
        m: usize,
        start: usize,
        end: usize,
        depth: u32,
    ) -> Result<(), CensusError> {
        if depth > MAX_NESTING {
            return Err(malformed(start, "messages nested deeper than 100"));
        }
        let mut pos = start;
        while pos < end {
            let at = pos;
            let key = self.varint(&mut pos, end)?;
            let field = key >> 3;
            if field == 0 || field > u32::MAX as u64 >> 3 {
                return Err(malformed(at, "field number 0 or above 2^29 - 1"));
            }
            let kind = MESSAGES[m]
                .fields
                .iter()
                .find(|(f, _)| *f as u64 == field)
                .map(|&(_, k)| k);
            match key & 7 {
                0 => {
                    self.varint(&mut pos, end)?;
                    match kind {
                        Some(Kind::RepeatedVarint(size)) => {
                            self.charge(GROWTH * size as u64, at)?
                        }
                        Some(Kind::Scalar) | None => {}
                        Some(_) => return Err(malformed(at, "wrong wire type for the field")),
                    }
                }
                1 | 5 => {
                    let n = if key & 7 == 1 { 8 } else { 4 };
                    if end - pos < n {
                        return Err(malformed(at, "fixed-width value cut off"));
                    }
                    pos += n;
                    match kind {
                        Some(Kind::RepeatedFixed32) => self.charge(GROWTH * 4, at)?,
                        Some(Kind::RepeatedFixed64) => self.charge(GROWTH * 8, at)?,
                        Some(Kind::Scalar) | None => {}
                        Some(_) => return Err(malformed(at, "wrong wire type for the field")),
                    }
                }
                2 => {
                    let len = self.varint(&mut pos, end)?;
                    if len > (end - pos) as u64 {
                        return Err(malformed(at, "length-delimited field cut off"));
                    }
                    let body = pos;
                    pos += len as usize;
                    match kind {
                        None => {}
                        Some(Kind::Scalar) => {
                            // A packed scalar where prost expects one value: prost rejects it.
                            return Err(malformed(at, "wrong wire type for the field"));
                        }
                        Some(Kind::Bytes) => self.charge(len + ALLOC_OVERHEAD, at)?,
                        Some(Kind::RepeatedBytes) => self.charge(
                            len + ALLOC_OVERHEAD + GROWTH * size_of::<Vec<u8>>() as u64,
                            at,
                        )?,
                        Some(Kind::Message(t)) | Some(Kind::RepeatedMessage(t)) => {
                            self.census.messages += 1;
                            self.charge(GROWTH * MESSAGES[t].size as u64 + ALLOC_OVERHEAD, at)?;
                            self.message(t, body, pos, depth + 1)?;
                        }
                        Some(Kind::RepeatedVarint(size)) => {
                            let n = self.bytes[body..pos]
                                .iter()
                                .filter(|&&b| b & 0x80 == 0)
                                .count();
                            self.charge(GROWTH * (n * size) as u64, at)?
                        }
                        Some(Kind::RepeatedFixed32) | Some(Kind::RepeatedFixed64) => {
                            self.charge(GROWTH * len, at)?
                        }
                    }
                }
                _ => return Err(malformed(at, "group or invalid wire type")),
            }
        }
        Ok(())
    }
}

/// A serialized `ModelProto` with the content of every `TensorProto.raw_data` replaced by
/// its number (8 bytes, little-endian) in `ranges`, the byte ranges of the contents in the
/// input. The encoder parses this small copy and reads tensor data from the input (an
/// mmap) through the ranges, so that it never holds a second copy of the weights.
pub struct Stripped {
    pub bytes: Vec<u8>,
    pub ranges: Vec<(usize, usize)>,
}

/// Strips `bytes` as [`Stripped`] says. Fails on malformed wire data as [`census`] does
/// (call the census first: it bounds what this allocates).
pub fn strip_raw_data(bytes: &[u8]) -> Result<Stripped, CensusError> {
    let mut ranges = Vec::new();
    let mut c = Counter {
        bytes,
        budget: u64::MAX,
        census: Census::default(),
    };
    let out = c.strip(MODEL, 0, bytes.len(), 1, &mut ranges)?;
    Ok(Stripped { bytes: out, ranges })
}

impl Counter<'_> {
    fn strip(
        &mut self,
        m: usize,
        start: usize,
        end: usize,
        depth: u32,
        ranges: &mut Vec<(usize, usize)>,
    ) -> Result<Vec<u8>, CensusError> {
        if depth > MAX_NESTING {
            return Err(malformed(start, "messages nested deeper than 100"));
        }
        let mut out = Vec::new();
        let mut pos = start;
        while pos < end {
            let at = pos;
            let key = self.varint(&mut pos, end)?;
            let field = key >> 3;
            match key & 7 {
                0 => {
                    self.varint(&mut pos, end)?;
                }
                1 | 5 => {
                    let n = if key & 7 == 1 { 8 } else { 4 };
                    if end - pos < n {
                        return Err(malformed(at, "fixed-width value cut off"));
                    }
                    pos += n;
                }
                2 => {
                    let len = self.varint(&mut pos, end)?;
                    if len > (end - pos) as u64 {
                        return Err(malformed(at, "length-delimited field cut off"));
                    }
                    let body = pos;
                    pos += len as usize;
                    let kind = MESSAGES[m]
                        .fields
                        .iter()
                        .find(|(f, _)| *f as u64 == field)
                        .map(|&(_, k)| k);
                    if m == TENSOR && field == RAW_DATA_FIELD as u64 {
                        crate::bytes::put_varint(&mut out, key);
                        crate::bytes::put_varint(&mut out, 8);
                        out.extend_from_slice(&(ranges.len() as u64).to_le_bytes());
                        ranges.push((body, len as usize));
                        continue;
                    }
                    if let Some(Kind::Message(t) | Kind::RepeatedMessage(t)) = kind {
                        let sub = self.strip(t, body, pos, depth + 1, ranges)?;
                        crate::bytes::put_varint(&mut out, key);
                        crate::bytes::put_varint(&mut out, sub.len() as u64);
                        out.extend_from_slice(&sub);
                        continue;
                    }
                }
                _ => return Err(malformed(at, "group or invalid wire type")),
            }
            out.extend_from_slice(&self.bytes[at..pos]);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    #[test]
    fn table_is_sorted_and_complete() {
        for m in MESSAGES.iter() {
            assert!(m.fields.windows(2).all(|w| w[0].0 < w[1].0), "{}", m.name);
        }
        assert_eq!(MESSAGES[MODEL].name, "ModelProto");
        assert_eq!(MESSAGES[TENSOR].name, "TensorProto");
    }

    #[test]
    fn empty_attributes_cost_their_structs() {
        // 1000 empty attributes of one node: 2 bytes each on the wire.
        let node = proto::NodeProto {
            attribute: vec![proto::AttributeProto::default(); 1000],
            ..Default::default()
        };
        let m = proto::ModelProto {
            graph: Some(proto::GraphProto {
                node: vec![node],
                ..Default::default()
            }),
            ..Default::default()
        };
        let b = m.encode_to_vec();
        let c = census(&b, u64::MAX).unwrap();
        assert_eq!(c.messages, 1003);
        assert!(c.memory >= 1000 * size_of::<proto::AttributeProto>() as u64);
        assert!(matches!(
            census(&b, 10_000),
            Err(CensusError::Budget { .. })
        ));
    }

    #[test]
    fn stripping_keeps_everything_but_raw_data() {
        let t = |name: &str, raw: Vec<u8>| proto::TensorProto {
            name: Some(name.into()),
            dims: vec![raw.len() as i64],
            data_type: Some(2),
            raw_data: Some(raw),
            ..Default::default()
        };
        let m = proto::ModelProto {
            graph: Some(proto::GraphProto {
                name: Some("g".into()),
                initializer: vec![t("a", vec![1, 2, 3]), t("b", vec![9; 300])],
                ..Default::default()
            }),
            ..Default::default()
        };
        let b = m.encode_to_vec();
        let s = strip_raw_data(&b).unwrap();
        let mut back = proto::ModelProto::decode(s.bytes.as_slice()).unwrap();
        for t in &mut back.graph.as_mut().unwrap().initializer {
            let id = u64::from_le_bytes(t.raw_data.as_deref().unwrap().try_into().unwrap());
            let (start, len) = s.ranges[id as usize];
            t.raw_data = Some(b[start..start + len].to_vec());
        }
        assert_eq!(back, m);
    }

    #[test]
    fn rejects_what_prost_rejects_and_nesting() {
        assert!(census(&[0x3a, 0x05, 0x00], u64::MAX).is_err()); // graph cut off
        assert!(census(&[0x3b], u64::MAX).is_err()); // group
        let mut g: Vec<u8> = Vec::new();
        for _ in 0..200 {
            // nested: GraphProto{node{attribute{g}}}
            let mut attr = vec![0x32u8];
            put(&mut attr, &g);
            let mut node = vec![0x2au8];
            put(&mut node, &attr);
            let mut graph = vec![0x0au8];
            put(&mut graph, &node);
            g = graph;
        }
        let mut model = vec![0x3au8];
        put(&mut model, &g);
        assert!(matches!(
            census(&model, u64::MAX),
            Err(CensusError::Malformed { .. })
        ));
    }

    fn put(out: &mut Vec<u8>, body: &[u8]) {
        let mut v = body.len() as u64;
        while v >= 0x80 {
            out.push(v as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
        out.extend_from_slice(body);
    }
}
