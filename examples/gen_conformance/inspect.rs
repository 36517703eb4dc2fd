//! Reads the structure of tensor payloads (spec §7): which coding, which symbol-stream mode
//! each stream uses, how many chunks, and where each field lies. The generator uses it to
//! check that every valid vector exercises what it claims (by parsing the file, not by
//! trusting the encoder's choice) and to find the bytes an invalid vector changes.
use nnc::bytes::Cursor;
use nnc::container::tensor_header::{Coding, TensorHeader};
use nnc::entropy::FreqModel;
use nnc::error::FormatRule;
use nnc::onnx::dtype;
use nnc::quant::{Kind, QuantParams, MAX_LEVEL};
use nnc::Limits;

/// One rANS chunk: where its word count and its words are.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub count_pos: usize,
    pub words_pos: usize,
    pub words: usize,
}

/// The rANS part shared by modes 2..5: chunk length and chunks (spec §7.3.1).
#[derive(Debug, Clone)]
pub struct Chunks {
    pub chunk_pos: usize,
    pub chunk: u64,
    pub chunks: Vec<Chunk>,
}

#[derive(Debug, Clone)]
pub enum Body {
    Stored,
    Constant,
    /// Modes 2 and 3: one model.
    Single {
        model_pos: usize,
        model: FreqModel,
        chunks: Chunks,
    },
    /// Mode 4 (spec §7.3.2), and mode 7 (§7.3.6, its chunks wide as in `Wide`).
    Classes {
        kc_pos: usize,
        /// Position of each class's model kind byte.
        kinds: Vec<(usize, u8)>,
        seg_pos: usize,
        seg: u64,
        class_stream: Box<Stream>,
        chunks: Chunks,
    },
    /// Mode 6 (spec §7.3.5, wide rANS): a model kind byte and a model; `Chunk::words` counts
    /// 16-bit words and `Chunk::words_pos` is where the chunk's 32 lane states start.
    Wide {
        kind_pos: usize,
        kind: u8,
        model: FreqModel,
        chunks: Chunks,
    },
    /// Mode 8 (spec §7.3.7, split levels): `k`, `m`, the token stream, the raw byte count
    /// and the raw bytes.
    Split {
        k_pos: usize,
        k: u8,
        m: u8,
        tokens: Box<Stream>,
        raw_count_pos: usize,
        raw_pos: usize,
        raw_len: usize,
    },
    /// Mode 5 (spec §7.3.3, context classes).
    Context {
        kc_pos: usize,
        kinds: Vec<(usize, u8)>,
        chunks: Chunks,
    },
}

/// One symbol stream: where it starts (its mode byte) and ends, in payload offsets.
#[derive(Debug, Clone)]
pub struct Stream {
    pub start: usize,
    pub end: usize,
    pub mode: u8,
    pub body: Body,
}

impl Stream {
    /// Modes used by this stream and any stream nested in it.
    pub fn modes(&self) -> Vec<u8> {
        let mut v = vec![self.mode];
        match &self.body {
            Body::Classes { class_stream, .. } => v.extend(class_stream.modes()),
            Body::Split { tokens, .. } => v.extend(tokens.modes()),
            _ => {}
        }
        v
    }
    pub fn chunks(&self) -> Option<&Chunks> {
        match &self.body {
            Body::Single { chunks, .. }
            | Body::Classes { chunks, .. }
            | Body::Context { chunks, .. }
            | Body::Wide { chunks, .. } => Some(chunks),
            _ => None,
        }
    }
    /// Kinds of the frequency models of this stream (2 exact, 3 compact), nested ones too.
    pub fn model_kinds(&self) -> Vec<u8> {
        match &self.body {
            Body::Single { .. } => vec![self.mode],
            Body::Wide { kind, .. } => vec![*kind],
            Body::Classes {
                kinds,
                class_stream,
                ..
            } => {
                let mut v: Vec<u8> = kinds.iter().map(|k| k.1).collect();
                v.extend(class_stream.model_kinds());
                v
            }
            Body::Context { kinds, .. } => kinds.iter().map(|k| k.1).collect(),
            Body::Split { tokens, .. } => tokens.model_kinds(),
            _ => Vec::new(),
        }
    }
}

