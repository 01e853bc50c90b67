//! Router tests: the shipped rules (table tests), the probe fallback, and bad rule files.

use std::time::Instant;

use super::*;

fn builtin() -> Router {
    Router::builtin().expect("the shipped rules load")
}

fn no_hit(_: &str) -> Option<Evidence> {
    None
}

fn high_hit(_: &str) -> Option<Evidence> {
    Some(Evidence::confidence(0.95))
}

/// Asserts `input` routes to `route` by rule `rule`, with `pack` / `key`.
#[track_caller]
fn check(router: &Router, input: &str, route: Route, rule: &str, pack: &str, key: &str) {
    let d = router.decide(input, &no_hit);
    assert_eq!(
        (d.route, &d.reason, d.pack.as_deref(), d.key.as_deref()),
        (
            route,
            &Reason::Rule {
                name: rule.to_owned()
            },
            Some(pack),
            Some(key)
        ),
        "input {input:?} gave {d:?}"
    );
}

#[test]
fn kural_lookup() {
    let r = builtin();
    let cases = [
        ("kural 5", "kural-number-en"),
        ("Kural 5", "kural-number-en"),
        ("KURAL  5", "kural-number-en"),
        ("thirukkural 5", "kural-number-en"),
        ("Thirukural 5", "kural-number-en"),
        ("kural no. 5", "kural-number-en"),
        ("kural number 5", "kural-number-en"),
        ("kural #5", "kural-number-en"),
        ("kural 005", "kural-number-en"),
        ("show me kural 5", "kural-number-en"),
        ("5th kural", "kural-ordinal-en"),
        ("குறள் 5", "kural-number-ta"),
        ("குறள் ௫", "kural-number-ta"),
        ("திருக்குறள் 5", "kural-number-ta"),
        ("திருக்குறள் ௫", "kural-number-ta"),
        ("குறள் எண் 5", "kural-number-ta"),
        ("குறள்5", "kural-number-ta"),
        ("5வது குறள்", "kural-ordinal-ta"),
        ("5-ஆவது திருக்குறள்", "kural-ordinal-ta"),
    ];
    for (input, rule) in cases {
        check(&r, input, Route::Lookup, rule, "thirukkural", "kural 5");
    }
    check(
        &r,
        "kural 1330",
        Route::Lookup,
        "kural-number-en",
        "thirukkural",
        "kural 1330",
    );
    check(
        &r,
        "குறள் ௧௩௩௦",
        Route::Lookup,
        "kural-number-ta",
        "thirukkural",
        "kural 1330",
    );
}

#[test]
fn kural_explain_is_hybrid() {
    let r = builtin();
    let cases = [
        ("what is kural 12 about", "kural-explain-en", "kural 12"),
        ("What is Kural 12 about?", "kural-explain-en", "kural 12"),
        ("explain kural 1", "kural-explain-en", "kural 1"),
        ("Explain thirukkural 1", "kural-explain-en", "kural 1"),
        ("meaning of kural 7", "kural-explain-en", "kural 7"),
        ("what's kural 7", "kural-explain-en", "kural 7"),
        ("kural 5 meaning", "kural-explain-en-suffix", "kural 5"),
        (
            "kural 5's explanation",
            "kural-explain-en-suffix",
            "kural 5",
        ),
        ("குறள் 1 விளக்கம்", "kural-explain-ta", "kural 1"),
        ("குறள் 1 பொருள் என்ன", "kural-explain-ta", "kural 1"),
        ("குறள் ௧ பொருள் என்ன?", "kural-explain-ta", "kural 1"),
        ("திருக்குறள் 10 அர்த்தம்", "kural-explain-ta", "kural 10"),
        ("குறள் 5 ஐ விளக்கு", "kural-explain-ta", "kural 5"),
        ("விளக்கம் குறள் 5", "kural-explain-ta-prefix", "kural 5"),
    ];
    for (input, rule, key) in cases {
        check(&r, input, Route::Hybrid, rule, "thirukkural", key);
    }
}

