//! `nnc._nnc`: the Python extension behind the `nnc` package (PyO3, abi3). The package's
//! `__init__.py` wraps it; `_nnc.pyi` gives its types.
#![warn(missing_docs)]

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict};

use nnc::{
    Archive as RsArchive, BaseModel, DecodeOptions, EncodeOptions, Encoder, Error, Family, Limits,
    LossyOptions, MappedFile, MinifloatLayout, Quality, StepRule,
};

create_exception!(
    _nnc,
    NncError,
    PyException,
    "Base class of every nnc error."
);
create_exception!(
    _nnc,
    FormatError,
    NncError,
    "The .nnc bytes break a rule of the format (the message names the rule, offset, tensor)."
);
create_exception!(
    _nnc,
    LimitError,
    NncError,
    "The file is valid but exceeds the decoder limits."
);
create_exception!(
    _nnc,
    InputError,
    NncError,
    "The input ONNX model is malformed."
);
create_exception!(
    _nnc,
    UnsupportedError,
    NncError,
    "A valid request this version cannot carry out."
);
create_exception!(
    _nnc,
    InvalidOptionsError,
    NncError,
    "An encoder option is out of range."
);
create_exception!(_nnc, NotFoundError, NncError, "No tensor of that name.");
create_exception!(_nnc, NncIOError, NncError, "Reading or writing failed.");

fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::Format { .. } => FormatError::new_err(msg),
        Error::Limit { .. } => LimitError::new_err(msg),
        Error::Input { .. } => InputError::new_err(msg),
        Error::InvalidOptions { .. } => InvalidOptionsError::new_err(msg),
        Error::NotFound { .. } => NotFoundError::new_err(msg),
        Error::Io { .. } => NncIOError::new_err(msg),
        _ => UnsupportedError::new_err(msg),
    }
}

/// Bytes or a path, as Python passes them.
enum Source {
    Bytes(Vec<u8>),
    Path(PathBuf),
}

fn source(obj: &Bound<'_, PyAny>) -> PyResult<Source> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Source::Bytes(b.as_bytes().to_vec()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Source::Bytes(b.to_vec()));
    }
    if let Ok(p) = obj.extract::<PathBuf>() {
        return Ok(Source::Path(p));
    }
    Err(pyo3::exceptions::PyTypeError::new_err(
        "expected bytes, bytearray, str or os.PathLike",
    ))
}

fn decode_options(limits: Option<&Bound<'_, PyDict>>) -> PyResult<DecodeOptions> {
    let mut o = DecodeOptions::default();
    if let Some(d) = limits {
        let l: &mut Limits = &mut o.limits;
        for (k, v) in d.iter() {
            let k: String = k.extract()?;
            match k.as_str() {
                "max_alloc" => l.max_alloc = v.extract()?,
                "max_tensors" => l.max_tensors = v.extract()?,
                "max_dims" => l.max_dims = v.extract()?,
                "max_elements" => l.max_elements = v.extract()?,
                "max_name_len" => l.max_name_len = v.extract()?,
                "max_graph_bytes" => l.max_graph_bytes = v.extract()?,
                "max_graph_memory" => l.max_graph_memory = v.extract()?,
                "max_depth" => l.max_depth = v.extract()?,
                "max_header_bytes" => l.max_header_bytes = v.extract()?,
                "max_expansion" => l.max_expansion = v.extract()?,
                "expansion_slack" => l.expansion_slack = v.extract()?,
                _ => {
                    return Err(pyo3::exceptions::PyValueError::new_err(format!(
                        "unknown limit {k:?}"
                    )))
                }
            }
        }
    }
    Ok(o)
}

