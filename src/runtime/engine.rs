//! onnxruntime, loaded at run time (the `ort` crate's `load-dynamic`): from `ORT_DYLIB_PATH`,
//! else from the onnxruntime Python package (`python3 -c 'import onnxruntime'`). Nothing is
//! linked or downloaded at build time; without the library the encoder says so and uses the
//! weight-domain rule.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use ort::logging::LogLevel;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{DynValue, TensorElementType, TensorRef, ValueType};

use super::array::{Array, Values};

/// Why the model cannot be run here (the encoder prints it and falls back).
#[derive(Debug, Clone, PartialEq)]
pub struct Unrunnable(pub String);

impl std::fmt::Display for Unrunnable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The loaded runtime.
pub struct Runtime {
    /// "onnxruntime 1.23.2".
    pub version: String,
    pub library: PathBuf,
    env: ort::environment::Environment,
}

static RUNTIME: OnceLock<Result<Runtime, Unrunnable>> = OnceLock::new();

/// The runtime, loaded once per process.
pub fn runtime() -> Result<&'static Runtime, Unrunnable> {
    RUNTIME.get_or_init(load).as_ref().map_err(Clone::clone)
}

fn load() -> Result<Runtime, Unrunnable> {
    let library = find_library()?;
    let env = ort::init_from(&library)
        .map_err(|e| Unrunnable(format!("cannot load {}: {e}", library.display())))?
        .with_name("nnc")
        .with_telemetry(false)
        .build()
        .map_err(|e| Unrunnable(format!("onnxruntime environment: {e}")))?;
    let version = version_of(&library, ort::info());
    Ok(Runtime {
        version,
        library,
        env,
    })
}

/// "onnxruntime X.Y.Z" from the build info ("git-branch=rel-1.23.2, ...") or the file name.
fn version_of(library: &Path, info: &str) -> String {
    let from_info = info
        .split([',', ' '])
        .find_map(|p| p.strip_prefix("git-branch=rel-"))
        .map(str::to_owned);
    let from_name = library
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split(".so.").nth(1))
        .map(str::to_owned);
    match from_info.or(from_name) {
        Some(v) => format!("onnxruntime {v}"),
        None => "onnxruntime".to_owned(),
    }
}

/// `ORT_DYLIB_PATH`, else `capi/libonnxruntime.so*` of the onnxruntime Python package.
fn find_library() -> Result<PathBuf, Unrunnable> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(Unrunnable(format!(
                "ORT_DYLIB_PATH={} is not a file",
                p.display()
            )))
        };
    }
    let python = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
    let out = std::process::Command::new(&python)
        .args([
            "-c",
            "import os, onnxruntime; print(os.path.dirname(onnxruntime.__file__))",
        ])
        .stderr(std::process::Stdio::null())
        .output()
        .map_err(|e| {
            Unrunnable(format!(
                "no onnxruntime: ORT_DYLIB_PATH is not set and {} cannot run ({e})",
                python.to_string_lossy()
            ))
        })?;
    if !out.status.success() {
        return Err(Unrunnable(
            "no onnxruntime: ORT_DYLIB_PATH is not set and the onnxruntime Python package is \
             not installed (pip install onnxruntime)"
                .into(),
        ));
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("capi");
    let mut libs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| Unrunnable(format!("no onnxruntime library in {}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so") || n == "onnxruntime.dll")
        })
        .collect();
    // The versioned file name first (libonnxruntime.so.1.23.2), it tells the version.
    libs.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    libs.into_iter()
        .next()
        .ok_or_else(|| Unrunnable(format!("no libonnxruntime.so* in {}", dir.display())))
}

/// One output of a run.
#[derive(Debug, Clone)]
pub struct Output {
    pub name: String,
    pub shape: Vec<i64>,
    /// Float outputs (any float type, widened to f32); `None` for other types.
    pub values: Option<Vec<f32>>,
    /// Non-float outputs as bytes, to compare for equality.
    pub raw: Vec<u8>,
}