#[test]
fn chapter_lookup() {
    let r = builtin();
    for (input, rule) in [
        ("chapter 3", "chapter-number-en"),
        ("Chapter 03", "chapter-number-en"),
        ("kural chapter 3", "chapter-number-en"),
        ("adhikaram 3", "chapter-number-en"),
        ("அதிகாரம் 3", "chapter-number-ta"),
        ("அதிகாரம் ௩", "chapter-number-ta"),
        ("திருக்குறள் அதிகாரம் 3", "chapter-number-ta"),
        ("3வது அதிகாரம்", "chapter-ordinal-ta"),
    ] {
        check(&r, input, Route::Lookup, rule, "thirukkural", "chapter 3");
    }
}

#[test]
fn helplines_lookup() {
    let r = builtin();
    let cases = [
        (
            "women helpline number",
            "women-helpline-en",
            "women helpline",
        ),
        ("women helpline", "women-helpline-en", "women helpline"),
        ("Womens helpline", "women-helpline-en", "women helpline"),
        (
            "what is the women's helpline number?",
            "women-helpline-en",
            "women helpline",
        ),
        (
            "helpline for women",
            "women-helpline-en-for",
            "women helpline",
        ),
        ("மகளிர் உதவி எண்", "women-helpline-ta", "women helpline"),
        ("பெண்கள் உதவி எண்", "women-helpline-ta", "women helpline"),
        ("emergency number", "emergency-en", "emergency number"),
        ("Emergency", "emergency-en", "emergency number"),
        (
            "national emergency helpline number",
            "emergency-en",
            "emergency number",
        ),
        ("அவசர எண்", "emergency-ta", "emergency number"),
        ("அவசர உதவி எண்", "emergency-ta", "emergency number"),
        (
            "cyber crime helpline",
            "cyber-crime-en",
            "cyber crime helpline",
        ),
        (
            "cybercrime number",
            "cyber-crime-en",
            "cyber crime helpline",
        ),
        (
            "how to report cyber fraud",
            "cyber-crime-en",
            "cyber crime helpline",
        ),
        ("சைபர் குற்றம்", "cyber-crime-ta", "cyber crime helpline"),
        (
            "சைபர் குற்ற உதவி எண்",
            "cyber-crime-ta",
            "cyber crime helpline",
        ),
        ("child helpline", "child-helpline-en", "child helpline"),
        ("childline", "child-helpline-en", "child helpline"),
        ("குழந்தைகள் உதவி எண்", "child-helpline-ta", "child helpline"),
        ("ambulance number", "ambulance-en", "ambulance"),
        ("call an ambulance", "ambulance-en", "ambulance"),
        ("ஆம்புலன்ஸ் எண்", "ambulance-ta", "ambulance"),
        ("அவசர ஊர்தி", "ambulance-ta", "ambulance"),
        ("police number", "police-en", "police"),
        ("காவல் துறை எண்", "police-ta", "police"),
        ("fire number", "fire-en", "fire"),
        ("fire brigade", "fire-en", "fire"),
        ("தீயணைப்பு எண்", "fire-ta", "fire"),
        ("112", "helpline-by-number", "112"),
        ("call 1930", "helpline-by-number", "1930"),
        ("௧௦௯௮", "helpline-by-number", "1098"),
    ];
    for (input, rule, key) in cases {
        check(&r, input, Route::Lookup, rule, "helplines", key);
    }
}

/// Every key the shipped rules produce exists in the packs being built (coordinated list).
#[test]
fn helpline_rule_keys_are_pack_keys() {
    let pack_keys = [
        "112",
        "emergency",
        "emergency number",
        "அவசர எண்",
        "அவசர உதவி எண்",
        "181",
        "women helpline",
        "women helpline number",
        "மகளிர் உதவி எண்",
        "பெண்கள் உதவி எண்",
        "1930",
        "cyber crime",
        "cyber crime helpline",
        "சைபர் குற்றம்",
        "1098",
        "child helpline",
        "108",
        "ambulance",
        "100",
        "police",
        "101",
        "fire",
    ];
    for rule in builtin()
        .rules()
        .iter()
        .filter(|r| r.pack() == Some("helplines"))
    {
        let key = rule.key_template().unwrap();
        assert!(
            key == "{n}" || pack_keys.contains(&key),
            "rule {} key {key:?}",
            rule.name()
        );
    }
    let by_number = builtin();
    let by_number = by_number
        .rules()
        .iter()
        .find(|r| r.name() == "helpline-by-number")
        .unwrap();
    for n in ["112", "181", "1930", "1098", "108", "100", "101"] {
        assert!(by_number.pattern().contains(n));
    }
}

