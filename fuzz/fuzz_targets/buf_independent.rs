//! The decoder's result must not depend on how the input arrives (image-png's
//! buf_independent): the same bytes through (a) a whole slice, (b) one byte per `read`, (c)
//! short reads mixed with `ErrorKind::Interrupted`, and (d) a whole slice with parallel chunk
//! decoding must give identical outcomes: the same graph and tensors, then the same end (the
//! file length, or the same error: kind, rule, offset, tensor and detail). `decode_to_bytes`
//! must agree across the readers too.
//!
//! Input: byte 0 selects the mode (even: the rest is the file; odd: the rest is an edit
//! script applied to a seed file, as in `decode_mutated`) and seeds the read pattern of (c).
#![no_main]
use libfuzzer_sys::fuzz_target;
use nnc_fuzz::outcome::{options, stream};
use nnc_fuzz::readers::{OneByte, Stuttering};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bytes = if mode & 1 == 1 {
        nnc_fuzz::edit::apply(rest)
    } else {
        rest.to_vec()
    };
    let n = Some(bytes.len());
    let whole = stream(bytes.as_slice(), false, n);
    let others = [
        ("one byte per read", stream(OneByte(&bytes), false, n)),
        (
            "short reads and Interrupted",
            stream(Stuttering::new(&bytes, mode as u64), false, n),
        ),
        ("whole slice, parallel", stream(bytes.as_slice(), true, n)),
    ];
    for (what, o) in &others {
        if let Some(d) = whole.diff(o) {
            panic!("{what}: {d}");
        }
    }
    let key = |r: nnc::Result<Vec<u8>>| r.map_err(|e| format!("{e:?}"));
    let full = key(nnc::decode_to_bytes(bytes.as_slice(), options(false)));
    let one = key(nnc::decode_to_bytes(OneByte(&bytes), options(false)));
    assert!(full == one, "decode_to_bytes: one byte per read differs");
    let stutter = key(nnc::decode_to_bytes(
        Stuttering::new(&bytes, !(mode as u64)),
        options(false),
    ));
    assert!(
        full == stutter,
        "decode_to_bytes: short reads and Interrupted differ"
    );
});
