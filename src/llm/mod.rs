//! `hookcli llm`: play a voice platform against a developer's custom-LLM server. UponAI
//! (Retell) speaks a WebSocket (`ws`), Vapi and ElevenLabs an OpenAI-compatible SSE stream
//! (`sse`); `serve` is a scripted server for both. Calls are recorded as [`CallLog`]s, which
//! the protocol cases (`cases`) judge. Nothing here prints.

pub mod cases;
pub mod script;
pub mod serve;
pub mod sse;
pub mod ws;

use std::time::Duration;

use serde_json::Value;

pub use script::{Protocol, ProtocolKind, Script, ScriptError};

/// How a call is played: deadlines and the platform's timings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// A response's first chunk must come within this of the request, and its
    /// content_complete within this of the first chunk. For SSE, the first token's deadline.
    pub timeout: Duration,
    /// The platform's ping_pong period (2 s).
    pub ping_interval: Duration,
    /// How long a ping may go unechoed before the platform closes and reconnects (5 s).
    pub ping_timeout: Duration,
    /// The silence before reminder_required, when set; otherwise the server's
    /// update_agent reminder_trigger_ms, or Retell's default of 10 s.
    pub silence: Option<Duration>,
    /// Vapi's request fields (`call`, `metadata`, ...).
    pub call_fields: bool,
    /// `-H`: on the WebSocket handshake, or on every /chat/completions request.
    pub headers: reqwest::header::HeaderMap,
    /// Cancelled at Ctrl-C: calls stop where they are, close, and keep what they saw.
    pub stop: tokio_util::sync::CancellationToken,
}

/// The error of a turn cut off by Ctrl-C.
pub const INTERRUPTED: &str = "interrupted (Ctrl-C)";

/// Retell's default reminder_trigger_ms.
pub const DEFAULT_SILENCE: Duration = Duration::from_secs(10);

/// What a turn asked of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    Greeting,
    Response,
    Reminder,
}

impl Ask {
    pub fn word(self) -> &'static str {
        match self {
            Ask::Greeting => "greeting",
            Ask::Response => "response",
            Ask::Reminder => "reminder",
        }
    }
}

/// One response of the agent, as the platform measured it.
#[derive(Debug, Clone)]
pub struct Turn {
    pub ask: Ask,
    pub response_id: Option<u64>,
    /// What the user said before it ("" for the greeting and a reminder).
    pub user: String,
    /// The content of its chunks, joined.
    pub agent: String,
    /// From the request (or, for the greeting, the connection) to the first chunk.
    pub first_chunk: Option<Duration>,
    /// From the request to content_complete (SSE: `[DONE]`).
    pub complete: Option<Duration>,
    pub chunks: usize,
    pub end_call: bool,
    pub transfer_number: Option<String>,
    /// Tool calls, as the transcript shows them: `name(arguments) = result`.
    pub tool_calls: Vec<String>,
    /// The user talked over it: a newer response_required came before it completed.
    pub interrupted: bool,
    /// Why the turn did not finish, when it did not.
    pub error: Option<String>,
}

impl Turn {
    pub fn new(ask: Ask, response_id: Option<u64>, user: &str) -> Turn {
        Turn {
            ask,
            response_id,
            user: user.to_string(),
            agent: String::new(),
            first_chunk: None,
            complete: None,
            chunks: 0,
            end_call: false,
            transfer_number: None,
            tool_calls: Vec::new(),
            interrupted: false,
            error: None,
        }
    }
}

/// One frame the server sent that the platform could not use.
#[derive(Debug, Clone)]
pub struct Malformed {
    pub frame: String,
    pub why: String,
}