#[test]
fn near_misses_match_no_rule() {
    let r = builtin();
    for input in [
        "kural",
        "kural 0",
        "kural 5 and 6",
        "chapter",
        "women",
        "how do women vote",
        "fire safety tips",
        "police verification process",
        "emergency exit sign",
        "cyber",
        "child care tips",
        "ambulance driver salary",
        "112 street",
        "1234",
        "குறள்",
        "அதிகாரம்",
        "பெண்கள் கல்வி",
        "அவசரமாக வா",
    ] {
        let d = r.decide(input, &no_hit);
        assert_eq!(
            (d.route, &d.reason),
            (Route::Generate, &Reason::NoMatch),
            "{input:?}: {d:?}"
        );
    }
}

#[test]
fn decomposed_tamil_routes_like_composed() {
    let r = builtin();
    // பொருள் typed with ொ decomposed (U+0BC6 U+0BBE).
    let nfd = "குறள் 1 \u{0BAA}\u{0BC6}\u{0BBE}\u{0BB0}\u{0BC1}\u{0BB3}\u{0BCD} என்ன";
    check(
        &r,
        nfd,
        Route::Hybrid,
        "kural-explain-ta",
        "thirukkural",
        "kural 1",
    );
}

#[test]
fn unmatched_queries_use_the_probe() {
    let r = builtin();
    for input in [
        "is this SMS a scam?",
        "what is the tallest mountain",
        "rivers of india",
    ] {
        let d = r.decide(input, &no_hit);
        assert_eq!(
            (d.route, &d.reason),
            (Route::Generate, &Reason::NoMatch),
            "{input:?}"
        );
        assert_eq!((d.pack, d.key), (None, None));
    }

    let d = r.decide("Rivers of  India", &high_hit);
    assert_eq!(d.route, Route::Search);
    assert_eq!(
        d.reason,
        Reason::SearchScore {
            score: 0.95,
            threshold: r.search_threshold()
        }
    );
    assert_eq!(d.query, "rivers of india");

    for input in [
        "explain the rivers of india",
        "Why do rivers of India flood",
        "நதிகள் ஏன்",
    ] {
        let d = r.decide(input, &high_hit);
        assert_eq!(d.route, Route::Hybrid, "{input:?}");
        assert!(matches!(d.reason, Reason::SearchScore { .. }));
    }

    // Below the threshold, NaN, or infinite: the model answers.
    for score in [0.1, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let d = r.decide("rivers of india", &move |_: &str| {
            Some(Evidence::confidence(score))
        });
        assert_eq!(
            (d.route, d.reason),
            (Route::Generate, Reason::NoMatch),
            "{score}"
        );
    }
}

#[test]
fn probe_sees_the_normalized_query_once() {
    let r = builtin();
    let calls = std::cell::RefCell::new(Vec::new());
    let probe = |q: &str| {
        calls.borrow_mut().push(q.to_owned());
        None
    };
    r.decide("  Rivers\tOF ௧ India ", &probe);
    assert_eq!(*calls.borrow(), ["rivers of 1 india"]);
    calls.borrow_mut().clear();
    r.decide("kural 5", &probe);
    assert!(calls.borrow().is_empty(), "a matching rule skips the probe");
}

