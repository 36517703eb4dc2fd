//! The examples of spec §13. §13.1: the ```hex block of `spec/nnc-format.md` must decode
//! with `nnc::Decoder` to exactly the tensors the table beside it lists, and the offsets in
//! its comments must be where the bytes are. §13.2: each quantized case (```hex params and
//! ```hex payload blocks) must decode with `nnc::quant::decode` to the bits and values of its
//! table, the encoder must write the cases the text says it writes, and edits of the cases
//! must be rejected with the error classes of §7.6.2. Keeps the spec's examples and the code
//! in step.
use nnc::container::tensor_header::{Coding, Storage};
use nnc::onnx::dtype;
use nnc::{DecodeOptions, Decoder, EncodeOptions};

fn spec_text() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/spec/nnc-format.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// The lines of the first fenced block tagged `hex`.
fn hex_block(spec: &str) -> Vec<&str> {
    let mut lines = spec.lines();
    lines
        .by_ref()
        .find(|l| l.trim_end() == "```hex")
        .expect("spec has no ```hex block");
    let block: Vec<&str> = lines.take_while(|l| l.trim_end() != "```").collect();
    assert!(!block.is_empty(), "the ```hex block is empty");
    block
}

/// Spec §13 dump format: hex digit pairs, whitespace ignored, `#` to the end of the line is a
/// comment. Also checks that a comment starting with a 4-digit hex offset names the offset of
/// the first byte on its line.
fn parse_hex(block: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, line) in block.iter().enumerate() {
        let (data, comment) = match line.split_once('#') {
            Some((d, c)) => (d, Some(c)),
            None => (*line, None),
        };
        let digits: String = data.chars().filter(|c| !c.is_whitespace()).collect();
        if digits.is_empty() {
            continue;
        }
        if let Some(tok) = comment.and_then(|c| c.split_whitespace().next()) {
            if tok.len() == 4 && tok.chars().all(|c| c.is_ascii_hexdigit()) {
                let at = usize::from_str_radix(tok, 16).unwrap();
                assert_eq!(
                    at,
                    out.len(),
                    "hex block line {}: comment says offset {tok}, the bytes are at {:04x}",
                    n + 1,
                    out.len()
                );
            }
        }
        assert!(
            digits.len().is_multiple_of(2),
            "hex block line {}: odd number of hex digits",
            n + 1
        );
        for i in (0..digits.len()).step_by(2) {
            let pair = &digits[i..i + 2];
            out.push(u8::from_str_radix(pair, 16).unwrap_or_else(|_| {
                panic!("hex block line {}: {pair:?} is not a hex pair", n + 1)
            }));
        }
    }
    out
}

/// One row of the "Decoded tensors" table of §13.
#[derive(Debug)]
struct Row {
    index: usize,
    name: String,
    data_type: i32,
    dims: Vec<u64>,
    storage: u8,
    coding: u8,
    values: Vec<String>,
}

/// The number in parentheses of a cell such as `INT64 (7)`.
fn code_in_parens(cell: &str) -> i64 {
    let inner = cell
        .rsplit_once('(')
        .and_then(|(_, r)| r.split_once(')'))
        .map(|(n, _)| n.trim())
        .unwrap_or_else(|| panic!("table cell {cell:?} has no (code)"));
    inner.parse().unwrap()
}

fn example_table(spec: &str) -> Vec<Row> {
    let section = spec
        .split_once("## 13. Example")
        .expect("spec has no §13")
        .1;
    let table = section
        .split_once("Decoded tensors")
        .expect("§13 has no 'Decoded tensors' table")
        .1;
    let mut rows = Vec::new();
    for line in table.lines().skip_while(|l| !l.starts_with('|')) {
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        let Ok(index) = cells[0].parse::<usize>() else {
            continue; // header and separator rows
        };
        assert_eq!(cells.len(), 7, "table row {line:?}");
        let dims = cells[3]
            .trim_matches(|c| c == '[' || c == ']')
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect();
        rows.push(Row {
            index,
            name: cells[1].trim_matches('`').to_owned(),
            data_type: code_in_parens(cells[2]) as i32,
            dims,
            storage: code_in_parens(cells[4]) as u8,
            coding: code_in_parens(cells[5]) as u8,
            values: cells[6].split(',').map(|v| v.trim().to_owned()).collect(),
        });
    }
    rows
}

