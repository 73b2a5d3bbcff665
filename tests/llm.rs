//! `hookcli llm` against real sockets: the tests' own small custom-LLM servers, each wrong in
//! one way, fail exactly the case named for that way; `hookcli llm serve` end to end over
//! the WebSocket and SSE; `-p vapi` against a hand-written SSE stream. Deadlines are short
//! flags (`--timeout`, `--ping-timeout`, `--silence`), never sleeps.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Output, Stdio};

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// The one thing a test server does wrong.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fault {
    None,
    /// Never echoes ping_pong.
    NoPong,
    /// Streams a discarded response on after the newer one began.
    KeepsStreaming,
    /// Never sets content_complete in the conversation (the greeting is whole).
    NoComplete,
    /// Closes with 1011 after answering the caller's goodbye.
    CloseCode,
    /// Sends a text frame that is not JSON, and a binary frame.
    Malformed,
    /// A tool_call_invocation whose arguments are an object, not a JSON string.
    BadToolArguments,
    /// update_agent with responsiveness 2 (the range is 0 to 1).
    BadAgentUpdate,
    /// Not a fault: transfers the call in its first answer.
    Transfer,
}

/// A small Retell-protocol server: config (auto_reconnect, call_details), a greeting once the
/// call details come, every response in three chunks. In the interruption and
/// update-mid-stream scenarios (call_details' metadata says which) the first response holds
/// after its first chunk until the caller's next frame, so the interruption always lands
/// mid-stream, without a timer.
async fn session(
    ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    fault: Fault,
    seen: mpsc::UnboundedSender<String>,
) {
    let (mut sink, mut stream) = ws.split();
    let mut out: Vec<Value> = vec![json!({"response_type": "config",
        "config": {"auto_reconnect": true, "call_details": true}})];
    if fault == Fault::BadAgentUpdate {
        out.push(json!({"response_type": "update_agent", "agent_config": {"responsiveness": 2}}));
    }
    let mut scenario = String::new();
    // The rest of a response held after its first chunk: (id, chunks).
    let mut held: Option<(u64, Vec<Value>)> = None;
    loop {
        for frame in out.drain(..) {
            if sink.send(Message::text(frame.to_string())).await.is_err() {
                return;
            }
        }
        let Some(Ok(message)) = stream.next().await else {
            return;
        };
        let Message::Text(text) = message else {
            if matches!(message, Message::Close(_)) {
                return;
            }
            continue;
        };
        let frame: Value = serde_json::from_str(text.as_str()).expect("hookcli sends JSON");
        match frame["interaction_type"].as_str().unwrap_or_default() {
            "ping_pong" if fault != Fault::NoPong => {
                out.push(json!({"response_type": "ping_pong", "timestamp": frame["timestamp"]}));
            }
            "call_details" => {
                scenario = frame["call"]["metadata"]["conversation"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let _ = seen.send(scenario.clone());
                if fault == Fault::Malformed && scenario == "dental" {
                    out.push(json!("not an object"));
                    sink.send(Message::text("{oops")).await.ok();
                    sink.send(Message::binary(vec![1u8, 2, 3])).await.ok();
                }
                out.extend(response(0, "Hello, how can I help?", true));
            }
            "update_only" => {
                if scenario == "update-mid-stream"
                    && let Some((_, rest)) = held.take()
                {
                    out.extend(rest);
                }
            }
            "response_required" | "reminder_required" => {
                let id = frame["response_id"].as_u64().expect("an id");
                let last = frame["transcript"]
                    .as_array()
                    .and_then(|t| t.last())
                    .and_then(|u| u["content"].as_str())
                    .unwrap_or_default()
                    .to_string();
                let complete = !(fault == Fault::NoComplete && scenario == "dental");
                let mut chunks = response(id, &format!("You said {last}"), complete);
                if scenario == "dental" && id == 1 {
                    if fault == Fault::BadToolArguments {
                        out.push(json!({"response_type": "tool_call_invocation",
                            "tool_call_id": "t1", "name": "book", "arguments": {"day": "Tue"}}));
                    }
                    if fault == Fault::Transfer
                        && let Some(last) = chunks.last_mut()
                    {
                        last["transfer_number"] = json!("+14155550100");
                    }
                }
                let first = chunks.remove(0);
                out.push(first);
                if let Some((_, rest)) = held.take()
                    && fault == Fault::KeepsStreaming
                {
                    // The discarded response goes on after the newer one began.
                    out.extend(rest);
                }
                let holds =
                    id == 1 && (scenario == "interruption" || scenario == "update-mid-stream");
                if holds {
                    held = Some((id, chunks));
                } else {
                    out.extend(chunks);
                }
                if fault == Fault::CloseCode && last.to_lowercase().contains("bye") {
                    for frame in out.drain(..) {
                        sink.send(Message::text(frame.to_string())).await.ok();
                    }
                    let close = CloseFrame {
                        code: CloseCode::Error,
                        reason: "internal error".into(),
                    };
                    sink.send(Message::Close(Some(close))).await.ok();
                    // The closing handshake: dropping the socket now could reset it before
                    // hookcli reads the last chunks.
                    while let Some(Ok(_)) = stream.next().await {}
                    return;
                }
            }
            _ => {}
        }
    }
}

/// A response in three chunks, the last with content_complete when `complete`.
fn response(id: u64, text: &str, complete: bool) -> Vec<Value> {
    let words: Vec<&str> = text.split_inclusive(' ').collect();
    let third = words.len().div_ceil(3).max(1);
    let mut chunks: Vec<Value> = words
        .chunks(third)
        .map(|c| {
            json!({"response_type": "response", "response_id": id,
            "content": c.concat(), "content_complete": false})
        })
        .collect();
    while chunks.len() < 3 {
        chunks.push(
            json!({"response_type": "response", "response_id": id, "content": "",
            "content_complete": false}),
        );
    }
    if complete {
        chunks.push(
            json!({"response_type": "response", "response_id": id, "content": "",
            "content_complete": true}),
        );
    }
    chunks
}

/// A test server on 127.0.0.1:0, serving every connection with `fault`.
struct WsServer {
    runtime: tokio::runtime::Runtime,
    url: String,
}

impl WsServer {
    fn start(fault: Fault) -> WsServer {
        WsServer::watched(fault).0
    }

    /// A server whose channel names the scenario of every call, once its details came.
    fn watched(fault: Fault) -> (WsServer, mpsc::UnboundedReceiver<String>) {
        let (seen, calls) = mpsc::unbounded_channel();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let port = listener.local_addr().expect("an address").port();
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    if let Ok(ws) = tokio_tungstenite::accept_async(stream).await {
                        session(ws, fault, seen).await;
                    }
                });
            }
        });
        let server = WsServer {
            runtime,
            url: format!("ws://127.0.0.1:{port}/llm-websocket"),
        };
        (server, calls)
    }
}

