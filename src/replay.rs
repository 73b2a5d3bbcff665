//! Replaying whole calls: plan each call's deliveries from a lifecycle (or a recording), then
//! deliver them in order per call, calls interleaved up to a concurrency, paced as asked.
//! Nothing here prints: each result goes out on a channel as it completes.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::{Semaphore, mpsc};

use crate::call::{Anchor, Call, CallPlan, RenderError};
use crate::catalog::{AnswerSpec, BodyFormat, Catalog, EventSpec, Lifecycle, Platform};
use crate::delivery::{self, Delivery, Request};
use crate::policy::EventPolicies;
use crate::template::{self, At};
use crate::text::{line_list, plural};

/// Which events the (simulated) agent subscribes to: uponai's `webhook_events`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventFilter {
    /// The platform's defaults (`default = true` in platform.toml).
    Defaults,
    All,
    Only(BTreeSet<String>),
}

impl EventFilter {
    pub fn wants(&self, platform: &Platform, event: &str) -> bool {
        match self {
            EventFilter::All => true,
            EventFilter::Only(names) => names.contains(event),
            // Events the platform does not list (a recording's custom ones) go through.
            // A request the platform reads the answer of (an inbound call, a function call) is
            // no subscription: a lifecycle that has one sends it.
            EventFilter::Defaults => platform
                .event(event)
                .is_none_or(|e| e.default || e.answer.is_some()),
        }
    }
}

/// One delivery of a call, ready to go.
#[derive(Clone, Debug)]
pub struct Planned {
    pub event: String,
    pub call_id: Option<String>,
    pub body: Bytes,
    /// When to send it, relative to the call's first event (for --realtime).
    pub offset: Duration,
    pub filtered: bool,
    /// The answer the platform reads, for a request that has one: a valid answer's values
    /// are carried into the call's later events.
    pub answer: Option<AnswerSpec>,
    /// A custom function's call: it goes to the function's URL.
    pub function: bool,
}

/// Renders every step of one call of `lifecycle`, in order.
pub fn plan_lifecycle(
    catalog: &Catalog,
    platform: &Platform,
    lifecycle: &Lifecycle,
    filter: &EventFilter,
    anchor: Anchor,
    rng: &mut impl rand::Rng,
) -> Result<Vec<Planned>, RenderError> {
    let call = Call::generate(
        catalog,
        platform,
        &CallPlan::for_lifecycle(platform, lifecycle, anchor),
        rng,
    )?;
    let mut planned = Vec::new();
    let mut first_ms = None;
    for step in &lifecycle.steps {
        let Some(event) = platform.event(&step.event) else {
            continue;
        };
        let turns: Vec<Option<usize>> = if step.per_turn {
            (0..call.turn_count()).map(Some).collect()
        } else {
            vec![None]
        };
        for turn in turns {
            let (body, call_id) = render_body(&call, platform, event, turn)?;
            let at_ms = call.moment_ms(event.at, turn);
            let first = *first_ms.get_or_insert(at_ms);
            planned.push(Planned {
                event: event.name.clone(),
                call_id,
                body: Bytes::from(body),
                offset: Duration::from_millis(at_ms.saturating_sub(first)),
                filtered: !filter.wants(platform, &event.name),
                answer: event.answer.as_deref().cloned(),
                function: event.function.is_some(),
            });
        }
    }
    Ok(planned)
}

/// One event's body and the call id in it (the platform's `call_id_fields`, as
/// `Platform::call_id_of` reads them). A JSON body is written as it renders, and the id
/// rendered from the template's node at its pointer: building the rendered value, then
/// serializing it, cost more than both.
fn render_body(
    call: &Call,
    platform: &Platform,
    event: &EventSpec,
    turn: Option<usize>,
) -> Result<(Vec<u8>, Option<String>), RenderError> {
    if platform.format != BodyFormat::Json {
        let value = call.render(event, turn)?;
        return Ok((platform.encode(&value), platform.call_id_of(&value)));
    }
    let template = event.template.value();
    let mut body = Vec::new();
    let call_id = call.render_with(event, turn, |layers| {
        template::render_json(template, layers, &mut body)?;
        call_id_in_template(platform, template, layers)
    })?;
    let call_id = match call_id {
        IdFrom::Template(id) => id,
        IdFrom::Body => platform.call_id_of(&serde_json::from_slice(&body).unwrap_or_default()),
    };
    Ok((body, call_id))
}