/// Nanoseconds this process has spent in onnxruntime: building sessions and running them,
/// feeds and outputs included (summed over threads).
static IN_RUNTIME: AtomicU64 = AtomicU64::new(0);

/// Seconds this process has spent in onnxruntime so far (see `IN_RUNTIME`): the encoder
/// reports its own work as the rest.
pub fn runtime_seconds() -> f64 {
    IN_RUNTIME.load(Ordering::Relaxed) as f64 * 1e-9
}

/// Adds the time since `t0` to `IN_RUNTIME`.
fn count_since(t0: Instant) {
    IN_RUNTIME.fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
}

/// A model ready to run.
pub struct Session {
    inner: ort::session::Session,
    /// Declared graph inputs, in order.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

impl Session {
    /// Builds a session from serialized ONNX bytes with `threads` intra-op threads.
    pub fn from_bytes(model: &[u8], threads: usize) -> Result<Session, Unrunnable> {
        let t0 = Instant::now();
        let s = Self::build(model, threads);
        count_since(t0);
        s
    }

    fn build(model: &[u8], threads: usize) -> Result<Session, Unrunnable> {
        let rt = runtime()?;
        let fail =
            |what: &str, e: String| Unrunnable(format!("onnxruntime {what}: {}", first_line(&e)));
        let inner = ort::session::Session::builder(&rt.env)
            .map_err(|e| fail("session", e.to_string()))?
            .with_intra_threads(threads)
            .map_err(|e| fail("session", e.to_string()))?
            .with_inter_threads(1)
            .map_err(|e| fail("session", e.to_string()))?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| fail("session", e.to_string()))?
            // Its errors come back as results (and say what failed where the encoder says
            // anything); logged too, they would print the runtime's own lines for every trial
            // shape the input synthesis rejects. NNC_TRACE shows them.
            .with_log_level(if std::env::var_os("NNC_TRACE").is_some() {
                LogLevel::Warning
            } else {
                LogLevel::Fatal
            })
            .map_err(|e| fail("session", e.to_string()))?
            .commit_from_memory(model)
            .map_err(|e| fail("cannot load the model", e.to_string()))?;
        let inputs = inner.inputs().iter().map(|o| o.name().to_owned()).collect();
        let outputs = inner
            .outputs()
            .iter()
            .map(|o| o.name().to_owned())
            .collect();
        Ok(Session {
            inner,
            inputs,
            outputs,
        })
    }

    /// Runs the model on named inputs; returns every graph output in order.
    pub fn run(&mut self, feeds: &[(&str, &Array)]) -> Result<Vec<Output>, Unrunnable> {
        let t0 = Instant::now();
        let out = self.run_feeds(feeds);
        count_since(t0);
        out
    }

    fn run_feeds(&mut self, feeds: &[(&str, &Array)]) -> Result<Vec<Output>, Unrunnable> {
        let mut values: Vec<(String, ort::session::SessionInputValue<'_>)> =
            Vec::with_capacity(feeds.len());
        for (name, a) in feeds {
            values.push(((*name).to_owned(), to_value(a)?));
        }
        let outs = self
            .inner
            .run(values)
            .map_err(|e| Unrunnable(format!("onnxruntime run: {}", first_line(&e.to_string()))))?;
        let mut result = Vec::with_capacity(self.outputs.len());
        for name in &self.outputs {
            let v = outs
                .get(name)
                .ok_or_else(|| Unrunnable(format!("onnxruntime gave no output {name}")))?;
            result.push(from_value(name, v)?);
        }
        Ok(result)
    }
}

fn first_line(s: &str) -> String {
    let l = s.lines().next().unwrap_or("");
    l.chars().take(300).collect()
}

/// The runtime's view of `a`: its values are borrowed, not copied (a probe run feeds every
/// weight of the model).
fn to_value(a: &Array) -> Result<ort::session::SessionInputValue<'_>, Unrunnable> {
    use half::slice::HalfBitsSliceExt;
    let shape = a.shape.clone();
    let err = |e: ort::Error| Unrunnable(format!("input tensor: {e}"));
    Ok(match &a.values {
        Values::F32(v) => view(shape, v).map_err(err)?,
        Values::F64(v) => view(shape, v).map_err(err)?,
        Values::F16(v) => view(shape, v.reinterpret_cast::<half::f16>()).map_err(err)?,
        Values::Bf16(v) => view(shape, v.reinterpret_cast::<half::bf16>()).map_err(err)?,
        Values::I64(v) => view(shape, v).map_err(err)?,
        Values::I32(v) => view(shape, v).map_err(err)?,
        Values::I8(v) => view(shape, v).map_err(err)?,
        Values::U8(v) => view(shape, v).map_err(err)?,
        Values::Bool(v) => view(shape, v).map_err(err)?,
    })
}