/// The fast flags every run against a test server uses.
const FAST: &[&str] = &[
    "--conversation",
    "dental",
    "--ping-interval",
    "50ms",
    "--ping-timeout",
    "500ms",
    "--silence",
    "10ms",
    "--json",
];

fn llm(args: &[&str]) -> Output {
    hookcli()
        .arg("llm")
        .args(args)
        .output()
        .expect("the hookcli binary runs")
}

/// The JSON lines of a run, by type.
struct Lines {
    turns: Vec<Value>,
    cases: BTreeMap<String, Value>,
    summary: Value,
}

fn parse(out: &Output) -> Lines {
    let mut turns = Vec::new();
    let mut cases = BTreeMap::new();
    let mut summary = Value::Null;
    for line in stdout(out).lines() {
        let value: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a JSON line ({e}): {line}\nstderr:\n{}", stderr(out)));
        match value["type"].as_str() {
            Some("turn") => turns.push(value),
            Some("case") => {
                cases.insert(value["case"].as_str().unwrap().to_string(), value);
            }
            Some("summary") => summary = value,
            other => panic!("an unknown line type {other:?}: {line}"),
        }
    }
    Lines {
        turns,
        cases,
        summary,
    }
}

fn failed(lines: &Lines) -> Vec<&str> {
    lines
        .cases
        .iter()
        .filter(|(_, v)| v["result"] == "failed")
        .map(|(k, _)| k.as_str())
        .collect()
}

