//! Generates the nnc conformance suite (`conformance/README.md` describes it):
//!
//! ```text
//! cargo run --release --example gen_conformance -- conformance/
//! ```
//!
//! writes `valid/<case>/input.nnc`, `invalid/<rule>-<what>.nnc`, `uncommon/<case>/input.nnc`
//! and `manifest.json` (and refreshes the coverage table of `README.md` when it exists). The
//! same inputs give the same bytes on every run and with any number of threads.
//!
//! Every valid vector is checked by parsing it (the facts it claims: codings, stream modes,
//! storages, ...) and, when lossless, by comparing the decoded model with the input. Every
//! invalid vector is decoded with the reference decoder; a disagreement with the class it is
//! named after is printed (and is a decoder bug or a vector bug to look into).
#![allow(dead_code)]

#[path = "container.rs"]
mod container;
#[path = "edits.rs"]
mod edits;
#[path = "inspect.rs"]
mod inspect;
#[path = "invalid/mod.rs"]
mod invalid;
#[path = "onnx.rs"]
mod onnx;
#[path = "uncommon.rs"]
mod uncommon;
#[path = "updates.rs"]
mod updates;
#[path = "valid/mod.rs"]
mod valid;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use nnc::container::kind;
use nnc::onnx::dtype;
use nnc::onnx::proto::ModelProto;
use nnc::{DecodeOptions, Decoder, Error, Limits};
use prost::Message;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use container::{NncFile, RawHeader};

