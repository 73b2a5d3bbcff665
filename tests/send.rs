//! `hookcli send` against real receivers on 127.0.0.1:0: what arrives (hits, bytes, headers),
//! the platforms' retry and success rules, the exit codes and the bad-input errors.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use common::*;
use hookcli::receiver::Faults;
use hookcli::secret::Secret;
use hookcli::signing::{self, Scheme, Verdict};
use serde_json::Value;

fn json_of(out: &std::process::Output) -> Value {
    let text = stdout(out);
    assert_eq!(text.lines().count(), 1, "one JSON line on stdout:\n{text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{text}"))
}

fn faults(change: impl FnOnce(&mut Faults)) -> Faults {
    let mut f = Faults::default();
    change(&mut f);
    f
}

#[test]
fn a_signed_request_verifies_over_the_exact_bytes_the_receiver_got() {
    let mut server = Server::uponai();
    let out = server.send(&["call_ended", "--secret", KEY]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("delivered: 204 No Content (2xx)"),
        "{}",
        stdout(&out)
    );
    let got = server.received().to_vec();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.verdict, Verdict::Valid);
    assert_eq!(r.event.as_deref(), Some("call_ended"));
    assert_eq!(header(r, "content-type"), Some("application/json"));

    // Independently of the receiver: the digest over the bytes on the wire.
    let sig = header(r, "x-retell-signature").expect("a signature header");
    let verdict = signing::verify(
        Scheme::Retell,
        &Secret::new(KEY),
        &r.body,
        Some(sig),
        signing::now_ms(),
        Duration::from_secs(300),
    );
    assert_eq!(verdict, Verdict::Valid);

    // And with `hookcli verify` over the same bytes.
    let body = TempFile::new("body.json", &r.body);
    let out = run(&[
        "verify",
        "--secret",
        KEY,
        "--signature",
        sig,
        body.path_str(),
    ]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out).trim(), "valid");
}

#[test]
fn fails_twice_then_succeeds_on_the_third_attempt_and_exits_zero() {
    let mut server = Server::start("uponai", Some(KEY), faults(|f| f.fail_first = 2));
    let out = server.send(&["call_ended", "--secret", KEY, "--backoff", "0"]);
    assert_code(&out, 0);
    let got = server.received().to_vec();
    assert_eq!(got.len(), 3);
    let answered: Vec<_> = got.iter().map(|r| r.answered).collect();
    assert_eq!(answered, [Some(500), Some(500), Some(204)]);
    // Each retry is signed afresh, and each verifies.
    assert!(got.iter().all(|r| r.verdict == Verdict::Valid));
    assert!(got.windows(2).all(|w| w[0].body == w[1].body));
    assert!(stdout(&out).contains("on attempt 3"), "{}", stdout(&out));
}