/// Plays every case against a server with `fault`; only `case` may fail, and it must.
fn fails_exactly(fault: Fault, case: &str) -> Lines {
    let server = WsServer::start(fault);
    let mut args = vec!["--to", server.url.as_str()];
    args.extend(FAST);
    // Every conversation turn of NoComplete waits this long for its content_complete.
    let timeout = if fault == Fault::NoComplete {
        "500ms"
    } else {
        "2s"
    };
    args.extend(["--timeout", timeout]);
    let out = llm(&args);
    assert_no_panic(&out);
    assert_code(&out, 1);
    let lines = parse(&out);
    assert_eq!(failed(&lines), vec![case], "{}", stdout(&out));
    drop(server.runtime);
    lines
}

#[test]
fn a_well_behaved_server_passes_every_case() {
    let server = WsServer::start(Fault::None);
    let mut args = vec!["--to", server.url.as_str()];
    args.extend(FAST);
    let out = llm(&args);
    assert_code(&out, 0);
    let lines = parse(&out);
    assert!(failed(&lines).is_empty());
    assert_eq!(lines.cases["llm/ping-pong"]["result"], "passed");
    assert_eq!(lines.cases["llm/interruption"]["result"], "passed");
    assert_eq!(lines.cases["llm/update-mid-stream"]["result"], "passed");
    // The dental conversation: the greeting and four user turns, each measured.
    let dental: Vec<&Value> = lines
        .turns
        .iter()
        .filter(|t| t["scenario"] == "conversation")
        .collect();
    assert_eq!(dental.len(), 5, "{dental:#?}");
    for (i, turn) in dental.iter().enumerate() {
        assert_eq!(turn["response_id"], i as u64);
        assert!(turn["first_chunk_ms"].is_number(), "{turn}");
        assert!(turn["complete_ms"].is_number(), "{turn}");
    }
    // The growing transcript: the server answers with the user's last words.
    assert!(
        dental[2]["agent"]
            .as_str()
            .unwrap()
            .contains("Tuesday at 10:30")
    );
    assert!(lines.summary["first_chunk_p50_ms"].is_number());
}

#[test]
fn a_server_that_never_echoes_ping_pong_fails_ping_pong() {
    let lines = fails_exactly(Fault::NoPong, "llm/ping-pong");
    let reason = lines.cases["llm/ping-pong"]["reason"].as_str().unwrap();
    assert!(reason.starts_with("0 of "), "{reason}");
}

#[test]
fn a_server_that_streams_a_discarded_response_fails_response_id() {
    let lines = fails_exactly(Fault::KeepsStreaming, "llm/response-id");
    let reason = lines.cases["llm/response-id"]["reason"].as_str().unwrap();
    assert!(reason.contains("kept streaming response_id 1"), "{reason}");
    assert!(reason.contains("wasted work"), "{reason}");
}

#[test]
fn a_server_that_never_sets_content_complete_fails_content_complete() {
    let lines = fails_exactly(Fault::NoComplete, "llm/content-complete");
    let reason = lines.cases["llm/content-complete"]["reason"]
        .as_str()
        .unwrap();
    assert!(
        reason.contains("no content_complete within 500ms"),
        "{reason}"
    );
}

#[test]
fn a_server_closing_with_1011_fails_close_code() {
    let lines = fails_exactly(Fault::CloseCode, "llm/close-code");
    let reason = lines.cases["llm/close-code"]["reason"].as_str().unwrap();
    assert!(reason.contains("1011"), "{reason}");
    assert!(reason.contains("error_llm_websocket_runtime"), "{reason}");
}

#[test]
fn malformed_frames_are_reported_not_a_crash() {
    let lines = fails_exactly(Fault::Malformed, "llm/malformed-frames");
    let reason = lines.cases["llm/malformed-frames"]["reason"]
        .as_str()
        .unwrap();
    assert!(reason.starts_with("3 malformed frames"), "{reason}");
}

#[test]
fn tool_call_arguments_that_are_not_a_json_string_fail_tool_call_frames() {
    let lines = fails_exactly(Fault::BadToolArguments, "llm/tool-call-frames");
    let reason = lines.cases["llm/tool-call-frames"]["reason"]
        .as_str()
        .unwrap();
    assert!(reason.contains("must be a JSON string"), "{reason}");
}

#[test]
fn update_agent_out_of_range_fails_update_agent() {
    let lines = fails_exactly(Fault::BadAgentUpdate, "llm/update-agent");
    let reason = lines.cases["llm/update-agent"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("responsiveness must be a number from 0 to 1"),
        "{reason}"
    );
}