fn main() -> ExitCode {
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("conformance"));
    match generate(&out) {
        Ok(s) => {
            println!(
                "{}: {} valid, {} invalid, {} uncommon vectors, {} bytes",
                out.display(),
                s.valid,
                s.invalid,
                s.uncommon,
                s.bytes
            );
            if s.disagreements.is_empty() {
                ExitCode::SUCCESS
            } else {
                eprintln!("files written, but the reference decoder disagrees with the manifest:");
                for d in &s.disagreements {
                    eprintln!("  {d}");
                }
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("gen_conformance: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What a run wrote.
pub struct Summary {
    pub valid: usize,
    pub invalid: usize,
    pub uncommon: usize,
    /// Bytes of all vector files (the manifest and README not counted).
    pub bytes: u64,
    /// Vectors on which the reference decoder does not do what the manifest says.
    pub disagreements: Vec<String>,
}

/// Writes the whole suite into `out` (its `valid/`, `invalid/`, `uncommon/` and
/// `manifest.json` are replaced; other files are left alone).
pub fn generate(out: &Path) -> Result<Summary, String> {
    for d in ["valid", "invalid", "uncommon"] {
        let p = out.join(d);
        if p.exists() {
            std::fs::remove_dir_all(&p).map_err(|e| format!("removing {}: {e}", p.display()))?;
        }
    }
    let tmp = TempDir::new()?;
    let mut s = Summary {
        valid: 0,
        invalid: 0,
        uncommon: 0,
        bytes: 0,
        disagreements: Vec::new(),
    };
    let mut valid_bytes: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut valid_json = Vec::new();
    for c in valid::cases() {
        let (bytes, entry) = valid_case(&c, out, &tmp)?;
        s.bytes += bytes.len() as u64;
        s.valid += 1;
        valid_bytes.insert(c.name.clone(), bytes);
        valid_json.push(entry);
    }
    // Updates (spec §14): their bases are the valid vectors just written.
    let upd = updates::generate(out, &valid_bytes)?;
    s.valid += upd.valid.len();
    s.invalid += upd.invalid.len();
    s.bytes += upd.bytes;
    valid_json.extend(upd.valid);
    let mut invalid_json = Vec::new();
    for c in invalid::cases(&valid_bytes) {
        let file = format!("invalid/{}.nnc", c.name);
        write(&out.join(&file), &c.bytes)?;
        s.bytes += c.bytes.len() as u64;
        s.invalid += 1;
        let got = match c.decode {
            "files" => {
                decode_to_files(&out.join(&file), &tmp.sub(&c.name)?, Limits::default()).err()
            }
            _ => nnc::decode_to_bytes(c.bytes.as_slice(), DecodeOptions::default()).err(),
        };
        let class = got.as_ref().map(error_class);
        if class.as_deref() != Some(c.expected) {
            s.disagreements.push(format!(
                "{file}: expected {}, reference decoder: {}",
                c.expected,
                got.map_or("decodes without error".to_string(), |e| e.to_string())
            ));
        }
        let sections = c.sections.clone();
        invalid_json.push(json!({
            "name": c.name,
            "file": file,
            "expected": c.expected,
            "decode": c.decode,
            "features": sorted_sections(sections.iter().map(|s| s.to_string())),
            "base": c.base,
            "description": c.description,
            "file_sha256": hex(&Sha256::digest(&c.bytes)),
        }));
    }
    let mut uncommon_json = Vec::new();
    for c in uncommon::cases() {
        let mut limits = Limits::default();
        for &(k, v) in &c.relaxed {
            set_limit(&mut limits, k, v);
        }
        let opts = nnc::EncodeOptions {
            limits: Some(limits),
            ..valid::lossless()
        };
        let (bytes, _) = nnc::encode_model(c.model.clone(), None, &opts, Vec::new())
            .map_err(|e| format!("encoding uncommon/{}: {e}", c.name))?;
        let file = format!("uncommon/{}/input.nnc", c.name);
        write(&out.join(&file), &bytes)?;
        s.bytes += bytes.len() as u64;
        s.uncommon += 1;
        match nnc::decode_to_bytes(bytes.as_slice(), DecodeOptions::default()) {
            Err(Error::Limit { what, .. }) if what == c.limit => {}
            other => s.disagreements.push(format!(
                "{file}: expected limit {:?} with default limits, got {:?}",
                c.limit,
                other.map(|b| b.len())
            )),
        }
        let decoded = decoded_json(&bytes, limits, None)
            .map_err(|e| format!("{file} does not decode with raised limits: {e}"))?;
        let expected = c.model.encode_to_vec();
        if nnc::decode_to_bytes(bytes.as_slice(), options(limits)).ok() != Some(expected) {
            return Err(format!("{file}: the decoded model differs from the input"));
        }
        let mut entry = json!({
            "name": c.name,
            "file": file,
            "description": c.description,
            "features": sorted_sections(c.sections.iter().map(|s| s.to_string())),
            "limit": c.limit,
            "relaxed_limits": c.relaxed.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "file_sha256": hex(&Sha256::digest(&bytes)),
            "file_bytes": bytes.len(),
        });
        merge(&mut entry, decoded);
        uncommon_json.push(entry);
    }
    let manifest = json!({
        "about": "nnc conformance vectors; see README.md for how to use them",
        "format_version": "1.0",
        "hash": "sha256",
        "valid": valid_json,
        "invalid": invalid_json,
        "uncommon": uncommon_json,
    });
    let mut manifest = manifest;
    if let Some(v) = manifest["invalid"].as_array_mut() {
        v.extend(upd.invalid);
    }
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())? + "\n";
    write(&out.join("manifest.json"), text.as_bytes())?;
    let readme = out.join("README.md");
    if readme.exists() {
        update_readme(&readme, &manifest)?;
    }
    Ok(s)
}

fn options(limits: Limits) -> DecodeOptions {
    DecodeOptions {
        limits,
        ..DecodeOptions::default()
    }
}

pub fn set_limit(l: &mut Limits, key: &str, v: u64) {
    match key {
        "max_alloc" => l.max_alloc = v,
        "max_tensors" => l.max_tensors = v,
        "max_dims" => l.max_dims = v as u32,
        "max_elements" => l.max_elements = v,
        "max_name_len" => l.max_name_len = v as u32,
        "max_graph_bytes" => l.max_graph_bytes = v,
        "max_graph_memory" => l.max_graph_memory = v,
        "max_depth" => l.max_depth = v as u32,
        "max_header_bytes" => l.max_header_bytes = v as u32,
        "max_expansion" => l.max_expansion = v,
        "expansion_slack" => l.expansion_slack = v,
        k => panic!("unknown limit {k}"),
    }
}

/// The manifest's error class of an error: `FormatRule::name()`, or "limit".
fn error_class(e: &Error) -> String {
    match e {
        Error::Format { rule, .. } => rule.name().to_string(),
        Error::Limit { .. } => "limit".into(),
        Error::Unsupported { .. } => "unsupported".into(),
        Error::Input { .. } => "input".into(),
        Error::Io { .. } => "io".into(),
        _ => "other".into(),
    }
}

fn valid_case(c: &valid::Case, out: &Path, tmp: &TempDir) -> Result<(Vec<u8>, Value), String> {
    let src = tmp.sub(&format!("src-{}", c.name))?;
    for (rel, data) in &c.files {
        write(&src.join(rel), data)?;
    }
    let (mut bytes, _) = nnc::encode_model(c.model.clone(), Some(&src), &c.opts, Vec::new())
        .map_err(|e| format!("encoding valid/{}: {e}", c.name))?;
    if let Some(edit) = c.edit {
        bytes = edit(bytes);
    }
    let file = format!("valid/{}/input.nnc", c.name);
    let path = out.join(&file);
    write(&path, &bytes)?;

    // The file must show what the case claims.
    let facts = facts_of(&bytes);
    for want in &c.facts {
        if !has_fact(&facts, want) {
            return Err(format!(
                "{file}: expected fact {want:?} not found; the file has {facts:?}"
            ));
        }
    }
    let decoded = decoded_json(&bytes, Limits::default(), None)
        .map_err(|e| format!("{file}: the reference decoder rejects it: {e}"))?;
    if c.exact {
        let expected = inline_external(&c.model, &c.files).encode_to_vec();
        let got = nnc::decode_to_bytes(bytes.as_slice(), DecodeOptions::default())
            .map_err(|e| e.to_string())?;
        if got != expected {
            return Err(format!("{file}: the decoded model differs from the input"));
        }
    }
    let mut sections: BTreeSet<String> = c.sections.iter().map(|s| s.to_string()).collect();
    sections.insert("§6.1".into());
    for f in &facts {
        sections.extend(sections_of_fact(f).iter().map(|s| s.to_string()));
    }
    if facts.contains("tensors:0") {
        sections.remove("§6.1");
    }
    let mut entry = json!({
        "name": c.name,
        "file": file,
        "description": c.description,
        "features": sorted_sections(sections.into_iter()),
        "facts": facts.iter().filter(|f| !f.starts_with("chunks:")).collect::<Vec<_>>(),
        "file_sha256": hex(&Sha256::digest(&bytes)),
        "file_bytes": bytes.len(),
    });
    merge(&mut entry, decoded);
    // A FIDELITY record: its content as the reference decoder reads it (spec §8.3).
    if !NncFile::parse(&bytes).find(kind::FIDELITY).is_empty() {
        let mut d = Decoder::new(bytes.as_slice(), options(Limits::default()))
            .map_err(|e| format!("{file}: {e}"))?;
        while d
            .next_tensor()
            .map_err(|e| format!("{file}: {e}"))?
            .is_some()
        {}
        match d.fidelity() {
            Ok(f) => {
                entry["fidelity"] = f
                    .as_ref()
                    .map_or(Value::Null, nnc::conformance::fidelity_json)
            }
            Err(e) => entry["fidelity_error"] = json!(error_class(&e)),
        }
    }
    if facts.contains("storage:external") {
        let dir = tmp.sub(&format!("ext-{}", c.name))?;
        decode_to_files(&path, &dir, Limits::default()).map_err(|e| e.to_string())?;
        let mut files = Vec::new();
        list_files(&dir, &dir, &mut files)?;
        let ext: Vec<Value> = files
            .into_iter()
            .filter(|(rel, _)| rel != "model.onnx")
            .map(|(rel, data)| {
                json!({"location": rel, "bytes": data.len(), "sha256": hex(&Sha256::digest(&data))})
            })
            .collect();
        entry["external_files"] = json!(ext);
    }
    Ok((bytes, entry))
}

/// Decodes to `dir/model.onnx` with external data written beside it.
fn decode_to_files(input: &Path, dir: &Path, limits: Limits) -> nnc::Result<()> {
    nnc::decode_file(input, &dir.join("model.onnx"), options(limits), false)
}

fn list_files(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) -> Result<(), String> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            list_files(root, &p, out)?;
        } else {
            let rel = p
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, std::fs::read(&p).map_err(|e| e.to_string())?));
        }
    }
    Ok(())
}