/// Where a rendered body's call id is found.
enum IdFrom {
    /// The template settles it: this id, or none.
    Template(Option<String>),
    /// A pointer runs into a placeholder, whose value may hold the id: read the body.
    Body,
}

/// The call id the rendered template holds, rendering only the nodes at the platform's
/// pointers, in order.
fn call_id_in_template(
    platform: &Platform,
    template: &Value,
    layers: &template::Layers,
) -> Result<IdFrom, String> {
    for pointer in &platform.call_id_fields {
        let node = match template::at(template, pointer) {
            At::Node(node) => node,
            At::Absent => continue,
            At::Placeholder => return Ok(IdFrom::Body),
        };
        match template::render(node, layers)? {
            Value::String(id) => return Ok(IdFrom::Template(Some(id))),
            Value::Number(id) => return Ok(IdFrom::Template(Some(id.to_string()))),
            _ => {}
        }
    }
    Ok(IdFrom::Template(None))
}

/// Where a call's deliveries come from.
pub enum Source {
    /// `calls` fresh calls of a lifecycle.
    Lifecycle {
        catalog: Arc<Catalog>,
        platform: usize,
        lifecycle: Lifecycle,
        filter: EventFilter,
        calls: usize,
        /// HOOKCLI_SEED: call N renders from seed + N, so calls differ yet repeat run to run.
        seed: Option<u64>,
    },
    /// Recorded bodies, replayed as one sequence.
    Recorded(Vec<Planned>),
}

impl Source {
    /// How many calls a recording holds: its distinct call ids, and one more for bodies
    /// that name none (at least one). `None` for a lifecycle, whose count is `calls`.
    pub fn recorded_calls(&self) -> Option<usize> {
        let Source::Recorded(planned) = self else {
            return None;
        };
        let ids: std::collections::HashSet<Option<&str>> =
            planned.iter().map(|p| p.call_id.as_deref()).collect();
        Some(ids.len().max(1))
    }
}

/// How deliveries of one call are spaced.
#[derive(Clone, Copy, Debug)]
pub enum Pacing {
    BackToBack,
    Gap(Duration),
    /// By the call's own timestamps, divided by the speed factor.
    Realtime {
        speed: f64,
    },
}

/// One completed (or filtered) delivery.
#[derive(Debug)]
pub struct Outcome {
    /// 0-based call index, and the delivery's place within its call.
    pub call: usize,
    pub seq: usize,
    pub event: String,
    pub call_id: Option<String>,
    /// `None` when filtered out.
    pub delivery: Option<Delivery>,
    /// The request as sent (or, in a dry run, as it would be); `None` when filtered out.
    pub request: Option<Request>,
    /// The call's last delivery: the call is done.
    pub last: bool,
}

/// Everything a run needs besides the source.
pub struct Settings {
    pub request: Request,
    /// Each event's policy: the platform's, its own rules, the user's flags.
    pub policies: EventPolicies,
    pub concurrency: usize,
    pub pacing: Pacing,
    /// Where function calls go and which of their answer's values become dynamic variables.
    pub functions: FunctionSettings,
    /// Send nothing: each delivery is taken as accepted at once (`delivery::dry_run`), and
    /// the pacing is skipped.
    pub dry_run: bool,
}

/// `replay --function-url URL --response-variable NAME=PATH`.
#[derive(Clone, Debug, Default)]
pub struct FunctionSettings {
    /// Function calls go here; without it, to the webhook URL.
    pub url: Option<reqwest::Url>,
    /// Dynamic variable name → JSON path into the answer. Empty: every top-level string,
    /// number or boolean of a JSON answer (assumed, for a demonstration without a config).
    pub response_variables: Vec<(String, String)>,
}

/// A call whose task died (a panic: a hookcli bug). Its remaining events were not sent; the
/// report names it instead of the whole run crashing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crashed {
    /// 0-based call index.
    pub call: usize,
    pub why: String,
}

