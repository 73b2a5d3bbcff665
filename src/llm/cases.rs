//! The protocol cases: one registry per protocol. Each case names the scenarios it needs
//! played (payloads/llm.toml, or the conversation) and judges the recorded calls.

use std::time::Duration;

use super::ws::IN_FLIGHT;
use super::{Ask, CallLog, ProtocolKind};

/// The scenario that plays a conversation of conversations.toml.
pub const CONVERSATION: &str = "conversation";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    Skipped,
}

impl Outcome {
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }
}

/// What the judges need besides the calls.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_first_chunk: Option<Duration>,
    pub ping_timeout: Duration,
}

type Judge = fn(&[&CallLog], &Limits) -> (Outcome, Option<String>);

pub struct Case {
    pub name: &'static str,
    pub about: &'static str,
    /// The scenarios it plays; it judges their calls (or every call, with `every_call`).
    pub plays: &'static [&'static str],
    pub every_call: bool,
    judge: Judge,
}

#[derive(Debug, Clone)]
pub struct CaseResult {
    pub name: String,
    pub result: Outcome,
    pub reason: Option<String>,
}

const WS: &[Case] = &[
    Case {
        name: "llm/greeting",
        about: "the opening response (response_id 0) streams to content_complete; empty content waits for the user",
        plays: &[CONVERSATION],
        every_call: false,
        judge: greeting,
    },
    Case {
        name: "llm/ping-pong",
        about: "with auto_reconnect, every ping_pong is echoed within the platform's 5 s",
        plays: &[CONVERSATION],
        every_call: false,
        judge: ping_pong,
    },
    Case {
        name: "llm/response-id",
        about: "no chunk for a response_id never asked for; no streaming on after a newer response_required (wasted work)",
        plays: &[CONVERSATION, "interruption"],
        every_call: false,
        judge: response_id,
    },
    Case {
        name: "llm/content-complete",
        about: "every response asked for ends with content_complete, exactly once, nothing after it",
        plays: &[CONVERSATION],
        every_call: false,
        judge: content_complete,
    },
    Case {
        name: "llm/update-mid-stream",
        about: "a response still finishes after an update_only arrived while it streamed",
        plays: &["update-mid-stream"],
        every_call: false,
        judge: update_mid_stream,
    },
    Case {
        name: "llm/reminder",
        about: "reminder_required after a silence is answered to content_complete",
        plays: &["reminder"],
        every_call: false,
        judge: reminder,
    },
    Case {
        name: "llm/interruption",
        about: "a new response_required while a response streams is answered to content_complete",
        plays: &["interruption"],
        every_call: false,
        judge: interruption,
    },
    Case {
        name: "llm/tool-call-frames",
        about: "tool_call_invocation has an id, a name and arguments as a JSON string that parses; each result names an invocation",
        plays: &[CONVERSATION],
        every_call: true,
        judge: tool_frames,
    },
    Case {
        name: "llm/update-agent",
        about: "update_agent's agent_config values are in range (responsiveness, interruption_sensitivity 0-1, reminder_trigger_ms > 0)",
        plays: &[CONVERSATION],
        every_call: true,
        judge: update_agent,
    },
    Case {
        name: "llm/malformed-frames",
        about: "every frame is a JSON text frame with a known response_type and its fields",
        plays: &[CONVERSATION],
        every_call: true,
        judge: malformed,
    },
    Case {
        name: "llm/close-code",
        about: "the server never closes with a code other than 1000 (the platform's error_llm_websocket_runtime) or drops the connection",
        plays: &[CONVERSATION],
        every_call: true,
        judge: close_code,
    },
    Case {
        name: "llm/max-first-chunk",
        about: "every response's first chunk within --max-first-chunk (skipped without it)",
        plays: &[CONVERSATION],
        every_call: true,
        judge: max_first_chunk,
    },
];

const SSE: &[Case] = &[
    Case {
        name: "llm/first-token",
        about: "every turn's first token within the platform's deadline (Vapi: 20 s; --timeout)",
        plays: &[CONVERSATION],
        every_call: true,
        judge: first_token,
    },
    Case {
        name: "llm/sse-format",
        about: "2xx, text/event-stream, every `data:` line a chat.completion.chunk with choices[0].delta",
        plays: &[CONVERSATION],
        every_call: true,
        judge: sse_format,
    },
    Case {
        name: "llm/sse-done",
        about: "every stream ends with `data: [DONE]`",
        plays: &[CONVERSATION],
        every_call: true,
        judge: sse_done,
    },
    Case {
        name: "llm/max-first-chunk",
        about: "every turn's first token within --max-first-chunk (skipped without it)",
        plays: &[CONVERSATION],
        every_call: true,
        judge: max_first_chunk,
    },
];

