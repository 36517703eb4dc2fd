//! Prints what a `roundtrip` fuzz input stands for (encoder settings, every tensor slot with
//! its type, shape and value range) and what encoding it gives, for reporting findings:
//! `cargo run --release --example show_case -- FILE`.
use arbitrary::Unstructured;
use nnc::onnx::walk::{walk, SlotMut};

fn main() {
    let path = std::env::args().nth(1).expect("usage: show_case FILE");
    let data = std::fs::read(&path).expect("reading the input");
    let mut u = Unstructured::new(&data);
    let case = nnc_fuzz::arb_model::case(&mut u).expect("input too short for a case");
    println!("options: {:?}", case.opts);
    let mut m = case.model.clone();
    walk(&mut m, 64, &mut |name, slot| {
        match slot {
            SlotMut::Tensor(t) => {
                let vals: Option<Vec<f64>> = t
                    .raw_data
                    .as_ref()
                    .and_then(|r| nnc::encoder::float_values(t.data_type.unwrap_or(0), r))
                    .or_else(|| (!t.double_data.is_empty()).then(|| t.double_data.clone()))
                    .or_else(|| {
                        (!t.float_data.is_empty())
                            .then(|| t.float_data.iter().map(|&x| x as f64).collect())
                    });
                let range = vals.map(|v| {
                    let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
                    let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let amax = v.iter().fold(0f64, |a, x| a.max(x.abs()));
                    format!(
                        "min {lo:e} max {hi:e} max|x| {amax:e} (first {:?})",
                        &v[..v.len().min(4)]
                    )
                });
                println!(
                    "slot {name:?}: type {} dims {:?} raw {:?} typed {} {}",
                    nnc::onnx::dtype::name(t.data_type.unwrap_or(0)),
                    t.dims,
                    t.raw_data.as_ref().map(Vec::len),
                    nnc::onnx::dtype::typed_len(t),
                    range.unwrap_or_default()
                );
            }
            SlotMut::Floats(v) => println!("slot {name:?}: value_floats ×{}", v.len()),
            SlotMut::Ints(v) => println!("slot {name:?}: value_ints ×{}", v.len()),
        }
        Ok(())
    })
    .unwrap();
    match nnc::encode_model(case.model, None, &case.opts, Vec::new()) {
        Ok((b, r)) => {
            println!("encoded: {} bytes", b.len());
            for t in r.tensors {
                println!(
                    "  {:?}: {:?} {:?}",
                    t.name,
                    t.coding,
                    t.quant.map(|q| q.params)
                );
            }
        }
        Err(e) => println!("encoding failed: {e}"),
    }
}