/// Plays the source; every outcome is sent on `results` as it happens. Returns when all
/// calls are done, with the calls that crashed (none, unless hookcli has a bug).
pub async fn run(
    source: Source,
    settings: Settings,
    results: mpsc::UnboundedSender<Outcome>,
) -> Result<Vec<Crashed>, RenderError> {
    let settings = Arc::new(settings);
    let client = delivery::client();
    let mut calls = Calls::default();
    match source {
        Source::Recorded(planned) => {
            let (settings, results) = (settings.clone(), results.clone());
            calls.spawn(0, async move {
                play_call(0, planned, &settings, &client, &results).await;
                Ok(())
            });
        }
        Source::Lifecycle {
            catalog,
            platform,
            lifecycle,
            filter,
            calls: count,
            seed,
        } => {
            let gate = Arc::new(Semaphore::new(settings.concurrency.max(1)));
            let lifecycle = Arc::new(lifecycle);
            for index in 0..count {
                let permit = gate
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed");
                let (catalog, lifecycle, settings, client, results) = (
                    catalog.clone(),
                    lifecycle.clone(),
                    settings.clone(),
                    client.clone(),
                    results.clone(),
                );
                let filter = filter.clone();
                calls.spawn(index, async move {
                    let _permit = permit;
                    let platform = &catalog.platforms[platform];
                    let anchor = match settings.pacing {
                        Pacing::Realtime { .. } => Anchor::StartsAt(crate::signing::now_ms()),
                        _ => Anchor::EndsAt(crate::signing::now_ms()),
                    };
                    // Rendered when the call starts, so a thousand calls are never all in memory.
                    let planned = plan_lifecycle(
                        &catalog,
                        platform,
                        &lifecycle,
                        &filter,
                        anchor,
                        &mut crate::call::rng_from(seed.map(|s| s.wrapping_add(index as u64))),
                    )?;
                    play_call(index, planned, &settings, &client, &results).await;
                    Ok::<(), RenderError>(())
                });
                // Collect finished calls as we go so errors surface early.
                calls.collect_finished()?;
            }
        }
    }
    calls.finish().await
}

/// The running calls' tasks, by task id, so a task that dies is reported by its call.
#[derive(Default)]
struct Calls {
    tasks: tokio::task::JoinSet<Result<(), RenderError>>,
    index: std::collections::HashMap<tokio::task::Id, usize>,
    crashed: Vec<Crashed>,
}

impl Calls {
    fn spawn(
        &mut self,
        index: usize,
        call: impl std::future::Future<Output = Result<(), RenderError>> + Send + 'static,
    ) {
        let handle = self.tasks.spawn(call);
        self.index.insert(handle.id(), index);
    }