/// The canonical little-endian bytes (spec §6.2) of the values a table row lists.
fn expected_bytes(row: &Row) -> Vec<u8> {
    let mut b = Vec::new();
    for v in &row.values {
        match row.data_type {
            dtype::FLOAT => b.extend(v.parse::<f32>().unwrap().to_le_bytes()),
            dtype::INT64 => b.extend(v.parse::<i64>().unwrap().to_le_bytes()),
            t => panic!("the test does not know how to write values of data type {t}"),
        }
    }
    b
}

#[test]
fn spec_example_decodes_to_the_stated_tensors() {
    let spec = spec_text();
    let bytes = parse_hex(&hex_block(&spec));
    let rows = example_table(&spec);
    assert_eq!(
        rows.len(),
        2,
        "the §13 table should list the example's two tensors"
    );

    let mut d = Decoder::new(bytes.as_slice(), DecodeOptions::default()).expect("example header");
    assert_eq!(d.tensor_count(), rows.len());
    let mut got = Vec::new();
    while let Some(t) = d.next_tensor().expect("example tensor") {
        got.push(t);
    }
    assert_eq!(d.total_bytes(), bytes.len() as u64);
    assert_eq!(got.len(), rows.len());
    for (t, row) in got.iter().zip(&rows) {
        assert_eq!(t.ordinal, row.index);
        assert_eq!(t.name, row.name);
        assert_eq!(t.data_type, row.data_type, "{}", row.name);
        assert_eq!(t.dims, row.dims, "{}", row.name);
        assert_eq!(t.storage as u8, row.storage, "{}", row.name);
        assert_eq!(t.coding as u8, row.coding, "{}", row.name);
        assert_eq!(t.data, expected_bytes(row), "{}: decoded values", row.name);
    }
    // The codings the prose describes.
    assert_eq!(got[0].storage, Storage::RawData);
    assert_eq!(got[0].coding, Coding::Raw);
    assert_eq!(got[1].storage, Storage::Typed);
    assert_eq!(got[1].coding, Coding::Planes);
}

#[test]
fn spec_example_rebuilds_the_model() {
    let spec = spec_text();
    let bytes = parse_hex(&hex_block(&spec));
    let d = Decoder::new(bytes.as_slice(), DecodeOptions::default()).unwrap();
    let (model, external) = d.into_model(false).unwrap();
    assert!(external.is_empty());
    let g = model.graph.expect("graph");
    assert_eq!(g.name.as_deref(), Some("g"));
    // Initializer `k` gets its raw_data back (storage raw_data, spec §6.3).
    let k = &g.initializer[0];
    assert_eq!(k.name.as_deref(), Some("k"));
    let raw: Vec<i64> = k
        .raw_data
        .as_deref()
        .expect("k has raw_data")
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(raw, [1, -2, 300]);
    // The Constant's value gets float_data back (storage typed).
    let node = &g.node[0];
    assert_eq!(node.op_type.as_deref(), Some("Constant"));
    let t = node.attribute[0].t.as_ref().expect("Constant value");
    assert_eq!(t.float_data, [0.5, -1.0, 2.0, 0.25, 3.0, -0.125]);
    assert_eq!(t.dims, [2, 3]);
}

