//! The receiving side over real sockets: verdicts, faults (counted against hookcli send's
//! attempts), the record file, the body limit, the ready line, the built-in receiver of
//! `send`, and `hookcli sign` / `verify` against the PLATFORMS.md vectors.

mod common;

use std::time::Duration;

use common::*;
use hookcli::receiver::{Faults, Received};
use hookcli::secret::Secret;
use hookcli::signing::{self, Scheme, Verdict};
use serde_json::Value;

const BODY: &[u8] = br#"{"event":"call_started","call":{"call_id":"call_0001"}}"#;
const MINUTE_MS: u64 = 60_000;

fn sign_with(key: &str, body: &[u8], at_ms: u64) -> String {
    signing::sign(Scheme::Retell, &Secret::new(key), body, at_ms)
}

/// POSTs `body` with an optional x-retell-signature to the in-process receiver and returns
/// what it answered and what it saw.
fn post(server: &mut Server, body: &[u8], signature: Option<&str>) -> (u16, Received) {
    let url = server.url.clone();
    let body = body.to_vec();
    let signature = signature.map(str::to_string);
    let status = server.block_on(async move {
        let mut request = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(signature) = signature {
            request = request.header("x-retell-signature", signature);
        }
        request.send().await.expect("the receiver answers").status()
    });
    (status.as_u16(), server.next())
}

#[test]
fn a_valid_signature_gets_204() {
    let mut server = Server::uponai();
    let (status, r) = post(
        &mut server,
        BODY,
        Some(&sign_with(KEY, BODY, signing::now_ms())),
    );
    assert_eq!((status, r.verdict), (204, Verdict::Valid));
    assert_eq!(r.event.as_deref(), Some("call_started"));
    assert_eq!(r.call_id.as_deref(), Some("call_0001"));
    assert_eq!(&r.body[..], BODY);
}

#[test]
fn signatures_that_do_not_verify_get_401() {
    let mut server = Server::uponai();
    let now = signing::now_ms();
    let mut tampered = BODY.to_vec();
    tampered[30] ^= 1;
    let cases: Vec<(&str, Vec<u8>, Option<String>, &str)> = vec![
        (
            "wrong key",
            BODY.to_vec(),
            Some(sign_with("another_key", BODY, now)),
            "invalid",
        ),
        (
            "tampered body",
            tampered,
            Some(sign_with(KEY, BODY, now)),
            "invalid",
        ),
        (
            "stale",
            BODY.to_vec(),
            Some(sign_with(KEY, BODY, now - 6 * MINUTE_MS)),
            "stale",
        ),
        (
            "future",
            BODY.to_vec(),
            Some(sign_with(KEY, BODY, now + 6 * MINUTE_MS)),
            "stale",
        ),
        ("missing", BODY.to_vec(), None, "missing"),
    ];
    for (what, body, signature, word) in cases {
        let (status, r) = post(&mut server, &body, signature.as_deref());
        assert_eq!(status, 401, "{what}");
        assert_eq!(r.verdict.word(), word, "{what}: {}", r.verdict);
        assert_eq!(r.answered, Some(401), "{what}");
    }
}

#[test]
fn a_correctly_keyed_signature_at_an_absurd_time_is_stale_not_a_crash() {
    // Past i64::MAX and u64::MAX milliseconds: the skew must not overflow (a debug build
    // panicked and dropped the connection; a release build wrapped u64::MAX to -1 ms).
    let mut server = Server::uponai();
    for at in [i64::MAX as u64 + 1, u64::MAX] {
        let (status, r) = post(&mut server, BODY, Some(&sign_with(KEY, BODY, at)));
        assert_eq!(status, 401, "v={at}");
        assert_eq!(r.verdict.word(), "stale", "v={at}: {}", r.verdict);
    }
    let at = u64::MAX.to_string();
    let body = TempFile::new("absurd.json", BODY);
    let header = sign_with(KEY, BODY, u64::MAX);
    for now in ["0", "1714608475945", at.as_str()] {
        let out = hookcli()
            .args([
                "verify",
                "--secret",
                KEY,
                "--signature",
                &header,
                "--now",
                now,
            ])
            .arg(body.path_str())
            .output()
            .unwrap();
        assert_no_panic(&out);
        let expected = if now == at { 0 } else { 1 };
        assert_code(&out, expected);
        if expected == 1 {
            assert!(stdout(&out).starts_with("stale"), "{}", stdout(&out));
        }
    }
}

#[test]
fn a_signature_just_inside_the_tolerance_is_valid() {
    let mut server = Server::uponai();
    let at = signing::now_ms() - 4 * MINUTE_MS;
    let (status, r) = post(&mut server, BODY, Some(&sign_with(KEY, BODY, at)));
    assert_eq!((status, r.verdict), (204, Verdict::Valid));
}

#[test]
fn malformed_signature_headers_get_400_or_401_and_never_a_5xx() {
    let mut server = Server::uponai();
    let valid = sign_with(KEY, BODY, signing::now_ms());
    let (v, d) = valid.split_once(",d=").unwrap();
    let uppercase = format!("{v},d={}", d.to_ascii_uppercase());
    let huge = "v".repeat(16 * 1024);
    let huge_shaped = format!("v=1,d={}", "a".repeat(16 * 1024));
    let headers = [
        "garbage",
        "v=",
        "v=1,d=zz",
        &uppercase,
        &huge,
        &huge_shaped,
        ",",
        "v=,d=",
        "d=abc,v=1",
        "v=99999999999999999999999,d=00",
        "v=1,d=",
    ];
    for header in headers {
        let (status, r) = post(&mut server, BODY, Some(header));
        let shown = &header[..header.len().min(40)];
        assert!(
            status == 400 || status == 401,
            "`{shown}` got {status}, not 400/401"
        );
        assert_eq!(r.verdict.word(), "malformed", "`{shown}`: {}", r.verdict);
    }
    // The receiver is still serving.
    let (status, _) = post(
        &mut server,
        BODY,
        Some(&sign_with(KEY, BODY, signing::now_ms())),
    );
    assert_eq!(status, 204);
}

#[test]
fn two_signature_headers_are_malformed_in_either_order() {
    let mut server = Server::uponai();
    let valid = sign_with(KEY, BODY, signing::now_ms());
    for pair in [[valid.as_str(), "garbage"], ["garbage", valid.as_str()]] {
        let url = server.url.clone();
        let pair = pair.map(str::to_string);
        let status = server.block_on(async move {
            reqwest::Client::new()
                .post(url)
                .header("content-type", "application/json")
                .header("x-retell-signature", &pair[0])
                .header("x-retell-signature", &pair[1])
                .body(BODY.to_vec())
                .send()
                .await
                .expect("the receiver answers")
                .status()
        });
        let r = server.next();
        assert_eq!(status.as_u16(), 400);
        assert_eq!(r.verdict.word(), "malformed", "{}", r.verdict);
    }
}

#[test]
fn a_body_over_the_limit_gets_413() {
    let mut server = Server::with("uponai", Some(KEY), |c| c.max_body = 1024);
    let big = format!(
        "{{\"event\":\"call_ended\",\"pad\":\"{}\"}}",
        "x".repeat(4096)
    );
    let (status, r) = post(&mut server, big.as_bytes(), None);
    assert_eq!(status, 413);
    assert_eq!(r.answered, Some(413));
    let size = big.len() as u64;
    assert_eq!(
        r.verdict,
        Verdict::TooLarge {
            bytes: size,
            limit: 1024
        }
    );
    assert_eq!(
        r.size(),
        size,
        "the size that arrived, not the 0 bytes kept"
    );
    let json = serde_json::to_value(hookcli::output::received::json(&r)).unwrap();
    assert_eq!(json["verdict"], "too_large", "{json}");
    assert_eq!(json["bytes"], size, "{json}");
    // Just under the limit is read and judged.
    let (status, _) = post(
        &mut server,
        BODY,
        Some(&sign_with(KEY, BODY, signing::now_ms())),
    );
    assert_eq!(status, 204);
}