    fn collect_finished(&mut self) -> Result<(), RenderError> {
        while let Some(done) = self.tasks.try_join_next_with_id() {
            self.settle(done)?;
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<Vec<Crashed>, RenderError> {
        while let Some(done) = self.tasks.join_next_with_id().await {
            self.settle(done)?;
        }
        self.crashed.sort_by_key(|c| c.call);
        Ok(self.crashed)
    }

    fn settle(
        &mut self,
        done: Result<(tokio::task::Id, Result<(), RenderError>), tokio::task::JoinError>,
    ) -> Result<(), RenderError> {
        match done {
            Ok((id, result)) => {
                self.index.remove(&id);
                result
            }
            Err(error) => {
                let call = self.index.remove(&error.id()).unwrap_or_default();
                self.crashed.push(Crashed {
                    call,
                    why: crate::text::task_failure(error),
                });
                Ok(())
            }
        }
    }
}

/// Delivers one call's events in order. A failed event does not stop the next (the seeds:
/// "events fire in order but are non-blocking").
async fn play_call(
    index: usize,
    planned: Vec<Planned>,
    settings: &Settings,
    client: &reqwest::Client,
    results: &mpsc::UnboundedSender<Outcome>,
) {
    let started = Instant::now();
    let mut sent_any = false;
    let count = planned.len();
    // Valid answers so far, with the values they carry into later events.
    let mut carried: Vec<(AnswerSpec, Value)> = Vec::new();
    for (seq, item) in planned.into_iter().enumerate() {
        let mut sent = None;
        let delivery = if item.filtered {
            None
        } else {
            if !settings.dry_run {
                pace(settings.pacing, started, item.offset, sent_any).await;
            }
            sent_any = true;
            let policy = settings.policies.for_event(&item.event);
            let mut request = Request {
                body: with_carried(&carried, item.body.clone()),
                ..settings.request.clone()
            };
            if item.function
                && let Some(url) = &settings.functions.url
            {
                request.url = url.clone();
            }
            let delivery = if settings.dry_run {
                delivery::dry_run(&request, policy)
            } else {
                delivery::deliver(client, &request, policy).await
            };
            sent = Some(request);
            if let Some(spec) = &item.answer
                && let Some(value) = carried_value(spec, &delivery, item.function, settings)
            {
                carried.push((spec.clone(), value));
            }
            Some(delivery)
        };
        let last = seq + 1 == count;
        let _ = results.send(Outcome {
            call: index,
            seq,
            event: item.event,
            call_id: item.call_id,
            delivery,
            request: sent,
            last,
        });
    }
}

/// The values a valid answer carries into later events: the answer itself, or for a
/// function its response variables as string dynamic variables. `None` for an answer the
/// platform cannot use (it goes on without it).
fn carried_value(
    spec: &AnswerSpec,
    delivery: &Delivery,
    function: bool,
    settings: &Settings,
) -> Option<Value> {
    if !delivery.delivered() || spec.carry.is_empty() {
        return None;
    }
    let judged = crate::answer::judge(spec, &delivery.last().response_body);
    let valid = judged.valid();
    let json = judged.json.filter(|_| valid)?;
    if !function {
        return Some(json);
    }
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
        _ => None,
    };
    let variables: serde_json::Map<String, Value> = match &settings.functions.response_variables {
        paths if paths.is_empty() => json
            .as_object()?
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), Value::String(text(v)?))))
            .collect(),
        paths => paths
            .iter()
            .filter_map(|(name, path)| {
                let found = json.pointer(&crate::answer::json_path_pointer(path))?;
                Some((name.clone(), Value::String(text(found)?)))
            })
            .collect(),
    };
    Some(Value::Object(variables))
}

/// A later event's body with the answers' values carried in.
fn with_carried(carried: &[(AnswerSpec, Value)], body: Bytes) -> Bytes {
    if carried.is_empty() {
        return body;
    }
    let Ok(mut value) = serde_json::from_slice::<Value>(&body) else {
        return body;
    };
    let mut changed = 0;
    for (spec, answer) in carried {
        changed += crate::answer::carry(spec, answer, &mut value);
    }
    if changed == 0 {
        return body;
    }
    Bytes::from(serde_json::to_vec(&value).unwrap_or_default())
}

async fn pace(pacing: Pacing, started: Instant, offset: Duration, sent_any: bool) {
    match pacing {
        Pacing::BackToBack => {}
        Pacing::Gap(gap) => {
            if sent_any && !gap.is_zero() {
                tokio::time::sleep(gap).await;
            }
        }
        Pacing::Realtime { speed } => {
            // Checked: a tiny speed or a recording spanning years must not overflow the clock.
            let wait =
                Duration::try_from_secs_f64(offset.as_secs_f64() / speed).unwrap_or(Duration::MAX);
            match started.checked_add(wait) {
                Some(due) => tokio::time::sleep_until(due.into()).await,
                None => std::future::pending::<()>().await,
            }
        }
    }
}

/// One line of a recording that could not be used (line 0: the file as a whole).
#[derive(Debug)]
pub struct RecordingError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for RecordingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            0 => write!(f, "{}: {}", self.file, self.message),
            line => write!(f, "{}, line {line}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for RecordingError {}

/// A recorded request `replay --from` leaves out: it was not a webhook delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// 1-based line in the file.
    pub line: usize,
    /// What it was: `a GET to /webhook`, `a POST to /health, not the webhook path`.
    pub what: String,
}