/// The base of an update (spec §14) from a path or a list of paths (a chain, root first).
fn base_arg(
    py: Python<'_>,
    base: Option<&Bound<'_, PyAny>>,
    opts: DecodeOptions,
) -> PyResult<Option<Arc<BaseModel>>> {
    let Some(b) = base.filter(|b| !b.is_none()) else {
        return Ok(None);
    };
    let paths: Vec<PathBuf> = match b.extract::<PathBuf>() {
        Ok(p) => vec![p],
        Err(_) => b.extract::<Vec<PathBuf>>().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(
                "base must be a path or a list of paths (a chain, root first)",
            )
        })?,
    };
    py.detach(|| BaseModel::open_chain(&paths, opts))
        .map(Some)
        .map_err(to_py)
}

/// Decodes a whole .nnc (path or bytes) to the bytes of the ONNX model (external tensors
/// inlined), ready for `onnxruntime.InferenceSession(bytes)`. `base`: the base of an update.
#[pyfunction]
#[pyo3(signature = (src, limits=None, base=None))]
fn decode_model<'py>(
    py: Python<'py>,
    src: &Bound<'py, PyAny>,
    limits: Option<&Bound<'py, PyDict>>,
    base: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let opts = decode_options(limits)?;
    let base = base_arg(py, base, opts)?;
    let src = source(src)?;
    let bytes = py
        .detach(|| match src {
            Source::Bytes(b) => nnc::decode_to_bytes_with_base(b.as_slice(), opts, base),
            Source::Path(p) => {
                let f = std::fs::File::open(&p).map_err(|e| Error::Io {
                    context: format!("opening {}", p.display()),
                    source: e,
                })?;
                nnc::decode_to_bytes_with_base(
                    std::io::BufReader::with_capacity(1 << 20, f),
                    opts,
                    base,
                )
            }
        })
        .map_err(to_py)?;
    Ok(PyBytes::new(py, &bytes))
}

/// Decodes the .nnc at `src` to the ONNX file `dst`, its external tensors to their files
/// beside it (or inlined), each written as it is decoded: memory stays near the largest
/// tensor whatever the model's size. Nothing is left behind on failure.
#[pyfunction]
#[pyo3(signature = (src, dst, inline_external=false, limits=None, base=None))]
fn decode_file(
    py: Python<'_>,
    src: PathBuf,
    dst: PathBuf,
    inline_external: bool,
    limits: Option<&Bound<'_, PyDict>>,
    base: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let opts = decode_options(limits)?;
    let base = base_arg(py, base, opts)?;
    py.detach(|| nnc::decode_file_with_base(&src, &dst, opts, inline_external, base))
        .map_err(to_py)
}

enum Inner {
    Mapped(RsArchive<MappedFile>),
    Memory(RsArchive<Cursor<Vec<u8>>>),
}

/// A .nnc file opened for random access (see `nnc.open`).
#[pyclass(module = "nnc._nnc")]
struct Archive {
    inner: Inner,
    names: Vec<String>,
}

#[pymethods]
impl Archive {
    #[new]
    #[pyo3(signature = (src, limits=None, base=None))]
    fn new(
        py: Python<'_>,
        src: &Bound<'_, PyAny>,
        limits: Option<&Bound<'_, PyDict>>,
        base: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let opts = decode_options(limits)?;
        let base = base_arg(py, base, opts)?;
        let src = source(src)?;
        let inner = py
            .detach(|| match src {
                Source::Path(p) => RsArchive::open_with_base(p, opts, base).map(Inner::Mapped),
                Source::Bytes(b) => {
                    RsArchive::with_base(Cursor::new(b), opts, base).map(Inner::Memory)
                }
            })
            .map_err(to_py)?;
        let names = match &inner {
            Inner::Mapped(a) => a.names().map(str::to_owned).collect(),
            Inner::Memory(a) => a.names().map(str::to_owned).collect(),
        };
        Ok(Archive { inner, names })
    }

    /// Tensor names in walk order.
    fn names(&self) -> Vec<String> {
        self.names.clone()
    }

    fn __len__(&self) -> usize {
        self.names.len()
    }

