//! Every `--json` output as a `Serialize` struct, in one place. Each has a JSON Schema under
//! schemas/ (tests/schemas.rs validates real output against it). Keys are stable: new keys
//! may be added, none removed or renamed without a CHANGELOG entry.
//!
//! The convention for streams of objects (replay, check): every object says what it is in a
//! `type` key (`delivery`, `case`, `summary`), so a reader can dispatch on it line by line.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::catalog::{Lifecycle, Moment, Platform};
use crate::delivery::{Attempt, ErrorKind};
use crate::receiver::Received;
use crate::signing::Verdict;

/// One JSON line: the object, compact, without its `\n`.
pub fn line(value: &impl Serialize) -> String {
    // A struct of strings, numbers and vectors always serializes.
    serde_json::to_string(value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// Milliseconds with one decimal, as every latency in the JSON outputs.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// One delivery: `send --json`'s object, and each delivery line of `replay --json`.
#[derive(Serialize)]
pub struct DeliveryJson<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub platform: &'a str,
    pub event: &'a str,
    pub url: &'a str,
    pub call_id: Option<&'a str>,
    pub expect: String,
    pub delivered: bool,
    /// delivered, failed, unreachable, or (replay) filtered.
    pub outcome: &'static str,
    pub status: Option<u16>,
    pub attempts: Vec<AttemptJson<'a>>,
    /// What the text output says after the verdict as `warning:` lines.
    pub warnings: Vec<String>,
    /// send without `--to`: what the built-in receiver saw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiver: Option<Vec<ReceivedJson<'a>>>,
    /// replay: the call (1-based) and the delivery's place in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<usize>,
    /// send, for an event whose answer the platform reads: the answer, judged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<ResponseJson<'a>>,
    /// A failed delivery: a command that sends the same body again (never a key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reproduce: Option<String>,
    /// A failed delivery: the first 1 KB of the last answer's body, when it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
}

/// The answer a platform reads (an inbound call's routing, a function's result), judged.
#[derive(Serialize)]
pub struct ResponseJson<'a> {
    pub status: Option<u16>,
    pub content_type: Option<String>,
    pub body: String,
    /// The platform can use it: JSON (or text for a function), in the schema, under the cap.
    pub valid: bool,
    pub errors: &'a [crate::answer::Problem],
    /// The last attempt's latency.
    pub ms: f64,
    /// Its length in Unicode scalar values, as the cap counts.
    pub chars: usize,
    /// What the platform does with a valid answer; null when invalid.
    pub effect: Option<&'a str>,
    /// Function calls: how long the caller waited in silence, every attempt and wait.
    pub waited_ms: Option<f64>,
}

#[derive(Serialize)]
pub struct AttemptJson<'a> {
    pub n: u32,
    pub status: Option<u16>,
    pub ms: f64,
    pub error: Option<&'static str>,
    pub location: Option<&'a str>,
    /// Sent again on a fresh connection after a kept-alive one turned out closed.
    pub reconnected: bool,
}

impl<'a> AttemptJson<'a> {
    pub fn of(attempt: &'a Attempt) -> Self {
        AttemptJson {
            n: attempt.n,
            status: attempt.status,
            ms: ms(attempt.latency),
            error: attempt.error.map(ErrorKind::word),
            location: attempt.location.as_deref(),
            reconnected: attempt.reconnected,
        }
    }
}

/// One request a receiver got: `listen --json`, and send's `receiver` list.
#[derive(Serialize)]
pub struct ReceivedJson<'a> {
    pub n: u64,
    pub time: String,
    pub method: &'a str,
    pub path: &'a str,
    pub event: Option<&'a str>,
    pub call_id: Option<&'a str>,
    pub verdict: &'static str,
    pub reason: Option<String>,
    /// The status answered; null when the connection was closed unanswered.
    pub status: Option<u16>,
    pub bytes: u64,
    pub duplicate_of: Option<u64>,
    /// With `listen --forward-to`: what the app answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forwarded: Option<ForwardedJson<'a>>,
}

#[derive(Serialize)]
pub struct ForwardedJson<'a> {
    /// The app's status; null when it gave no answer (502 or 504 went back).
    pub status: Option<u16>,
    pub ms: u64,
    pub error: Option<&'a str>,
}

impl<'a> ReceivedJson<'a> {
    pub fn of(received: &'a Received) -> Self {
        ReceivedJson {
            n: received.n,
            time: crate::text::iso_millis(received.at),
            method: &received.method,
            path: &received.path,
            event: received.event.as_deref(),
            call_id: received.call_id.as_deref(),
            verdict: received.verdict.word(),
            reason: match &received.verdict {
                Verdict::Stale { .. } | Verdict::Malformed(_) => Some(received.verdict.to_string()),
                _ => received.note.clone(),
            },
            status: received.answered,
            bytes: received.size(),
            duplicate_of: received.duplicate_of,
            forwarded: received.forwarded.as_ref().map(|f| ForwardedJson {
                status: f.status,
                ms: f.took.as_millis() as u64,
                error: f.failure.as_deref(),
            }),
        }
    }
}

