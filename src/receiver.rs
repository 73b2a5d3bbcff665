//! The receiving side: an HTTP server that verifies webhooks as a careful receiver would, can
//! misbehave on purpose (status, delay, fail-first, drop) and can record what it got.
//!
//! hyper, not axum: the receiver needs the raw body bytes under a size limit, the freedom to
//! close a connection without answering (`--drop`), and nothing in the hot path but the
//! HMAC; a router would add nothing here. The plain webhook POST skips even hyper: see
//! [`http1`], listen's own HTTP/1 path, which hands any other request to hyper.
//!
//! Nothing in this module prints: every request is reported as a [`Received`] on a channel,
//! to the command's [`Taps`] (its line, formatted by the command and written to the sink it
//! gives, before the answer), or both.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::answer::Answers;
use crate::catalog::Platform;
use crate::group_commit::GroupCommit;
use crate::pick::Namer;
use crate::relay::{Forward, Outcome};
use crate::secret::Secret;
use crate::signing::{self, Verdict};
use crate::text::{human_bytes, io_reason, path_reason};

mod http1;

pub const DEFAULT_MAX_BODY: u64 = 25 * 1024 * 1024;

/// The memory budget for bodies unless given: 256 MB, or four bodies of the largest size
/// accepted when that is more.
pub fn default_body_memory(max_body: u64) -> u64 {
    max_body.saturating_mul(4).max(256 * 1024 * 1024)
}

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
    pub platform: Arc<Platform>,
    /// The key to verify with; `None` gives every request the verdict `unsigned`.
    pub key: Option<Secret>,
    pub tolerance: Duration,
    pub faults: Faults,
    pub max_body: u64,
    /// How long a body may take to arrive once its headers have: a slower one is cut (408).
    pub body_timeout: Duration,
    /// The most body bytes held at once across all connections; past it, 503.
    pub body_memory: u64,
    pub record: Option<PathBuf>,
    /// `listen --forward-to`: every webhook goes on to this app, whose answer is the answer.
    pub forward: Option<Forward>,
    /// `listen --public-url`: the origin the platform signed (a tunnel's), for schemes that
    /// sign the URL; without it the URL is rebuilt from the Host header.
    pub public_origin: Option<String>,
    /// What listen does with each request besides answering it: its line, the inspector.
    pub taps: Taps,
    /// Bodies to answer with, for the events whose answer the platform reads (an inbound
    /// call's routing, a function's result): the catalog's examples unless told otherwise.
    pub answers: Answers,
}

impl ReceiverConfig {
    /// A well-behaved receiver on 127.0.0.1 with a free port.
    pub fn local(platform: impl Into<Arc<Platform>>, key: Option<Secret>) -> Self {
        let platform = platform.into();
        let tolerance = platform
            .signing
            .as_ref()
            .map(|s| s.tolerance)
            .unwrap_or(Duration::from_secs(300));
        let faults = Faults {
            status: platform.policy.success.preferred_status(),
            ..Faults::default()
        };
        let body_timeout = platform.policy.timeout;
        let answers = Answers::examples(&platform);
        ReceiverConfig {
            host: "127.0.0.1".into(),
            port: 0,
            path: "/webhook".into(),
            platform,
            key,
            tolerance,
            faults,
            max_body: DEFAULT_MAX_BODY,
            // The platform gives up on an answer after this long: a body slower than that
            // could not have been answered in time anyway.
            body_timeout,
            body_memory: default_body_memory(DEFAULT_MAX_BODY),
            record: None,
            public_origin: None,
            forward: None,
            taps: Taps::default(),
            answers,
        }
    }
}

/// Writes a request's line (or lines, ending in a newline) into the buffer.
pub type LineFormat = Arc<dyn Fn(&Received, &mut Vec<u8>) + Send + Sync>;

/// Where lines go (stdout): called with whole lines, one call per group of requests.
pub type LineOut = Arc<dyn Fn(&[u8]) -> Result<(), String> + Send + Sync>;

/// Sees every request once it is answered (the inspector's ring). It runs on the request's
/// task, so it must not block.
pub type Observer = Arc<dyn Fn(Received) + Send + Sync>;

/// The command's hooks on each request, made by the command (the receiver prints nothing).
#[derive(Clone, Default)]
pub struct Taps {
    /// A line per request, written before the request is answered (group commit: the lines
    /// of requests in flight together share one write).
    pub lines: Option<(LineFormat, LineOut)>,
    pub observe: Option<Observer>,
}

impl Taps {
    /// Lines made by `format`, written to `out`.
    pub fn lines(format: LineFormat, out: LineOut) -> Self {
        Taps {
            lines: Some((format, out)),
            observe: None,
        }
    }
}

impl std::fmt::Debug for Taps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Taps")
            .field("lines", &self.lines.is_some())
            .field("observe", &self.observe.is_some())
            .finish()
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
    /// The query string, without `?` (a scheme that signs the URL covers it).
    pub query: Option<String>,
    /// The headers as text, only for a reader of the `events` channel (tests, send's receiver
    /// list); otherwise empty, and `header_map` holds them as they came, uncopied.
    pub headers: Vec<(String, String)>,
    pub header_map: hyper::HeaderMap,
    pub body: Bytes,
    pub verdict: Verdict,
    pub event: Option<String>,
    pub call_id: Option<String>,
    /// The status answered; `None` when the connection was dropped.
    pub answered: Option<u16>,
    /// Why the answer was what it was, when not the plain verdict ("over the 25 MB limit").
    pub note: Option<String>,
    /// The earlier request (its `n`) that brought the same body bytes: a retry or a duplicate.
    pub duplicate_of: Option<u64>,
    /// With `--forward-to`: what the app answered (then `answered` is the app's status).
    pub forwarded: Option<Forwarded>,
    /// For a request the platform waits on: a function's name and args, an inbound call's
    /// numbers.
    pub summary: Option<String>,
}