    /// Decodes one tensor by name: `(name, onnx_dtype, numpy_dtype or None, dims, data)`,
    /// `data` a bytearray of the canonical little-endian bytes.
    #[allow(clippy::type_complexity)]
    fn tensor<'py>(
        &mut self,
        py: Python<'py>,
        name: &str,
    ) -> PyResult<(
        String,
        i32,
        Option<&'static str>,
        Vec<u64>,
        Bound<'py, PyByteArray>,
    )> {
        let inner = &mut self.inner;
        let t = py
            .detach(|| match inner {
                Inner::Mapped(a) => a.tensor(name),
                Inner::Memory(a) => a.tensor(name),
            })
            .map_err(to_py)?;
        let data = PyByteArray::new(py, &t.data);
        let np = t.numpy_dtype();
        Ok((t.name, t.data_type, np, t.dims, data))
    }

    /// Decodes the whole file to ONNX bytes.
    fn decode_model<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let inner = &mut self.inner;
        let bytes = py
            .detach(|| match inner {
                Inner::Mapped(a) => a.decode_model(),
                Inner::Memory(a) => a.decode_model(),
            })
            .map_err(to_py)?;
        Ok(PyBytes::new(py, &bytes))
    }
}

/// Encoder options as keyword arguments, with the names and defaults of `nnc encode`.
#[allow(clippy::too_many_arguments)]
fn encode_options(
    lossless: bool,
    quality: &str,
    quantizer: &str,
    delta: f32,
    mu: f32,
    exp_bits: u8,
    man_bits: u8,
    step: Option<f32>,
    per_tensor: Option<f32>,
    levels_bits: Option<u32>,
    range: (f32, f32),
    granularity: &str,
    rdo: f64,
    fine_bits: Option<u8>,
    kernel_sums: bool,
    min_elements: u64,
    all_tensors: bool,
    records_only: bool,
) -> PyResult<EncodeOptions> {
    let value_err = |m: String| InvalidOptionsError::new_err(m);
    let mut opts = EncodeOptions {
        records_only,
        ..EncodeOptions::default()
    };
    if lossless {
        return Ok(opts);
    }
    let family = match quantizer {
        "midtread" => Family::Midtread,
        "midrise" => Family::Midrise,
        "deadzone" => Family::DeadZone { delta },
        "mulaw" => Family::MuLaw { mu },
        "minifloat" => Family::Minifloat {
            layout: MinifloatLayout { exp_bits, man_bits },
        },
        q => return Err(value_err(format!("unknown quantizer {q:?}"))),
    };
    let quality = match quality {
        "high" => Quality::High,
        "default" => Quality::Default,
        "small" => Quality::Small,
        q => return Err(value_err(format!("unknown quality {q:?}"))),
    };
    let given = [levels_bits.is_some(), step.is_some(), per_tensor.is_some()];
    if given.iter().filter(|&&b| b).count() > 1 {
        return Err(value_err(
            "give at most one of levels_bits, step, per_tensor".into(),
        ));
    }
    let step = if let Some(k) = levels_bits {
        StepRule::Thesis {
            min: range.0,
            max: range.1,
            levels_bits: k,
        }
    } else if let Some(s) = step {
        StepRule::Fixed(s)
    } else {
        StepRule::StdFraction(per_tensor.unwrap_or(quality.std_fraction()))
    };
    let per_channel = match granularity {
        "channel" => matches!(step, StepRule::StdFraction(_)),
        "tensor" => false,
        g => return Err(value_err(format!("unknown granularity {g:?}"))),
    };
    opts.lossy = Some(LossyOptions {
        family,
        step,
        per_channel,
        min_elements,
        all_tensors,
        mulaw_levels_bits: levels_bits.unwrap_or(8),
        rdo,
        fine_bits,
        kernel_sums,
    });
    Ok(opts)
}

