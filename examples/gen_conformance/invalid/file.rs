//! Invalid vectors of the file layer: file header (§3), records (§4), index and trailer (§8).
use super::*;

/// Spec §3.
pub(super) fn file_header(o: &mut Out) {
    let ex = o.bytes(EX).to_vec();
    o.add(
        "truncated-empty-file",
        "truncated",
        &["§3"],
        EX,
        "A file of 0 bytes.",
        vec![],
    );
    o.add(
        "truncated-file-header",
        "truncated",
        &["§3"],
        EX,
        "The first 12 bytes of the file only.",
        ex[..12].to_vec(),
    );
    o.add(
        "truncated-after-file-header",
        "truncated",
        &["§3", "§4.1"],
        EX,
        "The 16-byte file header only: the file ends where the first record's prefix should be.",
        ex[..16].to_vec(),
    );
    let mut f = o.file(EX);
    f.head[1] = b'n';
    f.fix_head_crc();
    o.add(
        "bad-magic",
        "bad-magic",
        &["§3"],
        EX,
        "Magic byte 1 is 'n' (header CRC recomputed).",
        f.bytes(),
    );
    let mut crlf = ex.clone();
    crlf.remove(4); // "\r\n" → "\n": the damage a text-mode transfer does
    o.add(
        "bad-magic-crlf-converted",
        "bad-magic",
        &["§3"],
        EX,
        "The magic's CR LF converted to LF, as a text-mode transfer would (every later byte \
         shifted by one).",
        crlf,
    );
    let mut both = ex.clone();
    both[0] = 0x88;
    both[12] ^= 0xff;
    o.add(
        "bad-magic-and-header-crc",
        "bad-magic",
        &["§3", "§9"],
        EX,
        "Wrong magic and wrong header CRC: the magic is checked first.",
        both,
    );
    let mut crc = ex.clone();
    crc[10] = 1;
    o.add(
        "checksum-file-header",
        "checksum",
        &["§3"],
        EX,
        "Minor version changed to 1 without updating the header CRC.",
        crc,
    );
    for (major, tag) in [(2u16, "2"), (0, "0"), (0xffff, "65535")] {
        let mut f = o.file(EX);
        f.head[8..10].copy_from_slice(&major.to_le_bytes());
        f.fix_head_crc();
        o.add(
            &format!("unsupported-version-major-{tag}"),
            "unsupported-version",
            &["§3", "§12"],
            EX,
            &format!("Major version {major} (header CRC recomputed)."),
            f.bytes(),
        );
    }
}

