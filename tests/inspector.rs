//! `listen --ui`: the inspector's API and its locks, over real sockets. Each attack is tried
//! and must fail; the key must be nowhere in what the inspector serves.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::*;
use serde_json::Value;

/// A `listen --ui` child, with the inspector's base address and token.
struct Ui {
    listener: Listener,
    base: String,
    token: String,
}

fn start_ui(args: &[&str]) -> Ui {
    let mut all = vec!["--secret", KEY, "--ui"];
    all.extend_from_slice(args);
    let mut listener = Listener::start(&all);
    let url = loop {
        let line = listener.stderr_line();
        assert!(
            !line.is_empty(),
            "listen ended before printing the inspector"
        );
        if let Some(url) = line.trim().strip_prefix("inspector on ") {
            break url.to_string();
        }
    };
    let (base, token) = url.split_once("/?token=").expect("a token in the address");
    assert_eq!(token.len(), 32, "{url}");
    Ui {
        listener,
        base: base.to_string(),
        token: token.to_string(),
    }
}

struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// One raw HTTP/1.1 exchange, so Host and Origin are exactly what the test says.
fn http(base: &str, method: &str, target: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect to the inspector");
    let mut request = format!("{method} {target} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    stream.write_all(request.as_bytes()).expect("send");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read the answer");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

impl Ui {
    fn api(&self, method: &str, target: &str, body: &str) -> Answer {
        http(
            &self.base,
            method,
            target,
            &[
                ("x-hookcli-token", &self.token),
                ("content-type", "application/json"),
            ],
            body,
        )
    }

    fn requests(&self) -> Vec<Value> {
        let answer = self.api("GET", "/api/requests", "");
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.json()["requests"]
            .as_array()
            .expect("a list")
            .clone()
    }

    /// The list once it holds `n` rows. listen reports a request before answering it, but
    /// the inspector takes it from that channel on its own task: a sender can be done before
    /// the row is in. Waits on the row count, checked until it is there (10 s at most).
    fn rows(&self, n: usize) -> Vec<Value> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let rows = self.requests();
            if rows.len() >= n || std::time::Instant::now() > deadline {
                return rows;
            }
            std::thread::yield_now();
        }
    }
}

#[test]
fn the_page_and_api_need_the_token_and_refuse_a_wrong_one() {
    let ui = start_ui(&[]);
    let page = http(&ui.base, "GET", &format!("/?token={}", ui.token), &[], "");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("hookcli inspector"));
    for target in [
        "/",
        "/?token=",
        "/?token=0123456789abcdef0123456789abcdef",
        "/app.js",
    ] {
        assert_eq!(
            http(&ui.base, "GET", target, &[], "").status,
            403,
            "{target}"
        );
    }
    assert_eq!(http(&ui.base, "GET", "/api/requests", &[], "").status, 403);
    // The token in the query does not open the API: it needs the header a form cannot send.
    let in_query = format!("/api/requests?token={}", ui.token);
    assert_eq!(http(&ui.base, "GET", &in_query, &[], "").status, 403);
    let wrong = http(
        &ui.base,
        "GET",
        "/api/requests",
        &[("x-hookcli-token", "0123456789abcdef0123456789abcdef")],
        "",
    );
    assert_eq!(wrong.status, 403);
    let replay = http(
        &ui.base,
        "POST",
        "/api/replay",
        &[],
        r#"{"id":1,"to":"listen"}"#,
    );
    assert_eq!(replay.status, 403);
    assert_eq!(ui.api("GET", "/api/requests", "").status, 200);
    ui.listener.stop();
}

