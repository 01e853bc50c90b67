//! Runs chat templates from a folder of `*.jinja` files (llama.cpp keeps 70 real ones in
//! `models/templates/` of its source, which the llama-cpp-python sdist ships) through what a
//! model load does: compile, the static guard (`engine::template_guard`), and a render of the
//! sample conversation. Prints one line per template and a count: a real template refused is a
//! bug in the guard.
//!
//! `cargo run --release --example template_corpus -- DIR`

use vazhi_core::engine::template::{ChatTemplate, TemplateError};
use vazhi_core::engine::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: template_corpus DIR")?;
    let mut files: Vec<_> = std::fs::read_dir(&dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jinja"))
        .collect();
    files.sort();
    let sample = [
        Message::system("You are a helpful assistant."),
        Message::user("Hello, who are you?"),
        Message::assistant("I am an assistant that answers from your data."),
        Message::user("What is kural 1 about?"),
    ];
    let (mut ok, mut refused, mut other) = (0, 0, 0);
    for path in &files {
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let source = std::fs::read_to_string(path)?;
        let verdict = match ChatTemplate::new(&source, "<s>", "</s>") {
            Err(TemplateError::Unbounded(e)) => {
                refused += 1;
                format!("REFUSED by the guard: {e}")
            }
            Err(e) => {
                other += 1;
                format!("does not compile here: {e}")
            }
            Ok(t) => match t
                .render(&sample, true)
                .or_else(|_| t.render(&sample[1..], true))
            {
                Ok(text) => {
                    ok += 1;
                    format!("ok ({} bytes)", text.len())
                }
                Err(TemplateError::Budget(e)) => {
                    refused += 1;
                    format!("REFUSED, over budget: {e}")
                }
                Err(e) => {
                    other += 1;
                    format!("sample render failed: {e}")
                }
            },
        };
        println!("{name:<60} {verdict}");
    }
    println!(
        "{} templates: {ok} pass, {refused} refused by the guard or budget, {other} fail otherwise",
        files.len()
    );
    Ok(())
}
