//! Decodes a `.nnc` file with the decoder-only library: lists its tensors, or decodes one
//! by name through the INDEX, or writes the whole model back as ONNX bytes.
//!
//! ```text
//! cargo run --example decode --no-default-features -- MODEL.nnc            # list tensors
//! cargo run --example decode --no-default-features -- MODEL.nnc NAME       # one tensor
//! cargo run --example decode --no-default-features -- MODEL.nnc --onnx OUT # whole model
//! ```
use std::process::ExitCode;

fn run(args: &[String]) -> nnc::Result<()> {
    let opts = nnc::DecodeOptions::default();
    match args {
        [path] => {
            let file =
                std::io::BufReader::new(std::fs::File::open(path).map_err(|e| nnc::Error::Io {
                    context: format!("opening {path}"),
                    source: e,
                })?);
            for t in nnc::Decoder::new(file, opts)? {
                let t = t?;
                println!(
                    "{:<48} {:<8} {:>12} bytes  {:?}",
                    t.name,
                    t.dtype_name(),
                    t.data.len(),
                    t.dims
                );
            }
        }
        [path, flag, out] if flag == "--onnx" => {
            nnc::decode_file(path.as_ref(), out.as_ref(), opts, true)?;
            println!("wrote {out}");
        }
        [path, name] => {
            let mut archive = nnc::Archive::open(path, opts)?;
            let t = archive.tensor(name)?;
            println!(
                "{} {} {:?}: {} bytes decoded, {} bytes of payload",
                t.name,
                t.dtype_name(),
                t.dims,
                t.data.len(),
                t.payload_bytes
            );
        }
        _ => {
            eprintln!("usage: decode MODEL.nnc [NAME | --onnx OUT.onnx]");
            std::process::exit(2);
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("decode: {e}");
            ExitCode::FAILURE
        }
    }
}