/// The app's side of a relayed request, for the line, the record and the page.
#[derive(Clone, Debug)]
pub struct Forwarded {
    /// The app's status; `None` when it gave no answer (then 502 or 504 was answered).
    pub status: Option<u16>,
    pub took: Duration,
    /// Why there was no answer: `app down (connection refused)`.
    pub failure: Option<String>,
    /// The app's answer as relayed (hop-by-hop headers dropped).
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Forwarded {
    fn of(relayed: &crate::relay::Relayed) -> Self {
        let (status, failure, headers, body) = match &relayed.outcome {
            Outcome::Answered(answer) => (
                Some(answer.status),
                None,
                header_pairs(&answer.headers),
                answer.body.clone(),
            ),
            Outcome::Failed(failure) => (None, Some(failure.describe()), Vec::new(), Bytes::new()),
        };
        Forwarded {
            status,
            took: relayed.took,
            failure,
            headers,
            body,
        }
    }
}

/// Header names and values as text, in order (a value that is not UTF-8 is shown lossily).
fn header_pairs(headers: &hyper::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

impl Received {
    /// A request as it arrived, before it is judged: no verdict, event or answer yet.
    fn arrived(
        n: u64,
        at: SystemTime,
        method: &Method,
        uri: &hyper::Uri,
        headers: Vec<(String, String)>,
        header_map: hyper::HeaderMap,
        body: Bytes,
    ) -> Received {
        Received {
            n,
            at,
            method: method.to_string(),
            path: uri.path().to_string(),
            query: uri.query().map(str::to_string),
            headers,
            header_map,
            body,
            verdict: Verdict::Unsigned,
            event: None,
            call_id: None,
            answered: None,
            note: None,
            duplicate_of: None,
            forwarded: None,
            summary: None,
        }
    }

    /// The body's size as it arrived; a body refused as too large is counted, not kept.
    pub fn size(&self) -> u64 {
        match self.verdict {
            Verdict::TooLarge { bytes, .. }
            | Verdict::TimedOut { bytes }
            | Verdict::Overloaded { bytes } => bytes,
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
    /// Connections closed to free a file descriptor for a new client.
    pub shed: AtomicU64,
    /// Requests whose record line could not be written (answered 503).
    pub not_recorded: AtomicU64,
    /// Why the first record write failed; set once, with [`Stats::record_failed`] notified.
    pub record_failure: std::sync::OnceLock<String>,
    pub record_failed: tokio::sync::Notify,
    verdicts: [AtomicU64; Verdict::WORDS.len()],
}

impl Stats {
    fn not_recorded(&self, reason: &str) {
        self.not_recorded.fetch_add(1, Ordering::Relaxed);
        if self.record_failure.set(reason.to_string()).is_ok() {
            self.record_failed.notify_one();
        }
    }

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
    record: Option<Arc<GroupCommit>>,
    lines: Option<(LineFormat, Arc<GroupCommit>)>,
    events: Option<mpsc::UnboundedSender<Received>>,
    /// Names a JSON body's event and call id in the pass that validates it (no tree).
    namer: Option<Namer>,
    verifier: Option<Verifier>,
    memory: Budget,
    conns: Conns,
    seen: Mutex<Seen>,
    body_key: BodyKey,
}

impl State {
    fn new(
        config: ReceiverConfig,
        record: Option<Arc<GroupCommit>>,
        lines: Option<(LineFormat, Arc<GroupCommit>)>,
        events: Option<mpsc::UnboundedSender<Received>>,
    ) -> State {
        let namer = (config.platform.format == crate::catalog::BodyFormat::Json)
            .then(|| Namer::of(&config.platform));
        let verifier = Verifier::new(&config);
        State {
            fail_budget: AtomicU64::new(config.faults.fail_first),
            memory: Budget {
                used: AtomicU64::new(0),
                limit: config.body_memory,
            },
            conns: Conns::new(),
            seen: Mutex::default(),
            body_key: BodyKey::default(),
            config,
            stats: Arc::default(),
            record,
            lines,
            events,
            namer,
            verifier,
        }
    }
}

/// listen's per-request work on a body already read, without the HTTP exchange: name,
/// verify, decide the answer, and with an `observe` tap in the config, look for an earlier
/// request with the same body (what `cargo bench --bench judge` measures).
pub struct Judge {
    state: State,
}

impl Judge {
    /// For `config`'s platform, key and answers (its record, lines and faults aside).
    pub fn new(config: ReceiverConfig) -> Judge {
        Judge {
            state: State::new(config, None, None, None),
        }
    }

    /// The request as listen reports it, with the status it would answer.
    pub fn judge(
        &self,
        method: Method,
        uri: &hyper::Uri,
        headers: hyper::HeaderMap,
        body: Bytes,
    ) -> Received {
        let mut received = Received::arrived(
            1,
            SystemTime::now(),
            &method,
            uri,
            Vec::new(),
            headers,
            body.clone(),
        );
        // As listen does when someone is told of the request (a line, a record, a tap).
        received.duplicate_of = duplicate_of(&self.state, &method, &received);
        let decision = judge(&self.state, &method, &mut received, &body);
        received.answered = Some(decision.status.as_u16());
        received
    }

    /// A whole request as one read brings it, head and body, parsed as listen's own HTTP/1
    /// path parses it and then judged; `None` for a request that path leaves to hyper.
    pub fn judge_raw(&self, read: Bytes) -> Option<Received> {
        let plain = http1::plain_request(&read, self.state.config.max_body)?;
        let body = read.get(plain.head_len..plain.head_len + plain.body_len)?;
        let body = read.slice_ref(body);
        let head = plain.head;
        Some(self.judge(head.method, &head.uri, head.headers, body))
    }
}

/// How many recent bodies are remembered to spot a retry.
const SEEN_BODIES: usize = 4096;

/// The last [`SEEN_BODIES`] bodies by their [`BodyKey`], each with the first request that
/// brought it.
#[derive(Default)]
struct Seen {
    first: HashMap<u64, u64>,
    order: VecDeque<u64>,
}

/// Hashes a body for [`Seen`]: foldhash, seeded when listen starts with 64 bits of the OS's
/// randomness (drawn through std's `RandomState`). It was SipHash-1-3, std's keyed hash,
/// which took 0.5 µs for a 2 KB body against foldhash's 0.1, a tenth of the default mode's
/// margin. foldhash is no keyed PRF: a sender who studied it might make a new body look like
/// a retry, but the mark is only an annotation (the line, `--json`, the record's
/// `duplicate_of`, the page): the verdict and the answer never depend on it, and every
/// request is recorded whole either way.
struct BodyKey(foldhash::quality::SeedableRandomState);

impl Default for BodyKey {
    fn default() -> Self {
        use std::hash::BuildHasher;
        let seed = std::hash::RandomState::new().hash_one(0u8);
        let shared = foldhash::SharedSeed::global_random();
        BodyKey(foldhash::quality::SeedableRandomState::with_seed(
            seed, shared,
        ))
    }
}

impl BodyKey {
    fn of(&self, body: &[u8]) -> u64 {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = self.0.build_hasher();
        hasher.write(body);
        hasher.finish()
    }
}

impl Seen {
    /// The first request with these bytes, or `None`, remembering them as request `n`.
    fn first_of(&mut self, hash: u64, n: u64) -> Option<u64> {
        if let Some(first) = self.first.get(&hash) {
            return Some(*first);
        }
        if self.order.len() >= SEEN_BODIES
            && let Some(oldest) = self.order.pop_front()
        {
            self.first.remove(&oldest);
        }
        self.first.insert(hash, n);
        self.order.push_back(hash);
        None
    }
}

/// The bytes of request bodies held at once, across every connection. A body that would take
/// the total over the limit is refused (503, retry later) instead of growing the process.
struct Budget {
    used: AtomicU64,
    limit: u64,
}

impl Budget {
    fn take(&self, bytes: u64) -> Option<Held<'_>> {
        // `then`, not `then_some`: a Held built eagerly would give back what it never took.
        self.reserve(bytes).then(|| Held {
            budget: self,
            bytes,
        })
    }

    fn reserve(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }
}

/// A share of the [`Budget`], given back when dropped.
struct Held<'a> {
    budget: &'a Budget,
    bytes: u64,
}

impl Held<'_> {
    fn grow(&mut self, bytes: u64) -> bool {
        let ok = self.budget.reserve(bytes);
        if ok {
            self.bytes += bytes;
        }
        ok
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// What a connection is doing, for choosing one to close when file descriptors run out:
/// waiting for a request (idle) or for a body (slow) can go; answering cannot.
const IDLE: u8 = 0;
const READING_BODY: u8 = 1;
const ANSWERING: u8 = 2;

struct Conn {
    phase: AtomicU8,
    /// When it entered that phase, in ms since [`Conns::epoch`].
    since_ms: AtomicU64,
    shed: CancellationToken,
    closed: CancellationToken,
}

/// The open connections, so the oldest idle or slow one can be closed to let a new one in.
struct Conns {
    epoch: Instant,
    next: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Conn>>>,
}

impl Conns {
    fn new() -> Self {
        Conns {
            epoch: Instant::now(),
            next: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn set(&self, conn: &Conn, phase: u8) {
        self.set_at(conn, phase, Instant::now());
    }

    /// Sets the phase as entered at `now` (a clock the caller read anyway). Release: a reader
    /// that sees the phase sees its time too ([`idle_too_long`]).
    fn set_at(&self, conn: &Conn, phase: u8, now: Instant) {
        let ms = now.saturating_duration_since(self.epoch).as_millis() as u64;
        conn.since_ms.store(ms, Ordering::Relaxed);
        conn.phase.store(phase, Ordering::Release);
    }

    /// Answering: never shed, so when it began does not matter and the clock is not read.
    fn answering(&self, conn: &Conn) {
        conn.phase.store(ANSWERING, Ordering::Release);
    }

    fn add(&self) -> (u64, Arc<Conn>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            phase: AtomicU8::new(IDLE),
            since_ms: AtomicU64::new(self.now_ms()),
            shed: CancellationToken::new(),
            closed: CancellationToken::new(),
        });
        if let Ok(mut open) = self.open.lock() {
            open.insert(id, conn.clone());
        }
        (id, conn)
    }

    fn remove(&self, id: u64) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(&id);
        }
    }

    /// Asks the connection idle or waiting for a body the longest to close, and returns it.
    fn shed_one(&self) -> Option<Arc<Conn>> {
        let open = self.open.lock().ok()?;
        let oldest = open
            .values()
            .filter(|c| c.phase.load(Ordering::Relaxed) != ANSWERING && !c.shed.is_cancelled())
            .min_by_key(|c| c.since_ms.load(Ordering::Relaxed))?
            .clone();
        oldest.shed.cancel();
        Some(oldest)
    }
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
            Some(path) => Some(GroupCommit::start(record_sink(open_record(path)?))),
            None => None,
        };
        let lines = config.taps.lines.clone().map(|(format, out)| {
            let sink: crate::group_commit::Sink = Box::new(move |bytes: &[u8]| out(bytes));
            (format, GroupCommit::start(sink))
        });
        let shown_host = if host.contains(':') {
            format!("[{}]", addr.ip())
        } else {
            addr.ip().to_string()
        };
        let url = format!("http://{shown_host}:{}{}", addr.port(), config.path);
        let state = Arc::new(State::new(config, record, lines, events));
        let stats = state.stats.clone();
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

/// How long to wait, with no connection to close, before trying to accept again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

async fn accept_loop(listener: TcpListener, state: Arc<State>, cancel: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => serve(stream, state.clone()),
            // The client gave up while waiting in the backlog: nothing is short.
            Err(e) if is_transient(&e) => {}
            // Out of file descriptors (EMFILE, ENFILE) or buffers. The error repeats at once
            // until something is closed, so: close an idle or slow connection, or wait.
            Err(_) => tokio::select! {
                _ = cancel.cancelled() => return,
                () = make_room(&state) => {}
            },
        }
    }
}

