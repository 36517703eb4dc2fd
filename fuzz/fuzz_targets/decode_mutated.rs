//! A valid seed `.nnc` (built once at startup with nnc's encoder from the seed model: tensors
//! of many types, quantized MatMul weights, a lossless float tensor, strings, an `If`
//! subgraph) with the fuzzer's bytes applied as an edit script below the framing (lengths,
//! CRCs, index and trailer recomputed; see `nnc_fuzz::edit`), so mutations reach the tensor
//! headers, quantizer parameters and entropy streams. Checks what `decode` checks, and that a
//! file that decodes is a fixed point: re-encoding the decoded model losslessly and decoding
//! again gives the same model.
#![no_main]
use std::collections::HashSet;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use nnc::lossless::LosslessOptions;
use nnc::onnx::proto::ModelProto;
use nnc::{EncodeOptions, Error};
use prost::Message;

fuzz_target!(|script: &[u8]| {
    let file = nnc_fuzz::edit::apply(script);
    let Some(onnx) = nnc_fuzz::outcome::decode_fully(&file) else {
        return;
    };
    // The unedited seeds are fixed points (checked once, at the first input); re-encoding is
    // the slow part of this target, so it runs only for models the edits changed.
    static SEEDS: OnceLock<HashSet<Vec<u8>>> = OnceLock::new();
    let seeds = SEEDS.get_or_init(|| {
        (0..nnc_fuzz::edit::seed_count())
            .map(|i| {
                fixed_point(
                    &nnc_fuzz::outcome::decode_fully(&nnc_fuzz::edit::apply(&[i as u8]))
                        .expect("seed decodes"),
                )
            })
            .collect()
    });
    if !seeds.contains(&onnx) {
        fixed_point(&onnx);
    }
});

/// Checks that lossless re-encoding of the decoded model `onnx` decodes to `onnx`; returns it.
fn fixed_point(onnx: &[u8]) -> Vec<u8> {
    let model = ModelProto::decode(onnx).expect("checked by decode_fully");
    // zstd level 1: the property does not depend on the level, and level 19 is slow.
    let opts = EncodeOptions {
        lossless: LosslessOptions {
            zstd_level: 1,
            ..LosslessOptions::default()
        },
        ..EncodeOptions::default()
    };
    let again = match nnc::encode_model(model, None, &opts, Vec::new()) {
        Ok((bytes, _)) => bytes,
        // A decoded model the encoder refuses (nesting, malformed tensors it cannot lift)
        // is the encoder's input error, not a decoding bug.
        Err(Error::Input { .. } | Error::Unsupported { .. }) => return onnx.to_vec(),
        Err(e) => panic!("re-encoding a decoded model failed: {e}"),
    };
    let onnx2 = nnc::decode_to_bytes(again.as_slice(), nnc_fuzz::outcome::options(true))
        .unwrap_or_else(|e| panic!("decoding the re-encoded model failed: {e}"));
    assert!(
        onnx2 == onnx,
        "decode(encode(decode(file))) differs from decode(file): {} vs {} bytes",
        onnx2.len(),
        onnx.len()
    );
    onnx.to_vec()
}