#[test]
fn always_500_is_four_attempts_then_exit_one() {
    let mut server = Server::start("uponai", Some(KEY), faults(|f| f.status = 500));
    let out = server.send(&["call_ended", "--secret", KEY, "--backoff", "0", "--json"]);
    assert_code(&out, 1);
    assert_eq!(server.hits(), 4);
    let report = json_of(&out);
    assert_eq!(report["delivered"], false);
    let attempts = report["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 4);
    assert!(
        attempts
            .iter()
            .all(|a| a["status"] == 500 && a["error"].is_null())
    );
}

#[test]
fn a_receiver_that_never_answers_times_out_on_every_attempt() {
    let mut server = Server::start(
        "uponai",
        Some(KEY),
        faults(|f| f.delay = Duration::from_secs(60)),
    );
    let out = server.send(&[
        "call_ended",
        "--secret",
        KEY,
        "--timeout",
        "200ms",
        "--backoff",
        "0",
        "--json",
    ]);
    assert_code(&out, 1);
    assert_eq!(server.hits(), 4);
    let report = json_of(&out);
    let attempts = report["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 4);
    for a in attempts {
        assert_eq!(a["error"], "timeout", "{a}");
        assert!(a["status"].is_null());
    }
    let out = server.send(&[
        "call_ended",
        "--secret",
        KEY,
        "--timeout",
        "200ms",
        "--retries",
        "0",
    ]);
    assert_code(&out, 1);
    assert!(
        stdout(&out).contains("failed: timed out after 200ms"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn salpre_answered_204_is_a_failed_delivery() {
    let mut server = Server::start("salpre", None, Faults::default());
    let out = server.send(&["call_ended", "-p", "salpre"]);
    assert_code(&out, 1);
    assert_eq!(server.hits(), 1, "salpre does not retry");
    assert!(
        stdout(&out).contains("failed: 204 No Content, salpre requires exactly 200"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn salpre_answered_200_is_delivered() {
    let mut server = Server::start("salpre", None, faults(|f| f.status = 200));
    let out = server.send(&["call_answered", "-p", "salpre"]);
    assert_code(&out, 0);
    assert_eq!(server.hits(), 1);
}

#[test]
fn postcall_never_retries_a_500() {
    let mut server = Server::start("postcall", None, faults(|f| f.status = 500));
    let out = server.send(&["call_completed", "-p", "postcall"]);
    assert_code(&out, 1);
    assert_eq!(server.hits(), 1);
}

#[test]
fn a_302_from_the_receiver_is_a_failure_not_followed() {
    let mut server = Server::start("uponai", Some(KEY), faults(|f| f.status = 302));
    let out = server.send(&["call_ended", "--secret", KEY, "--retries", "0", "--json"]);
    assert_code(&out, 1);
    assert_eq!(server.hits(), 1);
    let report = json_of(&out);
    assert_eq!(report["attempts"][0]["status"], 302);
    assert_eq!(report["attempts"][0]["error"], "redirect");
}

/// Reads one HTTP/1.1 request (head and Content-Length body) off a raw stream, for the
/// hand-rolled servers below that answer what hookcli's receiver cannot. Returns the request
/// line.
fn read_request(stream: &std::net::TcpStream) -> String {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    reader.read_exact(&mut vec![0; length]).unwrap();
    request_line
}

/// A one-shot server that answers 302 with a Location, the one thing hookcli's receiver
/// cannot do. Returns its URL and a handle that yields the request line it read.
fn redirecting_server(location: String) -> (String, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/webhook", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let request_line = read_request(&stream);
        write!(
            stream,
            "HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        )
        .unwrap();
        request_line
    });
    (url, handle)
}

#[test]
fn a_redirect_is_not_followed_and_the_report_shows_its_location() {
    let mut target = Server::uponai();
    let (url, handle) = redirecting_server(target.url.clone());
    let out = hookcli()
        .args(["send", "call_ended", "--secret", KEY, "--retries", "0"])
        .args(["--to", &url])
        .output()
        .unwrap();
    assert_code(&out, 1);
    assert!(handle.join().unwrap().starts_with("POST /webhook"));
    assert_eq!(target.hits(), 0, "the Location was not followed");
    let text = stdout(&out);
    assert!(text.contains("302 Found"), "{text}");
    assert!(
        text.contains(&format!("Location: {}", target.url)),
        "{text}"
    );
}

#[test]
fn nothing_listening_is_unreachable_exit_three() {
    let url = format!("http://127.0.0.1:{}/webhook", closed_port());
    let out = run(&[
        "send",
        "call_ended",
        "--secret",
        KEY,
        "--backoff",
        "0",
        "--to",
        &url,
    ]);
    assert_code(&out, 3);
    assert!(stdout(&out).contains("unreachable"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("connection refused"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn json_output_is_one_documented_object_and_nothing_else_on_stdout() {
    let mut server = Server::uponai();
    let out = server.send(&["call_ended", "--secret", KEY, "--json"]);
    assert_code(&out, 0);
    let report = json_of(&out);
    let keys: Vec<&str> = report
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "platform",
        "event",
        "url",
        "call_id",
        "expect",
        "delivered",
        "status",
        "attempts",
    ] {
        assert!(keys.contains(&key), "`{key}` in {report}");
    }
    assert_eq!(report["platform"], "uponai");
    assert_eq!(report["event"], "call_ended");
    assert_eq!(report["url"], server.url.as_str());
    assert_eq!(report["expect"], "2xx");
    assert_eq!(report["delivered"], true);
    assert_eq!(report["status"], 204);
    let r = &server.received()[0];
    assert_eq!(report["call_id"].as_str(), r.call_id.as_deref());
    let attempt = &report["attempts"][0];
    assert_eq!(attempt["n"], 1);
    assert_eq!(attempt["status"], 204);
    assert!(attempt["ms"].is_number());
    assert!(attempt["error"].is_null());
}

#[test]
fn dry_run_prints_the_signed_request_and_sends_nothing() {
    let mut server = Server::uponai();
    let out = server.send(&["call_ended", "--secret", KEY, "--dry-run"]);
    assert_code(&out, 0);
    assert_eq!(server.hits(), 0);
    let text = stdout(&out);
    assert!(text.starts_with(&format!("POST {}", server.url)), "{text}");
    assert!(text.contains("x-retell-signature: v="), "{text}");
}

#[test]
fn dry_run_json_is_one_object_whose_body_is_the_exact_signed_bytes() {
    let raw = "{ \"event\" : \"call_ended\",\n  \"call\": {\"call_id\": \"abc\", \"n\": 1.50} }\n";
    let file = TempFile::new("dry.json", raw.as_bytes());
    let mut server = Server::uponai();
    let out = server.send(&[
        "--data",
        file.path_str(),
        "--secret",
        KEY,
        "--dry-run",
        "--json",
    ]);
    assert_code(&out, 0);
    assert_eq!(server.hits(), 0);
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    let object = json_of(&out);
    let keys: Vec<&str> = object
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["method", "url", "headers", "body"]);
    assert_eq!(object["method"], "POST");
    assert_eq!(object["url"], server.url.as_str());
    assert_eq!(object["body"], raw);
    let header = object["headers"]["x-retell-signature"].as_str().unwrap();
    let verdict = signing::verify(
        Scheme::Retell,
        &Secret::new(KEY),
        raw.as_bytes(),
        Some(header),
        signing::now_ms(),
        Duration::from_secs(300),
    );
    assert_eq!(verdict, Verdict::Valid);
}

#[test]
fn dry_run_without_a_key_says_it_shows_the_request_unsigned_and_sends_nothing() {
    let mut server = Server::uponai();
    let out = server.send(&["call_ended", "--dry-run"]);
    assert_code(&out, 0);
    assert_eq!(server.hits(), 0);
    assert!(
        !stdout(&out).contains("x-retell-signature"),
        "{}",
        stdout(&out)
    );
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "one note:\n{err}");
    assert!(err.contains("no key was given"), "{err}");
    assert!(err.contains("the dry run shows it unsigned"), "{err}");
    assert!(!err.contains("sending"), "a dry run sends nothing:\n{err}");
}

/// A server that answers 200 with a chunked body that never ends, and returns how many body
/// bytes it wrote before the client hung up.
fn endless_body_server() -> (String, std::thread::JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/webhook", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        read_request(&stream);
        let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
        stream.write_all(head.as_bytes()).unwrap();
        let chunk = format!("1000\r\n{}\r\n", "y".repeat(0x1000));
        let mut written = 0;
        // Until the client closes the connection: it stops reading at 64 KiB.
        while stream.write_all(chunk.as_bytes()).is_ok() {
            written += 0x1000;
        }
        written
    });
    (url, handle)
}

#[test]
fn only_64_kib_of_a_response_body_is_read_and_verbose_says_the_rest_was_discarded() {
    let (url, handle) = endless_body_server();
    // Reading the whole body would never end: the 5 s deadline would fail the delivery.
    let out = hookcli()
        .args(["send", "call_completed", "-p", "postcall", "-v"])
        .args(["--timeout", "5s", "--to", &url])
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert!(handle.join().unwrap() >= 64 * 1024);
    assert!(
        stdout(&out).contains("delivered: 200 OK (2xx)"),
        "{}",
        stdout(&out)
    );
    // -v goes to stderr, as curl's does.
    let text = stderr(&out);
    let body_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("< yyyy"))
        .expect("-v shows the response body");
    assert_eq!(body_line.matches('y').count(), 64 * 1024, "64 KiB shown");
    assert!(
        text.contains("only the first 64 KiB of the body was read"),
        "{}",
        &text[text.len().saturating_sub(400)..]
    );
}

#[test]
fn a_3xx_without_a_location_says_so_instead_of_a_placeholder() {
    let mut server = Server::start("uponai", Some(KEY), faults(|f| f.status = 304));
    let out = server.send(&["call_ended", "--secret", KEY, "--retries", "0"]);
    assert_code(&out, 1);
    assert_eq!(server.hits(), 1);
    let text = stdout(&out);
    assert!(text.contains("304 Not Modified → (no Location)"), "{text}");
    assert!(text.contains("not followed, no Location header"), "{text}");
}

#[test]
fn a_data_file_goes_on_the_wire_byte_for_byte() {
    let raw =
        b"{ \"event\" :\t\"call_ended\",\n  \"call\": {\"call_id\": \"abc\", \"n\": 1.50}   }\n\n";
    let file = TempFile::new("odd.json", raw);
    let mut server = Server::uponai();
    let out = server.send(&["--data", file.path_str(), "--secret", KEY]);
    assert_code(&out, 0);
    let r = &server.received()[0];
    assert_eq!(&r.body[..], &raw[..]);
    assert_eq!(r.verdict, Verdict::Valid);
    assert_eq!(r.event.as_deref(), Some("call_ended"));
}

#[test]
fn set_changes_strings_by_path_and_json_after_colon_equals() {
    let mut server = Server::uponai();
    let out = server.send(&[
        "call_ended",
        "--secret",
        KEY,
        "--set",
        "call.retell_llm_dynamic_variables.customer_name=Ana",
        "--set",
        "call.start_timestamp:=1714608475945",
        "--set",
        "call.transcript_object[0].content=hi",
        "--set",
        "call.metadata:={\"tier\": \"gold\"}",
    ]);
    assert_code(&out, 0);
    let body: Value = serde_json::from_slice(&server.received()[0].body).unwrap();
    let call = &body["call"];
    assert_eq!(call["retell_llm_dynamic_variables"]["customer_name"], "Ana");
    assert_eq!(call["start_timestamp"], 1714608475945u64);
    assert_eq!(call["transcript_object"][0]["content"], "hi");
    assert_eq!(call["metadata"]["tier"], "gold");
}

#[test]
fn unset_removes_a_field_and_set_colon_equals_null_makes_one_null() {
    let mut server = Server::uponai();
    // Seeded, so the body is the one rendered below with the same seed.
    let out = hookcli()
        .env("HOOKCLI_SEED", "1")
        .args(["send", "--to", &server.url])
        .args([
            "call_ended",
            "--secret",
            KEY,
            "--unset",
            "call.disconnection_reason",
            "--set",
            "call.metadata:=null",
            "--unset",
            "call.transcript_object[0]",
        ])
        .output()
        .unwrap();
    assert_code(&out, 0);
    let before: Value = {
        let shown = hookcli::catalog::Catalog::load(None).unwrap();
        let platform = shown.platform("uponai").unwrap();
        let event = platform.event("call_ended").unwrap();
        hookcli::call::render_event(
            &shown,
            platform,
            event,
            &mut hookcli::call::rng_from(Some(1)),
        )
        .unwrap()
    };
    let body: Value = serde_json::from_slice(&server.received()[0].body).unwrap();
    let call = body["call"].as_object().unwrap();
    assert!(before["call"].get("disconnection_reason").is_some());
    assert!(!call.contains_key("disconnection_reason"), "{body}");
    assert!(
        call.contains_key("metadata") && call["metadata"].is_null(),
        "{body}"
    );
    assert_eq!(
        call["transcript_object"].as_array().unwrap().len() + 1,
        before["call"]["transcript_object"]
            .as_array()
            .unwrap()
            .len(),
        "the first item is gone"
    );
}

#[test]
fn an_unset_of_a_missing_field_or_with_a_value_is_refused_and_nothing_is_sent() {
    let mut server = Server::uponai();
    let out = server.send(&["call_ended", "--secret", KEY, "--unset", "call.statu"]);
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(
        err.starts_with("error: --unset `call.statu`: the body has no `call.statu`")
            && err.contains("did you mean call.call_status?"),
        "{err}"
    );
    let out = server.send(&["call_ended", "--secret", KEY, "--unset", "call.metadata=x"]);
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("--unset `call.metadata=x`: expected only a PATH"),
        "{err}"
    );
    assert!(err.contains("--set 'PATH:=null'"), "{err}");
    assert_eq!(server.hits(), 0, "nothing was sent");
}

#[test]
fn a_token_key_with_a_line_break_is_refused_and_nothing_is_sent() {
    let mut server = Server::start("vapi", Some("tok_123"), Faults::default());
    let key = "tok_123\r\nx-evil: 1";
    let out = server.send(&["status-update", "-p", "vapi", "--secret", key]);
    assert_code(&out, 2);
    assert_no_panic(&out);
    let err = stderr(&out);
    assert!(
        err.starts_with(
            "error: the key for vapi cannot be used: the key has a control character (a line \
             break?), which its header cannot carry"
        ),
        "{err}"
    );
    assert!(!err.contains("tok_123"), "the key is never printed\n{err}");
    assert_eq!(server.hits(), 0, "nothing was sent");
}

#[test]
fn a_set_path_with_a_typo_is_refused_with_the_near_key_and_nothing_is_sent() {
    let mut server = Server::uponai();
    let out = server.send(&["call_ended", "--secret", KEY, "--set", "call.statu=ended"]);
    assert_code(&out, 2);
    assert_no_panic(&out);
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "an error and a hint\n{err}");
    assert_eq!(
        lines[0],
        "error: --set `call.statu=ended`: the body has no `call.statu`"
    );
    assert!(
        lines[1].starts_with("hint: did you mean call.call_status?"),
        "{err}"
    );
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    assert_eq!(server.hits(), 0, "nothing was sent");
}

#[test]
fn a_new_key_outside_a_free_form_object_points_at_hookcli_show_and_the_free_form_objects() {
    let mut server = Server::uponai();
    let out = server.send(&["call_ended", "--secret", KEY, "--set", "call.shoe_size=9"]);
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("the body has no `call.shoe_size`"), "{err}");
    assert!(!err.contains("did you mean"), "nothing is close\n{err}");
    assert!(
        err.contains("hint: `hookcli show call_ended -p uponai` prints the body's keys")
            && err.contains("metadata")
            && err.contains("--data FILE"),
        "{err}"
    );
    assert_eq!(server.hits(), 0, "nothing was sent");
}

#[test]
fn a_new_key_inside_a_free_form_object_is_delivered() {
    let mut server = Server::uponai();
    let out = server.send(&[
        "call_ended",
        "--secret",
        KEY,
        "--set",
        "call.metadata.order_id=A1",
        "--set",
        "call.retell_llm_dynamic_variables.tier=gold",
    ]);
    assert_code(&out, 0);
    assert!(stderr(&out).is_empty(), "no note: {}", stderr(&out));
    let got = server.received().to_vec();
    assert_eq!(got.len(), 1);
    let text = String::from_utf8_lossy(&got[0].body);
    assert!(text.contains(r#""order_id":"A1""#), "{text}");
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["call"]["retell_llm_dynamic_variables"]["tier"], "gold");
    assert!(
        body["call"]["retell_llm_dynamic_variables"]["customer_name"].is_string(),
        "the template's variables stay: {body}"
    );
}

#[test]
fn an_extra_header_arrives_at_the_receiver() {
    let mut server = Server::start("salpre", None, faults(|f| f.status = 200));
    let out = server.send(&[
        "call_ended",
        "-p",
        "salpre",
        "-H",
        "Authorization: Bearer t0k3n",
        "-H",
        "X-Extra:  two words ",
    ]);
    assert_code(&out, 0);
    let r = &server.received()[0];
    assert_eq!(header(r, "authorization"), Some("Bearer t0k3n"));
    assert_eq!(header(r, "x-extra"), Some("two words"));
}

#[test]
fn without_a_key_a_signing_platform_sends_unsigned_and_says_so_once() {
    let mut server = Server::start("uponai", None, faults(|f| f.fail_first = 1));
    let out = server.send(&["call_ended", "--backoff", "0"]);
    assert_code(&out, 0);
    let got = server.received().to_vec();
    assert_eq!(got.len(), 2);
    assert!(
        got.iter()
            .all(|r| header(r, "x-retell-signature").is_none())
    );
    assert!(got.iter().all(|r| r.verdict == Verdict::Unsigned));
    let err = stderr(&out);
    assert_eq!(err.matches("unsigned").count(), 1, "{err}");
    assert!(err.contains("x-retell-signature"), "{err}");
}

#[test]
fn the_key_never_appears_in_any_output() {
    let mut server = Server::start("uponai", Some(KEY), faults(|f| f.fail_first = 1));
    let runs = [
        server.send(&["call_ended", "--secret", KEY, "-v", "--backoff", "0"]),
        server.send(&["call_ended", "--secret", KEY, "--json"]),
        server.send(&["call_ended", "--secret", KEY, "--dry-run", "-v"]),
        hookcli()
            .args(["send", "--help"])
            .env("HOOKCLI_SECRET", KEY)
            .output()
            .unwrap(),
        hookcli()
            .args(["listen", "--help"])
            .env("HOOKCLI_SECRET", KEY)
            .output()
            .unwrap(),
        hookcli()
            .args(["send", "call_ended", "--to", &server.url, "-v"])
            .env("UPONAI_API_KEY", KEY)
            .output()
            .unwrap(),
    ];
    for out in &runs {
        let all = format!("{}{}", stdout(out), stderr(out));
        assert!(!all.contains(KEY), "the key leaked:\n{all}");
    }
    // The env key was used: the last send verified.
    assert!(
        server
            .received()
            .iter()
            .all(|r| r.verdict == Verdict::Valid)
    );
}

#[test]
fn credentials_in_the_url_are_never_printed() {
    let mut server = Server::uponai();
    // A password, and a user name alone (how many services take a token).
    for (userinfo, secret, shown) in [
        (
            "user:pw_in_url_s3cr3t@",
            "pw_in_url_s3cr3t",
            "user:***@127.0.0.1",
        ),
        (
            "tok3n_in_url_s3cr3t@",
            "tok3n_in_url_s3cr3t",
            "://***@127.0.0.1",
        ),
    ] {
        let to = server.url.replace("http://", &format!("http://{userinfo}"));
        for extra in [
            &[][..],
            &["--json"],
            &["-v"],
            &["--dry-run"],
            &["--dry-run", "--json"],
        ] {
            let out = hookcli()
                .args(["send", "call_ended", "--secret", KEY, "--to", &to])
                .args(extra)
                .output()
                .unwrap();
            assert_code(&out, 0);
            let all = format!("{}{}", stdout(&out), stderr(&out));
            assert!(!all.contains(secret), "{extra:?}:\n{all}");
            assert!(all.contains(shown), "{extra:?}:\n{all}");
            // The header the credentials become is listed, masked, where headers are shown.
            if extra.contains(&"-v") || extra.contains(&"--dry-run") {
                assert!(
                    all.to_ascii_lowercase()
                        .contains("authorization: basic ***")
                        || all.contains("\"authorization\":\"Basic ***\""),
                    "{extra:?}:\n{all}"
                );
            }
        }
    }
    assert_eq!(server.hits(), 6, "the dry runs sent nothing");
    // And the credentials did go out, as Basic auth.
    let auth: Vec<_> = server
        .received()
        .iter()
        .filter_map(|r| {
            r.headers
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))
                .map(|(_, value)| value.clone())
        })
        .collect();
    assert_eq!(auth.len(), 6, "{auth:?}");
}

#[test]
fn every_bad_input_is_exit_two_with_one_error_line_and_nothing_sent() {
    let mut server = Server::uponai();
    let bad_json = TempFile::new(
        "bad.json",
        b"{\"event\": \"call_ended\",\n  \"call\": {,}\n}",
    );
    let missing = format!("{}/missing.json", std::env::temp_dir().display());
    let folder = std::env::temp_dir().display().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["-p", "nope", "call_ended"], "`nope`"),
        (
            vec!["call.start"],
            "call.start is a callevents event: add -p callevents",
        ),
        (vec!["call_endd"], "did you mean call_ended?"),
        (
            vec!["-p", "postcall", "call_ended"],
            "add -p uponai or -p salpre (postcall events: call_completed)",
        ),
        (vec!["call_ended", "--to", "ht tp://x"], "`ht tp://x`"),
        (vec!["call_ended", "--to", "localhost:8080/webhook"], "http"),
        (vec!["call_ended", "--to", "ftp://example.com/hook"], "ftp"),
        (vec!["call_ended", "--to", "not a url"], "has spaces"),
        (
            vec!["-p", "retel", "call_ended"],
            "did you mean `-p retell`?",
        ),
        (vec!["--data", &missing], "missing.json"),
        (vec!["--data", bad_json.path_str()], "line 2 column"),
        (
            vec!["call_ended", "--set", "call.nope.deeper=1"],
            "call.nope",
        ),
        (vec!["call_ended", "--set", "call.x:={bad"], "{bad"),
        (
            vec!["call_ended", "--set", "call.statu=ended"],
            "did you mean call.call_status?",
        ),
        (vec!["call_ended", "--timeout", "5parsecs"], "5parsecs"),
        (vec!["call_ended", "--timeout", "0"], "more than 0"),
        (
            vec!["call_ended", "--retries", "-1"],
            "`-1` is not a whole number",
        ),
        (
            vec!["call_ended", "--retries", "two"],
            "`two` is not a whole number",
        ),
        (vec!["call_ended", "--timeout", "-1s"], "cannot be negative"),
        (vec!["call_ended", "--backoff", "soon"], "soon"),
        (vec!["call_ended", "--expect", "7xx"], "7xx"),
        (vec!["call_ended", "--expect", "3xx"], "2xx codes"),
        (vec!["call_ended", "-H", "nocolon"], "nocolon"),
        (vec!["call_ended", "-H", "bad name: x"], "bad name"),
        (vec!["--data", &folder], "folder"),
        (
            vec!["call_ended", "-H", "Content-Length: 5"],
            "content-length",
        ),
        (
            vec!["call_ended", "-H", "transfer-encoding: chunked"],
            "from the body",
        ),
        (vec!["call_ended", "--secret", ""], "the key is empty"),
    ];
    for (args, needle) in cases {
        let mut cmd = hookcli();
        cmd.arg("send").args(&args).args(["--secret", KEY]);
        if !args.contains(&"--to") {
            cmd.args(["--to", &server.url]);
        }
        let out = cmd.output().unwrap();
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{args:?}: exit 2\n{err}");
        assert_no_panic(&out);
        let errors = err.lines().filter(|l| l.starts_with("error:")).count();
        assert_eq!(errors, 1, "{args:?}: one error line\n{err}");
        let hints = err.lines().filter(|l| l.starts_with("hint: ")).count();
        assert_eq!(hints, 1, "{args:?}: one hint line with the fix\n{err}");
        assert!(err.contains(needle), "{args:?}: `{needle}` in\n{err}");
        assert!(stdout(&out).is_empty(), "{args:?}: nothing on stdout");
    }
    assert_eq!(server.hits(), 0, "nothing was sent");
}