/// The cases of a protocol, in report order.
pub fn cases(kind: ProtocolKind) -> &'static [Case] {
    match kind {
        ProtocolKind::Websocket => WS,
        ProtocolKind::OpenaiSse => SSE,
    }
}

impl Case {
    /// Judges the calls: those of its scenarios, or every call.
    pub fn judge(&self, logs: &[CallLog], limits: &Limits) -> CaseResult {
        let mine: Vec<&CallLog> = logs
            .iter()
            .filter(|l| self.every_call || self.plays.contains(&l.scenario.as_str()))
            .collect();
        let (result, reason) = if mine.is_empty() {
            (Outcome::Skipped, Some("no call played its scenario".into()))
        } else {
            (self.judge)(&mine, limits)
        };
        CaseResult {
            name: self.name.to_string(),
            result,
            reason,
        }
    }
}

fn pass(note: impl Into<Option<String>>) -> (Outcome, Option<String>) {
    (Outcome::Passed, note.into())
}

fn fail(reason: String) -> (Outcome, Option<String>) {
    (Outcome::Failed, Some(reason))
}

fn skip(reason: &str) -> (Outcome, Option<String>) {
    (Outcome::Skipped, Some(reason.to_string()))
}

/// `call 2: ` when more than one call is judged.
fn which(logs: &[&CallLog], log: &CallLog) -> String {
    if logs.len() > 1 {
        format!("call {}: ", log.call_id)
    } else {
        String::new()
    }
}

fn greeting(logs: &[&CallLog], _: &Limits) -> (Outcome, Option<String>) {
    for log in logs {
        let Some(turn) = log.turns.iter().find(|t| t.ask == Ask::Greeting) else {
            return fail(format!("{}no greeting was awaited", which(logs, log)));
        };
        if let Some(error) = &turn.error {
            return fail(format!(
                "{}{error}: the platform waits for response_id 0 (empty content lets the user speak first)",
                which(logs, log)
            ));
        }
    }
    let first = logs[0].turns.iter().find(|t| t.ask == Ask::Greeting);
    match first {
        Some(t) if t.agent.is_empty() => pass("empty: the user speaks first".to_string()),
        _ => pass(None),
    }
}

fn ping_pong(logs: &[&CallLog], limits: &Limits) -> (Outcome, Option<String>) {
    let asked = logs.iter().any(|l| {
        l.config
            .as_ref()
            .and_then(|c| c.get("auto_reconnect"))
            .and_then(serde_json::Value::as_bool)
            == Some(true)
    });
    if !asked {
        return skip(
            "the server's config did not ask for auto_reconnect: the platform sends no ping_pong",
        );
    }
    for log in logs {
        if log.ping_missed || (log.pings_sent > 0 && log.pings_echoed == 0) {
            let worst = log
                .ping_worst
                .map(crate::duration::short)
                .unwrap_or_default();
            return fail(format!(
                "{}{} of {} ping_pong echoed; one waited {worst} (the platform closes the call after {} without one, and reconnects)",
                which(logs, log),
                log.pings_echoed,
                log.pings_sent,
                crate::duration::short(limits.ping_timeout)
            ));
        }
    }
    let sent: usize = logs.iter().map(|l| l.pings_sent).sum();
    let worst = logs.iter().filter_map(|l| l.ping_worst).max();
    pass(format!(
        "{sent} echoed{}",
        worst
            .map(|w| format!(", the slowest in {}", crate::duration::latency(w)))
            .unwrap_or_default()
    ))
}

fn response_id(logs: &[&CallLog], _: &Limits) -> (Outcome, Option<String>) {
    for log in logs {
        if !log.unasked.is_empty() {
            return fail(format!(
                "{}chunks for response_id {}, which the platform never asked for",
                which(logs, log),
                join(&log.unasked)
            ));
        }
        if let Some((id, n)) = log.wasted.first() {
            return fail(format!(
                "{}kept streaming response_id {id} after a newer response_required: {n} chunks the platform discards (wasted work: after the newer response began, or over {} later)",
                which(logs, log),
                crate::duration::short(IN_FLIGHT)
            ));
        }
    }
    pass(None)
}

