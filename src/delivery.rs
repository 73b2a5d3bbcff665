//! Delivering one webhook the way a platform does: sign each attempt afresh, POST with a
//! deadline, judge the status by the success rule, retry with backoff. Nothing here prints.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;

use crate::policy::DeliveryPolicy;
use crate::secret::Secret;
use crate::signing::{self, Rules};

/// At most this much of a response body is read; the rest is discarded.
pub const RESPONSE_BODY_LIMIT: usize = 64 * 1024;

/// How a request is signed: the platform's scheme with its parameters, and the key. Each
/// attempt is signed at its own time.
#[derive(Clone, Debug)]
pub struct Signer {
    pub rules: Rules,
    pub key: Secret,
    /// A fixed signing time (Unix ms) instead of the clock, for tests and `--dry-run` replays.
    pub fixed_time_ms: Option<u64>,
}

impl Signer {
    /// The platform's signer with this key: `None` when the platform does not sign or there
    /// is no key.
    pub fn for_platform(platform: &crate::catalog::Platform, key: Option<&Secret>) -> Option<Self> {
        let signing = platform.signing.as_ref()?;
        Some(Signer {
            rules: signing.rules.clone(),
            key: key?.clone(),
            fixed_time_ms: None,
        })
    }

    /// The headers that sign `body` sent to `url`, now: one or several, as the scheme writes
    /// them. None for a key the scheme cannot use (commands check the key before sending).
    pub fn headers(&self, url: &str, body: &[u8]) -> Vec<(HeaderName, HeaderValue)> {
        let signed = self
            .rules
            .sign(&self.key, url, body, self.time_ms())
            .unwrap_or_default();
        signed
            .into_iter()
            .filter_map(|(name, value)| {
                Some((
                    HeaderName::from_bytes(name.as_bytes()).ok()?,
                    HeaderValue::from_str(&value).ok()?,
                ))
            })
            .collect()
    }

    /// The time to sign at: the fixed one, else now.
    pub fn time_ms(&self) -> u64 {
        self.fixed_time_ms.unwrap_or_else(signing::now_ms)
    }

    /// This signer made ready for many signatures; None for a key the scheme cannot use.
    pub fn keyed(&self) -> Option<signing::Keyed> {
        self.rules.keyed(&self.key).ok()
    }

    /// Sets the signature headers on `headers`, replacing any of the same names.
    pub fn apply(&self, url: &str, body: &[u8], headers: &mut HeaderMap) {
        for (name, value) in self.headers(url, body) {
            headers.insert(name, value);
        }
    }
}

/// One webhook ready to go: the exact bytes to send and the headers around them.
#[derive(Clone, Debug)]
pub struct Request {
    /// POST for webhooks; a custom function may be configured with another method.
    pub method: reqwest::Method,
    pub url: reqwest::Url,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub signer: Option<Signer>,
}

impl Request {
    /// The headers of one attempt, with a fresh signature (every header the scheme writes,
    /// over the URL and body it covers).
    pub fn attempt_headers(&self) -> HeaderMap {
        let mut headers = self.headers.clone();
        if let Some(signer) = &self.signer {
            signer.apply(self.url.as_str(), &self.body, &mut headers);
        }
        headers
    }
}

/// The request's headers as reports show them: credentials in the URL go out as an
/// `authorization: Basic` header (reqwest sets it), listed here with its value masked.
pub fn shown_headers(url: &reqwest::Url, mut headers: HeaderMap) -> HeaderMap {
    let has_credentials = !url.username().is_empty() || url.password().is_some();
    if has_credentials && !headers.contains_key(reqwest::header::AUTHORIZATION) {
        headers.insert(
            reqwest::header::AUTHORIZATION,
            HeaderValue::from_static("Basic ***"),
        );
    }
    headers
}