fn is_transient(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, Interrupted};
    matches!(
        err.kind(),
        ConnectionAborted | ConnectionReset | Interrupted
    )
}

/// Closes the connection idle or slow the longest, so the client waiting in the backlog gets
/// its descriptor; with none to close, waits a little instead of spinning on the error.
async fn make_room(state: &State) {
    match state.conns.shed_one() {
        Some(conn) => {
            state.stats.shed.fetch_add(1, Ordering::Relaxed);
            let _ = tokio::time::timeout(Duration::from_secs(1), conn.closed.cancelled()).await;
        }
        None => tokio::time::sleep(ACCEPT_BACKOFF).await,
    }
}

/// How long a connection may wait for a request's head, idle between requests or with a
/// head arriving slowly, before it is closed: hyper's own default header-read timeout.
const HEAD_TIMEOUT_MS: u64 = 30_000;

/// Returns once the connection has waited [`HEAD_TIMEOUT_MS`] for a request's head. One
/// timer per connection that wakes only when that much time may have passed: hyper's
/// header-read timeout arms and drops a timer for every request (a boxed sleep, and an
/// insert and a removal in the timer wheel), which showed in listen's profile.
async fn idle_too_long(conns: &Conns, conn: &Conn) {
    loop {
        // The phase first (Acquire): the time read after it is at least the phase's.
        let idle = conn.phase.load(Ordering::Acquire) == IDLE;
        let waited = conns
            .now_ms()
            .saturating_sub(conn.since_ms.load(Ordering::Relaxed));
        if idle && waited >= HEAD_TIMEOUT_MS {
            return;
        }
        // Busy with a request: its head came in time; look again a whole timeout later.
        let left = if idle {
            HEAD_TIMEOUT_MS - waited
        } else {
            HEAD_TIMEOUT_MS
        };
        tokio::time::sleep(Duration::from_millis(left)).await;
    }
}