/// Encodes an ONNX model (path or bytes) to .nnc. With `output`, writes the file and returns
/// None; without, returns the .nnc bytes. Options as `nnc encode`.
#[pyfunction]
#[pyo3(signature = (src, output=None, *, lossless=false, quality="default", quantizer="deadzone",
    delta=0.5, mu=255.0, exp_bits=5, man_bits=10, step=None, per_tensor=None, levels_bits=None,
    range=(-1.0, 1.0), granularity="channel", rdo=0.0, fine_bits=None, kernel_sums=false,
    min_elements=1024, all_tensors=false, records_only=false, base=None))]
#[allow(clippy::too_many_arguments)]
fn encode<'py>(
    py: Python<'py>,
    src: &Bound<'py, PyAny>,
    output: Option<PathBuf>,
    lossless: bool,
    quality: &str,
    quantizer: &str,
    delta: f32,
    mu: f32,
    exp_bits: u8,
    man_bits: u8,
    step: Option<f32>,
    per_tensor: Option<f32>,
    levels_bits: Option<u32>,
    range: (f32, f32),
    granularity: &str,
    rdo: f64,
    fine_bits: Option<u8>,
    kernel_sums: bool,
    min_elements: u64,
    all_tensors: bool,
    records_only: bool,
    base: Option<&Bound<'py, PyAny>>,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let base = base_arg(py, base, DecodeOptions::default())?;
    let mut opts = encode_options(
        lossless,
        quality,
        quantizer,
        delta,
        mu,
        exp_bits,
        man_bits,
        step,
        per_tensor,
        levels_bits,
        range,
        granularity,
        rdo,
        fine_bits,
        kernel_sums,
        min_elements,
        all_tensors,
        records_only,
    )?;
    opts.base = base;
    let enc = Encoder::new(opts).map_err(to_py)?;
    let src = source(src)?;
    let out = py
        .detach(|| match (src, output) {
            (Source::Path(p), Some(o)) => enc.encode_file(p, o).map(|_| None),
            (Source::Bytes(b), Some(o)) => {
                let (bytes, _) = enc.encode_bytes(&b)?;
                std::fs::write(&o, bytes)
                    .map(|_| None)
                    .map_err(|e| Error::Io {
                        context: format!("writing {}", o.display()),
                        source: e,
                    })
            }
            (Source::Bytes(b), None) => enc.encode_bytes(&b).map(|(bytes, _)| Some(bytes)),
            (Source::Path(p), None) => {
                let dir = std::env::temp_dir().join(format!(
                    "nnc-py-{}-{:?}",
                    std::process::id(),
                    std::thread::current().id()
                ));
                std::fs::create_dir_all(&dir).map_err(|e| Error::Io {
                    context: "creating a temporary directory".into(),
                    source: e,
                })?;
                let tmp = dir.join("out.nnc");
                let r = enc.encode_file(p, &tmp).and_then(|_| {
                    std::fs::read(&tmp).map_err(|e| Error::Io {
                        context: format!("reading {}", tmp.display()),
                        source: e,
                    })
                });
                let _ = std::fs::remove_dir_all(&dir);
                r.map(Some)
            }
        })
        .map_err(to_py)?;
    Ok(out.map(|b| PyBytes::new(py, &b)))
}

/// The extension module.
#[pymodule]
fn _nnc(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_function(wrap_pyfunction!(decode_model, m)?)?;
    m.add_function(wrap_pyfunction!(decode_file, m)?)?;
    m.add_function(wrap_pyfunction!(encode, m)?)?;
    m.add_class::<Archive>()?;
    m.add("NncError", py.get_type::<NncError>())?;
    m.add("FormatError", py.get_type::<FormatError>())?;
    m.add("LimitError", py.get_type::<LimitError>())?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add("UnsupportedError", py.get_type::<UnsupportedError>())?;
    m.add("InvalidOptionsError", py.get_type::<InvalidOptionsError>())?;
    m.add("NotFoundError", py.get_type::<NotFoundError>())?;
    m.add("NncIOError", py.get_type::<NncIOError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
