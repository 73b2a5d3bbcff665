//! What send, replay and load say when something is wrong: the cause in words, the fix in the
//! hint, and no secret from the command line in either.

mod common;

use std::time::Duration;

use hookcli::receiver::Faults;
use serde_json::Value;

use common::{KEY, Server, TempFile, assert_code, assert_no_panic, run, stderr, stdout};

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("one JSON object ({e}): {}", stdout(out)))
}

#[test]
fn https_to_a_plain_http_receiver_says_use_http() {
    let mut target = Server::uponai();
    let https = target.url.replacen("http://", "https://", 1);
    let out = run(&[
        "send",
        "call_ended",
        "--retries",
        "0",
        "--secret",
        KEY,
        "--to",
        &https,
    ]);
    assert_code(&out, 3);
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        all.contains("the receiver speaks plain HTTP: use http://"),
        "{all}"
    );
    assert!(!all.contains("InvalidContentType"), "{all}");
    assert_eq!(target.hits(), 0);
}

#[test]
fn an_unresolvable_host_is_said_to_not_resolve_not_to_be_started() {
    // `.invalid` never resolves (RFC 6761); the resolver answers at once.
    let url = "http://no-such-host.invalid/webhook";
    let out = run(&["send", "call_ended", "--retries", "0", "--to", url]);
    assert_code(&out, 3);
    assert!(
        stdout(&out).contains("does not resolve"),
        "{}",
        stdout(&out)
    );

    let out = run(&["load", "-n", "1", "--to", url]);
    assert_code(&out, 3);
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        all.contains("`no-such-host.invalid` does not resolve"),
        "{all}"
    );
    assert!(!all.contains("start it first"), "{all}");
}

