//! Chat-template rendering with hostile templates: the input is a template source, then
//! (after the first NUL byte, if any) a user message. Compiling, the static guard and a
//! render must each return, never panic, and a render that succeeds stays within its output
//! limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vazhi_core::engine::template::{
    content_spans, with_placeholders, ChatTemplate, OUTPUT_FIXED, OUTPUT_PER_INPUT,
};
use vazhi_core::engine::Message;

fuzz_target!(|data: &[u8]| {
    // To find an input that kills the process before libFuzzer can save it (a stack
    // overflow): VAZHI_FUZZ_LAST=FILE keeps the input being run in FILE.
    if let Some(path) = std::env::var_os("VAZHI_FUZZ_LAST") {
        let _ = std::fs::write(path, data);
    }
    let (source, user) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"hello <|im_start|>"[..]),
    };
    let (Ok(source), Ok(user)) = (std::str::from_utf8(source), std::str::from_utf8(user)) else {
        return;
    };
    let Ok(template) = ChatTemplate::new(source, "<s>", "</s>") else {
        return;
    };
    let messages = [
        Message::system("Be brief."),
        Message::user(user),
        Message::assistant("ok"),
        Message::user(user),
    ];
    for open in [false, true] {
        if let Ok(text) = template.render(&messages, open) {
            let input: usize = messages.iter().map(|m| m.content.len() + 9).sum::<usize>() + 7;
            assert!(text.len() <= input * OUTPUT_PER_INPUT + OUTPUT_FIXED);
            if let Ok(p) = template.render(&with_placeholders(&messages), open) {
                if let Some(spans) = content_spans(&text, &p, &messages) {
                    for s in spans {
                        assert!(s.end <= text.len() && text.is_char_boundary(s.start));
                    }
                }
            }
        }
    }
});