#[test]
fn explain_words_match_whole_words_or_prefixes() {
    let r = Router::from_toml_str(
        r#"
        [settings]
        search_threshold = 0.5
        explain_words = ["why", "what does", "விளக்க*"]
        "#,
    )
    .unwrap();
    let route = |q: &str| r.decide(q, &high_hit).route;
    assert_eq!(route("why rivers"), Route::Hybrid);
    assert_eq!(route("rivers, why?"), Route::Hybrid);
    assert_eq!(route("whyte rivers"), Route::Search);
    assert_eq!(route("what does it mean"), Route::Hybrid);
    assert_eq!(route("what it does"), Route::Search);
    assert_eq!(route("நதி விளக்கம்"), Route::Hybrid);
    assert_eq!(route("நதி விளக்குக"), Route::Hybrid);
    assert_eq!(route("நதி"), Route::Search);
    assert_eq!(r.explain_words().len(), 3);
}

#[test]
fn empty_input() {
    let r = builtin();
    for input in ["", "   ", "\n\t", "\u{0}\u{1b}"] {
        let d = r.decide(input, &high_hit);
        assert_eq!(
            (d.route, d.reason, d.query.as_str()),
            (Route::Generate, Reason::Empty, "")
        );
    }
}

#[test]
fn huge_input_is_truncated_and_linear() {
    let r = builtin();
    let huge = "kural ".repeat(1 << 20);
    let d = r.decide(&huge, &no_hit);
    assert_eq!(d.route, Route::Generate);
    assert!(d.query.len() <= crate::text::MAX_QUERY_BYTES);
    // A giant Tamil line: cut at a character boundary, still routed.
    let tamil = "குறள் ".repeat(1 << 16);
    assert_eq!(r.decide(&tamil, &no_hit).route, Route::Generate);
}

#[test]
fn query_template_and_search_rules() {
    let r = Router::from_toml_str(
        r#"
        [[rule]]
        name = "search-prefix"
        pattern = '^(?:search|find)\s+(?P<q>.+)$'
        route = "search"
        pack = "helplines"
        query = "{q}"

        [[rule]]
        name = "search-all"
        pattern = '^look for '
        route = "search"

        [[rule]]
        name = "poem"
        pattern = '^write a poem'
        route = "generate"
        "#,
    )
    .unwrap();
    let d = r.decide("Search  Women Helpline", &no_hit);
    assert_eq!(d.route, Route::Search);
    assert_eq!(
        d.reason,
        Reason::Rule {
            name: "search-prefix".into()
        }
    );
    assert_eq!(
        (d.pack.as_deref(), d.key, d.query.as_str()),
        (Some("helplines"), None, "women helpline")
    );
    let d = r.decide("look for rivers", &no_hit);
    assert_eq!(
        (d.route, d.pack, d.query.as_str()),
        (Route::Search, None, "look for rivers")
    );
    let d = r.decide("write a poem about rain", &high_hit);
    assert_eq!(
        (d.route, d.reason),
        (
            Route::Generate,
            Reason::Rule {
                name: "poem".into()
            }
        )
    );
    assert_eq!(r.search_threshold(), DEFAULT_SEARCH_THRESHOLD);
    assert_eq!(r.rules().len(), 3);
    assert_eq!(r.rules()[0].query_template(), Some("{q}"));
    assert_eq!(r.rules()[0].route(), Route::Search);
}

/// Loads a one-rule file and returns the error's rule name and reason.
fn rule_error(rule_body: &str) -> (String, String) {
    let text = format!("[[rule]]\nname = \"bad\"\n{rule_body}\n");
    match Router::from_toml_str(&text) {
        Err(RouterError::InvalidRule { rule, reason }) => (rule, reason),
        other => panic!("expected InvalidRule for {rule_body:?}, got {other:?}"),
    }
}

