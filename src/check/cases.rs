//! The cases of `hookcli check`, one function each, and the judgements they share.
//!
//! Positive cases (the receiver must accept) deliver by the platform's policy, retries
//! included, as the platform would. Negative cases (the receiver must reject) send one
//! attempt: retrying a rejection changes nothing. load/burst also judges first attempts only,
//! because retries would hide exactly the overload it looks for.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use reqwest::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use serde_json::{Map, Value, json};

use super::{Case, CaseOutcome, CaseResult, CheckConfig, Severity};
use crate::call::{Anchor, Call, CallPlan, RenderError, render_event};
use crate::catalog::{EventSpec, Lifecycle, Moment, Platform};
use crate::delivery::{self, Attempt, Delivery, ErrorKind, Outcome, Request, Signer};
use crate::output::status_text;
use crate::policy::DeliveryPolicy;
use crate::secret::Secret;
use crate::signing::{self, now_ms};

/// What a case does; the name and severity live in [`Case`].
#[derive(Clone, Debug)]
pub(super) enum Kind {
    Delivers(String),
    Lifecycle(String),
    SignatureMissing,
    SignatureWrongKey,
    SignatureTampered,
    SignatureStale,
    SignatureFuture,
    SignatureMalformed,
    BodyReformatted,
    BodyUnicode,
    BodyLarge,
    BodyExtraFields,
    BodyMalformedJson,
    EventUnknown,
    DeliveryDuplicate,
    DeliveryOutOfOrder,
    HttpCharset,
    LoadBurst,
}

impl Kind {
    pub(super) fn runs_alone(&self) -> bool {
        matches!(self, Kind::LoadBurst)
    }
}

/// Ten minutes: twice the 5-minute tolerance the platforms document.
const SKEW_MS: u64 = 10 * 60 * 1000;
/// The size of body/large's transcript.
const LARGE_BYTES: usize = 1024 * 1024;
const UNKNOWN_EVENT: &str = "hookcli_unknown_event";
const UNICODE_TEXT: &str = "User: Bonjour, ça va? Señor Müller, naïve café. Agent: 東京の天気は晴れです。 \
     你好，世界！ 안녕하세요. Great 👋🎉 ✅ 𝄞";

fn case(name: impl Into<String>, severity: Severity, about: impl Into<String>, kind: Kind) -> Case {
    Case {
        name: name.into(),
        severity,
        about: about.into(),
        kind,
    }
}

/// Every case for the platform, in report order.
pub(super) fn all(platform: &Platform) -> Vec<Case> {
    use Severity::{Error, Warning};
    let mut list = Vec::new();
    for event in &platform.events {
        list.push(case(
            format!("delivers/{}", event.name),
            Error,
            format!(
                "a validly signed {} meets the success rule within the timeout",
                event.name
            ),
            Kind::Delivers(event.name.clone()),
        ));
    }
    for lifecycle in &platform.lifecycles {
        list.push(case(
            format!("lifecycle/{}", lifecycle.name),
            Error,
            format!(
                "every event of the `{}` lifecycle, in order, is accepted",
                lifecycle.name
            ),
            Kind::Lifecycle(lifecycle.name.clone()),
        ));
    }
    let table = [
        (
            "signature/missing",
            Error,
            "a request without the signature header is rejected",
            Kind::SignatureMissing,
        ),
        (
            "signature/wrong-key",
            Error,
            "a request signed with another key is rejected",
            Kind::SignatureWrongKey,
        ),
        (
            "signature/tampered-body",
            Error,
            "a body changed after signing is rejected",
            Kind::SignatureTampered,
        ),
        (
            "signature/stale",
            Error,
            "a signature 10 minutes old is rejected",
            Kind::SignatureStale,
        ),
        (
            "signature/future",
            Warning,
            "a signature 10 minutes in the future is rejected",
            Kind::SignatureFuture,
        ),
        (
            "signature/malformed",
            Error,
            "headers `garbage`, `v=1,d=zz` and a 16 KB value are rejected",
            Kind::SignatureMalformed,
        ),
        (
            "body/reformatted",
            Error,
            "the event with other whitespace, key order and \\u escapes, signed over its own bytes, is accepted",
            Kind::BodyReformatted,
        ),
        (
            "body/unicode",
            Error,
            "a transcript with accents, CJK and emoji is accepted",
            Kind::BodyUnicode,
        ),
        (
            "body/large",
            Error,
            "an event with a 1 MB transcript gets a 2xx or 413, not a 5xx or a timeout",
            Kind::BodyLarge,
        ),
        (
            "body/extra-fields",
            Error,
            "known events with unknown added fields are accepted",
            Kind::BodyExtraFields,
        ),
        (
            "body/malformed-json",
            Warning,
            "a validly signed body that is not JSON gets a 4xx",
            Kind::BodyMalformedJson,
        ),
        (
            "event/unknown",
            Error,
            "an unknown event type is not answered with a 5xx (a 4xx is a warning)",
            Kind::EventUnknown,
        ),
        (
            "delivery/duplicate",
            Error,
            "the same event twice, as a retry sends it, is accepted both times",
            Kind::DeliveryDuplicate,
        ),
        (
            "delivery/out-of-order",
            Error,
            "a call's events in reverse order are all accepted",
            Kind::DeliveryOutOfOrder,
        ),
        (
            "http/charset",
            Error,
            "Content-Type: application/json; charset=utf-8 is accepted",
            Kind::HttpCharset,
        ),
        (
            "load/burst",
            Error,
            "many calls' events at once (--burst) are all accepted within the timeout",
            Kind::LoadBurst,
        ),
    ];
    for (name, severity, about, kind) in table {
        list.push(case(name, severity, about, kind));
    }
    list
}

