//! The `Host` names the API answers to: the defence against DNS rebinding, where another web
//! site points a name of its own at the daemon's address so that a browser lets the site's page
//! read the answers (runs, commands, logs; all of them with `--public-reads`).
//!
//! An IP address (v4, or v6 in brackets) is always answered, since no other site can own one,
//! and so are `localhost` and its subdomains, this machine's own host name, the host of
//! `--public-url` and each `--allow-host`. Any other name gets a JSON 403 that says how to allow
//! it. A request without a `Host` header (HTTP/1.0, which no browser sends) is answered.

use std::net::Ipv4Addr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::HOST;
use axum::middleware::Next;
use axum::response::IntoResponse;

use super::error::ApiError;
use super::response::Response;
use super::state::ApiState;

/// The middleware that answers a request only if its `Host` is allowed.
pub async fn check(State(state): State<Arc<ApiState>>, request: Request, next: Next) -> Response {
    if let Some(host) = request.headers().get(HOST) {
        let host = String::from_utf8_lossy(host.as_bytes()).into_owned();
        if !state.hosts.allows(&host) {
            return ApiError::HostNotAllowed(host).into_response();
        }
    }
    next.run(request).await
}

/// The names, beside addresses and `localhost`, that the API answers to.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    /// Lower case, without a port or a trailing dot.
    names: Vec<String>,
}

impl AllowedHosts {
    /// This machine's host name and `names` (host names, or URLs whose host is taken).
    pub fn new(names: impl IntoIterator<Item = String>) -> AllowedHosts {
        let own = nix::unistd::gethostname()
            .ok()
            .and_then(|name| name.into_string().ok());
        let names = own
            .into_iter()
            .chain(names)
            .map(|name| normal(url_host(name.as_str())))
            .filter(|name| !name.is_empty())
            .collect();
        AllowedHosts { names }
    }

    /// Whether a request with this `Host` header is answered.
    pub fn allows(&self, header: &str) -> bool {
        let host = without_port(header.trim());
        if host.starts_with('[') || host.parse::<Ipv4Addr>().is_ok() {
            return true;
        }
        let host = normal(host);
        host == "localhost" || host.ends_with(".localhost") || self.names.contains(&host)
    }
}

/// The host of a URL (`https://user@host:8443/path` -> `host:8443`), or the text itself.
fn url_host(text: &str) -> &str {
    let Some((_, rest)) = text.split_once("://") else {
        return text;
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
}

/// `host:port` -> `host`; `[v6]:port` -> `[v6]`.
fn without_port(host: &str) -> &str {
    if let Some(end) = host.find(']') {
        return &host[..=end];
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

fn normal(host: &str) -> String {
    without_port(host)
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_localhost_and_the_named_hosts_are_answered_and_no_other_name() {
        let hosts = AllowedHosts::new([
            "https://engine.lab.example.org:8443/base".to_string(),
            "Pipelines.Internal".to_string(),
        ]);
        for allowed in [
            "127.0.0.1:7878",
            "10.1.2.3",
            "[::1]:7878",
            "[fe80::1]",
            "localhost:7878",
            "LOCALHOST",
            "app.localhost:80",
            "engine.lab.example.org",
            "engine.lab.example.org.:8443",
            "pipelines.internal:7878",
        ] {
            assert!(hosts.allows(allowed), "{allowed}");
        }
        for refused in [
            "rebind.attacker.example:7878",
            "127.0.0.1.nip.io",
            "localhost.attacker.example",
            "example.org",
            "",
        ] {
            assert!(!hosts.allows(refused), "{refused}");
        }
    }
}