#[test]
fn a_bad_flag_value_names_the_problem_and_puts_the_fix_on_the_hint_line() {
    let out = run(&[
        "send",
        "call_ended",
        "--timeout",
        "10",
        "--to",
        "http://127.0.0.1:9/",
    ]);
    assert_code(&out, 2);
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines,
        [
            "error: invalid value '10' for '--timeout <DUR>': `10` is not a duration",
            "hint: write it with a unit, like 10s, 500ms or 1m30s",
        ],
        "{err}"
    );
}

#[test]
fn an_unknown_platform_lists_the_platform_ids() {
    let out = run(&[
        "send",
        "call_ended",
        "-p",
        "nope",
        "--to",
        "http://127.0.0.1:9/",
    ]);
    assert_code(&out, 2);
    let err = stderr(&out);
    for id in ["uponai", "salpre", "postcall", "callevents"] {
        assert!(err.contains(id), "{err}");
    }
}

#[test]
fn data_from_stdin_goes_on_the_wire_byte_for_byte() {
    let raw = b"{\"event\":\"call_analyzed\",  \"call\":{\"call_id\":\"stdin_1\"}}";
    let mut server = Server::uponai();
    let mut child = hookcli()
        .args(["send", "--data", "-", "--secret", KEY, "--to", &server.url])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(raw).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 0);
    let r = &server.received()[0];
    assert_eq!(&r.body[..], &raw[..]);
    assert_eq!(r.call_id.as_deref(), Some("stdin_1"));
    assert_eq!(r.verdict, Verdict::Valid);
}

