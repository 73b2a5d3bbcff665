//! What every case shares: the settings and HTTP client, the judgements of an answer, and the
//! finding a case builds up.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::Value;

use super::watch::ConnectWatch;
use crate::call::{Anchor, Call, CallPlan, RenderError, render_event};
use crate::catalog::{EventSpec, Lifecycle, Moment, Platform};
use crate::check::{CaseOutcome, CheckConfig, Severity};
use crate::delivery::{self, Attempt, Delivery, ErrorKind, Outcome, Request, Signer};
use crate::policy::DeliveryPolicy;
use crate::secret::Secret;
use crate::signing::now_ms;
use crate::text::status_text;

tokio::task_local! {
    /// The index of the case a task runs, so the requests it sends are logged under it.
    pub(in crate::check) static CASE: usize;
}

/// The settings and the HTTP client every case shares.
pub(in crate::check) struct Context {
    pub(in crate::check) config: CheckConfig,
    pub(super) client: reqwest::Client,
    pub(in crate::check) watch: ConnectWatch,
    /// Every request and its attempts, by case index, when -v or --dry-run asks for them.
    pub(in crate::check) log: Option<std::sync::Mutex<Vec<(usize, Exchange)>>>,
}

/// A request a case sent (or, in a dry run, would send), with its attempts.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub case: String,
    pub request: Request,
    pub attempts: Vec<Attempt>,
}

impl Context {
    pub(in crate::check) fn new(config: CheckConfig) -> Self {
        let log = (config.verbose || config.dry_run).then(Default::default);
        Context {
            config,
            client: delivery::client(),
            watch: ConnectWatch::default(),
            log,
        }
    }

    /// Logs a request of the running case, for -v and --dry-run.
    pub(super) fn log(&self, request: &Request, attempts: &[Attempt]) {
        let (Some(log), Ok(case)) = (&self.log, CASE.try_with(|i| *i)) else {
            return;
        };
        let exchange = Exchange {
            case: String::new(),
            request: request.clone(),
            attempts: attempts.to_vec(),
        };
        log.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((case, exchange));
    }

    pub(super) fn platform(&self) -> &Platform {
        &self.config.platform
    }

    pub(super) fn signer(&self) -> Option<Signer> {
        Signer::for_platform(self.platform(), self.config.key.as_ref())
    }

    /// A request for `body`, signed with the receiver's key when there is one.
    pub(super) fn signed(&self, body: impl Into<Bytes>) -> Request {
        Request {
            method: reqwest::Method::POST,
            url: self.config.url.clone(),
            headers: self.config.headers.clone(),
            body: body.into(),
            signer: self.signer(),
        }
    }

    /// A request for `body` with these exact signature headers, not signed by hookcli.
    pub(super) fn with_headers(
        &self,
        body: impl Into<Bytes>,
        signature: &[(String, String)],
    ) -> Request {
        self.with_headers_to(self.config.url.clone(), body, signature)
    }