fn content_complete(logs: &[&CallLog], _: &Limits) -> (Outcome, Option<String>) {
    for log in logs {
        if let Some(id) = log.double_complete.first() {
            return fail(format!(
                "{}content_complete twice for response_id {id}",
                which(logs, log)
            ));
        }
        if let Some(id) = log.after_complete.first() {
            return fail(format!(
                "{}chunks after content_complete for response_id {id}",
                which(logs, log)
            ));
        }
        let unfinished = log
            .turns
            .iter()
            .find(|t| !t.interrupted && t.complete.is_none() && t.ask != Ask::Greeting);
        if let Some(turn) = unfinished {
            let why = turn.error.as_deref().unwrap_or("no content_complete");
            return fail(format!(
                "{}response_id {}: {why}",
                which(logs, log),
                turn.response_id.unwrap_or_default()
            ));
        }
    }
    pass(None)
}

/// The first response after the greeting.
fn first_response(log: &CallLog, ask: Ask) -> Option<&super::Turn> {
    log.turns.iter().find(|t| t.ask == ask)
}

fn update_mid_stream(logs: &[&CallLog], _: &Limits) -> (Outcome, Option<String>) {
    let log = logs[0];
    let Some(turn) = first_response(log, Ask::Response) else {
        return fail(format!(
            "the call ended before the response ({})",
            log.ended_by
        ));
    };
    if let Some(error) = &turn.error {
        return fail(format!(
            "after the update_only: {error}; a newer update_only does not cancel a response"
        ));
    }
    if turn.chunks <= 1 {
        return pass("the response came in one chunk: nothing was mid-stream".to_string());
    }
    pass(None)
}

fn reminder(logs: &[&CallLog], _: &Limits) -> (Outcome, Option<String>) {
    let log = logs[0];
    let Some(turn) = first_response(log, Ask::Reminder) else {
        return fail(format!(
            "the call ended before the reminder ({})",
            log.ended_by
        ));
    };
    match &turn.error {
        Some(error) => fail(format!(
            "reminder_required response_id {}: {error}",
            turn.response_id.unwrap_or_default()
        )),
        None if turn.agent.is_empty() => {
            pass("answered with empty content: the agent stays silent".to_string())
        }
        None => pass(None),
    }
}

fn interruption(logs: &[&CallLog], _: &Limits) -> (Outcome, Option<String>) {
    let log = logs[0];
    let responses: Vec<_> = log
        .turns
        .iter()
        .filter(|t| t.ask == Ask::Response)
        .collect();
    let Some(cut) = responses.first() else {
        return fail(format!(
            "the call ended before the response ({})",
            log.ended_by
        ));
    };
    if let Some(error) = &cut.error {
        return fail(format!("the first response: {error}"));
    }
    let Some(after) = responses.get(1) else {
        return fail(format!(
            "the call ended before the interruption ({})",
            log.ended_by
        ));
    };
    if let Some(error) = &after.error {
        return fail(format!(
            "the newer response_id {}: {error}",
            after.response_id.unwrap_or_default()
        ));
    }
    if !cut.interrupted {
        return pass("the first response had completed before its first chunk was read: nothing to interrupt".to_string());
    }
    pass(None)
}

fn tool_frames(logs: &[&CallLog], _: &Limits) -> (Outcome, Option<String>) {
    for log in logs {
        if let Some(problem) = log.bad_tool_frames.first() {
            return fail(format!("{}{problem}", which(logs, log)));
        }
    }
    match logs.iter().map(|l| l.tool_frames).sum::<usize>() {
        0 => skip("the server made no tool call"),
        n => pass(format!("{n} frames")),
    }
}

fn update_agent(logs: &[&CallLog], _: &Limits) -> (Outcome, Option<String>) {
    for log in logs {
        if let Some(problem) = log.bad_agent_updates.first() {
            return fail(format!("{}{problem}", which(logs, log)));
        }
    }
    match logs.iter().map(|l| l.agent_updates).sum::<usize>() {
        0 => skip("the server sent no update_agent"),
        n => pass(format!("{n} frames")),
    }
}

fn malformed(logs: &[&CallLog], _: &Limits) -> (Outcome, Option<String>) {
    let all: Vec<_> = logs.iter().flat_map(|l| &l.malformed).collect();
    match all.first() {
        None => pass(None),
        Some(m) => fail(format!(
            "{} malformed frame{}; the first: {}: {}",
            all.len(),
            if all.len() == 1 { "" } else { "s" },
            m.why,
            m.frame
        )),
    }
}

