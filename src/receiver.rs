//! The receiving side: an HTTP server that verifies webhooks as a careful receiver would, can
//! misbehave on purpose (status, delay, fail-first, drop) and can record what it got.
//!
//! hyper, not axum: the receiver needs the raw body bytes under a size limit, the freedom to
//! close a connection without answering (`--drop`), and nothing in the hot path but the
//! HMAC; a router would add nothing here. Nothing in this module prints: every request is
//! reported as a [`Received`] on a channel.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_LENGTH, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::catalog::Platform;
use crate::error::{io_reason, path_reason};
use crate::secret::Secret;
use crate::signing::{self, Verdict};

pub const DEFAULT_MAX_BODY: u64 = 25 * 1024 * 1024;

/// How the receiver misbehaves, to test a sender.
#[derive(Clone, Debug)]
pub struct Faults {
    /// The answer to a request that passes verification (default 204, or what the
    /// platform's rule takes).
    pub status: u16,
    /// A wait before every answer.
    pub delay: Duration,
    /// The first N requests fail: 500, or a dropped connection with `drop`.
    pub fail_first: u64,
    /// Close the connection without answering (only the first N with `fail_first`).
    pub drop: bool,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            status: 204,
            delay: Duration::ZERO,
            fail_first: 0,
            drop: false,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ReceiverConfig {
    pub host: String,
    pub port: u16,
    pub path: String,
    pub platform: Platform,
    /// The key to verify with; `None` gives every request the verdict `unsigned`.
    pub key: Option<Secret>,
    pub tolerance: Duration,
    pub faults: Faults,
    pub max_body: u64,
    pub record: Option<PathBuf>,
}

impl ReceiverConfig {
    /// A well-behaved receiver on 127.0.0.1 with a free port.
    pub fn local(platform: Platform, key: Option<Secret>) -> Self {
        let tolerance = platform
            .signing
            .as_ref()
            .map(|s| s.tolerance)
            .unwrap_or(Duration::from_secs(300));
        let faults = Faults {
            status: platform.policy.success.preferred_status(),
            ..Faults::default()
        };
        ReceiverConfig {
            host: "127.0.0.1".into(),
            port: 0,
            path: "/webhook".into(),
            platform,
            key,
            tolerance,
            faults,
            max_body: DEFAULT_MAX_BODY,
            record: None,
        }
    }
}

/// One request as the receiver saw it and answered it.
#[derive(Clone, Debug)]
pub struct Received {
    /// 1 for the first request.
    pub n: u64,
    pub at: SystemTime,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub verdict: Verdict,
    pub event: Option<String>,
    pub call_id: Option<String>,
    /// The status answered; `None` when the connection was dropped.
    pub answered: Option<u16>,
    /// Why the answer was what it was, when not the plain verdict ("over the 25 MB limit").
    pub note: Option<String>,
}

impl Received {
    /// The body's size as it arrived; a body refused as too large is counted, not kept.
    pub fn size(&self) -> u64 {
        match self.verdict {
            Verdict::TooLarge { bytes, .. } => bytes,
            _ => self.body.len() as u64,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    #[error("port {port} on {host} is already in use")]
    PortInUse { host: String, port: u16 },
    #[error("cannot listen on {host}:{port}: {reason}")]
    Bind {
        host: String,
        port: u16,
        reason: String,
        kind: std::io::ErrorKind,
    },
    #[error("cannot write the record file {path}: {reason}")]
    Record { path: String, reason: String },
}

impl ReceiverError {
    fn bind(host: &str, port: u16, err: &std::io::Error) -> Self {
        match err.kind() {
            std::io::ErrorKind::AddrInUse => ReceiverError::PortInUse {
                host: host.to_string(),
                port,
            },
            kind => ReceiverError::Bind {
                host: host.to_string(),
                port,
                // The resolver's words ("failed to lookup address information: Name or
                // service not known") for what is simply a bad --host.
                reason: if err.to_string().contains("lookup address") {
                    "not an address, nor a name that resolves".to_string()
                } else {
                    io_reason(err)
                },
                kind,
            },
        }
    }

    /// The fix, for the `hint:` line.
    pub fn hint(&self) -> &'static str {
        match self {
            ReceiverError::PortInUse { .. } => {
                "stop what holds it, or pick another with --port (0 picks a free one)"
            }
            ReceiverError::Bind {
                kind: std::io::ErrorKind::PermissionDenied,
                ..
            } => "ports below 1024 need privileges: pick another with --port (0 picks a free one)",
            ReceiverError::Bind { .. } => {
                "--host takes an address of this machine, like 127.0.0.1 or 0.0.0.0"
            }
            ReceiverError::Record { .. } => {
                "name a file in an existing folder, like --record traffic.ndjson"
            }
        }
    }
}

/// Counts by verdict, for the summary when the receiver stops.
#[derive(Default, Debug)]
pub struct Stats {
    pub requests: AtomicU64,
    pub dropped: AtomicU64,
    verdicts: [AtomicU64; Verdict::WORDS.len()],
}

impl Stats {
    fn count(&self, verdict: &Verdict) {
        let i = Verdict::WORDS
            .iter()
            .position(|w| *w == verdict.word())
            .unwrap_or(0);
        self.verdicts[i].fetch_add(1, Ordering::Relaxed);
    }

