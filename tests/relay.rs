//! `listen --forward-to`: a verifying relay between a sender and an app, over real sockets.
//! The app is hookcli's own receiver (in-process), or a raw socket where the exact answer
//! matters; the sender is `hookcli send` with retries and `--backoff 0`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use common::*;
use hookcli::receiver::Faults;
use hookcli::secret::Secret;
use hookcli::signing::{self, Scheme, Verdict};
use serde_json::Value;

const BODY: &[u8] = br#"{"event":"call_started","call":{"call_id":"call_relay_1"}}"#;

fn relay_to(app: &str, extra: &[&str]) -> Listener {
    let mut args = vec!["--secret", KEY, "--forward-to", app];
    args.extend_from_slice(extra);
    Listener::start(&args)
}

fn lines(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| !l.trim().is_empty()).collect()
}

#[test]
fn the_apps_500_reaches_the_sender_which_retries_and_the_app_verifies_each_attempt() {
    let mut app = Server::start(
        "uponai",
        Some(KEY),
        Faults {
            fail_first: 1,
            ..Faults::default()
        },
    );
    let relay = relay_to(&app.url, &[]);
    assert!(
        relay.ready_line.starts_with("listening on "),
        "{}",
        relay.ready_line
    );
    let out = relay.send(&[
        "call_started",
        "--secret",
        KEY,
        "--retries",
        "2",
        "--backoff",
        "0",
    ]);
    assert_code(&out, 0);
    assert_no_panic(&out);
    let sent = stdout(&out);
    assert!(
        sent.contains("500"),
        "the sender saw the app's 500:\n{sent}"
    );
    let got = app.received().to_vec();
    assert_eq!(got.len(), 2, "the app got the first attempt and the retry");
    for r in &got {
        // The signature came through untouched: the app verifies it with the same key.
        assert_eq!(r.verdict, Verdict::Valid);
        assert_eq!(r.event.as_deref(), Some("call_started"));
    }
    let (stdout, stderr) = relay.stop();
    assert!(stderr.contains("2 valid"), "{stderr}");
    let lines = lines(&stdout);
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].contains("valid  → app 500 in "), "{}", lines[0]);
    assert!(lines[0].contains(" ms"), "{}", lines[0]);
    assert!(lines[1].contains("valid  → app 204 in "), "{}", lines[1]);
    assert!(!stdout.contains(KEY) && !stderr.contains(KEY));
}

#[test]
fn every_request_is_forwarded_whatever_the_verdict_and_the_line_says_both() {
    let mut app = Server::start("uponai", None, Faults::default());
    let relay = relay_to(&app.url, &[]);
    // Signed with another key: listen says invalid, the app (not verifying) says 204.
    let out = relay.send(&["call_started", "--secret", "another_key", "--retries", "0"]);
    assert_code(&out, 0);
    assert_eq!(
        app.hits(),
        1,
        "forwarded although listen's verdict is invalid"
    );
    let (stdout, _) = relay.stop();
    assert!(
        stdout.contains("invalid  → app 204 in "),
        "listen's verdict and the app's answer:\n{stdout}"
    );
}

#[test]
fn app_down_gives_the_sender_a_502_and_the_line_says_why() {
    let app = format!("http://127.0.0.1:{}/webhook", closed_port());
    let relay = relay_to(&app, &["--json"]);
    let out = relay.send(&[
        "call_started",
        "--secret",
        KEY,
        "--retries",
        "1",
        "--backoff",
        "0",
    ]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(stdout(&out).contains("502"), "{}", stdout(&out));
    let (stdout, _) = relay.stop();
    let objects: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(objects.len(), 2, "both attempts relayed:\n{stdout}");
    for o in &objects {
        assert_eq!(o["status"], 502, "{o}");
        assert_eq!(o["verdict"], "valid", "{o}");
        assert_eq!(o["forwarded"]["status"], Value::Null, "{o}");
        let error = o["forwarded"]["error"].as_str().unwrap_or_default();
        assert!(error.starts_with("app down ("), "{o}");
    }
}

#[test]
fn a_slow_app_gives_the_sender_a_504_within_the_forward_timeout() {
    let mut app = Server::start(
        "uponai",
        Some(KEY),
        Faults {
            delay: Duration::from_secs(5),
            ..Faults::default()
        },
    );
    let relay = relay_to(&app.url, &["--forward-timeout", "200ms"]);
    let started = std::time::Instant::now();
    let out = relay.send(&[
        "call_started",
        "--secret",
        KEY,
        "--retries",
        "0",
        "--timeout",
        "10s",
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "not the app's 5 s"
    );
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(stdout(&out).contains("504"), "{}", stdout(&out));
    assert_eq!(app.hits(), 1);
    let (stdout, _) = relay.stop();
    assert!(
        stdout.contains("→ 504 app too slow (no answer in 200ms)"),
        "{stdout}"
    );
}

/// An app on a raw socket: hands back the request's exact bytes and answers `answer`.
fn raw_app(answer: &'static [u8]) -> (String, std::sync::mpsc::Receiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://{}/hooks/retell?tenant=a",
        listener.local_addr().expect("addr")
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("the relay connects");
        let mut reader = BufReader::new(stream);
        let mut head = Vec::new();
        loop {
            let mut line = Vec::new();
            reader.read_until(b'\n', &mut line).expect("read a line");
            head.extend_from_slice(&line);
            if line == b"\r\n" || line.is_empty() {
                break;
            }
        }
        let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let length: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse().expect("a length"))
            .expect("the relay sends a content-length");
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("the body");
        head.extend_from_slice(&body);
        let _ = tx.send(head);
        let mut stream = reader.into_inner();
        stream.write_all(answer).expect("answer");
    });
    (url, rx)
}