/// What a quantized payload holds besides its stream (spec §7.6).
#[derive(Debug, Clone)]
pub struct QuantInfo {
    pub params: QuantParams,
    /// Level magnitudes in the μ-law table (K + 1), 0 otherwise.
    pub mulaw_table: usize,
    pub width_pos: usize,
    pub width: usize,
}

#[derive(Debug, Clone)]
pub struct PayloadInfo {
    pub coding: Coding,
    pub streams: Vec<Stream>,
    pub quant: Option<QuantInfo>,
}

fn cur(p: &[u8], at: usize) -> Cursor<'_> {
    Cursor::new(&p[at..], at as u64, FormatRule::Payload)
}

fn pos(c: &Cursor<'_>) -> usize {
    c.offset() as usize
}

fn read_chunks(p: &[u8], at: usize, count: usize) -> (Chunks, usize) {
    read_chunks_of(p, at, count, 4, 0)
}

/// The chunk table of modes 2..5 (`unit` 4, `head` 0) or of mode 6 (16-bit words after
/// 128 bytes of lane states).
fn read_chunks_of(p: &[u8], at: usize, count: usize, unit: usize, head: usize) -> (Chunks, usize) {
    let mut c = cur(p, at);
    let chunk_pos = pos(&c);
    let chunk = c.varint("chunk").unwrap();
    let n = count.div_ceil(chunk as usize);
    let mut chunks = Vec::new();
    for _ in 0..n {
        let count_pos = pos(&c);
        let w = c.varint("words").unwrap() as usize;
        chunks.push(Chunk {
            count_pos,
            words_pos: 0,
            words: w,
        });
    }
    let mut wp = pos(&c);
    for ch in &mut chunks {
        ch.words_pos = wp;
        wp += head + unit * ch.words;
    }
    (
        Chunks {
            chunk_pos,
            chunk,
            chunks,
        },
        wp,
    )
}

fn read_models(p: &[u8], at: usize, alphabet: u64) -> (usize, Vec<(usize, u8)>, usize) {
    let mut c = cur(p, at);
    let kc_pos = pos(&c);
    let k = c.varint("classes").unwrap();
    let mut kinds = Vec::new();
    for _ in 0..k {
        let kp = pos(&c);
        let kind = c.u8("kind").unwrap();
        match kind {
            2 => FreqModel::read(&mut c, alphabet).unwrap(),
            _ => FreqModel::read_compact(&mut c, alphabet).unwrap(),
        };
        kinds.push((kp, kind));
    }
    (kc_pos, kinds, pos(&c))
}