    /// (verdict word, count) for every verdict seen at least once.
    pub fn by_verdict(&self) -> Vec<(&'static str, u64)> {
        Verdict::WORDS
            .iter()
            .zip(&self.verdicts)
            .map(|(w, c)| (*w, c.load(Ordering::Relaxed)))
            .filter(|(_, c)| *c > 0)
            .collect()
    }
}

struct State {
    config: ReceiverConfig,
    stats: Arc<Stats>,
    fail_budget: AtomicU64,
    record: Option<Mutex<std::fs::File>>,
    events: Option<mpsc::UnboundedSender<Received>>,
}

/// A running receiver. Dropping it does not stop it: call [`Receiver::stop`].
pub struct Receiver {
    pub addr: SocketAddr,
    pub url: String,
    pub stats: Arc<Stats>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Binds and starts serving. Every request is sent to `events` when given.
    pub async fn start(
        config: ReceiverConfig,
        events: Option<mpsc::UnboundedSender<Received>>,
    ) -> Result<Receiver, ReceiverError> {
        let (host, port) = (config.host.clone(), config.port);
        let listener = TcpListener::bind((host.as_str(), port))
            .await
            .map_err(|e| ReceiverError::bind(&host, port, &e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| ReceiverError::bind(&host, port, &e))?;
        let record = match &config.record {
            Some(path) => Some(Mutex::new(open_record(path)?)),
            None => None,
        };
        let shown_host = if host.contains(':') {
            format!("[{}]", addr.ip())
        } else {
            addr.ip().to_string()
        };
        let url = format!("http://{shown_host}:{}{}", addr.port(), config.path);
        let stats = Arc::new(Stats::default());
        let state = Arc::new(State {
            fail_budget: AtomicU64::new(config.faults.fail_first),
            config,
            stats: stats.clone(),
            record,
            events,
        });
        let cancel = CancellationToken::new();
        let task = tokio::spawn(accept_loop(listener, state, cancel.clone()));
        Ok(Receiver {
            addr,
            url,
            stats,
            cancel,
            task,
        })
    }

    /// Stops accepting connections.
    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

/// The record file, appended to so one file can collect several sessions.
fn open_record(path: &Path) -> Result<std::fs::File, ReceiverError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| ReceiverError::Record {
            path: path.display().to_string(),
            reason: path_reason(path, &e),
        })
}

async fn accept_loop(listener: TcpListener, state: Arc<State>, cancel: CancellationToken) {
    loop {
        let stream = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors and the like: keep serving the connections we have.
                Err(_) => { tokio::time::sleep(Duration::from_millis(10)).await; continue; }
            },
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(req, state.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Returned from the service to make hyper close the connection without an answer.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dropped on purpose")
    }
}

impl std::error::Error for Dropped {}

async fn handle(
    req: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let stats = &state.stats;
    let n = stats.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let at = SystemTime::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let config = &state.config;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let body = read_body(req.into_body(), declared, config.max_body).await?;
    let mut received = Received {
        n,
        at,
        method: method.to_string(),
        path,
        headers,
        body: Bytes::new(),
        verdict: Verdict::Unsigned,
        event: None,
        call_id: None,
        answered: None,
        note: None,
    };
    let decision = match body {
        Body::TooLarge(bytes) => {
            let limit = config.max_body;
            received.verdict = Verdict::TooLarge { bytes, limit };
            received.note = Some(format!("body over the {} limit", human_bytes(limit)));
            Decision::answer(StatusCode::PAYLOAD_TOO_LARGE)
        }
        Body::Read(body) => {
            received.body = body.clone();
            judge(&state, &method, &mut received, &body)
        }
    };
    let status = decision.status;
    // --drop alone drops everything; with --fail-first it drops the first N instead of a 500.
    let drop_it =
        config.faults.drop && (config.faults.fail_first == 0 || decision.failed_on_purpose);
    received.answered = (!drop_it).then_some(status.as_u16());
    if drop_it {
        stats.dropped.fetch_add(1, Ordering::Relaxed);
    }
    stats.count(&received.verdict);
    record(&state, &received);
    if let Some(events) = &state.events {
        let _ = events.send(received);
    }
    if !config.faults.delay.is_zero() {
        tokio::time::sleep(config.faults.delay).await;
    }
    if drop_it {
        return Err(Dropped);
    }
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
    }
    Ok(response)
}

/// Past this much, an oversized body is no longer drained: the connection is closed.
const DRAIN_LIMIT: u64 = 256 * 1024 * 1024;

/// A request body: read whole, or only counted because it was over the limit.
enum Body {
    Read(Bytes),
    TooLarge(u64),
}

/// Reads the body, or counts it when it is over `max`. An oversized body is still drained (up
/// to [`DRAIN_LIMIT`]) so the sender, still writing, can read the 413 instead of a reset.
async fn read_body(mut body: Incoming, declared: Option<u64>, max: u64) -> Result<Body, Dropped> {
    let mut over = declared.is_some_and(|len| len > max);
    let mut buf = Vec::with_capacity(declared.unwrap_or(0).min(max).min(1 << 20) as usize);
    let mut total: u64 = 0;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|_| Dropped)?.into_data() else {
            continue;
        };
        total += data.len() as u64;
        if total > DRAIN_LIMIT {
            return Err(Dropped);
        }
        if !over && total > max {
            over = true;
            buf = Vec::new();
        }
        if !over {
            buf.extend_from_slice(&data);
        }
    }
    Ok(if over {
        Body::TooLarge(total)
    } else {
        Body::Read(Bytes::from(buf))
    })
}