#[test]
fn a_body_over_the_max_body_flag_gets_413_and_send_fails() {
    let listener = Listener::start(&["--secret", KEY, "--max-body", "1KB"]);
    let out = listener.send(&["call_ended", "--secret", KEY, "--retries", "0"]);
    assert_code(&out, 1);
    assert!(stdout(&out).contains("413"), "{}", stdout(&out));
    let (lines, _) = listener.stop();
    assert!(lines.contains("413"), "{lines}");
}

#[test]
fn a_body_over_the_limit_is_shown_as_too_large_and_recorded_by_its_size() {
    let big = format!(
        "{{\"event\":\"call_ended\",\"pad\":\"{}\"}}",
        "x".repeat(3000)
    );
    let data = TempFile::new("big.json", big.as_bytes());
    let record = data.path.with_file_name("record.ndjson");
    let record_arg = record.to_str().unwrap();
    let listener = Listener::start(&["--secret", KEY, "--max-body", "1KB", "--record", record_arg]);
    let out = listener.send(&["--data", data.path_str(), "--secret", KEY, "--retries", "0"]);
    assert_code(&out, 1);
    let (lines, rest) = listener.stop();
    assert!(lines.contains("too large  413"), "{lines}");
    assert!(!lines.contains("unsigned"), "{lines}");
    assert!(
        rest.contains("stopped after 1 request: 1 too large"),
        "{rest}"
    );
    let text = std::fs::read_to_string(&record).expect("the record file");
    let line: Value = serde_json::from_str(text.trim()).expect("one NDJSON line");
    assert_eq!(line["rejected"], "too_large", "{line}");
    assert_eq!(line["status"], 413, "{line}");
    assert_eq!(line["bytes"], big.len() as u64, "{line}");
    assert_eq!(line["max_body"], 1024, "{line}");
    assert!(
        line.get("body").is_none(),
        "no empty body pretending: {line}"
    );
    // replay cannot send a body that was never kept, and says which line it is.
    let server = Server::uponai();
    let out = run(&["replay", "--from", record_arg, "--to", &server.url]);
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("line 1") && err.contains("too large"), "{err}");
}

#[test]
fn listen_prints_its_ready_line_and_a_line_per_request() {
    let listener = Listener::start(&["--secret", KEY]);
    let port: u16 = listener
        .url
        .strip_prefix("http://127.0.0.1:")
        .and_then(|rest| rest.strip_suffix("/webhook"))
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("ready line: {}", listener.ready_line));
    assert_ne!(port, 0, "the ready line shows the port it got");
    let out = listener.send(&["call_ended", "--secret", KEY]);
    assert_code(&out, 0);
    let (lines, rest) = listener.stop();
    assert_eq!(lines.lines().count(), 1, "{lines}");
    assert!(lines.contains("call_ended"), "{lines}");
    assert!(lines.contains("valid"), "{lines}");
    assert!(lines.contains("204"), "{lines}");
    assert!(rest.contains("stopped after 1 request: 1 valid"), "{rest}");
}

#[test]
fn listen_json_prints_one_object_per_request() {
    let listener = Listener::start(&["--secret", KEY, "--json"]);
    let out = listener.send(&["call_ended", "--retries", "0"]);
    assert_code(&out, 1);
    let (lines, _) = listener.stop();
    let first: Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!(first["verdict"], "missing");
    assert_eq!(first["status"], 401);
    assert_eq!(first["event"], "call_ended");
}

#[test]
fn the_status_fault_answers_that_status() {
    let listener = Listener::start(&["--secret", KEY, "--status", "503"]);
    let out = listener.send(&["call_ended", "--secret", KEY, "--backoff", "0", "--json"]);
    assert_code(&out, 1);
    let (lines, _) = listener.stop();
    assert_eq!(lines.lines().count(), 4, "{lines}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["status"], 503);
}

#[test]
fn the_delay_fault_makes_a_short_client_timeout_fire() {
    let listener = Listener::start(&["--secret", KEY, "--delay", "30s"]);
    let out = listener.send(&[
        "call_ended",
        "--secret",
        KEY,
        "--timeout",
        "200ms",
        "--retries",
        "1",
        "--backoff",
        "0",
        "--json",
    ]);
    assert_code(&out, 1);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors: Vec<&Value> = report["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["error"])
        .collect();
    assert_eq!(errors, ["timeout", "timeout"]);
    let (lines, _) = listener.stop();
    assert_eq!(lines.lines().count(), 2, "{lines}");
}

#[test]
fn fail_first_2_then_send_succeeds_on_attempt_3() {
    let listener = Listener::start(&["--secret", KEY, "--fail-first", "2"]);
    let out = listener.send(&["call_ended", "--secret", KEY, "--backoff", "0", "--json"]);
    assert_code(&out, 0);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let statuses: Vec<&Value> = report["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status"])
        .collect();
    assert_eq!(statuses, [500, 500, 204]);
    let (lines, _) = listener.stop();
    assert_eq!(lines.lines().count(), 3, "{lines}");
}

#[test]
fn the_drop_fault_is_reported_as_a_reset() {
    let listener = Listener::start(&["--secret", KEY, "--drop"]);
    let out = listener.send(&["call_ended", "--secret", KEY, "--retries", "0", "--json"]);
    assert_code(&out, 1);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["attempts"][0]["error"], "reset", "{report}");
    assert!(report["status"].is_null());
    let (lines, rest) = listener.stop();
    assert!(lines.contains("dropped"), "{lines}");
    assert!(rest.contains("1 dropped on purpose"), "{rest}");
}

#[test]
fn drop_with_fail_first_drops_only_the_first_requests() {
    let listener = Listener::start(&["--secret", KEY, "--drop", "--fail-first", "1"]);
    let out = listener.send(&["call_ended", "--secret", KEY, "--backoff", "0", "--json"]);
    assert_code(&out, 0);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["attempts"][0]["error"], "reset", "{report}");
    assert_eq!(report["attempts"][1]["status"], 204, "{report}");
    listener.stop();
}