#[test]
fn bad_rules_are_rejected_with_the_rule_name() {
    let long = format!("pattern = '{}'\nroute = \"search\"", "a".repeat(3000));
    let cases = [
        // Invalid regex.
        ("pattern = '^kural (\\d+'\nroute = \"search\"", "does not compile"),
        // Compiles too big.
        ("pattern = 'a{1000}{1000}'\nroute = \"search\"", "does not compile"),
        ("pattern = '\\w{500}\\w{500}'\nroute = \"search\"", "does not compile"),
        // Over the length cap.
        (long.as_str(), "byte limit"),
        // Unknown route.
        ("pattern = 'x'\nroute = \"lookp\"", "unknown route \"lookp\""),
        // Template names a group the pattern lacks.
        (
            "pattern = '^kural (?P<n>\\d+)$'\nroute = \"lookup\"\npack = \"p\"\nkey = \"kural {num}\"",
            "`num`",
        ),
        ("pattern = '^(?P<x>.+)$'\nroute = \"search\"\nquery = \"{q}\"", "`q`"),
        // Lookup / hybrid need pack and key.
        ("pattern = 'x'\nroute = \"lookup\"\npack = \"p\"", "needs both"),
        ("pattern = 'x'\nroute = \"hybrid\"\nkey = \"k\"", "needs both"),
        // Fields that do not apply.
        ("pattern = 'x'\nroute = \"search\"\nkey = \"k\"", "only for lookup"),
        ("pattern = 'x'\nroute = \"generate\"\npack = \"p\"", "no `pack`"),
        ("pattern = 'x'\nroute = \"lookup\"\npack = \"\"\nkey = \"k\"", "`pack` is empty"),
    ];
    for (body, needle) in cases {
        let (rule, reason) = rule_error(body);
        assert_eq!(rule, "bad");
        assert!(
            reason.contains(needle),
            "{body:?}: {reason:?} lacks {needle:?}"
        );
    }
    let message = RouterError::InvalidRule {
        rule: "r".into(),
        reason: "why".into(),
    }
    .to_string();
    assert_eq!(message, "router rule `r` is invalid: why");
}

#[test]
fn bad_files_and_settings() {
    let dup = "[[rule]]\nname='a'\npattern='x'\nroute='search'\n\
               [[rule]]\nname='a'\npattern='y'\nroute='search'\n";
    assert!(matches!(
        Router::from_toml_str(dup),
        Err(RouterError::InvalidRule { rule, .. }) if rule == "a"
    ));
    for text in [
        "[[rule]]\nname='a'\npattern='x'\nroute='search'\nfoo=1\n", // unknown field
        "[[rule]]\nname='a'\nroute='search'\n",                     // no pattern
        "[settings]\nthreshold = 1\n",                              // unknown setting
        "this is not toml",
    ] {
        assert!(
            matches!(Router::from_toml_str(text), Err(RouterError::Parse(_))),
            "{text}"
        );
    }
    for text in [
        "[settings]\nsearch_threshold = nan\n",
        "[settings]\nexplain_words = ['*']\n",
    ] {
        assert!(
            matches!(
                Router::from_toml_str(text),
                Err(RouterError::InvalidSettings(_))
            ),
            "{text}"
        );
    }
}

