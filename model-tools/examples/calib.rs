//! Gate calibration (docs/decisions/0009-model-gate.md): for each `LAYER:FACTOR`, copies the
//! checkpoint with that layer's weights scaled, converts it to F32, quantizes it to Q4_K_M and
//! prints both files' KL divergence, top-1 agreement and perplexity ratio against the
//! reference, with the checks the default gate fails. `LAYER:1` measures a sound Q4_K_M.
//!
//! ```sh
//! cargo run --release --workspace --features vazhi-ffi/test-hooks --example calib -- \
//!     HF_DIR REFERENCE.gguf WORK_DIR 20:1 20:0.5 20:1.5
//! ```

use model_tools::{convert, eval, quantize, synth};
use std::path::PathBuf;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let hf = PathBuf::from(&a[1]);
    let reference = PathBuf::from(&a[2]);
    let work = PathBuf::from(&a[3]);
    for spec in &a[4..] {
        let parts: Vec<&str> = spec.split(':').collect();
        let layer: usize = parts[0].parse().expect("layer");
        let factor: f32 = parts[1].parse().expect("factor");
        let d = work.join(format!("s-{layer}-{factor}.hf"));
        let _ = std::fs::remove_dir_all(&d);
        synth::damage_copy(&hf, &d, synth::Damage::ScaleLayer { layer, factor }).expect("damage");
        let f = work.join(format!("s-{layer}-{factor}.gguf"));
        let _ = std::fs::remove_file(&f);
        convert::convert(
            &convert::ConvertOptions {
                hf_dir: d.clone(),
                out: f.clone(),
                out_type: convert::OutType::F32,
                overwrite: true,
                threads: 0,
            },
            &|_, _| {},
        )
        .expect("convert");
        let q = work.join(format!("s-{layer}-{factor}-q4.gguf"));
        quantize::quantize(&quantize::QuantizeOptions {
            input: f.clone(),
            output: q.clone(),
            qtype: quantize::QuantType::parse("Q4_K_M").expect("q"),
            imatrix: None,
            threads: 0,
            overwrite: true,
            allow_requantize: false,
        })
        .expect("quantize");
        for (label, m) in [("f32", &f), ("q4", &q)] {
            let mut o = eval::EvalOptions::new(
                m.clone(),
                vec!["assets/eval/en.jsonl".into(), "assets/eval/ta.jsonl".into()],
            );
            o.reference = Some(reference.clone());
            o.limit = Some(6);
            o.max_tokens = 48;
            let r = eval::evaluate(&o, &|_| {}).expect("eval");
            let dv = r.divergence.clone().expect("d");
            let fails: Vec<_> = r.failures().iter().map(|c| c.name).collect();
            println!(
                "layer {layer} x{factor} {label}: KL {:.4} top1 {:.3} ppl {:.3} fails {:?}",
                dv.mean_kl(),
                dv.top1_agreement(),
                dv.perplexity_ratio(),
                fails
            );
        }
        let _ = std::fs::remove_dir_all(&d);
    }
}