#[test]
fn the_record_file_holds_the_exact_bytes_and_headers_received() {
    let raw = b"{\"event\":  \"call_ended\",\n \"call\": {\"call_id\": \"rec_1\", \"note\": \"caf\xc3\xa9 \xf0\x9f\x91\x8b\"}}\n";
    let data = TempFile::new("body.json", raw);
    let record = data.path.with_file_name("record.ndjson");
    let record_arg = record.to_str().unwrap();
    let listener = Listener::start(&["--secret", KEY, "--record", record_arg]);
    let out = listener.send(&[
        "--data",
        data.path_str(),
        "--secret",
        KEY,
        "-H",
        "X-Trace: t1",
    ]);
    assert_code(&out, 0);
    let out = listener.send(&["call_started", "--retries", "0"]);
    assert_code(&out, 1);
    listener.stop();
    let text = std::fs::read_to_string(&record).expect("the record file");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("NDJSON"))
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    let first = &lines[0];
    assert_eq!(first["body"].as_str().unwrap().as_bytes(), raw);
    assert_eq!(first["method"], "POST");
    assert_eq!(first["path"], "/webhook");
    assert_eq!(first["status"], 204, "the status answered");
    assert_eq!(
        lines[1]["status"], 401,
        "an unsigned request is answered 401"
    );
    assert!(first["time"].is_string() && first["time_ms"].is_u64());
    let headers = first["headers"].as_array().unwrap();
    let has = |name: &str| headers.iter().any(|h| h[0] == name);
    assert!(has("x-retell-signature") && has("content-type"), "{first}");
    assert!(headers.iter().any(|h| h[0] == "x-trace" && h[1] == "t1"));
    // The recorded signature verifies over the recorded body.
    let sig = headers
        .iter()
        .find(|h| h[0] == "x-retell-signature")
        .unwrap()[1]
        .as_str()
        .unwrap();
    let verdict = signing::verify(
        Scheme::Retell,
        &Secret::new(KEY),
        raw,
        Some(sig),
        signing::now_ms(),
        Duration::from_secs(300),
    );
    assert_eq!(verdict, Verdict::Valid);
}

#[test]
fn a_port_in_use_is_exit_2_with_a_clear_message() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    let out = run(&["listen", "--port", &port]);
    assert_code(&out, 2);
    assert_no_panic(&out);
    let err = stderr(&out);
    assert!(err.starts_with("error:"), "{err}");
    assert!(
        err.contains(&port) && err.contains("already in use"),
        "{err}"
    );
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "an error and a hint:\n{err}");
    assert!(
        lines[1].starts_with("hint:") && lines[1].contains("--port"),
        "{err}"
    );
    assert!(!err.contains("os error"), "{err}");
}

#[test]
fn an_empty_secret_is_refused_not_taken_for_no_verification() {
    // `--secret "$KEY"` with KEY unset: a receiver that verified nothing would pass every
    // sender's test.
    let out = run(&["listen", "--port", "0", "--secret", ""]);
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("the key is empty"), "{err}");
    assert!(!err.contains("listening on"), "{err}");
}

#[test]
fn a_key_the_platform_cannot_use_is_refused_before_listening() {
    // Every request would fail to verify against it, and the receiver would say nothing why.
    let cases = [
        (
            "standard-webhooks",
            "whsec_!!!",
            "the key is not base64 after its whsec_ prefix",
        ),
        (
            "vapi",
            "tok\r\nx-evil: 1",
            "the key has a control character",
        ),
    ];
    for (platform, key, reason) in cases {
        let out = run(&["listen", "--port", "0", "-p", platform, "--secret", key]);
        assert_code(&out, 2);
        assert_no_panic(&out);
        let err = stderr(&out);
        assert!(
            err.starts_with(&format!(
                "error: the key for {platform} cannot be used: {reason}"
            )),
            "{err}"
        );
        assert!(!err.contains("listening on"), "{err}");
    }
}

#[test]
fn a_record_file_that_cannot_be_written_is_one_line_naming_it_and_the_fix() {
    let dir = TempFile::new("placeholder", b"");
    let folder = dir.path.parent().unwrap();
    let missing = folder.join("missing").join("record.ndjson");
    let cases = [
        (missing.to_str().unwrap(), "its folder does not exist"),
        (folder.to_str().unwrap(), "it is a folder"),
    ];
    for (path, reason) in cases {
        let out = run(&["listen", "--port", "0", "--record", path]);
        assert_code(&out, 2);
        assert_no_panic(&out);
        let err = stderr(&out);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "an error and a hint:\n{err}");
        assert_eq!(
            lines[0],
            format!("error: cannot write the record file {path}: {reason}")
        );
        assert!(
            lines[1].starts_with("hint:") && lines[1].contains("--record"),
            "{err}"
        );
        assert!(!err.contains("os error"), "{err}");
    }
}

#[test]
fn ctrl_c_stops_listen_cleanly_with_a_count_by_verdict() {
    let listener = Listener::start(&["--secret", KEY]);
    assert_code(&listener.send(&["call_ended", "--secret", KEY]), 0);
    let wrong_key = listener.send(&["call_ended", "--secret", "another", "--retries", "0"]);
    assert_code(&wrong_key, 1);
    let (lines, rest) = listener.stop_with("INT");
    assert_eq!(lines.lines().count(), 2, "{lines}");
    assert!(
        rest.contains("stopped after 2 requests: 1 valid, 1 invalid"),
        "{rest}"
    );
}

#[test]
fn bad_listen_flags_are_exit_2_with_the_value_and_the_fix() {
    let cases = [
        (
            vec!["--status", "100"],
            "`100` is not a status listen can answer",
        ),
        (vec!["--status", "700"], "from 200 to 599"),
        (vec!["--port", "-1"], "`-1` is not a port"),
        (vec!["--port", "70000"], "`70000` is not a port"),
        (vec!["--fail-first", "x"], "`x` is not a whole number"),
        (vec!["--delay", "-1s"], "cannot be negative"),
        (vec!["--max-body", "lots"], "`lots` is not a size"),
        (vec!["--max-body", "-5"], "`-5` is not a size"),
        (vec!["--max-body", "0"], "above 0"),
        (vec!["--body-timeout", "0"], "more than 0"),
        (vec!["--body-timeout", "soon"], "like 10s"),
        (vec!["--body-memory", "lots"], "`lots` is not a size"),
        (
            vec!["--body-memory", "1MB"],
            "--body-memory 1 MB is less than --max-body 25 MB",
        ),
        (vec!["--path", "webhook"], "--path /webhook"),
        (vec!["--delay", "soon"], "like 10s"),
        // -q used to win silently over --json and -v.
        (
            vec!["--json", "-q"],
            "'--json' cannot be used with '--quiet'",
        ),
        (vec!["-q", "--json"], "cannot be used with"),
        (vec!["-v", "-q"], "cannot be used with"),
        (vec!["--json", "-v"], "cannot be used with"),
    ];
    // A port in use: were a flag wrongly accepted, listen would fail to bind (and the needle
    // would be missing) rather than serve forever and hang the test.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    for (args, needle) in cases {
        let mut cmd = hookcli();
        cmd.arg("listen").args(&args);
        if !args.contains(&"--port") {
            cmd.args(["--port", &port]);
        }
        let out = cmd.output().unwrap();
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{args:?}\n{err}");
        assert_no_panic(&out);
        assert_eq!(err.lines().filter(|l| l.starts_with("error:")).count(), 1);
        let hints = err.lines().filter(|l| l.starts_with("hint: ")).count();
        assert_eq!(hints, 1, "{args:?}: one hint line with the fix\n{err}");
        assert!(err.contains(needle), "{args:?}: `{needle}` in\n{err}");
    }
}

#[test]
fn sign_and_verify_name_a_bad_timestamp_and_the_fix() {
    let body = TempFile::new("body.json", BODY);
    for flags in [
        vec!["sign", "--secret", KEY, "--timestamp", "yesterday"],
        vec![
            "verify",
            "--secret",
            KEY,
            "--signature",
            "v=1,d=2",
            "--now",
            "-5",
        ],
    ] {
        let out = hookcli()
            .args(&flags)
            .arg(body.path_str())
            .output()
            .unwrap();
        assert_code(&out, 2);
        let err = stderr(&out);
        assert!(err.contains("is not a Unix time in milliseconds"), "{err}");
        assert!(err.contains("1714608475945"), "{err}");
    }
}

