//! Vectors of the graph and the walk (spec §5): where tensors live, how slots are named.
use super::*;

/// The model of spec §13 (`onnx.helper`, opset 13, IR version 8).
pub(super) fn spec_example() -> Case {
    let mut c = typed("c", dtype::FLOAT, &[2, 3]);
    c.float_data = vec![0.5, -1.0, 2.0, 0.25, 3.0, -0.125];
    let k = raw(
        "k",
        dtype::INT64,
        &[3],
        [1i64, -2, 300]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
    );
    let mut g = graph(
        "g",
        vec![k],
        vec![
            node("Constant", &[], &["c"], vec![attr_t("value", c)]),
            node("Add", &["x", "c"], &["y"], vec![]),
        ],
    );
    g.input.push(value_info("x", 1, &[2, 3]));
    g.output.push(value_info("y", 1, &[2, 3]));
    let mut m = model(g);
    m.ir_version = Some(8);
    m.opset_import[0].version = Some(13);
    m.producer_name = Some(String::new());
    case(
        "spec-example",
        "The example of spec §13.1, byte for byte the file of its hex dump: an INT64 \
         initializer in raw_data (coding raw) and a Constant's FLOAT value in float_data \
         (coding planes: two stored planes, two constant planes).",
        m,
    )
    .sections(&["§13", "§13.1", "§5.2"])
    .facts(&[
        "storage:raw_data",
        "storage:typed",
        "coding:raw",
        "coding:planes",
        "mode:0",
        "mode:1",
    ])
}

pub(super) fn empty_model() -> Case {
    let m = ModelProto {
        ir_version: Some(10),
        producer_name: Some("nnc conformance generator".into()),
        ..Default::default()
    };
    case(
        "empty-model",
        "A ModelProto without a graph: the walk has no slots, the file holds a GRAPH record, \
         no TENSOR record and an INDEX record with zero entries.",
        m,
    )
    .sections(&["§3", "§4.1", "§4.3", "§5.1", "§5.2", "§8.1", "§8.2"])
    .facts(&["tensors:0"])
}

pub(super) fn graph_without_tensors() -> Case {
    let mut g = graph("relu", vec![], vec![node("Relu", &["x"], &["y"], vec![])]);
    g.input.push(value_info("x", 1, &[4]));
    g.output.push(value_info("y", 1, &[4]));
    case(
        "graph-without-tensors",
        "A graph with a node, inputs and outputs but no tensor data anywhere.",
        model(g),
    )
    .sections(&["§5.2"])
    .facts(&["tensors:0"])
}

pub(super) fn names_non_ascii() -> Case {
    let names = [
        "gewicht.gr\u{fc}\u{df}e",                           // Latin-1 range
        "gewicht.gru\u{308}\u{df}e", // the same with a combining diaeresis (NFD)
        "\u{6743}\u{91cd}/\u{5c42}.0", // CJK
        "\u{645}\u{62d}\u{648}\u{644}", // right-to-left
        "emoji.\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}", // ZWJ sequence, 4-byte UTF-8
        "tab\tand\nnewline",
        "",
    ];
    let mut ts: Vec<TensorProto> = names
        .iter()
        .enumerate()
        .map(|(i, n)| raw(n, dtype::UINT8, &[2], vec![i as u8, 0xaa]))
        .collect();
    ts.push(raw(&"\u{3b1}".repeat(500), dtype::UINT8, &[1], vec![1]));
    case(
        "names-non-ascii",
        "Tensor names in UTF-8: accented letters precomposed and decomposed (distinct names), \
         CJK, right-to-left, a 4-byte emoji ZWJ sequence, control characters, an empty name \
         (the slot takes its fallback name) and a 1000-byte name.",
        model(graph("\u{56fe}", ts, vec![])),
    )
    .sections(&["§5.2", "§6.1", "§8.1"])
    .facts(&["non-ascii-name"])
}

pub(super) fn names_fallback() -> Case {
    let mut unnamed = raw("", dtype::UINT8, &[1], vec![1]);
    unnamed.name = None;
    let ts = vec![
        unnamed.clone(),
        raw("dup", dtype::UINT8, &[1], vec![2]),
        raw("dup", dtype::UINT8, &[1], vec![3]),
        unnamed,
    ];
    let mut g = graph("", ts, vec![]);
    g.name = None;
    case(
        "names-fallback",
        "Slots named by the walk's fallbacks: unnamed initializers of an unnamed graph \
         (\".initializer[0]\", \".initializer[3]\") and two initializers with the same name.",
        model(g),
    )
    .sections(&["§5.2"])
}

pub(super) fn subgraphs() -> Case {
    let branch = |tag: &str| {
        graph(
            &format!("{tag}.branch"),
            vec![floats(&format!("{tag}.init"), &[2], &[1.0, 2.0])],
            vec![node(
                "Constant",
                &[],
                &[&format!("{tag}.const")],
                vec![attr_t("value", floats("", &[1], &[3.0]))],
            )],
        )
    };
    let inner_if = node(
        "If",
        &["cond"],
        &["inner.out"],
        vec![
            attr_g("then_branch", branch("inner.then")),
            attr_g("else_branch", branch("inner.else")),
        ],
    );
    let body = graph(
        "loop.body",
        vec![floats("loop.init", &[3], &[4.0, 5.0, 6.0])],
        vec![
            node(
                "Constant",
                &[],
                &["loop.ints"],
                vec![attr_ints("value_ints", &[7, 8])],
            ),
            inner_if,
        ],
    );
    let nodes = vec![
        node(
            "If",
            &["cond"],
            &["if.out"],
            vec![
                attr_g("then_branch", branch("then")),
                attr_g("else_branch", branch("else")),
            ],
        ),
        node(
            "Loop",
            &["n", "cond"],
            &["loop.out"],
            vec![attr_g("body", body)],
        ),
        {
            let mut n = node(
                "Branches",
                &["x"],
                &["multi.out"],
                vec![attr_graphs(
                    "graphs",
                    vec![branch("graphs.0"), branch("graphs.1")],
                )],
            );
            n.domain = Some("com.example".into());
            n
        },
    ];
    case(
        "subgraphs",
        "Tensors inside subgraphs: If branches, a Loop body holding a nested If (depth 3), \
         and a node with a list of graphs; initializers and Constants at every level.",
        model(graph("main", vec![floats("top", &[1], &[0.0])], nodes)),
    )
    .sections(&["§5.2"])
    .facts(&["tensors>=12"])
}