/// The settings and the HTTP client every case shares.
pub(super) struct Context {
    config: CheckConfig,
    client: reqwest::Client,
}

impl Context {
    pub(super) fn new(config: CheckConfig) -> Self {
        Context {
            config,
            client: delivery::client(),
        }
    }

    fn platform(&self) -> &Platform {
        &self.config.platform
    }

    fn signer(&self) -> Option<Signer> {
        let signing = self.platform().signing.as_ref()?;
        Some(Signer {
            scheme: signing.scheme,
            header: HeaderName::from_bytes(signing.header.as_bytes()).ok()?,
            key: self.config.key.clone()?,
            fixed_time_ms: None,
        })
    }

    /// A request for `body`, signed with the receiver's key when there is one.
    fn signed(&self, body: impl Into<Bytes>) -> Request {
        Request {
            url: self.config.url.clone(),
            headers: self.config.headers.clone(),
            body: body.into(),
            signer: self.signer(),
        }
    }

    /// A request for `body` with this exact signature header (or none), not signed by hookcli.
    fn with_signature(&self, body: impl Into<Bytes>, value: Option<&str>) -> Request {
        let mut request = Request {
            url: self.config.url.clone(),
            headers: self.config.headers.clone(),
            body: body.into(),
            signer: None,
        };
        let header = self.platform().signing.as_ref().map(|s| s.header.as_str());
        if let (Some(header), Some(value)) = (header, value)
            && let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(header.as_bytes()),
                HeaderValue::from_str(value),
            )
        {
            request.headers.insert(name, value);
        }
        request
    }

    /// The platform's signature header value for `body` at `at_ms`, with `key`.
    fn signature(&self, key: &Secret, body: &[u8], at_ms: u64) -> Option<String> {
        let signing = self.platform().signing.as_ref()?;
        Some(signing::sign(signing.scheme, key, body, at_ms))
    }

    /// The event the body/*, signature/* and delivery/* cases send: the call's end.
    fn sample_event(&self) -> &EventSpec {
        let events = &self.platform().events;
        events
            .iter()
            .find(|e| e.at == Moment::End)
            .or(events.last())
            .expect("a platform has at least one event")
    }

    fn render_sample(&self, rng: &mut StdRng) -> Result<Value, RenderError> {
        render_event(
            &self.config.catalog,
            self.platform(),
            self.sample_event(),
            rng,
        )
    }

    /// The lifecycle of an ordinary call: the first answered one.
    fn main_lifecycle(&self) -> Option<&Lifecycle> {
        let lifecycles = &self.platform().lifecycles;
        lifecycles
            .iter()
            .find(|l| l.connected)
            .or(lifecycles.first())
    }

    /// Delivers by the policy (retries included) and judges that it was accepted.
    async fn deliver(
        &self,
        request: &Request,
        policy: &DeliveryPolicy,
        finding: &mut Finding,
        what: &str,
    ) -> bool {
        let started = Instant::now();
        let delivery = delivery::deliver(&self.client, request, policy).await;
        finding.record_all(&delivery.attempts, started);
        self.judge_accepted(&delivery, policy, finding, what)
    }

    fn judge_accepted(
        &self,
        delivery: &Delivery,
        policy: &DeliveryPolicy,
        finding: &mut Finding,
        what: &str,
    ) -> bool {
        let last = delivery.last();
        let tries = delivery.attempts.len();
        if delivery.delivered() {
            if tries > 1 {
                let first = answer(&delivery.attempts[0]);
                finding.fail(
                    Severity::Warning,
                    format!("{what}accepted only on attempt {tries} (first: {first})"),
                );
            } else if last.latency > policy.timeout / 2 {
                finding.fail(
                    Severity::Warning,
                    format!(
                        "{what}took {} of the {} timeout",
                        crate::duration::short(last.latency),
                        crate::duration::short(policy.timeout)
                    ),
                );
            }
            return true;
        }
        let after = if tries > 1 {
            format!(" (after {tries} attempts)")
        } else {
            String::new()
        };
        let why = match (delivery.outcome, last.status, last.error) {
            (Outcome::Unreachable, _, _) => format!("could not connect: {}", answer(last)),
            (_, Some(status), None) if wrong_route(status) => {
                format!("answered {}: {WRONG_ROUTE}", status_text(status))
            }
            (_, Some(status), None) => format!(
                "answered {}; {} requires {}",
                status_text(status),
                self.config.rule_owner,
                policy.success.requirement()
            ),
            _ => answer(last),
        };
        finding.fail(Severity::Error, format!("{what}{why}{after}"));
        false
    }

    /// One attempt, recorded in the finding.
    async fn once(&self, request: &Request, finding: &mut Finding) -> Attempt {
        let started = Instant::now();
        let attempt = delivery::attempt(&self.client, request, &self.config.policy, 1).await;
        finding.record(&attempt, started);
        attempt
    }

    /// Judges an attempt that must be rejected: accepted is a failure at `level`, a 5xx or no
    /// answer is a warning (the platform would retry a rejection it should drop).
    fn judge_rejected(
        &self,
        attempt: &Attempt,
        finding: &mut Finding,
        level: Severity,
        what: &str,
        accepted_means: &str,
    ) {
        match (attempt.status, attempt.error) {
            _ if taken(attempt) => finding.fail(
                level,
                format!("{what} was accepted ({}): {accepted_means}", answer(attempt)),
            ),
            (Some(status), None) if wrong_route(status) => finding.fail(
                level,
                format!(
                    "{what} was answered {}, which is not a rejection: {WRONG_ROUTE}",
                    status_text(status)
                ),
            ),
            (Some(status), None) if status >= 500 => finding.fail(
                Severity::Warning,
                format!(
                    "{what} was answered {}: the platform retries a 5xx; reject with a 4xx such as 401",
                    status_text(status)
                ),
            ),
            (_, Some(_)) => finding.fail(
                Severity::Warning,
                format!("{what} got no answer ({}): reject it quickly with a 4xx such as 401", answer(attempt)),
            ),
            _ => {}
        }
    }
}

