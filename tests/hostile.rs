//! Hostile inputs of issue 11, tried as an attacker would: every one must end in a typed error
//! (or decode, if valid) within the memory and time promised in spec §10–§11, leave nothing
//! behind, and touch no file outside the output directory. `NNC_HOSTILE_DIR=DIR cargo test
//! --release --test hostile write_cases` writes the attack files to DIR for
//! `tools/hostile.sh`, which measures the CLI on them (peak RSS, wall time).
mod common;
#[path = "hostile/gen.rs"]
mod gen;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;
use std::time::Instant;

use gen::*;
use nnc::{DecodeOptions, Error};

/// Counts the bytes this thread has allocated and not freed, and their peak: what decoding
/// one input costs, measured inside the test (the decoder runs on this thread only).
struct Counting;

thread_local! {
    static NOW: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let _ = NOW.try_with(|n| {
                n.set(n.get() + l.size());
                let _ = PEAK.try_with(|p| p.set(p.get().max(n.get())));
            });
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        let _ = NOW.try_with(|n| n.set(n.get().saturating_sub(l.size())));
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Peak bytes allocated by `f` on this thread, over what was live before.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = NOW.with(|n| n.get());
    PEAK.with(|p| p.set(base));
    let r = f();
    (r, PEAK.with(|p| p.get()) - base)
}

/// The promise of issue 11 and spec §10: a file of `n` bytes is decoded or refused with at
/// most 16 MiB for each KiB of input beyond its first (a file under 1 KiB: 16 MiB in all), in
/// about a second for each KiB.
fn memory_promise(n: usize) -> usize {
    16 * (1 << 20) * n.div_ceil(1024).max(1)
}

fn single_thread() -> DecodeOptions {
    DecodeOptions {
        parallel: false,
        ..DecodeOptions::default()
    }
}

#[test]
fn every_attack_file_is_refused_within_the_promised_memory_and_time() {
    for c in nnc_cases() {
        let t = Instant::now();
        let (r, peak) = peak_of(|| nnc::decode_to_bytes(c.bytes.as_slice(), single_thread()));
        let secs = t.elapsed().as_secs_f64();
        common::say(&format!(
            "{:32} {:5} bytes: {:8.1} MB peak, {:6.3} s: {}",
            c.name,
            c.bytes.len(),
            peak as f64 / 1e6,
            secs,
            match &r {
                Ok(_) => "decoded".to_string(),
                Err(e) => e.to_string().chars().take(90).collect(),
            }
        ));
        assert!(
            matches!(r, Err(Error::Limit { .. }) | Err(Error::Format { .. })),
            "{}: {:?}",
            c.name,
            r.map(|b| b.len())
        );
        assert!(
            peak <= memory_promise(c.bytes.len()),
            "{}: {peak} bytes",
            c.name
        );
        assert!(
            secs <= 1.0 + c.bytes.len() as f64 / 1024.0,
            "{}: {secs} s",
            c.name
        );
    }
}

/// Names copied for each slot are charged before they are built: a few thousand slots that
/// each copy a 60 KB name fit the census of the graph but not the walk's budget.
#[test]
fn slot_names_are_charged_to_the_graph_budget() {
    let b = nnc(&graph_name_slots(60_000, 3_000), &[]);
    let (r, peak) = peak_of(|| nnc::decode_to_bytes(b.as_slice(), single_thread()));
    match r {
        Err(Error::Limit { what, .. }) => assert_eq!(what, "graph memory"),
        other => panic!("{:?}", other.map(|b| b.len())),
    }
    assert!(peak <= memory_promise(b.len()), "{peak}");
    // A name longer than max_name_len fails at its slot, before the slot's record.
    let b = nnc(&graph_name_slots(70_000, 1), &[]);
    match nnc::decode_to_bytes(b.as_slice(), single_thread()) {
        Err(Error::Limit { what, value, .. }) => {
            assert_eq!(
                (what, value),
                ("name length", 70_000 + ".initializer[0]".len() as u64)
            )
        }
        other => panic!("{:?}", other.map(|b| b.len())),
    }
}