/// `send --dry-run --json`: the request as it would go out.
#[derive(Serialize)]
pub struct DryRunJson<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub headers: serde_json::Map<String, serde_json::Value>,
    /// The exact bytes as a string (a JSON body is UTF-8): re-serialized, a --data body
    /// would no longer be the bytes the signature covers.
    pub body: String,
    /// `check --dry-run`: the case that would send it; `replay --dry-run`: its call's number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case: Option<&'a str>,
}

impl<'a> DryRunJson<'a> {
    /// `headers` as they would go out (masked by the caller), the body's bytes as text.
    pub fn new(
        method: &'a str,
        url: &'a str,
        headers: &reqwest::header::HeaderMap,
        body: &[u8],
        case: Option<&'a str>,
    ) -> Self {
        DryRunJson {
            method,
            url,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
                .collect(),
            body: String::from_utf8_lossy(body).into_owned(),
            case,
        }
    }
}

/// replay's last line.
#[derive(Serialize)]
pub struct ReplaySummaryJson {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub calls: usize,
    pub calls_finished: usize,
    pub deliveries: u64,
    pub delivered: u64,
    pub failed: u64,
    pub unreachable: u64,
    pub filtered: u64,
    pub slowest_ms: Option<f64>,
    pub elapsed_ms: u64,
    pub crashed: u64,
    pub interrupted: bool,
    /// With --from only: what the recording held that was not replayed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<SkippedJson>,
}

/// replay --from's summary: entries of the recording left out, by why.
#[derive(Serialize)]
pub struct SkippedJson {
    pub too_large: u64,
    pub torn: u64,
    pub rejected: u64,
    pub not_deliveries: u64,
}

/// One check case's result.
#[derive(Serialize)]
pub struct CheckCaseJson<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub case: &'a str,
    pub severity: &'static str,
    pub result: &'static str,
    pub statuses: &'a [u16],
    pub latency_ms: Option<f64>,
    pub reason: Option<&'a str>,
    pub requests: usize,
    /// A command that reproduces the failure (`hookcli send ...`); null when passed or when no
    /// send can make the request (a forged signature).
    pub reproduce: Option<&'a str>,
    /// The first 1 KB of the failed request's answer body; null when there was none.
    pub response: Option<&'a str>,
    /// The root cause shared with other failures (summary `root_causes`); null for none.
    pub cause: Option<&'a str>,
}

/// check's last line: counts and the exit code.
#[derive(Serialize)]
pub struct CheckSummaryJson<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub platform: &'a str,
    pub url: &'a str,
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    pub warnings: usize,
    pub skipped: usize,
    pub seconds: f64,
    pub receiver: &'static str,
    pub interrupted: bool,
    pub exit_code: u8,
    /// Failures that share one root cause: an event that got no answer in its delivers/* case.
    pub root_causes: Vec<RootCauseJson<'a>>,
}

/// One root cause and the cases that failed for it.
#[derive(Serialize)]
pub struct RootCauseJson<'a> {
    /// `call_ended timed out after 10s (see delivers/call_ended)`.
    pub cause: &'a str,
    pub cases: Vec<&'a str>,
}

/// `check --list --json`: one line per case.
#[derive(Serialize)]
pub struct CheckListJson<'a> {
    pub case: &'a str,
    pub severity: &'static str,
    pub checks: &'a str,
}

/// `platforms --json`: one line per platform.
#[derive(Serialize)]
pub struct PlatformJson<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub aliases: &'a [String],
    pub events: Vec<&'a str>,
    pub timeout_ms: u64,
    pub retries: u32,
    pub backoff_ms: u64,
    pub success: String,
    /// The signature header, or null for a platform that does not sign.
    pub signing: Option<&'a str>,
    pub assumed: &'a [String],
}

impl<'a> PlatformJson<'a> {
    pub fn of(p: &'a Platform) -> Self {
        PlatformJson {
            id: &p.id,
            name: &p.name,
            aliases: &p.aliases,
            events: p.event_names(),
            timeout_ms: p.policy.timeout.as_millis() as u64,
            retries: p.policy.retries,
            backoff_ms: p.policy.backoff.as_millis() as u64,
            success: p.policy.success.to_string(),
            signing: p.signing.as_ref().map(|s| s.header.as_str()),
            assumed: &p.assumed,
        }
    }
}

/// `events --json`: one line per event.
#[derive(Serialize)]
pub struct EventJson<'a> {
    pub platform: &'a str,
    pub event: &'a str,
    pub at: &'static str,
    pub default: bool,
    pub description: &'a str,
}