/// What a 404 or 405 means, and the fix, for the reasons that meet one.
const WRONG_ROUTE: &str = "the request missed the webhook handler (wrong path, or POST not allowed): check the path in --to";

/// Whether `status` says the request missed the webhook route: 404 (no such path) or 405
/// (the path does not take POST). A receiver answers these before it looks at a signature,
/// so they prove nothing about verification, though they are 4xx like a real rejection.
fn wrong_route(status: u16) -> bool {
    matches!(status, 404 | 405)
}

/// Whether a request the receiver must reject was taken: met the success rule, or got any
/// 2xx (under `--expect 200`, a 202 to an unsigned request still means it was processed).
fn taken(attempt: &Attempt) -> bool {
    attempt.accepted
        || (attempt.error.is_none() && attempt.status.is_some_and(|s| (200..300).contains(&s)))
}

/// An attempt's answer in plain words: `401 Unauthorized`, `timed out after 300ms`.
fn answer(attempt: &Attempt) -> String {
    match (attempt.status, attempt.error) {
        (Some(status), None | Some(ErrorKind::Redirect)) => status_text(status),
        (_, Some(_)) => attempt
            .detail
            .clone()
            .unwrap_or_else(|| "no response".into()),
        (None, None) => "no response".into(),
    }
}

/// What a case has found so far: the worst result and every reason.
#[derive(Default)]
struct Finding {
    worst: Option<Severity>,
    skipped: bool,
    reasons: Vec<String>,
    statuses: Vec<u16>,
    latency: Option<Duration>,
    requests: usize,
    /// When the latest attempt that got an HTTP answer was sent.
    last_answer: Option<Instant>,
    /// When each attempt that could not connect was sent, with the reason.
    refused: Vec<(Instant, String)>,
    /// Why the first attempt that connected got no HTTP answer ("timed out after 10s").
    no_answer: Option<String>,
}

impl Finding {
    fn skipped(reason: impl Into<String>) -> Self {
        Finding {
            skipped: true,
            reasons: vec![reason.into()],
            ..Finding::default()
        }
    }

    /// Records an attempt sent at `started`.
    fn record(&mut self, attempt: &Attempt, started: Instant) {
        self.requests += 1;
        if let Some(status) = attempt.status {
            if !self.statuses.contains(&status) {
                self.statuses.push(status);
            }
            self.last_answer = self.last_answer.max(Some(started));
        }
        match (attempt.status, attempt.error) {
            (_, Some(ErrorKind::Connect)) => self.refused.push((started, answer(attempt))),
            (None, Some(_)) if self.no_answer.is_none() => self.no_answer = Some(answer(attempt)),
            _ => {}
        }
        self.latency = Some(self.latency.unwrap_or_default().max(attempt.latency));
    }