#[test]
fn the_platform_can_come_from_hookcli_platform() {
    let mut server = Server::start("salpre", None, faults(|f| f.status = 200));
    let out = hookcli()
        .args(["send", "call_ringing", "--to", &server.url])
        .env("HOOKCLI_PLATFORM", "salpre")
        .output()
        .unwrap();
    assert_code(&out, 0);
    let body: Value = serde_json::from_slice(&server.received()[0].body).unwrap();
    assert_eq!(body["event_type"], "call_ringing");
}

#[test]
fn usage_errors_are_one_error_line_and_one_hint() {
    let cases: [(&[&str], &str, &str); 5] = [
        (
            &["verify"],
            "required arguments were not provided: --signature <VALUE>",
            "hint: usage: hookcli verify --signature",
        ),
        (
            &["send", "call_ended", "--bogus"],
            "unexpected argument '--bogus' found",
            "hint: `hookcli send --help` lists the flags",
        ),
        (
            &["send", "call_ended", "--retires", "3"],
            "unexpected argument '--retires'",
            "hint: a similar argument exists: '--retries'",
        ),
        (&["sned"], "unrecognized subcommand 'sned'", "'send'"),
        (
            &["replay", "--gap", "1s", "--realtime"],
            "'--gap <DUR>' cannot be used with '--realtime'",
            "hint: give one or the other; `hookcli replay --help` says what each does",
        ),
    ];
    for (args, message, hint) in cases {
        let output = common::run(args);
        common::assert_code(&output, 2);
        let err = common::stderr(&output);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{args:?}: {err}");
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(message),
            "{args:?}: {err}"
        );
        assert!(
            lines[1].starts_with("hint: ") && lines[1].contains(hint),
            "{args:?}: {err}"
        );
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn help_and_version_still_print_on_stdout() {
    for args in [&["--help"][..], &["send", "--help"], &["--version"]] {
        let output = common::run(args);
        common::assert_code(&output, 0);
        assert!(!common::stdout(&output).is_empty(), "{args:?}");
    }
}

/// Where `needle` starts in `text`, failing with the text when it is not there.
#[track_caller]
fn at(text: &str, needle: &str) -> usize {
    text.find(needle)
        .unwrap_or_else(|| panic!("`{needle}` in:\n{text}"))
}

#[test]
fn verbose_shows_request_line_headers_blank_body_then_the_response_on_stderr() {
    let server = Server::uponai();
    let out = server.send(&["call_started", "--secret", KEY, "-v"]);
    assert_code(&out, 0);
    let err = stderr(&out);
    let request_line = at(&err, &format!("> POST {}", server.url));
    let content_type = at(&err, "> content-type: application/json");
    let signature = at(&err, "> x-retell-signature: v=");
    let blank = at(&err, "\n>\n");
    let body = at(&err, "\"event\": \"call_started\"");
    let response = at(&err, "< 204 No Content");
    assert!(
        request_line < content_type.min(signature)
            && content_type.max(signature) < blank
            && blank < body
            && body < response,
        "request line, headers, blank, body, response:\n{err}"
    );
    // stdout keeps the report alone.
    let report = stdout(&out);
    assert!(report.starts_with("POST "), "{report}");
    assert!(!report.contains("> "), "{report}");
}

#[test]
fn an_event_of_other_platforms_hints_at_every_platform_that_has_it() {
    let out = run(&["send", "call_ended", "-p", "postcall"]);
    assert_code(&out, 2);
    assert_no_panic(&out);
    let err = stderr(&out);
    let hint = err
        .lines()
        .find(|l| l.starts_with("hint:"))
        .unwrap_or_else(|| panic!("a hint line:\n{err}"));
    let catalog = hookcli::catalog::Catalog::load(None).unwrap();
    let having = catalog.platforms_with_event("call_ended", "postcall");
    assert_eq!(having.len(), 2, "uponai and salpre have call_ended");
    for platform in having {
        assert!(hint.contains(&format!("-p {}", platform.id)), "{hint}");
    }
    assert!(!hint.contains("-p postcall"), "{hint}");
}

#[test]
fn a_bad_set_hints_at_the_hookcli_show_command_for_that_event() {
    let cases: [&[&str]; 4] = [
        &["show", "call_ended", "-p", "salpre", "--set", "nope.x=1"],
        &["show", "call_ended", "-p", "salpre", "--set", "noequals"],
        &["show", "call_ended", "-p", "salpre", "--set", "a..b=1"],
        &[
            "send",
            "call_ended",
            "-p",
            "salpre",
            "--set",
            "nope.x=1",
            "--dry-run",
        ],
    ];
    for args in cases {
        let out = run(args);
        assert_code(&out, 2);
        assert_no_panic(&out);
        let err = stderr(&out);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{args:?}: an error and a hint\n{err}");
        assert!(lines[0].starts_with("error: --set"), "{args:?}\n{err}");
        assert!(
            lines[1].starts_with("hint:")
                && lines[1].contains("`hookcli show call_ended -p salpre`"),
            "{args:?}\n{err}"
        );
        assert!(!err.contains("EVENT"), "{args:?}: no placeholder\n{err}");
    }
}

/// Runs `hookcli ARGS` with a stdout whose reader is already gone, as in
/// `hookcli … | head -0`: every write to it fails with a broken pipe.
fn run_with_stdout_closed(args: &[&str]) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    hookcli()
        .args(args)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn a_closed_stdout_is_no_panic_and_keeps_the_delivery_and_the_exit_code() {
    let mut server = Server::uponai();
    let out = run_with_stdout_closed(&["send", "call_ended", "--secret", KEY, "--to", &server.url]);
    assert_code(&out, 0);
    assert_no_panic(&out);
    assert_eq!(server.hits(), 1, "the delivery is still made");
    assert_eq!(stderr(&out), "", "a closed pipe is not worth a word");

    let mut failing = Server::start("uponai", Some(KEY), faults(|f| f.status = 500));
    let args = ["send", "call_ended", "--secret", KEY, "--retries", "0"];
    let out = run_with_stdout_closed(&[&args[..], &["--to", &failing.url]].concat());
    assert_code(&out, 1);
    assert_no_panic(&out);
    assert_eq!(failing.hits(), 1);

    for args in [
        &["platforms"][..],
        &["show", "call_ended"],
        &["check", "--list"],
    ] {
        let out = run_with_stdout_closed(args);
        assert_code(&out, 0);
        assert_no_panic(&out);
    }
}

#[test]
fn a_closed_stderr_is_no_panic_either() {
    // `hookcli … 2>&1 | head -0`: both streams go to a pipe nobody reads. A panic would be
    // exit 101; the documented codes must survive.
    let mut server = Server::uponai();
    let url = server.url.clone();
    let cases: [(&[&str], i32); 4] = [
        (&["send", "call_ended", "--secret", KEY, "--to", &url], 0),
        // Without a key: a note on stderr, then a 401.
        (&["send", "call_ended", "--retries", "0", "--to", &url], 1),
        (&["send", "call_endd", "--secret", KEY, "--to", &url], 2),
        (&["send", "call_ended", "--bogus"], 2),
    ];
    for (args, expected) in cases {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = hookcli()
            .args(args)
            .stdout(writer.try_clone().unwrap())
            .stderr(writer)
            .output()
            .unwrap();
        assert_code(&out, expected);
    }
    assert_eq!(server.hits(), 2, "the bad commands sent nothing");
}

#[test]
fn the_report_streams_each_attempt_before_the_wait_for_the_next() {
    // The first request gets a 500, then a one-minute backoff: the `#1 ... retrying in 1m`
    // line must be on stdout while the receiver has seen one request, not after attempt 2.
    let mut server = Server::start("uponai", Some(KEY), faults(|f| f.fail_first = 1));
    let mut child = hookcli()
        .args(["send", "call_ended", "--secret", KEY, "--retries", "1"])
        .args(["--backoff", "1m", "--to", &server.url])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    let mut header = String::new();
    lines.read_line(&mut header).unwrap();
    let mut first = String::new();
    lines.read_line(&mut first).unwrap();
    let hits = server.hits();
    // Never leave the child waiting out its backoff.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        header.starts_with(&format!("POST {} · uponai call_ended · call ", server.url)),
        "{header:?}"
    );
    assert!(
        first.starts_with("  #1  500 Internal Server Error  ")
            && first.ends_with("  retrying in 1m\n"),
        "{first:?}"
    );
    assert_eq!(hits, 1, "the attempt line came before the second attempt");
}

