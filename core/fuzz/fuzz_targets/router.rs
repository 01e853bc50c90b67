//! The router's rule loading and query handling: the input is a rules file, then (after the
//! first NUL byte, if any) a question. Loading must return a typed result, and deciding must
//! return, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vazhi_core::router::{Evidence, Router};
use vazhi_core::text::normalize_query;

fuzz_target!(|data: &[u8]| {
    let (rules, question) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"kural 5"[..]),
    };
    let question = String::from_utf8_lossy(question);
    let normalized = normalize_query(&question);
    // Normalizing twice changes nothing.
    assert_eq!(normalize_query(&normalized), normalized);
    let probe = |q: &str| {
        (!q.is_empty()).then(|| Evidence {
            confidence: (q.len() % 10) as f64 / 10.0,
            key: None,
            named_pack: (q.len() % 3 == 0).then(|| "p".to_owned()),
        })
    };
    if let Ok(router) = Router::builtin() {
        let _ = router.decide(&question, &probe);
    }
    let Ok(rules) = std::str::from_utf8(rules) else {
        return;
    };
    if let Ok(router) = Router::from_toml_str(rules) {
        let d = router.decide(&question, &probe);
        let _ = d.route.as_str();
        let _ = router.decide_corrected(&question, &normalized, &probe);
    }
});
