//! The example file of spec §13: the ```hex block of `spec/nnc-format.md` must decode with
//! `nnc::Decoder` to exactly the tensors the table beside it lists, and the offsets in its
//! comments must be where the bytes are. Keeps the spec's example and the code in step.
use nnc::container::tensor_header::{Coding, Storage};
use nnc::onnx::dtype;
use nnc::{DecodeOptions, Decoder};

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