/// Spec §4.1, §4.2.
pub(super) fn records(o: &mut Out) {
    let (ex, lay) = o.file(EX).assemble(true);
    let rec_at = |i: usize| lay.offsets[i];
    let header_len = |f: &NncFile, i: usize| f.recs[i].header.len();
    let f0 = o.file(EX);
    o.add(
        "truncated-record-prefix",
        "truncated",
        &["§4.1"],
        EX,
        "The file ends 10 bytes into the GRAPH record's prefix.",
        ex[..rec_at(GRAPH) + 10].to_vec(),
    );
    o.add(
        "truncated-graph-payload",
        "truncated",
        &["§4.1"],
        EX,
        "The file ends inside the GRAPH payload.",
        ex[..rec_at(GRAPH) + PREFIX_LEN + 9 + 50].to_vec(),
    );
    o.add(
        "truncated-record-header",
        "truncated",
        &["§4.1"],
        EX,
        "The file ends inside the header of tensor record \"k\".",
        ex[..rec_at(K) + PREFIX_LEN + 20].to_vec(),
    );
    o.add(
        "truncated-record-payload",
        "truncated",
        &["§4.1"],
        EX,
        "The file ends inside the payload of tensor record \"k\".",
        ex[..rec_at(K) + PREFIX_LEN + header_len(&f0, K) + 10].to_vec(),
    );
    o.add(
        "truncated-before-index",
        "truncated",
        &["§4.1", "§4.3"],
        EX,
        "The file ends after the last TENSOR record: no INDEX record, no trailer.",
        ex[..rec_at(INDEX)].to_vec(),
    );
    o.add(
        "truncated-inside-trailer",
        "truncated",
        &["§8.2"],
        EX,
        "The last 4 bytes (the trailer magic) are missing.",
        ex[..ex.len() - 4].to_vec(),
    );
    let mut f = o.file(EX);
    f.recs[K].payload.extend_from_slice(&[0; 1000]);
    let (mut b, _) = f.assemble(true);
    let end = rec_at(K) + PREFIX_LEN + header_len(&f0, K) + 24;
    b.truncate(end);
    b.extend_from_slice(&ex[end..]);
    o.add(
        "truncated-payload-length-too-large",
        "truncated",
        &["§4.1", "§11"],
        EX,
        "Tensor record \"k\" claims a payload of 1024 bytes (its CRCs computed as if it had \
         them); the file ends first. A decoder must not allocate the claimed length up front.",
        b,
    );

    let mut f = o.file(EX);
    f.recs[GRAPH].flags = 0x03;
    o.add(
        "reserved-nonzero-record-flags",
        "reserved-nonzero",
        &["§4.1"],
        EX,
        "GRAPH record flags 0x03: reserved bit 1 set (header CRC recomputed).",
        f.bytes(),
    );
    let mut f = o.file(EX);
    f.recs[INDEX].flags = 0x80;
    o.add(
        "reserved-nonzero-index-flags",
        "reserved-nonzero",
        &["§4.1", "§4.2"],
        EX,
        "INDEX record flags 0x80.",
        f.bytes(),
    );
    let mut f = o.file(EX);
    f.recs[K].reserved = [0, 1];
    o.add(
        "reserved-nonzero-record-bytes",
        "reserved-nonzero",
        &["§4.1"],
        EX,
        "Tensor record \"k\": prefix byte 3 (reserved) is 1.",
        f.bytes(),
    );
    let mut f = o.file(EX);
    f.recs[GRAPH].flags = 0;
    o.add(
        "reserved-nonzero-graph-not-critical",
        "reserved-nonzero",
        &["§4.2"],
        EX,
        "The GRAPH record without its critical flag.",
        f.bytes(),
    );
    let mut f = o.file(EX);
    f.recs[C].flags = 0;
    o.add(
        "reserved-nonzero-tensor-not-critical",
        "reserved-nonzero",
        &["§4.2"],
        EX,
        "Tensor record \"c\" without its critical flag.",
        f.bytes(),
    );

    let mut b = ex.clone();
    b[rec_at(K) + 20] ^= 0x01;
    o.add(
        "checksum-record-header",
        "checksum",
        &["§4.1"],
        EX,
        "Tensor record \"k\": header CRC off by one bit.",
        b,
    );
    let mut b = ex.clone();
    b[rec_at(K) + 8] += 1;
    o.add(
        "checksum-record-payload-length",
        "checksum",
        &["§4.1"],
        EX,
        "Tensor record \"k\": payload length 25 instead of 24, CRCs unchanged: the header CRC \
         catches the damaged length before it is trusted.",
        b,
    );
    let mut b = ex.clone();
    b[rec_at(K) + PREFIX_LEN + header_len(&f0, K) + 3] ^= 0x10;
    o.add(
        "checksum-record-payload",
        "checksum",
        &["§4.1"],
        EX,
        "Tensor record \"k\": one payload bit flipped.",
        b,
    );
    let mut b = ex.clone();
    b[rec_at(GRAPH) + PREFIX_LEN + 9 + 40] ^= 0x04;
    o.add(
        "checksum-graph-payload",
        "checksum",
        &["§4.1", "§5.1"],
        EX,
        "GRAPH record: one payload bit flipped.",
        b,
    );
    let mut b = ex.clone();
    b[rec_at(INDEX) + PREFIX_LEN + 2] ^= 0x01;
    o.add(
        "checksum-index-payload",
        "checksum",
        &["§4.1", "§8.1"],
        EX,
        "INDEX record: one payload bit flipped.",
        b,
    );

    let mut b = ex.clone();
    b[rec_at(K) + 4..rec_at(K) + 8].copy_from_slice(&(2u32 << 20).to_le_bytes());
    o.add(
        "limit-record-header-length",
        "limit",
        &["§4.1", "§10"],
        EX,
        "Tensor record \"k\" claims a 2 MiB header (over max_header_bytes, 1 MiB): the limit \
         is checked before the header is read (limit \"record header length\").",
        b,
    );
    let mut f = o.file(EX);
    let big = (1u64 << 40).to_le_bytes();
    // Header CRC computed over the false length, so the limit is what a decoder meets.
    let mut rec = f.recs[K].bytes();
    rec[8..16].copy_from_slice(&big);
    let mut h = crc32fast::Hasher::new();
    h.update(&rec[..20]);
    h.update(&f.recs[K].header);
    rec[20..24].copy_from_slice(&h.finalize().to_le_bytes());
    let (b, _) = f.assemble(true);
    let mut out = b[..rec_at(K)].to_vec();
    out.extend_from_slice(&rec[..PREFIX_LEN + f.recs[K].header.len()]);
    o.add(
        "limit-record-payload-length",
        "limit",
        &["§4.1", "§10", "§11"],
        EX,
        "Tensor record \"k\" claims a payload of 2^40 bytes (over max_alloc, 16 GiB), with a \
         matching header CRC; the file ends after its header (limit \"record payload length\").",
        out,
    );
    f.recs.clear();

    for (name, at, k) in [
        ("unknown-critical-record", 1usize, 4u8),
        ("unknown-critical-record-first", 0, 200),
        ("unknown-critical-record-before-index", 3, 0),
    ] {
        let mut f = o.file(EX);
        f.recs
            .insert(at, Rec::new(k, 1, vec![], b"critical".to_vec()));
        o.add(
            name,
            "unknown-critical-record",
            &["§4.2", "§12"],
            EX,
            &format!(
                "A record of unassigned kind {k} with the critical flag, at record position {at}."
            ),
            f.bytes(),
        );
    }
    let mut f = o.file(EX);
    f.recs
        .insert(1, Rec::new(9, 0, vec![], b"not critical".to_vec()));
    let (mut b, lay) = f.assemble(true);
    b[lay.offsets[1] + PREFIX_LEN] ^= 0xff;
    o.add(
        "checksum-unknown-noncritical-record",
        "checksum",
        &["§4.2"],
        EX,
        "An unknown non-critical record whose payload CRC is wrong: skipped records are still \
         checked.",
        b,
    );
}