#[test]
fn spec_example_rejects_damage() {
    // Spec §4.1: a flipped payload byte is a checksum error; §4.3: a byte after the trailer
    // is trailing data.
    let spec = spec_text();
    let bytes = parse_hex(&hex_block(&spec));
    let decode_all = |b: &[u8]| -> nnc::Result<()> {
        let mut d = Decoder::new(b, DecodeOptions::default())?;
        while d.next_tensor()?.is_some() {}
        Ok(())
    };
    let mut damaged = bytes.clone();
    damaged[0xe5] ^= 1; // first payload byte of tensor `k`
    let e = decode_all(&damaged).unwrap_err();
    assert_eq!(e.rule().map(|r| r.name()), Some("checksum"), "{e}");
    let mut longer = bytes.clone();
    longer.push(0);
    let e = decode_all(&longer).unwrap_err();
    assert_eq!(e.rule().map(|r| r.name()), Some("trailing-data"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// §13.2: quantized payloads (coding 3, spec §7.6).

/// One case of §13.2: the tensor it describes, its `params` and payload dumps, and the rows
/// of its table.
#[derive(Debug)]
struct QuantCase {
    title: String,
    data_type: i32,
    dims: Vec<u64>,
    params: Vec<u8>,
    payload: Vec<u8>,
    rows: Vec<QuantRow>,
}

/// A row of a §13.2 table: element, symbol, level (or code), x̂, bits, value.
#[derive(Debug)]
struct QuantRow {
    element: usize,
    symbol: u32,
    level: String,
    xhat: String,
    bits: u64,
    value: f64,
}

/// The lines of the first fenced block of `text` whose opening fence is exactly `fence`.
fn block_tagged<'a>(text: &'a str, fence: &str) -> Vec<&'a str> {
    let mut lines = text.lines();
    lines
        .by_ref()
        .find(|l| l.trim_end() == fence)
        .unwrap_or_else(|| panic!("no {fence} block in:\n{text}"));
    lines.take_while(|l| l.trim_end() != "```").collect()
}

/// A number as the spec writes it: `−` (U+2212) or `-` for minus, an optional `+`.
fn spec_number(s: &str) -> Option<f64> {
    let s = s.trim().replace('−', "-");
    s.strip_prefix('+').unwrap_or(&s).parse().ok()
}

fn quant_cases(spec: &str) -> Vec<QuantCase> {
    let section = spec
        .split_once("### 13.2 Quantized payloads")
        .expect("spec has no §13.2")
        .1;
    // §13.2 ends where the next top-level section begins.
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut cases = Vec::new();
    for part in section.split("\n#### 13.2.").skip(1) {
        let title = part.lines().next().unwrap().trim().to_owned();
        let tensor = part
            .lines()
            .find_map(|l| l.strip_prefix("Tensor: "))
            .unwrap_or_else(|| panic!("§13.2 case {title:?} has no 'Tensor:' line"));
        let (ty, dims) = tensor
            .split_once(", dims")
            .expect("Tensor: TYPE (code), dims [..]");
        let dims: Vec<u64> = dims
            .split_once('[')
            .and_then(|(_, r)| r.split_once(']'))
            .expect("dims in brackets")
            .0
            .split(',')
            .map(|d| d.trim().parse().unwrap())
            .collect();
        let mut rows = Vec::new();
        for line in part.lines().filter(|l| l.starts_with('|')) {
            // `\|` is a pipe inside a cell.
            let line = line.replace("\\|", "¦");
            let cells: Vec<&str> = line
                .trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect();
            let Ok(element) = cells[0].parse::<usize>() else {
                continue; // header and separator rows
            };
            assert_eq!(cells.len(), 6, "§13.2 {title}: row {line:?}");
            rows.push(QuantRow {
                element,
                symbol: cells[1].parse().unwrap(),
                level: cells[2].to_owned(),
                xhat: cells[3].to_owned(),
                bits: u64::from_str_radix(cells[4].trim_matches('`'), 16).unwrap(),
                value: spec_number(cells[5])
                    .unwrap_or_else(|| panic!("§13.2 {title}: value {:?}", cells[5])),
            });
        }
        cases.push(QuantCase {
            data_type: code_in_parens(ty) as i32,
            dims,
            params: parse_hex(&block_tagged(part, "```hex params")),
            payload: parse_hex(&block_tagged(part, "```hex payload")),
            rows,
            title,
        });
    }
    cases
}

/// The record header a §13.2 case stands for (storage `raw_data`, coding 3).
fn quant_header(case: &QuantCase) -> nnc::container::tensor_header::TensorHeader {
    let elements: u64 = case.dims.iter().product();
    nnc::container::tensor_header::TensorHeader {
        data_type: case.data_type,
        storage: Storage::RawData,
        coding: Coding::Quantized,
        name: "W".into(),
        dims: case.dims.clone(),
        elements,
        data_bytes: elements * dtype::unit_bytes(case.data_type) as u64,
        params: case.params.clone(),
    }
}

/// Element `i` of canonical bytes of a float type: its bits and its value as binary64.
fn element(data_type: i32, data: &[u8], i: usize) -> (u64, f64) {
    use nnc::quant::float;
    let w = dtype::unit_bytes(data_type);
    let mut b = [0u8; 8];
    b[..w].copy_from_slice(&data[i * w..(i + 1) * w]);
    let bits = u64::from_le_bytes(b);
    let value = match data_type {
        dtype::FLOAT => f32::from_bits(bits as u32) as f64,
        dtype::DOUBLE => f64::from_bits(bits),
        dtype::FLOAT16 => float::f16_to_f32(bits as u16) as f64,
        dtype::BFLOAT16 => float::bf16_to_f32(bits as u16) as f64,
        t => panic!("data type {t} cannot be quantized"),
    };
    (bits, value)
}

/// Spec §7.6.6: binary64 to the bits of the data type.
fn convert(data_type: i32, x: f64) -> u64 {
    use nnc::quant::float;
    match data_type {
        dtype::FLOAT => (x as f32).to_bits() as u64,
        dtype::DOUBLE => x.to_bits(),
        dtype::FLOAT16 => float::f32_to_f16(x as f32) as u64,
        dtype::BFLOAT16 => float::f32_to_bf16(x as f32) as u64,
        t => panic!("data type {t} cannot be quantized"),
    }
}

/// The symbols of a case's payload (spec §7.6.2: μ-law table, width byte, one stream).
fn quant_symbols(case: &QuantCase) -> Vec<u32> {
    use nnc::bytes::Cursor;
    let mut c = Cursor::new(&case.payload, 0, nnc::FormatRule::Payload);
    if case.params[0] == 3 {
        let k = c.varint("K").unwrap() as usize;
        c.take(4 * (k + 1), "table").unwrap();
    }
    let width = c.u8("width").unwrap() as usize;
    let mut syms = vec![0u32; case.rows.len()];
    nnc::entropy::decode_stream(&mut c, width, 1 << 32, |s| s, &mut syms, false).unwrap();
    assert!(c.is_empty());
    syms
}

#[test]
fn spec_quantized_examples_decode_to_the_stated_values() {
    let spec = spec_text();
    let cases = quant_cases(&spec);
    assert_eq!(cases.len(), 4, "§13.2 should hold four cases");
    let kinds: Vec<u8> = cases.iter().map(|c| c.params[0]).collect();
    assert_eq!(
        kinds,
        [0, 4, 2, 3],
        "§13.2: midtread, minifloat, dead zone, μ-law"
    );
    for case in &cases {
        let t = &case.title;
        let h = quant_header(case);
        assert_eq!(
            case.rows.len() as u64,
            h.elements,
            "{t}: one row per element"
        );
        let data = nnc::quant::decode(&h, &case.payload, 0, false, None)
            .unwrap_or_else(|e| panic!("{t}: {e}"));
        assert_eq!(data.len() as u64, h.data_bytes, "{t}");
        assert_eq!(
            nnc::quant::decode(&h, &case.payload, 0, true, None).unwrap(),
            data,
            "{t}: parallel decoding"
        );
        let syms = quant_symbols(case);
        for (i, row) in case.rows.iter().enumerate() {
            assert_eq!(row.element, i, "{t}: rows in element order");
            assert_eq!(syms[i], row.symbol, "{t}, element {i}: symbol");
            // The level column: zigzag levels, or minifloat codes written `0x..`.
            if case.params[0] == 4 {
                let code = row.level.trim_start_matches('`').get(..4).unwrap();
                let code = u32::from_str_radix(code.trim_start_matches("0x"), 16).unwrap();
                assert_eq!(code, row.symbol, "{t}, element {i}: code");
            } else {
                let q = spec_number(&row.level).unwrap() as i64;
                assert_eq!(nnc::quant::zigzag(q), row.symbol, "{t}, element {i}: level");
            }
            let (bits, value) = element(case.data_type, &data, i);
            assert_eq!(bits, row.bits, "{t}, element {i}: bits {bits:x}");
            assert_eq!(value, row.value, "{t}, element {i}: value");
            // Where the x̂ column ends in a number, §7.6.6 must turn it into the bits.
            if let Some(x) = row.xhat.rsplit('=').next().and_then(spec_number) {
                assert_eq!(
                    convert(case.data_type, x),
                    row.bits,
                    "{t}, element {i}: x̂ {x}"
                );
            }
        }
    }
}

/// A MatMul whose weight `W` (float, [2, 3], raw_data) holds `w`.
fn matmul_model(w: &[f32]) -> nnc::onnx::proto::ModelProto {
    use nnc::onnx::proto::{GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto};
    let weight = TensorProto {
        name: Some("W".into()),
        data_type: Some(dtype::FLOAT),
        dims: vec![2, 3],
        raw_data: Some(w.iter().flat_map(|x| x.to_le_bytes()).collect()),
        ..Default::default()
    };
    let node = NodeProto {
        op_type: Some("MatMul".into()),
        input: vec!["x".into(), "W".into()],
        output: vec!["y".into()],
        ..Default::default()
    };
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(13),
        }],
        graph: Some(GraphProto {
            name: Some("g".into()),
            node: vec![node],
            initializer: vec![weight],
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn spec_quantized_examples_are_what_the_encoder_writes() {
    use nnc::quant::minifloat::Layout;
    use nnc::quant::policy::{Family, LossyOptions, StepRule};
    let spec = spec_text();
    let cases = quant_cases(&spec);
    // Inputs and options as §13.2 states them (cases 1, 2 and 4; case 3 is made by hand).
    let runs: [(usize, [f32; 6], Family, StepRule); 3] = [
        (
            0,
            [0.0, 0.3, -0.2, 0.5, -0.7, 1.3],
            Family::Midtread,
            StepRule::Fixed(0.25),
        ),
        (
            1,
            [0.0, -0.0, 0.00029296875, 1.0, -2.75, 31.0],
            Family::Minifloat {
                layout: Layout {
                    exp_bits: 4,
                    man_bits: 3,
                },
            },
            LossyOptions::default().step,
        ),
        (
            3,
            [0.0, 0.01, -0.05, 0.3, -1.0, 0.8],
            Family::MuLaw { mu: 255.0 },
            StepRule::Thesis {
                min: -1.0,
                max: 1.0,
                levels_bits: 2,
            },
        ),
    ];
    for (index, inputs, family, step) in runs {
        let case = &cases[index];
        let opts = EncodeOptions {
            lossy: Some(LossyOptions {
                family,
                step,
                min_elements: 1,
                ..LossyOptions::default()
            }),
            ..EncodeOptions::default()
        };
        let (file, _) = nnc::encode_model(matmul_model(&inputs), None, &opts, Vec::new())
            .unwrap_or_else(|e| panic!("{}: {e}", case.title));
        let mut d = Decoder::new(
            file.as_slice(),
            DecodeOptions {
                keep_payload: true,
                ..DecodeOptions::default()
            },
        )
        .unwrap();
        let t = d.next_tensor().unwrap().expect("tensor W");
        assert_eq!(t.name, "W");
        assert_eq!(t.coding, Coding::Quantized, "{}", case.title);
        assert_eq!(t.params, case.params, "{}: params", case.title);
        assert_eq!(t.payload, case.payload, "{}: payload", case.title);
        assert_eq!(
            t.data,
            nnc::quant::decode(&quant_header(case), &case.payload, 0, false, None).unwrap()
        );
    }
}

#[test]
fn spec_quantized_examples_reject_what_7_6_2_rejects() {
    use nnc::container::tensor_header::TensorHeader;
    let spec = spec_text();
    let cases = quant_cases(&spec);
    let (midtread, minifloat, deadzone, mulaw) = (&cases[0], &cases[1], &cases[2], &cases[3]);
    // Edits one case's header or payload and checks the outcome of decoding it.
    let check = |case: &QuantCase,
                 what: &str,
                 edit: &dyn Fn(&mut TensorHeader, &mut Vec<u8>),
                 want: &str| {
        let mut h = quant_header(case);
        let mut payload = case.payload.clone();
        edit(&mut h, &mut payload);
        let got = match nnc::quant::decode(&h, &payload, 0, false, None) {
            Ok(_) => "accepted",
            Err(e) => e.rule().map_or("not a format error", |r| r.name()),
        };
        assert_eq!(got, want, "{}: {what}", case.title);
    };
    let f32_at = |at: usize, v: f32| {
        move |h: &mut TensorHeader, _: &mut Vec<u8>| {
            h.params[at..at + 4].copy_from_slice(&v.to_le_bytes())
        }
    };
    // Parameters (§7.6.2), in the order the rules are listed.
    check(
        midtread,
        "params cut off",
        &|h, _| h.params.truncate(10),
        "tensor-header",
    );
    check(
        midtread,
        "flag bit 2",
        &|h, _| h.params[1] = 4,
        "reserved-nonzero",
    );
    // Bit 1 is the residual flag of updates (§14.6): without a base, `base`.
    check(midtread, "flag bit 1", &|h, _| h.params[1] = 2, "base");
    check(
        midtread,
        "reserved bytes",
        &|h, _| h.params[3] = 1,
        "reserved-nonzero",
    );
    check(midtread, "kind 5", &|h, _| h.params[0] = 5, "tensor-header");
    // The order of the checks: reserved flags before the cut-off reserved bytes and the kind.
    let flags_first = |h: &mut TensorHeader, _: &mut Vec<u8>| {
        h.params = vec![5, 4];
    };
    check(
        midtread,
        "kind 5, flag bit 2, cut off",
        &flags_first,
        "reserved-nonzero",
    );
    check(deadzone, "delta 1.5", &f32_at(4, 1.5), "tensor-header");
    check(deadzone, "delta NaN", &f32_at(4, f32::NAN), "tensor-header");
    check(deadzone, "delta -0", &f32_at(4, -0.0), "accepted");
    check(mulaw, "mu 0", &f32_at(8, 0.0), "tensor-header");
    check(
        mulaw,
        "Xmax infinite",
        &f32_at(4, f32::INFINITY),
        "tensor-header",
    );
    check(
        minifloat,
        "E + M = 24",
        &|h, _| h.params[4..6].copy_from_slice(&[8, 16]),
        "tensor-header",
    );
    check(
        minifloat,
        "scale_exp -401",
        &|h, _| h.params[6..8].copy_from_slice(&(-401i16).to_le_bytes()),
        "tensor-header",
    );
    check(
        minifloat,
        "scale_exp 400",
        &|h, _| h.params[6..8].copy_from_slice(&400i16.to_le_bytes()),
        "accepted",
    );
    check(
        minifloat,
        "per-channel",
        &|h, _| h.params[1] = 1,
        "tensor-header",
    );
    check(
        mulaw,
        "per-channel",
        &|h, _| h.params[1] = 1,
        "tensor-header",
    );
    check(
        deadzone,
        "per-channel, dims [1, 6]",
        &|h, _| h.dims = vec![1, 6],
        "tensor-header",
    );
    check(
        deadzone,
        "per-channel, one step",
        &|h, _| {
            h.params[8] = 1;
            h.params.truncate(16)
        },
        "tensor-header",
    );
    check(
        midtread,
        "two steps",
        &|h, _| h.params[4] = 2,
        "tensor-header",
    );
    check(midtread, "step 0", &f32_at(8, 0.0), "tensor-header");
    check(midtread, "step -0", &f32_at(8, -0.0), "tensor-header");
    check(
        midtread,
        "subnormal step",
        &f32_at(8, f32::from_bits(1)),
        "accepted",
    );
    check(
        midtread,
        "byte after params",
        &|h, _| h.params.push(0),
        "tensor-header",
    );
    // Data type (§7.6).
    check(
        midtread,
        "INT32 tensor",
        &|h, _| h.data_type = dtype::INT32,
        "tensor-header",
    );
    check(
        midtread,
        "DOUBLE tensor",
        &|h, _| {
            h.data_type = dtype::DOUBLE;
            h.data_bytes = 48
        },
        "accepted",
    );
    // Payload (§7.6.2).
    check(mulaw, "K over P/4", &|_, p| p[0] = 6, "payload");
    check(mulaw, "table cut off", &|_, p| p[0] = 5, "payload");
    check(
        mulaw,
        "level 3 with K = 2",
        &|_, p| *p.last_mut().unwrap() = 5,
        "payload",
    );
    check(
        midtread,
        "width 2",
        &|_, p| {
            p[0] = 2;
            p.extend_from_slice(&[0; 6])
        },
        "accepted",
    );
    check(midtread, "width 3", &|_, p| p[0] = 3, "payload");
    check(midtread, "mode 5", &|_, p| p[1] = 5, "payload");
    check(
        midtread,
        "stream cut off",
        &|_, p| {
            p.pop();
        },
        "payload",
    );
    check(
        midtread,
        "byte after the stream",
        &|_, p| p.push(0),
        "payload",
    );
    // E4M3 codes are below 2^(4+3+1) = 256: code 256 in a width-2 stored stream.
    check(
        minifloat,
        "code 256",
        &|_, p| *p = [&[2u8, 0][..], &[0; 10], &[0, 1]].concat(),
        "payload",
    );
}