/// A fresh temporary directory under the target dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "vazhi-router-{name}-{}-{:?}",
            std::process::id(),
            Instant::now()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn from_dir_loads_files_in_name_order() {
    let dir = TempDir::new("order");
    std::fs::write(
        dir.0.join("20-late.toml"),
        "[[rule]]\nname='late'\npattern='^x'\nroute='search'\n",
    )
    .unwrap();
    std::fs::write(
        dir.0.join("10-early.toml"),
        "[settings]\nsearch_threshold = 0.35\n[[rule]]\nname='early'\npattern='^x'\nroute='generate'\n",
    )
    .unwrap();
    std::fs::write(dir.0.join("notes.txt"), "not rules").unwrap();
    let r = Router::from_dir(&dir.0).unwrap();
    let names: Vec<&str> = r.rules().iter().map(Rule::name).collect();
    assert_eq!(names, ["early", "late"]);
    assert_eq!(r.search_threshold(), 0.35);
    assert_eq!(
        r.decide("xyz", &no_hit).reason,
        Reason::Rule {
            name: "early".into()
        }
    );

    // A bad rule in a file is reported with the file and the rule.
    std::fs::write(
        dir.0.join("30-bad.toml"),
        "[[rule]]\nname='oops'\npattern='('\nroute='search'\n",
    )
    .unwrap();
    let err = Router::from_dir(&dir.0).unwrap_err();
    assert!(matches!(&err, RouterError::InFile { path, error }
        if path.ends_with("30-bad.toml")
            && matches!(&**error, RouterError::InvalidRule { rule, .. } if rule == "oops")));
    assert!(err.to_string().contains("30-bad.toml") && err.to_string().contains("`oops`"));

    // Duplicate names and settings across files.
    std::fs::write(
        dir.0.join("30-bad.toml"),
        "[settings]\nsearch_threshold = 0.75\n",
    )
    .unwrap();
    assert!(Router::from_dir(&dir.0)
        .unwrap_err()
        .to_string()
        .contains("only one file"));
    std::fs::write(
        dir.0.join("30-bad.toml"),
        "[[rule]]\nname='late'\npattern='y'\nroute='search'\n",
    )
    .unwrap();
    assert!(Router::from_dir(&dir.0)
        .unwrap_err()
        .to_string()
        .contains("first defined in"));

    let empty = TempDir::new("empty");
    assert!(matches!(
        Router::from_dir(&empty.0),
        Err(RouterError::NoRuleFiles { .. })
    ));
    assert!(matches!(
        Router::from_dir(empty.0.join("missing")),
        Err(RouterError::Io { .. })
    ));
}

#[test]
fn shipped_assets_dir_matches_builtin() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/router");
    let from_dir = Router::from_dir(dir).unwrap();
    let builtin = builtin();
    let names = |r: &Router| {
        r.rules()
            .iter()
            .map(|x| x.name().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&from_dir), names(&builtin));
    assert!(builtin
        .rules()
        .iter()
        .all(|r| r.pattern().len() <= MAX_PATTERN_BYTES));
}

#[test]
fn route_and_reason_display_and_serde() {
    assert_eq!(Route::Hybrid.to_string(), "hybrid");
    assert_eq!(Route::parse("generate"), Some(Route::Generate));
    assert_eq!(Route::parse("Lookup"), None);
    assert_eq!(serde_json::to_string(&Route::Lookup).unwrap(), "\"lookup\"");
    assert_eq!(
        serde_json::from_str::<Route>("\"search\"").unwrap(),
        Route::Search
    );
    assert_eq!(Reason::Rule { name: "r".into() }.to_string(), "rule `r`");
    assert_eq!(
        Reason::SearchScore {
            score: 3.0,
            threshold: 2.0
        }
        .to_string(),
        "search score 3.000 >= threshold 2.000"
    );
    assert_eq!(Reason::Empty.to_string(), "empty query");
    let d = builtin().decide("kural 5", &no_hit);
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["route"], "lookup");
    assert_eq!(json["reason"]["kind"], "rule");
    assert_eq!(json["reason"]["name"], "kural-number-en");
}

#[test]
fn router_is_send_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Router>();
}

/// Routes 10k mixed queries and reports the p99 decision time. No timing assertion: this only
/// makes sure the measurement runs (benchmarks come later).
#[test]
fn decision_latency_p99_over_10k_queries() {
    let r = builtin();
    let samples = [
        "kural 5",
        "குறள் ௫",
        "explain kural 12",
        "குறள் 1 பொருள் என்ன",
        "women helpline number",
        "அவசர உதவி எண்",
        "is this SMS a scam?",
        "write a poem about rain",
        "explain the rivers of india",
        "rivers of india",
        "",
    ];
    let probe = |q: &str| {
        q.len()
            .is_multiple_of(3)
            .then_some(Evidence::confidence(1.0))
    };
    let mut times = Vec::with_capacity(10_000);
    let mut routes = HashMap::new();
    for i in 0..10_000 {
        let query = format!(
            "{} {}",
            samples[i % samples.len()],
            if i % 7 == 0 { "" } else { " " }
        );
        let start = Instant::now();
        let d = r.decide(&query, &probe);
        times.push(start.elapsed());
        *routes.entry(d.route).or_insert(0) += 1;
    }
    times.sort();
    let p50 = times[times.len() / 2];
    let p99 = times[times.len() * 99 / 100];
    eprintln!(
        "router decide over {} queries: p50 {p50:?}, p99 {p99:?}; {routes:?}",
        times.len()
    );
    assert_eq!(times.len(), 10_000);
    assert_eq!(routes.len(), 4, "all four routes exercised: {routes:?}");
}