/// `lifecycles --json`: one line per lifecycle.
#[derive(Serialize)]
pub struct LifecycleJson<'a> {
    pub platform: &'a str,
    pub lifecycle: &'a str,
    pub description: &'a str,
    pub steps: Vec<StepJson<'a>>,
}

#[derive(Serialize)]
pub struct StepJson<'a> {
    pub event: &'a str,
    pub per_turn: bool,
}

impl<'a> LifecycleJson<'a> {
    pub fn of(platform: &'a Platform, l: &'a Lifecycle) -> Self {
        LifecycleJson {
            platform: &platform.id,
            lifecycle: &l.name,
            description: &l.description,
            steps: l
                .steps
                .iter()
                .map(|s| StepJson {
                    event: &s.event,
                    per_turn: s.per_turn,
                })
                .collect(),
        }
    }
}

/// `load --json` (schemas/load-report.schema.json), and what `load merge` reads back.
#[derive(Serialize, serde::Deserialize, Debug, Clone)]
pub struct LoadReportJson {
    pub platform: String,
    pub event: Option<String>,
    pub lifecycle: Option<String>,
    pub url: String,
    pub connections: u32,
    pub requested: Requested,
    pub timeout_ms: f64,
    pub retries: u32,
    pub rule: String,
    pub interrupted: bool,
    pub elapsed_ms: f64,
    pub deliveries: u64,
    pub requests: u64,
    pub retried: u64,
    pub deliveries_per_second: f64,
    pub requests_per_second: f64,
    pub succeeded: u64,
    pub failed: u64,
    pub unfinished: u64,
    pub success_statuses: BTreeMap<String, u64>,
    /// In FailKind::ALL's order: status, timeout, connect, reset.
    pub failures: serde_json::Map<String, serde_json::Value>,
    pub failure_statuses: BTreeMap<String, u64>,
    /// min, mean, p50, p90, p99, p99_9, max; null when nothing was answered.
    pub latency_ms: Option<serde_json::Map<String, serde_json::Value>>,
    pub platform_timeout_ms: f64,
    pub platform_timeouts: u64,
    pub reconnected: u64,
    /// When the load started and ended, RFC 3339 UTC with milliseconds.
    pub started_at: String,
    pub ended_at: String,
    /// The latency histogram (microseconds), HdrHistogram V2 + DEFLATE, base64.
    pub latency_histogram: String,
    /// The hookcli version that wrote it: `load merge` merges reports of its own version.
    pub version: String,
    /// How many load runs it covers: 1, or how many `load merge` combined.
    pub reports: u64,
}

#[derive(Serialize, serde::Deserialize, Debug, Clone)]
pub struct Requested {
    pub count: Option<u64>,
    pub duration_ms: Option<f64>,
    pub rate: Option<f64>,
}

/// The word for a moment of a call, as `events` shows it (table and JSON).
pub fn moment_word(at: Moment) -> &'static str {
    match at {
        Moment::Dial => "dialing",
        Moment::Ring => "ringing",
        Moment::Start => "start",
        Moment::Turn => "each turn",
        Moment::Transfer => "transfer",
        Moment::Bridged => "transfer bridged",
        Moment::End => "end",
        Moment::Analyzed => "after the call",
    }
}

/// `llm --json`: one line per turn of every call.
#[derive(Serialize)]
pub struct LlmTurnJson<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub call: usize,
    pub call_id: &'a str,
    pub scenario: &'a str,
    pub turn: usize,
    pub ask: &'static str,
    pub response_id: Option<u64>,
    pub user: &'a str,
    pub agent: &'a str,
    pub first_chunk_ms: Option<f64>,
    pub complete_ms: Option<f64>,
    pub chunks: usize,
    pub end_call: bool,
    pub transfer_number: Option<&'a str>,
    pub tool_calls: &'a [String],
    pub interrupted: bool,
    pub error: Option<&'a str>,
}

/// `llm --json`: one line per protocol case.
#[derive(Serialize)]
pub struct LlmCaseJson<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub case: &'a str,
    pub result: &'static str,
    pub reason: Option<&'a str>,
}

/// `llm --json`'s last line.
#[derive(Serialize)]
pub struct LlmSummaryJson<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub platform: &'a str,
    pub url: &'a str,
    pub calls: usize,
    pub turns: usize,
    pub first_chunk_p50_ms: Option<f64>,
    pub first_chunk_p95_ms: Option<f64>,
    pub complete_p50_ms: Option<f64>,
    pub complete_p95_ms: Option<f64>,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub seconds: f64,
    pub interrupted: bool,
    pub exit_code: u8,
}

/// `llm --list --json`: one line per case.
#[derive(Serialize)]
pub struct LlmListJson<'a> {
    pub case: &'a str,
    pub checks: &'a str,
}