/// Spec §4.3.
pub(super) fn order(o: &mut Out) {
    let mut f = o.file(EX);
    f.recs.swap(GRAPH, K);
    o.add(
        "record-order-tensor-first",
        "record-order",
        &["§4.3"],
        EX,
        "The first TENSOR record comes before the GRAPH record.",
        f.bytes(),
    );
    let mut f = o.file(EX);
    let idx = f.recs.remove(INDEX);
    f.recs.insert(0, idx);
    o.add(
        "record-order-index-first",
        "record-order",
        &["§4.3"],
        EX,
        "The INDEX record comes first.",
        f.bytes(),
    );
    let mut f = o.file(EX);
    let g = f.recs[GRAPH].clone();
    f.recs.insert(1, g);
    o.add(
        "record-order-second-graph",
        "record-order",
        &["§4.3"],
        EX,
        "A second GRAPH record after the first.",
        f.bytes(),
    );
    let mut f = o.file(EX);
    f.recs.remove(C);
    o.add(
        "record-order-missing-tensor",
        "record-order",
        &["§4.3"],
        EX,
        "Tensor record \"c\" removed: the INDEX record comes where a TENSOR is due (index \
         rebuilt for the remaining records).",
        f.bytes(),
    );
    let mut f = o.file(EX);
    let c = f.recs[C].clone();
    f.recs.insert(INDEX, c);
    o.add(
        "record-order-extra-tensor",
        "record-order",
        &["§4.3"],
        EX,
        "Tensor record \"c\" twice: a TENSOR where the INDEX record is due.",
        f.bytes(),
    );
    let mut f = o.file(EX);
    f.recs.remove(INDEX);
    o.add(
        "truncated-missing-index",
        "truncated",
        &["§4.3", "§8.2"],
        EX,
        "The INDEX record removed, the trailer kept: the 16 trailer bytes are read as a \
         24-byte record prefix and the file ends inside it.",
        f.bytes(),
    );
}

