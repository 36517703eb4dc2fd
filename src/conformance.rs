//! The conformance suite runner (`conformance/README.md`): decodes every vector that
//! `conformance/manifest.json` lists and compares the outcome with the manifest.
//!
//! - `valid/`: the file decodes; every tensor's name, type, dims, storage and the SHA-256 of
//!   its canonical bytes (spec §6.2) match, as do the hashes of the lifted graph, of the
//!   decoded model and of the external files written beside it. Decoding is done three ways
//!   (whole slice on all cores, one byte per read on one core, rebuilt model) and all must
//!   agree.
//! - `invalid/`: decoding fails with the error class the file is named after
//!   (`FormatRule::name()`, or `limit`), without a panic.
//! - updates (spec §14): an entry's `base_files` is its base chain, root first; the base is
//!   opened from it and every decode of the entry is done against it.
//! - `uncommon/`: decoding with the default limits succeeds (then as for `valid/`) or fails
//!   with a limit error; with the manifest's raised limits it succeeds and matches.
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::container::kind;
use crate::container::reader::RecordReader;
use crate::error::{Error, Result};
use crate::{BaseModel, DecodeOptions, Decoder, Limits};

/// The three folders of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Valid,
    Invalid,
    Uncommon,
}

impl Category {
    pub fn name(self) -> &'static str {
        match self {
            Category::Valid => "valid",
            Category::Invalid => "invalid",
            Category::Uncommon => "uncommon",
        }
    }
}

/// The outcome of one vector.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub category: Category,
    pub name: String,
    /// Path relative to the suite directory.
    pub file: String,
    /// What the manifest expects: `ok`, an error class, or `ok or limit`.
    pub expected: String,
    /// What the decoder did: `ok`, or the error class and message, or `panic: ...`.
    pub outcome: String,
    pub passed: bool,
    /// Why the vector failed; empty when it passed.
    pub message: String,
}

/// Every vector's outcome, in manifest order (valid, invalid, uncommon).
#[derive(Debug, Clone, Default)]
pub struct ConformanceReport {
    pub cases: Vec<CaseResult>,
}

impl ConformanceReport {
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.passed).count()
    }
    pub fn failed(&self) -> usize {
        self.cases.len() - self.passed()
    }
    pub fn all_passed(&self) -> bool {
        self.cases.iter().all(|c| c.passed)
    }
    pub fn failures(&self) -> impl Iterator<Item = &CaseResult> {
        self.cases.iter().filter(|c| !c.passed)
    }

    /// A plain-text table, one line per vector, and a summary line.
    pub fn table(&self) -> String {
        let w = self
            .cases
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let mut t = format!(
            "{:<8}  {:<w$}  {:<4}  {:<23}  outcome\n",
            "category", "case", "", "expected"
        );
        for c in &self.cases {
            let mut outcome = c.outcome.clone();
            if !c.message.is_empty() && c.message != c.outcome {
                outcome = format!("{outcome} -- {}", c.message);
            }
            t.push_str(&format!(
                "{:<8}  {:<w$}  {:<4}  {:<23}  {}\n",
                c.category.name(),
                c.name,
                if c.passed { "ok" } else { "FAIL" },
                c.expected,
                outcome
            ));
        }
        t.push_str(&format!(
            "{} vectors: {} passed, {} failed\n",
            self.cases.len(),
            self.passed(),
            self.failed()
        ));
        t
    }
}

/// Runs the suite in `dir` (the folder holding `manifest.json`). Errors only when the
/// manifest cannot be read; every vector's failure is in the report.
///
/// ```no_run
/// let report = nnc::conformance::run(std::path::Path::new("conformance"))?;
/// print!("{}", report.table());
/// assert!(report.all_passed());
/// # Ok::<(), nnc::Error>(())
/// ```
pub fn run(dir: &Path) -> Result<ConformanceReport> {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let manifest: Value = serde_json::from_str(&text)
        .map_err(|e| Error::input(None, format!("{}: {e}", path.display())))?;
    let mut report = ConformanceReport::default();
    for (key, category) in [
        ("valid", Category::Valid),
        ("invalid", Category::Invalid),
        ("uncommon", Category::Uncommon),
    ] {
        let cases = manifest[key]
            .as_array()
            .ok_or_else(|| Error::input(None, format!("{}: no {key:?} list", path.display())))?;
        for case in cases {
            report.cases.push(run_case(dir, category, case));
        }
    }
    Ok(report)
}