/// Serves one connection until it ends, is shed, or waits too long for a request.
fn serve(stream: TcpStream, state: Arc<State>) {
    let _ = stream.set_nodelay(true);
    let (id, conn) = state.conns.add();
    tokio::spawn(async move {
        // A relay answers with the app's own headers, which hyper's encoder reconciles with
        // the body it sends (length, framing): relays stay on hyper. Every other connection
        // starts on listen's own path, which hands anything unusual to hyper.
        let serving = async {
            if state.config.forward.is_some() {
                with_hyper(http1::Rewound::new(Bytes::new(), stream), &state, &conn).await;
            } else {
                http1::serve(stream, &state, &conn).await;
            }
        };
        // Leaving the select drops the connection, which closes its socket.
        tokio::select! {
            () = serving => {}
            () = conn.shed.cancelled() => {}
            () = idle_too_long(&state.conns, &conn) => {}
        }
        state.conns.remove(id);
        conn.closed.cancel();
    });
}

/// Serves the rest of a connection with hyper's HTTP/1 server, starting with the bytes the
/// connection's own path already read.
async fn with_hyper(io: http1::Rewound, state: &Arc<State>, conn: &Arc<Conn>) {
    let (for_service, conn_for_service) = (state.clone(), conn.clone());
    let service = hyper::service::service_fn(move |req| {
        handle(req, for_service.clone(), conn_for_service.clone())
    });
    // No hyper timer: [`idle_too_long`] stands for its header-read timeout.
    let _ = hyper::server::conn::http1::Builder::new()
        .header_read_timeout(None)
        .serve_connection(TokioIo::new(io), service)
        .await;
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

/// A request's arrival: its number, when it came, and by when its body must be in.
struct Arrival {
    n: u64,
    at: SystemTime,
    deadline: tokio::time::Instant,
}

impl Arrival {
    /// Counts a request whose head is in, and marks its connection as reading the body.
    fn now(state: &State, conn: &Conn) -> Arrival {
        // One reading of the clock for the phase and the body's deadline.
        let now = Instant::now();
        state.conns.set_at(conn, READING_BODY, now);
        Arrival {
            n: state.stats.requests.fetch_add(1, Ordering::Relaxed) + 1,
            at: SystemTime::now(),
            deadline: tokio::time::Instant::from_std(now) + state.config.body_timeout,
        }
    }
}

/// A request's head: what hyper or listen's own path parsed.
struct Head {
    method: Method,
    uri: hyper::Uri,
    headers: hyper::HeaderMap,
}

/// hyper's service: reads the body, then answers as [`respond`] decides.
async fn handle(
    req: Request<Incoming>,
    state: Arc<State>,
    conn: Arc<Conn>,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let arrival = Arrival::now(&state, &conn);
    let (parts, incoming) = req.into_parts();
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let body = read_body(incoming, declared, &state, arrival.deadline).await?;
    let head = Head {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
    };
    let response = respond(&state, &conn, arrival, head, body).await?;
    Ok(response.map(Full::new))
}

/// Judges a request whose body is read (or refused), tells whoever listens, and returns the
/// answer, or [`Dropped`] to close the connection without one.
async fn respond(
    state: &State,
    conn: &Conn,
    arrival: Arrival,
    head: Head,
    body: Body<'_>,
) -> Result<Response<Bytes>, Dropped> {
    let stats = &state.stats;
    let config = &state.config;
    let Arrival { n, at, deadline } = arrival;
    state.conns.answering(conn);
    // Copied into text only for a reader of the channel; the rest read the map as it came.
    let headers = match state.events {
        Some(_) => header_pairs(&head.headers),
        None => Vec::new(),
    };
    let method = head.method;
    let mut received = Received::arrived(
        n,
        at,
        &method,
        &head.uri,
        headers,
        head.headers,
        Bytes::new(),
    );
    // Kept to the end of the answer: the body is held until then.
    let mut _held = None;
    let mut unread = None;
    let mut relayed = None;
    let decision = match body {
        Body::Read(body, held) => {
            _held = Some(held);
            received.body = body.clone();
            received.duplicate_of = duplicate_of(state, &method, &received);
            let decision = judge(state, &method, &mut received, &body);
            match &config.forward {
                // Whatever the verdict: it is for the developer; the app's answer is the answer.
                // Forwarded as they came, bytes and all.
                Some(forward) if is_webhook(state, &method, &received) => {
                    let r = forward
                        .forward(method.clone(), &received.header_map, body)
                        .await;
                    received.forwarded = Some(Forwarded::of(&r));
                    let status =
                        StatusCode::from_u16(r.status()).unwrap_or(StatusCode::BAD_GATEWAY);
                    relayed = Some(r);
                    Decision::answer(status)
                }
                _ => decision,
            }
        }
        Body::TooLarge { bytes, rest } => {
            let limit = config.max_body;
            received.verdict = Verdict::TooLarge { bytes, limit };
            received.note = Some(format!("body over the {} limit", human_bytes(limit)));
            unread = rest;
            Decision::refuse(StatusCode::PAYLOAD_TOO_LARGE)
        }
        Body::TimedOut { bytes } => {
            received.verdict = Verdict::TimedOut { bytes };
            received.note = Some(format!(
                "the body was not all there after {}",
                crate::duration::short(config.body_timeout)
            ));
            Decision::refuse(StatusCode::REQUEST_TIMEOUT)
        }
        Body::Overloaded { bytes, rest } => {
            received.verdict = Verdict::Overloaded { bytes };
            received.note = Some(format!(
                "bodies being read already hold the {} memory budget",
                human_bytes(config.body_memory)
            ));
            unread = rest;
            Decision {
                retry_after: true,
                ..Decision::refuse(StatusCode::SERVICE_UNAVAILABLE)
            }
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
    let mut decision = decision;
    // Written before the answer: a request acknowledged but not recorded would be lost, so
    // one that cannot be recorded is answered 503 and the platform sends it again.
    if let Err(reason) = record(state, &received).await {
        stats.not_recorded(&reason);
        let note = format!("not recorded: {reason}");
        received.note = Some(match received.note.take() {
            Some(before) => format!("{before}; {note}"),
            None => note,
        });
        if !drop_it {
            decision.status = StatusCode::SERVICE_UNAVAILABLE;
            decision.retry_after = true;
            received.answered = Some(503);
        }
    }
    // The line, too, is out before the answer (a closed stdout is not a reason to refuse).
    if let Some((format, lines)) = &state.lines {
        let _ = lines.write(|buf| format(&received, buf)).await;
    }
    match (&state.events, &config.taps.observe) {
        (Some(events), Some(observe)) => {
            let _ = events.send(received.clone());
            observe(received);
        }
        (Some(events), None) => {
            let _ = events.send(received);
        }
        (None, Some(observe)) => observe(received),
        (None, None) => {}
    }
    if !config.faults.delay.is_zero() {
        tokio::time::sleep(config.faults.delay).await;
    }
    if drop_it {
        return Err(Dropped);
    }
    match unread {
        // Answered before its body was read: the rest is read and thrown away, up to the
        // deadline, so a sender still writing reads this answer rather than a reset.
        Some(rest) => {
            tokio::spawn(discard(rest, deadline, 0));
        }
        None => state.conns.set(conn, IDLE),
    }
    match relayed.map(|r| r.outcome) {
        Some(Outcome::Answered(answer)) if decision.status.as_u16() == answer.status => {
            Ok(relayed_response(answer))
        }
        _ => Ok(response(&decision)),
    }
}

/// A POST to the webhook path: what `--forward-to` passes on (other routes get listen's own
/// 404 or 405, as without it).
fn is_webhook(state: &State, method: &Method, received: &Received) -> bool {
    method == Method::POST && received.path == state.config.path
}

/// The app's answer, as it gave it, to the platform.
fn relayed_response(answer: crate::relay::Answer) -> Response<Bytes> {
    let mut response = Response::new(answer.body);
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    *response.headers_mut() = answer.headers;
    response
}

/// For a webhook delivery, the earlier request with the same body, when someone will be told
/// (a line, a record): hashing costs a second pass over the body.
fn duplicate_of(state: &State, method: &Method, received: &Received) -> Option<u64> {
    let told = state.events.is_some()
        || state.record.is_some()
        || state.lines.is_some()
        || state.config.taps.observe.is_some();
    if !told || method != Method::POST || received.path != state.config.path {
        return None;
    }
    if received.body.is_empty() {
        return None;
    }
    let hash = state.body_key.of(&received.body);
    state.seen.lock().ok()?.first_of(hash, received.n)
}

fn response(decision: &Decision) -> Response<Bytes> {
    let body = decision.body.clone().unwrap_or_default();
    let json = !body.is_empty() && serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok();
    let mut response = Response::new(body);
    *response.status_mut() = decision.status;
    let headers = response.headers_mut();
    if decision.body.is_some() {
        let kind = if json {
            "application/json"
        } else {
            "text/plain; charset=utf-8"
        };
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    }
    if decision.status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(ALLOW, HeaderValue::from_static("POST"));
    }
    // Not on a --status 503: that fault answers exactly what was asked for.
    if decision.retry_after {
        headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    if decision.close {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Past this much, a body being thrown away is no longer read: the connection is closed.
const DRAIN_LIMIT: u64 = 256 * 1024 * 1024;

/// A request body: read whole, or refused, with what arrived of it counted, not kept.
enum Body<'a> {
    Read(Bytes, Held<'a>),
    /// `rest`: refused on its declared length, before reading it.
    TooLarge {
        bytes: u64,
        rest: Option<Incoming>,
    },
    TimedOut {
        bytes: u64,
    },
    Overloaded {
        bytes: u64,
        rest: Option<Incoming>,
    },
}

/// Reads the body by the `deadline`, within `--max-body` and the memory budget. A declared
/// length over the limit, or over what the budget has left, is refused before reading a
/// byte; a chunked body is counted against both as it comes.
async fn read_body<'a>(
    mut body: Incoming,
    declared: Option<u64>,
    state: &'a State,
    deadline: tokio::time::Instant,
) -> Result<Body<'a>, Dropped> {
    let max = state.config.max_body;
    if let Some(bytes) = declared.filter(|len| *len > max) {
        return Ok(Body::TooLarge {
            bytes,
            rest: Some(body),
        });
    }
    // A declared length is held whole up front: allocated once, and counted as allocated.
    let Some(mut held) = state.memory.take(declared.unwrap_or(0)) else {
        return Ok(Body::Overloaded {
            bytes: 0,
            rest: Some(body),
        });
    };
    let mut buf = Vec::new();
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => {
                let bytes = buf.len() as u64;
                return Ok(Body::TimedOut { bytes });
            }
            Ok(None) => break,
            Ok(Some(frame)) => frame.map_err(|_| Dropped)?,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        // The usual webhook: the whole declared body in one frame, kept as hyper read it
        // rather than copied (hyper holds a declared body to its length: nothing follows).
        if buf.is_empty() && declared == Some(data.len() as u64) {
            return Ok(Body::Read(data, held));
        }
        if buf.capacity() == 0 {
            buf.reserve_exact(declared.unwrap_or(0) as usize);
        }
        let total = (buf.len() + data.len()) as u64;
        // Only a chunked body gets here: hyper holds a declared one to its length.
        if total > max {
            drop((buf, held));
            let bytes = discard(body, deadline, total).await;
            return Ok(Body::TooLarge { bytes, rest: None });
        }
        if declared.is_none() && !held.grow(data.len() as u64) {
            return Ok(Body::Overloaded {
                bytes: total,
                rest: Some(body),
            });
        }
        buf.extend_from_slice(&data);
    }
    Ok(Body::Read(Bytes::from(buf), held))
}

/// Reads and throws away the rest of a body, until it ends, the deadline, or
/// [`DRAIN_LIMIT`]; returns `seen` plus the bytes read.
async fn discard(mut body: Incoming, deadline: tokio::time::Instant, mut seen: u64) -> u64 {
    while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, body.frame()).await {
        if let Some(data) = frame.data_ref() {
            seen += data.len() as u64;
            if seen > DRAIN_LIMIT {
                break;
            }
        }
    }
    seen
}

/// The answer to one request, whether it is one of the --fail-first failures, whether the
/// connection closes after it (a body refused unread cannot be skipped to a next request),
/// and whether it says when to come back (a 503 of listen's own, not a fault's).
struct Decision {
    status: StatusCode,
    /// The answer's body, for a request the platform reads the answer of.
    body: Option<Bytes>,
    failed_on_purpose: bool,
    close: bool,
    retry_after: bool,
}

impl Decision {
    fn answer(status: StatusCode) -> Self {
        Decision {
            status,
            body: None,
            failed_on_purpose: false,
            close: false,
            retry_after: false,
        }
    }

    fn refuse(status: StatusCode) -> Self {
        Decision {
            close: true,
            ..Decision::answer(status)
        }
    }
}

/// Verifies, then decides the answer: 404/405 for the wrong route, the fault's 500 for the
/// first N, 401/400 for a signature that does not verify, 400 for a body that is not JSON,
/// else the configured status.
fn judge(state: &State, method: &Method, received: &mut Received, body: &Bytes) -> Decision {
    let config = &state.config;
    let platform = &config.platform;
    let is_json = name(state, received, body);
    received.verdict = match &state.verifier {
        Some(verifier) => verifier.verify(received, body),
        None => Verdict::Unsigned,
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
            failed_on_purpose: true,
            ..Decision::answer(StatusCode::INTERNAL_SERVER_ERROR)
        };
    }
    let status = match &received.verdict {
        Verdict::Malformed(_) => StatusCode::BAD_REQUEST,
        v if !v.accepted() => StatusCode::UNAUTHORIZED,
        // A careful receiver says 400 to a body it cannot read, so the platform drops it.
        _ if !is_json => {
            received.note = Some(match platform.format {
                crate::catalog::BodyFormat::Json => "the body is not JSON".into(),
                _ => "the body is not a form".into(),
            });
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::from_u16(config.faults.status).unwrap_or(StatusCode::NO_CONTENT),
    };
    match config.answers.for_event(received.event.as_deref()) {
        // An answer the platform reads goes with a 2xx; a 204 can carry none, so it is a 200.
        Some(answer) if status.is_success() => Decision {
            body: Some(answer.clone()),
            ..Decision::answer(if status == StatusCode::NO_CONTENT {
                StatusCode::OK
            } else {
                status
            })
        },
        _ => Decision::answer(status),
    }
}

/// Names the event and call id (and, for a request the platform waits on, what the line sums
/// up of it); false when the body is not in the platform's format. A JSON body is named by
/// pointer in the one pass that validates it: no tree, unless a summary needs one.
fn name(state: &State, received: &mut Received, body: &Bytes) -> bool {
    let platform = &state.config.platform;
    let tree = match &state.namer {
        Some(namer) => {
            let Some(named) = namer.name(body) else {
                return false;
            };
            received.event = named.event;
            received.call_id = named.call_id;
            match &received.event {
                Some(event) if namer.sums_up(event) => platform.decode(body).ok(),
                _ => return true,
            }
        }
        None => {
            let Ok(tree) = platform.decode(body) else {
                return false;
            };
            received.event = platform.event_of(&tree);
            received.call_id = platform.call_id_of(&tree);
            Some(tree)
        }
    };
    if let (Some(tree), Some(event)) = (tree, received.event.as_deref()) {
        received.summary = crate::answer::summary(platform, event, &tree);
    }
    true
}

/// The signature rules with listen's tolerance, and what of a request they read, worked out
/// once rather than per request.
struct Verifier {
    rules: signing::Rules,
    key: Secret,
    /// The headers the scheme reads, lowercase.
    headers: Vec<String>,
    /// The scheme signs the URL: the public origin the platform posted to (`--public-url`),
    /// or else rebuilt from the Host header, as a receiver behind no proxy sees it.
    covers_url: bool,
    public_origin: Option<String>,
}

impl Verifier {
    fn new(config: &ReceiverConfig) -> Option<Verifier> {
        let (signing, key) = (config.platform.signing.as_ref()?, config.key.as_ref()?);
        let mut rules = signing.rules.clone();
        rules.tolerance.past = config.tolerance;
        if rules.tolerance.future.is_some() {
            rules.tolerance.future = Some(config.tolerance);
        }
        let properties = rules.properties();
        Some(Verifier {
            headers: properties
                .headers
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            covers_url: properties.covers_url,
            public_origin: config.public_origin.clone(),
            rules,
            key: key.clone(),
        })
    }

    /// The request's signature under the platform's scheme.
    fn verify(&self, received: &Received, body: &Bytes) -> Verdict {
        let map = &received.header_map;
        fn text(v: &HeaderValue) -> std::borrow::Cow<'_, str> {
            // Visible ASCII, as signatures are, is checked faster than UTF-8 is decoded.
            match v.to_str() {
                Ok(ascii) => std::borrow::Cow::Borrowed(ascii),
                Err(_) => String::from_utf8_lossy(v.as_bytes()),
            }
        }
        let values: Vec<(&str, std::borrow::Cow<'_, str>)> = self
            .headers
            .iter()
            .flat_map(|name| {
                map.get_all(name.as_str())
                    .iter()
                    .map(|v| (name.as_str(), text(v)))
            })
            .collect();
        let headers: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_ref())).collect();
        let origin = match (&self.public_origin, map.get(hyper::header::HOST)) {
            _ if !self.covers_url => None,
            (Some(origin), _) => Some(origin.clone()),
            (None, host) => host.map(|host| format!("http://{}", text(host))),
        };
        let url = origin.map(|origin| match &received.query {
            Some(query) => format!("{origin}{}?{query}", received.path),
            None => format!("{origin}{}", received.path),
        });
        let signed = signing::Signed {
            url: url.as_deref(),
            body,
            headers: &headers,
        };
        // Judged at the request's arrival, already read from the clock.
        let now_ms = signing::unix_ms(received.at);
        self.rules.verify(&self.key, &signed, now_ms)
    }
}

