//! Vapi's and ElevenLabs' custom LLM, played from the platform's side: every user turn is a
//! `POST {url}/chat/completions` with the conversation so far in the OpenAI format and
//! `stream: true`; the answer is an SSE stream of `data: {chunk}` lines ending with
//! `data: [DONE]`. The first token must come within the platform's deadline (Vapi: 20 s).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Ask, CallError, CallLog, Malformed, Settings, Turn};

/// One call: the conversation's user turns, each answered by one stream.
pub struct SseCall<'a> {
    pub client: &'a reqwest::Client,
    pub url: String,
    pub call_id: String,
    pub scenario: String,
    /// The conversation's first agent line: the platform speaks it itself (Vapi's
    /// firstMessage), so it opens the messages as the assistant's.
    pub first_message: String,
    /// Vapi's `call`, `customer`, `phoneNumber` and `metadata`.
    pub call_fields: Option<Value>,
}

/// Plays the user turns; unreachable when the first request cannot connect.
pub async fn play(
    call: SseCall<'_>,
    user_turns: &[String],
    settings: &Settings,
) -> Result<CallLog, CallError> {
    let endpoint = format!("{}/chat/completions", call.url.trim_end_matches('/'));
    let mut log = CallLog {
        scenario: call.scenario.clone(),
        call_id: call.call_id.clone(),
        url: endpoint.clone(),
        ..CallLog::default()
    };
    let mut messages = vec![json!({"role": "assistant", "content": call.first_message})];
    for (i, user) in user_turns.iter().enumerate() {
        if settings.stop.is_cancelled() {
            log.interrupted = true;
            break;
        }
        messages.push(json!({"role": "user", "content": user}));
        let mut body = json!({
            "model": "gpt-4o",
            "messages": messages,
            "temperature": 0,
            "max_tokens": 250,
            "stream": true,
        });
        if let Some(Value::Object(fields)) = &call.call_fields {
            for (k, v) in fields {
                body[k] = v.clone();
            }
        }
        let playing = turn(call.client, &endpoint, &body, user, settings, &mut log);
        let played = tokio::select! {
            played = playing => played,
            () = settings.stop.cancelled() => {
                let mut cut = Turn::new(Ask::Response, None, user);
                cut.error = Some(super::INTERRUPTED.into());
                log.turns.push(cut);
                log.interrupted = true;
                break;
            }
        };
        let turn = match played {
            Err(reason) if i == 0 => return Err(CallError::Unreachable(reason)),
            Err(reason) => {
                let mut turn = Turn::new(Ask::Response, None, user);
                turn.error = Some(reason);
                turn
            }
            Ok(turn) => turn,
        };
        if !turn.agent.is_empty() {
            messages.push(json!({"role": "assistant", "content": turn.agent}));
        }
        log.turns.push(turn);
    }
    log.ended_by = if log.interrupted {
        "interrupted".into()
    } else {
        "hangup".into()
    };
    Ok(log)
}