/// Why an attempt did not produce a status the rule could judge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorKind {
    /// No complete response within the deadline.
    Timeout,
    /// Refused, DNS, TLS: nothing was delivered.
    Connect,
    /// The connection was closed or reset before a response.
    Reset,
    /// A 3xx that hookcli did not follow.
    Redirect,
    /// The response body broke off.
    Body,
}

impl ErrorKind {
    pub fn word(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::Reset => "reset",
            ErrorKind::Redirect => "redirect",
            ErrorKind::Body => "body",
        }
    }
}

/// One try: what came back and how long it took.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub n: u32,
    pub status: Option<u16>,
    pub latency: Duration,
    pub error: Option<ErrorKind>,
    /// A plain-words detail for errors: "connection refused", "timed out after 10s".
    pub detail: Option<String>,
    /// Location of a redirect that was not followed.
    pub location: Option<String>,
    /// The wait before the next attempt, if there is one.
    pub wait: Option<Duration>,
    pub request_headers: HeaderMap,
    pub response_headers: HeaderMap,
    /// Up to [`RESPONSE_BODY_LIMIT`] bytes of the response body.
    pub response_body: Bytes,
    pub accepted: bool,
    /// The request first went out on a kept-alive connection that the receiver had closed
    /// (without `Connection: close`) and no answer came back on it, so it was sent once more
    /// on a fresh connection, as curl does, within this same attempt. The receiver is at
    /// fault: a platform that does not retry (salpre, postcall) loses such a delivery, and
    /// `check` warns about it.
    pub reconnected: bool,
}

/// How a delivery ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Failed,
    /// Every attempt failed to connect.
    Unreachable,
}

#[derive(Clone, Debug)]
pub struct Delivery {
    pub attempts: Vec<Attempt>,
    pub outcome: Outcome,
}

impl Delivery {
    pub fn delivered(&self) -> bool {
        self.outcome == Outcome::Delivered
    }

    pub fn last(&self) -> &Attempt {
        self.attempts
            .last()
            .expect("a delivery has at least one attempt")
    }

    /// The slowest attempt's latency.
    pub fn latency(&self) -> Duration {
        self.last().latency
    }
}

/// The HTTP client every delivery uses: no redirects followed, connections kept alive.
pub fn client() -> reqwest::Client {
    builder()
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .expect("the HTTP client builds with static settings")
}

/// [`client`] for requests to `url` alone (redirects are not followed): for http, without
/// the built-in TLS root certificates, which a plain-http send would load for nothing.
pub fn client_for(url: &reqwest::Url) -> reqwest::Client {
    builder()
        .pool_idle_timeout(Duration::from_secs(30))
        .tls_built_in_root_certs(url.scheme() == "https")
        .build()
        .expect("the HTTP client builds with static settings")
}

/// [`client`] with a deadline for the connection alone, for a platform that has one.
fn client_connecting_within(deadline: Duration) -> reqwest::Client {
    builder()
        .pool_idle_timeout(Duration::from_secs(30))
        .connect_timeout(deadline)
        .build()
        .expect("the HTTP client builds with static settings")
}

/// A client that keeps no connection, so its one request goes out on a new one: for the
/// second try of a request whose kept-alive connection turned out closed.
fn fresh_client() -> reqwest::Client {
    builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("the HTTP client builds with static settings")
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("hookcli/", env!("CARGO_PKG_VERSION")))
        .tcp_nodelay(true)
        .connector_layer(tower_layer::layer_fn(MarkOpened))
}

tokio::task_local! {
    /// Set by [`MarkOpened`] while a request is being sent: a new connection was opened for it.
    static OPENED: Cell<bool>;
}

/// Wraps reqwest's connector to tell whether a request went out on a kept-alive connection,
/// which reqwest does not say. hyper's pool runs the connector inside the sending task when
/// the request needs a new connection; when an idle one is handed out instead, a connect
/// already started finishes in a background task, where [`OPENED`] is not set. So a request
/// that saw no connect of its own was sent on a reused connection.
#[derive(Clone)]
struct MarkOpened<S>(S);