/// Appends one NDJSON line: arrival time, method, path, headers and the exact body (or, for
/// a body refused unread, its size), with group commit; the reason when it could not be
/// written (a failed write is rolled back to the last whole line, see [`record_sink`]).
async fn record(state: &State, received: &Received) -> Result<(), String> {
    let Some(file) = &state.record else {
        return Ok(());
    };
    file.write(|buf| write_record_line(received, &state.config.path, buf))
        .await
}

/// Writes batches of record lines to the file. A write that fails is rolled back to the last
/// whole line, so the file stays readable by `replay --from`.
fn record_sink(mut file: std::fs::File) -> crate::group_commit::Sink {
    Box::new(move |bytes: &[u8]| {
        let before = file.metadata().map(|m| m.len());
        file.write_all(bytes).map_err(|e| {
            // A disk that filled midway leaves a torn line: cut it off.
            if let Ok(len) = before {
                let _ = file.set_len(len);
            }
            io_reason(&e)
        })
    })
}

/// The record format `replay --from` reads (README: "Record file").
pub fn record_line(received: &Received, webhook_path: &str) -> String {
    let mut buf = Vec::new();
    write_record_line(received, webhook_path, &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

/// One record line, serialized straight from the request (no tree), keys in this order.
#[derive(serde::Serialize)]
struct RecordLine<'a> {
    time: String,
    time_ms: u64,
    method: &'a str,
    path: &'a str,
    headers: RecordHeaders<'a>,
    /// The status answered; null when the connection was dropped.
    status: Option<u16>,
    /// A POST to the webhook path: what `replay --from` re-sends (it skips the rest).
    webhook: bool,
    /// The verdict, so a page reading the record after a restart can show it; `status` is
    /// then the app's (or the 502/504 listen answered for it), not listen's judgement.
    verdict: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    forwarded: Option<serde_json::Value>,
    /// The request number is this session's, as listen's lines show it.
    #[serde(skip_serializing_if = "Option::is_none")]
    duplicate_of: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_body: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
    /// A body refused unread or cut off is not kept: its size stands for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    rejected: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_base64: Option<String>,
}

/// `[[name, value], ...]` as they came, credentials masked.
struct RecordHeaders<'a>(&'a hyper::HeaderMap);