fn run_case(dir: &Path, category: Category, case: &Value) -> CaseResult {
    let name = case["name"].as_str().unwrap_or("?").to_string();
    let file = case["file"].as_str().unwrap_or("").to_string();
    let expected = match category {
        Category::Valid => "ok".to_string(),
        Category::Invalid => case["expected"].as_str().unwrap_or("?").to_string(),
        Category::Uncommon => "ok or limit".to_string(),
    };
    let mut r = CaseResult {
        category,
        name,
        file: file.clone(),
        expected,
        outcome: String::new(),
        passed: false,
        message: String::new(),
    };
    let bytes = match std::fs::read(dir.join(&file)) {
        Ok(b) => b,
        Err(e) => {
            r.outcome = "unreadable".into();
            r.message = format!("reading {file}: {e}");
            return r;
        }
    };
    if let Some(want) = case["file_sha256"].as_str() {
        if hex(&Sha256::digest(&bytes)) != want {
            r.outcome = "damaged vector".into();
            r.message = format!("{file} does not have the SHA-256 the manifest gives");
            return r;
        }
    }
    let checked = catch_unwind(AssertUnwindSafe(|| {
        // An update's base (spec §14): the chain of files the manifest names, root first.
        let base = match open_base(dir, case) {
            Ok(b) => b,
            Err(e) if category == Category::Invalid => return check_error(e, case),
            Err(e) => return Err(failed(&e, "opening the base failed")),
        };
        match category {
            Category::Valid => check_valid(dir, &file, &bytes, case, Limits::default(), &base),
            Category::Invalid => check_invalid(dir, &file, &bytes, case, &base),
            Category::Uncommon => check_uncommon(dir, &file, &bytes, case, &base),
        }
    }));
    match checked {
        Ok(Ok(outcome)) => {
            r.outcome = outcome;
            r.passed = true;
        }
        Ok(Err((outcome, message))) => {
            r.outcome = outcome;
            r.message = message;
        }
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            r.outcome = format!("panic: {msg}");
            r.message = "the decoder panicked".into();
        }
    }
    r
}

/// The base chain of a case's `base_files` (`None` without them).
fn open_base(dir: &Path, case: &Value) -> Result<Option<Arc<BaseModel>>> {
    let Some(files) = case["base_files"].as_array() else {
        return Ok(None);
    };
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|f| dir.join(f.as_str().unwrap_or_default()))
        .collect();
    BaseModel::open_chain(&paths, DecodeOptions::default()).map(Some)
}

/// `Ok(outcome)` when the vector passed, `Err((outcome, why))` otherwise.
type Check = std::result::Result<String, (String, String)>;

/// The manifest's class of an error: `FormatRule::name()` for format errors, `limit`, or the
/// kind of the other errors (never expected by the suite).
pub fn error_class(e: &Error) -> String {
    match e {
        Error::Format { rule, .. } => rule.name().to_string(),
        Error::Limit { .. } => "limit".into(),
        Error::Unsupported { .. } => "unsupported".into(),
        Error::Input { .. } => "input".into(),
        Error::Io { .. } => "io".into(),
        Error::InvalidOptions { .. } => "invalid-options".into(),
        Error::NotFound { .. } => "not-found".into(),
    }
}

fn options(limits: Limits, parallel: bool) -> DecodeOptions {
    DecodeOptions {
        limits,
        parallel,
        ..DecodeOptions::default()
    }
}

fn failed(e: &Error, why: &str) -> (String, String) {
    (format!("{}: {e}", error_class(e)), why.to_string())
}

