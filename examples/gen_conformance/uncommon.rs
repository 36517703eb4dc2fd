//! Valid files that a decoder may refuse, but only with a limit error (spec §10): the FLAC
//! test files' `uncommon/` category. Each names the limit the reference decoder reports with
//! its defaults and the raised limits under which it decodes.
use nnc::onnx::dtype;
use nnc::onnx::proto::ModelProto;

use super::onnx::*;

pub struct Uncommon {
    pub name: &'static str,
    pub description: &'static str,
    pub sections: Vec<&'static str>,
    pub model: ModelProto,
    /// The limit error of the reference decoder with `Limits::default()`.
    pub limit: &'static str,
    /// `Limits` fields to raise (name, value) so that the file decodes.
    pub relaxed: Vec<(&'static str, u64)>,
}

pub fn cases() -> Vec<Uncommon> {
    const MIB: usize = 1 << 20;
    let mut doc = model(graph(
        "g",
        vec![raw("x", dtype::UINT8, &[2], vec![1, 2])],
        vec![],
    ));
    doc.doc_string = Some("nnc ".repeat(9 * MIB / 4));
    vec![
        Uncommon {
            name: "expansion-tensor",
            description: "A UINT8 tensor of 9 MiB zeros: one constant stream of 2 bytes. With \
                          the default limits (max_expansion 1024, expansion_slack 8 MiB) the \
                          bytes read allow about 8.2 MiB of decoded data, so the reference \
                          decoder refuses it before decoding the tensor.",
            sections: vec!["§10", "§11", "§7.1"],
            model: model(graph(
                "g",
                vec![raw(
                    "zeros",
                    dtype::UINT8,
                    &[3, 3 * MIB as i64],
                    vec![0; 9 * MIB],
                )],
                vec![],
            )),
            limit: "decoded bytes (expansion over input)",
            relaxed: vec![("max_expansion", 1 << 20)],
        },
        Uncommon {
            name: "expansion-graph",
            description: "A model whose doc_string is 9 MiB of a repeated word: the GRAPH \
                          record's payload is about a kilobyte, its ModelProto 9 MiB; the \
                          expansion rule applies to the graph before it is decompressed.",
            sections: vec!["§5.1", "§10", "§11"],
            model: doc,
            limit: "decoded bytes (expansion over input)",
            relaxed: vec![("max_expansion", 1 << 20)],
        },
        Uncommon {
            name: "expansion-boundary-over",
            description: "valid/expansion-boundary with one more byte of zeros: L + data_bytes \
                          is read x max_expansion + expansion_slack + 1, one byte over the \
                          expansion rule's bound with the default limits.",
            sections: vec!["§10"],
            model: super::valid::expansion_model(1),
            limit: "decoded bytes (expansion over input)",
            relaxed: vec![("max_expansion", 1025)],
        },
        Uncommon {
            name: "graph-memory-empty-attributes",
            description: "A graph of 200 000 empty attributes of one node: 400 KB serialized, \
                          a few hundred bytes compressed, about 1 GB parsed (an empty \
                          AttributeProto takes about 1.6 KB in memory). Valid; the reference \
                          decoder refuses it before parsing with limit graph memory (spec \
                          §5.1 step 5, §10).",
            sections: vec!["§5.1", "§10", "§11"],
            model: {
                let mut n = node("Identity", &["x"], &["y"], vec![]);
                n.attribute = vec![Default::default(); 200_000];
                model(graph("g", vec![], vec![n]))
            },
            limit: "graph memory",
            relaxed: vec![("max_expansion", 1 << 24)],
        },
        Uncommon {
            name: "rank-65",
            description: "A tensor of rank 65 (all dims 1), one more than the default max_dims \
                          (64).",
            sections: vec!["§6.1", "§10"],
            model: model(graph(
                "g",
                vec![raw("deep", dtype::UINT8, &[1; 65], vec![7])],
                vec![],
            )),
            limit: "rank",
            relaxed: vec![("max_dims", 65)],
        },
    ]
}