/// Parses one symbol stream of `count` symbols starting at payload offset `at`.
pub fn parse_stream(p: &[u8], at: usize, count: usize, width: usize, alphabet: u64) -> Stream {
    let mut c = cur(p, at);
    let mode = c.u8("mode").unwrap();
    let (body, end) = match mode {
        0 => (Body::Stored, at + 1 + count * width),
        1 => {
            c.varint("constant").unwrap();
            (Body::Constant, pos(&c))
        }
        2 | 3 => {
            let model_pos = pos(&c);
            let model = if mode == 2 {
                FreqModel::read(&mut c, alphabet).unwrap()
            } else {
                FreqModel::read_compact(&mut c, alphabet).unwrap()
            };
            let (chunks, end) = read_chunks(p, pos(&c), count);
            (
                Body::Single {
                    model_pos,
                    model,
                    chunks,
                },
                end,
            )
        }
        4 | 7 => {
            let (kc_pos, kinds, next) = read_models(p, pos(&c), alphabet);
            let mut c = cur(p, next);
            let seg_pos = pos(&c);
            let seg = c.varint("segment").unwrap();
            let nseg = count.div_ceil(seg as usize);
            let class_stream = parse_stream(p, pos(&c), nseg, 1, kinds.len() as u64);
            let (chunks, end) = if mode == 7 {
                read_chunks_of(p, class_stream.end, count, 2, 128)
            } else {
                read_chunks(p, class_stream.end, count)
            };
            (
                Body::Classes {
                    kc_pos,
                    kinds,
                    seg_pos,
                    seg,
                    class_stream: Box::new(class_stream),
                    chunks,
                },
                end,
            )
        }
        5 => {
            let (kc_pos, kinds, next) = read_models(p, pos(&c), alphabet);
            let (chunks, end) = read_chunks(p, next, count);
            (
                Body::Context {
                    kc_pos,
                    kinds,
                    chunks,
                },
                end,
            )
        }
        6 => {
            let kind_pos = pos(&c);
            let kind = c.u8("kind").unwrap();
            let model = match kind {
                2 => FreqModel::read(&mut c, alphabet).unwrap(),
                _ => FreqModel::read_compact(&mut c, alphabet).unwrap(),
            };
            let (chunks, end) = read_chunks_of(p, pos(&c), count, 2, 128);
            (
                Body::Wide {
                    kind_pos,
                    kind,
                    model,
                    chunks,
                },
                end,
            )
        }
        8 => {
            let k_pos = pos(&c);
            let k = c.u8("k").unwrap();
            let m = c.u8("m").unwrap();
            let ta = nnc::entropy::split::token_alphabet(alphabet, k as u32, m as u32);
            let tokens = parse_stream(p, pos(&c), count, nnc::entropy::split::token_width(ta), ta);
            let mut c = cur(p, tokens.end);
            let raw_count_pos = pos(&c);
            let raw_len = c.varint("raw bytes").unwrap() as usize;
            let raw_pos = pos(&c);
            (
                Body::Split {
                    k_pos,
                    k,
                    m,
                    tokens: Box::new(tokens),
                    raw_count_pos,
                    raw_pos,
                    raw_len,
                },
                raw_pos + raw_len,
            )
        }
        m => panic!("unknown stream mode {m}"),
    };
    Stream {
        start: at,
        end,
        mode,
        body,
    }
}

/// Parses the payload of a valid tensor record.
pub fn parse_payload(header: &[u8], payload: &[u8]) -> PayloadInfo {
    let h = TensorHeader::parse(header, 0, &Limits::default()).expect("valid tensor header");
    let mut info = PayloadInfo {
        coding: h.coding,
        streams: Vec::new(),
        quant: None,
    };
    match h.coding {
        Coding::Planes => {
            let w = dtype::unit_bytes(h.data_type);
            let count = h.data_bytes as usize / w;
            let mut at = 0;
            for _ in 0..w {
                let s = parse_stream(payload, at, count, 1, 256);
                at = s.end;
                info.streams.push(s);
            }
            assert_eq!(at, payload.len(), "planes payload not fully parsed");
        }
        Coding::Quantized => {
            let params = QuantParams::parse(&h.params, 0, &h.dims).expect("valid params");
            let mut c = cur(payload, 0);
            let mut table = 0;
            if let Kind::MuLaw { .. } = params.kind {
                table = c.varint("K").unwrap() as usize + 1;
                c.take(4 * table, "table").unwrap();
            }
            let width_pos = pos(&c);
            let width = c.u8("width").unwrap() as usize;
            let alphabet = match params.kind {
                Kind::Minifloat { layout, .. } => 2 * layout.magnitudes() as u64,
                Kind::MuLaw { .. } => 2 * table as u64 - 1,
                _ => 2 * MAX_LEVEL as u64 + 1,
            };
            let s = parse_stream(payload, pos(&c), h.elements as usize, width, alphabet);
            assert_eq!(s.end, payload.len(), "quantized payload not fully parsed");
            info.streams.push(s);
            info.quant = Some(QuantInfo {
                params,
                mulaw_table: table,
                width_pos,
                width,
            });
        }
        _ => {}
    }
    info
}