#[test]
fn a_transfer_ends_the_call_after_that_response() {
    let server = WsServer::start(Fault::Transfer);
    let mut args = vec!["--to", server.url.as_str(), "--only", "llm/greeting"];
    args.extend(FAST);
    let out = llm(&args);
    assert_code(&out, 0);
    let turns = parse(&out).turns;
    // The greeting and the first answer, which transfers: no more user turns are played.
    assert_eq!(turns.len(), 2, "{turns:#?}");
    assert_eq!(turns[1]["transfer_number"], "+14155550100");
}

#[test]
fn only_runs_the_named_case_and_the_scenarios_it_needs() {
    let server = WsServer::start(Fault::NoPong);
    let mut args = vec!["--to", server.url.as_str(), "--only", "llm/reminder"];
    args.extend(FAST);
    let out = llm(&args);
    assert_code(&out, 0);
    let lines = parse(&out);
    assert_eq!(lines.cases.keys().collect::<Vec<_>>(), vec!["llm/reminder"]);
    let asks: Vec<&str> = lines
        .turns
        .iter()
        .map(|t| t["ask"].as_str().unwrap())
        .collect();
    assert_eq!(asks, vec!["greeting", "reminder"]);
}

#[test]
fn a_slow_first_chunk_over_max_first_chunk_exits_1() {
    let server = WsServer::start(Fault::None);
    let mut args = vec!["--to", server.url.as_str(), "--max-first-chunk", "1ns"];
    args.extend(FAST);
    let out = llm(&args);
    assert_code(&out, 1);
    assert_eq!(failed(&parse(&out)), vec!["llm/max-first-chunk"]);
}

#[test]
fn junit_has_a_testcase_per_case_with_the_failure() {
    let server = WsServer::start(Fault::NoPong);
    let report = TempFile::new("llm-junit.xml", b"");
    let mut args = vec!["--to", server.url.as_str(), "--junit", report.path_str()];
    args.extend(FAST);
    let out = llm(&args);
    assert_code(&out, 1);
    let xml = std::fs::read_to_string(report.path_str()).expect("the report");
    assert_eq!(xml.matches("<testcase ").count(), 12, "{xml}");
    assert!(xml.contains("name=\"llm/ping-pong\""), "{xml}");
    assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
}

