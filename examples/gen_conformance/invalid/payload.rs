//! Invalid vectors of the payload codings (§7): raw, streams, models, rANS chunks, classes,
//! planes, zstd, quantized payloads.
use super::*;

/// Spec §2, §7, §7.1 on the planes of tensor "c" of the spec example: stored plane 3,
/// stored plane 2, constant plane 1, constant plane 0 (payload `00 <6> 00 <6> 01 00 01 00`).
pub(super) fn payloads(o: &mut Out) {
    let pay = |o: &mut Out,
               name: &str,
               rec: usize,
               sections: &[&'static str],
               what: &str,
               e: &dyn Fn(&mut Vec<u8>)| {
        let mut f = o.file(EX);
        e(&mut f.recs[rec].payload);
        o.add(name, "payload", sections, EX, what, f.bytes());
    };
    pay(
        o,
        "payload-raw-too-long",
        K,
        &["§7"],
        "Tensor \"k\" (raw): a 25th payload byte.",
        &|p| p.push(0),
    );
    pay(
        o,
        "payload-raw-too-short",
        K,
        &["§7"],
        "Tensor \"k\" (raw): 23 payload bytes.",
        &|p| {
            p.pop();
        },
    );
    pay(
        o,
        "payload-unknown-stream-mode-8",
        C,
        &["§7.1", "§12"],
        "Tensor \"c\": plane 3 in stream mode 8 (split levels, which only quantized level \
         streams may use, spec §7.3.7).",
        &|p| p[0] = 8,
    );
    pay(
        o,
        "payload-unknown-stream-mode-255",
        C,
        &["§7.1"],
        "Tensor \"c\": plane 2 in stream mode 255.",
        &|p| p[7] = 255,
    );
    pay(
        o,
        "payload-context-mode-on-top-plane",
        C,
        &["§7.3.3", "§7.4"],
        "Tensor \"c\": plane 3 (the top plane, which has no context) in mode 5.",
        &|p| p[0] = 5,
    );
    pay(
        o,
        "payload-context-mode-on-plane-0",
        C,
        &["§7.3.3", "§7.4"],
        "Tensor \"c\": plane 0 (only plane w - 2 = 2 has a context) in mode 5.",
        &|p| p[16] = 5,
    );
    pay(
        o,
        "payload-constant-symbol-outside-alphabet",
        C,
        &["§7.1"],
        "Tensor \"c\": plane 1 constant symbol 256 (alphabet 256).",
        &|p| splice(p, 15..16, &varint(256)),
    );
    pay(
        o,
        "payload-varint-overflow",
        C,
        &["§2", "§7.1"],
        "Tensor \"c\": plane 1 constant symbol as a 10-byte varint whose 10th byte is 2.",
        &|p| {
            let mut v = vec![0x80u8; 9];
            v.push(2);
            splice(p, 15..16, &v);
        },
    );
    pay(
        o,
        "payload-varint-too-long",
        C,
        &["§2", "§7.1"],
        "Tensor \"c\": plane 1 constant symbol as an 11-byte varint.",
        &|p| {
            let mut v = vec![0x80u8; 10];
            v.push(0);
            splice(p, 15..16, &v);
        },
    );
    pay(
        o,
        "payload-stream-cut-off",
        C,
        &["§7.1"],
        "Tensor \"c\": the payload ends before plane 0's symbol.",
        &|p| {
            p.pop();
        },
    );
    pay(
        o,
        "payload-stored-cut-off",
        C,
        &["§7.1"],
        "Tensor \"c\": the payload ends 5 bytes into plane 3's stored symbols.",
        &|p| p.truncate(6),
    );
    pay(
        o,
        "payload-planes-trailing-bytes",
        C,
        &["§7.4"],
        "Tensor \"c\": a byte after the last plane.",
        &|p| p.push(0),
    );

    // Stored symbols outside a small alphabet: an E2M1 minifloat (alphabet 16).
    let base = "quant-minifloat-e2m1";
    let mut f = o.file(base);
    let r = tensor_named(&f, "w");
    let n = RawHeader::parse(&f.recs[r].header).elements as usize;
    let mut p = vec![1u8, 0];
    p.extend((0..n).map(|i| if i == 100 { 16 } else { (i % 16) as u8 }));
    f.recs[r].payload = p;
    o.add(
        "payload-stored-symbol-outside-alphabet",
        "payload",
        &["§7.1", "§7.6.2"],
        base,
        "E2M1 minifloat tensor (alphabet 16) whose levels are a stored stream with one symbol 16.",
        f.bytes(),
    );
}

/// Spec §7.2, §7.3, §7.3.1 on the mode-2 stream of "stream-ans-exact" and the mode-3 stream
/// of "stream-ans-compact".
pub(super) fn models_and_chunks(o: &mut Out) {
    let ex2 = "stream-ans-exact";
    let edit = |o: &mut Out,
                name: &str,
                base: &'static str,
                sections: &[&'static str],
                what: &str,
                e: &dyn Fn(&mut Vec<u8>, &super::super::inspect::Stream)| {
        let mut f = o.file(base);
        let r = f.tensor(0);
        let s = payload_info(&f, r).streams[0].clone();
        e(&mut f.recs[r].payload, &s);
        o.add(name, "payload", sections, base, what, f.bytes());
    };
    edit(
        o,
        "payload-context-mode-single-byte-type",
        ex2,
        &["§7.3.3", "§7.4"],
        "The one plane of a UINT8 tensor (w = 1: no plane has a context) in mode 5.",
        &|p, _| p[0] = 5,
    );
    // Mode 2 layout: 02, m, s0, m−1 gaps, m−1 frequencies, chunk, word counts, words.
    edit(
        o,
        "payload-exact-model-one-symbol",
        ex2,
        &["§7.2.1"],
        "Mode 2 stream whose model has m = 1.",
        &|p, _| {
            *p = vec![2, 1, 250, 0x80, 0x20, 0];
        },
    );
    edit(
        o,
        "payload-exact-model-count-over-bytes",
        ex2,
        &["§7.2.1"],
        "Mode 2 model with m = 65536, more than the bytes left.",
        &|p, _| {
            splice(p, 1..2, &varint(65536));
            p.truncate(64);
        },
    );
    edit(
        o,
        "payload-exact-model-count-over-65536",
        ex2,
        &["§7.2.1"],
        "Mode 2 model with m = 65537.",
        &|p, _| splice(p, 1..2, &varint(65537)),
    );
    edit(
        o,
        "payload-exact-model-symbol-outside-alphabet",
        ex2,
        &["§7.2.1"],
        "Mode 2 model: the last gap makes the last symbol 256 (alphabet 256).",
        &|p, s| {
            let Body::Single { model, .. } = &s.body else {
                panic!()
            };
            let m = model.symbols.len();
            // Gaps are one byte each here: 2 + m − 1 is the last gap.
            let last = 2 + 1 + (m - 1) - 1;
            p[last] = (256 - model.symbols[m - 2] - 1) as u8;
            assert!(p[last] < 0x80);
        },
    );
    edit(
        o,
        "payload-exact-model-frequency-sum",
        ex2,
        &["§7.2.1"],
        "Mode 2 model: the first frequency is 65535 + 1, leaving nothing for the last symbol.",
        &|p, s| {
            let Body::Single { model, .. } = &s.body else {
                panic!()
            };
            let m = model.symbols.len();
            let first_freq = 2 + 1 + (m - 1);
            let old = varint((model.freqs[0] - 1) as u64).len();
            splice(p, first_freq..first_freq + old, &varint(65535));
        },
    );
    edit(
        o,
        "payload-exact-model-frequency-over-65535",
        ex2,
        &["§7.2.1"],
        "Mode 2 model: a frequency field of 65536.",
        &|p, s| {
            let Body::Single { model, .. } = &s.body else {
                panic!()
            };
            let m = model.symbols.len();
            let first_freq = 2 + 1 + (m - 1);
            let old = varint((model.freqs[0] - 1) as u64).len();
            splice(p, first_freq..first_freq + old, &varint(65536));
        },
    );
    edit(
        o,
        "payload-ans-zero-final-word",
        ex2,
        &["§7.3"],
        "The last word of the first rANS chunk set to 0.",
        &|p, s| {
            let c = &s.chunks().unwrap().chunks[0];
            let at = c.words_pos + 4 * (c.words - 1);
            p[at..at + 4].copy_from_slice(&[0; 4]);
        },
    );
    edit(o, "payload-ans-not-fully-consumed", ex2, &["§7.3"], "An extra word 0x00000001 before the first chunk's words (word count + 1): it is never needed, so the words are not all consumed.", &|p, s| {
        let ch = s.chunks().unwrap();
        let c = &ch.chunks[0];
        let (cp, wp, n) = (c.count_pos, c.words_pos, c.words);
        splice(p, wp..wp, &1u32.to_le_bytes());
        assert_eq!(varint(n as u64).len(), varint(n as u64 + 1).len());
        splice(p, cp..cp + varint(n as u64).len(), &varint(n as u64 + 1));
    });
    edit(o, "payload-ans-state-not-zero", ex2, &["§7.3"], "The first word of the first chunk (read last) with its low bit flipped: the state does not end at 0.", &|p, s| {
        let c = &s.chunks().unwrap().chunks[0];
        p[c.words_pos] ^= 1;
    });
    // Mode 6 layout: 06, kind, model, chunk, word counts, then per chunk 32 u32 lane states
    // and its 16-bit words.
    let exw = "stream-ans-wide";
    edit(
        o,
        "payload-wide-model-kind",
        exw,
        &["§7.3.5"],
        "A wide stream (mode 6) whose model kind byte is 4.",
        &|p, s| {
            let super::super::inspect::Body::Wide { kind_pos, .. } = &s.body else {
                panic!("{exw} is not in mode 6");
            };
            p[*kind_pos] = 4;
        },
    );
    edit(
        o,
        "payload-wide-lane-state-low",
        exw,
        &["§7.3.5"],
        "Lane 5 of the first wide chunk starts in state 0xFFFF, below 2^16.",
        &|p, s| {
            let at = s.chunks().unwrap().chunks[0].words_pos + 4 * 5;
            p[at..at + 4].copy_from_slice(&0xFFFFu32.to_le_bytes());
        },
    );
    edit(
        o,
        "payload-wide-not-fully-consumed",
        exw,
        &["§7.3.5"],
        "The last wide chunk has an extra 16-bit word (word count + 1): it is never read, so \
         the words are not all consumed.",
        &|p, s| {
            let ch = s.chunks().unwrap();
            let c = ch.chunks.last().unwrap();
            let (cp, n) = (c.count_pos, c.words);
            let end = c.words_pos + 128 + 2 * n;
            splice(p, end..end, &[0, 0]);
            assert_eq!(varint(n as u64).len(), varint(n as u64 + 1).len());
            splice(p, cp..cp + varint(n as u64).len(), &varint(n as u64 + 1));
        },
    );
    edit(
        o,
        "payload-chunk-length-zero",
        ex2,
        &["§7.3.1"],
        "Chunk length 0.",
        &|p, s| {
            let ch = s.chunks().unwrap();
            let n = varint(ch.chunk).len();
            splice(p, ch.chunk_pos..ch.chunk_pos + n, &[0]);
        },
    );
    edit(
        o,
        "payload-chunk-length-over-u32",
        ex2,
        &["§7.3.1"],
        "Chunk length 2^32.",
        &|p, s| {
            let ch = s.chunks().unwrap();
            let n = varint(ch.chunk).len();
            splice(p, ch.chunk_pos..ch.chunk_pos + n, &varint(1 << 32));
        },
    );
    edit(
        o,
        "payload-chunk-count-over-bytes",
        ex2,
        &["§7.3.1"],
        "Chunk length 1: 4000 chunks, more than the bytes left for their word counts.",
        &|p, s| {
            let ch = s.chunks().unwrap();
            let n = varint(ch.chunk).len();
            splice(p, ch.chunk_pos..ch.chunk_pos + n, &[1]);
        },
    );
    edit(
        o,
        "payload-chunk-word-count-over-bytes",
        ex2,
        &["§7.3.1"],
        "The first chunk's word count is 100000.",
        &|p, s| {
            let c = &s.chunks().unwrap().chunks[0];
            let n = varint(c.words as u64).len();
            splice(p, c.count_pos..c.count_pos + n, &varint(100_000));
        },
    );
    edit(
        o,
        "payload-words-cut-off",
        ex2,
        &["§7.3.1"],
        "The payload ends 2 bytes before the last word's end.",
        &|p, _| {
            let n = p.len();
            p.truncate(n - 2);
        },
    );

    let ex3 = "stream-ans-compact";
    // Mode 3 layout: 03, R, R × (skip, len − 1), codes, chunk, ...
    edit(
        o,
        "payload-compact-model-code-zero",
        ex3,
        &["§7.2.2"],
        "Compact model: the first frequency code is 0.",
        &|p, s| {
            let Body::Single { model, .. } = &s.body else {
                panic!()
            };
            let codes = s.chunks().unwrap().chunk_pos - model.symbols.len();
            p[codes] = 0;
        },
    );
    edit(
        o,
        "payload-compact-run-outside-alphabet",
        ex3,
        &["§7.2.2"],
        "Compact model: the last run ends past 256.",
        &|p, s| {
            let Body::Single { model, .. } = &s.body else {
                panic!()
            };
            let codes = s.chunks().unwrap().chunk_pos - model.symbols.len();
            // The last run's `len − 1` is the byte just before the codes.
            assert!(p[codes - 1] < 0x70);
            p[codes - 1] += 10;
        },
    );
    edit(
        o,
        "payload-compact-one-symbol",
        ex3,
        &["§7.2.2"],
        "Compact model with one run of one symbol.",
        &|p, _| {
            *p = vec![3, 1, 0, 0, 5, 0x80, 0x20, 1, 0, 0, 0, 0];
        },
    );
    edit(
        o,
        "payload-compact-runs-over-bytes",
        ex3,
        &["§7.2.2"],
        "Compact model with R = 5000 runs, more than the bytes left allow.",
        &|p, _| {
            splice(p, 1..2, &varint(5000));
        },
    );
    edit(
        o,
        "payload-compact-run-length-over-65536",
        ex3,
        &["§7.2.2"],
        "Compact model: the first run's length field is 65536.",
        &|p, _| {
            splice(p, 3..4, &varint(65536));
        },
    );
    // More than 65536 symbols needs a larger alphabet than a plane's: a quantized stream.
    let base = "quant-midtread";
    let mut f = o.file(base);
    let r = tensor_named(&f, "w");
    f.recs[r].payload = [&[1u8, 3, 2, 0][..], &varint(65535), &[0], &varint(65535)].concat();
    o.add("payload-compact-too-many-symbols", "payload", &["§7.2.2", "§7.6.2"], base, "A quantized level stream (alphabet 2^31 - 1) whose compact model has two runs of 65536 symbols.", f.bytes());
}

/// Adds the invalid vector `name`: the valid vector `base` whose tensor "w" has its payload
/// edited by `e`, given the payload's first stream (which must be in stream mode `mode`).
fn edit_w(
    o: &mut Out,
    base: &'static str,
    section: &'static str,
    mode: u8,
    name: &str,
    what: &str,
    e: &dyn Fn(&mut Vec<u8>, &super::super::inspect::Stream),
) {
    let mut f = o.file(base);
    let r = tensor_named(&f, "w");
    let s = payload_info(&f, r).streams[0].clone();
    assert_eq!(s.mode, mode, "{base} is not in mode {mode}");
    e(&mut f.recs[r].payload, &s);
    o.add(name, "payload", &[section], base, what, f.bytes());
}

/// Spec §7.3.2 on the mode-4 stream of "stream-channel-classes".
pub(super) fn classes(o: &mut Out) {
    let base = "stream-channel-classes";
    let edit = |o: &mut Out,
                name: &str,
                what: &str,
                e: &dyn Fn(&mut Vec<u8>, &super::super::inspect::Stream)| {
        edit_w(o, base, "§7.3.2", 4, name, what, e)
    };
    let parts = |s: &super::super::inspect::Stream| match &s.body {
        Body::Classes {
            kc_pos,
            kinds,
            seg_pos,
            seg,
            class_stream,
            ..
        } => (
            *kc_pos,
            kinds.clone(),
            *seg_pos,
            *seg,
            (**class_stream).clone(),
        ),
        _ => panic!("not a mode-4 stream"),
    };
    edit(
        o,
        "payload-classes-count-1",
        "Mode 4 with Kc = 1.",
        &|p, s| {
            let (kc, ..) = parts(s);
            p[kc] = 1;
        },
    );
    edit(
        o,
        "payload-classes-count-17",
        "Mode 4 with Kc = 17.",
        &|p, s| {
            let (kc, ..) = parts(s);
            p[kc] = 17;
        },
    );
    edit(
        o,
        "payload-class-model-kind-4",
        "Mode 4: the first class's model kind is 4.",
        &|p, s| {
            let (_, kinds, ..) = parts(s);
            p[kinds[0].0] = 4;
        },
    );
    edit(
        o,
        "payload-segment-zero",
        "Mode 4 with segment length 0.",
        &|p, s| {
            let (_, _, sp, seg, _) = parts(s);
            splice(p, sp..sp + varint(seg).len(), &[0]);
        },
    );
    edit(
        o,
        "payload-segment-over-u32",
        "Mode 4 with segment length 2^32.",
        &|p, s| {
            let (_, _, sp, seg, _) = parts(s);
            splice(p, sp..sp + varint(seg).len(), &varint(1 << 32));
        },
    );
    edit(
        o,
        "payload-class-stream-mode-4",
        "Mode 4 whose class stream's mode byte is 4.",
        &|p, s| {
            let (.., cs) = parts(s);
            p[cs.start] = 4;
        },
    );
    edit(
        o,
        "payload-class-stream-mode-5",
        "Mode 4 whose class stream's mode byte is 5 (class streams have no context).",
        &|p, s| {
            let (.., cs) = parts(s);
            p[cs.start] = 5;
        },
    );
    edit(
        o,
        "payload-class-symbol-outside-alphabet",
        "Mode 4 whose class stream is stored and holds the class Kc (alphabet Kc).",
        &|p, s| {
            let (_, kinds, _, seg, cs) = parts(s);
            let n = (64 * 80usize).div_ceil(seg as usize);
            let mut v = vec![0u8];
            v.extend((0..n).map(|i| if i == 3 { kinds.len() as u8 } else { 0 }));
            splice(p, cs.start..cs.end, &v);
        },
    );
}

/// Spec §7.3.6 on the mode-7 stream of "stream-wide-channel-classes".
pub(super) fn wide_classes(o: &mut Out) {
    let base = "stream-wide-channel-classes";
    let edit = |o: &mut Out,
                name: &str,
                what: &str,
                e: &dyn Fn(&mut Vec<u8>, &super::super::inspect::Stream)| {
        edit_w(o, base, "§7.3.6", 7, name, what, e)
    };
    let class_stream = |s: &super::super::inspect::Stream| match &s.body {
        Body::Classes { class_stream, .. } => (**class_stream).clone(),
        _ => panic!("not a class-mode stream"),
    };
    edit(
        o,
        "payload-wide-classes-class-stream-mode-7",
        "Mode 7 whose class stream's mode byte is 7 (class streams never nest).",
        &|p, s| {
            p[class_stream(s).start] = 7;
        },
    );
    edit(
        o,
        "payload-wide-classes-lane-state-low",
        "Mode 7: lane 31 of the second wide chunk starts in state 0, below 2^16.",
        &|p, s| {
            let at = s.chunks().unwrap().chunks[1].words_pos + 4 * 31;
            p[at..at + 4].copy_from_slice(&0u32.to_le_bytes());
        },
    );
    edit(
        o,
        "payload-wide-classes-word-missing",
        "Mode 7: the first wide chunk lacks its last 16-bit word (word count − 1): a lane \
         needs a word past the end of its chunk, or the lanes do not end at 2^16.",
        &|p, s| {
            let ch = s.chunks().unwrap();
            let c = &ch.chunks[0];
            let (cp, n) = (c.count_pos, c.words);
            assert!(n > 0);
            let end = c.words_pos + 128 + 2 * n;
            splice(p, end - 2..end, &[]);
            assert_eq!(varint(n as u64).len(), varint(n as u64 - 1).len());
            splice(p, cp..cp + varint(n as u64).len(), &varint(n as u64 - 1));
        },
    );
    edit(
        o,
        "payload-wide-classes-swapped",
        "Mode 7: the class stream's first two segment classes exchanged where they differ \
         (stored as mode 0 with the same length): the lanes decode with the wrong models and \
         do not end at 2^16.",
        &|p, s| {
            let cs = class_stream(s);
            let n = 192usize;
            let mut cls: Vec<u8> = nnc_classes(p, &cs, n);
            let j = (1..n).find(|&j| cls[j] != cls[0]).unwrap();
            cls.swap(0, j);
            let mut v = vec![0u8];
            v.extend(&cls);
            splice(p, cs.start..cs.end, &v);
        },
    );
}

/// The decoded class stream of a class-mode stream (`n` segments, alphabet of the classes).
fn nnc_classes(p: &[u8], cs: &super::super::inspect::Stream, n: usize) -> Vec<u8> {
    let mut c = nnc::bytes::Cursor::new(&p[cs.start..cs.end], 0, nnc::error::FormatRule::Payload);
    let mut out = vec![0u8; n];
    nnc::entropy::decode_stream(&mut c, 1, 16, |s| s as u8, &mut out, false).unwrap();
    out
}

/// Spec §7.5 and §7.6 payloads.
pub(super) fn zstd_and_quant_payloads(o: &mut Out) {
    let base = "coding-zstd";
    let frame = |n: usize| {
        let pattern = b"nnc conformance: a repeating pattern ";
        let data: Vec<u8> = pattern.iter().copied().cycle().take(n).collect();
        zstd::bulk::compress(&data, 19).unwrap()
    };
    for (name, what, p) in [
        (
            "payload-zstd-bad-frame",
            "The zstd frame's magic number damaged.",
            {
                let mut v = frame(600);
                v[0] ^= 0xff;
                v
            },
        ),
        (
            "payload-zstd-too-short",
            "A valid zstd frame of 599 bytes for data_bytes 600.",
            frame(599),
        ),
        (
            "payload-zstd-too-long",
            "A valid zstd frame of 601 bytes for data_bytes 600.",
            frame(601),
        ),
        (
            "payload-zstd-truncated",
            "The zstd frame without its last 3 bytes.",
            {
                let mut v = frame(600);
                v.truncate(v.len() - 3);
                v
            },
        ),
        (
            "payload-zstd-only-skippable",
            "A skippable frame only: no content for data_bytes 600.",
            skippable_frame(b"nothing"),
        ),
    ] {
        let mut f = o.file(base);
        let r = tensor_named(&f, "text");
        f.recs[r].payload = p;
        o.add(name, "payload", &["§7.5"], base, what, f.bytes());
    }

    let quant = |o: &mut Out,
                 name: &str,
                 base: &'static str,
                 what: &str,
                 e: &dyn Fn(&mut Vec<u8>, &super::super::inspect::PayloadInfo)| {
        let mut f = o.file(base);
        let r = tensor_named(&f, "w");
        let info = payload_info(&f, r);
        e(&mut f.recs[r].payload, &info);
        o.add(name, "payload", &["§7.6.2"], base, what, f.bytes());
    };
    quant(
        o,
        "payload-quant-context-mode",
        "quant-midtread",
        "The level stream in mode 5: quantized payloads have no context.",
        &|p, i| {
            p[i.quant.as_ref().unwrap().width_pos + 1] = 5;
        },
    );
    quant(
        o,
        "payload-quant-symbol-width-3",
        "quant-midtread",
        "Quantized payload with symbol width 3.",
        &|p, i| {
            p[i.quant.as_ref().unwrap().width_pos] = 3;
        },
    );
    quant(
        o,
        "payload-quant-trailing-bytes",
        "quant-midtread",
        "A byte after the level stream.",
        &|p, _| p.push(0),
    );
    quant(
        o,
        "payload-quant-stream-cut-off",
        "quant-midtread",
        "The level stream without its last 4 bytes.",
        &|p, _| {
            let n = p.len();
            p.truncate(n - 4);
        },
    );
    quant(
        o,
        "payload-mulaw-table-cut-off",
        "quant-mulaw",
        "mu-law table size K larger than the bytes left.",
        &|p, i| {
            let k = i.quant.as_ref().unwrap().mulaw_table as u64 - 1;
            splice(p, 0..varint(k).len(), &varint(100_000));
        },
    );
    for (tag, bits) in [
        ("nan", 0x7fc0_0000u32),
        ("infinite", 0x7f80_0000),
        ("negative", 0xbf80_0000),
        ("negative-subnormal", 0x8000_0001),
    ] {
        quant(
            o,
            &format!("payload-mulaw-table-{tag}"),
            "quant-mulaw",
            &format!(
                "mu-law table entry T[1] is {tag} (bits {bits:#010x}): every entry must be \
                 finite and not negative (-0.0 is accepted, valid/mulaw-table-negative-zero)."
            ),
            &move |p, i| {
                let k = i.quant.as_ref().unwrap().mulaw_table as u64 - 1;
                let at = varint(k).len() + 4;
                p[at..at + 4].copy_from_slice(&bits.to_le_bytes());
            },
        );
    }
    quant(
        o,
        "payload-mulaw-level-outside-table",
        "quant-mulaw",
        "mu-law levels as a stored stream with one level of magnitude K + 1 (outside the table).",
        &|p, i| {
            let q = i.quant.as_ref().unwrap();
            let k = q.mulaw_table as u32 - 1;
            let n = 16 * 32;
            let mut v = p[..q.width_pos].to_vec();
            v.push(2);
            v.push(0);
            for j in 0..n {
                let s: u32 = if j == 7 { 2 * (k + 1) } else { (j % 5) as u32 };
                v.extend_from_slice(&(s as u16).to_le_bytes());
            }
            *p = v;
        },
    );
}

/// Spec §7.3.7 on the mode-8 stream of "stream-split-levels".
pub(super) fn split_levels(o: &mut Out) {
    let base = "stream-split-levels";
    let edit = |o: &mut Out,
                name: &str,
                what: &str,
                e: &dyn Fn(&mut Vec<u8>, &super::super::inspect::Stream)| {
        edit_w(o, base, "§7.3.7", 8, name, what, e)
    };
    let parts = |s: &super::super::inspect::Stream| match &s.body {
        Body::Split {
            k_pos,
            tokens,
            raw_count_pos,
            raw_pos,
            raw_len,
            ..
        } => (
            *k_pos,
            (**tokens).clone(),
            *raw_count_pos,
            *raw_pos,
            *raw_len,
        ),
        _ => panic!("{base} is not in mode 8"),
    };
    edit(
        o,
        "payload-split-k-zero",
        "Mode 8 with k = 0 (k is 1 to 24).",
        &|p, s| {
            p[parts(s).0] = 0;
        },
    );
    edit(
        o,
        "payload-split-k-25",
        "Mode 8 with k = 25 (k is 1 to 24).",
        &|p, s| {
            p[parts(s).0] = 25;
        },
    );
    edit(
        o,
        "payload-split-m-over-k",
        "Mode 8 with k = 4 and m = 5 (m is at most k).",
        &|p, s| {
            p[parts(s).0 + 1] = 5;
        },
    );
    edit(
        o,
        "payload-split-tokens-in-mode-8",
        "Mode 8 whose token stream's mode byte is 8 (split levels never nest).",
        &|p, s| {
            p[parts(s).1.start] = 8;
        },
    );
    edit(
        o,
        "payload-split-raw-count-short",
        "Mode 8 whose raw byte count is one less than the tokens' raw bits need (the last \
         raw byte left over after the stream).",
        &|p, s| {
            let (_, _, cp, rp, n) = parts(s);
            let (old, new) = (varint(n as u64), varint(n as u64 - 1));
            assert_eq!(old.len(), new.len());
            assert_eq!(cp + old.len(), rp);
            splice(p, cp..rp, &new);
        },
    );
    edit(
        o,
        "payload-split-raw-cut",
        "Mode 8 whose last raw byte is missing (the payload ends inside the raw bits).",
        &|p, _| {
            p.pop();
        },
    );
    edit(
        o,
        "payload-split-padding-bit",
        "Mode 8 with the highest bit of its last raw byte set, past the last symbol's raw \
         bits (padding bits are 0).",
        &|p, s| {
            let (_, _, _, rp, n) = parts(s);
            assert!(p[rp + n - 1] & 0x80 == 0, "the last raw byte is full");
            p[rp + n - 1] |= 0x80;
        },
    );
    edit(
        o,
        "payload-split-symbol-over-alphabet",
        "Mode 8 with k = 4, m = 2 whose every token is 123 (highest bit 30, the 2 bits below \
         it 11) and every raw bit 1: each symbol is 2^31 - 1, one past the largest a uniform \
         quantizer's level stream holds.",
        &|p, s| {
            let (_, t, _, _, _) = parts(s);
            let n: usize = 32 * 64;
            let bits = 28 * n;
            let mut stream = vec![1u8, 123];
            stream.extend(varint(bits.div_ceil(8) as u64));
            stream.extend(std::iter::repeat_n(0xFFu8, bits / 8));
            p.truncate(t.start);
            p.extend(stream);
        },
    );
}
