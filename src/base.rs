//! Bases (spec §14): the model a receiver already holds, against which an *update* file is
//! coded. An update names its base by the base's identity (BASE record, §14.2), refers to the
//! base's tensors instead of carrying them again (coding 4, §14.3) and compresses its graph
//! with the base's dictionary (GRAPH compression 2, §14.4).
//!
//! A base is a decoded model: the same base may be given as the `.onnx` file that a full
//! `.nnc` decoded to, or as that `.nnc` (decoded here first, itself against its own base when
//! it is an update: chains). Everything an update may use of its base is a function of the
//! decoded model alone (§14.1): its *places* (every tensor of the walk that holds data, with
//! its name, type, dims and canonical bytes) and its *skeleton* (the model with the data of
//! those places taken out, serialized).
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use prost::Message;
use sha2::{Digest, Sha256};

use crate::error::{Error, FormatRule, Result};
use crate::onnx::lift::lift;
use crate::onnx::proto::ModelProto;
use crate::onnx::walk::{holds_data, walk, SlotMut};
use crate::{DecodeOptions, Limits};

/// Length of a base identity (SHA-256).
pub const IDENTITY_LEN: usize = 32;
/// Places of at most this many bytes go into the dictionary after the skeleton (spec §14.1).
pub const DICTIONARY_PLACE_MAX: usize = 64 << 10;
/// The dictionary is cut to this many bytes (spec §14.1).
pub const DICTIONARY_MAX: usize = 64 << 20;
/// Length of the BASE record's payload (spec §14.2).
pub const RECORD_LEN: usize = 4 + IDENTITY_LEN + 16;

/// One tensor of a base (spec §14.1).
#[derive(Clone, PartialEq, Eq)]
pub struct Place {
    /// The walk's name for the place (spec §5.2).
    pub name: String,
    /// ONNX data type.
    pub data_type: i32,
    /// Dimensions.
    pub dims: Vec<u64>,
    /// Canonical bytes (spec §6.2).
    pub data: Vec<u8>,
    /// The quantizer parameters of the record it was decoded from (coding 3), when the base is
    /// a `.nnc`: the grid an encoder codes this tensor's next version on (not part of the
    /// identity).
    pub grid: Option<Vec<u8>>,
}

/// A decoded model that updates may refer to.
pub struct BaseModel {
    identity: [u8; IDENTITY_LEN],
    places: Vec<Place>,
    by_name: HashMap<String, Vec<u32>>,
    dictionary: Vec<u8>,
    /// The identity of this model's own base when it was decoded from an update.
    parent: Option<[u8; IDENTITY_LEN]>,
    /// The sum of the places' canonical bytes (see `canonical_len`).
    canonical_len: u64,
}

impl std::fmt::Debug for BaseModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BaseModel")
            .field("identity", &self.identity_hex())
            .field("places", &self.places.len())
            .field("dictionary", &self.dictionary.len())
            .finish()
    }
}

impl BaseModel {
    /// The base of a decoded model (every tensor's data in the model, or in external files
    /// under `dir`).
    pub fn from_model(mut m: ModelProto, dir: Option<&Path>, limits: &Limits) -> Result<Self> {
        let lifted = lift(&mut m, dir, limits.max_depth)?;
        let mut places = Vec::with_capacity(lifted.len());
        for t in lifted {
            if t.in_graph {
                continue;
            }
            places.push(Place {
                name: t.name,
                data_type: t.data_type,
                dims: t.dims,
                data: t.data.to_vec(),
                grid: None,
            });
        }
        // The skeleton: what lifting left, without the marks of where data was.
        walk(&mut m, limits.max_depth, &mut |_, slot| {
            if let SlotMut::Tensor(t) = slot {
                if !holds_data(t) {
                    t.data_location = None;
                    t.external_data.clear();
                }
            }
            Ok(())
        })?;
        let skeleton = m.encode_to_vec();
        Ok(Self::from_parts(skeleton, places))
    }

    fn from_parts(skeleton: Vec<u8>, places: Vec<Place>) -> Self {
        let mut h = Sha256::new();
        h.update(b"nnc base 1\0");
        h.update((skeleton.len() as u64).to_le_bytes());
        h.update(&skeleton);
        h.update((places.len() as u64).to_le_bytes());
        for p in &places {
            h.update((p.name.len() as u64).to_le_bytes());
            h.update(p.name.as_bytes());
            h.update(p.data_type.to_le_bytes());
            h.update((p.dims.len() as u64).to_le_bytes());
            for d in &p.dims {
                h.update(d.to_le_bytes());
            }
            h.update((p.data.len() as u64).to_le_bytes());
            h.update(&p.data);
        }
        let identity: [u8; IDENTITY_LEN] = h.finalize().into();
        let mut dictionary = skeleton;
        for p in &places {
            if dictionary.len() >= DICTIONARY_MAX {
                break;
            }
            if p.data.len() <= DICTIONARY_PLACE_MAX {
                dictionary.extend_from_slice(&p.data);
            }
        }
        dictionary.truncate(DICTIONARY_MAX);
        let mut by_name: HashMap<String, Vec<u32>> = HashMap::new();
        for (i, p) in places.iter().enumerate() {
            by_name.entry(p.name.clone()).or_default().push(i as u32);
        }
        let canonical_len = places.iter().map(|p| p.data.len() as u64).sum();
        BaseModel {
            identity,
            places,
            by_name,
            dictionary,
            parent: None,
            canonical_len,
        }
    }