/// A recording's deliveries, and what was left out of it.
#[derive(Debug)]
pub struct Recording {
    pub planned: Vec<Planned>,
    /// Recorded requests that were not webhook deliveries (a GET, another path).
    pub skipped: Vec<Skipped>,
    /// Webhook deliveries listen itself refused (a bad signature, a body that is not JSON),
    /// left out unless `--include-rejected`.
    pub rejected: Vec<Skipped>,
    /// Lines of bodies refused as too large: listen kept only their size.
    pub too_large: Vec<usize>,
    /// Lines cut short (a record write that did not finish).
    pub torn: Vec<usize>,
}

impl Recording {
    /// How many of each were left out, for the summary.
    pub fn left_out(&self) -> LeftOut {
        LeftOut {
            too_large: self.too_large.len() as u64,
            torn: self.torn.len() as u64,
            rejected: self.rejected.len() as u64,
            not_deliveries: self.skipped.len() as u64,
        }
    }
}

/// What `replay --from` left out of a recording, by why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeftOut {
    pub too_large: u64,
    pub torn: u64,
    pub rejected: u64,
    pub not_deliveries: u64,
}

impl LeftOut {
    pub fn total(&self) -> u64 {
        self.too_large + self.torn + self.rejected + self.not_deliveries
    }
}

/// How `replay --from` reads a recording.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reading {
    /// Re-send the deliveries listen refused too (`--include-rejected`).
    pub include_rejected: bool,
}

/// Reads a recording into deliveries, in order, spaced by the recorded arrival times. The
/// text is `listen --record` lines or bodies, one per line, pretty-printed, concatenated or
/// in a JSON array (see [`crate::recording::entries`]). Left out, and counted: requests
/// that were not webhook deliveries, bodies refused as too large (not recorded), torn lines,
/// and deliveries listen rejected itself (unless [`Reading::include_rejected`]). A delivery
/// relayed to an app (`listen --forward-to`) was answered by the app, whatever it said: it
/// is replayed.
pub fn plan_recording(
    text: &str,
    file: &str,
    platform: &Platform,
    filter: &EventFilter,
    reading: Reading,
) -> Result<Recording, RecordingError> {
    let mut recording = Recording {
        planned: Vec::new(),
        skipped: Vec::new(),
        rejected: Vec::new(),
        too_large: Vec::new(),
        torn: Vec::new(),
    };
    let mut first_ms: Option<u64> = None;
    for entry in crate::recording::entries(text, file)? {
        let (line, value) = match entry {
            crate::recording::Entry::Torn { line } => {
                recording.torn.push(line);
                continue;
            }
            crate::recording::Entry::Value { line, value } => (line, value),
        };
        let fail = |message: String| RecordingError {
            file: file.to_string(),
            line,
            message,
        };
        if is_too_large(&value) {
            recording.too_large.push(line);
            continue;
        }
        if let Some(what) = not_a_delivery(&value) {
            recording.skipped.push(Skipped { line, what });
            continue;
        }
        let (body, time_ms, parsed) = match recorded_body(&value).map_err(fail)? {
            Some((body, time_ms)) => {
                let parsed = platform.decode(&body).ok();
                (body, time_ms, parsed)
            }
            // A bare body, as `hookcli show` prints it: JSON, put in the platform's format.
            None => (
                Bytes::from(platform.encode(&value)),
                None,
                Some(value.clone()),
            ),
        };
        if let Some(what) = rejected_by_listen(&value, parsed.is_some())
            && !reading.include_rejected
        {
            recording.rejected.push(Skipped { line, what });
            continue;
        }
        // With --include-rejected a body that is not JSON goes out as it was, a `custom` one.
        let parsed = parsed.unwrap_or(Value::Null);
        // The same word as `send --data` for a body that names no event.
        let event = platform
            .event_of(&parsed)
            .unwrap_or_else(|| "custom".into());
        let call_id = platform.call_id_of(&parsed);
        let offset = match (time_ms, *first_ms.get_or_insert(time_ms.unwrap_or(0))) {
            (Some(t), first) => Duration::from_millis(t.saturating_sub(first)),
            (None, _) => Duration::ZERO,
        };
        let filtered = !filter.wants(platform, &event);
        let spec = platform.event(&event);
        recording.planned.push(Planned {
            answer: spec.and_then(|e| e.answer.as_deref().cloned()),
            function: spec.is_some_and(|e| e.function.is_some()),
            event,
            call_id,
            body,
            offset,
            filtered,
        });
    }
    if recording.planned.is_empty() {
        return Err(RecordingError {
            file: file.to_string(),
            line: 0,
            message: nothing_to_replay(&recording),
        });
    }
    Ok(recording)
}

