//! Arbitrary bytes → complete decoding, tensor by tensor with `Decoder` and whole with
//! `decode_to_bytes`. Must never panic, abort or allocate beyond the default `Limits`
//! (run with `-malloc_limit_mb=64`: decoded bytes are capped at 1024 × input + 8 MiB).
//! Also checks the decoder's promises on every tensor it returns (canonical byte length,
//! string framing, file length at the end; see `nnc_fuzz::outcome`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    nnc_fuzz::outcome::decode_fully(data);
});
