//! hookcli against the platforms' own SDKs: receivers built on each official verifier (PyPI
//! `elevenlabs`, `twilio`, `standardwebhooks`; for Vapi and Bland, which ship none, the
//! documented rules), run by tests/sdk/receiver.py as child processes on 127.0.0.1:0.
//!
//! The SDKs come from `pip install elevenlabs twilio standardwebhooks` (.ci/run does it in a
//! virtual environment and sets HOOKCLI_PYTHON). Where python or a module is missing, each test
//! prints a note saying so and passes, so a plain `cargo test` works anywhere.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

use common::*;
use serde_json::Value;

const SW_KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER_SW_KEY: &str = "whsec_c2Vjb25kIGtleSBvZiB0aGUgcm90YXRpb24=";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/receiver.py");

/// The platforms with an SDK (or documented) receiver, and a key in each one's format.
const PLATFORMS: [(&str, &str); 6] = [
    ("elevenlabs", "wsec_test_hookcli_elevenlabs"),
    ("twilio", "twilio_auth_token_test"),
    ("standard-webhooks", SW_KEY),
    ("svix", SW_KEY),
    ("vapi", "vapi_server_secret_test"),
    ("bland", "bland_webhook_secret_test"),
];

fn python() -> Command {
    Command::new(std::env::var("HOOKCLI_PYTHON").unwrap_or_else(|_| "python3".into()))
}

fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "note: {text}");
}

/// A receiver.py child, killed when dropped.
struct Sdk {
    child: Child,
    port: u16,
}

impl Drop for Sdk {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sdk {
    /// Starts the receiver and waits for its ready line; `None` (with a printed note) when
    /// python or the platform's SDK is not there.
    fn start(platform: &str, key: &str, mode: &str) -> Option<Sdk> {
        let child = python()
            .args([SCRIPT, "serve", platform, key, mode])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(e) => {
                note(&format!("SDK tests skipped: python cannot start ({e})"));
                return None;
            }
        };
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("read the ready line");
        match line.trim().strip_prefix("ready ") {
            Some(port) => Some(Sdk {
                child,
                port: port.parse().expect("a port"),
            }),
            None => {
                note(&format!("{platform} SDK receiver skipped: {}", line.trim()));
                let _ = child.wait();
                None
            }
        }
    }

    /// A URL with a path and a query: the Twilio signature covers both.
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/in?tenant=a%20b&n=1", self.port)
    }
}

fn events(platform: &str) -> Vec<String> {
    common::platform(platform)
        .events
        .iter()
        .map(|e| e.name.clone())
        .collect()
}

#[test]
fn sdk_receivers_accept_every_event_hookcli_sends_and_refuse_a_wrong_key() {
    for (platform, key) in PLATFORMS {
        let Some(sdk) = Sdk::start(platform, key, "correct") else {
            continue;
        };
        let url = sdk.url();
        for event in events(platform) {
            // An event whose answer the platform reads (Vapi's tool-calls) is judged on its
            // answer too: these receivers check signatures and answer with a status only.
            let answered = common::platform(platform)
                .event(&event)
                .is_some_and(|e| e.answer.is_some());
            if answered {
                continue;
            }
            let out = run(&[
                "send",
                &event,
                "-p",
                platform,
                "--to",
                &url,
                "--secret",
                key,
                "--retries",
                "0",
            ]);
            assert_code(&out, 0);
        }
        let other = if key.starts_with("whsec_") {
            OTHER_SW_KEY
        } else {
            "not_the_key"
        };
        let event = &events(platform)[0];
        let out = run(&[
            "send",
            event,
            "-p",
            platform,
            "--to",
            &url,
            "--secret",
            other,
            "--retries",
            "0",
        ]);
        assert_code(&out, 1);
        assert!(stdout(&out).contains("401"), "{platform}: {}", stdout(&out));
    }
}