/// The input model with external tensors' bytes put into `raw_data` (what a self-contained
/// decode gives).
fn inline_external(m: &ModelProto, files: &[(String, Vec<u8>)]) -> ModelProto {
    let mut m = m.clone();
    let _ = nnc::onnx::walk::walk(&mut m, 64, &mut |_, slot| {
        if let nnc::onnx::walk::SlotMut::Tensor(t) = slot {
            if t.data_location == Some(1) {
                let key = |k: &str| nnc::onnx::lift::external_key(t, k).map(str::to_owned);
                let loc = key("location").unwrap();
                let off: usize = key("offset").map_or(0, |v| v.parse().unwrap());
                let n: u64 = t.dims.iter().map(|&d| d as u64).product();
                let len = dtype::byte_len(t.data_type.unwrap(), n).unwrap() as usize;
                let data = &files.iter().find(|f| f.0 == loc).unwrap().1;
                t.raw_data = Some(data[off..off + len].to_vec());
                t.data_location = None;
                t.external_data.clear();
            }
        }
        Ok(())
    });
    m
}

/// The manifest fields that come from decoding: tensors and their hashes, the graph, the model.
fn decoded_json(
    bytes: &[u8],
    limits: Limits,
    base: Option<std::sync::Arc<nnc::BaseModel>>,
) -> nnc::Result<Value> {
    let f = NncFile::parse(bytes);
    let g = &f.recs[f.find(kind::GRAPH)[0]];
    let graph = match &base {
        Some(b) if g.header[0] == 2 => {
            let len = u64::from_le_bytes(g.header[1..9].try_into().unwrap()) as usize;
            nnc::base::decompress_graph(&g.payload, b.dictionary(), len, 0)?.0
        }
        _ => zstd::bulk::decompress(&g.payload, 1 << 30).map_err(|e| Error::Io {
            context: "graph".into(),
            source: e,
        })?,
    };
    let mut d = Decoder::with_base(bytes, options(limits), base.clone())?;
    let mut tensors = Vec::new();
    let mut all = Sha256::new();
    while let Some(t) = d.next_tensor()? {
        let digest = Sha256::digest(&t.data);
        all.update(digest);
        tensors.push(json!({
            "index": t.ordinal,
            "name": t.name,
            "data_type": t.data_type,
            "type": dtype::name(t.data_type),
            "dims": t.dims,
            "storage": t.storage.name(),
            "coding": t.coding.name(),
            "bytes": t.data.len(),
            "sha256": hex(&digest),
        }));
    }
    let model = nnc::decode_to_bytes_with_base(bytes, options(limits), base)?;
    Ok(json!({
        "graph_bytes": graph.len(),
        "graph_sha256": hex(&Sha256::digest(&graph)),
        "tensors": tensors,
        "tensors_sha256": hex(&all.finalize()),
        "model_bytes": model.len(),
        "model_sha256": hex(&Sha256::digest(&model)),
    }))
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, from) {
        a.extend(b);
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn write(path: &Path, data: &[u8]) -> Result<(), String> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).map_err(|e| format!("creating {}: {e}", p.display()))?;
    }
    std::fs::write(path, data).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// A scratch directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, String> {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "nnc-gen-conformance-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).map_err(|e| format!("creating {}: {e}", p.display()))?;
        Ok(TempDir(p))
    }
    fn sub(&self, name: &str) -> Result<PathBuf, String> {
        let p = self.0.join(name);
        std::fs::create_dir_all(&p).map_err(|e| format!("creating {}: {e}", p.display()))?;
        Ok(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// -------------------------------------------------------------------------------------------
// Facts: what a parse of a file shows

/// Facts of a valid file: `tensors:N`, and per record `dtype:`, `storage:`, `coding:`,
/// `rank:`, `mode:`, `model:`, `quantizer:`, `width:`, `chunks:N`, `per-channel`,
/// `empty-chunk`, `empty-tensor`, `non-ascii-name`; `placement:in-graph` when the lifted
/// graph still holds tensor data.
pub fn facts_of(bytes: &[u8]) -> BTreeSet<String> {
    let f = NncFile::parse(bytes);
    let tensors = f.find(kind::TENSOR);
    let mut s = BTreeSet::new();
    s.insert(format!("tensors:{}", tensors.len()));
    for &r in &tensors {
        let rec = &f.recs[r];
        let h = RawHeader::parse(&rec.header);
        let storage = nnc::container::tensor_header::Storage::from_u8(h.storage).unwrap();
        s.insert(format!("storage:{}", storage.name()));
        if storage == nnc::container::tensor_header::Storage::Inline {
            continue;
        }
        s.insert(format!("dtype:{}", dtype::name(h.data_type as i32)));
        let coding = nnc::container::tensor_header::Coding::from_u8(h.coding).unwrap();
        s.insert(format!("coding:{}", coding.name()));
        s.insert(format!("rank:{}", h.dims.len()));
        if h.elements == 0 {
            s.insert("empty-tensor".into());
        }
        if !h.name.is_ascii() {
            s.insert("non-ascii-name".into());
        }
        let info = inspect::parse_payload(&rec.header, &rec.payload);
        for st in &info.streams {
            for m in st.modes() {
                s.insert(format!("mode:{m}"));
            }
            for k in st.model_kinds() {
                s.insert(format!("model:{k}"));
            }
            if let Some(ch) = st.chunks() {
                s.insert(format!("chunks:{}", ch.chunks.len()));
                if ch.chunks.iter().any(|c| c.words == 0) {
                    s.insert("empty-chunk".into());
                }
            }
        }
        if let Some(q) = &info.quant {
            s.insert(format!("quantizer:{}", q.params.kind.name()));
            s.insert(format!("width:{}", q.width));
            if q.params.per_channel() {
                s.insert("per-channel".into());
            }
            if matches!(h.data_type as i32, dtype::FLOAT16 | dtype::BFLOAT16) {
                s.insert("quantized-16-bit".into());
            }
        }
    }
    // Places whose data stayed in the graph (not slots, spec §5.2).
    let mut m = edits::graph_model(&f);
    let mut in_graph = false;
    let _ = nnc::onnx::walk::walk(&mut m, 64, &mut |_, slot| {
        in_graph |= match slot {
            nnc::onnx::walk::SlotMut::Tensor(t) => nnc::onnx::walk::holds_data(t),
            nnc::onnx::walk::SlotMut::Floats(v) => !v.is_empty(),
            nnc::onnx::walk::SlotMut::Ints(v) => !v.is_empty(),
        };
        Ok(())
    });
    if in_graph {
        s.insert("placement:in-graph".into());
    }
    s
}

/// Whether `facts` satisfies `want` (`tensors>=N` and `chunks>=N` compare counts).
fn has_fact(facts: &BTreeSet<String>, want: &str) -> bool {
    if let Some((key, n)) = want.split_once(">=") {
        let n: usize = n.parse().unwrap();
        return facts.iter().any(|f| {
            f.strip_prefix(&format!("{key}:"))
                .and_then(|v| v.parse::<usize>().ok())
                .is_some_and(|v| v >= n)
        });
    }
    facts.contains(want)
}

/// The spec sections a fact exercises.
fn sections_of_fact(f: &str) -> &'static [&'static str] {
    let (k, v) = f.split_once(':').unwrap_or((f, ""));
    match (k, v) {
        ("dtype", "string") => &["§6.2", "§6.4"],
        ("dtype", _) => &["§6.2"],
        ("storage", _) => &["§6.3"],
        ("coding", "raw") => &["§7"],
        ("coding", "planes") => &["§7", "§7.4"],
        ("coding", "zstd") => &["§7", "§7.5"],
        ("coding", "quantized") => &["§7", "§7.6", "§7.6.1", "§7.6.2"],
        ("mode", "0" | "1") => &["§7.1"],
        ("mode", "2" | "3") => &["§7.1", "§7.2", "§7.3", "§7.3.1"],
        ("mode", "4") => &["§7.1", "§7.3", "§7.3.1", "§7.3.2"],
        ("mode", "5") => &["§7.1", "§7.3", "§7.3.1", "§7.3.3"],
        ("mode", "8") => &["§7.1", "§7.3.7"],
        ("model", "2") => &["§7.2.1"],
        ("model", "3") => &["§7.2.2"],
        ("quantizer", "midtread" | "midrise" | "deadzone") => &["§7.6.3"],
        ("quantizer", "mulaw") => &["§7.6.4"],
        ("quantizer", "minifloat") => &["§7.6.5"],
        ("quantized-16-bit", _) => &["§7.6.6"],
        ("per-channel", _) | ("width", _) => &["§7.6.2"],
        ("empty-chunk", _) => &["§7.3"],
        ("rank", "0") | ("empty-tensor", _) => &["§6.1", "§6.2"],
        ("non-ascii-name", _) => &["§6.1", "§8.1"],
        _ => &[],
    }
}

/// Sections in document order (§7.10 after §7.9), each with the sections that contain it
/// (a vector for §7.2.1 also exercises §7.2 and §7).
fn sorted_sections(s: impl Iterator<Item = String>) -> Vec<String> {
    let mut all = BTreeSet::new();
    for sec in s {
        let parts: Vec<&str> = sec.trim_start_matches('§').split('.').collect();
        for n in 1..=parts.len() {
            all.insert(format!("§{}", parts[..n].join(".")));
        }
    }
    let mut v: Vec<String> = all.into_iter().collect();
    v.sort_by_key(|x| section_key(x));
    v
}

fn section_key(s: &str) -> Vec<u32> {
    s.trim_start_matches('§')
        .split('.')
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

// -------------------------------------------------------------------------------------------
// README coverage table

/// Spec headings `§N` / `§N.M` / `§N.M.K` with their titles, from spec/nnc-format.md.
fn spec_sections() -> Vec<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/spec/nnc-format.md");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut v = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("##") else {
            continue;
        };
        let rest = rest.trim_start_matches('#').trim();
        let Some((num, title)) = rest.split_once(' ') else {
            continue;
        };
        let num = num.trim_end_matches('.');
        if num.chars().next().is_some_and(|c| c.is_ascii_digit())
            && num.chars().all(|c| c.is_ascii_digit() || c == '.')
        {
            v.push((format!("§{num}"), title.trim().to_string()));
        }
    }
    v
}