fn close_code(logs: &[&CallLog], _: &Limits) -> (Outcome, Option<String>) {
    for log in logs {
        match log.server_close {
            Some(1000) | None => {}
            Some(code) => {
                return fail(format!(
                    "{}the server closed with code {code}: the platform ends the call as error_llm_websocket_runtime",
                    which(logs, log)
                ));
            }
        }
        if log.dropped {
            return fail(format!(
                "{}the connection dropped without a close frame: the platform's error_llm_websocket_lost_connection",
                which(logs, log)
            ));
        }
    }
    let closed = logs.iter().filter(|l| l.server_close == Some(1000)).count();
    match closed {
        0 => pass(None),
        n => pass(format!(
            "the server closed {n} call{} with 1000",
            if n == 1 { "" } else { "s" }
        )),
    }
}

fn max_first_chunk(logs: &[&CallLog], limits: &Limits) -> (Outcome, Option<String>) {
    let Some(max) = limits.max_first_chunk else {
        return skip("no --max-first-chunk");
    };
    for log in logs {
        let slow = log
            .turns
            .iter()
            .find(|t| t.first_chunk.is_some_and(|f| f > max));
        if let Some(turn) = slow {
            return fail(format!(
                "{}response_id {}: first chunk after {}, over {}",
                which(logs, log),
                turn.response_id.map_or("-".into(), |i| i.to_string()),
                crate::duration::latency(turn.first_chunk.unwrap_or_default()),
                crate::duration::latency(max)
            ));
        }
    }
    pass(None)
}

fn first_token(logs: &[&CallLog], _: &Limits) -> (Outcome, Option<String>) {
    for log in logs {
        if let Some(turn) = log.turns.iter().find(|t| t.first_chunk.is_none()) {
            let why = turn.error.as_deref().unwrap_or("no token");
            return fail(format!("{}turn `{}`: {why}", which(logs, log), turn.user));
        }
    }
    pass(None)
}

fn sse_format(logs: &[&CallLog], _: &Limits) -> (Outcome, Option<String>) {
    for log in logs {
        if let Some(problem) = log.http_errors.first() {
            return fail(format!("{}{problem}", which(logs, log)));
        }
    }
    malformed(
        logs,
        &Limits {
            max_first_chunk: None,
            ping_timeout: Duration::ZERO,
        },
    )
}

fn sse_done(logs: &[&CallLog], _: &Limits) -> (Outcome, Option<String>) {
    let missing: usize = logs.iter().map(|l| l.no_done).sum();
    if missing > 0 {
        return fail(format!(
            "{missing} stream{} ended without `data: [DONE]`",
            if missing == 1 { "" } else { "s" }
        ));
    }
    pass(None)
}

fn join(ids: &[u64]) -> String {
    ids.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Turn;

    fn limits() -> Limits {
        Limits {
            max_first_chunk: None,
            ping_timeout: Duration::from_secs(5),
        }
    }

    fn case(name: &str) -> &'static Case {
        WS.iter().find(|c| c.name == name).unwrap()
    }

    #[test]
    fn a_discarded_response_streamed_on_fails_response_id_only() {
        let mut log = CallLog {
            scenario: "interruption".into(),
            ..CallLog::default()
        };
        log.wasted.push((1, 9));
        let logs = [log];
        let got = case("llm/response-id").judge(&logs, &limits());
        assert_eq!(got.result, Outcome::Failed);
        assert!(got.reason.unwrap().contains("9 chunks"));
        assert_eq!(
            case("llm/content-complete").judge(&logs, &limits()).result,
            Outcome::Skipped
        );
    }

    #[test]
    fn an_unfinished_response_fails_content_complete() {
        let mut turn = Turn::new(Ask::Response, Some(1), "hi");
        turn.first_chunk = Some(Duration::from_millis(3));
        turn.error = Some("no content_complete within 1s of the first chunk".into());
        let log = CallLog {
            scenario: CONVERSATION.into(),
            turns: vec![turn],
            ..CallLog::default()
        };
        let got = case("llm/content-complete").judge(&[log], &limits());
        assert_eq!(got.result, Outcome::Failed);
        assert!(got.reason.unwrap().contains("response_id 1"));
    }

    #[test]
    fn case_names_are_unique_per_protocol() {
        for kind in [ProtocolKind::Websocket, ProtocolKind::OpenaiSse] {
            let mut names: Vec<_> = cases(kind).iter().map(|c| c.name).collect();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), cases(kind).len());
        }
    }
}
