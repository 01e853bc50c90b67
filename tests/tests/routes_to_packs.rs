//! The shipped router rules and the shipped knowledge packs agree: every exact question the
//! rules route to a pack key is answered from the packs, verbatim.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use vazhi_core::signing::TrustPolicy;

use vazhi_core::knowledge::KnowledgeBase;
use vazhi_core::router::{Route, Router};

fn assets() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../assets"))
}

#[test]
fn exact_questions_route_to_records_that_exist() {
    let dir = tempfile::tempdir().unwrap();
    let kb = KnowledgeBase::open(&dir.path().join("knowledge.db")).unwrap();
    kb.import_dir(&assets().join("packs/thirukkural"), &TrustPolicy::any())
        .unwrap();
    kb.import_dir(&assets().join("packs/helplines"), &TrustPolicy::any())
        .unwrap();
    let router = Router::from_dir(assets().join("router")).unwrap();
    let probe = |q: &str| kb.retrieve(q, 3, None).ok().and_then(|r| r.evidence());
    let cases = [
        ("kural 5", Route::Lookup, "இருள்சேர் இருவினையும்"),
        ("குறள் ௫", Route::Lookup, ""),
        ("Kural 1330", Route::Lookup, ""),
        ("explain kural 1", Route::Hybrid, "அகர முதல"),
        ("குறள் 1 விளக்கம்", Route::Hybrid, "அகர முதல"),
        ("chapter 3", Route::Lookup, ""),
        ("அதிகாரம் 3", Route::Lookup, ""),
        ("women helpline number", Route::Lookup, "181"),
        ("மகளிர் உதவி எண்", Route::Lookup, "181"),
        ("அவசர எண்", Route::Lookup, "112"),
        ("cyber crime helpline", Route::Lookup, "1930"),
        ("child helpline", Route::Lookup, "1098"),
    ];
    for (query, route, expect_in_body) in cases {
        let decision = router.decide(query, &probe);
        assert_eq!(decision.route, route, "{query}: {decision:?}");
        let (pack, key) = (decision.pack.unwrap(), decision.key.unwrap());
        let card = kb
            .lookup(&pack, &key)
            .unwrap()
            .unwrap_or_else(|| panic!("{query}: no record {pack}/{key}"));
        assert!(card.body.contains(expect_in_body), "{query}: {}", card.body);
        assert!(!card.source.is_empty() && !card.licence.is_empty());
    }
    // Open questions with no match in the data go to the model.
    let open = router.decide("write a poem about the monsoon rain", &probe);
    assert_eq!(open.route, Route::Generate, "{open:?}");
}

#[test]
fn natural_questions_find_their_records_through_the_shipped_rules() {
    let dir = tempfile::tempdir().unwrap();
    let kb = KnowledgeBase::open(&dir.path().join("knowledge.db")).unwrap();
    kb.import_dir(&assets().join("packs/thirukkural"), &TrustPolicy::any())
        .unwrap();
    kb.import_dir(&assets().join("packs/helplines"), &TrustPolicy::any())
        .unwrap();
    let router = Router::from_dir(assets().join("router")).unwrap();
    let cases = [
        // (question, route, a record among the first three hits)
        ("kural about rain", Route::Search, "chapter-2"),
        ("மழை பற்றிய குறள்", Route::Search, "kural-"),
        (
            "I need an ambulance right now",
            Route::Search,
            "helpline-108",
        ),
        (
            "what does thirukkural say about friendship",
            Route::Hybrid,
            "chapter-79",
        ),
        ("kurl 12", Route::Lookup, "kural-12"),
    ];
    for (question, route, record) in cases {
        let corrected = kb.correct_spelling(question).unwrap();
        let probe = |q: &str| kb.retrieve(q, 3, None).ok().and_then(|r| r.evidence());
        let decision = router.decide_corrected(question, &corrected, &probe);
        assert_eq!(decision.route, route, "{question}: {decision:?}");
        let ids: Vec<String> = match (&decision.pack, &decision.key) {
            (Some(pack), Some(key)) => vec![kb.lookup(pack, key).unwrap().unwrap().id],
            _ => kb
                .search(&decision.query, 3, None)
                .unwrap()
                .into_iter()
                .map(|h| h.card.id)
                .collect(),
        };
        assert!(
            ids.iter().any(|id| id.starts_with(record)),
            "{question}: {ids:?}"
        );
    }
}