/// One request and its stream. `Err` only when it did not connect.
async fn turn(
    client: &reqwest::Client,
    endpoint: &str,
    body: &Value,
    user: &str,
    settings: &Settings,
    log: &mut CallLog,
) -> Result<Turn, String> {
    let started = Instant::now();
    let deadline = started + settings.timeout;
    let mut turn = Turn::new(Ask::Response, None, user);
    let sending = client
        .post(endpoint)
        .headers(settings.headers.clone())
        .header("accept", "text/event-stream")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send();
    let response = match tokio::time::timeout(settings.timeout, sending).await {
        Err(_) => {
            turn.error = Some(no_token(settings.timeout));
            return Ok(turn);
        }
        Ok(Err(e)) if e.is_connect() => {
            return Err(format!("{endpoint}: {}", reason(&e)));
        }
        Ok(Err(e)) => {
            turn.error = Some(reason(&e));
            return Ok(turn);
        }
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    if !status.is_success() {
        let problem = format!("answered HTTP {status}");
        log.http_errors.push(problem.clone());
        turn.error = Some(problem);
        return Ok(turn);
    }
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if !content_type.starts_with("text/event-stream") {
        log.http_errors.push(format!(
            "content-type `{content_type}`, not text/event-stream"
        ));
    }
    read_stream(
        response,
        &mut turn,
        started,
        deadline,
        settings.timeout,
        log,
    )
    .await;
    Ok(turn)
}

fn no_token(timeout: Duration) -> String {
    format!(
        "no token within {}: the platform gives up on the request",
        crate::duration::short(timeout)
    )
}

/// Reads `data:` lines until `[DONE]`, the end of the body, or a deadline: the first token's,
/// then the timeout again between tokens.
async fn read_stream(
    mut response: reqwest::Response,
    turn: &mut Turn,
    started: Instant,
    deadline: Instant,
    timeout: Duration,
    log: &mut CallLog,
) {
    let mut buffer: Vec<u8> = Vec::new();
    let mut until = deadline;
    loop {
        let next = tokio::time::timeout_at(tokio::time::Instant::from_std(until), response.chunk());
        let chunk = match next.await {
            Err(_) if turn.first_chunk.is_none() => {
                turn.error = Some(no_token(timeout));
                return;
            }
            Err(_) => {
                turn.error = Some(format!(
                    "the stream stalled: nothing for {}",
                    crate::duration::short(timeout)
                ));
                return;
            }
            Ok(Ok(None)) => break,
            Ok(Err(e)) => {
                turn.error = Some(format!("the stream broke: {}", reason(&e)));
                return;
            }
            Ok(Ok(Some(bytes))) => bytes,
        };
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line).trim_end().to_string();
            if data_line(&line, turn, started, log) {
                turn.complete = Some(started.elapsed());
                return;
            }
        }
        until = Instant::now() + timeout;
    }
    // The body ended without `[DONE]`.
    let rest = String::from_utf8_lossy(&buffer).trim().to_string();
    if !rest.is_empty() && data_line(&rest, turn, started, log) {
        turn.complete = Some(started.elapsed());
        return;
    }
    log.no_done += 1;
    turn.complete = Some(started.elapsed());
    turn.error = Some("the stream ended without `data: [DONE]`".into());
}

/// One line of the stream; true at `data: [DONE]`.
fn data_line(line: &str, turn: &mut Turn, started: Instant, log: &mut CallLog) -> bool {
    // Blank lines end events, `:` lines are comments, `event:`/`id:` carry nothing we read.
    let Some(data) = line.strip_prefix("data:") else {
        if !line.is_empty() && !line.starts_with(':') && !line.contains(':') {
            log.malformed.push(Malformed {
                frame: line.chars().take(200).collect(),
                why: "not an SSE field line".into(),
            });
        }
        return false;
    };
    let data = data.trim();
    if data == "[DONE]" {
        return true;
    }
    let chunk: Value = match serde_json::from_str(data) {
        Ok(v) => v,
        Err(e) => {
            log.malformed.push(Malformed {
                frame: data.chars().take(200).collect(),
                why: format!("data is not JSON ({e})"),
            });
            return false;
        }
    };
    let Some(delta) = chunk.pointer("/choices/0/delta") else {
        // Some servers send a usage chunk with no choices at the end; that is allowed.
        if chunk.get("choices").and_then(Value::as_array).is_some() {
            return false;
        }
        log.malformed.push(Malformed {
            frame: data.chars().take(200).collect(),
            why: "a chunk without choices[0].delta".into(),
        });
        return false;
    };
    let content = delta.get("content").and_then(Value::as_str).unwrap_or("");
    if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
        for call in calls {
            if let Some(name) = call.pointer("/function/name").and_then(Value::as_str) {
                turn.tool_calls.push(name.to_string());
            }
        }
    }
    if !content.is_empty() {
        turn.first_chunk.get_or_insert_with(|| started.elapsed());
        turn.agent.push_str(content);
    }
    turn.chunks += 1;
    false
}

/// A client error in plain words: its innermost cause (`connection refused`).
fn reason(e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    let text = cause.to_string();
    if text.to_ascii_lowercase().contains("refused") {
        "connection refused".into()
    } else {
        text
    }
}