    /// Records a delivery's attempts; each was sent after the ones before it and their waits.
    fn record_all(&mut self, attempts: &[Attempt], mut started: Instant) {
        for attempt in attempts {
            self.record(attempt, started);
            started += attempt.latency + attempt.wait.unwrap_or_default();
        }
    }

    fn fail(&mut self, level: Severity, reason: String) {
        self.worst = self.worst.max(Some(level));
        self.reasons.push(reason);
    }

    fn outcome(&self) -> CaseOutcome {
        match (self.skipped, self.worst) {
            (true, _) => CaseOutcome::Skipped,
            (_, Some(Severity::Error)) => CaseOutcome::Failed,
            (_, Some(Severity::Warning)) => CaseOutcome::Warning,
            (_, None) => CaseOutcome::Passed,
        }
    }
}

/// Runs one case to its result.
pub(super) async fn run_case(context: &Context, case: &Case, mut rng: StdRng) -> CaseResult {
    let started = Instant::now();
    let finding = match run_kind(context, &case.kind, &mut rng).await {
        Ok(finding) => finding,
        Err(e) => {
            let mut finding = Finding::default();
            finding.fail(Severity::Error, format!("cannot render the event: {e}"));
            finding
        }
    };
    CaseResult {
        name: case.name.clone(),
        severity: case.severity,
        result: finding.outcome(),
        statuses: finding.statuses.clone(),
        latency: finding.latency,
        reason: (!finding.reasons.is_empty()).then(|| finding.reasons.join("; ")),
        requests: finding.requests,
        elapsed: started.elapsed(),
        last_answer: finding.last_answer,
        refused: finding.refused,
        no_answer: finding.no_answer,
        cut_off: false,
    }
}

async fn run_kind(
    context: &Context,
    kind: &Kind,
    rng: &mut StdRng,
) -> Result<Finding, RenderError> {
    if let Some(reason) = signature_skip(context, kind) {
        return Ok(Finding::skipped(reason));
    }
    match kind {
        Kind::Delivers(event) => delivers(context, event, rng).await,
        Kind::Lifecycle(name) => lifecycle(context, name, rng).await,
        Kind::SignatureMissing
        | Kind::SignatureWrongKey
        | Kind::SignatureTampered
        | Kind::SignatureStale
        | Kind::SignatureFuture => signature(context, kind, rng).await,
        Kind::SignatureMalformed => signature_malformed(context, rng).await,
        Kind::BodyReformatted => body_reformatted(context, rng).await,
        Kind::BodyUnicode => body_unicode(context, rng).await,
        Kind::BodyLarge => body_large(context, rng).await,
        Kind::BodyExtraFields => body_extra_fields(context, rng).await,
        Kind::BodyMalformedJson => body_malformed_json(context, rng).await,
        Kind::EventUnknown => event_unknown(context, rng).await,
        Kind::DeliveryDuplicate => delivery_duplicate(context, rng).await,
        Kind::DeliveryOutOfOrder => delivery_out_of_order(context, rng).await,
        Kind::HttpCharset => http_charset(context, rng).await,
        Kind::LoadBurst => load_burst(context, rng).await,
    }
}

/// Why a signature case cannot run: the platform does not sign, or there is no key.
fn signature_skip(context: &Context, kind: &Kind) -> Option<String> {
    let signature_case = matches!(
        kind,
        Kind::SignatureMissing
            | Kind::SignatureWrongKey
            | Kind::SignatureTampered
            | Kind::SignatureStale
            | Kind::SignatureFuture
            | Kind::SignatureMalformed
    );
    if !signature_case {
        return None;
    }
    let platform = context.platform();
    match (&platform.signing, &context.config.key) {
        (None, _) => Some(format!("{} does not sign its webhooks", platform.id)),
        (Some(_), None) => Some(context.config.no_key_reason.clone()),
        _ => None,
    }
}

async fn delivers(
    context: &Context,
    event: &str,
    rng: &mut StdRng,
) -> Result<Finding, RenderError> {
    let platform = context.platform();
    let spec = platform
        .event(event)
        .expect("the case list comes from the platform's events");
    let body = serde_json::to_vec(&render_event(&context.config.catalog, platform, spec, rng)?)
        .expect("a JSON value serializes");
    let mut finding = Finding::default();
    let policy = &context.config.policy;
    context
        .deliver(&context.signed(body), policy, &mut finding, "")
        .await;
    Ok(finding)
}