fn check_valid(
    dir: &Path,
    file: &str,
    bytes: &[u8],
    case: &Value,
    limits: Limits,
    base: &Option<Arc<BaseModel>>,
) -> Check {
    let mismatch = |what: String| ("decoded".to_string(), what);
    // 1. Streaming, whole slice, chunks on all cores.
    let a = tensor_digests(bytes, options(limits, true), base)
        .map_err(|e| failed(&e, "decoding failed"))?;
    // 2. One byte per read, one core: the same result (spec §7.3.1: chunk order is free).
    let b = tensor_digests(OneByte(bytes), options(limits, false), base)
        .map_err(|e| failed(&e, "decoding one byte at a time failed"))?;
    if a != b {
        return Err(mismatch(
            "one-byte reads on one core decode other tensors than whole-slice decoding".into(),
        ));
    }
    let want = case["tensors"].as_array().cloned().unwrap_or_default();
    if want.len() != a.len() {
        return Err(mismatch(format!(
            "{} tensors decoded, the manifest lists {}",
            a.len(),
            want.len()
        )));
    }
    let mut all = Sha256::new();
    for (got, w) in a.iter().zip(&want) {
        let expect = (
            w["name"].as_str().unwrap_or_default(),
            w["data_type"].as_i64().unwrap_or(-1),
            w["dims"]
                .as_array()
                .map(|d| d.iter().filter_map(Value::as_u64).collect::<Vec<_>>())
                .unwrap_or_default(),
            w["storage"].as_str().unwrap_or_default(),
            w["sha256"].as_str().unwrap_or_default(),
        );
        let have = (
            got.name.as_str(),
            got.data_type as i64,
            got.dims.clone(),
            got.storage,
            got.sha256.as_str(),
        );
        if have != expect {
            return Err(mismatch(format!(
                "tensor {} is {:?}, the manifest says {:?}",
                got.index, have, expect
            )));
        }
        all.update(got.digest);
    }
    if let Some(t) = case["tensors_sha256"].as_str() {
        if hex(&all.finalize()) != t {
            return Err(mismatch("tensors_sha256 differs".into()));
        }
    }
    // 3. The lifted graph, as the GRAPH record holds it.
    if let Some(g) = case["graph_sha256"].as_str() {
        let graph =
            graph_bytes(bytes, limits, base).map_err(|e| failed(&e, "reading the graph"))?;
        if hex(&Sha256::digest(&graph)) != g {
            return Err(mismatch("graph_sha256 differs".into()));
        }
    }
    // 4. The rebuilt model, external tensors inlined.
    let model = crate::decode_to_bytes_with_base(bytes, options(limits, true), base.clone())
        .map_err(|e| failed(&e, "rebuilding the model failed"))?;
    if let Some(m) = case["model_sha256"].as_str() {
        if hex(&Sha256::digest(&model)) != m {
            return Err(mismatch(format!(
                "model_sha256 differs (model of {} bytes, the manifest says {})",
                model.len(),
                case["model_bytes"]
            )));
        }
    }
    // 5. External data written to files.
    if let Some(ext) = case["external_files"].as_array() {
        let tmp = TempDir::new().map_err(|e| failed(&e, "temporary directory"))?;
        let out = tmp.0.join("model.onnx");
        crate::decode_file_with_base(
            &dir.join(file),
            &out,
            options(limits, true),
            false,
            base.clone(),
        )
        .map_err(|e| failed(&e, "decoding to files failed"))?;
        for x in ext {
            let loc = x["location"].as_str().unwrap_or_default();
            let data = std::fs::read(tmp.0.join(loc))
                .map_err(|e| mismatch(format!("external file {loc} not written: {e}")))?;
            if Some(hex(&Sha256::digest(&data)).as_str()) != x["sha256"].as_str() {
                return Err(mismatch(format!("external file {loc} differs")));
            }
        }
    }
    // 6. The FIDELITY record, when the manifest describes one (spec §8.3): its parsed
    // content, `null` for a version this decoder skips, or the error reading it gives.
    if case.get("fidelity").is_some() || case.get("fidelity_error").is_some() {
        let mut d = crate::Decoder::with_base(bytes, options(limits, true), base.clone())
            .map_err(|e| failed(&e, "decoding failed"))?;
        while d
            .next_tensor()
            .map_err(|e| failed(&e, "decoding failed"))?
            .is_some()
        {}
        match (
            d.fidelity(),
            case.get("fidelity_error").and_then(Value::as_str),
        ) {
            (Err(e), Some(want)) if error_class(&e) == want => {}
            (Err(e), _) => return Err(failed(&e, "reading the FIDELITY record failed")),
            (Ok(_), Some(want)) => {
                return Err(mismatch(format!(
                    "the FIDELITY record was read, the manifest expects error {want}"
                )))
            }
            (Ok(f), None) => {
                let got = f.as_ref().map_or(Value::Null, fidelity_json);
                if Some(&got) != case.get("fidelity") {
                    return Err(mismatch(format!(
                        "FIDELITY record {got}, the manifest says {}",
                        case["fidelity"]
                    )));
                }
            }
        }
    }
    Ok("ok".into())
}

