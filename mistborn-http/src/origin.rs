//! Which web pages may use a request's ambient identity: the browser's `Origin` header checked
//! against the pages Mistborn itself serves. A tunnel address identifies the device, not the page
//! that sent the request, so any site the device's browser opens could otherwise act with it.

use std::net::IpAddr;

use axum::http::{HeaderMap, Uri, header};
use mistborn_core::Config;

/// Where a request says it was sent from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOrigin {
    /// No `Origin` header: browsers always send one on WebSocket upgrades and cross-origin or
    /// state-changing requests, so this is a program (curl, a script, a generated client).
    Absent,
    /// A page Mistborn served (see [`origin_allowed`]).
    Ours,
    /// Any other page, `null` (sandboxed frames, `file:`), or a malformed header.
    Foreign,
}

/// Classifies the request's `Origin` (see [`origin_allowed`] for which are ours).
pub fn request_origin(headers: &HeaderMap, config: &Config) -> RequestOrigin {
    let mut values = headers.get_all(header::ORIGIN).iter();
    let Some(value) = values.next() else {
        return RequestOrigin::Absent;
    };
    let ours = values.next().is_none()
        && value
            .to_str()
            .ok()
            .is_some_and(|origin| is_ours(origin, headers, config));
    if ours {
        RequestOrigin::Ours
    } else {
        RequestOrigin::Foreign
    }
}

/// Whether the request carries an `Origin` of a page Mistborn served: the sign-in page
/// `home.<dns_suffix>` through the proxy (on its HTTPS or HTTP port), or this listener reached
/// directly at an address (`Origin` names the same host and port as `Host`, and that host is an IP
/// address or `localhost`; a DNS name there proves nothing, since anyone's name can be rebound to
/// this host's address). No `Origin` at all is not allowed here: callers decide what a request
/// without one may do ([`request_origin`]).
pub fn origin_allowed(headers: &HeaderMap, config: &Config) -> bool {
    request_origin(headers, config) == RequestOrigin::Ours
}

fn is_ours(origin: &str, headers: &HeaderMap, config: &Config) -> bool {
    let Ok(uri) = origin.parse::<Uri>() else {
        return false;
    };
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return false;
    };
    // An origin is scheme://host[:port] and nothing more.
    if uri
        .path_and_query()
        .is_some_and(|p| !p.as_str().is_empty() && p.as_str() != "/")
    {
        return false;
    }
    let default_port = match scheme {
        "https" => 443,
        "http" => 80,
        _ => return false,
    };
    let host = authority.host();
    let port = authority.port_u16().unwrap_or(default_port);
    let home = format!("home.{}", config.dns_suffix);
    if host.eq_ignore_ascii_case(&home) {
        let proxy = &config.proxy;
        return (scheme == "https" && port == proxy.https_port)
            || (scheme == "http" && port == proxy.http_port);
    }
    let literal = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok()
        || host.eq_ignore_ascii_case("localhost");
    let same_host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| same_authority(h, host, port, default_port));
    literal && same_host
}

/// Whether a `Host` header names `host:port` (its port defaulting like the origin's scheme).
fn same_authority(host_header: &str, host: &str, port: u16, default_port: u16) -> bool {
    let Ok(authority) = host_header.parse::<axum::http::uri::Authority>() else {
        return false;
    };
    authority.host().eq_ignore_ascii_case(host)
        && authority.port_u16().unwrap_or(default_port) == port
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(origin: Option<&str>, host: Option<&str>) -> RequestOrigin {
        let mut config = Config::default();
        config.proxy.https_port = 8443;
        let mut h = HeaderMap::new();
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().expect("origin"));
        }
        if let Some(v) = host {
            h.insert(header::HOST, v.parse().expect("host"));
        }
        request_origin(&h, &config)
    }

    #[test]
    fn only_pages_mistborn_served_are_ours() {
        use RequestOrigin::*;
        assert_eq!(check(None, Some("10.15.91.1:5000")), Absent);
        // The sign-in page through the proxy, on the proxy's ports only.
        assert_eq!(check(Some("https://home.mistborn:8443"), Some("x")), Ours);
        assert_eq!(check(Some("https://HOME.mistborn:8443"), None), Ours);
        assert_eq!(check(Some("http://home.mistborn"), None), Ours);
        assert_eq!(check(Some("https://home.mistborn"), None), Foreign);
        assert_eq!(check(Some("http://home.mistborn:8080"), None), Foreign);
        assert_eq!(
            check(Some("https://nextcloud.mistborn:8443"), None),
            Foreign
        );
        assert_eq!(
            check(Some("https://home.mistborn.evil.com:8443"), None),
            Foreign
        );
        // The listener reached at an address: same host and port as Host.
        assert_eq!(
            check(Some("http://10.15.91.1:5000"), Some("10.15.91.1:5000")),
            Ours
        );
        assert_eq!(
            check(Some("http://[fd15:91::1]:5000"), Some("[fd15:91::1]:5000")),
            Ours
        );
        assert_eq!(
            check(Some("http://localhost:5000"), Some("localhost:5000")),
            Ours
        );
        assert_eq!(
            check(Some("http://10.15.91.1"), Some("10.15.91.1:80")),
            Ours
        );
        assert_eq!(
            check(Some("http://10.15.91.1:5001"), Some("10.15.91.1:5000")),
            Foreign
        );
        assert_eq!(check(Some("http://10.15.91.1:5000"), None), Foreign);
        // A DNS name equal to Host may be a rebinding attacker's own name.
        assert_eq!(
            check(Some("http://evil.example:5000"), Some("evil.example:5000")),
            Foreign
        );
        assert_eq!(
            check(Some("https://evil.example"), Some("10.15.91.1:5000")),
            Foreign
        );
        // Opaque and malformed origins.
        assert_eq!(check(Some("null"), Some("10.15.91.1:5000")), Foreign);
        assert_eq!(check(Some("file://"), None), Foreign);
        assert_eq!(check(Some("ftp://home.mistborn:8443"), None), Foreign);
        assert_eq!(
            check(Some("https://home.mistborn:8443/path"), None),
            Foreign
        );
        assert_eq!(check(Some(""), None), Foreign);
    }

    #[test]
    fn two_origin_headers_are_foreign() {
        let config = Config::default();
        let mut h = HeaderMap::new();
        h.append(header::ORIGIN, "http://home.mistborn".parse().expect("o"));
        h.append(header::ORIGIN, "https://evil.example".parse().expect("o"));
        assert_eq!(request_origin(&h, &config), RequestOrigin::Foreign);
    }
}