/// One call's bodies for the lifecycle's steps, per-turn steps once per turn, in order.
fn lifecycle_bodies(
    context: &Context,
    lifecycle: &Lifecycle,
    per_turn: bool,
    rng: &mut StdRng,
) -> Result<Vec<(String, Vec<u8>)>, RenderError> {
    let platform = context.platform();
    let plan = CallPlan::for_lifecycle(platform, lifecycle, Anchor::EndsAt(now_ms()));
    let call = Call::generate(&context.config.catalog, platform, &plan, rng)?;
    let mut bodies = Vec::new();
    for step in &lifecycle.steps {
        let Some(event) = platform.event(&step.event) else {
            continue;
        };
        let turns: Vec<Option<usize>> = match (step.per_turn, per_turn) {
            (false, _) => vec![None],
            (true, true) => (0..call.turn_count()).map(Some).collect(),
            (true, false) => vec![],
        };
        for turn in turns {
            let body =
                serde_json::to_vec(&call.render(event, turn)?).expect("a JSON value serializes");
            bodies.push((event.name.clone(), body));
        }
    }
    Ok(bodies)
}

async fn lifecycle(
    context: &Context,
    name: &str,
    rng: &mut StdRng,
) -> Result<Finding, RenderError> {
    let lifecycle = context
        .platform()
        .lifecycle(name)
        .expect("the case list comes from the platform's lifecycles");
    let bodies = lifecycle_bodies(context, lifecycle, true, rng)?;
    let mut finding = Finding::default();
    let total = bodies.len();
    for (i, (event, body)) in bodies.into_iter().enumerate() {
        let what = format!("{event} (step {} of {total}): ", i + 1);
        // The first failure is enough to report; the rest would only repeat it.
        if !context
            .deliver(
                &context.signed(body),
                &context.config.policy,
                &mut finding,
                &what,
            )
            .await
        {
            break;
        }
    }
    Ok(finding)
}

async fn signature(
    context: &Context,
    kind: &Kind,
    rng: &mut StdRng,
) -> Result<Finding, RenderError> {
    let value = context.render_sample(rng)?;
    let body = serde_json::to_vec(&value).expect("a JSON value serializes");
    let key = context
        .config
        .key
        .clone()
        .expect("signature cases are skipped without a key");
    let header = &context.platform().signing.as_ref().expect("checked").header;
    let now = now_ms();
    let not_verifying = "the receiver does not verify signatures";
    let (request, level, what, means) = match kind {
        Kind::SignatureMissing => (
            context.with_signature(body, None),
            Severity::Error,
            format!("a request without {header}"),
            not_verifying.to_string(),
        ),
        Kind::SignatureWrongKey => {
            let signature = context.signature(&Secret::generate(), &body, now);
            (
                context.with_signature(body, signature.as_deref()),
                Severity::Error,
                "a request signed with another key".to_string(),
                not_verifying.to_string(),
            )
        }
        Kind::SignatureTampered => {
            let signature = context.signature(&key, &body, now);
            let mut changed = value.clone();
            if let Value::Object(map) = &mut changed {
                map.insert("tampered".into(), json!(true));
            }
            let changed = serde_json::to_vec(&changed).expect("a JSON value serializes");
            (
                context.with_signature(changed, signature.as_deref()),
                Severity::Error,
                "a body changed after signing".to_string(),
                "the receiver does not check the digest against the body".to_string(),
            )
        }
        Kind::SignatureStale => {
            let signature = context.signature(&key, &body, now - SKEW_MS);
            (
                context.with_signature(body, signature.as_deref()),
                Severity::Error,
                "a signature 10 minutes old".to_string(),
                "the receiver does not check the signature's time, so old requests can be replayed"
                    .to_string(),
            )
        }
        _ => {
            let signature = context.signature(&key, &body, now + SKEW_MS);
            (
                context.with_signature(body, signature.as_deref()),
                Severity::Warning,
                "a signature 10 minutes in the future".to_string(),
                "the receiver does not bound the signature's time".to_string(),
            )
        }
    };
    let mut finding = Finding::default();
    let attempt = context.once(&request, &mut finding).await;
    context.judge_rejected(&attempt, &mut finding, level, &what, &means);
    Ok(finding)
}