/// Why a recording with nothing to send has nothing: what it did hold.
fn nothing_to_replay(recording: &Recording) -> String {
    let mut held = Vec::new();
    if !recording.rejected.is_empty() {
        held.push(format!(
            "{} rejected by listen ({}; --include-rejected replays them)",
            recording.rejected.len(),
            skipped_list(&recording.rejected)
        ));
    }
    if !recording.skipped.is_empty() {
        held.push(skipped_list(&recording.skipped));
    }
    if !recording.too_large.is_empty() {
        held.push(format!(
            "{} {} refused as too large, so not recorded (line {})",
            recording.too_large.len(),
            plural(recording.too_large.len(), "body", "bodies"),
            line_list(&recording.too_large)
        ));
    }
    if !recording.torn.is_empty() {
        held.push(format!(
            "{} torn {} (line {})",
            recording.torn.len(),
            plural(recording.torn.len(), "entry", "entries"),
            line_list(&recording.torn)
        ));
    }
    match held.is_empty() {
        true => "holds no requests".to_string(),
        false => format!("holds no webhook deliveries, only {}", held.join(", ")),
    }
}

/// A body listen refused for its size: only its size is in the record.
fn is_too_large(value: &Value) -> bool {
    value.get("headers").is_some() && value.get("rejected").is_some_and(|r| r == "too_large")
}

/// Why listen itself refused a recorded delivery, or `None`: its verdict was a bad signature,
/// or the body was not in the platform's format. A relayed delivery (`forwarded`) was
/// answered by the app, not judged by listen: it is never listen's rejection, whatever the
/// app said. Bare bodies (no `headers`) and records from before `verdict` carry no verdict.
fn rejected_by_listen(value: &Value, readable: bool) -> Option<String> {
    if value.get("headers").is_none() || value.get("forwarded").is_some() {
        return None;
    }
    let verdict = value.get("verdict").and_then(Value::as_str);
    if let Some(word @ ("invalid" | "stale" | "missing" | "malformed")) = verdict {
        return Some(format!("a bad signature ({word})"));
    }
    (!readable).then(|| "a body that is not JSON".to_string())
}

/// `a GET to /webhook (line 3), a POST to /health, not the webhook path (line 4)`: the
/// first few.
pub fn skipped_list(skipped: &[Skipped]) -> String {
    const SHOWN: usize = 5;
    let mut parts: Vec<String> = skipped
        .iter()
        .take(SHOWN)
        .map(|s| format!("{} (line {})", s.what, s.line))
        .collect();
    if skipped.len() > SHOWN {
        parts.push(format!("and {} more", skipped.len() - SHOWN));
    }
    parts.join(", ")
}

/// Why a `listen --record` line is not a webhook delivery, or `None` when it is one (a bare
/// body line always is). listen records every request: a GET it answered 405 and a POST to
/// another path it answered 404 are in the file too, but no platform sent them.
fn not_a_delivery(value: &Value) -> Option<String> {
    value.get("headers")?;
    let method = value.get("method").and_then(Value::as_str)?;
    let path = value.get("path").and_then(Value::as_str).unwrap_or("?");
    if !method.eq_ignore_ascii_case("POST") {
        return Some(format!("a {method} to {path}"));
    }
    // Refused before its body was all read: the platform sends it again, and the body is
    // not in the record.
    if let Some(why) = value.get("rejected").and_then(Value::as_str) {
        return Some(format!("a POST refused unread ({})", why.replace('_', " ")));
    }
    // Records from before the `webhook` key have no way to tell: they are replayed.
    (value.get("webhook").and_then(Value::as_bool) == Some(false))
        .then(|| format!("a POST to {path}, not the webhook path"))
}