impl<S, R> tower_service::Service<R> for MarkOpened<S>
where
    S: tower_service::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, target: R) -> Self::Future {
        let connecting = self.0.call(target);
        Box::pin(async move {
            let connection = connecting.await;
            if connection.is_ok() {
                let _ = OPENED.try_with(|opened| opened.set(true));
            }
            connection
        })
    }
}

/// Delivers `request` under `policy`, retrying until the rule is met or attempts run out.
/// What a dry run takes as the delivery: one attempt, signed now and answered at once with the
/// success rule's own status (as a receiver that accepts it would), so a sequence goes on as
/// it would against such a receiver. Nothing is sent.
pub fn dry_run(request: &Request, policy: &DeliveryPolicy) -> Delivery {
    Delivery {
        attempts: vec![Attempt {
            n: 1,
            status: Some(policy.success.preferred_status()),
            latency: Duration::ZERO,
            error: None,
            detail: None,
            location: None,
            wait: None,
            request_headers: request.attempt_headers(),
            response_headers: HeaderMap::new(),
            response_body: Bytes::new(),
            accepted: true,
            reconnected: false,
        }],
        outcome: Outcome::Delivered,
    }
}

pub async fn deliver(
    client: &reqwest::Client,
    request: &Request,
    policy: &DeliveryPolicy,
) -> Delivery {
    deliver_with(client, request, policy, |_| {}).await
}

/// [`deliver`], handing each attempt to `on_attempt` as soon as it is known: after its
/// answer (its `wait` set when another attempt follows) and before the wait for the next.
pub async fn deliver_with(
    client: &reqwest::Client,
    request: &Request,
    policy: &DeliveryPolicy,
    mut on_attempt: impl FnMut(&Attempt),
) -> Delivery {
    // A connect deadline of the platform's own needs a client built with it (rare: Twilio).
    let own_client;
    let client = match policy.connect_timeout {
        Some(deadline) => {
            own_client = client_connecting_within(deadline);
            &own_client
        }
        None => client,
    };
    let mut attempts: Vec<Attempt> = Vec::new();
    for n in 1..=policy.max_attempts() {
        let mut attempt = attempt(client, request, policy, n).await;
        let done =
            attempt.accepted || n == policy.max_attempts() || !policy.retries_after(attempt.status);
        if !done {
            attempt.wait = Some(policy.wait_after(n) + jitter(policy.jitter));
        }
        on_attempt(&attempt);
        let wait = attempt.wait;
        attempts.push(attempt);
        match wait {
            Some(wait) if !wait.is_zero() => tokio::time::sleep(wait).await,
            Some(_) => {}
            None => break,
        }
    }
    let outcome = if attempts.last().is_some_and(|a| a.accepted) {
        Outcome::Delivered
    } else if attempts.iter().all(|a| a.error == Some(ErrorKind::Connect)) {
        Outcome::Unreachable
    } else {
        Outcome::Failed
    };
    Delivery { attempts, outcome }
}

/// A random wait from zero to `most`, as platforms spread their retries.
fn jitter(most: Duration) -> Duration {
    if most.is_zero() {
        return Duration::ZERO;
    }
    use rand::Rng;
    let millis = rand::thread_rng().gen_range(0..=most.as_millis().min(u64::MAX as u128) as u64);
    Duration::from_millis(millis)
}