/// Sends raw bytes to the relay and reads its whole answer (it closes: `Connection: close`).
fn raw_exchange(url: &str, request: &[u8]) -> String {
    let addr = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .expect("host:port");
    let mut stream = TcpStream::connect(addr).expect("connect to the relay");
    stream.write_all(request).expect("send");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read the answer");
    String::from_utf8(answer).expect("a text answer")
}

#[test]
fn bytes_and_end_to_end_headers_reach_the_app_exactly_hop_by_hop_ones_do_not() {
    let (app_url, requests) = raw_app(
        b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nX-App: yes\r\n\
          Keep-Alive: timeout=5\r\nConnection: close, X-App-Hop\r\nX-App-Hop: 1\r\n\
          Content-Length: 27\r\n\r\n{\"response_id\":7,\"ok\":true}",
    );
    let relay = relay_to(&app_url, &[]);
    let signature = signing::sign(Scheme::Retell, &Secret::new(KEY), BODY, signing::now_ms());
    // Chunked on the way in, in two pieces: the app gets one body with its length.
    let (first, second) = BODY.split_at(20);
    let mut request = format!(
        "POST /webhook HTTP/1.1\r\nHost: abc.tunnel.example\r\nContent-Type: application/json\r\n\
         X-Retell-Signature: {signature}\r\nX-Custom:  spaced\tvalue \r\nX-Multi: one\r\n\
         X-Multi: two\r\nConnection: close, X-Hop\r\nX-Hop: secret-to-this-hop\r\n\
         Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n\
         Trailer: X-Checksum\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    request.extend(chunked(&[first, second]));
    let answer = raw_exchange(&relay.url, &request);

    let seen = requests
        .recv_timeout(Duration::from_secs(30))
        .expect("the app got a request");
    let split = seen
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let (head, body) = (String::from_utf8_lossy(&seen[..split]), &seen[split + 4..]);
    assert_eq!(body, BODY, "the exact body bytes");
    let mut head_lines = head.lines();
    assert_eq!(
        head_lines.next(),
        Some("POST /hooks/retell?tenant=a HTTP/1.1"),
        "{head}"
    );
    let headers: Vec<String> = head_lines.map(str::to_ascii_lowercase).collect();
    let app_authority = app_url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap();
    for expected in [
        format!("host: {app_authority}"),
        "content-type: application/json".to_string(),
        format!("x-retell-signature: {signature}"),
        "x-custom: spaced\tvalue".to_string(),
        "x-multi: one".to_string(),
        "x-multi: two".to_string(),
        format!("content-length: {}", BODY.len()),
    ] {
        assert!(headers.contains(&expected), "`{expected}` in:\n{head}");
    }
    for dropped in [
        "connection",
        "x-hop",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ] {
        assert!(
            !headers
                .iter()
                .any(|h| h.starts_with(&format!("{dropped}:"))),
            "hop-by-hop `{dropped}` was forwarded:\n{head}"
        );
    }
    assert_eq!(headers.len(), 7, "nothing added:\n{head}");
    // Verified at the app's side with the same key, over the bytes it got.
    let verdict = signing::verify(
        Scheme::Retell,
        &Secret::new(KEY),
        body,
        Some(&signature),
        signing::now_ms(),
        Duration::from_secs(300),
    );
    assert_eq!(verdict, Verdict::Valid);

    // The app's answer comes back whole, without its hop-by-hop headers.
    let lower = answer.to_ascii_lowercase();
    assert!(answer.starts_with("HTTP/1.1 201 Created\r\n"), "{answer}");
    assert!(lower.contains("\r\nx-app: yes\r\n"), "{answer}");
    assert!(
        lower.contains("\r\ncontent-type: application/json\r\n"),
        "{answer}"
    );
    assert!(!lower.contains("x-app-hop"), "{answer}");
    assert!(!lower.contains("keep-alive: timeout"), "{answer}");
    assert!(
        answer.ends_with("\r\n\r\n{\"response_id\":7,\"ok\":true}"),
        "{answer}"
    );
    let (stdout, _) = relay.stop();
    assert!(stdout.contains("valid  → app 201 in "), "{stdout}");
}

#[test]
fn a_recording_through_the_relay_keeps_the_apps_status_and_replays() {
    // The app verifies with another key: it answers 401 to what listen found valid.
    let mut app = Server::start("uponai", Some("the_apps_own_key"), Faults::default());
    let dir = TempFile::new("unused", b"");
    let record = dir.path.with_file_name("relay.ndjson");
    let record_arg = record.to_str().unwrap();
    let relay = relay_to(&app.url, &["--record", record_arg]);
    let out = relay.send(&["call_started", "--secret", KEY, "--retries", "0"]);
    assert_eq!(code(&out), 1, "the app's 401 reached the sender");
    assert!(stdout(&out).contains("401"), "{}", stdout(&out));
    assert_eq!(app.hits(), 1);
    relay.stop();
    let text = std::fs::read_to_string(&record).expect("the record");
    let line: Value = serde_json::from_str(text.trim()).expect("one record line");
    assert_eq!(line["status"], 401, "the app's answer: {line}");
    assert_eq!(line["verdict"], "valid", "listen's judgement: {line}");
    assert_eq!(line["forwarded"]["status"], 401, "{line}");
    assert!(line["forwarded"]["ms"].is_u64(), "{line}");

    // The app's 4xx is not listen's rejection: the delivery replays.
    let mut again = Server::uponai();
    let out = run(&[
        "replay", "--from", record_arg, "--to", &again.url, "--secret", KEY,
    ]);
    assert_code(&out, 0);
    let replayed = again.received().to_vec();
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0].verdict, Verdict::Valid, "re-signed fresh");
    assert_eq!(replayed[0].event.as_deref(), Some("call_started"));
}

