//! Valid files the reference encoder does not write: its output edited (spec §2, §4.2,
//! §7.1, §7.5, §12).
use super::*;

pub(super) fn edited() -> Vec<Case> {
    let base = || {
        let mut rng = Rng::new(400);
        model(weights_graph(
            "g",
            vec![
                floats("a", &[8, 8], &rng.weights(64, 0.1)),
                raw(
                    "b",
                    dtype::UINT8,
                    &[200],
                    b"zstd zstd zstd zstd ".repeat(10),
                ),
                raw("c", dtype::INT32, &[2], vec![1, 0, 0, 0, 2, 0, 0, 0]),
                floats(
                    "d",
                    &[16],
                    &(0..16).map(|i| i as f32 * 0.25).collect::<Vec<_>>(),
                ),
            ],
        ))
    };
    vec![
        case(
            "unknown-noncritical-records",
            "Records of unassigned kinds (0, 5, 200, 255) without the critical flag, before the \
             GRAPH record, between TENSOR records and before the INDEX record: a decoder reads, \
             checks and skips them (spec §4.2).",
            base(),
        )
        .sections(&["§4.1", "§4.2", "§4.3", "§12"])
        .edit(super::super::edits::insert_noncritical),
        case(
            "fidelity-record",
            "A FIDELITY record (kind 4, non-critical) before the INDEX record, minor version \
             1: target snr=36, 8 synthetic inputs, two outputs, one identical (+inf dB) with \
             no agreement measured (NaN), one with a non-ASCII name. The model decodes as \
             without it; the manifest's `fidelity` is the record's content (spec §8.3).",
            base(),
        )
        .sections(&["§3", "§4.2", "§8.3"])
        .edit(super::super::edits::fidelity),
        case(
            "fidelity-later-version",
            "A FIDELITY record of version 2: a decoder of version 1 skips it (manifest \
             `fidelity`: null) (spec §8.3 rule 1).",
            base(),
        )
        .sections(&["§8.3"])
        .edit(super::super::edits::fidelity_later_version),
        case(
            "fidelity-malformed-truncated",
            "A FIDELITY record cut 3 bytes short: the model decodes; reading the record is \
             the error `fidelity` (spec §8.3 rules 2, 3).",
            base(),
        )
        .sections(&["§8.3"])
        .edit(super::super::edits::fidelity_truncated),
        case(
            "fidelity-malformed-nan-snr",
            "A FIDELITY record whose first output's SNR is NaN: the model decodes; reading \
             the record is `fidelity` (spec §8.3).",
            base(),
        )
        .sections(&["§8.3"])
        .edit(super::super::edits::fidelity_nan_snr),
        case(
            "fidelity-malformed-agreement",
            "A FIDELITY record with a decision agreement of 1.5: the model decodes; reading \
             the record is `fidelity` (spec §8.3).",
            base(),
        )
        .sections(&["§8.3"])
        .edit(super::super::edits::fidelity_agreement_range),
        case(
            "fidelity-malformed-target-kind",
            "A FIDELITY record with target kind 9: the model decodes; reading the record is \
             `fidelity` (spec §8.3).",
            base(),
        )
        .sections(&["§8.3"])
        .edit(super::super::edits::fidelity_target_kind),
        case(
            "fidelity-malformed-trailing",
            "A FIDELITY record with a byte after its last output: the model decodes; reading \
             the record is `fidelity` (spec §8.3).",
            base(),
        )
        .sections(&["§8.3"])
        .edit(super::super::edits::fidelity_trailing),
        case(
            "minor-version",
            "File header minor version 7 (CRC updated): decoders of major version 1 accept \
             every minor version (spec §3, §12).",
            base(),
        )
        .sections(&["§3", "§12"])
        .edit(super::super::edits::minor_version),
        case(
            "index-critical-flag",
            "The INDEX record with its critical flag set: decoders accept it set or clear \
             (spec §4.2).",
            base(),
        )
        .sections(&["§4.2", "§8.1"])
        .edit(super::super::edits::index_critical),
        case(
            "varint-non-shortest",
            "Varints in non-shortest form, all at most 10 bytes: the INDEX count and offsets \
             (e.g. 0x83 0x00 for 3) and a constant stream's symbol; valid (spec §2).",
            base(),
        )
        .sections(&["§2", "§8.1", "§7.1"])
        .edit(super::super::edits::non_shortest_varints),
        case(
            "zstd-multiple-frames",
            "Payloads of several zstd frames: the graph in two frames, a zstd-coded tensor in \
             two frames with a skippable frame between them (spec §7.5).",
            base(),
        )
        .sections(&["§5.1", "§7.5"])
        .edit(super::super::edits::zstd_frames),
        case(
            "empty-streams",
            "Empty tensors coded with planes and zstd (the encoder writes them raw): symbol \
             streams of count 0 in modes 0, 1, 2 and 3, and a zstd frame of no bytes (spec \
             §7.1, §7.5).",
            model(graph(
                "g",
                vec![
                    raw("e0", dtype::FLOAT, &[0], vec![]),
                    raw("e1", dtype::INT16, &[0, 4], vec![]),
                    raw("e2", dtype::UINT8, &[0], vec![]),
                    raw("e3", dtype::UINT8, &[5, 0], vec![]),
                    raw("e4", dtype::DOUBLE, &[0], vec![]),
                ],
                vec![],
            )),
        )
        .sections(&["§7.1", "§7.2.1", "§7.2.2", "§7.3.1", "§7.4", "§7.5"])
        .edit(super::super::edits::empty_streams)
        .facts(&[
            "coding:planes",
            "coding:zstd",
            "mode:0",
            "mode:1",
            "mode:2",
            "mode:3",
        ]),
    ]
}