/// The census bounds what prost really allocates, for graphs of every kind the tests build.
#[test]
fn census_bounds_what_parsing_allocates() {
    use prost::Message;
    let mut graphs = vec![
        empty_attributes(10_000),
        empty_nodes(10_000),
        empty_initializers(10_000),
        many_ints(10_000),
        node_output_names(1000, 1000),
        nested_graphs(30),
    ];
    for p in common::corpus_models().iter().take(2) {
        graphs.push(std::fs::read(p).unwrap());
    }
    for g in graphs {
        let c = nnc::onnx::wire::census(&g, u64::MAX).unwrap();
        let (m, peak) = peak_of(|| nnc::onnx::proto::ModelProto::decode(g.as_slice()).unwrap());
        drop(m);
        assert!(
            peak as u64 + g.len() as u64 <= c.memory,
            "census {} < parse {} + {}",
            c.memory,
            peak,
            g.len()
        );
        assert!(c.memory <= 6 * (peak as u64 + g.len() as u64) + 4096);
    }
}

/// A valid file whose graph needs more than the default budget decodes once the caller
/// raises `max_graph_memory` and the expansion (the limit is the caller's choice).
#[test]
fn raised_limits_accept_an_expanding_graph() {
    let b = nnc(&empty_attributes(100_000), &[]);
    assert!(matches!(
        nnc::decode_to_bytes(b.as_slice(), DecodeOptions::default()),
        Err(Error::Limit {
            what: "graph memory",
            ..
        })
    ));
    let mut o = DecodeOptions::default();
    o.limits.max_expansion = 1 << 24;
    nnc::decode_to_bytes(b.as_slice(), o).unwrap();
}

fn write_to(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for c in nnc_cases() {
        std::fs::write(dir.join(c.name), &c.bytes).unwrap();
        common::say(&format!(
            "{:32} {:6} bytes  {}",
            c.name,
            c.bytes.len(),
            c.what
        ));
    }
    for (name, bytes) in onnx_cases() {
        std::fs::write(dir.join(name), &bytes).unwrap();
        common::say(&format!("{:32} {:6} bytes", name, bytes.len()));
    }
    std::fs::write(
        dir.join("external-bad-second.nnc"),
        external_model("w.bin", 0, true),
    )
    .unwrap();
    std::fs::write(
        dir.join("external-ok.nnc"),
        external_model("w.bin", 0, false),
    )
    .unwrap();
    std::fs::write(
        dir.join("external-same-name.nnc"),
        external_model("m.onnx", 0, false),
    )
    .unwrap();
    std::fs::write(
        dir.join("external-in-sub.nnc"),
        external_model("sub/w.bin", 0, false),
    )
    .unwrap();
    std::fs::write(
        dir.join("sparse-16g.nnc"),
        sparse_externals(4, (16 << 30) - 8),
    )
    .unwrap();
}

/// The `.onnx` attack files (encoder side).
fn onnx_cases() -> Vec<(&'static str, Vec<u8>)> {
    let mut long = ld(GRAPH_INITIALIZER, &{
        let mut t = float_slot(&"n".repeat(70_000), 1, None);
        t.extend(ld(TENSOR_RAW_DATA, &[0, 0, 128, 63]));
        t
    });
    long.extend(ld(GRAPH_NAME, b"g"));
    vec![
        ("enc-slot-names.onnx", node_output_names(60_000, 150_000)),
        (
            "enc-graph-name-slots.onnx",
            graph_name_slots(1_200, 250_000),
        ),
        ("enc-long-name.onnx", model(&long)),
        ("enc-empty-attributes.onnx", empty_attributes(500_000)),
    ]
}

#[test]
fn write_cases() {
    match std::env::var_os("NNC_HOSTILE_DIR") {
        Some(d) => write_to(Path::new(&d)),
        None => write_to(tempfile::tempdir().unwrap().path()),
    }
}