#[test]
fn a_forward_url_that_is_not_plain_http_is_refused_before_listening() {
    for bad in ["https://127.0.0.1:3000/x", "localhost:3000", "http://"] {
        let out = run(&["listen", "--port", "0", "--forward-to", bad]);
        assert_code(&out, 2);
        assert_no_panic(&out);
        let err = stderr(&out);
        assert!(
            err.starts_with(&format!("error: --forward-to `{bad}`")),
            "{err}"
        );
        assert!(err.contains("hint: "), "{err}");
    }
    let out = run(&[
        "listen",
        "--port",
        "0",
        "--forward-to",
        "http://x/",
        "--status",
        "500",
    ]);
    assert_code(&out, 2);
}

/// Twilio signs the URL it posts to: behind a tunnel that is the tunnel's https origin, which
/// neither listen nor the app sees. `--public-url` gives it to listen's verifier, and the start
/// says what the app must verify against.
#[test]
fn a_url_signing_platform_is_verified_against_the_public_url_behind_a_tunnel() {
    let form = run(&["show", "completed", "-p", "twilio"]);
    assert_code(&form, 0);
    let body = form.stdout;
    let file = TempFile::new("twilio.form", &body);
    let signed = run(&[
        "sign",
        "-p",
        "twilio",
        "--secret",
        KEY,
        "--url",
        "https://abc.ngrok.app/webhook",
        file.path_str(),
    ]);
    assert_code(&signed, 0);
    let header = stdout(&signed).trim().to_string();
    let request = |relay: &Listener| {
        let mut request = format!(
            "POST /webhook HTTP/1.1\r\nHost: abc.ngrok.app\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n{header}\r\n\
             Connection: close\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(&body);
        raw_exchange(&relay.url, &request)
    };

    let mut app = Server::start("twilio", None, Faults::default());
    let public = ["-p", "twilio", "--public-url", "https://abc.ngrok.app/"];
    let relay = relay_to(&app.url, &public);
    let answer = request(&relay);
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
    let (out, err) = relay.stop();
    assert!(out.contains("  valid  → app 204 in "), "{out}");
    assert!(
        err.contains("note: twilio signs the URL: the app sees its own address, not https://abc.ngrok.app; it must verify against https://abc.ngrok.app"),
        "{err}"
    );
    assert_eq!(app.hits(), 1);

    // Without it, listen rebuilds http://abc.ngrok.app/webhook from the Host header: not what
    // the platform signed.
    let relay = relay_to(&app.url, &["-p", "twilio"]);
    request(&relay);
    let (out, err) = relay.stop();
    assert!(out.contains("invalid"), "{out}");
    assert!(
        err.contains("not the public URL the platform signed"),
        "{err}"
    );

    for bad in [
        "abc.ngrok.app",
        "https://abc.ngrok.app/webhook",
        "https://u:pw@abc.ngrok.app",
    ] {
        let out = run(&["listen", "--port", "0", "-p", "twilio", "--public-url", bad]);
        assert_code(&out, 2);
        let err = stderr(&out);
        assert!(err.starts_with("error: --public-url `"), "{err}");
        assert!(err.contains("hint: give the tunnel's origin"), "{err}");
        assert!(!err.contains("pw"), "{err}");
    }
}