/// A FIDELITY record (spec §8.3) as JSON, as the manifest and `nnc inspect --json` write it
/// (non-finite numbers as the strings "inf", "-inf" and "nan").
pub fn fidelity_json(f: &crate::container::fidelity::Fidelity) -> Value {
    use crate::container::fidelity::Target;
    let num = |v: f64| -> Value {
        if v.is_finite() {
            serde_json::json!(v)
        } else if v.is_nan() {
            "nan".into()
        } else if v > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        }
    };
    let (kind, value) = match f.target {
        Target::None => ("none", 0.0),
        Target::Snr(v) => ("snr_db", v),
        Target::Agreement(v) => ("agreement", v),
        Target::Bytes(v) => ("bytes", v),
        Target::BitsPerWeight(v) => ("bits_per_weight", v),
    };
    serde_json::json!({
        "target": {"kind": kind, "value": value},
        "inputs": f.inputs,
        "input_source": f.source.name(),
        "runtime": f.runtime,
        "outputs": f.outputs.iter().map(|o| serde_json::json!({
            "name": o.name, "snr_db": num(o.snr_db), "agreement": num(o.agreement),
        })).collect::<Vec<_>>(),
    })
}

fn check_invalid(
    dir: &Path,
    file: &str,
    bytes: &[u8],
    case: &Value,
    base: &Option<Arc<BaseModel>>,
) -> Check {
    let want = case["expected"].as_str().unwrap_or_default();
    let result = if case["decode"].as_str() == Some("files") {
        // The rule applies when external data is written (spec §6.3).
        let tmp = TempDir::new().map_err(|e| failed(&e, "temporary directory"))?;
        crate::decode_file_with_base(
            &dir.join(file),
            &tmp.0.join("model.onnx"),
            DecodeOptions::default(),
            false,
            base.clone(),
        )
        .map(|_| ())
    } else {
        crate::decode_to_bytes_with_base(bytes, DecodeOptions::default(), base.clone()).map(|_| ())
    };
    match result {
        Ok(()) => Err((
            "ok".into(),
            format!("decoded without error; expected {want}"),
        )),
        Err(e) => check_error(e, case),
    }
}

/// Whether `e` is the error an invalid case expects.
fn check_error(e: Error, case: &Value) -> Check {
    let want = case["expected"].as_str().unwrap_or_default();
    let class = error_class(&e);
    let outcome = format!("{class}: {e}");
    if class == want {
        Ok(outcome)
    } else {
        Err((outcome, format!("expected {want}, got {class}")))
    }
}