#[test]
fn verbose_still_shows_the_exchange_on_stderr_with_json() {
    let mut server = Server::start("uponai", Some(KEY), faults(|f| f.fail_first = 1));
    let out = server.send(&[
        "call_ended",
        "--secret",
        KEY,
        "--backoff",
        "0",
        "--json",
        "-v",
    ]);
    assert_code(&out, 0);
    assert_eq!(server.hits(), 2);
    let report = json_of(&out);
    assert_eq!(report["attempts"].as_array().unwrap().len(), 2);
    let err = stderr(&out);
    let first = at(&err, "* attempt 1\n");
    let request = at(&err, &format!("> POST {}", server.url));
    let failed = at(&err, "< 500 Internal Server Error");
    let second = at(&err, "* attempt 2\n");
    let delivered = at(&err, "< 204 No Content");
    assert!(
        first < request && request < failed && failed < second && second < delivered,
        "both attempts, in order:\n{err}"
    );
}

#[test]
fn an_empty_data_body_says_it_is_empty_and_sends_nothing() {
    let mut server = Server::uponai();
    for input in [&b""[..], b" \n"] {
        let mut child = hookcli()
            .args(["send", "call_ended", "--data", "-", "--secret", KEY])
            .args(["--to", &server.url])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_code(&out, 2);
        let err = stderr(&out);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{err}");
        assert!(
            lines[0].starts_with("error: --data (stdin) is ")
                && lines[0].ends_with(": there is no body to send"),
            "{err}"
        );
        assert!(
            lines[1].starts_with("hint: pipe one JSON body in")
                && lines[1].contains("hookcli show call_ended"),
            "{err}"
        );
        assert!(!err.contains("EOF"), "{err}");
        assert!(out.stdout.is_empty());
    }
    let empty = TempFile::new("empty.json", b"");
    let out = server.send(&["--data", empty.path_str(), "--secret", KEY]);
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!(
            "error: --data `{}` is empty: there is no body to send\nhint: put one JSON body in the file",
            empty.path_str()
        )),
        "{err}"
    );
    assert_eq!(err.lines().count(), 2, "{err}");
    assert_eq!(server.hits(), 0);
}