async fn signature_malformed(context: &Context, rng: &mut StdRng) -> Result<Finding, RenderError> {
    let body = serde_json::to_vec(&context.render_sample(rng)?).expect("a JSON value serializes");
    let long = format!("v={},d={}", now_ms(), "a".repeat(16 * 1024));
    let mut finding = Finding::default();
    let mut accepted = Vec::new();
    let mut misrouted = Vec::new();
    for (value, shown) in [
        ("garbage", "`garbage`"),
        ("v=1,d=zz", "`v=1,d=zz`"),
        (long.as_str(), "a 16 KB value"),
    ] {
        let request = context.with_signature(body.clone(), Some(value));
        let attempt = context.once(&request, &mut finding).await;
        if taken(&attempt) {
            accepted.push(format!("{shown} ({})", answer(&attempt)));
        } else if let (Some(status), None) = (attempt.status, attempt.error)
            && wrong_route(status)
        {
            misrouted.push((shown, status_text(status)));
        } else {
            let what = format!("the signature header {shown}");
            context.judge_rejected(&attempt, &mut finding, Severity::Error, &what, "");
        }
    }
    if !misrouted.is_empty() {
        // One sentence for all: a wrong route answers every value the same way.
        let (shown, mut statuses): (Vec<&str>, Vec<String>) = misrouted.into_iter().unzip();
        statuses.dedup();
        finding.fail(
            Severity::Error,
            format!(
                "malformed signature headers ({}) were answered {}, which is not a rejection: \
                 {WRONG_ROUTE}",
                shown.join(", "),
                statuses.join(" or ")
            ),
        );
    }
    if !accepted.is_empty() {
        // One sentence for all three: they fail for the same reason.
        finding.fail(
            Severity::Error,
            format!(
                "malformed signature headers were accepted: {}: the receiver does not verify signatures",
                accepted.join(", ")
            ),
        );
    }
    Ok(finding)
}

/// The pointer to the longest string in a body: the transcript, in practice.
fn longest_string(value: &Value, at: String) -> Option<(usize, String)> {
    match value {
        Value::String(s) => Some((s.len(), at)),
        Value::Object(map) => map
            .iter()
            .filter_map(|(k, v)| {
                longest_string(
                    v,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                )
            })
            .max_by_key(|(n, _)| *n),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| longest_string(v, format!("{at}/{i}")))
            .max_by_key(|(n, _)| *n),
        _ => None,
    }
}

/// Changes the body's longest text; adds a `text` field when it has none.
fn edit_text(value: &mut Value, edit: impl FnOnce(&mut String)) {
    let pointer = longest_string(value, String::new()).map(|(_, p)| p);
    if let Some(Value::String(text)) = pointer.and_then(|p| value.pointer_mut(&p)) {
        edit(text);
    } else if let Value::Object(map) = value {
        let mut text = String::new();
        edit(&mut text);
        map.insert("text".into(), json!(text));
    }
}

/// The same JSON written differently: indented, keys in reverse order, every non-ASCII
/// character and `/` as a `\u` or `\/` escape. Parses to the same value; different bytes.
pub fn reformat(value: &Value) -> Vec<u8> {
    let mut out = String::new();
    write_value(&mut out, value, 0);
    out.into_bytes()
}

fn write_value(out: &mut String, value: &Value, depth: usize) {
    let indent = |out: &mut String, depth: usize| out.push_str(&"    ".repeat(depth));
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push_str("{\n");
            for (i, (key, item)) in map.iter().rev().enumerate() {
                if i > 0 {
                    out.push_str(",\n");
                }
                indent(out, depth + 1);
                write_string(out, key);
                out.push_str(" : ");
                write_value(out, item, depth + 1);
            }
            out.push('\n');
            indent(out, depth);
            out.push('}');
        }
        Value::Array(items) if !items.is_empty() => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(",\n");
                }
                indent(out, depth + 1);
                write_value(out, item, depth + 1);
            }
            out.push('\n');
            indent(out, depth);
            out.push(']');
        }
        Value::String(text) => write_string(out, text),
        other => out.push_str(&other.to_string()),
    }
}

fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

async fn body_reformatted(context: &Context, rng: &mut StdRng) -> Result<Finding, RenderError> {
    let mut value = context.render_sample(rng)?;
    // An `é` to escape, so the bytes differ the way a re-serializer's would.
    edit_text(&mut value, |t| t.push_str(" Café"));
    let mut finding = Finding::default();
    let accepted = context
        .deliver(
            &context.signed(reformat(&value)),
            &context.config.policy,
            &mut finding,
            "",
        )
        .await;
    if !accepted {
        finding.reasons.push(
            "the bytes differ from a compact body but parse the same: does the receiver verify a \
             re-serialized body instead of the raw bytes?"
                .into(),
        );
    }
    Ok(finding)
}

async fn body_unicode(context: &Context, rng: &mut StdRng) -> Result<Finding, RenderError> {
    let mut value = context.render_sample(rng)?;
    edit_text(&mut value, |t| {
        t.push('\n');
        t.push_str(UNICODE_TEXT);
    });
    let body = serde_json::to_vec(&value).expect("a JSON value serializes");
    let mut finding = Finding::default();
    context
        .deliver(
            &context.signed(body),
            &context.config.policy,
            &mut finding,
            "",
        )
        .await;
    Ok(finding)
}