#[test]
fn ctrl_c_stops_the_calls_and_prints_the_report_so_far() {
    let (server, mut calls) = WsServer::watched(Fault::None);
    let child = hookcli()
        .args(["llm", "--to", &server.url, "--only", "llm/reminder"])
        .args(["--silence", "60s", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hookcli starts");
    // The reminder call has begun: hookcli now waits out the silence.
    assert_eq!(calls.blocking_recv().as_deref(), Some("reminder"));
    let pid = child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let out = child.wait_with_output().expect("hookcli exits");
    assert_no_panic(&out);
    assert_code(&out, 1);
    let lines = parse(&out);
    assert_eq!(lines.summary["interrupted"], true);
    // The call is in the report: its greeting, whole, or cut off by the interruption.
    let greeting = &lines.turns[0];
    assert_eq!(greeting["ask"], "greeting");
    assert!(
        greeting["complete_ms"].is_number() || greeting["error"] == "interrupted (Ctrl-C)",
        "{greeting}"
    );
    assert_eq!(lines.cases["llm/reminder"]["result"], "failed");
}

#[test]
fn many_calls_are_all_reported() {
    let server = WsServer::start(Fault::None);
    let mut args = vec![
        "--to",
        server.url.as_str(),
        "--calls",
        "6",
        "--concurrency",
        "3",
        "--only",
        "llm/greeting,llm/content-complete",
    ];
    args.extend(FAST);
    let out = llm(&args);
    assert_code(&out, 0);
    let lines = parse(&out);
    assert_eq!(lines.summary["calls"], 6);
    assert_eq!(lines.summary["turns"], 30);
    let calls: std::collections::BTreeSet<u64> = lines
        .turns
        .iter()
        .map(|t| t["call"].as_u64().unwrap())
        .collect();
    assert_eq!(calls.len(), 6);
}

#[test]
fn an_unreachable_server_exits_3_and_a_bad_case_2() {
    let closed = format!("ws://127.0.0.1:{}/llm-websocket", closed_port());
    let out = llm(&["--to", &closed]);
    assert_code(&out, 3);
    assert!(
        stderr(&out).contains("connection refused"),
        "{}",
        stderr(&out)
    );
    assert_no_panic(&out);
    let out = llm(&["--only", "llm/nope"]);
    assert_code(&out, 2);
    let out = llm(&["-p", "vapi", "--to", "ws://127.0.0.1:9/x"]);
    assert_code(&out, 2);
}

#[test]
fn a_platform_from_hookcli_platform_is_named_as_the_variables() {
    for (value, says) in [
        (
            "nope",
            "error: unknown platform `nope` (from HOOKCLI_PLATFORM)",
        ),
        (
            "twilio",
            "error: twilio (from HOOKCLI_PLATFORM) hands no conversation to a custom LLM",
        ),
    ] {
        let out = hookcli()
            .args(["llm", "--list"])
            .env("HOOKCLI_PLATFORM", value)
            .output()
            .expect("the hookcli binary runs");
        assert_code(&out, 2);
        assert!(stderr(&out).starts_with(says), "{}", stderr(&out));
        assert!(stdout(&out).is_empty());
    }
}

#[test]
fn a_payloads_folder_replaces_llm_toml() {
    let builtin = include_str!("../payloads/llm.toml");
    let changed = builtin.replace(
        "greeting = \"Hello, this is hookcli's scripted agent. How can I help you today?\"",
        "greeting = \"Overlay greeting.\"",
    );
    assert_ne!(builtin, changed, "the built-in greeting line moved");
    let file = TempFile::new("llm.toml", changed.as_bytes());
    let dir = std::path::Path::new(file.path_str()).parent().unwrap();
    let out = hookcli()
        .args(["--payloads", dir.to_str().unwrap()])
        .args(["llm", "--only", "llm/greeting", "--json"])
        .output()
        .expect("hookcli runs");
    assert_code(&out, 0);
    assert_eq!(parse(&out).turns[0]["agent"], "Overlay greeting.");
}

#[test]
fn list_names_the_cases_of_each_protocol() {
    let out = llm(&["--list"]);
    assert_code(&out, 0);
    for case in ["llm/greeting", "llm/ping-pong", "llm/close-code"] {
        assert!(stdout(&out).contains(case), "{case}");
    }
    let out = llm(&["--list", "-p", "vapi", "--json"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("\"case\":\"llm/first-token\""));
}

/// `hookcli llm serve --port 0`, started once its ready line is read.
struct Serve {
    child: Child,
    ws: String,
    http: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve() -> Serve {
    let mut child = hookcli()
        .args(["llm", "serve", "--port", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("llm serve starts");
    let mut line = String::new();
    BufReader::new(child.stderr.take().expect("piped"))
        .read_line(&mut line)
        .expect("the ready line");
    // listening on ws://127.0.0.1:PORT/llm-websocket and http://127.0.0.1:PORT/v1/chat/completions
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"listening"), "{line}");
    let ws = words[2].to_string();
    let http = words[4].trim_end_matches("/chat/completions").to_string();
    Serve { child, ws, http }
}

#[test]
fn llm_serve_end_to_end_over_the_websocket_and_sse() {
    let server = serve();
    let out = llm(&[
        "--to",
        &server.ws,
        "--conversation",
        "dental",
        "--silence",
        "10ms",
        "--json",
    ]);
    assert_code(&out, 0);
    let lines = parse(&out);
    assert!(failed(&lines).is_empty());
    // The script's rules: a tool call for "book", end_call for "bye".
    let dental: Vec<&Value> = lines
        .turns
        .iter()
        .filter(|t| t["scenario"] == "conversation")
        .collect();
    assert!(
        dental[1]["tool_calls"][0]
            .as_str()
            .unwrap()
            .starts_with("book_appointment(")
    );
    assert_eq!(dental.last().unwrap()["end_call"], true);
    assert_eq!(lines.cases["llm/tool-call-frames"]["result"], "passed");
    assert_eq!(lines.cases["llm/update-agent"]["result"], "passed");

    let out = llm(&["-p", "vapi", "--to", &server.http, "--json"]);
    assert_code(&out, 0);
    let sse = parse(&out);
    assert!(!sse.turns.is_empty());
    for turn in &sse.turns {
        assert!(turn["first_chunk_ms"].is_number(), "{turn}");
    }
}

/// An HTTP server answering every request with `body` as an SSE stream; the requests it got
/// (head and JSON body) come out of the channel.
fn sse_server(
    runtime: &tokio::runtime::Runtime,
    body: &'static str,
) -> (String, mpsc::UnboundedReceiver<Value>) {
    let listener = runtime
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let port = listener.local_addr().expect("an address").port();
    let (tx, rx) = mpsc::unbounded_channel();
    runtime.spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let request = read_request(&mut stream).await;
                let _ = tx.send(request);
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(body.as_bytes()).await;
                if body.is_empty() {
                    // Never a token: hold the connection until hookcli gives up.
                    let _ = stream.read(&mut [0u8; 1]).await;
                }
            });
        }
    });
    (format!("http://127.0.0.1:{port}/v1"), rx)
}

