//! Random access through the INDEX (spec §8): `Archive` decodes one tensor by name reading
//! only the file header, the GRAPH, the trailer, the INDEX and that tensor's record; the
//! tensors equal the streaming decoder's; `nnc extract` writes them as `.npy`.
mod common;

use std::io::{Cursor, Read, Seek, SeekFrom};

use common::*;
use nnc::{Archive, DecodeOptions, Decoder, Error};

/// A `Read + Seek` that counts the bytes it hands out.
struct Counting<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

impl<R: Seek> Seek for Counting<R> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// Pseudo-random float32 weights (xorshift), so that lossless coding cannot shrink them much.
fn weights(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.1
        })
        .collect()
}

/// A 50 MB model: 50 MatMul weights of 256 K float32 each (1 MB), chained.
fn model_50mb() -> nnc::onnx::proto::ModelProto {
    let mut init = Vec::new();
    let mut nodes = Vec::new();
    for i in 0..50 {
        let w = format!("layer{i}.weight");
        init.push(floats(&w, &[512, 512], weights(512 * 512, i as u64 + 1)));
        let input = if i == 0 {
            "x".to_string()
        } else {
            format!("h{i}")
        };
        let output = format!("h{}", i + 1);
        nodes.push(node("MatMul", &format!("mm{i}"), &[&input, &w], &[&output]));
    }
    let mut g = graph("big", init, nodes);
    g.input.push(value_info("x", 1, &[1, 512]));
    g.output.push(value_info("h50", 1, &[1, 512]));
    model(g)
}

#[test]
fn one_tensor_of_a_50_mb_model_reads_under_5_percent() {
    let m = model_50mb();
    let file = encode_with(&m, None, &lossless_default());
    assert!(file.len() > 40_000_000, "file is {} bytes", file.len());

    let mut r = Counting {
        inner: Cursor::new(file.as_slice()),
        read: 0,
    };
    let mut archive = Archive::new(&mut r, DecodeOptions::default()).unwrap();
    assert_eq!(archive.len(), 50);
    let t = archive.tensor("layer37.weight").unwrap();
    assert_eq!(t.dims, vec![512, 512]);
    assert_eq!(t.data, f32_bytes(&weights(512 * 512, 38)));
    drop(archive);
    let share = r.read as f64 / file.len() as f64;
    say(&format!(
        "random access: read {} of {} bytes ({:.2} %) to decode one 1 MB tensor of 50",
        r.read,
        file.len(),
        100.0 * share
    ));
    assert!(share < 0.05, "read {:.2} % of the file", 100.0 * share);
}

#[test]
fn archive_tensors_equal_the_streaming_decoders() {
    for opts in [
        lossless(),
        lossless_default(),
        nnc::EncodeOptions::default(),
    ] {
        let file = encode_with(&rich_model(), None, &opts);
        let streamed: Vec<nnc::Tensor> = Decoder::new(file.as_slice(), DecodeOptions::default())
            .unwrap()
            .collect::<nnc::Result<_>>()
            .unwrap();
        let mut archive = Archive::new(Cursor::new(&file), DecodeOptions::default()).unwrap();
        let names: Vec<String> = archive.names().map(str::to_owned).collect();
        assert_eq!(names.len(), streamed.len());
        // Backwards, so every read seeks.
        for (i, s) in streamed.iter().enumerate().rev() {
            assert_eq!(names[i], s.name);
            let a = archive.tensor_at(i).unwrap();
            assert_eq!((&a.name, &a.dims), (&s.name, &s.dims));
            if s.storage == nnc::Storage::Inline && a.data_type != nnc::onnx::dtype::STRING {
                assert!(s.data.is_empty());
                // The archive fills in what the graph holds: the dims' byte length, or
                // nothing for a tensor whose graph entry has no data (no_data,
                // huge_dims_no_data).
                if !a.data.is_empty() {
                    assert_eq!(
                        Some(a.data.len() as u64),
                        nnc::onnx::dtype::byte_len(a.data_type, a.elements()),
                        "inline {}",
                        a.name
                    );
                }
            } else {
                assert_eq!(a.data, s.data, "{}", a.name);
            }
            assert_eq!(a.data_type, s.data_type);
        }
        assert!(matches!(
            archive.tensor("no such tensor"),
            Err(Error::NotFound { .. })
        ));
    }
}

#[test]
fn a_damaged_record_fails_only_when_read() {
    let file = encode_with(&model_50mb(), None, &lossless());
    let mut archive = Archive::new(Cursor::new(file.clone()), DecodeOptions::default()).unwrap();
    let first = archive.tensor_at(0).unwrap();
    let second_at = archive.tensor_at(1).unwrap().offset as usize;
    let mut bad = file;
    bad[second_at + 200] ^= 0x40; // inside the payload of layer1.weight
    let mut archive = Archive::new(Cursor::new(bad), DecodeOptions::default()).unwrap();
    assert_eq!(archive.tensor_at(0).unwrap().data, first.data);
    let e = archive.tensor("layer1.weight").unwrap_err();
    assert_eq!(e.rule(), Some(nnc::FormatRule::Checksum), "{e}");
}

#[test]
fn truncated_and_foreign_files_are_errors() {
    let file = encode_with(&small_model(), None, &lossless());
    for cut in [0, 10, 16, file.len() / 2, file.len() - 1] {
        assert!(Archive::new(Cursor::new(&file[..cut]), DecodeOptions::default()).is_err());
    }
    let mut moved = file.clone();
    let n = moved.len();
    moved[n - 16] ^= 1; // trailer offset: its CRC no longer matches
    let e = Archive::new(Cursor::new(moved), DecodeOptions::default())
        .err()
        .unwrap();
    assert_eq!(e.rule(), Some(nnc::FormatRule::Checksum), "{e}");
}

#[test]
fn cli_extract_writes_npy() {
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("m.onnx");
    let nnc_path = dir.path().join("m.nnc");
    std::fs::write(&onnx, prost::Message::encode_to_vec(&model_50mb())).unwrap();
    nnc::encode_file(&onnx, &nnc_path, &lossless()).unwrap();
    let npy = dir.path().join("t.npy");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nnc"))
        .args(["extract"])
        .arg(&nnc_path)
        .arg("layer3.weight")
        .arg("-o")
        .arg(&npy)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&npy).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + hlen) % 64, 0);
    let header = std::str::from_utf8(&bytes[10..10 + hlen]).unwrap();
    assert!(header.contains("'descr': '<f4'"), "{header}");
    assert!(header.contains("'shape': (512, 512)"), "{header}");
    assert_eq!(
        &bytes[10 + hlen..],
        f32_bytes(&weights(512 * 512, 4)).as_slice()
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nnc"))
        .args(["extract"])
        .arg(&nnc_path)
        .args(["missing", "-o"])
        .arg(dir.path().join("x.npy"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tensor named"));
    assert!(!dir.path().join("x.npy").exists());
}