#[test]
fn a_foreign_host_is_refused_against_dns_rebinding() {
    let ui = start_ui(&[]);
    let port = ui.base.rsplit(':').next().unwrap().to_string();
    for host in [
        format!("evil.example:{port}"),
        format!("127.0.0.1.nip.io:{port}"),
        "127.0.0.1".to_string(),
        format!("127.0.0.1:{}", closed_port()),
    ] {
        let answer = http(
            &ui.base,
            "GET",
            "/api/requests",
            &[("Host", &host), ("x-hookcli-token", &ui.token)],
            "",
        );
        assert_eq!(answer.status, 421, "Host {host}");
    }
    let localhost = format!("localhost:{port}");
    let answer = http(
        &ui.base,
        "GET",
        "/api/requests",
        &[("Host", &localhost), ("x-hookcli-token", &ui.token)],
        "",
    );
    assert_eq!(answer.status, 200);
    ui.listener.stop();
}

#[test]
fn another_origin_gets_403_and_no_cors_header_is_ever_sent() {
    let ui = start_ui(&[]);
    for origin in [
        "https://evil.example",
        "null",
        "http://localhost:1",
        "http://127.0.0.1",
    ] {
        let answer = http(
            &ui.base,
            "POST",
            "/api/replay",
            &[("Origin", origin), ("x-hookcli-token", &ui.token)],
            r#"{"id":1,"to":"listen"}"#,
        );
        assert_eq!(answer.status, 403, "Origin {origin}");
    }
    let cross = http(
        &ui.base,
        "GET",
        "/api/requests",
        &[
            ("Sec-Fetch-Site", "cross-site"),
            ("x-hookcli-token", &ui.token),
        ],
        "",
    );
    assert_eq!(cross.status, 403);
    let ours = ui.base.clone();
    let same = http(
        &ui.base,
        "GET",
        "/api/requests",
        &[("Origin", &ours), ("x-hookcli-token", &ui.token)],
        "",
    );
    assert_eq!(same.status, 200);
    // A preflight is not answered with permission.
    let preflight = http(
        &ui.base,
        "OPTIONS",
        "/api/requests",
        &[
            ("Origin", "https://evil.example"),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "x-hookcli-token"),
        ],
        "",
    );
    assert_ne!(preflight.status / 100, 2);
    for answer in [&same, &preflight] {
        assert!(
            !answer.head.to_ascii_lowercase().contains("access-control-"),
            "{}",
            answer.head
        );
    }
    ui.listener.stop();
}

#[test]
fn every_answer_carries_a_strict_content_security_policy() {
    let ui = start_ui(&[]);
    let token = format!("?token={}", ui.token);
    let answers = [
        http(&ui.base, "GET", &format!("/{token}"), &[], ""),
        http(&ui.base, "GET", &format!("/app.js{token}"), &[], ""),
        http(&ui.base, "GET", &format!("/app.css{token}"), &[], ""),
        ui.api("GET", "/api/requests", ""),
        http(&ui.base, "GET", "/api/requests", &[], ""),
    ];
    for answer in &answers {
        let csp = answer.header("content-security-policy").expect("a CSP");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(
            answer.header("x-content-type-options").as_deref(),
            Some("nosniff")
        );
        assert_eq!(
            answer.header("referrer-policy").as_deref(),
            Some("no-referrer")
        );
    }
    // No inline script or style the policy would have to allow, no outside address.
    let page = &answers[0].body;
    assert!(!page.contains("<script>") && !page.contains("<style") && !page.contains("style="));
    for asset in [&answers[0].body, &answers[1].body, &answers[2].body] {
        assert!(!asset.contains("https://"), "no CDN");
        for outside in ["src=\"http", "href=\"http", "url(http", "import "] {
            assert!(!asset.contains(outside), "no outside asset: {outside}");
        }
    }
    assert!(
        !answers[1].body.contains("innerHTML"),
        "the script renders text only"
    );
    ui.listener.stop();
}

