//! The conformance suite (`conformance/README.md`):
//! - every committed vector passes `nnc::conformance::run`;
//! - the generator reproduces the committed files byte for byte, with rayon's default pool and
//!   with one thread (same input and options give the same bytes);
//! - every section of the spec from §2 on is covered by a vector, and the vectors that copy
//!   the spec's examples (§13) hold the spec's bytes.
#[path = "../examples/gen_conformance/main.rs"]
mod gen_conformance;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn suite() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance")
}

#[test]
fn every_vector_passes() {
    let report = nnc::conformance::run(&suite()).expect("reading the suite");
    assert!(report.cases.len() > 200, "{} vectors", report.cases.len());
    if !report.all_passed() {
        let failures: Vec<String> = report
            .failures()
            .map(|c| {
                format!(
                    "{}/{}: expected {}, got {} -- {}",
                    c.category.name(),
                    c.name,
                    c.expected,
                    c.outcome,
                    c.message
                )
            })
            .collect();
        panic!(
            "{} of {} vectors fail:\n{}",
            failures.len(),
            report.cases.len(),
            failures.join("\n")
        );
    }
}

/// Every file under `dir` except README.md: relative path → bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                if rel != "README.md" {
                    out.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn compare(what: &str, committed: &BTreeMap<String, Vec<u8>>, fresh: &BTreeMap<String, Vec<u8>>) {
    let a: BTreeSet<&String> = committed.keys().collect();
    let b: BTreeSet<&String> = fresh.keys().collect();
    let mut problems: Vec<String> = Vec::new();
    for f in a.difference(&b) {
        problems.push(format!("{f}: committed but not generated"));
    }
    for f in b.difference(&a) {
        problems.push(format!("{f}: generated but not committed"));
    }
    for (f, data) in fresh {
        if let Some(c) = committed.get(f) {
            if c != data {
                problems.push(format!(
                    "{f}: differs ({} bytes committed, {} generated)",
                    c.len(),
                    data.len()
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{what}: the generator does not reproduce conformance/ (regenerate with `cargo run \
         --release --example gen_conformance -- conformance/` if the change is intended):\n{}",
        problems.join("\n")
    );
}

/// Runs the generator (disagreements of the reference decoder with the manifest are
/// `every_vector_passes`' business, not this test's).
fn generate_into(dir: &Path) {
    gen_conformance::generate(dir).unwrap_or_else(|e| panic!("generator: {e}"));
}

#[test]
fn generator_is_deterministic() {
    let committed = files(&suite());
    let tmp = tempfile::tempdir().unwrap();
    generate_into(tmp.path());
    compare("default thread pool", &committed, &files(tmp.path()));
    let one = tempfile::tempdir().unwrap();
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| generate_into(one.path()));
    compare("one thread", &committed, &files(one.path()));
}

/// Headings `§N` and `§N.M[.K]` of the spec, from §2 on.
fn spec_sections(spec: &str) -> Vec<String> {
    spec.lines()
        .filter_map(|l| l.strip_prefix("##"))
        .filter_map(|l| l.trim_start_matches('#').split_whitespace().next())
        .map(|n| n.trim_end_matches('.').to_string())
        .filter(|n| {
            n.chars().all(|c| c.is_ascii_digit() || c == '.')
                && n.split('.')
                    .next()
                    .and_then(|m| m.parse::<u32>().ok())
                    .is_some_and(|m| m >= 2)
        })
        .map(|n| format!("§{n}"))
        .collect()
}

fn spec() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("spec/nnc-format.md"))
        .expect("reading spec/nnc-format.md")
}

#[test]
fn every_spec_section_is_covered() {
    let text = std::fs::read_to_string(suite().join("manifest.json")).unwrap();
    let m: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut covered = BTreeSet::new();
    for key in ["valid", "invalid", "uncommon"] {
        for case in m[key].as_array().unwrap() {
            for s in case["features"].as_array().unwrap() {
                covered.insert(s.as_str().unwrap().to_string());
            }
        }
    }
    let missing: Vec<String> = spec_sections(&spec())
        .into_iter()
        .filter(|s| !covered.contains(s))
        .collect();
    assert!(
        missing.is_empty(),
        "spec sections without a conformance vector: {missing:?}"
    );
}

/// The bytes of the ```hex blocks of the spec, in order, with their tags.
fn hex_blocks(spec: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut lines = spec.lines();
    while let Some(l) = lines.next() {
        let Some(tag) = l.trim_end().strip_prefix("```hex") else {
            continue;
        };
        let mut bytes = Vec::new();
        for l in lines.by_ref().take_while(|l| l.trim_end() != "```") {
            let digits: String = l.split('#').next().unwrap().split_whitespace().collect();
            for i in (0..digits.len()).step_by(2) {
                bytes.push(u8::from_str_radix(&digits[i..i + 2], 16).unwrap());
            }
        }
        out.push((tag.trim().to_string(), bytes));
    }
    out
}

/// `params` and payload of the first TENSOR record of an nnc file.
fn first_tensor(b: &[u8]) -> (Vec<u8>, Vec<u8>) {
    // Records (spec §4.1): 24-byte prefix, header, payload; tensor header as spec §6.1.
    let mut at = 16;
    loop {
        let h = u32::from_le_bytes(b[at + 4..at + 8].try_into().unwrap()) as usize;
        let p = u64::from_le_bytes(b[at + 8..at + 16].try_into().unwrap()) as usize;
        let header = &b[at + 24..at + 24 + h];
        if b[at] == 2 {
            let n = u32::from_le_bytes(header[8..12].try_into().unwrap()) as usize;
            let r = u32::from_le_bytes(header[12 + n..16 + n].try_into().unwrap()) as usize;
            let q = 16 + n + 8 * r + 16;
            let plen = u32::from_le_bytes(header[q..q + 4].try_into().unwrap()) as usize;
            return (
                header[q + 4..q + 4 + plen].to_vec(),
                b[at + 24 + h..at + 24 + h + p].to_vec(),
            );
        }
        at += 24 + h + p;
    }
}

#[test]
fn spec_examples_are_vectors() {
    let blocks = hex_blocks(&spec());
    let file = |name: &str| std::fs::read(suite().join(format!("valid/{name}/input.nnc"))).unwrap();
    let (tag, whole) = &blocks[0];
    assert_eq!(tag, "", "the first hex block of the spec is the §13.1 file");
    assert_eq!(
        &file("spec-example"),
        whole,
        "valid/spec-example is not the file of spec §13.1"
    );
    let quantized: Vec<&(String, Vec<u8>)> = blocks[1..].iter().collect();
    let names = [
        "spec-example-midtread",
        "spec-example-minifloat-e4m3",
        "spec-example-deadzone-per-channel-f16",
        "spec-example-mulaw",
    ];
    assert_eq!(
        quantized.len(),
        2 * names.len(),
        "spec §13.2 has a params and a payload block per case"
    );
    for (i, name) in names.iter().enumerate() {
        let (params, payload) = first_tensor(&file(name));
        assert_eq!(quantized[2 * i].0, "params");
        assert_eq!(
            params,
            quantized[2 * i].1,
            "{name}: params differ from spec §13.2.{}",
            i + 1
        );
        assert_eq!(quantized[2 * i + 1].0, "payload");
        assert_eq!(
            payload,
            quantized[2 * i + 1].1,
            "{name}: payload differs from spec §13.2.{}",
            i + 1
        );
    }
}