/// The answer to one request, and whether it is one of the --fail-first failures.
struct Decision {
    status: StatusCode,
    failed_on_purpose: bool,
}

impl Decision {
    fn answer(status: StatusCode) -> Self {
        Decision {
            status,
            failed_on_purpose: false,
        }
    }
}

/// Verifies, then decides the answer: 404/405 for the wrong route, the fault's 500 for the
/// first N, 401/400 for a signature that does not verify, 400 for a body that is not JSON,
/// else the configured status.
fn judge(state: &State, method: &Method, received: &mut Received, body: &Bytes) -> Decision {
    let config = &state.config;
    let platform = &config.platform;
    // The event and call id are only for the report: with nobody to report to (listen -q),
    // the body is only validated, without building a tree, which saves most allocations.
    let is_json = if state.events.is_some() {
        let json = serde_json::from_slice::<Value>(body).ok();
        if let Some(json) = &json {
            received.event = platform.event_of(json);
            received.call_id = platform.call_id_of(json);
        }
        json.is_some()
    } else {
        serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
    };
    received.verdict = match (&platform.signing, &config.key) {
        (Some(signing), Some(key)) => {
            let mut headers = received
                .headers
                .iter()
                .filter(|(k, _)| *k == signing.header)
                .map(|(_, v)| v.as_str());
            let header = headers.next();
            // Two signatures: which one counts would depend on their order, so neither does.
            if headers.next().is_some() {
                Verdict::Malformed(format!("{} is given more than once", signing.header))
            } else {
                signing::verify(
                    signing.scheme,
                    key,
                    body,
                    header,
                    signing::now_ms(),
                    config.tolerance,
                )
            }
        }
        _ => Verdict::Unsigned,
    };
    if received.path != config.path {
        received.note = Some(format!("not the webhook path {}", config.path));
        return Decision::answer(StatusCode::NOT_FOUND);
    }
    if method != Method::POST {
        received.note = Some("webhooks are POSTed".into());
        return Decision::answer(StatusCode::METHOD_NOT_ALLOWED);
    }
    let budget = &state.fail_budget;
    if budget
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
            left.checked_sub(1)
        })
        .is_ok()
    {
        received.note = Some("fail-first".into());
        return Decision {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            failed_on_purpose: true,
        };
    }
    Decision::answer(match &received.verdict {
        Verdict::Malformed(_) => StatusCode::BAD_REQUEST,
        v if !v.accepted() => StatusCode::UNAUTHORIZED,
        // A careful receiver says 400 to a body it cannot read, so the platform drops it.
        _ if !is_json => {
            received.note = Some("the body is not JSON".into());
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::from_u16(config.faults.status).unwrap_or(StatusCode::NO_CONTENT),
    })
}