fn check_uncommon(
    dir: &Path,
    file: &str,
    bytes: &[u8],
    case: &Value,
    base: &Option<Arc<BaseModel>>,
) -> Check {
    let first = match crate::decode_to_bytes_with_base(bytes, DecodeOptions::default(), base.clone())
    {
        Ok(_) => {
            check_valid(dir, file, bytes, case, Limits::default(), base)?;
            "ok".to_string()
        }
        Err(e @ Error::Limit { .. }) => format!("limit: {e}"),
        Err(e) => return Err(failed(&e, "expected success or a limit error")),
    };
    let mut limits = Limits::default();
    if let Some(m) = case["relaxed_limits"].as_object() {
        for (k, v) in m {
            let v = v.as_u64().unwrap_or(0);
            if !set_limit(&mut limits, k, v) {
                return Err(("manifest".into(), format!("unknown limit {k:?}")));
            }
        }
    }
    check_valid(dir, file, bytes, case, limits, base)
        .map_err(|(o, m)| (o, format!("with raised limits: {m}")))?;
    Ok(format!("{first}; ok with raised limits"))
}

/// Sets the `Limits` field named `key`; false for an unknown name.
pub fn set_limit(l: &mut Limits, key: &str, v: u64) -> bool {
    let v32 = u32::try_from(v).unwrap_or(u32::MAX);
    match key {
        "max_alloc" => l.max_alloc = v,
        "max_tensors" => l.max_tensors = v,
        "max_dims" => l.max_dims = v32,
        "max_elements" => l.max_elements = v,
        "max_name_len" => l.max_name_len = v32,
        "max_graph_bytes" => l.max_graph_bytes = v,
        "max_graph_memory" => l.max_graph_memory = v,
        "max_depth" => l.max_depth = v32,
        "max_header_bytes" => l.max_header_bytes = v32,
        "max_expansion" => l.max_expansion = v,
        "expansion_slack" => l.expansion_slack = v,
        _ => return false,
    }
    true
}

/// One decoded tensor, reduced to what the manifest compares.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Digest32 {
    index: usize,
    name: String,
    data_type: i32,
    dims: Vec<u64>,
    storage: &'static str,
    digest: [u8; 32],
    sha256: String,
}

fn tensor_digests<R: Read>(
    r: R,
    opts: DecodeOptions,
    base: &Option<Arc<BaseModel>>,
) -> Result<Vec<Digest32>> {
    let mut d = Decoder::with_base(r, opts, base.clone())?;
    let mut v = Vec::new();
    while let Some(t) = d.next_tensor()? {
        let digest: [u8; 32] = Sha256::digest(&t.data).into();
        v.push(Digest32 {
            index: t.ordinal,
            name: t.name,
            data_type: t.data_type,
            dims: t.dims,
            storage: t.storage.name(),
            digest,
            sha256: hex(&digest),
        });
    }
    Ok(v)
}

/// The decompressed payload of the file's GRAPH record (the lifted model, spec §5.1).
fn graph_bytes(bytes: &[u8], limits: Limits, base: &Option<Arc<BaseModel>>) -> Result<Vec<u8>> {
    let mut records = RecordReader::new(bytes, limits)?;
    loop {
        let rec = records.next_record()?;
        if rec.prefix.kind == kind::GRAPH {
            let mut l = [0u8; 8];
            l.copy_from_slice(rec.header.get(1..9).unwrap_or(&[0; 8]));
            let len = u64::from_le_bytes(l).min(limits.max_graph_bytes) as usize;
            if let (Some(2), Some(b)) = (rec.header.first(), base) {
                let (v, r) = crate::base::decompress_graph(&rec.payload, b.dictionary(), len, 0)?;
                r.map_err(|e| Error::io("decompressing the graph", std::io::Error::other(e)))?;
                return Ok(v);
            }
            return zstd::bulk::decompress(&rec.payload, len)
                .map_err(|e| Error::io("decompressing the graph", e));
        }
    }
}

/// A reader that returns one byte per call (a streaming decoder must not care).
struct OneByte<'a>(&'a [u8]);

impl Read for OneByte<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match (buf.first_mut(), self.0.split_first()) {
            (Some(b), Some((&x, rest))) => {
                *b = x;
                self.0 = rest;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A scratch directory for external data, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir> {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "nnc-conformance-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p)
            .map_err(|e| Error::io(format!("creating {}", p.display()), e))?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
