//! Answers the platform reads (issue 15): `send call_inbound` and `send function_call` against
//! real receivers on 127.0.0.1:0 answering valid, wrong-typed, non-JSON, slow and oversized
//! bodies; listen's answers and line; the built-in receiver's.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use serde_json::{Value, json};

fn json_of(out: &std::process::Output) -> Value {
    let text = stdout(out);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{text}"))
}

/// A receiver verifying with KEY that answers every 2xx with `body`.
fn answering(body: impl Into<Bytes>) -> Server {
    let body = body.into();
    Server::with("uponai", Some(KEY), move |config| {
        config.answers.every = Some(body);
    })
}

#[test]
fn a_valid_inbound_answer_says_where_the_call_goes() {
    let mut server = answering(
        json!({"call_inbound": {"override_agent_id": "agent_123", "override_agent_version": 2,
            "dynamic_variables": {"a": "1", "b": "2", "c": "3"}}})
        .to_string(),
    );
    let out = server.send(&["call_inbound", "--secret", KEY]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("routes to agent agent_123 (version 2) with 3 dynamic variables"),
        "{}",
        stdout(&out)
    );
    let got = server.next();
    let body: Value = serde_json::from_slice(&got.body).expect("JSON");
    assert_eq!(body["event"], "call_inbound");
    assert!(body["call_inbound"]["from_number"].is_string());
    assert!(body["call_inbound"]["call_id"].is_string());
    assert!(body.get("call").is_none(), "no call object before the call");
}

#[test]
fn a_number_for_a_dynamic_variable_fails_with_its_pointer_and_is_not_retried() {
    let mut server =
        answering(json!({"call_inbound": {"dynamic_variables": {"age": 42}}}).to_string());
    let out = server.send(&["call_inbound", "--secret", KEY]);
    assert_code(&out, 1);
    assert!(
        stdout(&out).contains(
            "/call_inbound/dynamic_variables/age: 42 is a number; dynamic variables are strings"
        ),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("not retried"), "{}", stdout(&out));
    assert_eq!(server.hits(), 1, "a 2xx is not retried, whatever its body");
}

#[test]
fn the_json_report_gains_the_response() {
    let server = answering(json!({"call_inbound": {"dynamic_variables": {"age": 42}}}).to_string());
    let out = server.send(&["call_inbound", "--secret", KEY, "--json"]);
    assert_code(&out, 1);
    let report = json_of(&out);
    let response = &report["response"];
    assert_eq!(response["status"], 200);
    assert_eq!(response["content_type"], "application/json");
    assert_eq!(response["valid"], false);
    assert_eq!(
        response["errors"][0]["pointer"],
        "/call_inbound/dynamic_variables/age"
    );
    assert!(response["ms"].as_f64().is_some());
    assert_eq!(report["delivered"], false);
}