/// The cases that failed or warned in a `check --json` run.
fn check(platform: &str, key: &str, url: &str) -> (i32, Vec<(String, String)>) {
    let out = run(&[
        "check",
        "-p",
        platform,
        "--to",
        url,
        "--secret",
        key,
        "--retries",
        "0",
        "--json",
    ]);
    let bad = stdout(&out)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|v| {
            v["type"] == "case" && matches!(v["result"].as_str(), Some("failed" | "warning"))
        })
        .map(|v| {
            (
                v["case"].as_str().unwrap_or_default().to_string(),
                v["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    (code(&out), bad)
}

#[test]
fn check_passes_against_each_sdk_receiver() {
    for (platform, key) in PLATFORMS {
        let Some(sdk) = Sdk::start(platform, key, "correct") else {
            continue;
        };
        let (code, bad) = check(platform, key, &sdk.url());
        assert_eq!(bad, Vec::new(), "{platform}");
        assert_eq!(code, 0, "{platform}");
    }
}

#[test]
fn receivers_wrong_in_one_known_way_fail_exactly_their_case() {
    for (platform, key, mode, case) in [
        (
            "twilio",
            "twilio_auth_token_test",
            "wrong-url",
            "signature/url-query",
        ),
        (
            "elevenlabs",
            "wsec_test_hookcli_elevenlabs",
            "reserialize",
            "body/reformatted",
        ),
    ] {
        let Some(sdk) = Sdk::start(platform, key, mode) else {
            continue;
        };
        // A URL without a query: only signature/url-query adds one.
        let url = format!("http://127.0.0.1:{}/hooks/in", sdk.port);
        let (code, bad) = check(platform, key, &url);
        let names: Vec<&str> = bad.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, [case], "{platform} {mode}: {bad:?}");
        assert_eq!(code, 1);
    }
    // A key used as its whsec_ string rejects every genuine request, so every case that must be
    // accepted fails too; the case named for the mistake is the one that says why.
    if let Some(sdk) = Sdk::start("standard-webhooks", SW_KEY, "raw-key") {
        let (_, bad) = check("standard-webhooks", SW_KEY, &sdk.url());
        let raw = bad.iter().find(|(name, _)| name == "signature/whsec-raw");
        assert!(
            raw.is_some_and(|(_, reason)| reason.contains("base64-decode")),
            "{bad:?}"
        );
    }
}

/// The headers receiver.py's signer writes for `body` (the SDK's own, where it signs).
fn sdk_headers(
    platform: &str,
    key: &str,
    url: &str,
    body: &[u8],
    second: Option<&str>,
) -> Option<Vec<String>> {
    let file = TempFile::new("body", body);
    let mut args = vec![SCRIPT, "sign", platform, key, url, file.path_str()];
    args.extend(second);
    let out = python().args(&args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        note(&format!("{platform} SDK signer skipped: {}", text.trim()));
        return None;
    }
    Some(text.lines().map(str::to_string).collect())
}

/// Bodies the SDKs sign: unicode everywhere, and for a form, repeated keys.
fn bodies(platform: &str) -> Vec<Vec<u8>> {
    if platform == "twilio" {
        return vec![
            "CallSid=CA1&CallStatus=completed&From=%2B15550001111&Caller=Jos%C3%A9+M%C3%BCller+%F0%9F%91%8B"
                .into(),
            "B=2&A=%C3%A9&B=1&B=1&Empty=".into(),
        ];
    }
    vec![
        r#"{"type":"call.completed","data":{"note":"Café 👋 東京","n":1}}"#.into(),
        "{\n  \"spaced\" : \"kept as sent\"\n}".into(),
    ]
}

#[test]
fn signatures_made_by_the_sdks_pass_hookcli_verify_and_listen() {
    for (platform, key) in PLATFORMS {
        for url in [
            "http://127.0.0.1:8080/hooks/in?tenant=a%20b&n=1",
            "https://example.com/status",
        ] {
            for body in bodies(platform) {
                let Some(headers) = sdk_headers(platform, key, url, &body, None) else {
                    break;
                };
                let file = TempFile::new("body", &body);
                let mut args = vec!["verify", "-p", platform, "--secret", key, "--url", url];
                for header in &headers {
                    args.extend(["-H", header.as_str()]);
                }
                args.push(file.path_str());
                let out = run(&args);
                assert_eq!(stdout(&out).trim(), "valid", "{platform} {url} {headers:?}");
                assert_code(&out, 0);
            }
        }
    }
    // Key rotation: an old key's signature, then the right one.
    for platform in ["standard-webhooks", "svix"] {
        let body = br#"{"type":"x","data":{}}"#;
        let url = "http://127.0.0.1:1/";
        let Some(headers) = sdk_headers(platform, SW_KEY, url, body, Some(OTHER_SW_KEY)) else {
            continue;
        };
        assert!(headers[2].matches("v1,").count() == 2, "{headers:?}");
        let file = TempFile::new("body", body);
        let mut args = vec!["verify", "-p", platform, "--secret", SW_KEY];
        for header in &headers {
            args.extend(["-H", header.as_str()]);
        }
        args.push(file.path_str());
        assert_code(&run(&args), 0);
    }
}

#[test]
fn sdk_signed_requests_are_valid_in_listen() {
    for (platform, key) in PLATFORMS {
        let listener = Listener::start(&["-p", platform, "--secret", key]);
        let url = format!("{}?tenant=a%20b", listener.url);
        let body = bodies(platform).remove(0);
        let Some(headers) = sdk_headers(platform, key, &url, &body, None) else {
            drop(listener);
            continue;
        };
        let file = TempFile::new("body", &body);
        // Sent unsigned by hookcli (no key), with the SDK's headers as they are.
        let mut args = vec![
            "send",
            "-p",
            platform,
            "--to",
            url.as_str(),
            "--data",
            file.path_str(),
            "--retries",
            "0",
        ];
        for header in &headers {
            args.extend(["-H", header.as_str()]);
        }
        let out = run(&args);
        let (seen, _) = listener.stop();
        assert!(
            seen.contains(" valid "),
            "{platform}: {seen}\n{}",
            stderr(&out)
        );
        assert_code(&out, 0);
    }
}