#[test]
fn a_dry_run_without_to_says_signed_only_when_the_platform_signs() {
    let note = |args: &[&str]| {
        let out = run(&[&["send", "call_ended", "--dry-run"][..], args].concat());
        assert_code(&out, 0);
        stderr(&out)
    };
    let salpre = note(&["-p", "salpre"]);
    assert_eq!(
        salpre,
        "note: no --to given: a real send would go to hookcli's built-in receiver\n"
    );
    let made = note(&[]);
    assert!(
        made.ends_with(", signed with a key made for it\n"),
        "{made}"
    );
    let given = note(&["--secret", KEY]);
    assert!(given.ends_with(", signed with the key given\n"), "{given}");
}

#[test]
fn a_bad_hookcli_seed_is_exit_two_naming_it_and_nothing_is_sent() {
    let mut server = Server::uponai();
    for seed in ["abc", "-1", "99999999999999999999999", "4.2"] {
        let commands: [&[&str]; 3] = [
            &["show", "call_ended"],
            &["send", "call_ended", "--to", &server.url],
            &["load", "-n", "3", "--to", &server.url],
        ];
        for args in commands {
            let out = hookcli()
                .args(args)
                .env("HOOKCLI_SEED", seed)
                .env("HOOKCLI_SECRET", KEY)
                .output()
                .unwrap();
            assert_code(&out, 2);
            let err = stderr(&out);
            let lines: Vec<&str> = err.lines().collect();
            assert_eq!(
                lines,
                [
                    format!("error: HOOKCLI_SEED `{seed}` is not a seed").as_str(),
                    "hint: set it to a whole number from 0 to 18446744073709551615, like \
                     HOOKCLI_SEED=42, or unset it",
                ],
                "{args:?}"
            );
            assert!(stdout(&out).is_empty(), "{args:?}: nothing on stdout");
        }
    }
    assert_eq!(server.hits(), 0, "nothing was sent");
}