#[test]
fn a_non_json_inbound_answer_fails() {
    let server = answering("OK");
    let out = server.send(&["call_inbound", "--secret", KEY]);
    assert_code(&out, 1);
    assert!(
        stdout(&out).contains("the body is not JSON"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_text_answer_to_a_function_passes() {
    let mut server = answering("The order shipped on Monday.");
    let out = server.send(&[
        "function_call",
        "--secret",
        KEY,
        "--function",
        "check_order",
        "--args",
        r#"{"order_id": "A-1"}"#,
    ]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("28 characters of text"),
        "{}",
        stdout(&out)
    );
    let got = server.next();
    let body: Value = serde_json::from_slice(&got.body).expect("JSON");
    assert_eq!(body["name"], "check_order");
    assert_eq!(body["args"], json!({"order_id": "A-1"}));
    assert_eq!(body["call"]["call_status"], "ongoing");
    assert!(header(&got, "x-retell-signature").is_some());
}

#[test]
fn an_answer_over_15000_characters_fails_and_says_what_the_llm_sees() {
    // 15,001 characters of two bytes each: the cap counts characters, not bytes.
    let body = "é".repeat(15_001);
    let server = answering(body);
    let out = server.send(&["function_call", "--secret", KEY, "--args", "{}"]);
    assert_code(&out, 1);
    assert!(
        stdout(&out).contains("the answer is 15,001 characters; the platform cuts it to 15,000"),
        "{}",
        stdout(&out)
    );
    let fits = answering("é".repeat(15_000));
    assert_code(&fits.send(&["function_call", "--secret", KEY]), 0);
}

#[test]
fn a_function_answer_past_its_deadline_is_a_timeout() {
    let server = Server::with("uponai", Some(KEY), |config| {
        config.faults.delay = Duration::from_millis(400);
    });
    let out = server.send(&[
        "function_call",
        "--secret",
        KEY,
        "--timeout",
        "100ms",
        "--backoff",
        "0",
    ]);
    assert_code(&out, 1);
    assert!(
        stdout(&out).contains("timed out after 100ms"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_slow_function_answer_warns_past_the_threshold() {
    let server = Server::with("uponai", Some(KEY), |config| {
        config.faults.delay = Duration::from_millis(150);
    });
    let out = server.send(&["function_call", "--secret", KEY, "--warn-after", "50ms"]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("warning: the caller waited"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn args_only_sends_the_args_alone() {
    let mut server = answering("{}");
    let out = server.send(&[
        "function_call",
        "--secret",
        KEY,
        "--args",
        r#"{"city": "Zürich"}"#,
        "--args-only",
        "--query",
        "locale=de-CH",
    ]);
    assert_code(&out, 0);
    let got = server.next();
    let body: Value = serde_json::from_slice(&got.body).expect("JSON");
    assert_eq!(body, json!({"city": "Zürich"}));
    assert_eq!(got.path, "/webhook");
}

#[test]
fn function_flags_on_another_event_are_refused() {
    let out = run(&["send", "call_ended", "--args", "{}", "--dry-run"]);
    assert_code(&out, 2);
    assert!(
        stderr(&out).contains("`call_ended` is not one"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn args_that_are_not_an_object_are_refused() {
    let out = run(&["send", "function_call", "--args", "[1]", "--dry-run"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("is an array"), "{}", stderr(&out));
}

#[test]
fn the_built_in_receiver_answers_call_inbound_validly() {
    let out = run(&["send", "call_inbound"]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("answer: routes to agent"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn listen_answers_with_the_respond_file_and_shows_the_numbers() {
    let answer = TempFile::new(
        "answer.json",
        br#"{"call_inbound": {"override_agent_id": "agent_from_file"}}"#,
    );
    let listener = Listener::start(&[
        "--secret",
        KEY,
        "--respond",
        &format!("call_inbound={}", answer.path_str()),
    ]);
    let out = listener.send(&["call_inbound", "--secret", KEY]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("routes to agent agent_from_file"),
        "{}",
        stdout(&out)
    );
    let (lines, _) = listener.stop();
    assert!(
        lines.contains(" → +1"),
        "listen shows the numbers:\n{lines}"
    );
}

/// A function server on 127.0.0.1:0 that answers each request with `answer(body)`:
/// (status, body). One request per connection (it answers `Connection: close`).
fn function_server(answer: fn(&Value) -> (u16, String)) -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/fn", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let (status, text) = answer(&value);
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                text.len()
            );
        }
    });
    url
}

#[test]
fn check_calls_two_functions_and_catches_a_crash_on_a_missing_optional_field() {
    // Crashes (500) when the optional `days` is missing; rejects nothing (no signature check).
    let fragile = function_server(|body| match body["args"].get("days") {
        Some(_) => (200, r#"{"forecast": "sunny"}"#.into()),
        None => (500, "KeyError: 'days'".into()),
    });
    let sturdy = function_server(|_| (200, r#"{"eta": "tomorrow"}"#.into()));
    let suite = format!(
        r#"
[[functions]]
name = "get_weather"
url = "{fragile}"
parameters = {{ type = "object", required = ["city"], properties = {{ city = {{ type = "string" }}, days = {{ type = "integer", minimum = 1, maximum = 7 }} }} }}

[[functions]]
name = "order_eta"
url = "{sturdy}"
parameters = {{ type = "object", properties = {{ order_id = {{ type = "string" }} }} }}
response_variables = {{ eta = "$.eta" }}
"#
    );
    let file = TempFile::new("hookcli.toml", suite.as_bytes());
    let out = run(&[
        "check",
        "--config",
        file.path_str(),
        "--to",
        &sturdy,
        "--only",
        "answers/functions",
        "--json",
    ]);
    let text = stdout(&out);
    let case: Value = serde_json::from_str(text.lines().next().unwrap_or_default()).expect("JSON");
    let reason = case["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(r#"`get_weather` with required-only args {"city":"sample"}: 500"#),
        "{text}"
    );
    assert!(
        reason.contains(r#"--function get_weather --args '{"city":"sample"}'"#),
        "{text}"
    );
    assert!(
        text.contains("hookcli send function_call --to"),
        "a reproducing command:\n{text}"
    );
    assert!(
        !text.contains("`order_eta` with"),
        "order_eta passes:\n{text}"
    );
    assert_code(&out, 1);
}

#[test]
fn the_inbound_case_is_skipped_without_an_inbound_url() {
    let server = Server::uponai();
    let out = run(&[
        "check",
        "--to",
        &server.url,
        "--secret",
        KEY,
        "--only",
        "answers/call_inbound",
    ]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("no inbound_url"), "{}", stdout(&out));
}

#[test]
fn the_inbound_case_passes_against_hookcli_s_receiver() {
    let server = Server::uponai();
    let out = run(&[
        "check",
        "--to",
        &server.url,
        "--inbound-url",
        &server.url,
        "--secret",
        KEY,
        "--only",
        "answers/call_inbound",
    ]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("1 passed"), "{}", stdout(&out));
}

#[test]
fn replay_inbound_carries_the_answer_into_the_later_events() {
    let mut server = answering(
        json!({"call_inbound": {"override_agent_id": "agent_override_7",
            "override_agent_version": 7,
            "dynamic_variables": {"tier": "gold"}, "metadata": {"crm": "c_1"}}})
        .to_string(),
    );
    let out = hookcli()
        .args(["replay", "inbound", "--to", &server.url, "--secret", KEY])
        .output()
        .expect("runs");
    assert_code(&out, 0);
    let got = server.received().to_vec();
    let events: Vec<Value> = got
        .iter()
        .map(|r| serde_json::from_slice(&r.body).expect("JSON"))
        .collect();
    assert_eq!(events[0]["event"], "call_inbound");
    for later in &events[1..] {
        let call = &later["call"];
        assert_eq!(call["agent_id"], "agent_override_7", "{}", later["event"]);
        assert_eq!(call["agent_version"], 7);
        assert_eq!(call["retell_llm_dynamic_variables"]["tier"], "gold");
        assert_eq!(call["metadata"]["crm"], "c_1");
    }
    assert_eq!(
        events.len(),
        4,
        "call_inbound, call_started, call_ended, call_analyzed"
    );
}

#[test]
fn replay_function_call_turns_response_variables_into_dynamic_variables() {
    let mut webhooks = Server::uponai();
    let mut function = answering(r#"{"order": {"eta": "tomorrow"}, "ok": true}"#);
    let out = hookcli()
        .args([
            "replay",
            "function-call",
            "--to",
            &webhooks.url,
            "--secret",
            KEY,
        ])
        .args(["--function-url", &function.url])
        .args(["--response-variable", "eta=$.order.eta"])
        .output()
        .expect("runs");
    assert_code(&out, 0);
    let call = function.next();
    let body: Value = serde_json::from_slice(&call.body).expect("JSON");
    assert!(body["args"].is_object() && body["name"].is_string());
    let events: Vec<Value> = webhooks
        .received()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).expect("JSON"))
        .collect();
    let ended = events
        .iter()
        .find(|e| e["event"] == "call_ended")
        .expect("call_ended");
    assert_eq!(
        ended["call"]["retell_llm_dynamic_variables"]["eta"],
        "tomorrow"
    );
    let started = events
        .iter()
        .find(|e| e["event"] == "call_started")
        .expect("call_started");
    assert!(
        started["call"]["retell_llm_dynamic_variables"]
            .get("eta")
            .is_none(),
        "only events after the function call carry it"
    );
}

#[test]
fn check_reads_functions_from_an_exported_agent() {
    let function = answering(r#"{"eta": "tomorrow"}"#);
    let agent = json!({"llm_id": "llm_1", "general_tools": [
        {"type": "end_call", "name": "end_call"},
        {"type": "custom", "name": "order_eta", "url": format!("{}?src=agent", function.url),
         "method": "POST", "timeout_ms": 5000, "args_at_root": true,
         "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
         "response_variables": {"eta": "$.eta", "missing": "$.not.there"}}]});
    let agent_file = TempFile::new("agent.json", agent.to_string().as_bytes());
    let suite = format!("agent_json = \"{}\"\n", agent_file.path_str());
    let file = TempFile::new("hookcli.toml", suite.as_bytes());
    let out = run(&[
        "check",
        "--config",
        file.path_str(),
        "--to",
        &function.url,
        "--secret",
        KEY,
        "--only",
        "answers/functions",
        "--json",
    ]);
    let text = stdout(&out);
    assert!(
        text.contains("response variable `missing` ($.not.there) is not in the answer"),
        "{text}"
    );
    assert!(
        text.contains("--args-only"),
        "args_at_root is args only:\n{text}"
    );
    assert_code(&out, 1);
}