#[test]
fn a_bare_port_or_host_gets_a_url_that_works() {
    for (given, hint) in [
        ("3000", "http://127.0.0.1:3000/webhook"),
        (":3000", "http://127.0.0.1:3000/webhook"),
        ("localhost:3000", "http://localhost:3000"),
    ] {
        let out = run(&["send", "call_ended", "--to", given]);
        assert_code(&out, 2);
        assert!(
            stderr(&out).contains(&format!("hint: write it as {hint}\n")),
            "{given}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn the_missing_event_hint_names_an_event_of_the_platform() {
    let out = run(&["send", "-p", "postcall"]);
    assert_code(&out, 2);
    assert!(
        stderr(&out).contains("hookcli send call_completed -p postcall"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("call_ended"), "{}", stderr(&out));
}

#[test]
fn a_body_naming_another_event_is_labelled_by_its_body_with_a_note() {
    let mut target = Server::uponai();
    let body = run(&["show", "call_ended", "--compact"]);
    assert_code(&body, 0);
    let file = TempFile::new("ended.json", &body.stdout);
    let out = target.send(&[
        "call_started",
        "--data",
        file.path_str(),
        "--secret",
        KEY,
        "--json",
    ]);
    assert_code(&out, 0);
    assert_eq!(json(&out)["event"], "call_ended");
    assert!(
        stderr(&out).contains("the body is a `call_ended` event, not `call_started`"),
        "{}",
        stderr(&out)
    );
    assert_eq!(target.next().event.as_deref(), Some("call_ended"));
}

#[test]
fn replay_from_counts_the_calls_of_the_recording() {
    let mut target = Server::uponai();
    let body = |id: &str| {
        format!(r#"{{"event":"call_ended","call":{{"call_id":"{id}","call_status":"ended"}}}}"#)
    };
    let lines = format!(
        "{}\n{}\n{}\n",
        body("call_a"),
        body("call_b"),
        body("call_a")
    );
    let file = TempFile::new("two-calls.jsonl", lines.as_bytes());
    let out = run(&[
        "replay",
        "--from",
        file.path_str(),
        "--secret",
        KEY,
        "--json",
        "--to",
        &target.url,
    ]);
    assert_code(&out, 0);
    let summary: Value = stdout(&out)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["type"] == "summary")
        .expect("a summary line");
    assert_eq!(summary["calls"], 2, "{}", stdout(&out));
    assert_eq!(target.hits(), 3);

    let out = run(&[
        "replay",
        "--from",
        file.path_str(),
        "--secret",
        KEY,
        "--to",
        &target.url,
    ]);
    assert!(stdout(&out).contains("· 2 calls in"), "{}", stdout(&out));
}

#[test]
fn send_json_keeps_the_slow_success_warning() {
    let mut target = Server::start(
        "uponai",
        Some(KEY),
        Faults {
            delay: Duration::from_millis(700),
            ..Faults::default()
        },
    );
    let out = target.send(&["call_ended", "--secret", KEY, "--timeout", "1s", "--json"]);
    assert_code(&out, 0);
    let report = json(&out);
    let warnings = report["warnings"].as_array().expect("a warnings array");
    assert_eq!(warnings.len(), 1, "{report}");
    assert!(
        warnings[0]
            .as_str()
            .is_some_and(|w| w.contains("of the 1s timeout")),
        "{report}"
    );
    assert_eq!(target.hits(), 1);

    let fast = Server::uponai();
    let out = fast.send(&["call_ended", "--secret", KEY, "--json"]);
    assert_eq!(json(&out)["warnings"], serde_json::json!([]));
}

#[test]
fn an_endless_data_file_is_refused_at_the_cap_not_read_to_exhaustion() {
    let out = run(&["send", "call_ended", "--data", "/dev/zero", "--dry-run"]);
    assert_code(&out, 2);
    assert_no_panic(&out);
    assert!(
        stderr(&out).contains("--data `/dev/zero` is larger than 25 MB"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_password_in_an_invalid_to_is_masked_in_every_command() {
    for to in ["ftp://user:PW_s3cret@host/", "http://u:PW_s3cret@[zz/"] {
        for command in [
            &["send", "call_ended"][..],
            &["replay"][..],
            &["load", "-n", "1"][..],
            &["check"][..],
        ] {
            let mut args = command.to_vec();
            args.extend(["--to", to]);
            let out = run(&args);
            assert_code(&out, 2);
            let all = format!("{}{}", stdout(&out), stderr(&out));
            assert!(!all.contains("PW_s3cret"), "{args:?}: {all}");
            assert!(all.contains(":***@"), "{args:?}: {all}");
        }
    }
}

#[test]
fn a_password_in_an_invalid_to_of_hookcli_toml_is_masked() {
    let suite = TempFile::new("hookcli.toml", b"to = \"ftp://user:PW_s3cret@host/\"\n");
    let out = run(&["check", "--config", suite.path_str()]);
    assert_code(&out, 2);
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!all.contains("PW_s3cret"), "{all}");
    assert!(all.contains("ftp://user:***@host/"), "{all}");
}

#[test]
fn query_values_are_masked_in_shown_urls() {
    let mut target = Server::uponai();
    let url = format!("{}?token=abc_s3cret", target.url);
    let out = run(&[
        "send",
        "call_ended",
        "--secret",
        KEY,
        "--json",
        "--to",
        &url,
    ]);
    assert_code(&out, 0);
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!all.contains("abc_s3cret"), "{all}");
    assert!(json(&out)["url"].as_str().unwrap().ends_with("?token=***"));
    assert_eq!(
        target.hits(),
        1,
        "the real URL, token and all, is what is used"
    );
}

#[test]
fn replay_redact_replaces_recording_and_log_urls() {
    let mut target = Server::uponai();
    let line = r#"{"event":"call_ended","call":{"call_id":"call_r","call_status":"ended","recording_url":"https://rec.example.net/call_r.wav","public_log_url":"https://logs.example.net/call_r/public.log","disconnection_reason":"user_hangup"}}"#;
    let file = TempFile::new("recorded.jsonl", format!("{line}\n").as_bytes());
    let out = run(&[
        "replay",
        "--from",
        file.path_str(),
        "--redact",
        "--secret",
        KEY,
        "--to",
        &target.url,
    ]);
    assert_code(&out, 0);
    let got: Value = serde_json::from_slice(&target.next().body).expect("a JSON body");
    for key in ["recording_url", "public_log_url"] {
        let url = got["call"][key].as_str().expect("still a string");
        assert!(url.starts_with("https://redacted.example/"), "{key}: {url}");
    }
    assert_eq!(got["call"]["disconnection_reason"], "user_hangup");
}

#[test]
fn an_early_answer_before_the_body_is_read_is_not_called_a_plain_reset() {
    use std::io::{Read, Write};
    // Answers 431 after the first bytes and closes with the rest unread, as Node does for
    // headers over its limit; the close resets the connection under the body still going out.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/webhook", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut start = [0u8; 100];
            let _ = stream.read(&mut start);
            let _ = stream.write_all(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            );
        }
    });
    let big = serde_json::json!({"event": "call_ended", "call": {"call_id": "c", "transcript": "a".repeat(4 << 20)}});
    let file = TempFile::new("big.json", big.to_string().as_bytes());
    let out = run(&[
        "send",
        "--data",
        file.path_str(),
        "--retries",
        "0",
        "--to",
        &url,
    ]);
    assert_code(&out, 1);
    // Which of the two hookcli sees depends on whether the answer or the reset comes first.
    let text = stdout(&out);
    assert!(
        text.contains("431 Request Header Fields Too Large")
            || text.contains("closed the connection while the request was being sent"),
        "{text}"
    );
}
