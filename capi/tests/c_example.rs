//! Builds `examples/c/decode.c` with the system C compiler against the static library and
//! runs it on a corpus model: every tensor it lists, the tensor it decodes by name and the
//! ONNX bytes it decodes must equal what the Rust library gives.
use std::path::{Path, PathBuf};
use std::process::Command;

/// `$NNC_CORPUS/models`, defaulting to `$HOME/.cache/nnc-corpus/models`.
fn corpus_model(name: &str) -> PathBuf {
    let dir = match std::env::var_os("NNC_CORPUS") {
        Some(c) if !c.is_empty() => PathBuf::from(c).join("models"),
        _ => {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/nnc-corpus/models")
        }
    };
    let p = dir.join(name);
    assert!(
        p.is_file(),
        "corpus model {} missing: run tools/fetch_corpus.sh (tools/test.sh does)",
        p.display()
    );
    p
}

/// The newest `libnnc_capi*.a` cargo built for this test (the package's library).
fn static_lib() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
    for dir in [deps, deps.parent().unwrap()] {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("libnnc_capi") && name.ends_with(".a") {
                found.push((e.metadata().unwrap().modified().unwrap(), e.path()));
            }
        }
    }
    found.sort();
    found
        .pop()
        .unwrap_or_else(|| panic!("no libnnc_capi*.a beside {}", exe.display()))
        .1
}

fn compile(root: &Path, out: &Path) {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-O1"])
        .arg(root.join("examples/c/decode.c"))
        .arg("-I")
        .arg(root.join("capi/include"))
        .arg(static_lib())
        .args(["-lpthread", "-ldl", "-lm", "-lrt", "-lutil"])
        .arg("-o")
        .arg(out)
        .status()
        .unwrap_or_else(|e| panic!("running {cc}: {e}"));
    assert!(status.success(), "compiling examples/c/decode.c failed");
}

#[test]
fn c_example_decodes_a_corpus_model() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dir = tempfile_dir();
    let exe = dir.join("decode");
    compile(root, &exe);

    let model = corpus_model("silero_vad_16k_op15.onnx");
    let file = dir.join("model.nnc");
    nnc::encode_file(
        &model,
        &file,
        &nnc::EncodeOptions::with_quality(nnc::Quality::Default),
    )
    .unwrap();

    let mut archive = nnc::Archive::open(&file, nnc::DecodeOptions::default()).unwrap();
    let names: Vec<String> = archive.names().map(str::to_owned).collect();
    let pick = {
        let mut best = (0usize, String::new());
        for (i, n) in names.iter().enumerate() {
            let len = archive.tensor_at(i).unwrap().data.len();
            if len > best.0 {
                best = (len, n.clone());
            }
        }
        best.1
    };
    let onnx_out = dir.join("decoded.onnx");
    let out = Command::new(&exe)
        .arg(&file)
        .arg(&pick)
        .arg(&onnx_out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "C example failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    for (i, name) in names.iter().enumerate() {
        let t = archive.tensor_at(i).unwrap();
        let dims: Vec<String> = t.dims.iter().map(|d| d.to_string()).collect();
        let want = format!(
            "{} {} [{}] {}",
            name,
            t.data_type,
            dims.join(","),
            t.data.len()
        );
        assert_eq!(lines[i], want, "tensor {i}");
    }
    let t = archive.tensor(&pick).unwrap();
    let sum = t
        .data
        .iter()
        .fold(0u32, |s, &b| s.wrapping_mul(31).wrapping_add(b as u32));
    let want = format!("tensor {pick}: {} bytes, checksum {sum:08x}", t.data.len());
    assert!(lines.contains(&want.as_str()), "{want} not in\n{stdout}");
    let onnx = nnc::decode_to_bytes(
        std::fs::File::open(&file).unwrap(),
        nnc::DecodeOptions::default(),
    )
    .unwrap();
    let want = format!("model: {} bytes of ONNX", onnx.len());
    assert!(lines.contains(&want.as_str()), "{want} not in\n{stdout}");
    // nnc_decode_file wrote the same model to a file.
    assert_eq!(std::fs::read(&onnx_out).unwrap(), onnx);
    assert!(
        stdout.contains("junk: invalid nnc file at byte 0"),
        "{stdout}"
    );

    // A damaged file: an error code and a message, no crash.
    let mut bytes = std::fs::read(&file).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x55;
    let bad = dir.join("bad.nnc");
    std::fs::write(&bad, bytes).unwrap();
    let out = Command::new(&exe).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("NNC_ERR_FORMAT"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An update (spec §14) of the conformance suite, decoded through the C ABI with its base
/// chain: the same model as the Rust library gives; without the base, `base-missing`.
#[test]
fn c_example_decodes_an_update_with_its_base() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    // Not under `tempfile_dir()`: the other test removes that when it ends.
    let dir = std::env::temp_dir().join(format!("nnc-capi-update-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("decode");
    compile(root, &exe);
    let suite = root.join("conformance/valid");
    let chain = [
        suite.join("dtype-float/input.nnc"),
        suite.join("update-reference/input.nnc"),
    ];
    let update = suite.join("update-chain/input.nnc");
    let out_file = dir.join("decoded.onnx");
    let out = Command::new(&exe)
        .arg("--base")
        .arg(&chain[0])
        .arg("--base")
        .arg(&chain[1])
        .arg(&update)
        .arg("float.matrix")
        .arg(&out_file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "C example failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let base = nnc::BaseModel::open_chain(&chain, nnc::DecodeOptions::default()).unwrap();
    let onnx = nnc::decode_to_bytes_with_base(
        std::fs::File::open(&update).unwrap(),
        nnc::DecodeOptions::default(),
        Some(base),
    )
    .unwrap();
    let want = format!("model: {} bytes of ONNX", onnx.len());
    assert!(stdout.lines().any(|l| l == want), "{want} not in\n{stdout}");
    assert_eq!(std::fs::read(&out_file).unwrap(), onnx);
    // Without the base: refused, with the rule in the message.
    let out = Command::new(&exe).arg(&update).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("NNC_ERR_FORMAT") && err.contains("base-missing"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("nnc-capi-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