async fn body_large(context: &Context, rng: &mut StdRng) -> Result<Finding, RenderError> {
    let mut value = context.render_sample(rng)?;
    edit_text(&mut value, |t| {
        let line = "User: I'd like to go over every line of my last three invoices, one by one. ";
        *t = line.repeat(LARGE_BYTES / line.len() + 1);
    });
    let body = serde_json::to_vec(&value).expect("a JSON value serializes");
    // 413 is a fine answer to a body this big: the platform then knows not to retry.
    let mut policy = context.config.policy.clone();
    policy.success = policy.success.also(413);
    let mut finding = Finding::default();
    context
        .deliver(
            &context.signed(body),
            &policy,
            &mut finding,
            "a 1 MB event: ",
        )
        .await;
    Ok(finding)
}

async fn body_extra_fields(context: &Context, rng: &mut StdRng) -> Result<Finding, RenderError> {
    let platform = context.platform();
    let defaults: Vec<&EventSpec> = platform.events.iter().filter(|e| e.default).collect();
    let events = if defaults.is_empty() {
        platform.events.iter().collect()
    } else {
        defaults
    };
    let mut finding = Finding::default();
    for event in events {
        let mut value = render_event(&context.config.catalog, platform, event, rng)?;
        add_unknown_fields(&mut value);
        let body = serde_json::to_vec(&value).expect("a JSON value serializes");
        let what = format!("{} with added fields: ", event.name);
        context
            .deliver(
                &context.signed(body),
                &context.config.policy,
                &mut finding,
                &what,
            )
            .await;
    }
    Ok(finding)
}

/// Fields a platform might add next year: at the top and in each nested object.
fn add_unknown_fields(value: &mut Value) {
    let Value::Object(map) = value else { return };
    for nested in map.values_mut() {
        if let Value::Object(inner) = nested {
            inner.insert("hookcli_new_flag".into(), json!(true));
        }
    }
    let mut added = Map::new();
    added.insert("added_in".into(), json!("v2"));
    added.insert("values".into(), json!([1, 2.5, null, "three"]));
    map.insert("hookcli_new_field".into(), Value::Object(added));
}

async fn body_malformed_json(context: &Context, rng: &mut StdRng) -> Result<Finding, RenderError> {
    let text =
        serde_json::to_string(&context.render_sample(rng)?).expect("a JSON value serializes");
    let mut cut = text.len() / 2;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut finding = Finding::default();
    let attempt = context
        .once(&context.signed(text[..cut].to_string()), &mut finding)
        .await;
    match (attempt.status, attempt.error) {
        (Some(status), None) if wrong_route(status) => finding.fail(
            Severity::Warning,
            format!(
                "a body that is not JSON was answered {}, which says nothing of how it is \
                 handled: {WRONG_ROUTE}",
                status_text(status)
            ),
        ),
        (Some(status), None) if (400..500).contains(&status) => {}
        (Some(status), None) if status >= 500 => finding.fail(
            Severity::Warning,
            format!(
                "a body that is not JSON was answered {}: the platform would retry it; answer 400",
                status_text(status)
            ),
        ),
        (Some(status), None) => finding.fail(
            Severity::Warning,
            format!(
                "a body that is not JSON was answered {}: expected a 4xx such as 400",
                status_text(status)
            ),
        ),
        _ => finding.fail(
            Severity::Warning,
            format!(
                "a body that is not JSON got no answer ({}): answer 400",
                answer(&attempt)
            ),
        ),
    }
    Ok(finding)
}

async fn event_unknown(context: &Context, rng: &mut StdRng) -> Result<Finding, RenderError> {
    let platform = context.platform();
    let Some(field) = platform.event_field.clone() else {
        return Ok(Finding::skipped(format!(
            "{} sends one kind of event, with no event type field",
            platform.id
        )));
    };
    let mut value = context.render_sample(rng)?;
    if let Some(slot) = value.pointer_mut(&field) {
        *slot = json!(UNKNOWN_EVENT);
    }
    let body = serde_json::to_vec(&value).expect("a JSON value serializes");
    let mut finding = Finding::default();
    let attempt = context.once(&context.signed(body), &mut finding).await;
    let what = format!("an unknown event type (`{UNKNOWN_EVENT}`)");
    match (attempt.status, attempt.error) {
        _ if attempt.accepted => {}
        (Some(status), None) if status >= 500 => finding.fail(
            Severity::Error,
            format!(
                "{what} was answered {}: platforms add event types over time, and each new one \
                 would fail and be retried; acknowledge unknown events with a 2xx",
                status_text(status)
            ),
        ),
        (Some(status), None) => finding.fail(
            Severity::Warning,
            format!(
                "{what} was answered {}: the platform retries anything but its success rule; \
                 acknowledge unknown events with a 2xx",
                status_text(status)
            ),
        ),
        _ => finding.fail(
            Severity::Error,
            format!("{what} got no answer: {}", answer(&attempt)),
        ),
    }
    Ok(finding)
}