#[test]
fn sign_and_verify_of_a_missing_body_file_say_so_with_a_hint() {
    let missing = std::env::temp_dir().join("hookcli-no-such-body.json");
    let missing = missing.to_str().unwrap();
    for flags in [
        vec!["sign", "--secret", KEY, missing],
        vec!["verify", "--secret", KEY, "--signature", "v=1,d=2", missing],
    ] {
        let out = hookcli().args(&flags).output().unwrap();
        assert_code(&out, 2);
        assert_no_panic(&out);
        let err = stderr(&out);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{err}");
        assert!(
            lines[0].starts_with("error: body `") && lines[0].ends_with("no such file"),
            "{err}"
        );
        assert!(
            lines[1].starts_with("hint: ") && lines[1].contains("stdin"),
            "{err}"
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn send_without_to_delivers_to_the_built_in_receiver_and_verifies() {
    let out = run(&["send", "call_ended"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("delivered: 204"), "{text}");
    // The streamed report, then what the receiver saw.
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("POST http://127.0.0.1:"), "{text}");
    assert!(lines[1].starts_with("  #1  204 No Content  "), "{text}");
    assert_eq!(lines[2], "delivered: 204 No Content (2xx)", "{text}");
    assert!(lines[3].starts_with("receiver saw: "), "{text}");
    let seen = text
        .lines()
        .find(|l| l.starts_with("receiver saw:"))
        .unwrap_or_else(|| panic!("a receiver line in\n{text}"));
    assert!(
        seen.contains("call_ended") && seen.contains(" valid "),
        "{seen}"
    );
    let err = stderr(&out);
    assert!(err.contains("no --to given"), "{err}");
    assert!(err.contains("http://127.0.0.1:"), "{err}");
}

#[test]
fn send_without_to_json_includes_what_the_receiver_saw() {
    let out = run(&["send", "call_analyzed", "--json"]);
    assert_code(&out, 0);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["delivered"], true);
    assert_eq!(report["receiver"][0]["verdict"], "valid");
    assert_eq!(report["receiver"][0]["event"], "call_analyzed");
}

const VECTOR_KEY: &str = "key_test_hookcli";
const VECTOR_T: &str = "1714608475945";
const VECTORS: [(&str, &str); 2] = [
    (
        r#"{"event":"call_started","call":{"call_id":"call_0001"}}"#,
        "v=1714608475945,d=16c3115b3e1b12e7df79c663476918f535042d3c1d82ddd725aeaaf0878d883e",
    ),
    (
        r#"{"event":"call_ended","call":{"call_id":"Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6","transcript":"Agent: Merhaba! 👋 Café?"}}"#,
        "v=1714608475945,d=99385dae52a3ab95a3b04ae38bccebc903345a40a12d5daf3a68d01fcc46e039",
    ),
];

#[test]
fn sign_reproduces_the_platforms_md_vectors() {
    for (body, expected) in VECTORS {
        let file = TempFile::new("vector.json", body.as_bytes());
        let out = run(&[
            "sign",
            "--secret",
            VECTOR_KEY,
            "--timestamp",
            VECTOR_T,
            file.path_str(),
        ]);
        assert_code(&out, 0);
        assert_eq!(stdout(&out), format!("x-retell-signature: {expected}\n"));
    }
}

#[test]
fn sign_reads_the_body_from_stdin() {
    let (body, expected) = VECTORS[1];
    let mut child = hookcli()
        .args(["sign", "--secret", VECTOR_KEY, "--timestamp", VECTOR_T, "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 0);
    assert_eq!(stdout(&out), format!("x-retell-signature: {expected}\n"));
}

#[test]
fn verify_accepts_the_vectors_and_says_how_stale_an_old_one_is() {
    for (body, signature) in VECTORS {
        let file = TempFile::new("vector.json", body.as_bytes());
        let verify = |now: &str| {
            run(&[
                "verify",
                "--secret",
                VECTOR_KEY,
                "--signature",
                signature,
                "--now",
                now,
                file.path_str(),
            ])
        };
        let out = verify(VECTOR_T);
        assert_code(&out, 0);
        assert_eq!(stdout(&out).trim(), "valid");

        let later = (1714608475945u64 + 7 * 60_000 + 12_000).to_string();
        let out = verify(&later);
        assert_code(&out, 1);
        assert_eq!(stdout(&out).trim(), "stale by 7m12s");
    }
}

#[test]
fn verify_says_invalid_or_malformed_with_exit_1() {
    let (body, signature) = VECTORS[0];
    let file = TempFile::new("vector.json", body.as_bytes());
    let verify = |key: &str, signature: &str| {
        run(&[
            "verify",
            "--secret",
            key,
            "--signature",
            signature,
            "--now",
            VECTOR_T,
            file.path_str(),
        ])
    };
    let out = verify("wrong_key", signature);
    assert_code(&out, 1);
    assert_eq!(stdout(&out).trim(), "invalid");
    let out = verify(VECTOR_KEY, "garbage");
    assert_code(&out, 1);
    assert!(stdout(&out).starts_with("malformed: "), "{}", stdout(&out));
    // The whole header line, as `sign` prints it, is accepted too.
    let out = verify(VECTOR_KEY, &format!("x-retell-signature: {signature}"));
    assert_code(&out, 0);
    // An empty value (a header that was not there) is `missing`, as the receiver says.
    for empty in ["", " ", "x-retell-signature:"] {
        let out = verify(VECTOR_KEY, empty);
        assert_code(&out, 1);
        assert_eq!(stdout(&out), "missing\n", "{empty:?}");
    }
}

#[test]
fn receiver_faults_combine_delay_and_fail_first_in_process() {
    let mut server = Server::start(
        "uponai",
        Some(KEY),
        Faults {
            fail_first: 1,
            status: 202,
            ..Faults::default()
        },
    );
    let out = server.send(&["call_ended", "--secret", KEY, "--backoff", "0"]);
    assert_code(&out, 0);
    let answered: Vec<_> = server.received().iter().map(|r| r.answered).collect();
    assert_eq!(answered, [Some(500), Some(202)]);
}

#[test]
fn quiet_listen_prints_no_lines_but_still_verifies_and_counts() {
    let listener = Listener::start(&["--secret", KEY, "-q"]);
    assert_code(&listener.send(&["call_ended", "--secret", KEY]), 0);
    let out = listener.send(&["call_ended", "--retries", "0"]);
    assert_code(&out, 1);
    assert!(stdout(&out).contains("401"), "{}", stdout(&out));
    let (lines, rest) = listener.stop();
    assert_eq!(lines, "");
    assert!(
        rest.contains("stopped after 2 requests: 1 valid, 1 missing"),
        "{rest}"
    );
}

#[test]
fn other_paths_get_404_and_other_methods_405_never_5xx() {
    let mut server = Server::uponai();
    let base = server.url.trim_end_matches("/webhook").to_string();
    let (elsewhere, get) = server.block_on(async {
        let client = reqwest::Client::new();
        let elsewhere = client.post(format!("{base}/other")).body(BODY).send().await;
        let get = client.get(format!("{base}/webhook")).send().await;
        (elsewhere.unwrap(), get.unwrap())
    });
    assert_eq!(elsewhere.status(), 404);
    assert_eq!(get.status(), 405);
    assert_eq!(get.headers()["allow"], "POST");
    assert_eq!(server.hits(), 2);
}

/// A raw connection to a listener, for what no well-behaved client sends: a length it never
/// sends, a body that stalls.
fn connect(url: &str) -> std::net::TcpStream {
    let addr = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("an http:// URL: {url}"));
    let stream = std::net::TcpStream::connect(addr).expect("connect to the listener");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

/// Writes a POST head declaring `length`, then `body` (which may be shorter).
fn post_raw(stream: &mut std::net::TcpStream, length: u64, body: &[u8]) {
    use std::io::Write;
    let head = format!(
        "POST /webhook HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         content-length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
}

/// The answer's head, lowercased: `http/1.1 413 payload too large\r\n...`.
fn read_head(stream: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        // read_exact, not read: it retries a read interrupted by a signal (EINTR).
        match stream.read_exact(&mut byte) {
            Ok(()) => head.push(byte[0]),
            other => panic!(
                "the head ended early ({other:?}): {:?}",
                String::from_utf8_lossy(&head)
            ),
        }
    }
    String::from_utf8_lossy(&head).to_ascii_lowercase()
}

/// Reads until the listener closes the connection.
fn read_to_close(stream: &mut std::net::TcpStream) {
    use std::io::Read;
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
}

#[test]
fn a_declared_length_over_max_body_gets_413_at_once_and_listen_serves_on() {
    // 2 GB declared, 10 bytes sent: waiting for the rest held the connection past 70 s.
    let listener = Listener::start(&["--secret", KEY]);
    let mut stream = connect(&listener.url);
    let started = std::time::Instant::now();
    post_raw(&mut stream, 2_000_000_000, b"{\"event\":");
    let head = read_head(&mut stream);
    assert!(head.starts_with("http/1.1 413"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    // Answered on the declared length, long before the 10 s body deadline.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let out = listener.send(&["call_ended", "--secret", KEY, "--retries", "0"]);
    assert_code(&out, 0);
    let (lines, _) = listener.stop();
    assert!(lines.contains("too large  413"), "{lines}");
    assert!(lines.contains("valid  204"), "{lines}");
}

#[test]
fn a_stalled_body_is_cut_at_the_body_timeout_and_the_next_request_is_answered() {
    let listener = Listener::start(&["--secret", KEY, "--body-timeout", "300ms"]);
    let mut stream = connect(&listener.url);
    let started = std::time::Instant::now();
    post_raw(&mut stream, 100, b"{\"event\":");
    let head = read_head(&mut stream);
    assert!(head.starts_with("http/1.1 408"), "{head}");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    read_to_close(&mut stream);
    let out = listener.send(&["call_ended", "--secret", KEY, "--retries", "0"]);
    assert_code(&out, 0);
    let (lines, rest) = listener.stop();
    assert!(lines.contains("timed out  408"), "{lines}");
    assert!(lines.contains("not all there after 300ms"), "{lines}");
    assert!(rest.contains("2 requests: 1 valid, 1 timed out"), "{rest}");
}

#[test]
fn bodies_over_the_memory_budget_get_503_with_retry_after_until_it_frees() {
    let listener = Listener::start(&["--secret", KEY, "--max-body", "4KB", "--body-memory", "4KB"]);
    // This one holds the whole budget: it declares 4 KB. Its `100 Continue` comes once
    // listen is waiting for the body, so with the 4 KB already held.
    let mut holder = connect(&listener.url);
    let head = "POST /webhook HTTP/1.1\r\nhost: localhost\r\ncontent-length: 4096\r\n\
                expect: 100-continue\r\n\r\n";
    std::io::Write::write_all(&mut holder, head.as_bytes()).unwrap();
    let go_on = read_head(&mut holder);
    assert!(go_on.starts_with("http/1.1 100"), "{go_on}");
    let mut probe = connect(&listener.url);
    post_raw(&mut probe, BODY.len() as u64, BODY);
    let refused = read_head(&mut probe);
    assert!(refused.starts_with("http/1.1 503"), "{refused}");
    assert!(refused.contains("retry-after: 1"), "{refused}");
    // The holder sends its body: its share is given back before it is answered, so the next
    // good request fits.
    std::io::Write::write_all(&mut holder, &[b' '; 4096]).unwrap();
    let answer = read_head(&mut holder);
    assert!(answer.starts_with("http/1.1 401"), "unsigned: {answer}");
    let out = listener.send(&["call_started", "--secret", KEY, "--retries", "0"]);
    assert_code(&out, 0);
    let (lines, _) = listener.stop();
    assert!(lines.contains("overloaded  503"), "{lines}");
    assert!(lines.contains("4.0 KB memory budget"), "{lines}");
    assert!(lines.contains("call_started"), "{lines}");
}

#[test]
#[cfg(unix)] // ulimit
fn out_of_file_descriptors_listen_closes_idle_connections_so_a_new_client_is_served() {
    // 32 descriptors: about 20 connections once the runtime has its own.
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", "ulimit -n 32 && exec \"$0\" listen --port 0 \"$@\""])
        .arg(env!("CARGO_BIN_EXE_hookcli"))
        .args(["--secret", KEY])
        .env("NO_COLOR", "1")
        .env_remove("HOOKCLI_SECRET")
        .env_remove("UPONAI_API_KEY")
        .env_remove("RETELL_API_KEY")
        .stdin(std::process::Stdio::null());
    let listener = Listener::spawn(cmd);
    // Connections that never send a byte, more than the listener has descriptors for.
    let idle: Vec<_> = (0..60).map(|_| connect(&listener.url)).collect();
    let out = listener.send(&["call_ended", "--secret", KEY, "--retries", "0"]);
    assert_code(&out, 0);
    let out = listener.send(&["call_ended", "--secret", KEY, "--retries", "0"]);
    assert_code(&out, 0);
    drop(idle);
    let (lines, rest) = listener.stop();
    assert_eq!(lines.matches("valid  204").count(), 2, "{lines}");
    assert!(rest.contains("closed to make room"), "{rest}");
}

#[test]
#[cfg(target_os = "linux")] // /dev/full
fn a_record_that_cannot_be_written_is_said_once_answered_503_counted_and_exits_1() {
    let listener = Listener::start(&["--secret", KEY, "--record", "/dev/full"]);
    let out = listener.send(&["call_ended", "--secret", KEY, "--backoff", "0", "--json"]);
    // Answered 503, so a platform sends it again rather than losing it.
    assert_code(&out, 1);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let statuses: Vec<&Value> = report["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status"])
        .collect();
    assert_eq!(statuses, [503, 503, 503, 503], "{report}");
    let (lines, rest, code) = listener.stop_code("TERM");
    assert_eq!(code, Some(1), "{rest}");
    assert_eq!(
        rest.matches("warning: cannot write the record file: the disk is full")
            .count(),
        1,
        "said once:\n{rest}"
    );
    assert!(rest.contains("; 4 requests not recorded"), "{rest}");
    assert_eq!(lines.matches("valid  503").count(), 4, "{lines}");
    assert!(lines.contains("not recorded: the disk is full"), "{lines}");
}

#[test]
#[cfg(unix)] // ulimit -f, SIGXFSZ
fn a_record_write_past_the_file_size_limit_leaves_no_torn_line() {
    let dir = TempFile::new("placeholder", b"");
    let record = dir.path.with_file_name("record.ndjson");
    // 1 block (512 or 1024 bytes): room for one small request's line, not a call_ended's.
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", "ulimit -f 1 && exec \"$0\" listen --port 0 \"$@\""])
        .arg(env!("CARGO_BIN_EXE_hookcli"))
        .args(["--secret", KEY, "--record", record.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .env_remove("HOOKCLI_SECRET")
        .env_remove("UPONAI_API_KEY")
        .env_remove("RETELL_API_KEY")
        .stdin(std::process::Stdio::null());
    let listener = Listener::spawn(cmd);
    let mut stream = connect(&listener.url);
    post_raw(&mut stream, BODY.len() as u64, BODY);
    assert!(read_head(&mut stream).starts_with("http/1.1 401"));
    let out = listener.send(&["call_ended", "--secret", KEY, "--retries", "0"]);
    assert_code(&out, 1);
    assert!(stdout(&out).contains("503"), "{}", stdout(&out));
    let (_, rest, code) = listener.stop_code("TERM");
    assert_eq!(code, Some(1), "{rest}");
    assert!(rest.contains("1 request not recorded"), "{rest}");
    let text = std::fs::read_to_string(&record).unwrap();
    assert!(text.ends_with('\n'), "a whole last line: {text:?}");
    assert_eq!(text.lines().count(), 1, "{text}");
    let line: Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(line["status"], 401, "{line}");
}

#[test]
fn replay_from_skips_a_torn_last_line_with_a_note_but_not_a_torn_middle_line() {
    let whole = format!(
        "{}\n",
        serde_json::json!({"event": "call_started", "call": {"call_id": "torn_1"}})
    );
    let torn = &whole[..whole.len() / 2];
    let file = TempFile::new("torn.ndjson", format!("{whole}{torn}").as_bytes());
    let mut server = Server::uponai();
    let out = run(&[
        "replay",
        "--from",
        file.path_str(),
        "--to",
        &server.url,
        "--secret",
        KEY,
    ]);
    assert_code(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains("note: skipped 1 torn entry (line 2): cut short"),
        "{err}"
    );
    assert_eq!(server.hits(), 1);
    // Torn inside a character: the file ends in half of an `é`.
    let accented = format!(
        "{}\n",
        serde_json::json!({"event": "call_started", "call": {"call_id": "torn_2", "note": "café"}})
    );
    let cut = accented.find('é').unwrap() + 1;
    let mut bytes = whole.clone().into_bytes();
    bytes.extend_from_slice(&accented.as_bytes()[..cut]);
    let file = TempFile::new("torn-char.ndjson", &bytes);
    let out = run(&[
        "replay",
        "--from",
        file.path_str(),
        "--to",
        &server.url,
        "--secret",
        KEY,
    ]);
    assert_code(&out, 0);
    assert!(
        stderr(&out).contains("skipped 1 torn entry (line 2)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(server.hits(), 2);
    let file = TempFile::new("middle.ndjson", format!("{torn}\n{whole}").as_bytes());
    let out = run(&["replay", "--from", file.path_str(), "--to", &server.url]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("line 1"), "{}", stderr(&out));
}

/// An event name and call id built to redraw the terminal and forge a `valid 204` line.
const FORGING: &str = "{\"event\":\"x\\u001b[2K\\r10:00:00.000  call_ended  c1  valid  204  1 KB\\nfake\",\
                       \"call\":{\"call_id\":\"id\\u001b[31m\\u009b\\u202e\"}}";

#[test]
fn wire_text_in_listen_lines_and_bodies_is_escaped_and_cannot_forge_a_line() {
    for verbose in [false, true] {
        let args: &[&str] = if verbose { &["-v"] } else { &[] };
        let listener = Listener::start(args);
        let mut stream = connect(&listener.url);
        post_raw(&mut stream, FORGING.len() as u64, FORGING.as_bytes());
        assert!(read_head(&mut stream).starts_with("http/1.1 204"));
        let (lines, _) = listener.stop();
        let first = lines.lines().next().unwrap_or_default();
        assert!(
            first.contains("x\\u{1b}[2K\\r10:00:00.000  call_ended  c1  valid  204  1 KB\\nfake"),
            "{lines}"
        );
        assert!(first.contains("id\\u{1b}[31m\\u{9b}\\u{202e}"), "{lines}");
        // Nothing the peer sent reaches the terminal as a control character.
        assert!(
            !lines
                .chars()
                .any(|c| c != '\n' && (c.is_control() || c == '\u{202e}')),
            "{lines:?}"
        );
        let expected = if verbose {
            "the pretty body too"
        } else {
            "one line"
        };
        let count = lines.lines().count();
        assert_eq!(count > 1, verbose, "{expected}: {lines}");
        assert!(!lines.lines().any(|l| l.starts_with("fake")), "{lines}");
    }
    // --json stays exact.
    let listener = Listener::start(&["--json"]);
    let mut stream = connect(&listener.url);
    post_raw(&mut stream, FORGING.len() as u64, FORGING.as_bytes());
    read_head(&mut stream);
    let (lines, _) = listener.stop();
    let json: Value = serde_json::from_str(lines.trim()).unwrap();
    let sent: Value = serde_json::from_str(FORGING).unwrap();
    assert_eq!(json["event"], sent["event"]);
    assert_eq!(json["call_id"], sent["call"]["call_id"]);
}

#[test]
fn send_verbose_escapes_the_response_body_and_headers_it_shows() {
    use std::io::{Read, Write};
    // A receiver whose answer tries to clear the screen and overwrite the verdict.
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/webhook", server.local_addr().unwrap());
    let answer = std::thread::spawn(move || {
        let (mut stream, _) = server.accept().unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        // The head, then as much body as its length says.
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).unwrap();
            seen.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&seen).to_ascii_lowercase();
        let length: usize = text
            .split("content-length: ")
            .nth(1)
            .and_then(|rest| rest.split("\r\n").next())
            .and_then(|n| n.trim().parse().ok())
            .unwrap();
        let head_len = seen.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        while seen.len() < head_len + length {
            let n = stream.read(&mut buf).unwrap();
            seen.extend_from_slice(&buf[..n]);
        }
        let body = b"ok\x1b[2J\r  #1  200 OK\n\xc2\x9b31mforged";
        let mut reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nx-evil: a",
            body.len()
        )
        .into_bytes();
        reply.extend_from_slice(b"\xc2\x9b31mb\r\nconnection: close\r\n\r\n");
        reply.extend_from_slice(body);
        stream.write_all(&reply).unwrap();
    });
    let out = run(&["send", "call_ended", "-v", "--retries", "0", "--to", &url]);
    answer.join().unwrap();
    assert_code(&out, 0);
    let err = stderr(&out);
    assert!(err.contains("< ok\\u{1b}[2J\\r  #1  200 OK"), "{err}");
    assert!(err.contains("< \\u{9b}31mforged"), "{err}");
    assert!(err.contains("< x-evil: a\\u{9b}31mb"), "{err}");
    assert!(!err.chars().any(|c| c != '\n' && c.is_control()), "{err:?}");
}

#[test]
fn a_retry_is_marked_duplicate_of_the_first_request_in_the_line_the_record_and_json() {
    let dir = TempFile::new("placeholder", b"");
    let record = dir.path.with_file_name("record.ndjson");
    let record_arg = record.to_str().unwrap();
    let listener = Listener::start(&["--secret", KEY, "--fail-first", "1", "--record", record_arg]);
    // A 500, then the same bytes again (a fresh signature, the same body): the platform's retry.
    let out = listener.send(&["call_ended", "--secret", KEY, "--backoff", "0"]);
    assert_code(&out, 0);
    // Another event: new bytes, not a duplicate.
    assert_code(&listener.send(&["call_started", "--secret", KEY]), 0);
    let (lines, _) = listener.stop();
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(!lines[0].contains("duplicate"), "{lines:?}");
    assert!(
        lines[1].contains("valid  204") && lines[1].contains("duplicate of #1"),
        "{lines:?}"
    );
    assert!(!lines[2].contains("duplicate"), "{lines:?}");
    let text = std::fs::read_to_string(&record).unwrap();
    let recorded: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(recorded[0].get("duplicate_of").is_none(), "{}", recorded[0]);
    assert_eq!(recorded[1]["duplicate_of"], 1, "{}", recorded[1]);
    assert!(recorded[2].get("duplicate_of").is_none(), "{}", recorded[2]);

    let listener = Listener::start(&["--secret", KEY, "--fail-first", "1", "--json"]);
    assert_code(
        &listener.send(&["call_ended", "--secret", KEY, "--backoff", "0"]),
        0,
    );
    let (lines, _) = listener.stop();
    let objects: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects[0]["duplicate_of"], Value::Null, "{lines}");
    assert_eq!(objects[1]["duplicate_of"], 1, "{lines}");
}

#[test]
fn the_record_masks_credential_headers_and_keeps_the_signature() {
    let dir = TempFile::new("placeholder", b"");
    let record = dir.path.with_file_name("record.ndjson");
    let listener = Listener::start(&["--secret", KEY, "--record", record.to_str().unwrap()]);
    let out = listener.send(&[
        "call_ended",
        "--secret",
        KEY,
        "-H",
        "Authorization: Basic dXNlcjpwYXNzd29yZA==",
        "-H",
        "Proxy-Authorization: Bearer tok_proxy_123",
        "-H",
        "Cookie: session=sess_456",
    ]);
    assert_code(&out, 0);
    listener.stop();
    let text = std::fs::read_to_string(&record).unwrap();
    for secret in ["dXNlcjpwYXNzd29yZA", "tok_proxy_123", "sess_456"] {
        assert!(!text.contains(secret), "{secret} in the record: {text}");
    }
    let line: Value = serde_json::from_str(text.trim()).unwrap();
    let header = |name: &str| {
        line["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h[0] == name)
            .map(|h| h[1].as_str().unwrap().to_string())
    };
    assert_eq!(header("authorization").as_deref(), Some("Basic ***"));
    assert_eq!(header("proxy-authorization").as_deref(), Some("Bearer ***"));
    assert_eq!(header("cookie").as_deref(), Some("***"));
    let signature = header("x-retell-signature").expect("the signature is kept");
    assert!(signature.starts_with("v=") && !signature.contains("***"));
}

/// POSTs `{"n": i}` on a fresh connection; the status when an answer came back whole.
fn post_numbered(addr: &str, i: usize) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    let body = format!(r#"{{"event":"call_ended","n":{i}}}"#);
    let request = format!(
        "POST /webhook HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.get(9..12)?.parse().ok()
}

/// Four clients post numbered bodies until listen is gone; it is stopped with `signal` once
/// 40 were answered. Returns the numbers answered, the record's numbers and listen's stdout.
fn answered_then_stopped(signal: &str) -> (Vec<usize>, Vec<usize>, String) {
    let dir = TempFile::new("unused", b"");
    let record = dir.path.with_file_name("record.ndjson");
    let listener = Listener::start(&["--secret", KEY, "--record", record.to_str().unwrap()]);
    let addr = listener
        .url
        .trim_start_matches("http://")
        .trim_end_matches("/webhook")
        .to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (addr, tx) = (addr.clone(), tx.clone());
            std::thread::spawn(move || {
                for i in (c..).step_by(4) {
                    match post_numbered(&addr, i) {
                        Some(_) => tx.send(i).expect("the test is waiting"),
                        None => return,
                    }
                }
            })
        })
        .collect();
    drop(tx);
    let mut answered: Vec<usize> = rx.iter().take(40).collect();
    let (out, _, _) = listener.stop_code(signal);
    for client in clients {
        client.join().expect("a client thread");
    }
    answered.extend(rx.iter());
    let text = std::fs::read_to_string(&record).expect("the record file");
    let recorded = text
        .lines()
        .map(|l| {
            let line: Value = serde_json::from_str(l).expect("whole NDJSON lines only");
            let body: Value = serde_json::from_str(line["body"].as_str().unwrap()).unwrap();
            body["n"].as_u64().unwrap() as usize
        })
        .collect();
    (answered, recorded, out)
}

#[test]
fn every_request_answered_is_recorded_and_printed_when_stopped_with_sigterm() {
    let (answered, recorded, out) = answered_then_stopped("TERM");
    assert!(answered.len() >= 40);
    for n in &answered {
        assert!(recorded.contains(n), "answered #{n} is not in the record");
    }
    assert!(
        out.lines().count() >= answered.len(),
        "{} lines for {} answers",
        out.lines().count(),
        answered.len()
    );
}

#[test]
fn every_request_answered_is_recorded_even_when_listen_is_killed() {
    let (answered, recorded, _) = answered_then_stopped("KILL");
    assert!(answered.len() >= 40);
    for n in &answered {
        assert!(recorded.contains(n), "answered #{n} is not in the record");
    }
}

// listen's own HTTP/1 path (src/receiver/http1.rs) serves a plain POST; anything else goes
// on through hyper. These tests talk raw HTTP to see both, and what crosses between them.

/// A POST head and `body` for a raw connection, signed with [`KEY`] unless `signed` is false,
/// with `extra` header lines (each ending in CRLF).
fn raw_post(body: &[u8], signed: bool, extra: &str) -> Vec<u8> {
    let signature = match signed {
        true => format!(
            "x-retell-signature: {}\r\n",
            sign_with(KEY, body, signing::now_ms())
        ),
        false => String::new(),
    };
    let mut request = format!(
        "POST /webhook HTTP/1.1\r\nhost: localhost\r\n{signature}{extra}content-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// Reads an answer whole: its head (lowercased, without the date line, which changes by
/// the second) and its Content-Length body.
fn read_answer(stream: &mut std::net::TcpStream) -> (String, Vec<u8>) {
    use std::io::Read;
    let head = read_head(stream);
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length: "))
        .map_or(0, |n| n.trim().parse().expect("a length"));
    let mut body = vec![0; length];
    stream.read_exact(&mut body).expect("the answer's body");
    let head = head
        .split("\r\n")
        .filter(|line| !line.starts_with("date: "))
        .collect::<Vec<_>>()
        .join("\r\n");
    (head, body)
}

fn write(stream: &mut std::net::TcpStream, bytes: &[u8]) {
    std::io::Write::write_all(stream, bytes).expect("the listener reads");
}

/// The bodies and verdicts of the next `n` requests the server sees.
fn next_bodies(server: &mut Server, n: usize) -> Vec<(Vec<u8>, Verdict)> {
    (0..n)
        .map(|_| server.next())
        .map(|r| (r.body.to_vec(), r.verdict))
        .collect()
}

const OTHER_BODY: &[u8] = br#"{"event":"call_ended","call":{"call_id":"call_0002"}}"#;

#[test]
fn pipelined_posts_in_one_write_are_each_judged_and_answered_in_order() {
    let mut server = Server::uponai();
    let mut stream = connect(&server.url);
    let mut burst = raw_post(BODY, true, "");
    burst.extend(raw_post(b"{}", false, ""));
    burst.extend(raw_post(OTHER_BODY, true, ""));
    write(&mut stream, &burst);
    let statuses: Vec<String> = (0..3)
        .map(|_| {
            read_answer(&mut stream)
                .0
                .lines()
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        statuses,
        [
            "http/1.1 204 no content",
            "http/1.1 401 unauthorized",
            "http/1.1 204 no content"
        ]
    );
    assert_eq!(
        next_bodies(&mut server, 3),
        [
            (BODY.to_vec(), Verdict::Valid),
            (b"{}".to_vec(), Verdict::Missing),
            (OTHER_BODY.to_vec(), Verdict::Valid)
        ]
    );
}

#[test]
fn a_connection_goes_on_through_hyper_after_a_chunked_post_and_loses_no_byte() {
    let mut server = Server::uponai();
    let mut stream = connect(&server.url);
    write(&mut stream, &raw_post(BODY, true, ""));
    assert!(read_answer(&mut stream).0.starts_with("http/1.1 204"));
    // A chunked POST hands the connection to hyper; the plain POST written behind it in the
    // same write was already read, so hyper must be given it too.
    let (first, second) = OTHER_BODY.split_at(20);
    let signature = sign_with(KEY, OTHER_BODY, signing::now_ms());
    let mut burst = format!(
        "POST /webhook HTTP/1.1\r\nhost: localhost\r\nx-retell-signature: {signature}\r\n\
         transfer-encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    burst.extend(chunked(&[first, second]));
    let third = br#"{"event":"call_analyzed","call":{"call_id":"call_0003"}}"#;
    burst.extend(raw_post(third, true, ""));
    write(&mut stream, &burst);
    assert!(read_answer(&mut stream).0.starts_with("http/1.1 204"));
    assert!(read_answer(&mut stream).0.starts_with("http/1.1 204"));
    assert_eq!(
        next_bodies(&mut server, 3),
        [
            (BODY.to_vec(), Verdict::Valid),
            (OTHER_BODY.to_vec(), Verdict::Valid),
            (third.to_vec(), Verdict::Valid)
        ]
    );
}

#[test]
fn a_head_and_a_body_longer_than_one_read_arrive_whole() {
    let mut server = Server::uponai();
    let mut stream = connect(&server.url);
    // Past the 8 KB a read asks for: the head is read in pieces, the body after it too.
    let padding = "p".repeat(20_000);
    let transcript = "t".repeat(100_000);
    let body = format!(
        r#"{{"event":"call_ended","call":{{"call_id":"c1","transcript":"{transcript}"}}}}"#
    );
    write(
        &mut stream,
        &raw_post(body.as_bytes(), true, &format!("x-padding: {padding}\r\n")),
    );
    assert!(read_answer(&mut stream).0.starts_with("http/1.1 204"));
    let received = server.next();
    assert_eq!(received.body, body.as_bytes());
    assert_eq!(received.verdict, Verdict::Valid);
    assert_eq!(received.event.as_deref(), Some("call_ended"));
    assert_eq!(header(&received, "x-padding"), Some(padding.as_str()));
}

#[test]
fn listen_answers_the_same_bytes_on_its_own_path_as_through_hyper() {
    // `Expect: 100-continue` sends the same request through hyper.
    let function_call = stdout(&run(&["show", "function_call"])).into_bytes();
    let mut server = Server::uponai();
    for (body, signed, status) in [
        (BODY, true, "204"),
        (BODY, false, "401"),
        (function_call.as_slice(), true, "200"),
    ] {
        let mut own = connect(&server.url);
        write(&mut own, &raw_post(body, signed, ""));
        let own = read_answer(&mut own);
        let mut through_hyper = connect(&server.url);
        let request = raw_post(body, signed, "expect: 100-continue\r\n");
        let head_len = request.len() - body.len();
        write(&mut through_hyper, &request[..head_len]);
        assert!(read_head(&mut through_hyper).starts_with("http/1.1 100"));
        write(&mut through_hyper, body);
        let hyper = read_answer(&mut through_hyper);
        assert!(
            own.0.starts_with(&format!("http/1.1 {status}")),
            "{}",
            own.0
        );
        assert_eq!(own.0, hyper.0);
        assert_eq!(own.1, hyper.1);
        if status == "200" {
            // The function call's answer: the JSON the platform reads.
            assert!(
                own.0.contains("content-type: application/json"),
                "{}",
                own.0
            );
            serde_json::from_slice::<Value>(&own.1).expect("a JSON answer");
        }
    }
    assert_eq!(server.hits(), 6);
}

#[test]
fn a_connection_header_is_read_on_listens_own_path_as_hyper_reads_it() {
    let mut server = Server::uponai();
    // keep-alive, which Node's and Python's clients send with every request: the connection
    // serves on.
    let mut stream = connect(&server.url);
    write(
        &mut stream,
        &raw_post(BODY, true, "Connection: keep-alive\r\n"),
    );
    let kept = read_answer(&mut stream);
    write(
        &mut stream,
        &raw_post(OTHER_BODY, true, "connection: x-trace\r\n"),
    );
    assert_eq!(read_answer(&mut stream), kept);
    assert!(!kept.0.contains("connection"), "{}", kept.0);
    // A `close` token, wherever it is: the answer says so, the same bytes as hyper's, and the
    // connection ends after it (a request written behind it is not answered).
    for connection in [
        "connection: close\r\n",
        "Connection: keep-alive, Close\r\n",
        "connection: keep-alive\r\nconnection: close\r\n",
    ] {
        let mut own = connect(&server.url);
        let mut burst = raw_post(BODY, true, connection);
        burst.extend(raw_post(OTHER_BODY, true, ""));
        write(&mut own, &burst);
        let own_answer = read_answer(&mut own);
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut own, &mut rest).expect("closed, not reset");
        assert_eq!(rest, b"", "{connection:?}");
        // `Expect: 100-continue` sends the same request through hyper.
        let mut through_hyper = connect(&server.url);
        let request = raw_post(BODY, true, &format!("{connection}expect: 100-continue\r\n"));
        write(&mut through_hyper, &request[..request.len() - BODY.len()]);
        assert!(read_head(&mut through_hyper).starts_with("http/1.1 100"));
        write(&mut through_hyper, BODY);
        assert_eq!(
            own_answer,
            read_answer(&mut through_hyper),
            "{connection:?}"
        );
        assert!(
            own_answer.0.contains("\r\nconnection: close\r\n"),
            "{}",
            own_answer.0
        );
    }
    // Two requests kept alive, three closed on each path; none of those written behind a close.
    let seen = next_bodies(&mut server, 8);
    assert_eq!(seen[1], (OTHER_BODY.to_vec(), Verdict::Valid));
    assert_eq!(seen.iter().filter(|(body, _)| body == BODY).count(), 7);
    assert_eq!(server.hits(), 8);
}

#[test]
fn judge_raw_judges_what_listens_own_path_serves_and_leaves_the_rest_to_hyper() {
    use hookcli::receiver::{Judge, ReceiverConfig};
    let config = ReceiverConfig::local(platform("uponai"), Some(Secret::new(KEY)));
    let judge = Judge::new(config);
    let raw = |extra: &str| bytes::Bytes::from(raw_post(BODY, true, extra));
    let received = judge.judge_raw(raw("")).expect("a plain POST");
    assert_eq!(received.answered, Some(204));
    assert_eq!(received.verdict, Verdict::Valid);
    assert_eq!(received.body, BODY);
    assert!(judge.judge_raw(raw("expect: 100-continue\r\n")).is_none());
    // Read on this path, as hyper reads it: Node's and Python's clients send it every time.
    assert!(judge.judge_raw(raw("connection: keep-alive\r\n")).is_some());
    // A head whose body has not all come.
    let whole = raw("");
    assert!(judge.judge_raw(whole.slice(..whole.len() - 1)).is_none());
}