impl serde::Serialize for RecordHeaders<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (name, value) in self.0 {
            let value = String::from_utf8_lossy(value.as_bytes());
            seq.serialize_element(&(name.as_str(), masked(name.as_str(), &value)))?;
        }
        seq.end()
    }
}

fn write_record_line(received: &Received, webhook_path: &str, buf: &mut Vec<u8>) {
    let ms = received
        .at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let (max_body, bytes) = match received.verdict {
        Verdict::TooLarge { bytes, limit } => (Some(limit), Some(bytes)),
        Verdict::TimedOut { bytes } | Verdict::Overloaded { bytes } => (None, Some(bytes)),
        _ => (None, None),
    };
    let (body, body_base64) = match (bytes, std::str::from_utf8(&received.body)) {
        (Some(_), _) => (None, None),
        (None, Ok(text)) => (Some(text), None),
        (None, Err(_)) => {
            use base64::Engine;
            let encoded = base64::engine::general_purpose::STANDARD.encode(&received.body);
            (None, Some(encoded))
        }
    };
    let line = RecordLine {
        time: crate::text::iso_millis(received.at),
        time_ms: ms,
        method: &received.method,
        path: &received.path,
        headers: RecordHeaders(&received.header_map),
        status: received.answered,
        webhook: received.method == "POST" && received.path == webhook_path,
        verdict: received.verdict.word(),
        forwarded: received.forwarded.as_ref().map(forwarded_json),
        duplicate_of: received.duplicate_of,
        max_body,
        bytes,
        rejected: bytes.map(|_| received.verdict.word()),
        body,
        body_base64,
    };
    let start = buf.len();
    // Serializing to a Vec fails only for a map with non-string keys: there is none.
    match serde_json::to_writer(&mut *buf, &line) {
        Ok(()) => buf.push(b'\n'),
        Err(_) => buf.truncate(start),
    }
}