async fn delivery_duplicate(context: &Context, rng: &mut StdRng) -> Result<Finding, RenderError> {
    let body = serde_json::to_vec(&context.render_sample(rng)?).expect("a JSON value serializes");
    let event = &context.sample_event().name;
    let mut finding = Finding::default();
    let policy = &context.config.policy;
    let first = format!("the first {event}: ");
    if context
        .deliver(&context.signed(body.clone()), policy, &mut finding, &first)
        .await
    {
        let again = format!("the same {event} again (as a retry sends it): ");
        if !context
            .deliver(&context.signed(body), policy, &mut finding, &again)
            .await
        {
            finding
                .reasons
                .push("answer a duplicate with a 2xx and do nothing".into());
        }
    }
    Ok(finding)
}

async fn delivery_out_of_order(
    context: &Context,
    rng: &mut StdRng,
) -> Result<Finding, RenderError> {
    let platform = context.platform();
    let Some(lifecycle) = context.main_lifecycle() else {
        return Ok(Finding::skipped(format!(
            "{} has no lifecycles",
            platform.id
        )));
    };
    let mut bodies = lifecycle_bodies(context, lifecycle, false, rng)?;
    if bodies.len() < 2 {
        return Ok(Finding::skipped(format!(
            "{} sends one event per call",
            platform.id
        )));
    }
    bodies.reverse();
    let mut finding = Finding::default();
    let total = bodies.len();
    for (i, (event, body)) in bodies.into_iter().enumerate() {
        let what = format!("{event} (sent {} of {total}, reversed): ", i + 1);
        context
            .deliver(
                &context.signed(body),
                &context.config.policy,
                &mut finding,
                &what,
            )
            .await;
    }
    Ok(finding)
}

async fn http_charset(context: &Context, rng: &mut StdRng) -> Result<Finding, RenderError> {
    let body = serde_json::to_vec(&context.render_sample(rng)?).expect("a JSON value serializes");
    let mut request = context.signed(body);
    request.headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    let mut finding = Finding::default();
    context
        .deliver(
            &request,
            &context.config.policy,
            &mut finding,
            "with a charset: ",
        )
        .await;
    Ok(finding)
}

async fn load_burst(context: &Context, rng: &mut StdRng) -> Result<Finding, RenderError> {
    let mut bodies = Vec::new();
    for _ in 0..context.config.burst {
        match context.main_lifecycle() {
            Some(lifecycle) => bodies.extend(lifecycle_bodies(context, lifecycle, false, rng)?),
            None => bodies.push((
                context.sample_event().name.clone(),
                serde_json::to_vec(&context.render_sample(rng)?).expect("a JSON value serializes"),
            )),
        }
    }
    let mut set = tokio::task::JoinSet::new();
    for (_, body) in bodies {
        let request = context.signed(body);
        let client = context.client.clone();
        let policy = context.config.policy.clone();
        set.spawn(async move {
            let started = Instant::now();
            let attempt = delivery::attempt(&client, &request, &policy, 1).await;
            (attempt, started)
        });
    }
    let mut finding = Finding::default();
    let mut failures: Vec<String> = Vec::new();
    while let Some(joined) = set.join_next().await {
        // A request task that panicked (a bug) counts as not accepted; stopping at it would
        // drop the requests still running from the count.
        let Ok((attempt, started)) = joined else {
            finding.requests += 1;
            failures.push("hookcli failed inside the request (a bug)".into());
            continue;
        };
        finding.record(&attempt, started);
        if !attempt.accepted {
            failures.push(answer(&attempt));
        }
    }
    if !failures.is_empty() {
        finding.fail(
            Severity::Error,
            format!(
                "{} of {} requests sent at once were not accepted: {}",
                failures.len(),
                finding.requests,
                tally(&failures)
            ),
        );
    }
    Ok(finding)
}

/// `503 Service Unavailable ×5, timed out after 10s ×2`.
fn tally(answers: &[String]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for a in answers {
        match counts.iter_mut().find(|(text, _)| *text == a.as_str()) {
            Some((_, n)) => *n += 1,
            None => counts.push((a, 1)),
        }
    }
    counts
        .iter()
        .map(|(text, n)| format!("{text} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reformat_parses_to_the_same_value_with_other_bytes() {
        let value = json!({"event": "call_ended", "call": {"transcript": "Café 👋\n/", "n": [1, 2.5], "e": {}}});
        let bytes = reformat(&value);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("Caf\\u00e9 \\ud83d\\udc4b\\n\\/"), "{text}");
        assert!(text.find("\"call\"").unwrap() < text.find("\"event\"").unwrap());
        assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap(), value);
        assert_ne!(bytes, serde_json::to_vec(&value).unwrap());
    }

    #[test]
    fn edits_the_longest_text() {
        let mut value = json!({"a": "short", "b": {"c/d": "the longest text here"}});
        edit_text(&mut value, |t| t.push('!'));
        assert_eq!(value["b"]["c/d"], "the longest text here!");
    }
}