/// One attempt, with the deadline over connect, headers and body together.
pub async fn attempt(
    client: &reqwest::Client,
    request: &Request,
    policy: &DeliveryPolicy,
    n: u32,
) -> Attempt {
    let headers = request.attempt_headers();
    let started = Instant::now();
    let reconnected = AtomicBool::new(false);
    let exchange = exchange(client, request, headers.clone(), &reconnected);
    let result = tokio::time::timeout(policy.timeout, exchange).await;
    let latency = started.elapsed();
    let mut attempt = Attempt {
        n,
        status: None,
        latency,
        error: None,
        detail: None,
        location: None,
        wait: None,
        request_headers: shown_headers(&request.url, headers),
        response_headers: HeaderMap::new(),
        response_body: Bytes::new(),
        accepted: false,
        reconnected: reconnected.load(Ordering::Relaxed),
    };
    match result {
        Err(_) => {
            attempt.error = Some(ErrorKind::Timeout);
            attempt.detail = Some(format!(
                "timed out after {}",
                crate::duration::short(policy.timeout)
            ));
        }
        Ok(Err((kind, detail, partial))) => {
            attempt.error = Some(kind);
            attempt.detail = Some(detail);
            if let Some((status, headers)) = partial {
                attempt.status = Some(status);
                attempt.response_headers = headers;
            }
        }
        Ok(Ok(response)) => {
            attempt.status = Some(response.status);
            attempt.accepted = policy.success.accepts(response.status);
            if (300..400).contains(&response.status) && !attempt.accepted {
                attempt.error = Some(ErrorKind::Redirect);
                attempt.location = response
                    .headers
                    .get(reqwest::header::LOCATION)
                    .map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned());
            }
            attempt.response_headers = response.headers;
            attempt.response_body = response.body;
        }
    }
    attempt
}

struct Response {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

type Failure = (ErrorKind, String, Option<(u16, HeaderMap)>);

/// One request and its answer. A request that failed on a reused connection before any
/// answer goes once more on a fresh one (`reconnected` says so), under the same deadline.
async fn exchange(
    client: &reqwest::Client,
    request: &Request,
    headers: HeaderMap,
    reconnected: &AtomicBool,
) -> Result<Response, Failure> {
    let sent = send_reconnecting(
        client,
        &request.method,
        &request.url,
        headers,
        request.body.clone(),
        reconnected,
    );
    let mut response = sent.await.map_err(|e| {
        let (kind, detail) = classify(&e);
        (kind, detail, None)
    })?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = RESPONSE_BODY_LIMIT - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() >= RESPONSE_BODY_LIMIT {
                    break; // The rest is discarded with the connection.
                }
            }
            Ok(None) => break,
            Err(e) => {
                return Err((
                    ErrorKind::Body,
                    format!("the response body broke off: {}", root_cause(&e)),
                    Some((status, headers)),
                ));
            }
        }
    }
    Ok(Response {
        status,
        headers,
        body: Bytes::from(body),
    })
}

/// POSTs and waits for the response head. When the request failed on a reused connection
/// before any answer (the receiver had closed it), it goes once more on a fresh connection
/// and `reconnected` is set.
pub async fn post_reconnecting(
    client: &reqwest::Client,
    url: &reqwest::Url,
    headers: HeaderMap,
    body: Bytes,
    reconnected: &AtomicBool,
) -> reqwest::Result<reqwest::Response> {
    send_reconnecting(
        client,
        &reqwest::Method::POST,
        url,
        headers,
        body,
        reconnected,
    )
    .await
}

/// [`post_reconnecting`] with any method.
async fn send_reconnecting(
    client: &reqwest::Client,
    method: &reqwest::Method,
    url: &reqwest::Url,
    headers: HeaderMap,
    body: Bytes,
    reconnected: &AtomicBool,
) -> reqwest::Result<reqwest::Response> {
    let post = |client: &reqwest::Client, headers, body| {
        client
            .request(method.clone(), url.clone())
            .headers(headers)
            .body(body)
            .send()
    };
    let (sent, opened) = OPENED
        .scope(Cell::new(false), async {
            let sent = post(client, headers.clone(), body.clone()).await;
            (sent, OPENED.with(Cell::get))
        })
        .await;
    match sent {
        Err(e) if !opened && closed_unanswered(&e) => {
            reconnected.store(true, Ordering::Relaxed);
            post(&fresh_client(), headers, body).await
        }
        sent => sent,
    }
}