/// Everything one call saw, for the cases to judge.
#[derive(Debug, Clone, Default)]
pub struct CallLog {
    pub scenario: String,
    pub call_id: String,
    pub url: String,
    /// The server's config frame, when it sent one.
    pub config: Option<Value>,
    pub turns: Vec<Turn>,
    pub pings_sent: usize,
    pub pings_echoed: usize,
    /// The longest a ping waited for its echo (or had waited when the call ended).
    pub ping_worst: Option<Duration>,
    /// A ping that went unechoed past the ping timeout.
    pub ping_missed: bool,
    pub malformed: Vec<Malformed>,
    /// Chunks for a response_id the platform never asked for.
    pub unasked: Vec<u64>,
    /// Chunks of a response the platform had discarded (a newer response_required was sent)
    /// that came after the newer response began, or later than `ws::IN_FLIGHT`.
    pub wasted: Vec<(u64, usize)>,
    /// content_complete more than once for one response_id.
    pub double_complete: Vec<u64>,
    /// Chunks after a response's content_complete.
    pub after_complete: Vec<u64>,
    /// Tool-call frames that are not well formed.
    pub bad_tool_frames: Vec<String>,
    pub tool_frames: usize,
    /// update_agent frames, and what was wrong with them.
    pub agent_updates: usize,
    pub bad_agent_updates: Vec<String>,
    /// The server's close code, when it closed the connection; `None` when hookcli did.
    pub server_close: Option<u16>,
    /// The connection ended without a close frame (reset, or the server's process died).
    pub dropped: bool,
    /// How the call ended: "end_call", "transfer", "hangup" (hookcli closed after the
    /// script), or the server's closing.
    pub ended_by: String,
    /// SSE: streams that did not end with `data: [DONE]`, and HTTP problems.
    pub no_done: usize,
    pub http_errors: Vec<String>,
    /// Ctrl-C cut the call short.
    pub interrupted: bool,
}

/// A call that could not be played at all.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Nothing answered at the address: refused, DNS, TLS, a failed handshake.
    #[error("{0}")]
    Unreachable(String),
    /// Ctrl-C came before it connected.
    #[error("interrupted before the call began")]
    Interrupted,
}

/// Latency percentiles of some turns, in an HDR histogram (microseconds, 3 digits).
pub fn percentiles(values: &[Duration], quantiles: &[f64]) -> Vec<Option<Duration>> {
    // 1 µs to an hour, 3 significant digits.
    let mut histogram = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)
        .expect("the bounds are valid");
    for v in values {
        histogram.saturating_record(v.as_micros().max(1) as u64);
    }
    quantiles
        .iter()
        .map(|q| {
            (!values.is_empty()).then(|| Duration::from_micros(histogram.value_at_quantile(*q)))
        })
        .collect()
}

/// The user's words with a caller's name in place of the conversation's placeholders.
pub fn fill_caller(text: &str, first: &str, last: &str) -> String {
    text.replace("{{caller_first_name}}", first)
        .replace("{{caller_last_name}}", last)
        .replace(
            "{{caller_email}}",
            &format!("{}.{}@example.com", first, last).to_lowercase(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_nothing_are_none_and_of_one_value_that_value() {
        assert_eq!(percentiles(&[], &[0.5]), vec![None]);
        let one = percentiles(&[Duration::from_millis(12)], &[0.5, 0.95]);
        for p in one {
            let ms = p.unwrap().as_secs_f64() * 1000.0;
            assert!((ms - 12.0).abs() < 0.1, "{ms}");
        }
    }
}

/// A whole run: the calls played and the cases judged.
#[derive(Debug)]
pub struct Report {
    pub platform: String,
    pub url: String,
    pub logs: Vec<CallLog>,
    pub results: Vec<cases::CaseResult>,
    pub elapsed: Duration,
    /// Ctrl-C stopped the run: this is the report so far.
    pub interrupted: bool,
}

impl Report {
    pub fn count(&self, outcome: cases::Outcome) -> usize {
        self.results.iter().filter(|r| r.result == outcome).count()
    }

    /// The calls that played a conversation.
    pub fn conversations(&self) -> impl Iterator<Item = &CallLog> {
        self.logs
            .iter()
            .filter(|l| l.scenario == cases::CONVERSATION)
    }

    /// Every turn of every call.
    pub fn turns(&self) -> impl Iterator<Item = &Turn> {
        self.logs.iter().flat_map(|l| &l.turns)
    }

    /// p50 and p95 of the conversation turns' first chunks, and of their completions (of
    /// every turn when no conversation was played).
    pub fn latencies(&self) -> [Option<Duration>; 4] {
        let turns: Vec<&Turn> = if self.conversations().next().is_some() {
            self.conversations().flat_map(|l| &l.turns).collect()
        } else {
            self.turns().collect()
        };
        let first: Vec<Duration> = turns.iter().filter_map(|t| t.first_chunk).collect();
        let complete: Vec<Duration> = turns.iter().filter_map(|t| t.complete).collect();
        let f = percentiles(&first, &[0.5, 0.95]);
        let c = percentiles(&complete, &[0.5, 0.95]);
        [f[0], f[1], c[0], c[1]]
    }
}