    /// The base in an ONNX file (external data looked up beside it).
    pub fn from_onnx_file(path: &Path, limits: &Limits) -> Result<Self> {
        let bytes =
            std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let model = ModelProto::decode(bytes.as_slice()).map_err(|e| {
            Error::input(
                None,
                format!("base {} is not an ONNX ModelProto: {e}", path.display()),
            )
        })?;
        drop(bytes);
        Self::from_model(model, path.parent(), limits)
    }

    /// The base that a `.nnc` file decodes to; `parent` is that file's own base when it is an
    /// update.
    pub fn from_nnc<R: Read>(
        r: R,
        opts: DecodeOptions,
        parent: Option<Arc<BaseModel>>,
    ) -> Result<Self> {
        let d = crate::Decoder::with_base(r, opts, parent)?;
        let parent = d.base_identity();
        // The model, and the grids of its quantized records (name, dims, in file order).
        let (model, grids) = d.into_model_and_grids()?;
        let mut b = Self::from_model(model, None, &opts.limits)?;
        let mut grids = grids.into_iter().peekable();
        for p in &mut b.places {
            if let Some((n, dims, _)) = grids.peek() {
                if *n == p.name && *dims == p.dims {
                    p.grid = grids.next().map(|g| g.2);
                }
            }
        }
        b.parent = parent;
        Ok(b)
    }

    /// Opens a chain of bases, root first: each `.nnc` after the first is decoded against the
    /// one before it; `.onnx` files (anything that is not an nnc file) stand alone.
    pub fn open_chain(paths: &[impl AsRef<Path>], opts: DecodeOptions) -> Result<Arc<Self>> {
        let mut base: Option<Arc<BaseModel>> = None;
        for p in paths {
            let p = p.as_ref();
            let mut f = std::fs::File::open(p)
                .map_err(|e| Error::io(format!("opening base {}", p.display()), e))?;
            let mut magic = [0u8; 8];
            let n = f.read(&mut magic).unwrap_or(0);
            let b = if n == 8 && magic == crate::container::MAGIC {
                let f = std::fs::File::open(p)
                    .map_err(|e| Error::io(format!("opening base {}", p.display()), e))?;
                Self::from_nnc(std::io::BufReader::new(f), opts, base.take())?
            } else {
                Self::from_onnx_file(p, &opts.limits)?
            };
            base = Some(Arc::new(b));
        }
        base.ok_or_else(|| Error::input(None, "no base given"))
    }

    /// The identity (spec §14.1).
    pub fn identity(&self) -> [u8; IDENTITY_LEN] {
        self.identity
    }

    /// The identity in lower-case hex.
    pub fn identity_hex(&self) -> String {
        hex(&self.identity)
    }

    /// The identity of the base this model was decoded against, if it was an update.
    pub fn parent(&self) -> Option<[u8; IDENTITY_LEN]> {
        self.parent
    }

    /// The places, in walk order.
    pub fn places(&self) -> &[Place] {
        &self.places
    }

    /// The sum of the places' canonical bytes: what an update's records may rebuild from the
    /// base, which the expansion rule counts as input (spec §10).
    pub fn canonical_len(&self) -> u64 {
        self.canonical_len
    }

    /// The dictionary of GRAPH compression 2 (spec §14.1).
    pub fn dictionary(&self) -> &[u8] {
        &self.dictionary
    }

    /// The place an encoder may refer to for a tensor named `name` of this type and shape:
    /// the one at `ordinal` if it matches, else the first of that name that does.
    pub fn find(&self, name: &str, data_type: i32, dims: &[u64], ordinal: usize) -> Option<u32> {
        let fits = |i: u32| {
            let p = &self.places[i as usize];
            p.name == name && p.data_type == data_type && p.dims == dims
        };
        if ordinal < self.places.len() && fits(ordinal as u32) {
            return Some(ordinal as u32);
        }
        self.by_name
            .get(name)?
            .iter()
            .copied()
            .find(|&i| fits(i))
    }

    /// The BASE record's payload naming this base (spec §14.2).
    pub fn record(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(RECORD_LEN);
        p.extend_from_slice(&[1, 0, 0, 0]);
        p.extend_from_slice(&self.identity);
        p.extend_from_slice(&(self.places.len() as u64).to_le_bytes());
        p.extend_from_slice(&(self.dictionary.len() as u64).to_le_bytes());
        p
    }
}