/// Spec §8.1, §8.2 on the spec example (INDEX payload: count 2, then offset, name length
/// and name of "k" and "c").
pub(super) fn index_and_trailer(o: &mut Out) {
    let idx = |o: &mut Out, name: &str, sections: &[&'static str], what: &str, p: Vec<u8>| {
        let mut f = o.file(EX);
        f.recs[INDEX].payload = p;
        let expected = if name.starts_with("index") {
            "index"
        } else {
            "checksum"
        };
        o.add(name, expected, sections, EX, what, f.assemble(false).0);
    };
    let s = &["§8.1"];
    let (_, lay) = o.file(EX).assemble(true);
    let (ko, co) = (varint(lay.offsets[K] as u64), varint(lay.offsets[C] as u64));
    let entry = |off: &[u8], len: &[u8], name: &[u8]| [off, len, name].concat();
    let k = entry(&ko, &[1], b"k");
    let c = entry(&co, &[1], b"c");
    let cat = |parts: &[&[u8]]| parts.concat();
    let k_plus_one = entry(&varint(lay.offsets[K] as u64 + 1), &[1], b"k");
    idx(
        o,
        "index-offset-mismatch",
        s,
        "Entry 0's offset is one past the record's.",
        cat(&[&[2], &k_plus_one, &c]),
    );
    idx(
        o,
        "index-name-mismatch",
        s,
        "Entry 1 named \"x\" (the record is \"c\").",
        cat(&[&[2], &k, &entry(&co, &[1], b"x")]),
    );
    idx(
        o,
        "index-count-too-small",
        s,
        "Count 1 with one entry, for two TENSOR records.",
        cat(&[&[1], &k]),
    );
    idx(
        o,
        "index-count-too-large",
        s,
        "Count 3 with a third entry for a record that does not exist.",
        cat(&[&[3], &k, &c, &c]),
    );
    idx(
        o,
        "index-count-over-half-payload",
        s,
        "Count 100 in a 9-byte payload (count may be at most P / 2).",
        cat(&[&[100], &k, &c]),
    );
    idx(
        o,
        "index-trailing-bytes",
        s,
        "A byte after the last entry.",
        cat(&[&[2], &k, &c, &[0]]),
    );
    idx(
        o,
        "index-name-not-utf8",
        s,
        "Entry 1's name is the byte 0xFF.",
        cat(&[&[2], &k, &entry(&co, &[1], &[0xff])]),
    );
    idx(
        o,
        "index-entry-cut-off",
        s,
        "The last entry's name missing.",
        cat(&[&[2], &k, &co, &[1]]),
    );
    idx(
        o,
        "index-name-length-over-bytes",
        s,
        "Entry 1's name length 9 with 1 byte left.",
        cat(&[&[2], &k, &entry(&co, &[9], b"c")]),
    );
    idx(
        o,
        "index-varint-overflow",
        &["§2", "§8.1"],
        "Entry 0's offset as a 10-byte varint whose 10th byte is 2.",
        {
            let mut v = vec![
                2u8, 0xa0, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 2, 1, b'k',
            ];
            v.extend_from_slice(&c);
            v
        },
    );

    let (ex, lay) = o.file(EX).assemble(true);
    let t = lay.trailer;

    let mut b = ex.clone();
    b[t + 15] = b'F';
    o.add(
        "index-trailer-magic",
        "index",
        &["§8.2"],
        EX,
        "Trailer magic \"NNCF\".",
        b,
    );
    let mut b = ex.clone();
    b[t + 15] = b'F';
    b[t + 8] ^= 0xff;
    o.add(
        "index-trailer-magic-before-crc",
        "index",
        &["§8.2", "§9"],
        EX,
        "Trailer magic and CRC both wrong: the magic is checked first.",
        b,
    );
    let mut b = ex.clone();
    b[t + 8] ^= 0x01;
    o.add(
        "checksum-trailer",
        "checksum",
        &["§8.2"],
        EX,
        "Trailer CRC off by one bit.",
        b,
    );
    let mut b = ex.clone();
    b[t..t + 8].copy_from_slice(&16u64.to_le_bytes());
    let crc = crc32fast::hash(&b[t..t + 8]);
    b[t + 8..t + 12].copy_from_slice(&crc.to_le_bytes());
    o.add(
        "index-trailer-offset",
        "index",
        &["§8.2"],
        EX,
        "Trailer points to offset 16 (the GRAPH record), CRC recomputed.",
        b,
    );
    let mut b = ex.clone();
    b.push(0);
    o.add(
        "trailing-data-one-byte",
        "trailing-data",
        &["§4.3", "§8.2"],
        EX,
        "One zero byte after the trailer.",
        b,
    );
    let mut b = ex.clone();
    b.extend_from_slice(&ex);
    o.add(
        "trailing-data-second-file",
        "trailing-data",
        &["§4.3", "§8.2"],
        EX,
        "The whole file twice in a row.",
        b,
    );
    let mut f = o.file(EX);
    f.recs.insert(INDEX + 1, Rec::new(9, 0, vec![], vec![]));
    o.add("index-record-after-index", "index", &["§4.3", "§8.2"], EX, "An unknown non-critical record between the INDEX record and the trailer: its bytes are read as the trailer.", f.bytes());
}
