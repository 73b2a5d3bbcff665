//! `listen --ui`: a web page over the requests listen saw, on its own loopback port.
//!
//! The page holds transcripts and can make hookcli sign and send, so it is locked down: a
//! random token (page: `?token=`, API: the `x-hookcli-token` header, which a cross-site page
//! cannot send without a preflight nobody answers), `Host` and `Origin` checked against its
//! own address (DNS rebinding, other sites), no CORS headers, a strict Content-Security-Policy,
//! and the page renders everything as text. The key never leaves the process: replays are
//! signed here. Each request is moved into a bounded ring by the task that answered it
//! (nothing copied or serialized until the page asks), so the webhook path never waits on the
//! page. Nothing here prints.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue, ORIGIN};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::catalog::Platform;
use crate::receiver::Received;
use crate::secret::Secret;

mod entry;

pub use entry::Entry;

/// The most requests the page keeps; older ones leave the ring (the record file keeps all).
pub const RING: usize = 1000;

const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("app.js");
const STYLE: &str = include_str!("app.css");

/// Sent with everything: scripts and styles only from this origin, nothing framed, no inline
/// code, so a payload that slipped into markup could still not run.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                       connect-src 'self'; img-src 'self'; base-uri 'none'; \
                       form-action 'none'; frame-ancestors 'none'";

/// What the page needs to know about this listen.
#[derive(Clone, Debug)]
pub struct Setup {
    pub platform: Arc<Platform>,
    pub key: Option<Secret>,
    /// listen's own webhook URL (a replay target: the new request shows up in the list).
    pub listen_url: String,
    pub forward_url: Option<String>,
    pub tolerance: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot start the inspector on 127.0.0.1: {0}")]
pub struct InspectorError(String);

/// The recent requests, oldest first, each with an id the page asks by.
#[derive(Default)]
pub struct Ring {
    entries: VecDeque<Arc<Entry>>,
    next_id: u64,
}

impl Ring {
    pub fn push(&mut self, mut entry: Entry) {
        self.next_id += 1;
        entry.id = self.next_id;
        if self.entries.len() >= RING {
            self.entries.pop_front();
        }
        self.entries.push_back(Arc::new(entry));
    }

    /// Adds a request listen saw: moved in, nothing copied or parsed until the page asks.
    pub fn push_received(&mut self, received: Received) {
        self.push(Entry::from_received(received));
    }

    /// Loads the last [`RING`] requests of a record file's text (the history before a
    /// restart); returns how many. Lines that do not read are skipped: the file is listen's.
    pub fn load_record(&mut self, text: &str) -> usize {
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let start = lines.len().saturating_sub(RING);
        let mut loaded = 0;
        for line in &lines[start..] {
            if let Some(entry) = Entry::from_record(line) {
                self.push(entry);
                loaded += 1;
            }
        }
        loaded
    }

    fn after(&self, id: u64) -> Vec<Arc<Entry>> {
        self.entries.iter().filter(|e| e.id > id).cloned().collect()
    }

    fn get(&self, id: u64) -> Option<Arc<Entry>> {
        self.entries.iter().find(|e| e.id == id).cloned()
    }
}

struct State {
    setup: Setup,
    ring: Arc<Mutex<Ring>>,
    token: String,
    /// `127.0.0.1:PORT` and `localhost:PORT`: the only Hosts, and with `http://`, Origins.
    hosts: [String; 2],
    client: reqwest::Client,
}

/// A running inspector.
pub struct Inspector {
    /// `http://127.0.0.1:PORT/?token=…`: printed once.
    pub url: String,
    pub addr: SocketAddr,
    cancel: CancellationToken,
}

impl Inspector {
    /// Binds 127.0.0.1 on a free port (never listen's webhook address) and serves the
    /// requests in `ring` (listen fills it, from the record's history and then live).
    pub async fn start(setup: Setup, ring: Arc<Mutex<Ring>>) -> Result<Inspector, InspectorError> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| InspectorError(crate::text::io_reason(&e)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| InspectorError(crate::text::io_reason(&e)))?;
        let token = new_token();
        let port = addr.port();
        let state = Arc::new(State {
            setup,
            ring,
            hosts: [format!("127.0.0.1:{port}"), format!("localhost:{port}")],
            token,
            client: crate::delivery::client(),
        });
        let cancel = CancellationToken::new();
        tokio::spawn(accept_loop(listener, state.clone(), cancel.clone()));
        Ok(Inspector {
            url: format!("http://127.0.0.1:{port}/?token={}", state.token),
            addr,
            cancel,
        })
    }