fn view<T: ort::value::PrimitiveTensorElementType + std::fmt::Debug + Clone + 'static>(
    shape: Vec<i64>,
    data: &[T],
) -> ort::Result<ort::session::SessionInputValue<'_>> {
    Ok(TensorRef::from_array_view((shape, data))?.into_dyn().into())
}

fn from_value(name: &str, v: &DynValue) -> Result<Output, Unrunnable> {
    let ValueType::Tensor { ty, .. } = v.dtype() else {
        return Err(Unrunnable(format!("output {name} is not a tensor")));
    };
    let err = |e: ort::Error| Unrunnable(format!("output {name}: {e}"));
    let (shape, values, raw) = match ty {
        TensorElementType::Float32 => {
            let (s, d) = v.try_extract_tensor::<f32>().map_err(err)?;
            (s.to_vec(), Some(d.to_vec()), Vec::new())
        }
        TensorElementType::Float64 => {
            let (s, d) = v.try_extract_tensor::<f64>().map_err(err)?;
            (
                s.to_vec(),
                Some(d.iter().map(|&x| x as f32).collect()),
                Vec::new(),
            )
        }
        TensorElementType::Float16 => {
            let (s, d) = v.try_extract_tensor::<half::f16>().map_err(err)?;
            (
                s.to_vec(),
                Some(d.iter().map(|x| x.to_f32()).collect()),
                Vec::new(),
            )
        }
        TensorElementType::Bfloat16 => {
            let (s, d) = v.try_extract_tensor::<half::bf16>().map_err(err)?;
            (
                s.to_vec(),
                Some(d.iter().map(|x| x.to_f32()).collect()),
                Vec::new(),
            )
        }
        TensorElementType::Int64 => {
            let (s, d) = v.try_extract_tensor::<i64>().map_err(err)?;
            (
                s.to_vec(),
                None,
                d.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        }
        TensorElementType::Int32 => {
            let (s, d) = v.try_extract_tensor::<i32>().map_err(err)?;
            (
                s.to_vec(),
                None,
                d.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        }
        TensorElementType::Bool => {
            let (s, d) = v.try_extract_tensor::<bool>().map_err(err)?;
            (s.to_vec(), None, d.iter().map(|&x| x as u8).collect())
        }
        TensorElementType::Uint8 => {
            let (s, d) = v.try_extract_tensor::<u8>().map_err(err)?;
            (s.to_vec(), None, d.to_vec())
        }
        TensorElementType::Int8 => {
            let (s, d) = v.try_extract_tensor::<i8>().map_err(err)?;
            (s.to_vec(), None, d.iter().map(|&x| x as u8).collect())
        }
        other => {
            // Outputs of other types are compared by shape only.
            let _ = other;
            (Vec::new(), None, Vec::new())
        }
    };
    Ok(Output {
        name: name.to_owned(),
        shape,
        values,
        raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_from_build_info_or_file_name() {
        let lib = Path::new("/x/capi/libonnxruntime.so.1.23.2");
        assert_eq!(
            version_of(
                lib,
                "ORT Build Info: git-branch=rel-1.23.2, git-commit-id=abc"
            ),
            "onnxruntime 1.23.2"
        );
        assert_eq!(version_of(lib, "ORT Build Info"), "onnxruntime 1.23.2");
        assert_eq!(
            version_of(Path::new("libonnxruntime.so"), ""),
            "onnxruntime"
        );
    }
}