/// The Markdown table: every section from §2 on, with the vectors that target it. A vector
/// is listed under the most specific sections of its `features` (not under §7 when it has
/// §7.4); a section whose vectors all target its subsections says so.
pub fn coverage_table(manifest: &Value) -> String {
    let mut by: BTreeMap<Vec<u32>, (String, [Vec<String>; 3])> = BTreeMap::new();
    let titles: BTreeMap<String, String> = spec_sections().into_iter().collect();
    for (sec, title) in &titles {
        by.entry(section_key(sec))
            .or_insert_with(|| (sec.clone(), Default::default()))
            .0 = format!("{sec} {title}");
    }
    for (col, key) in ["valid", "invalid", "uncommon"].iter().enumerate() {
        for case in manifest[key].as_array().into_iter().flatten() {
            let name = case["name"].as_str().unwrap_or_default().to_string();
            let secs: Vec<&str> = case["features"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            for sec in &secs {
                let inner = format!("{sec}.");
                if secs.iter().any(|s| s.starts_with(&inner)) {
                    continue;
                }
                let e = by.entry(section_key(sec)).or_insert_with(|| {
                    let t = titles.get(*sec).map_or(String::new(), |t| format!(" {t}"));
                    (format!("{sec}{t}"), Default::default())
                });
                e.1[col].push(name.clone());
            }
        }
    }
    let mut t = String::from("| section | valid | invalid | uncommon |\n|---|---|---|---|\n");
    for (key, (title, cols)) in &by {
        if key.first().is_some_and(|&k| k < 2) {
            continue;
        }
        // An empty cell of a section whose subsections have vectors in that column.
        let in_sub = |col: usize| {
            by.iter()
                .any(|(k, (_, c))| k.len() > key.len() && k.starts_with(key) && !c[col].is_empty())
        };
        let cell = |col: usize| {
            let v = &cols[col];
            if v.is_empty() && in_sub(col) {
                return "(subsections)".to_string();
            }
            // Many `dtype-*` or `quant-*` vectors in one cell: named as a group.
            let group = |p: &str| v.iter().filter(|n| n.starts_with(p)).count();
            let mut out: Vec<String> = Vec::new();
            for n in v {
                match ["dtype-", "quant-"].iter().find(|p| n.starts_with(**p)) {
                    Some(p) if group(p) >= 6 => {
                        let g = format!("`{p}*` ({})", group(p));
                        if !out.contains(&g) {
                            out.push(g);
                        }
                    }
                    _ => out.push(format!("`{n}`")),
                }
            }
            out.join(", ")
        };
        t.push_str(&format!(
            "| {title} | {} | {} | {} |\n",
            cell(0),
            cell(1),
            cell(2)
        ));
    }
    t
}

fn update_readme(path: &Path, manifest: &Value) -> Result<(), String> {
    const BEGIN: &str = "<!-- coverage:begin -->";
    const END: &str = "<!-- coverage:end -->";
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let (Some(a), Some(b)) = (text.find(BEGIN), text.find(END)) else {
        return Ok(());
    };
    let new = format!(
        "{}{BEGIN}\n{}{}",
        &text[..a],
        coverage_table(manifest),
        &text[b..]
    );
    if new != text {
        std::fs::write(path, new).map_err(|e| e.to_string())?;
    }
    Ok(())
}