/// Whether a request failed because its connection was closed under it with no answer: hyper's
/// "connection closed before message completed", or the reset or broken pipe met on a socket
/// the peer had already closed. hyper reports a response head cut off midway the same way,
/// so "no answer" here means no whole status line and headers (curl's rule is no byte at all);
/// either way there is no answer to report, and a second try is what the platform's own
/// client would need to see one.
pub fn closed_unanswered(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(e);
    while let Some(error) = current {
        if let Some(hyper) = error.downcast_ref::<hyper::Error>()
            && (hyper.is_incomplete_message() || hyper.is_timeout())
        {
            return hyper.is_incomplete_message();
        }
        if let Some(reqwest) = error.downcast_ref::<reqwest::Error>()
            && (reqwest.is_timeout() || reqwest.is_connect())
        {
            return false;
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
            return matches!(io.kind(), ConnectionReset | BrokenPipe | ConnectionAborted);
        }
        current = error.source();
    }
    false
}

/// The URL's host when it is a name that does not resolve: an unreachable receiver then
/// needs its name fixed, not starting.
pub async fn unresolved_host(url: &reqwest::Url) -> Option<String> {
    let host = url.host_str()?;
    // An IP address (`127.0.0.1`, `[::1]`) has nothing to resolve.
    if host.starts_with('[') || host.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    let port = url.port_or_known_default().unwrap_or(80);
    let resolved = tokio::net::lookup_host((host, port))
        .await
        .is_ok_and(|mut addrs| addrs.next().is_some());
    (!resolved).then(|| host.to_string())
}

/// Sorts a client error into the documented kinds, with the innermost cause as the detail.
fn classify(e: &reqwest::Error) -> (ErrorKind, String) {
    let cause = root_cause(e);
    let lower = cause.to_ascii_lowercase();
    if e.is_timeout() {
        return (ErrorKind::Timeout, cause);
    }
    if e.is_connect() {
        let https = e.url().is_some_and(|url| url.scheme() == "https");
        let detail = if lower.contains("refused") {
            "connection refused".to_string()
        } else if https
            && (lower.contains("invalidcontenttype") || lower.contains("corrupt message"))
        {
            // rustls met an HTTP answer where a TLS record should be.
            "the receiver speaks plain HTTP: use http://".to_string()
        } else if lower.contains("dns") || lower.contains("lookup") || lower.contains("resolve") {
            // The resolver's own words ("failed to lookup address information: Name or
            // service not known") say less than the name that did not resolve.
            match e.url().and_then(|url| url.host_str()) {
                Some(host) => format!("{host}: the name does not resolve (no such host)"),
                None => format!("name not resolved: {cause}"),
            }
        } else {
            cause
        };
        return (ErrorKind::Connect, detail);
    }
    if cut_off_while_sending(e) {
        // hyper gives up on the exchange when its write fails, even with the receiver's
        // early answer (a 413 or 431 sent before reading the body) already in its buffer.
        return (
            ErrorKind::Reset,
            "the receiver closed the connection while the request was being sent (an early \
             answer such as 413 or 431 cannot be read then)"
                .into(),
        );
    }
    if lower.contains("reset")
        || lower.contains("closed")
        || lower.contains("incomplete")
        || lower.contains("broken pipe")
        || lower.contains("eof")
    {
        return (
            ErrorKind::Reset,
            "the connection was closed before a response".into(),
        );
    }
    (ErrorKind::Reset, cause)
}

/// Whether sending the request failed partway: hyper's body-write error anywhere in the chain.
fn cut_off_while_sending(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(e);
    while let Some(error) = current {
        if let Some(hyper) = error.downcast_ref::<hyper::Error>() {
            // hyper has no predicate for this kind; its message is the stable part of its API
            // that names it.
            return hyper.to_string() == "error writing a body to connection";
        }
        current = error.source();
    }
    false
}

/// The innermost cause, with an OS error in plain words rather than "(os error 113)".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    match current.downcast_ref::<std::io::Error>() {
        Some(io) if io.raw_os_error().is_some() => crate::text::io_reason(io),
        _ => current.to_string(),
    }
}