#[test]
fn a_good_hookcli_seed_renders_the_same_body_and_an_empty_one_is_no_seed() {
    let show = |seed: &str| {
        let out = hookcli()
            .args(["show", "call_ended", "--compact"])
            .env("HOOKCLI_SEED", seed)
            .output()
            .unwrap();
        assert_code(&out, 0);
        let body: Value = serde_json::from_slice(&out.stdout).unwrap();
        body["call"]["call_id"].clone()
    };
    assert_eq!(show("18446744073709551615"), show(" 18446744073709551615 "));
    assert_ne!(show(""), show(""), "an empty HOOKCLI_SEED is as if unset");
}

#[test]
fn an_unknown_platform_from_hookcli_platform_says_it_came_from_there() {
    let with_env = |value: &str, args: &[&str]| {
        hookcli()
            .args(args)
            .env("HOOKCLI_PLATFORM", value)
            .output()
            .unwrap()
    };
    for args in [
        &["events"][..],
        &["check", "--list"],
        &["show", "call_ended"],
    ] {
        let out = with_env("foo", args);
        assert_code(&out, 2);
        let err = stderr(&out);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{args:?}: {err}");
        assert_eq!(
            lines[0], "error: unknown platform `foo` (from HOOKCLI_PLATFORM)",
            "{args:?}"
        );
        assert!(
            lines[1].starts_with("hint: set HOOKCLI_PLATFORM to one of uponai")
                && lines[1].ends_with("or unset it for uponai"),
            "{args:?}: {err}"
        );
    }
    let out = with_env("retel", &["events"]);
    assert_code(&out, 2);
    assert!(
        stderr(&out).contains("hint: did you mean HOOKCLI_PLATFORM=retell?"),
        "{}",
        stderr(&out)
    );
    // -p wins over the variable, and its own error does not mention it.
    assert_code(&with_env("foo", &["events", "-p", "salpre"]), 0);
    let out = with_env("salpre", &["events", "-p", "nope"]);
    assert_code(&out, 2);
    assert!(
        stderr(&out).starts_with("error: unknown platform `nope`\n"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_empty_hookcli_platform_is_as_if_unset() {
    let mut server = Server::uponai();
    for value in ["", "  "] {
        let out = hookcli()
            .args(["events", "--json"])
            .env("HOOKCLI_PLATFORM", value)
            .output()
            .unwrap();
        assert_code(&out, 0);
        assert!(stdout(&out).contains("call_ended"), "uponai's events");
        let out = hookcli()
            .args(["send", "call_ended", "--secret", KEY, "--to", &server.url])
            .env("HOOKCLI_PLATFORM", value)
            .output()
            .unwrap();
        assert_code(&out, 0);
    }
    assert_eq!(server.hits(), 2);
}

#[test]
fn a_count_past_its_type_is_out_of_range_with_the_maximum() {
    let cases: [(&[&str], &str, &str); 6] = [
        (
            &["send", "call_ended", "--retries", "4294967296"],
            "error: invalid value '4294967296' for '--retries <N>': `4294967296` is out of range",
            "hint: write a whole number from 0 to 4294967295",
        ),
        (
            &["replay", "--retries", "99999999999999999999999"],
            "error: invalid value '99999999999999999999999' for '--retries <N>': \
             `99999999999999999999999` is out of range",
            "hint: write a whole number from 0 to 4294967295",
        ),
        (
            &["load", "-n", "1", "--retries", "4294967296"],
            "error: invalid value '4294967296' for '--retries <N>': `4294967296` is out of range",
            "hint: write a whole number from 0 to 4294967295",
        ),
        (
            &["listen", "--fail-first", "18446744073709551616"],
            "error: invalid value '18446744073709551616' for '--fail-first <N>': \
             `18446744073709551616` is out of range",
            "hint: write a whole number from 0 to 18446744073709551615",
        ),
        (
            &["replay", "--calls", "99999999999999999999999"],
            "error: invalid value '99999999999999999999999' for '--calls <N>': \
             `99999999999999999999999` is out of range",
            "hint: write a whole number from 1 to 10000000",
        ),
        (
            &["load", "-n", "18446744073709551616"],
            "error: invalid value '18446744073709551616' for '--count <COUNT>': \
             `18446744073709551616` is out of range",
            "hint: give a count from 1 to 18446744073709551615",
        ),
    ];
    for (args, error, hint) in cases {
        let out = run(args);
        assert_code(&out, 2);
        let err = stderr(&out);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines, [error, hint], "{args:?}");
    }
    // Not a number at all keeps its own words.
    let out = run(&["send", "call_ended", "--retries", "two"]);
    assert_eq!(
        stderr(&out).lines().collect::<Vec<_>>(),
        [
            "error: invalid value 'two' for '--retries <N>': `two` is not a whole number",
            "hint: write it like 0, 3 or 10",
        ]
    );
}

#[test]
fn a_dry_run_counts_a_key_from_hookcli_secret_as_given() {
    let out = hookcli()
        .args(["send", "call_ended", "--dry-run"])
        .env("HOOKCLI_SECRET", KEY)
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert!(
        stderr(&out).ends_with(", signed with the key given\n"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_failed_send_prints_the_command_that_sends_the_same_body_again() {
    let failing = Faults {
        fail_first: 100,
        ..Faults::default()
    };
    let mut server = Server::start("uponai", Some(KEY), failing);
    let out = server.send(&[
        "call_analyzed",
        "--secret",
        KEY,
        "--retries",
        "0",
        "--unset",
        "call.metadata",
    ]);
    assert_code(&out, 1);
    let text = stdout(&out);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("reproduce: "))
        .unwrap_or_else(|| panic!("a reproduce line in\n{text}"));
    assert!(
        line.starts_with("HOOKCLI_SEED=")
            && line.contains(" hookcli send call_analyzed -p uponai --to ")
            && line.contains("--unset call.metadata --retries 0 --secret \"$HOOKCLI_SECRET\""),
        "{line}"
    );
    assert!(!text.contains(KEY));
    let again = printed_command(line).output().unwrap();
    assert_code(&again, 1);
    let got = server.received().to_vec();
    assert_eq!(got.len(), 2);
    let (first, second) = (body_of(&got[0]), body_of(&got[1]));
    assert_eq!(
        first["call"]["call_id"], second["call"]["call_id"],
        "the same call"
    );
    assert_eq!(first["call"]["transcript"], second["call"]["transcript"]);
    assert!(second["call"].get("metadata").is_none(), "the same edit");
}

fn body_of(received: &hookcli::receiver::Received) -> Value {
    serde_json::from_slice(&received.body).unwrap()
}