/// The base of a record that needs one (spec §14.3, §14.6, §14.7): `base` if the file has a
/// BASE record, else the `base` error naming `what` at `at`.
pub fn required<'b>(base: Option<&'b BaseModel>, what: &str, at: u64) -> Result<&'b BaseModel> {
    base.ok_or_else(|| {
        Error::format(
            FormatRule::Base,
            at,
            format!("{what} in a file without a BASE record"),
        )
    })
}

/// Lower-case hex of `b`.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A BASE record's payload (spec §14.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaseRecord {
    /// The base's identity.
    pub identity: [u8; IDENTITY_LEN],
    /// How many places the base has.
    pub places: u64,
    /// The length of the base's dictionary.
    pub dictionary: u64,
}

impl BaseRecord {
    /// Parses the payload of a BASE record at file offset `at`.
    pub fn parse(payload: &[u8], at: u64) -> Result<BaseRecord> {
        let err = |off: u64, d: String| Error::format(FormatRule::Base, at + off, d);
        if payload.len() != RECORD_LEN {
            return Err(err(
                0,
                format!(
                    "BASE payload is {} bytes, {RECORD_LEN} expected",
                    payload.len()
                ),
            ));
        }
        if payload[0] != 1 {
            return Err(err(0, format!("unknown BASE version {}", payload[0])));
        }
        if payload[1..4] != [0, 0, 0] {
            return Err(Error::format(
                FormatRule::Reserved,
                at + 1,
                "reserved BASE bytes not zero",
            ));
        }
        let mut identity = [0u8; IDENTITY_LEN];
        identity.copy_from_slice(&payload[4..4 + IDENTITY_LEN]);
        let u = |o: usize| u64::from_le_bytes(payload[o..o + 8].try_into().unwrap_or([0; 8]));
        Ok(BaseRecord {
            identity,
            places: u(4 + IDENTITY_LEN),
            dictionary: u(12 + IDENTITY_LEN),
        })
    }

    /// Spec §14.2: the base the caller gave must be the one the record names.
    pub fn check(&self, base: Option<&BaseModel>, at: u64) -> Result<()> {
        let Some(b) = base else {
            return Err(Error::format(
                FormatRule::BaseMissing,
                at,
                format!(
                    "this file is an update: it decodes only against its base (identity {}), \
                     which was not given",
                    hex(&self.identity)
                ),
            ));
        };
        if b.identity != self.identity
            || b.places.len() as u64 != self.places
            || b.dictionary.len() as u64 != self.dictionary
        {
            return Err(Error::format(
                FormatRule::BaseMismatch,
                at,
                format!(
                    "this update's base has identity {} ({} tensors), the base given has {} \
                     ({} tensors)",
                    hex(&self.identity),
                    self.places,
                    b.identity_hex(),
                    b.places.len()
                ),
            ));
        }
        Ok(())
    }
}

/// Decompresses a GRAPH payload of compression 2 (spec §14.4): one zstd frame whose content
/// follows the base's dictionary as a prefix, into exactly `n` bytes reserved fallibly.
pub fn decompress_graph(
    payload: &[u8],
    dictionary: &[u8],
    n: usize,
    at: u64,
) -> Result<(Vec<u8>, std::result::Result<usize, String>)> {
    use zstd::zstd_safe::{DCtx, DParameter};
    let mut v = crate::error::try_zeroed(n, at)?;
    let mut d = DCtx::create();
    let r = (|| {
        d.set_parameter(DParameter::WindowLogMax(WINDOW_LOG_MAX))
            .map_err(zstd_err)?;
        d.ref_prefix(dictionary).map_err(zstd_err)?;
        let k = d.decompress(&mut v[..], payload).map_err(zstd_err)?;
        Ok(k)
    })();
    if let Ok(k) = r {
        v.truncate(k);
    }
    Ok((v, r))
}

/// Compresses a serialized graph with the base's dictionary as a prefix (spec §14.4).
pub fn compress_graph(graph: &[u8], dictionary: &[u8], level: i32) -> Result<Vec<u8>> {
    use zstd::zstd_safe::{CCtx, CParameter};
    let total = (graph.len() + dictionary.len()).max(1 << 10) as u64;
    let log = (64 - (total - 1).leading_zeros()).clamp(10, WINDOW_LOG_MAX);
    let mut c = CCtx::create();
    let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(graph.len()));
    let r = (|| {
        c.set_parameter(CParameter::CompressionLevel(level))
            .map_err(zstd_err)?;
        c.set_parameter(CParameter::WindowLog(log)).map_err(zstd_err)?;
        c.set_parameter(CParameter::ContentSizeFlag(true))
            .map_err(zstd_err)?;
        c.ref_prefix(dictionary).map_err(zstd_err)?;
        c.compress2(&mut out, graph).map_err(zstd_err)
    })();
    r.map_err(|e| {
        Error::io(
            "zstd compression of the graph against the base",
            std::io::Error::other(e),
        )
    })?;
    Ok(out)
}

/// The largest zstd window of a GRAPH frame of compression 2 (spec §14.4): 128 MiB.
pub const WINDOW_LOG_MAX: u32 = 27;

fn zstd_err(code: usize) -> String {
    zstd::zstd_safe::get_error_name(code).to_owned()
}
