//! The HTTP rules a resumable download depends on, as pure functions: which validators are
//! strong enough to resume against, and what a `Content-Range` says.

use reqwest::header::{HeaderMap, CONTENT_RANGE, ETAG, LAST_MODIFIED};
use serde::{Deserialize, Serialize};

/// A validator that identifies one exact representation, usable in `If-Range`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Validator {
    /// A strong ETag, quotes included (`"abc"`).
    ETag(String),
    /// A `Last-Modified` date that RFC 9110 §8.8.2.2 lets us treat as strong: the response's
    /// `Date` is at least one second after it.
    LastModified(String),
}

impl Validator {
    /// The value to send in `If-Range`.
    pub fn header_value(&self) -> &str {
        match self {
            Self::ETag(v) | Self::LastModified(v) => v,
        }
    }

    /// The strong validator of a response, if it has one. Weak ETags (`W/"…"`) never count; a
    /// `Last-Modified` counts only without any ETag and when the `Date` header is at least a
    /// second later.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        if let Some(etag) = headers.get(ETAG) {
            let etag = etag.to_str().ok()?.trim();
            let strong = etag.len() >= 2 && etag.starts_with('"') && etag.ends_with('"');
            return strong.then(|| Self::ETag(etag.to_owned()));
        }
        let modified = headers.get(LAST_MODIFIED)?.to_str().ok()?.trim();
        let date = headers.get(reqwest::header::DATE)?.to_str().ok()?;
        let (m, d) = (
            httpdate::parse_http_date(modified).ok()?,
            httpdate::parse_http_date(date).ok()?,
        );
        (d.duration_since(m).ok()?.as_secs() >= 1).then(|| Self::LastModified(modified.to_owned()))
    }

    /// Whether `headers` (of a 206) describe the same representation: for an ETag validator the
    /// response must carry the same ETag; for a date, no ETag and the same date.
    pub fn matches(&self, headers: &HeaderMap) -> bool {
        let get = |name| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        match self {
            Self::ETag(v) => get(ETAG) == Some(v.as_str()),
            Self::LastModified(v) => get(ETAG).is_none() && get(LAST_MODIFIED) == Some(v.as_str()),
        }
    }
}

/// A parsed `Content-Range: bytes first-last/complete` (complete may be `*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    /// First byte offset.
    pub first: u64,
    /// Last byte offset, inclusive.
    pub last: u64,
    /// Length of the whole representation, if stated.
    pub complete: Option<u64>,
}

impl ContentRange {
    /// Parses a 206's `Content-Range`; `None` when missing or malformed.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        Self::parse(headers.get(CONTENT_RANGE)?.to_str().ok()?)
    }

    /// Parses `bytes first-last/complete`.
    pub fn parse(value: &str) -> Option<Self> {
        let rest = value.trim().strip_prefix("bytes ")?;
        let (range, complete) = rest.split_once('/')?;
        let (first, last) = range.split_once('-')?;
        let digits = |s: &str| -> Option<u64> {
            let s = s.trim();
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        let (first, last) = (digits(first)?, digits(last)?);
        let complete = match complete.trim() {
            "*" => None,
            c => Some(digits(c)?),
        };
        if last < first || complete.is_some_and(|c| last >= c) {
            return None;
        }
        Some(Self {
            first,
            last,
            complete,
        })
    }

    /// Bytes the range covers.
    pub fn len(&self) -> u64 {
        (self.last - self.first).saturating_add(1)
    }

    /// Never true: a range covers at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderValue, DATE};

    fn headers(pairs: &[(reqwest::header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn strong_etags_count_weak_ones_do_not() {
        assert_eq!(
            Validator::from_headers(&headers(&[(ETAG, "\"abc\"")])),
            Some(Validator::ETag("\"abc\"".into()))
        );
        assert_eq!(
            Validator::from_headers(&headers(&[(ETAG, "W/\"abc\"")])),
            None
        );
        assert_eq!(Validator::from_headers(&headers(&[(ETAG, "abc")])), None);
        // A weak ETag is not rescued by a Last-Modified date.
        let weak_and_date = headers(&[
            (ETAG, "W/\"abc\""),
            (LAST_MODIFIED, "Sun, 01 Nov 2026 10:00:00 GMT"),
            (DATE, "Sun, 22 Nov 2026 10:00:00 GMT"),
        ]);
        assert_eq!(Validator::from_headers(&weak_and_date), None);
    }

    #[test]
    fn last_modified_counts_only_when_a_second_older_than_date() {
        let lm = "Sun, 01 Nov 2026 10:00:00 GMT";
        let old = headers(&[(LAST_MODIFIED, lm), (DATE, "Sun, 01 Nov 2026 10:00:01 GMT")]);
        assert_eq!(
            Validator::from_headers(&old),
            Some(Validator::LastModified(lm.into()))
        );
        let same = headers(&[(LAST_MODIFIED, lm), (DATE, lm)]);
        assert_eq!(Validator::from_headers(&same), None);
        assert_eq!(
            Validator::from_headers(&headers(&[(LAST_MODIFIED, lm)])),
            None
        );
        assert_eq!(
            Validator::from_headers(&headers(&[(LAST_MODIFIED, "yesterday"), (DATE, lm)])),
            None
        );
    }

    #[test]
    fn validators_match_only_the_same_representation() {
        let v = Validator::ETag("\"a\"".into());
        assert!(v.matches(&headers(&[(ETAG, "\"a\"")])));
        assert!(!v.matches(&headers(&[(ETAG, "\"b\"")])));
        assert!(!v.matches(&headers(&[])));
        let d = Validator::LastModified("Sun, 01 Nov 2026 10:00:00 GMT".into());
        assert!(d.matches(&headers(&[(
            LAST_MODIFIED,
            "Sun, 01 Nov 2026 10:00:00 GMT"
        )])));
        assert!(!d.matches(&headers(&[
            (LAST_MODIFIED, "Sun, 01 Nov 2026 10:00:00 GMT"),
            (ETAG, "\"x\"")
        ])));
    }

    #[test]
    fn content_range_parsing() {
        assert_eq!(
            ContentRange::parse("bytes 100-199/1000"),
            Some(ContentRange {
                first: 100,
                last: 199,
                complete: Some(1000)
            })
        );
        assert_eq!(ContentRange::parse("bytes 0-0/*").map(|r| r.len()), Some(1));
        for bad in [
            "",
            "bytes */1000",
            "bytes 5-4/10",
            "bytes 0-10/10",
            "bytes -1-5/10",
            "bytes 1-5",
            "items 1-5/10",
            "bytes +1-5/10",
            "bytes 1-99999999999999999999999/10",
        ] {
            assert_eq!(ContentRange::parse(bad), None, "{bad}");
        }
    }
}