    /// [`Self::with_headers`] sent to another URL than the receiver's.
    pub(super) fn with_headers_to(
        &self,
        url: reqwest::Url,
        body: impl Into<Bytes>,
        signature: &[(String, String)],
    ) -> Request {
        let mut request = Request {
            method: reqwest::Method::POST,
            url,
            headers: self.config.headers.clone(),
            body: body.into(),
            signer: None,
        };
        for (name, value) in signature {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                request.headers.insert(name, value);
            }
        }
        request
    }

    /// The platform's signature headers for `body` sent to the receiver's URL at `at_ms`,
    /// with `key`: empty when the platform does not sign or the key does not fit the scheme.
    pub(super) fn signature(&self, key: &Secret, body: &[u8], at_ms: u64) -> Vec<(String, String)> {
        self.signature_for(self.config.url.as_str(), key, body, at_ms)
    }

    /// [`Self::signature`] over another URL (twilio signs the URL).
    pub(super) fn signature_for(
        &self,
        url: &str,
        key: &Secret,
        body: &[u8],
        at_ms: u64,
    ) -> Vec<(String, String)> {
        let Some(signing) = self.platform().signing.as_ref() else {
            return Vec::new();
        };
        signing
            .rules
            .sign(key, url, body, at_ms)
            .unwrap_or_default()
    }

    /// The event the body/*, signature/* and delivery/* cases send: the call's end.
    pub(super) fn sample_event(&self) -> &EventSpec {
        let events = &self.platform().events;
        events
            .iter()
            .find(|e| e.at == Moment::End)
            .or(events.last())
            .expect("a platform has at least one event")
    }

    pub(super) fn render_sample(&self, rng: &mut StdRng) -> Result<Value, RenderError> {
        render_event(
            &self.config.catalog,
            self.platform(),
            self.sample_event(),
            rng,
        )
    }

    /// The lifecycle of an ordinary call: the first answered one.
    pub(super) fn main_lifecycle(&self) -> Option<&Lifecycle> {
        let lifecycles = &self.platform().lifecycles;
        lifecycles
            .iter()
            .find(|l| l.connected)
            .or(lifecycles.first())
    }

    /// Delivers by the policy (retries included) and judges that it was accepted.
    pub(super) async fn deliver(
        &self,
        request: &Request,
        policy: &DeliveryPolicy,
        finding: &mut Finding,
        what: &str,
    ) -> bool {
        self.delivery(request, policy, finding, what)
            .await
            .delivered()
    }

    /// [`Context::deliver`], returning the delivery for a closer look at its answers.
    pub(super) async fn delivery(
        &self,
        request: &Request,
        policy: &DeliveryPolicy,
        finding: &mut Finding,
        what: &str,
    ) -> Delivery {
        let repro = self.data_line(&request.body);
        self.delivery_reproduced(request, policy, finding, what, repro)
            .await
    }

    /// [`Context::delivery`] with the command that reproduces its body, for the report when it
    /// fails (a seeded `hookcli send`, shorter than the body inlined).
    pub(super) async fn delivery_reproduced(
        &self,
        request: &Request,
        policy: &DeliveryPolicy,
        finding: &mut Finding,
        what: &str,
        repro: Option<String>,
    ) -> Delivery {
        let started = Instant::now();
        let delivery = self.send(request, policy).await;
        finding.record_all(&delivery.attempts, started);
        if !self.judge_accepted(&delivery, policy, finding, what) {
            finding.failed_with(repro, delivery.last());
        }
        delivery
    }

    /// `HOOKCLI_SEED=S hookcli send EVENT -p ID --to URL [EDITS]`: the same body (times follow
    /// the clock), signed as check signed it. No key is ever in it: send finds it where check
    /// did, or in $HOOKCLI_SECRET when check was given --secret.
    pub(super) fn send_line(&self, event: &str, seed: u64, edits: &[String]) -> String {
        let mut line = format!(
            "HOOKCLI_SEED={seed} hookcli send {event} -p {}",
            self.platform().id
        );
        if let Some(url) = self.repro_url() {
            line.push_str(&format!(" --to {}", crate::text::shell_quote(&url)));
        }
        for edit in edits {
            line.push(' ');
            line.push_str(edit);
        }
        line.push_str(&self.config.repro_key);
        line
    }

    /// `printf %s 'BODY' | hookcli send -p ID --to URL --data -`: the exact bytes, signed
    /// afresh. None for a body too big to paste (body/large) or not UTF-8.
    pub(super) fn data_line(&self, body: &[u8]) -> Option<String> {
        crate::text::data_line(
            body,
            &self.platform().id,
            self.repro_url().as_deref(),
            &self.config.repro_key,
        )
    }

    /// The `--to` of a reproducing command, masked; none for the built-in receiver, which is
    /// gone by the time the command is run.
    fn repro_url(&self) -> Option<String> {
        (!self.config.built_in_target).then(|| crate::redact::shown_url(&self.config.url))
    }

    pub(super) fn judge_accepted(
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
            (_, Some(_), Some(ErrorKind::Redirect)) => {
                format!("answered {}: {REDIRECT}", redirected(last))
            }
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

    /// Delivers by the policy, unjudged and unrecorded.
    pub(super) async fn send(&self, request: &Request, policy: &DeliveryPolicy) -> Delivery {
        if self.config.dry_run {
            // Taken as accepted, so each case goes on as against a receiver that passes it.
            let delivery = delivery::dry_run(request, policy);
            self.log(request, &delivery.attempts);
            return delivery;
        }
        let delivery =
            delivery::deliver_with(&self.client, request, policy, |a| self.watch.observe(a)).await;
        self.log(request, &delivery.attempts);
        delivery
    }

    /// One attempt, recorded in the finding.
    pub(super) async fn once(&self, request: &Request, finding: &mut Finding) -> Attempt {
        let started = Instant::now();
        if self.config.dry_run {
            let delivery = delivery::dry_run(request, &self.config.policy);
            self.log(request, &delivery.attempts);
            return delivery
                .attempts
                .into_iter()
                .next()
                .expect("a dry run has one attempt");
        }
        let attempt = delivery::attempt(&self.client, request, &self.config.policy, 1).await;
        self.watch.observe(&attempt);
        self.log(request, std::slice::from_ref(&attempt));
        finding.record(&attempt, started);
        attempt
    }

    /// Judges an attempt that must be rejected: accepted is a failure at `level`, a 5xx or no
    /// answer is a warning (the platform would retry a rejection it should drop).
    pub(super) fn judge_rejected(
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
            (Some(_), Some(ErrorKind::Redirect)) => finding.fail(
                level,
                format!(
                    "{what} was answered {}, which is not a rejection: {REDIRECT}",
                    redirected(attempt)
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
pub(super) const WRONG_ROUTE: &str = "the request missed the webhook handler (wrong path, or POST not allowed): check the path in --to";

/// Whether `status` says the request missed the webhook route: 404 (no such path) or 405
/// (the path does not take POST). A receiver answers these before it looks at a signature,
/// so they prove nothing about verification, though they are 4xx like a real rejection.
pub(super) fn wrong_route(status: u16) -> bool {
    matches!(status, 404 | 405)
}

/// Whether a request the receiver must reject was taken: met the success rule, or got any
/// 2xx (under `--expect 200`, a 202 to an unsigned request still means it was processed).
pub(super) fn taken(attempt: &Attempt) -> bool {
    attempt.accepted
        || (attempt.error.is_none() && attempt.status.is_some_and(|s| (200..300).contains(&s)))
}

/// A redirect's status and where it points: `301 Moved Permanently (Location: https://…)`.
/// Webhook senders post to the URL they are given and count a redirect as a failure, so a
/// receiver behind one loses every event.
pub(super) fn redirected(attempt: &Attempt) -> String {
    let status = attempt.status.map(status_text).unwrap_or_default();
    let location = match attempt.location.as_deref() {
        Some(location) => format!(" (Location: {})", printable(location)),
        None => " (no Location)".to_string(),
    };
    format!("{status}{location}")
}

/// What a redirect means, and the fix.
pub(super) const REDIRECT: &str =
    "the platform does not follow redirects: give the final URL in --to";

/// Text from the wire with its control characters escaped, so a header cannot move the
/// terminal's cursor or forge a line of the report.
pub(super) fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// An attempt's answer in plain words: `401 Unauthorized`, `timed out after 300ms`.
pub(super) fn answer(attempt: &Attempt) -> String {
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
pub(in crate::check) struct Finding {
    pub(super) worst: Option<Severity>,
    pub(super) skipped: bool,
    pub(super) reasons: Vec<String>,
    pub(super) statuses: Vec<u16>,
    pub(super) latency: Option<Duration>,
    pub(super) requests: usize,
    /// When the latest attempt that got an HTTP answer was sent.
    pub(super) last_answer: Option<Instant>,
    /// When each attempt that could not connect was sent, with the reason.
    pub(super) refused: Vec<(Instant, String)>,
    /// Why the first attempt that connected got no HTTP answer ("timed out after 10s").
    pub(super) no_answer: Option<String>,
    /// The command that reproduces the first failed delivery.
    pub(super) reproduce: Option<String>,
    /// The first 1 KB of that delivery's answer (lossy UTF-8).
    pub(super) response: Option<String>,
}

impl Finding {
    /// Keeps the first failed delivery's reproducing command and the start of its answer.
    pub(super) fn failed_with(&mut self, repro: Option<String>, last: &Attempt) {
        if self.reproduce.is_some() || self.response.is_some() {
            return;
        }
        self.reproduce = repro;
        if !last.response_body.is_empty() {
            self.response = Some(crate::text::response_start(&last.response_body));
        }
    }

    pub(super) fn skipped(reason: impl Into<String>) -> Self {
        Finding {
            skipped: true,
            reasons: vec![reason.into()],
            ..Finding::default()
        }
    }

    /// Records an attempt sent at `started`.
    pub(super) fn record(&mut self, attempt: &Attempt, started: Instant) {
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
    pub(super) fn record_all(&mut self, attempts: &[Attempt], mut started: Instant) {
        for attempt in attempts {
            if attempt.reconnected {
                self.warn_reconnected();
            }
            self.record(attempt, started);
            started += attempt.latency + attempt.wait.unwrap_or_default();
        }
    }

    /// A kept-alive connection the receiver had closed without saying so: hookcli sent the
    /// request again on a fresh one and the case goes on, but the receiver is worth fixing.
    fn warn_reconnected(&mut self) {
        let reason = "the receiver closed a kept-alive connection without `Connection: close` \
                      and left a request on it unanswered (hookcli sent it again on a fresh \
                      connection; a platform may count it as failed): send `Connection: close` \
                      when closing, e.g. after an unhandled exception";
        if !self.reasons.iter().any(|r| r == reason) {
            self.fail(Severity::Warning, reason.to_string());
        }
    }

    pub(super) fn fail(&mut self, level: Severity, reason: String) {
        self.worst = self.worst.max(Some(level));
        self.reasons.push(reason);
    }

    pub(super) fn outcome(&self) -> CaseOutcome {
        match (self.skipped, self.worst) {
            (true, _) => CaseOutcome::Skipped,
            (_, Some(Severity::Error)) => CaseOutcome::Failed,
            (_, Some(Severity::Warning)) => CaseOutcome::Warning,
            (_, None) => CaseOutcome::Passed,
        }
    }
}

/// One call's bodies for the lifecycle's steps, per-turn steps once per turn, in order.
pub(super) fn lifecycle_bodies(
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
            let body = platform.encode(&call.render(event, turn)?);
            bodies.push((event.name.clone(), body));
        }
    }
    Ok(bodies)
}

/// `503 Service Unavailable ×5, timed out after 10s ×2`.
pub(super) fn tally(answers: &[String]) -> String {
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
