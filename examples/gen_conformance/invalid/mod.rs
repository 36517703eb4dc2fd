//! The invalid vectors: each is a valid vector changed at one structure, with every CRC that
//! covers the change recomputed, so that the first rule a decoder finds broken (in the check
//! orders of spec §3, §4.1, §5.1, §6.1, §6.3, §7.6, §8.2) is the one the file is named after.
//! One module per layer of the format: `file` (§3, §4, §8), `tensor` (§5, §6, §7.6.2
//! parameters), `payload` (§7).
#[path = "file.rs"]
mod file;
#[path = "payload.rs"]
mod payload;
#[path = "tensor.rs"]
mod tensor;

use std::collections::BTreeMap;

use nnc::container::record::PREFIX_LEN;
use nnc::quant::{Kind, QuantParams};
use prost::Message;

use super::container::{NncFile, RawHeader, Rec};
use super::edits::*;
use super::inspect::Body;
use super::onnx::*;

pub struct Invalid {
    pub name: String,
    /// `FormatRule::name()` of the error, or "limit".
    pub expected: &'static str,
    pub sections: Vec<&'static str>,
    pub description: String,
    /// The valid vector it was made from ("" when built from scratch).
    pub base: &'static str,
    pub bytes: Vec<u8>,
    /// "model": decoding to a self-contained model fails; "files": decoding with external
    /// data written to files fails (the rule applies only there).
    pub decode: &'static str,
}

struct Out<'a> {
    valid: &'a BTreeMap<String, Vec<u8>>,
    v: Vec<Invalid>,
}

impl Out<'_> {
    fn file(&self, base: &str) -> NncFile {
        NncFile::parse(self.bytes(base))
    }
    fn bytes(&self, base: &str) -> &[u8] {
        self.valid
            .get(base)
            .unwrap_or_else(|| panic!("no valid case {base}"))
    }
    fn add(
        &mut self,
        name: &str,
        expected: &'static str,
        sections: &[&'static str],
        base: &'static str,
        description: &str,
        bytes: Vec<u8>,
    ) {
        assert!(
            name.starts_with(expected),
            "invalid case {name} must be named for its rule {expected}"
        );
        self.v.push(Invalid {
            name: name.into(),
            expected,
            sections: sections.to_vec(),
            description: description.into(),
            base,
            bytes,
            decode: "model",
        });
    }
}

/// The spec §13 example: GRAPH, TENSOR "k" (INT64 raw), TENSOR "c" (FLOAT planes), INDEX.
const EX: &str = "spec-example";
const GRAPH: usize = 0;
const K: usize = 1;
const C: usize = 2;
const INDEX: usize = 3;

pub fn cases(valid: &BTreeMap<String, Vec<u8>>) -> Vec<Invalid> {
    let mut o = Out {
        valid,
        v: Vec::new(),
    };
    file::file_header(&mut o);
    file::records(&mut o);
    file::order(&mut o);
    tensor::graph_record(&mut o);
    tensor::tensor_header(&mut o);
    tensor::slots(&mut o);
    tensor::quant_params(&mut o);
    payload::payloads(&mut o);
    payload::models_and_chunks(&mut o);
    payload::classes(&mut o);
    payload::wide_classes(&mut o);
    payload::split_levels(&mut o);
    payload::zstd_and_quant_payloads(&mut o);
    file::index_and_trailer(&mut o);
    tensor::order_and_overlap(&mut o);
    o.v
}