    pub fn stop(&self) {
        self.cancel.cancel();
    }
}

/// 128 random bits from the OS, as hex.
fn new_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

async fn accept_loop(listener: TcpListener, state: Arc<State>, cancel: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(req, &state).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(req: Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    if let Some(refused) = refuse(&req, state) {
        return refused;
    }
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    match (req.method().clone(), path.as_str()) {
        (Method::GET, "/") => page(state),
        (Method::GET, "/app.js") => asset(SCRIPT, "text/javascript; charset=utf-8"),
        (Method::GET, "/app.css") => asset(STYLE, "text/css; charset=utf-8"),
        (Method::GET, "/api/requests") => {
            let after = query_value(&query, "after")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            list(state, after)
        }
        (Method::GET, p) if p.starts_with("/api/requests/") => {
            match p["/api/requests/".len()..].parse::<u64>() {
                Ok(id) => detail(state, id),
                Err(_) => plain(StatusCode::NOT_FOUND, "no such request"),
            }
        }
        (Method::POST, "/api/replay") => replay(req, state).await,
        (_, "/" | "/app.js" | "/app.css" | "/api/requests" | "/api/replay") => {
            plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => plain(StatusCode::NOT_FOUND, "not found"),
    }
}

/// The checks every request passes first: its Host is this inspector (a DNS-rebinding name is
/// not), an Origin, when sent, is this inspector (another site's page is not), and it carries
/// the token (the page in its query, the API in a header).
fn refuse(req: &Request<Incoming>, state: &State) -> Option<Response<Full<Bytes>>> {
    let host = req.headers().get(HOST).and_then(|h| h.to_str().ok());
    if !host.is_some_and(|h| state.hosts.iter().any(|ours| ours == h)) {
        return Some(plain(
            StatusCode::MISDIRECTED_REQUEST,
            "this inspector answers only to 127.0.0.1 and localhost",
        ));
    }
    if let Some(origin) = req.headers().get(ORIGIN) {
        let ours = origin.to_str().ok().and_then(|o| o.strip_prefix("http://"));
        if !ours.is_some_and(|o| state.hosts.iter().any(|h| h == o)) {
            return Some(plain(StatusCode::FORBIDDEN, "another origin"));
        }
    }
    if req
        .headers()
        .get("sec-fetch-site")
        .is_some_and(|s| s.as_bytes() == b"cross-site")
    {
        return Some(plain(StatusCode::FORBIDDEN, "a cross-site request"));
    }
    let path = req.uri().path();
    let given = if path.starts_with("/api/") {
        req.headers()
            .get("x-hookcli-token")
            .and_then(|t| t.to_str().ok())
            .map(str::to_string)
    } else {
        query_value(req.uri().query().unwrap_or(""), "token")
    };
    let known = path == "/" || path == "/app.js" || path == "/app.css" || path.starts_with("/api/");
    if known && !given.is_some_and(|t| same(&t, &state.token)) {
        return Some(plain(
            StatusCode::FORBIDDEN,
            "the token is missing or wrong: open the address listen printed",
        ));
    }
    None
}

/// Compares without stopping at the first difference: the time taken says nothing.
fn same(given: &str, token: &str) -> bool {
    let (a, b) = (given.as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn query_value(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn secured(mut response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    let headers = response.headers_mut();
    for (name, value) in [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        // The token is in the page's address: no other site learns it from a Referer.
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
        ("cross-origin-resource-policy", "same-origin"),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn with_type(status: StatusCode, kind: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    secured(response)
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    with_type(
        status,
        "text/plain; charset=utf-8",
        Bytes::from_static(text.as_bytes()),
    )
}

fn json_response(status: StatusCode, value: &Value) -> Response<Full<Bytes>> {
    with_type(status, "application/json", Bytes::from(value.to_string()))
}

fn asset(text: &'static str, kind: &'static str) -> Response<Full<Bytes>> {
    with_type(StatusCode::OK, kind, Bytes::from_static(text.as_bytes()))
}

/// The page, its asset links carrying the token (hex: nothing to escape).
fn page(state: &State) -> Response<Full<Bytes>> {
    let html = PAGE.replace("{{TOKEN}}", &state.token);
    with_type(
        StatusCode::OK,
        "text/html; charset=utf-8",
        Bytes::from(html),
    )
}

fn list(state: &State, after: u64) -> Response<Full<Bytes>> {
    let entries = match state.ring.lock() {
        Ok(ring) => ring.after(after),
        Err(_) => Vec::new(),
    };
    let setup = &state.setup;
    json_response(
        StatusCode::OK,
        &json!({
            "platform": setup.platform.id,
            "listen_url": setup.listen_url,
            "forward_url": setup.forward_url,
            "requests": entries.iter().map(|e| e.summary(setup)).collect::<Vec<_>>(),
        }),
    )
}

fn detail(state: &State, id: u64) -> Response<Full<Bytes>> {
    let entry = state.ring.lock().ok().and_then(|ring| ring.get(id));
    match entry {
        Some(entry) => json_response(StatusCode::OK, &entry.detail(&state.setup)),
        None => plain(StatusCode::NOT_FOUND, "no such request (it left the ring)"),
    }
}

#[derive(Deserialize)]
struct ReplayAsk {
    id: u64,
    /// `listen`, `forward`, or a URL.
    to: String,
}

/// Sends a kept request again, re-signed now, once, and says what came back.
async fn replay(req: Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    let Ok(body) = Limited::new(req.into_body(), 64 * 1024).collect().await else {
        return plain(StatusCode::BAD_REQUEST, "the ask is too large");
    };
    let Ok(ask) = serde_json::from_slice::<ReplayAsk>(&body.to_bytes()) else {
        return plain(StatusCode::BAD_REQUEST, "send {\"id\": N, \"to\": ...}");
    };
    let Some(entry) = state.ring.lock().ok().and_then(|ring| ring.get(ask.id)) else {
        return plain(StatusCode::NOT_FOUND, "no such request (it left the ring)");
    };
    let setup = &state.setup;
    let target = match ask.to.as_str() {
        "listen" => setup.listen_url.clone(),
        "forward" => match &setup.forward_url {
            Some(url) => url.clone(),
            None => return plain(StatusCode::BAD_REQUEST, "listen forwards nowhere"),
        },
        url => url.to_string(),
    };
    let url = match reqwest::Url::parse(&target) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => url,
        _ => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"error": "not an http or https URL, like http://127.0.0.1:3000/webhook"}),
            );
        }
    };
    let headers = crate::config::platform_headers(&setup.platform, &[]).unwrap_or_default();
    let request = crate::delivery::Request {
        method: reqwest::Method::POST,
        url: url.clone(),
        headers,
        body: entry.body.clone(),
        signer: crate::delivery::Signer::for_platform(&setup.platform, setup.key.as_ref()),
    };
    let policy = crate::policy::DeliveryPolicy {
        retries: 0,
        ..setup.platform.policy.clone()
    };
    let attempt = crate::delivery::attempt(&state.client, &request, &policy, 1).await;
    json_response(
        StatusCode::OK,
        &json!({
            "url": crate::redact::shown_text(url.as_str()),
            "signed": request.signer.is_some(),
            "status": attempt.status,
            "ms": attempt.latency.as_millis() as u64,
            "accepted": attempt.accepted,
            "error": attempt.detail,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole_and_are_fresh() {
        let token = new_token();
        assert_eq!(token.len(), 32);
        assert!(same(&token, &token.clone()));
        assert!(!same(&token[..31], &token));
        assert!(!same("", &token));
        assert_ne!(token, new_token());
    }

    #[test]
    fn the_ring_keeps_the_newest_and_numbers_them_on() {
        let mut ring = Ring::default();
        for _ in 0..RING + 5 {
            ring.push(Entry::default());
        }
        assert_eq!(ring.entries.len(), RING);
        assert_eq!(ring.entries.front().map(|e| e.id), Some(6));
        assert_eq!(ring.after(RING as u64 + 3).len(), 2);
        assert!(ring.get(1).is_none());
    }
}