pub(super) fn functions() -> Case {
    let f = FunctionProto {
        name: Some("fn".into()),
        domain: Some("com.example".into()),
        input: vec!["a".into()],
        output: vec!["b".into()],
        attribute_proto: vec![
            attr_t("alpha", floats("", &[2], &[0.5, 0.25])),
            attr_tensors(
                "betas",
                vec![floats("", &[1], &[1.0]), floats("named.beta", &[1], &[2.0])],
            ),
        ],
        node: vec![
            node(
                "Constant",
                &[],
                &["fn.c"],
                vec![attr_t("value", floats("", &[2], &[7.0, 8.0]))],
            ),
            node(
                "Constant",
                &[],
                &["fn.ints"],
                vec![attr_ints("value_ints", &[1, 2])],
            ),
            node("Add", &["a", "fn.c"], &["b"], vec![]),
        ],
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(21),
        }],
        ..Default::default()
    };
    let mut m = model(graph("g", vec![], vec![]));
    m.functions.push(f);
    case(
        "functions",
        "A FunctionProto: Constants in its body, and attribute defaults (attribute_proto) with \
         a tensor and a tensor list, named by the fallback fname.aname.aname.",
        m,
    )
    .sections(&["§5.2"])
}

pub(super) fn training_info() -> Case {
    let mut m = model(graph("g", vec![floats("w", &[2], &[1.0, 2.0])], vec![]));
    m.training_info.push(TrainingInfoProto {
        initialization: Some(graph(
            "init",
            vec![floats("init.w", &[2], &[3.0, 4.0])],
            vec![],
        )),
        algorithm: Some(graph(
            "algo",
            vec![floats("algo.lr", &[], &[0.01])],
            vec![node(
                "Constant",
                &[],
                &["algo.c"],
                vec![attr_floats("value_floats", &[1.0])],
            )],
        )),
        ..Default::default()
    });
    m.training_info.push(TrainingInfoProto {
        initialization: None,
        algorithm: Some(graph(
            "algo2",
            vec![floats("algo2.w", &[1], &[5.0])],
            vec![],
        )),
        ..Default::default()
    });
    case(
        "training-info",
        "Tensors in training_info: an initialization and an algorithm graph, then an \
         algorithm without initialization; walked after the main graph.",
        m,
    )
    .sections(&["§5.2"])
}

pub(super) fn sparse() -> Case {
    let sp = |name: &str, vals: &[f32], idx: &[i64]| SparseTensorProto {
        values: Some(floats(name, &[vals.len() as i64], vals)),
        indices: Some(raw(
            "",
            dtype::INT64,
            &[idx.len() as i64],
            idx.iter().flat_map(|x| x.to_le_bytes()).collect(),
        )),
        dims: vec![10],
    };
    let mut g = graph("g", vec![], vec![]);
    g.sparse_initializer = vec![sp("sp.init", &[1.0, 2.0], &[1, 7]), sp("", &[3.0], &[4])];
    g.sparse_initializer.push(SparseTensorProto {
        values: None,
        indices: Some(raw("", dtype::INT64, &[1], 5i64.to_le_bytes().to_vec())),
        dims: vec![10],
    });
    g.node = vec![
        node(
            "Constant",
            &[],
            &["sp.const"],
            vec![attr_sparse("sparse_value", sp("", &[9.0], &[0]))],
        ),
        node(
            "Foo",
            &[],
            &["sp.list"],
            vec![attr_sparses(
                "many",
                vec![sp("", &[1.5], &[2]), sp("named.sp", &[2.5], &[3])],
            )],
        ),
    ];
    case(
        "sparse",
        "Sparse tensors: sparse_initializer (values then indices), one with unnamed values \
         (fallback names), one without values, a Constant's sparse_value and a node's \
         sparse_tensors list.",
        model(g),
    )
    .sections(&["§5.2"])
}

pub(super) fn attribute_tensors() -> Case {
    let mut no_output = node("Foo", &[], &[], vec![attr_t("t", floats("", &[1], &[1.0]))]);
    no_output.name = Some("named.node".into());
    let anonymous = node(
        "Foo",
        &[],
        &[""],
        vec![attr_t("t", floats("", &[1], &[2.0]))],
    );
    let nodes = vec![
        node(
            "Foo",
            &["x"],
            &["out"],
            vec![
                attr_t("t", floats("", &[2], &[3.0, 4.0])),
                attr_tensors(
                    "ts",
                    vec![floats("", &[1], &[5.0]), floats("named.t", &[1], &[6.0])],
                ),
                attr_int("i", 3),
            ],
        ),
        no_output,
        anonymous,
        node(
            "Constant",
            &[],
            &[""],
            vec![attr_t("value", floats("", &[1], &[7.0]))],
        ),
    ];
    case(
        "attribute-tensors",
        "Tensors in node attributes (t, tensors) of non-Constant nodes, named by fallbacks \
         from the node's output, the node's name, or nothing; a Constant without output.",
        model(graph("g", vec![], nodes)),
    )
    .sections(&["§5.2"])
}