/// One HTTP/1.1 request (Content-Length framed): `{"head": text, "body": JSON}`.
async fn read_request(stream: &mut tokio::net::TcpStream) -> Value {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.expect("read");
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                let body: Value =
                    serde_json::from_slice(&data[end + 4..end + 4 + length]).expect("JSON");
                return json!({"head": &text[..end], "body": body});
            }
        }
        assert!(n > 0, "the request ended early");
    }
}

const GOOD_STREAM: &str = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Sure, \"}}]}\n\n\
data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"done.\"}}]}\n\n\
data: [DONE]\n\n";

#[test]
fn vapi_reports_first_token_latency_and_sends_what_vapi_sends() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let (url, mut requests) = sse_server(&runtime, GOOD_STREAM);
    let out = llm(&[
        "-p",
        "vapi",
        "--to",
        &url,
        "--conversation",
        "dental",
        "-H",
        "Authorization: Bearer test-token",
        "--json",
    ]);
    assert_code(&out, 0);
    let lines = parse(&out);
    assert_eq!(lines.turns.len(), 4);
    for turn in &lines.turns {
        assert!(turn["first_chunk_ms"].as_f64().unwrap() > 0.0, "{turn}");
        assert_eq!(turn["agent"], "Sure, done.");
    }
    assert!(lines.summary["first_chunk_p95_ms"].is_number());
    let first = requests.try_recv().expect("a request");
    let head = first["head"].as_str().unwrap().to_ascii_lowercase();
    assert!(head.contains("authorization: bearer test-token"), "{head}");
    assert!(head.contains("accept: text/event-stream"), "{head}");
    assert!(head.starts_with("post /v1/chat/completions "), "{head}");
    let first = &first["body"];
    assert_eq!(first["stream"], true);
    assert!(first["call"]["id"].is_string(), "{first}");
    assert!(first["metadata"].is_object(), "{first}");
    assert_eq!(first["messages"][0]["role"], "assistant");
    assert_eq!(first["messages"][1]["role"], "user");
    // The next request carries the growing conversation.
    let second = requests.try_recv().expect("a second request")["body"].take();
    assert_eq!(second["messages"].as_array().unwrap().len(), 4);
    assert_eq!(second["messages"][2]["content"], "Sure, done.");
}

#[test]
fn elevenlabs_sends_no_vapi_fields() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let (url, mut requests) = sse_server(&runtime, GOOD_STREAM);
    let out = llm(&["-p", "elevenlabs", "--to", &url, "--json"]);
    assert_code(&out, 0);
    let first = requests.try_recv().expect("a request")["body"].take();
    assert!(first.get("call").is_none(), "{first}");
}

#[test]
fn a_malformed_stream_and_one_without_done_fail_their_cases() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let (url, _requests) = sse_server(
        &runtime,
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: {nope\n\n",
    );
    let out = llm(&["-p", "vapi", "--to", &url, "--json"]);
    assert_code(&out, 1);
    let lines = parse(&out);
    assert_eq!(failed(&lines), vec!["llm/sse-done", "llm/sse-format"]);
}

#[test]
fn no_token_within_the_deadline_is_vapis_timeout() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let (url, _requests) = sse_server(&runtime, "");
    let out = llm(&["-p", "vapi", "--to", &url, "--timeout", "200ms", "--json"]);
    assert_code(&out, 1);
    let lines = parse(&out);
    let reason = lines.cases["llm/first-token"]["reason"].as_str().unwrap();
    assert!(reason.contains("no token within 200ms"), "{reason}");
}