/// Appends one NDJSON line: arrival time, method, path, headers and the exact body (or, for
/// a body refused as too large, its size).
fn record(state: &State, received: &Received) {
    let Some(file) = &state.record else { return };
    let line = record_line(received, &state.config.path);
    if let Ok(mut file) = file.lock() {
        // A full disk loses the record line, not the request: the answer still goes out.
        let _ = file.write_all(line.as_bytes());
    }
}

/// The record format `replay --from` reads (README: "Record file").
pub fn record_line(received: &Received, webhook_path: &str) -> String {
    let ms = received
        .at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut line = json!({
        "time": crate::call::iso_millis(received.at),
        "time_ms": ms,
        "method": received.method,
        "path": received.path,
        "headers": received.headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
        // The status answered; null when the connection was dropped.
        "status": received.answered,
        // A POST to the webhook path: what `replay --from` re-sends (it skips the rest).
        "webhook": received.method == "POST" && received.path == webhook_path,
    });
    if let Verdict::TooLarge { bytes, limit } = received.verdict {
        line["rejected"] = json!("too_large");
        line["bytes"] = json!(bytes);
        line["max_body"] = json!(limit);
        return format!("{line}\n");
    }
    match std::str::from_utf8(&received.body) {
        Ok(text) => line["body"] = json!(text),
        Err(_) => {
            use base64::Engine;
            line["body_base64"] =
                json!(base64::engine::general_purpose::STANDARD.encode(&received.body));
        }
    }
    let mut text = line.to_string();
    text.push('\n');
    text
}

/// `25 MB`, `64 KB`, `812 B`.
pub fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1024 * 1024 && n % (1024 * 1024) == 0 => format!("{} MB", n / (1024 * 1024)),
        n if n >= 1024 * 1024 => format!("{:.1} MB", n as f64 / (1024.0 * 1024.0)),
        n if n >= 1024 => format!("{:.1} KB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}