#[test]
fn the_probe_searches_without_explain_words_and_a_key_match_is_a_lookup() {
    let r = builtin();
    let seen = std::cell::RefCell::new(Vec::new());
    let key_probe = |q: &str| {
        seen.borrow_mut().push(q.to_owned());
        Some(Evidence {
            confidence: 1.0,
            key: Some(("helplines".to_owned(), "ambulance".to_owned())),
            named_pack: None,
        })
    };
    let d = r.decide("Ambulance, please!", &key_probe);
    assert_eq!(d.route, Route::Lookup);
    assert_eq!(
        d.reason,
        Reason::Key {
            pack: "helplines".into(),
            key: "ambulance".into()
        }
    );
    assert_eq!(
        (d.pack.as_deref(), d.key.as_deref()),
        (Some("helplines"), Some("ambulance"))
    );
    // With an explain word the same record is explained, and the probe never saw the word.
    let d = r.decide("explain the ambulance service", &key_probe);
    assert_eq!(d.route, Route::Hybrid);
    assert_eq!(seen.borrow().last().unwrap(), "the ambulance service");
    assert_eq!(d.query, "the ambulance service");
    // Only explain words: nothing to search for.
    let d = r.decide("explain", &|_: &str| panic!("probed an empty question"));
    assert_eq!(d.route, Route::Generate);
}

#[test]
fn the_search_threshold_is_a_share_of_the_question() {
    for bad in ["1.5", "-0.1", "2.0"] {
        let text = format!("[settings]\nsearch_threshold = {bad}\n");
        assert!(
            matches!(
                Router::from_toml_str(&text),
                Err(RouterError::InvalidSettings(_))
            ),
            "{bad} was accepted"
        );
    }
    let r = builtin();
    assert!((0.0..=1.0).contains(&r.search_threshold()));
    let at = |c: f64| {
        r.decide("rivers of india", &move |_: &str| {
            Some(Evidence::confidence(c))
        })
        .route
    };
    assert_eq!(at(r.search_threshold()), Route::Search);
    assert_eq!(at(r.search_threshold() - 0.01), Route::Generate);
}

#[test]
fn conversation_writing_and_arithmetic_go_to_the_model() {
    let r = builtin();
    for input in [
        "good morning",
        "thanks a lot",
        "How are you today?",
        "வணக்கம்",
        "மிக்க நன்றி",
        "vanakkam",
        "write a poem about the rain",
        "tell me a story",
        "ஒரு கதை சொல்லு",
        "what is 12 times 7",
        "25 + 17 = ?",
    ] {
        let d = r.decide(input, &high_hit);
        assert_eq!(d.route, Route::Generate, "{input}: {d:?}");
        assert!(matches!(d.reason, Reason::Rule { .. }), "{input}: {d:?}");
    }
}

#[test]
fn a_named_pack_is_answered_from_whatever_the_confidence() {
    let r = builtin();
    let named = |q: &str| {
        let _ = q;
        Some(Evidence {
            confidence: 0.1,
            key: None,
            named_pack: Some("thirukkural".to_owned()),
        })
    };
    let d = r.decide("kural about education", &named);
    assert_eq!(d.route, Route::Search);
    assert_eq!(
        d.reason,
        Reason::NamedPack {
            pack: "thirukkural".into()
        }
    );
    // With an explain word: Hybrid, grounded on what the pack has.
    assert_eq!(
        r.decide("why does kural praise rain", &named).route,
        Route::Hybrid
    );
    // The same weak evidence without a named pack goes to the model.
    let weak = |_: &str| Some(Evidence::confidence(0.1));
    assert_eq!(
        r.decide("kural about education", &weak).route,
        Route::Generate
    );
}
