//! The `nnc` command line: argument parsing and printing only; every action is a library call.
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use nnc::{DecodeOptions, Decoder, EncodeOptions, Limits};

#[derive(Parser)]
#[command(
    name = "nnc",
    version,
    about = "Compress ONNX neural-network models (codec and container format)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct LimitArgs {
    /// Largest total of decoded bytes the decoder may allocate.
    #[arg(long, value_name = "BYTES")]
    max_alloc: Option<u64>,
    /// Largest ratio of decoded bytes to file bytes read (zip-bomb guard).
    #[arg(long, value_name = "RATIO")]
    max_expansion: Option<u64>,
    /// Largest number of tensors.
    #[arg(long, value_name = "N")]
    max_tensors: Option<u64>,
    /// Largest element count of one tensor.
    #[arg(long, value_name = "N")]
    max_elements: Option<u64>,
}

impl LimitArgs {
    fn options(&self) -> DecodeOptions {
        let mut l = Limits::default();
        if let Some(v) = self.max_alloc {
            l.max_alloc = v;
        }
        if let Some(v) = self.max_expansion {
            l.max_expansion = v;
        }
        if let Some(v) = self.max_tensors {
            l.max_tensors = v;
        }
        if let Some(v) = self.max_elements {
            l.max_elements = v;
        }
        DecodeOptions {
            limits: l,
            ..DecodeOptions::default()
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Encode an ONNX model into a .nnc container.
    Encode {
        input: PathBuf,
        output: PathBuf,
        /// Keep every tensor bit-exact (byte planes, entropy coded).
        #[arg(long)]
        lossless: bool,
        /// Print a per-tensor table of what was written.
        #[arg(long)]
        report: bool,
    },
    /// Decode a .nnc container back into an ONNX model.
    Decode {
        input: PathBuf,
        output: PathBuf,
        /// Put external-data tensors into the .onnx file instead of beside it.
        #[arg(long)]
        inline_external: bool,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Describe a .nnc container: its tensors and how each is coded.
    Inspect {
        input: PathBuf,
        /// One JSON object instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Check a .nnc container completely (every CRC, every payload) without writing output.
    Verify {
        input: PathBuf,
        #[command(flatten)]
        limits: LimitArgs,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nnc: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn open(
    path: &PathBuf,
    opts: DecodeOptions,
) -> nnc::Result<Decoder<std::io::BufReader<std::fs::File>>> {
    let f = std::fs::File::open(path).map_err(|e| nnc::Error::Io {
        context: format!("opening {}", path.display()),
        source: e,
    })?;
    Decoder::new(std::io::BufReader::with_capacity(1 << 20, f), opts)
}

fn run(cli: Cli) -> nnc::Result<()> {
    match cli.cmd {
        Cmd::Encode {
            input,
            output,
            lossless: _,
            report,
        } => {
            let t = Instant::now();
            let in_size = std::fs::metadata(&input).map(|m| m.len()).unwrap_or(0);
            let r = nnc::encode_file(&input, &output, &EncodeOptions::default())?;
            let secs = t.elapsed().as_secs_f64();
            if report {
                println!(
                    "{:<48} {:>10} {:>10} {:>12} {:>12}",
                    "tensor", "dtype", "coding", "bytes", "coded"
                );
                for t in &r.tensors {
                    println!(
                        "{:<48} {:>10} {:>10} {:>12} {:>12}",
                        truncate(&t.name, 48),
                        nnc::onnx::dtype::name(t.data_type),
                        t.coding.name(),
                        t.data_bytes,
                        t.payload_bytes
                    );
                }
            }
            eprintln!(
                "{} -> {}: {} -> {} bytes ({:.3}x), {} tensors, {:.2} s",
                input.display(),
                output.display(),
                in_size,
                r.total_bytes,
                in_size as f64 / r.total_bytes.max(1) as f64,
                r.tensors.len(),
                secs
            );
            Ok(())
        }
        Cmd::Decode {
            input,
            output,
            inline_external,
            limits,
        } => {
            let t = Instant::now();
            nnc::decode_file(&input, &output, limits.options(), inline_external)?;
            eprintln!(
                "{} -> {}: {:.2} s",
                input.display(),
                output.display(),
                t.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Cmd::Inspect {
            input,
            json,
            limits,
        } => inspect(&input, json, limits.options()),
        Cmd::Verify { input, limits } => {
            let mut d = open(&input, limits.options())?;
            let mut n = 0usize;
            while d.next_tensor()?.is_some() {
                n += 1;
            }
            println!(
                "{}: OK ({} tensors, {} bytes)",
                input.display(),
                n,
                d.total_bytes()
            );
            Ok(())
        }
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let tail: String = s
            .chars()
            .rev()
            .take(n - 1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("…{tail}")
    }
}

fn inspect(input: &PathBuf, json: bool, opts: DecodeOptions) -> nnc::Result<()> {
    let mut d = open(input, opts)?;
    let graph_bytes = d.graph_bytes();
    let mut rows = Vec::new();
    while let Some(t) = d.next_tensor()? {
        let elements: u64 = t.dims.iter().product();
        rows.push(serde_json::json!({
            "name": t.name,
            "dtype": nnc::onnx::dtype::name(t.data_type),
            "dims": t.dims,
            "storage": t.storage.name(),
            "coding": if t.coding == nnc::container::tensor_header::Coding::Quantized { "quantized" } else if t.storage == nnc::container::tensor_header::Storage::Inline { "inline" } else { "lossless" },
            "method": t.coding.name(),
            "elements": elements,
            "payload_bytes": t.payload_bytes,
        }));
    }
    let total = d.total_bytes();
    if json {
        let v = serde_json::json!({
            "format_version": format!("{}.{}", nnc::container::VERSION_MAJOR, d.minor_version()),
            "total_bytes": total,
            "graph_bytes": graph_bytes,
            "tensors": rows,
        });
        println!("{v}");
    } else {
        println!(
            "format {}.{}, {} bytes, graph {} bytes, {} tensors",
            nnc::container::VERSION_MAJOR,
            d.minor_version(),
            total,
            graph_bytes,
            rows.len()
        );
        println!(
            "{:<48} {:>10} {:>18} {:>10} {:>10} {:>12}",
            "tensor", "dtype", "dims", "coding", "elements", "payload"
        );
        for r in &rows {
            println!(
                "{:<48} {:>10} {:>18} {:>10} {:>10} {:>12}",
                truncate(r["name"].as_str().unwrap_or(""), 48),
                r["dtype"].as_str().unwrap_or(""),
                truncate(&r["dims"].to_string(), 18),
                r["method"].as_str().unwrap_or(""),
                r["elements"],
                r["payload_bytes"]
            );
        }
    }
    Ok(())
}