/// `{"status": 500, "ms": 12, "error": null}`: the app's answer to a relayed request.
pub fn forwarded_json(forwarded: &Forwarded) -> serde_json::Value {
    json!({
        "status": forwarded.status,
        "ms": forwarded.took.as_millis() as u64,
        "error": forwarded.failure,
    })
}

/// Request headers that carry credentials, masked in the record. The signature header is not
/// one: it proves one body at one time, and re-verifying a record needs it.
pub const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];

/// A credential header's value as recorded: `Basic ***` (the scheme stays, it says what kind
/// of credential came), or `***`.
fn masked<'a>(name: &str, value: &'a str) -> std::borrow::Cow<'a, str> {
    if !CREDENTIAL_HEADERS.contains(&name) {
        return value.into();
    }
    match value.split_once(' ') {
        Some((scheme, _)) if name.ends_with("authorization") => format!("{scheme} ***").into(),
        _ => "***".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_budget_gives_back_only_what_it_took() {
        let budget = Budget {
            used: AtomicU64::new(0),
            limit: 100,
        };
        let mut first = budget.take(60).expect("60 of 100 fits");
        assert!(budget.take(50).is_none(), "110 of 100 does not");
        assert!(!first.grow(41));
        assert!(first.grow(40));
        drop(first);
        assert_eq!(budget.used.load(Ordering::Relaxed), 0);
        assert!(budget.take(100).is_some());
    }

    #[test]
    fn seen_bodies_point_at_the_first_and_forget_the_oldest_past_the_bound() {
        let mut seen = Seen::default();
        let key = BodyKey::default();
        let hash = |i: usize| key.of(&i.to_le_bytes());
        assert_eq!(seen.first_of(hash(0), 1), None);
        assert_eq!(seen.first_of(hash(0), 2), Some(1));
        assert_eq!(
            seen.first_of(hash(0), 3),
            Some(1),
            "the first, not the last"
        );
        for i in 1..=SEEN_BODIES {
            seen.first_of(hash(i), i as u64 + 10);
        }
        assert_eq!(seen.first.len(), SEEN_BODIES);
        assert_eq!(seen.first_of(hash(0), 99), None, "forgotten");
    }
}