#[test]
fn a_payload_with_markup_is_served_only_as_json_data() {
    let ui = start_ui(&[]);
    let payload = r#"{"event":"call_started","call":{"call_id":"<img src=x onerror=alert(1)>","transcript":"</script><script>alert(document.domain)</script>"}}"#;
    let data = TempFile::new("xss.json", payload.as_bytes());
    let out = ui
        .listener
        .send(&["--data", data.path_str(), "--secret", KEY]);
    assert_code(&out, 0);
    let rows = ui.rows(1);
    assert_eq!(rows.len(), 1);
    let id = rows[0]["id"].as_u64().unwrap();
    let detail = ui.api("GET", &format!("/api/requests/{id}"), "");
    assert_eq!(
        detail.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(detail.json()["body_text"], payload, "the bytes, as data");
    assert_eq!(detail.json()["call_id"], "<img src=x onerror=alert(1)>");
    let page = http(&ui.base, "GET", &format!("/?token={}", ui.token), &[], "");
    assert!(
        !page.body.contains("alert("),
        "the page itself holds no request data"
    );
    ui.listener.stop();
}

#[test]
fn the_key_is_nowhere_in_the_page_its_assets_or_its_api() {
    let mut app = Server::uponai();
    let ui = start_ui(&["--forward-to", &app.url.clone()]);
    assert_code(&ui.listener.send(&["call_started", "--secret", KEY]), 0);
    // listen finds it invalid, and so does the app: its 401 reaches the sender.
    assert_code(
        &ui.listener
            .send(&["call_ended", "--secret", "wrong", "--retries", "0"]),
        1,
    );
    assert_eq!(app.hits(), 2);
    let token = format!("?token={}", ui.token);
    let mut served = vec![
        http(&ui.base, "GET", &format!("/{token}"), &[], "").body,
        http(&ui.base, "GET", &format!("/app.js{token}"), &[], "").body,
        http(&ui.base, "GET", &format!("/app.css{token}"), &[], "").body,
        ui.api("GET", "/api/requests", "").body,
    ];
    for row in ui.requests() {
        let id = row["id"].as_u64().unwrap();
        served.push(ui.api("GET", &format!("/api/requests/{id}"), "").body);
        for to in ["listen", "forward"] {
            let ask = format!(r#"{{"id":{id},"to":"{to}"}}"#);
            served.push(ui.api("POST", "/api/replay", &ask).body);
        }
    }
    for text in &served {
        assert!(!text.contains(KEY), "the key in:\n{text}");
        assert!(!text.contains(&hex::encode(KEY)), "the key as hex");
    }
    let (out, err) = ui.listener.stop();
    assert!(!out.contains(KEY) && !err.contains(KEY));
}

#[test]
fn an_invalid_signature_is_explained_without_a_digest() {
    let ui = start_ui(&[]);
    let out = ui
        .listener
        .send(&["call_started", "--secret", "another_key", "--retries", "0"]);
    assert_eq!(code(&out), 1);
    let rows = ui.rows(1);
    assert_eq!(rows[0]["verdict"], "invalid");
    let detail = ui
        .api("GET", &format!("/api/requests/{}", rows[0]["id"]), "")
        .json();
    let why = detail["why"].as_str().unwrap();
    assert!(why.contains("does not match this body"), "{why}");
    assert!(why.contains("another key"), "{why}");
    // The only 64-hex-digit string in the detail is the received header itself.
    let digests = regex::Regex::new("[0-9a-f]{64}").unwrap();
    assert!(!digests.is_match(why), "{why}");
    let header = detail["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0] == "x-retell-signature")
        .expect("the received signature header")[1]
        .as_str()
        .unwrap()
        .to_string();
    let mut rest = detail.to_string();
    rest = rest.replace(&header, "");
    assert!(!digests.is_match(&rest), "a computed digest leaked: {rest}");
    ui.listener.stop();
}

#[test]
fn replay_from_the_page_re_signs_and_the_new_request_arrives() {
    let mut app = Server::uponai();
    let ui = start_ui(&["--forward-to", &app.url.clone()]);
    assert_code(&ui.listener.send(&["call_started", "--secret", KEY]), 0);
    let id = ui.rows(1)[0]["id"].as_u64().unwrap();
    // Through listen: a second row, valid, relayed to the app.
    let answer = ui.api(
        "POST",
        "/api/replay",
        &format!(r#"{{"id":{id},"to":"listen"}}"#),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let result = answer.json();
    assert_eq!(result["status"], 204, "{result}");
    assert_eq!(result["signed"], true);
    let rows = ui.rows(2);
    assert_eq!(rows.len(), 2, "the replay shows up in the list");
    assert_eq!(rows[1]["verdict"], "valid");
    assert_eq!(rows[1]["duplicate_of"], rows[0]["n"]);
    // Straight to the app.
    let answer = ui.api(
        "POST",
        "/api/replay",
        &format!(r#"{{"id":{id},"to":"forward"}}"#),
    );
    assert_eq!(answer.json()["status"], 204);
    let got = app.received().to_vec();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.verdict.word() == "valid"));
    assert_eq!(got[0].body, got[2].body);
    // To a URL nothing listens on: said, not a crash.
    let down = format!("http://127.0.0.1:{}/webhook", closed_port());
    let answer = ui.api(
        "POST",
        "/api/replay",
        &format!(r#"{{"id":{id},"to":"{down}"}}"#),
    );
    assert_eq!(answer.json()["status"], Value::Null);
    assert!(answer.json()["error"].is_string(), "{}", answer.body);
    let answer = ui.api("POST", "/api/replay", r#"{"id":1,"to":"ftp://x/"}"#);
    assert_eq!(answer.status, 400);
    ui.listener.stop();
}

#[test]
fn copy_as_commands_reproduce_the_request() {
    let ui = start_ui(&[]);
    let body = r#"{"event":"call_started","call":{"call_id":"it's"}}"#;
    let data = TempFile::new("quote.json", body.as_bytes());
    assert_code(
        &ui.listener
            .send(&["--data", data.path_str(), "--secret", KEY]),
        0,
    );
    let id = ui.rows(1)[0]["id"].as_u64().unwrap();
    let detail = ui.api("GET", &format!("/api/requests/{id}"), "").json();
    let send = detail["copy_send"].as_str().unwrap();
    let curl = detail["copy_curl"].as_str().unwrap();
    // Run the send command through a shell: the listener gets the same bytes again.
    let out = printed_command(send).output().expect("sh runs");
    assert_code(&out, 0);
    let rows = ui.rows(2);
    assert_eq!(rows.len(), 2, "{send}");
    assert_eq!(rows[1]["verdict"], "valid");
    assert_eq!(rows[1]["duplicate_of"], rows[0]["n"], "the same bytes");
    assert!(curl.starts_with("printf %s '"), "{curl}");
    assert!(curl.contains("-H 'x-retell-signature: v="), "{curl}");
    assert!(curl.contains("--data-binary @-"), "{curl}");
    ui.listener.stop();
}

#[test]
fn after_a_restart_with_the_same_record_the_history_is_there() {
    let dir = TempFile::new("unused", b"");
    let record = dir.path.with_file_name("history.ndjson");
    let record_arg = record.to_str().unwrap().to_string();
    let ui = start_ui(&["--record", &record_arg]);
    assert_code(&ui.listener.send(&["call_started", "--secret", KEY]), 0);
    let out = ui
        .listener
        .send(&["call_ended", "--secret", "wrong", "--retries", "0"]);
    assert_eq!(code(&out), 1);
    ui.listener.stop();

    let ui = start_ui(&["--record", &record_arg, "--host", "0.0.0.0"]);
    // The inspector stays on loopback, on a port of its own, even when listen binds 0.0.0.0.
    assert!(ui.base.starts_with("http://127.0.0.1:"), "{}", ui.base);
    let webhook_port = ui
        .listener
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    assert!(!ui.base.ends_with(&format!(":{webhook_port}")));
    let rows = ui.rows(2);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["from_record"], true);
    assert_eq!(
        (rows[0]["verdict"].as_str(), rows[0]["status"].as_u64()),
        (Some("valid"), Some(204))
    );
    assert_eq!(
        (rows[1]["verdict"].as_str(), rows[1]["status"].as_u64()),
        (Some("invalid"), Some(401))
    );
    assert_eq!(rows[1]["event"], "call_ended");
    ui.listener.stop();
}
