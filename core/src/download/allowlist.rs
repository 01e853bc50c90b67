//! The host allowlist and scheme rules, checked on the first request and on every redirect hop.

use std::collections::BTreeSet;
use std::net::IpAddr;

use reqwest::Url;

use super::DownloadError;

/// Whether `url` points at this machine (127.0.0.0/8, `::1` or `localhost`).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Hosts a download may contact, and whether plain http to loopback is allowed (tests only).
#[derive(Debug, Clone, Default)]
pub struct Allowlist {
    hosts: BTreeSet<String>,
    allow_loopback_http: bool,
}

impl Allowlist {
    /// An allowlist of `hosts` (compared case-insensitively, ports ignored).
    pub fn new(hosts: impl IntoIterator<Item = String>, allow_loopback_http: bool) -> Self {
        Self {
            hosts: hosts.into_iter().map(|h| h.to_ascii_lowercase()).collect(),
            allow_loopback_http,
        }
    }

    /// The hosts, sorted.
    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.hosts.iter().map(String::as_str)
    }

    /// Ok if a request to `url` is allowed: https (or http to loopback under the test setting),
    /// no credentials, a host on the list.
    pub fn check(&self, url: &Url) -> Result<(), DownloadError> {
        let scheme_ok = match url.scheme() {
            "https" => true,
            "http" => self.allow_loopback_http && is_loopback(url),
            _ => false,
        };
        if !scheme_ok {
            return Err(DownloadError::InsecureUrl { url: redact(url) });
        }
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if !self.hosts.contains(host) && !self.hosts.contains(&format!("[{host}]")) {
            return Err(DownloadError::HostNotAllowed {
                host: host.to_owned(),
            });
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(DownloadError::InsecureUrl { url: redact(url) });
        }
        Ok(())
    }
}

/// `url` without credentials or query (signed CDN URLs carry tokens in the query).
pub fn redact(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    if u.query().is_some() {
        u.set_query(Some("…"));
    }
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn https_to_listed_hosts_only() {
        let list = Allowlist::new(["Example.org".to_string()], false);
        assert!(list.check(&url("https://example.org/m.gguf")).is_ok());
        assert!(list.check(&url("https://EXAMPLE.org:8443/m")).is_ok());
        assert!(matches!(
            list.check(&url("https://evil.example.org/m")),
            Err(DownloadError::HostNotAllowed { host }) if host == "evil.example.org"
        ));
        assert!(matches!(
            list.check(&url("http://example.org/m")),
            Err(DownloadError::InsecureUrl { .. })
        ));
        assert!(matches!(
            list.check(&url("https://u:p@example.org/m")),
            Err(DownloadError::InsecureUrl { .. })
        ));
    }

    #[test]
    fn loopback_http_needs_the_test_setting_and_the_host() {
        let hosts = || ["127.0.0.1".to_string()];
        let strict = Allowlist::new(hosts(), false);
        let test = Allowlist::new(hosts(), true);
        let local = url("http://127.0.0.1:9/m");
        assert!(matches!(
            strict.check(&local),
            Err(DownloadError::InsecureUrl { .. })
        ));
        assert!(test.check(&local).is_ok());
        assert!(matches!(
            test.check(&url("http://localhost:9/m")),
            Err(DownloadError::HostNotAllowed { .. })
        ));
        assert!(matches!(
            test.check(&url("http://example.org/m")),
            Err(DownloadError::InsecureUrl { .. })
        ));
        let v6 = Allowlist::new(["::1".to_string()], true);
        assert!(v6.check(&url("http://[::1]:9/m")).is_ok());
    }

    #[test]
    fn redaction_drops_tokens() {
        let r = redact(&url("https://u:p@cdn.example/m?X-Amz-Signature=secret"));
        assert!(!r.contains("secret") && !r.contains("u:p"), "{r}");
    }
}