/// A record line's exact body bytes and arrival time; `None` for a bare body.
fn recorded_body(value: &Value) -> Result<Option<(Bytes, Option<u64>)>, String> {
    let is_record = value.get("headers").is_some()
        && (value.get("body").is_some() || value.get("body_base64").is_some());
    if !is_record {
        return Ok(None);
    }
    let time_ms = value.get("time_ms").and_then(Value::as_u64);
    if let Some(body) = value.get("body").and_then(Value::as_str) {
        return Ok(Some((Bytes::from(body.to_string()), time_ms)));
    }
    use base64::Engine;
    let encoded = value
        .get("body_base64")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| "body_base64 is not base64".to_string())?;
    Ok(Some((Bytes::from(bytes), time_ms)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call id that a placeholder's value carries is not in the template: it is read from
    /// the rendered body.
    #[test]
    fn a_call_id_inside_a_placeholders_value_is_read_from_the_body() {
        let catalog = Catalog::load(None).expect("the built-in catalog loads");
        let platform = catalog.platform("uponai").expect("uponai is built in");
        let mut lifecycle = platform.lifecycles[0].clone();
        let call_object = serde_json::json!({"call_id": "from-a-variable"});
        lifecycle.vars.insert("call_object".into(), call_object);
        let mut event = platform.event("call_started").expect("an event").clone();
        event.template = crate::catalog::Template::new(
            serde_json::json!({"event": "call_started", "call": "{{call_object}}"}),
        );
        let plan = CallPlan::for_lifecycle(platform, &lifecycle, Anchor::EndsAt(1_780_000_000_000));
        let mut rng = crate::call::rng_from(Some(7));
        let call = Call::generate(&catalog, platform, &plan, &mut rng).expect("renders");
        let (body, call_id) = render_body(&call, platform, &event, None).expect("renders");
        assert_eq!(call_id.as_deref(), Some("from-a-variable"));
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"event":"call_started","call":{"call_id":"from-a-variable"}}"#
        );
    }

    /// Every event of every built-in lifecycle: the body written as it renders is the
    /// rendered value encoded, and its call id is the one the value holds.
    #[test]
    fn bodies_written_as_they_render_match_the_rendered_values() {
        let catalog = Catalog::load(None).expect("the built-in catalog loads");
        for platform in &catalog.platforms {
            for lifecycle in &platform.lifecycles {
                let plan =
                    CallPlan::for_lifecycle(platform, lifecycle, Anchor::EndsAt(1_780_000_000_000));
                let mut rng = crate::call::rng_from(Some(7));
                let call = Call::generate(&catalog, platform, &plan, &mut rng).expect("renders");
                for step in &lifecycle.steps {
                    let event = platform
                        .event(&step.event)
                        .expect("a lifecycle names its events");
                    let turns = if step.per_turn {
                        vec![Some(0), Some(1)]
                    } else {
                        vec![None]
                    };
                    for turn in turns {
                        let value = call.render(event, turn).expect("renders");
                        let (body, call_id) =
                            render_body(&call, platform, event, turn).expect("renders");
                        let what = format!("{} {} {:?}", platform.id, event.name, turn);
                        assert_eq!(body, platform.encode(&value), "{what}");
                        assert_eq!(call_id, platform.call_id_of(&value), "{what}");
                    }
                }
            }
        }
    }

    #[tokio::test]
    async fn a_call_whose_task_panics_is_reported_by_its_index_and_the_others_finish() {
        let mut calls = Calls::default();
        let (tx, mut rx) = mpsc::unbounded_channel();
        for index in 0..3 {
            let tx = tx.clone();
            calls.spawn(index, async move {
                if index == 1 {
                    panic!("an index out of range");
                }
                let _ = tx.send(index);
                Ok(())
            });
        }
        drop(tx);
        let crashed = calls.finish().await.expect("no render error");
        assert_eq!(
            crashed,
            [Crashed {
                call: 1,
                why: "it panicked: an index out of range".into()
            }]
        );
        let mut finished = Vec::new();
        while let Some(index) = rx.recv().await {
            finished.push(index);
        }
        finished.sort();
        assert_eq!(finished, [0, 2]);
    }
}
