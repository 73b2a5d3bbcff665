//! `hookcli sign` and `verify` for every signing platform: every header printed, taken back
//! with -H, the URL where the scheme signs it, and the errors for what a scheme needs.

mod common;

use common::*;

const SW_KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn body_file(body: &[u8]) -> (TempFile, String) {
    let file = TempFile::new("body", body);
    let path = file.path_str().to_string();
    (file, path)
}

#[test]
fn what_sign_prints_verify_takes_back_for_every_signing_platform() {
    let url = "http://127.0.0.1:8080/hooks/in?tenant=a%20b";
    for (platform, key, body, headers) in [
        ("uponai", "key_x", &br#"{"event":"call_ended"}"#[..], 1),
        (
            "elevenlabs",
            "wsec_x",
            br#"{"type":"x","n":"Caf\xc3\xa9"}"#,
            1,
        ),
        ("standard-webhooks", SW_KEY, br#"{"test": 2432232314}"#, 3),
        ("svix", SW_KEY, br#"{"test": 1}"#, 3),
        ("twilio", "token_x", b"B=2&A=%C3%A9&B=1", 1),
        ("vapi", "secret_x", br#"{"message":{"type":"hang"}}"#, 1),
        ("bland", "secret_x", br#"{"call_id":"c"}"#, 1),
    ] {
        let (_dir, file) = body_file(body);
        let out = run(&["sign", "-p", platform, "--secret", key, "--url", url, &file]);
        assert_code(&out, 0);
        let lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
        assert_eq!(lines.len(), headers, "{platform}: {lines:?}");
        let mut args = vec!["verify", "-p", platform, "--secret", key, "--url", url];
        for line in &lines {
            args.extend(["-H", line.as_str()]);
        }
        args.push(&file);
        let out = run(&args);
        assert_eq!(stdout(&out).trim(), "valid", "{platform}");
        assert_code(&out, 0);
        // Another key, or (twilio) another URL, is invalid.
        args[4] = if key.starts_with("whsec_") {
            "whsec_b3RoZXIga2V5IG9mIGhvb2tjbGk="
        } else {
            "other"
        };
        let out = run(&args);
        assert_eq!(stdout(&out).trim(), "invalid", "{platform}");
        assert_code(&out, 1);
    }
}

#[test]
fn a_scheme_that_signs_the_url_needs_it_and_a_whsec_key_must_decode() {
    let (_dir, file) = body_file(b"A=1");
    let out = run(&["sign", "-p", "twilio", "--secret", "t", &file]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("--url"), "{}", stderr(&out));
    let out = run(&[
        "verify",
        "-p",
        "twilio",
        "--secret",
        "t",
        "--signature",
        "abc=",
        &file,
    ]);
    assert_code(&out, 2);
    let out = run(&[
        "sign",
        "-p",
        "standard-webhooks",
        "--secret",
        "whsec_!!",
        &file,
    ]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("whsec_"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("!!"), "the key is never shown");
    assert_no_panic(&out);
}

#[test]
fn standard_webhooks_verifies_the_spec_vector_with_three_headers() {
    let (_dir, file) = body_file(br#"{"test": 2432232314}"#);
    let out = run(&[
        "verify",
        "-p",
        "standard-webhooks",
        "--secret",
        SW_KEY,
        "--now",
        "1614265330000",
        "-H",
        "webhook-id: msg_p5jXN8AQM9LWM0D4loKWxJek",
        "-H",
        "webhook-timestamp: 1614265330",
        "-H",
        "webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        &file,
    ]);
    assert_eq!(stdout(&out).trim(), "valid");
    assert_code(&out, 0);
}

#[test]
fn a_form_platform_takes_a_form_body_and_sets_its_fields() {
    let out = run(&[
        "show",
        "completed",
        "-p",
        "twilio",
        "--set",
        "CallStatus=busy",
    ]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.trim().contains("&CallStatus=busy&"), "{text}");
    assert!(!text.contains('{'), "a form, not JSON: {text}");
    let (_dir, json) = body_file(br#"{"CallSid":"CA1"}"#);
    let out = run(&["send", "-p", "twilio", "--data", &json, "--dry-run"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("form"), "{}", stderr(&out));
    let (_dir, form) = body_file(b"CallSid=CA1&CallStatus=completed");
    let out = run(&[
        "send",
        "-p",
        "twilio",
        "--data",
        &form,
        "--dry-run",
        "--secret",
        "t",
    ]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("CallSid=CA1&CallStatus=completed"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn vapi_switches_to_its_hmac_or_legacy_credential_by_overlay() {
    let dir = std::env::temp_dir().join(format!(
        "hookcli-vapi-overlay-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    let vapi = dir.join("vapi");
    std::fs::create_dir_all(&vapi).expect("a temp dir");
    let (_body, file) = body_file(br#"{"message":{"type":"hang"}}"#);
    let overlay = dir.to_str().expect("utf-8 path");
    let write = |text: &str| std::fs::write(vapi.join("platform.toml"), text).expect("write");

    write("[signing]\nscheme = \"vapi-hmac\"\nheader = \"x-signature\"\n");
    let out = run(&[
        "--payloads",
        overlay,
        "sign",
        "-p",
        "vapi",
        "--secret",
        "s",
        &file,
    ]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("algorithm"), "{}", stderr(&out));

    write("[signing]\nscheme = \"vapi-hmac\"\nheader = \"x-signature\"\nalgorithm = \"sha256\"\n");
    let out = run(&[
        "--payloads",
        overlay,
        "sign",
        "-p",
        "vapi",
        "--secret",
        "vapi_secret",
        "--timestamp",
        "1714608475945",
        &file,
    ]);
    assert_code(&out, 0);
    // HMAC-SHA256("vapi_secret", "1714608475945.{body}"), computed with Python's hmac.
    assert_eq!(
        stdout(&out),
        "x-signature: 63cfe77256cb4f45d636d6ee662f53303426c213074727cca2840a9728373676\n\
         x-timestamp: 1714608475945\n"
    );

    write("[signing]\nscheme = \"token\"\nheader = \"x-vapi-secret\"\nprefix = \"\"\n");
    let out = run(&[
        "--payloads",
        overlay,
        "sign",
        "-p",
        "vapi",
        "--secret",
        "s3",
        &file,
    ]);
    assert_eq!(stdout(&out), "x-vapi-secret: s3\n");
    let _ = std::fs::remove_dir_all(&dir);
}
