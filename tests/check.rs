//! `hookcli check` against receivers built for the purpose on 127.0.0.1:0, each wrong in one
//! known way: the case meant for the flaw catches it, and no unrelated error-level case fails.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use hookcli::catalog::{Catalog, Platform};
use hookcli::receiver::{Faults, Receiver, ReceiverConfig};
use hookcli::secret::Secret;
use hookcli::signing::{self, Scheme, Verdict};

const KEY: &str = "key_test_check_receiver";

/// The runtime the receivers serve on while the test thread runs the binary.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn uponai() -> Platform {
    Catalog::load(None)
        .unwrap()
        .platform("uponai")
        .map(|platform| Platform::clone(platform))
        .unwrap()
}

/// A fresh, empty folder: the binary runs there, so no stray hookcli.toml is read.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hookcli-check-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// case name → (result, reason).
    fn cases(&self) -> BTreeMap<String, (String, String)> {
        self.lines()
            .into_iter()
            .filter(|l| l["type"] == "case")
            .map(|l| {
                let name = l["case"].as_str().unwrap().to_string();
                let result = l["result"].as_str().unwrap().to_string();
                let reason = l["reason"].as_str().unwrap_or("").to_string();
                (name, (result, reason))
            })
            .collect()
    }

    fn with_result(&self, result: &str) -> BTreeSet<String> {
        self.cases()
            .into_iter()
            .filter(|(_, (r, _))| r == result)
            .map(|(name, _)| name)
            .collect()
    }

    fn summary(&self) -> Value {
        self.lines().pop().expect("a summary line")
    }
}

fn hookcli(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookcli"));
    command
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("HOOKCLI_SECRET")
        .env_remove("HOOKCLI_PLATFORM")
        .env_remove("HOOKCLI_SEED")
        .env_remove("UPONAI_API_KEY")
        .env_remove("RETELL_API_KEY");
    for (name, value) in envs {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// `check --to URL --json` plus `extra`, with the receiver's key.
fn check(dir: &Path, url: &str, extra: &[&str]) -> Run {
    let mut args = vec!["check", "--to", url, "--secret", KEY, "--json"];
    args.extend_from_slice(extra);
    hookcli(dir, &args, &[])
}

fn start_receiver(rt: &tokio::runtime::Runtime, key: Option<&str>, faults: Faults) -> Receiver {
    let mut config = ReceiverConfig::local(uponai(), key.map(Secret::new));
    config.faults = faults;
    rt.block_on(Receiver::start(config, None)).unwrap()
}

fn hits(receiver: &Receiver) -> u64 {
    receiver.stats.requests.load(Ordering::Relaxed)
}

fn signature_errors() -> BTreeSet<String> {
    [
        "signature/missing",
        "signature/wrong-key",
        "signature/tampered-body",
        "signature/stale",
        "signature/malformed",
    ]
    .map(String::from)
    .into()
}

/// A receiver with one flaw on top of otherwise careful handling: it verifies the raw body,
/// answers 400 to non-JSON, 2xx to unknown events and to duplicates.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flaw {
    /// Verifies the signature over `serde_json::to_vec(parsed body)`, not the raw bytes.
    VerifiesReserializedBody,
    /// Answers 500 to an event type it does not know.
    FailsUnknownEvents,
    /// Answers 409 to a body it has already seen.
    NotIdempotent,
    /// Answers the first N requests, then stops: closes its port and every connection, as a
    /// receiver that crashes in the middle of a run.
    StopsAfter(u64),
    /// Answers this status to every request, before looking at it: a route that is not the
    /// webhook handler (404 for a wrong path, 405 for a path that does not take POST).
    AnswersAll(u16),
    /// Takes every connection and request and never answers: a stuck handler.
    NeverAnswers,
    /// Answers every request `308 Permanent Redirect` to [`FINAL_URL`]: a receiver that moved.
    Redirects,
}

/// Where a [`Flaw::Redirects`] receiver sends every request.
const FINAL_URL: &str = "https://hooks.example.com/final/webhook";

struct Flawed {
    flaw: Flaw,
    platform: Platform,
    seen: Mutex<HashSet<Bytes>>,
    hits: AtomicU64,
    /// Cancelled when a StopsAfter receiver stops.
    stop: CancellationToken,
}

fn start_flawed(rt: &tokio::runtime::Runtime, flaw: Flaw) -> (String, Arc<Flawed>) {
    let state = Arc::new(Flawed {
        flaw,
        platform: uponai(),
        seen: Mutex::new(HashSet::new()),
        hits: AtomicU64::new(0),
        stop: CancellationToken::new(),
    });
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}/webhook", listener.local_addr().unwrap());
    let serving = state.clone();
    rt.spawn(async move {
        loop {
            // On stop the listener is dropped here: the port refuses connections from then on.
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = serving.stop.cancelled() => break,
            };
            let Ok((stream, _)) = accepted else {
                continue;
            };
            let state = serving.clone();
            tokio::spawn(async move {
                let stop = state.stop.clone();
                let service = hyper::service::service_fn(move |req| answer(req, state.clone()));
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                // On stop, open connections close too, unanswered.
                tokio::select! {
                    _ = connection => {}
                    _ = stop.cancelled() => {}
                }
            });
        }
    });
    (url, state)
}

async fn answer(
    req: Request<Incoming>,
    state: Arc<Flawed>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let n = state.hits.fetch_add(1, Ordering::Relaxed) + 1;
    match state.flaw {
        Flaw::StopsAfter(answers) if n > answers => {
            state.stop.cancel();
            // Never answered: the connection is closed under it.
            std::future::pending::<()>().await;
        }
        // Until hookcli gives up and closes the connection.
        Flaw::NeverAnswers => std::future::pending::<()>().await,
        Flaw::AnswersAll(status) => {
            return Ok(Response::builder()
                .status(status)
                .body(Full::new(Bytes::new()))
                .unwrap());
        }
        Flaw::Redirects => {
            return Ok(Response::builder()
                .status(308)
                .header("location", FINAL_URL)
                .body(Full::new(Bytes::new()))
                .unwrap());
        }
        _ => {}
    }
    let header = req
        .headers()
        .get("x-retell-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let status = judge(&state, header.as_deref(), &body);
    Ok(Response::builder()
        .status(status)
        .body(Full::new(Bytes::new()))
        .unwrap())
}

fn judge(state: &Flawed, header: Option<&str>, body: &Bytes) -> u16 {
    let verify = |bytes: &[u8]| {
        let key = Secret::new(KEY);
        signing::verify(
            Scheme::Retell,
            &key,
            bytes,
            header,
            signing::now_ms(),
            Duration::from_secs(300),
        )
    };
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return if verify(body) == Verdict::Valid {
            400
        } else {
            401
        };
    };
    let signed = match state.flaw {
        Flaw::VerifiesReserializedBody => Bytes::from(serde_json::to_vec(&value).unwrap()),
        _ => body.clone(),
    };
    match verify(&signed) {
        Verdict::Valid => {}
        Verdict::Malformed(_) => return 400,
        _ => return 401,
    }
    let known = state
        .platform
        .event_of(&value)
        .is_some_and(|e| state.platform.event(&e).is_some());
    if state.flaw == Flaw::FailsUnknownEvents && !known {
        return 500;
    }
    if state.flaw == Flaw::NotIdempotent && !state.seen.lock().unwrap().insert(body.clone()) {
        return 409;
    }
    204
}

/// The JUnit file parses; returns (testcases, failures counted from the testcases).
fn junit_counts(path: &Path) -> (usize, usize) {
    let xml = std::fs::read_to_string(path).unwrap();
    let report = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    let cases: Vec<_> = report
        .test_suites
        .iter()
        .flat_map(|s| &s.test_cases)
        .collect();
    let failures = cases
        .iter()
        .filter(|c| matches!(c.status, quick_junit::TestCaseStatus::NonSuccess { .. }))
        .count();
    assert_eq!(
        report.failures, failures,
        "the failures attribute matches the testcases"
    );
    (cases.len(), failures)
}

#[test]
fn a_receiver_that_verifies_correctly_passes_every_case_and_exits_zero() {
    let rt = runtime();
    let dir = temp_dir("correct");
    let receiver = start_receiver(&rt, Some(KEY), Faults::default());
    let list = hookcli(&dir, &["check", "--list", "--json"], &[]);
    assert_eq!(list.code, 0);
    assert_eq!(hits(&receiver), 0, "--list sends nothing");
    let names: BTreeSet<String> = list
        .lines()
        .iter()
        .map(|l| l["case"].as_str().unwrap().to_string())
        .collect();
    for expected in [
        "delivers/call_ended",
        "lifecycle/call",
        "signature/stale",
        "body/large",
        "event/unknown",
        "load/burst",
    ] {
        assert!(names.contains(expected), "{expected} in --list");
    }

    let run = check(&dir, &receiver.url, &["--junit", "report.xml"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let cases = run.cases();
    assert_eq!(
        cases.keys().cloned().collect::<BTreeSet<_>>(),
        names,
        "every listed case ran"
    );
    // answers/* need an inbound_url or [[functions]] in hookcli.toml; without, skipped.
    let not_passed: Vec<_> = cases
        .iter()
        .filter(|(name, (r, _))| r != "passed" && !(name.starts_with("answers/") && r == "skipped"))
        .collect();
    assert!(not_passed.is_empty(), "{not_passed:?}");
    // The receiver got every request the report counts, and the signature cases reached it.
    let sent: u64 = run
        .lines()
        .iter()
        .filter_map(|l| l["requests"].as_u64())
        .sum();
    assert_eq!(hits(&receiver), sent);
    let verdicts: BTreeMap<_, _> = receiver.stats.by_verdict().into_iter().collect();
    for verdict in ["valid", "invalid", "stale", "missing", "malformed"] {
        assert!(verdicts.contains_key(verdict), "{verdict}: {verdicts:?}");
    }
    assert!(
        verdicts["valid"] >= 60,
        "load/burst alone sends 60 valid events: {verdicts:?}"
    );
    assert_eq!(run.summary()["exit_code"], 0);
    assert_eq!(junit_counts(&dir.join("report.xml")), (names.len(), 0));
}

#[test]
fn a_receiver_that_accepts_everything_fails_the_signature_cases() {
    let rt = runtime();
    let dir = temp_dir("no-verify");
    let receiver = start_receiver(&rt, None, Faults::default());
    let run = check(&dir, &receiver.url, &["--junit", "report.xml"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.with_result("failed"), signature_errors());
    let cases = run.cases();
    assert!(
        cases["signature/missing"]
            .1
            .contains("does not verify signatures")
    );
    assert_eq!(
        cases["signature/future"].0, "warning",
        "future is a warning case"
    );
    assert_eq!(run.summary()["failed"], 5);
    let (total, failures) = junit_counts(&dir.join("report.xml"));
    assert_eq!((total, failures), (cases.len(), 5));
}

#[test]
fn a_2xx_to_a_forged_request_fails_the_signature_cases_even_outside_the_success_rule() {
    let rt = runtime();
    let dir = temp_dir("accepts-202");
    let accepts_202 = Faults {
        status: 202,
        ..Faults::default()
    };
    let receiver = start_receiver(&rt, None, accepts_202);
    let run = check(
        &dir,
        &receiver.url,
        &["--expect", "200", "--only", "signature/", "--backoff", "0"],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.with_result("failed"), signature_errors());
    let (result, reason) = &run.cases()["signature/missing"];
    assert_eq!(result, "failed");
    assert!(
        reason.contains("was accepted (202 Accepted)")
            && reason.contains("does not verify signatures"),
        "{reason}"
    );
    // One request per case, malformed's three included: none retried.
    assert_eq!(hits(&receiver), 8);
}

#[test]
fn a_receiver_that_verifies_a_reserialized_body_fails_body_reformatted() {
    let rt = runtime();
    let dir = temp_dir("reserialized");
    let (url, state) = start_flawed(&rt, Flaw::VerifiesReserializedBody);
    let run = check(&dir, &url, &["--backoff", "0"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    // The compact bodies hookcli sends re-serialize (serde_json, keys in order) to the same
    // bytes; only the reformatted one can tell.
    assert_eq!(
        run.with_result("failed"),
        BTreeSet::from(["body/reformatted".to_string()])
    );
    assert!(run.cases()["body/reformatted"].1.contains("re-serialized"));
    assert!(state.hits.load(Ordering::Relaxed) > 0);
}

#[test]
fn a_receiver_that_answers_500_to_unknown_events_fails_event_unknown() {
    let rt = runtime();
    let dir = temp_dir("unknown-500");
    let (url, _state) = start_flawed(&rt, Flaw::FailsUnknownEvents);
    let run = check(&dir, &url, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        run.with_result("failed"),
        BTreeSet::from(["event/unknown".to_string()])
    );
    assert!(run.cases()["event/unknown"].1.contains("500"));
}

#[test]
fn a_receiver_that_is_not_idempotent_fails_delivery_duplicate() {
    let rt = runtime();
    let dir = temp_dir("not-idempotent");
    let (url, _state) = start_flawed(&rt, Flaw::NotIdempotent);
    let run = check(&dir, &url, &["--retries", "0"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    // The copy sent at the same time as the first is refused too.
    assert_eq!(
        run.with_result("failed"),
        BTreeSet::from([
            "delivery/duplicate".to_string(),
            "delivery/concurrent-duplicate".to_string()
        ])
    );
    for name in ["delivery/duplicate", "delivery/concurrent-duplicate"] {
        let (_, reason) = &run.cases()[name];
        assert!(reason.contains("409"), "{name}: {reason}");
    }
}

#[test]
fn a_receiver_answering_413_to_a_1_mb_body_passes_body_large() {
    let rt = runtime();
    let dir = temp_dir("large-413");
    let mut config = ReceiverConfig::local(uponai(), Some(Secret::new(KEY)));
    config.max_body = 100 * 1024;
    let receiver = rt.block_on(Receiver::start(config, None)).unwrap();
    let run = check(&dir, &receiver.url, &["--only", "body/large"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let case = &run.lines()[0];
    assert_eq!(case["result"], "passed", "{case}");
    assert_eq!(case["statuses"], serde_json::json!([413]), "{case}");
    assert_eq!(case["requests"], 1, "a 413 is final: not retried");
}

#[test]
fn a_receiver_too_slow_for_the_timeout_fails_delivers_as_timeouts() {
    let rt = runtime();
    let dir = temp_dir("slow");
    let slow = Faults {
        delay: Duration::from_secs(1),
        ..Faults::default()
    };
    let receiver = start_receiver(&rt, Some(KEY), slow);
    let run = check(
        &dir,
        &receiver.url,
        &["--timeout", "300ms", "--retries", "0", "--burst", "2"],
    );
    // It answers, but never within the timeout: to hookcli every request went unanswered,
    // so the run tested nothing and exits 3, while each case still says what it met.
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(run.summary()["receiver"], "down");
    let cases = run.cases();
    let delivers: Vec<_> = cases
        .iter()
        .filter(|(n, _)| n.starts_with("delivers/"))
        .collect();
    // Requests whose answer the platform reads go to their own URL: answers/* check them.
    let webhooks = uponai()
        .events
        .iter()
        .filter(|e| e.answer.is_none())
        .count();
    assert_eq!(delivers.len(), webhooks);
    for (name, (result, reason)) in delivers {
        assert_eq!(result, "failed", "{name}");
        assert!(reason.contains("timed out after 300ms"), "{name}: {reason}");
    }
    // A rejection that times out is not an acceptance: the signature cases only warn.
    for (name, (result, _)) in cases.iter().filter(|(n, _)| n.starts_with("signature/")) {
        assert_eq!(result, "warning", "{name}");
    }
}

#[test]
fn without_a_key_the_signature_cases_are_skipped_with_the_reason() {
    let rt = runtime();
    let dir = temp_dir("no-key");
    let receiver = start_receiver(&rt, None, Faults::default());
    let run = hookcli(&dir, &["check", "--to", &receiver.url, "--json"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let cases = run.cases();
    for (name, (result, reason)) in cases.iter().filter(|(n, _)| n.starts_with("signature/")) {
        assert_eq!(result, "skipped", "{name}");
        assert!(reason.contains("no key given"), "{name}: {reason}");
    }
    assert!(run.stderr.contains("signature cases are skipped"));
    assert_eq!(run.with_result("failed"), BTreeSet::new());
}

#[test]
fn only_and_skip_take_names_and_prefixes() {
    let rt = runtime();
    let dir = temp_dir("only-skip");
    let receiver = start_receiver(&rt, Some(KEY), Faults::default());
    let run = check(
        &dir,
        &receiver.url,
        &[
            "--only",
            "signature/",
            "--skip",
            "signature/future,signature/stale",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let names: Vec<String> = run.cases().into_keys().collect();
    assert_eq!(
        names,
        [
            "signature/malformed",
            "signature/missing",
            "signature/tampered-body",
            "signature/wrong-key"
        ]
    );
    // missing, wrong-key and tampered send one request each; malformed sends three.
    assert_eq!(hits(&receiver), 6);
}

#[test]
fn an_unknown_case_lists_the_cases_and_sends_nothing() {
    let rt = runtime();
    let dir = temp_dir("unknown-case");
    let receiver = start_receiver(&rt, Some(KEY), Faults::default());
    let run = check(&dir, &receiver.url, &["--skip", "signature/expired"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("--skip signature/expired: no case is called `signature/expired`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("signature/stale") && run.stderr.contains("load/burst"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
    // A near miss gets a suggestion; a name like no case gets none (not `body/` for `bogus`).
    let near = check(&dir, &receiver.url, &["--skip", "signatur/"]);
    assert!(
        near.stderr.contains("did you mean signature/?"),
        "{}",
        near.stderr
    );
    let far = check(&dir, &receiver.url, &["--skip", "bogus"]);
    assert_eq!(far.code, 2);
    assert!(!far.stderr.contains("did you mean"), "{}", far.stderr);
    assert_eq!(hits(&receiver), 0);
}

#[test]
fn a_suite_file_that_does_not_parse_names_file_line_and_key_and_sends_nothing() {
    let rt = runtime();
    let dir = temp_dir("bad-suite");
    let receiver = start_receiver(&rt, Some(KEY), Faults::default());
    let text = format!(
        "to = \"{}\"\nplatform = \"uponai\"\ntimeout = 5\n",
        receiver.url
    );
    std::fs::write(dir.join("hookcli.toml"), text).unwrap();
    let run = hookcli(&dir, &["check"], &[]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("error: hookcli.toml line 3, key `timeout`:"),
        "{}",
        run.stderr
    );

    std::fs::write(dir.join("other.toml"), "retries = 0\ntmeout = \"5s\"\n").unwrap();
    let run = hookcli(
        &dir,
        &["check", "--config", "other.toml", "--to", &receiver.url],
        &[],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("other.toml line 2, key `tmeout`: unknown field `tmeout`"),
        "{}",
        run.stderr
    );

    std::fs::write(dir.join("third.toml"), "\nskip = [\"signature/nope\"]\n").unwrap();
    let run = hookcli(
        &dir,
        &["check", "--config", "third.toml", "--to", &receiver.url],
        &[],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("third.toml line 2, key `skip`"),
        "{}",
        run.stderr
    );

    // Values the flags refuse, the file refuses too; and the error stands alone on stderr
    // (no key was given, but that note comes only once everything is valid).
    for (text, expected) in [
        (
            "timeout = \"0s\"\n",
            "fourth.toml line 1, key `timeout`: `0s`: a timeout must be more than 0",
        ),
        (
            "\nburst = 0\n",
            "fourth.toml line 2, key `burst`: 0 is not in 1..=1000",
        ),
        (
            "burst = 5000\n",
            "fourth.toml line 1, key `burst`: 5000 is not in 1..=1000",
        ),
        (
            "headers = [\"NoColon\"]\n",
            "fourth.toml line 1, key `headers`: `NoColon`: no `:` between name and value",
        ),
    ] {
        std::fs::write(dir.join("fourth.toml"), text).unwrap();
        let run = hookcli(
            &dir,
            &["check", "--config", "fourth.toml", "--to", &receiver.url],
            &[],
        );
        assert_eq!(run.code, 2, "{text}: {}", run.stderr);
        // Past the `reading FILE` line every command prints once the file parses.
        let first = run
            .stderr
            .lines()
            .find(|l| !l.starts_with("reading "))
            .unwrap_or_default();
        assert!(
            first.starts_with(&format!("error: {expected}")),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains("note:"), "{}", run.stderr);
    }
    assert_eq!(hits(&receiver), 0);
}

#[test]
fn the_suite_file_gives_the_target_key_and_skips_and_flags_override_it() {
    let rt = runtime();
    let dir = temp_dir("suite");
    let receiver = start_receiver(&rt, Some(KEY), Faults::default());
    let text = format!(
        "to = \"{}\"\nplatform = \"retell\"\nsecret_env = \"CHECK_TEST_RECEIVER_KEY\"\n\
         skip = [\"load/\", \"signature/future\"]\ntimeout = \"5s\"\nretries = 0\n",
        receiver.url
    );
    std::fs::write(dir.join("hookcli.toml"), text).unwrap();
    let run = hookcli(
        &dir,
        &["check", "--json"],
        &[("CHECK_TEST_RECEIVER_KEY", KEY)],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let cases = run.cases();
    assert!(!cases.contains_key("load/burst") && !cases.contains_key("signature/future"));
    assert_eq!(
        cases["signature/wrong-key"].0, "passed",
        "the key came from secret_env"
    );
    assert_eq!(run.summary()["platform"], "uponai");

    let run = hookcli(
        &dir,
        &["check", "--json", "--only", "http/charset"],
        &[("CHECK_TEST_RECEIVER_KEY", KEY)],
    );
    assert_eq!(
        run.cases().into_keys().collect::<Vec<_>>(),
        ["http/charset"]
    );
    assert!(run.stderr.contains("as uponai: 1 case\n"), "{}", run.stderr);
}

#[test]
fn an_unreachable_receiver_exits_3_after_wait_for_and_the_junit_report_says_why() {
    let dir = temp_dir("unreachable");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/webhook");
    let run = check(
        &dir,
        &url,
        &["--wait-for", "300ms", "--junit", "report.xml"],
    );
    assert_eq!(run.code, 3);
    let line = format!("the receiver at {url} did not accept a connection within 300ms");
    assert!(run.stderr.contains(&line), "{}", run.stderr);
    // --wait-for was given: the hint does not suggest giving it.
    let hint = run
        .stderr
        .lines()
        .find(|l| l.starts_with("hint: "))
        .unwrap_or_default();
    assert!(
        hint.contains("raise --wait-for") && !hint.contains("give --wait-for"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
    // CI report viewers get a report that says why, not nothing.
    assert_eq!(junit_counts(&dir.join("report.xml")), (1, 1));
    let xml = std::fs::read_to_string(dir.join("report.xml")).unwrap();
    let report = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    let case = &report.test_suites[0].test_cases[0];
    assert_eq!(case.name.as_str(), "receiver/reachable");
    let quick_junit::TestCaseStatus::NonSuccess { message, .. } = &case.status else {
        panic!("receiver/reachable failed: {xml}");
    };
    assert!(message.as_ref().unwrap().as_str().contains(&line), "{xml}");
}

#[test]
fn a_bad_or_missing_flag_value_is_one_error_line_and_a_hint() {
    let dir = temp_dir("bad-flag-value");
    for args in [
        &["check", "--wait-for", "abc"][..],
        &["check", "--burst", "0"],
        &["check", "--to"],
    ] {
        let run = hookcli(&dir, args, &[]);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(lines.len(), 2, "{args:?}: {}", run.stderr);
        assert!(lines[0].starts_with("error: "), "{}", run.stderr);
        assert!(lines[1].starts_with("hint: "), "{}", run.stderr);
        assert!(run.stdout.is_empty());
    }
    // Each hint says the fix for its flag; a missing value points at the help.
    let hint = |args: &[&str]| {
        hookcli(&dir, args, &[])
            .stderr
            .lines()
            .nth(1)
            .map(String::from)
    };
    assert_eq!(
        hint(&["check", "--wait-for", "abc"]).unwrap(),
        "hint: write it with a unit, like 10s, 500ms or 1m30s"
    );
    assert_eq!(
        hint(&["check", "--burst", "0"]).unwrap(),
        "hint: write a whole number from 1 to 1000"
    );
    assert_eq!(
        hint(&["check", "--to"]).unwrap(),
        "hint: `hookcli check --help` says what each flag takes"
    );
}

/// /proc takes no new file, even from root (a permissions test would pass as root).
#[cfg(target_os = "linux")]
#[test]
fn a_junit_file_that_cannot_be_written_is_exit_2_before_anything_is_sent() {
    let rt = runtime();
    let dir = temp_dir("junit-unwritable");
    let receiver = start_receiver(&rt, Some(KEY), Faults::default());
    let run = check(
        &dir,
        &receiver.url,
        &["--junit", "/proc/hookcli-report.xml"],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(
        lines,
        [
            "error: --junit /proc/hookcli-report.xml: cannot write it: the file cannot be created there",
            "hint: name a file in a folder you can write to, like --junit report.xml",
        ],
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
    assert_eq!(hits(&receiver), 0, "nothing was sent");

    // The early try does not get in the way of replacing an old report.
    std::fs::write(dir.join("old.xml"), "old").unwrap();
    let run = check(
        &dir,
        &receiver.url,
        &["--only", "http/charset", "--junit", "old.xml"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(junit_counts(&dir.join("old.xml")), (1, 0));
}

#[test]
fn a_suite_secret_env_that_is_not_a_variable_name_is_exit_2_and_not_echoed() {
    let rt = runtime();
    let dir = temp_dir("secret-env");
    let receiver = start_receiver(&rt, Some(KEY), Faults::default());
    for (text, line) in [
        ("secret_env = \"\"\n", 1),
        ("retries = 0\nsecret_env = \"key live 0042\"\n", 2),
    ] {
        std::fs::write(dir.join("suite.toml"), text).unwrap();
        let run = hookcli(
            &dir,
            &["check", "--config", "suite.toml", "--to", &receiver.url],
            &[],
        );
        assert_eq!(run.code, 2, "{text}: {}", run.stderr);
        // Past the `reading FILE` line every command prints once the file parses.
        let first = run
            .stderr
            .lines()
            .find(|l| !l.starts_with("reading "))
            .unwrap_or_default();
        assert!(
            first.starts_with(&format!(
                "error: suite.toml line {line}, key `secret_env`: not the name of an environment variable"
            )),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains("0042"), "{}", run.stderr);
    }
    assert_eq!(hits(&receiver), 0);
}

#[test]
fn a_receiver_that_stops_mid_run_fails_the_cases_it_cut_off_and_says_it_stopped() {
    let rt = runtime();
    let dir = temp_dir("stops");
    let answers = 40;
    let (url, state) = start_flawed(&rt, Flaw::StopsAfter(answers));
    let run = check(&dir, &url, &["--backoff", "0", "--junit", "report.xml"]);
    assert_eq!(
        run.code, 1,
        "it answered, so not unreachable: {}",
        run.stderr
    );
    assert!(state.hits.load(Ordering::Relaxed) > answers);
    let summary = run.summary();
    assert_eq!(summary["receiver"], "stopped");
    assert_eq!(summary["exit_code"], 1);
    let cases = run.cases();
    let cut_off: Vec<_> = cases
        .iter()
        .filter(|(_, (_, reason))| {
            reason == "could not connect (connection refused): the receiver had stopped answering"
        })
        .collect();
    // load/burst runs last, alone, long after the stop.
    assert!(
        cut_off.iter().any(|(name, _)| *name == "load/burst"),
        "{cases:?}"
    );
    assert!(cut_off.iter().all(|(_, (result, _))| result == "failed"));
    assert!(
        cases.values().any(|(result, _)| result == "passed"),
        "the first {answers} requests were answered: {cases:?}"
    );
    let (_, failures) = junit_counts(&dir.join("report.xml"));
    assert_eq!(failures, summary["failed"].as_u64().unwrap() as usize);
    let xml = std::fs::read_to_string(dir.join("report.xml")).unwrap();
    assert!(
        xml.contains("the receiver stopped answering during the run"),
        "{xml}"
    );
}

#[test]
fn a_receiver_that_refuses_every_request_exits_3_and_reports_every_case_failed() {
    let dir = temp_dir("never-answers");
    // Takes hookcli's readiness probe, then closes its port: every request is refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/webhook", listener.local_addr().unwrap());
    let probe = std::thread::spawn(move || drop(listener.accept().unwrap()));
    let run = hookcli(
        &dir,
        &[
            "check",
            "--to",
            &url,
            "--secret",
            KEY,
            "--backoff",
            "0",
            // Skipped without an inbound_url or [[functions]]: not sent, so not failed.
            "--skip",
            "answers",
            "--junit",
            "report.xml",
        ],
        &[],
    );
    probe.join().unwrap();
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        // Usually "(connection refused)"; on a busy machine a few requests queued before the
        // port closed are reset instead, and the summary names the most common reason.
        run.stdout
            .contains("the receiver never answered: every request failed to connect ("),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains(&format!(
            "error: the receiver at {url} accepted a connection, then refused every request"
        )),
        "{}",
        run.stderr
    );
    let (total, failures) = junit_counts(&dir.join("report.xml"));
    assert_eq!(total, failures, "no case passed or warned");
}

/// A 404 or 405 is a 4xx, but it comes from a route that is not the webhook handler: it says
/// nothing about signature checking, so the rejection cases must not pass on it.
#[test]
fn a_wrong_path_answering_404_fails_the_signature_cases_and_names_the_fix() {
    let rt = runtime();
    let dir = temp_dir("wrong-path");
    let receiver = start_receiver(&rt, Some(KEY), Faults::default());
    let wrong = receiver.url.replace("/webhook", "/hooks");
    let run = check(
        &dir,
        &wrong,
        &["--only", "signature/,body/malformed-json", "--retries", "0"],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.with_result("failed"), signature_errors());
    let cases = run.cases();
    for (name, (result, reason)) in &cases {
        assert!(
            reason.contains("404 Not Found") && reason.contains("check the path in --to"),
            "{name} ({result}): {reason}"
        );
    }
    assert_eq!(cases["signature/future"].0, "warning", "a warning case");
    assert_eq!(cases["body/malformed-json"].0, "warning", "a warning case");
    assert!(
        cases["signature/stale"].1.starts_with(
            "a signature 10m old (the platform allows 5m) was answered 404 Not Found, which is not a rejection"
        ),
        "{:?}",
        cases["signature/stale"]
    );
}

#[test]
fn a_route_answering_405_fails_the_signature_cases() {
    let rt = runtime();
    let dir = temp_dir("wrong-method");
    let (url, state) = start_flawed(&rt, Flaw::AnswersAll(405));
    let run = check(&dir, &url, &["--only", "signature/"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.with_result("failed"), signature_errors());
    let (_, reason) = &run.cases()["signature/missing"];
    assert!(
        reason.contains("405 Method Not Allowed, which is not a rejection")
            && reason.contains("--to"),
        "{reason}"
    );
    // missing, wrong-key, tampered, stale, future one each; malformed three.
    assert_eq!(state.hits.load(Ordering::Relaxed), 8);
}

#[test]
fn a_receiver_that_never_answers_exits_3_and_says_so() {
    let rt = runtime();
    let dir = temp_dir("silent");
    let (url, state) = start_flawed(&rt, Flaw::NeverAnswers);
    let run = check(
        &dir,
        &url,
        &[
            "--only",
            "delivers/call_started,signature/missing",
            "--timeout",
            "200ms",
            "--retries",
            "0",
            "--junit",
            "report.xml",
        ],
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(
        state.hits.load(Ordering::Relaxed),
        2,
        "both requests got in"
    );
    let summary = run.summary();
    assert_eq!(
        (summary["receiver"].as_str(), summary["exit_code"].as_u64()),
        (Some("down"), Some(3))
    );
    let cases = run.cases();
    assert_eq!(cases["delivers/call_started"].0, "failed");
    assert!(
        cases["delivers/call_started"]
            .1
            .contains("timed out after 200ms"),
        "{cases:?}"
    );
    assert!(
        run.stderr.contains(&format!(
            "error: the receiver at {url} accepted connections but never answered a request \
             (timed out after 200ms)"
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("hint: "), "{}", run.stderr);
    let xml = std::fs::read_to_string(dir.join("report.xml")).unwrap();
    assert!(xml.contains("the receiver never answered"), "{xml}");
}

#[test]
fn without_a_url_the_note_names_the_suite_file_that_was_read() {
    let dir = temp_dir("note-names-config");
    std::fs::write(dir.join("ci.toml"), "platform = \"uponai\"\n").unwrap();
    let run = hookcli(
        &dir,
        &["check", "--config", "ci.toml", "--only", "http/", "--json"],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("no --to given (and no `to` in ci.toml)"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("hookcli.toml"), "{}", run.stderr);
    // Without a suite file, no file is named.
    let bare = hookcli(
        &temp_dir("note-no-config"),
        &["check", "--only", "http/"],
        &[],
    );
    assert!(bare.stderr.contains("no --to given: "), "{}", bare.stderr);
}

#[test]
fn ctrl_c_stops_the_check_with_the_report_so_far_and_no_pass() {
    let rt = runtime();
    let dir = temp_dir("interrupted");
    let (url, state) = start_flawed(&rt, Flaw::NeverAnswers);
    let child = Command::new(env!("CARGO_BIN_EXE_hookcli"))
        .current_dir(&dir)
        .args(["check", "--to", &url, "--secret", KEY, "--json"])
        // Two cases of the same step (delivers/* run before the others), both in flight.
        .args(["--only", "delivers/call_started,delivers/call_ended"])
        .args(["--timeout", "1h", "--junit", "report.xml"])
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Both cases' requests are in (and will never be answered): now stop it.
    while state.hits.load(Ordering::Relaxed) < 2 {
        std::thread::yield_now();
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    };
    assert_eq!(run.code, 1, "an interrupted run is no pass: {}", run.stderr);
    let summary = run.summary();
    assert_eq!(summary["interrupted"], true, "{}", run.stdout);
    assert_eq!(summary["skipped"], 2, "{}", run.stdout);
    assert_eq!(summary["receiver"], "up", "{}", run.stdout);
    for (name, (result, reason)) in run.cases() {
        assert_eq!(result, "skipped", "{name}");
        assert_eq!(reason, "not finished: the run was interrupted", "{name}");
    }
    // The JUnit file is written too, with the cases skipped rather than passed.
    let xml = std::fs::read_to_string(dir.join("report.xml")).unwrap();
    let report = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    let cases = &report.test_suites[0].test_cases;
    assert_eq!(cases.len(), 2);
    assert!(
        cases
            .iter()
            .all(|c| matches!(c.status, quick_junit::TestCaseStatus::Skipped { .. })),
        "{xml}"
    );
}

#[test]
fn a_missing_suite_file_is_named_with_the_fix_and_sends_nothing() {
    let rt = runtime();
    let dir = temp_dir("missing-suite");
    let receiver = start_receiver(&rt, Some(KEY), Faults::default());
    let run = check(&dir, &receiver.url, &["--config", "nope.toml"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        run.stderr.lines().collect::<Vec<_>>(),
        [
            "error: nope.toml: no such file",
            "hint: give --config the path of a settings file, or leave it out to read ./hookcli.toml"
        ]
    );
    assert!(run.stdout.is_empty());
    assert_eq!(hits(&receiver), 0);
}

#[test]
fn list_with_a_run_only_flag_is_a_conflict_not_a_silent_drop() {
    let dir = temp_dir("list-conflicts");
    for (args, flag) in [
        (
            &["check", "--list", "--junit", "r.xml"][..],
            "'--junit <FILE>'",
        ),
        (&["check", "--junit", "r.xml", "--list"], "'--junit <FILE>'"),
        (
            &["check", "--list", "--wait-for", "5s"],
            "'--wait-for <DUR>'",
        ),
        (
            &["check", "--list", "--to", "http://127.0.0.1:9/"],
            "'--to <URL>'",
        ),
        (&["check", "--list", "--burst", "3"], "'--burst <N>'"),
    ] {
        let run = hookcli(&dir, args, &[]);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(lines.len(), 2, "{args:?}: {}", run.stderr);
        assert!(
            lines[0].starts_with("error: the argument '--")
                && lines[0].contains("cannot be used with")
                && lines[0].contains("'--list'")
                && lines[0].contains(flag),
            "{args:?}: {}",
            run.stderr
        );
        assert_eq!(
            lines[1],
            "hint: give one or the other; `hookcli check --help` says what each does"
        );
        assert!(run.stdout.is_empty());
    }
    assert!(!dir.join("r.xml").exists(), "no report file is written");
    // --list still takes the flags that pick cases.
    let run = hookcli(
        &dir,
        &["check", "--list", "--json", "--only", "signature/"],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.lines()
            .iter()
            .all(|l| l["case"].as_str().unwrap().starts_with("signature/"))
    );
}

/// The body a receiver got for one case: hookcli's built-in receiver with `max_body`, its
/// requests reported on a channel.
fn start_reporting(
    rt: &tokio::runtime::Runtime,
    max_body: Option<u64>,
) -> (
    Receiver,
    tokio::sync::mpsc::UnboundedReceiver<hookcli::receiver::Received>,
) {
    let mut config = ReceiverConfig::local(uponai(), Some(Secret::new(KEY)));
    if let Some(max_body) = max_body {
        config.max_body = max_body;
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    (rt.block_on(Receiver::start(config, Some(tx))).unwrap(), rx)
}

#[test]
fn body_long_call_sends_an_hour_long_call_with_word_timing_and_passes() {
    let rt = runtime();
    let dir = temp_dir("long-call");
    let (receiver, mut got) = start_reporting(&rt, None);
    let run = check(&dir, &receiver.url, &["--only", "body/long-call"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.cases()["body/long-call"].0, "passed");
    let received = got.try_recv().expect("the long call reached the receiver");
    assert_eq!(received.verdict.word(), "valid", "signed like any event");
    assert_eq!(received.event.as_deref(), Some("call_ended"));
    assert!(
        received.body.len() > 100 * 1024,
        "over Express's 100 KB default: {} bytes",
        received.body.len()
    );
    let body: Value = serde_json::from_slice(&received.body).unwrap();
    let call = &body["call"];
    let minutes = call["duration_ms"].as_u64().unwrap() / 60_000;
    assert!(
        (60..=66).contains(&minutes),
        "an hour-long call: {minutes} min"
    );
    let turns = call["transcript_object"].as_array().unwrap();
    assert!(turns.len() > 300, "many turns: {}", turns.len());
    assert_eq!(
        call["transcript"].as_str().unwrap().lines().count(),
        turns.len(),
        "the transcript and its object tell the same call"
    );
    let mut last_end = 0.0;
    for turn in turns {
        let words = turn["words"].as_array().expect("word-level timing");
        let content = turn["content"].as_str().unwrap();
        assert_eq!(words.len(), content.split_whitespace().count(), "{turn}");
        for word in words {
            let (start, end) = (
                word["start"].as_f64().unwrap(),
                word["end"].as_f64().unwrap(),
            );
            assert!(
                word["word"].is_string() && start >= last_end && end > start,
                "{word}"
            );
            last_end = end;
        }
    }
}

#[test]
fn body_long_call_fails_on_a_413_from_a_100_kb_limit_and_says_the_call_is_lost() {
    let rt = runtime();
    let dir = temp_dir("long-call-413");
    // Express's default body limit.
    let (receiver, _got) = start_reporting(&rt, Some(100 * 1024));
    let run = check(
        &dir,
        &receiver.url,
        &["--only", "body/long-call,body/large", "--retries", "0"],
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let cases = run.cases();
    // A 413 to a 1 MB transcript is still a fine answer; to a real call it is a loss.
    assert_eq!(cases["body/large"].0, "passed", "{:?}", cases["body/large"]);
    let (result, reason) = &cases["body/long-call"];
    assert_eq!(result, "failed");
    assert!(
        reason.starts_with("a 6")
            && reason.contains("-minute call_ended (")
            && reason.contains("413 Payload Too Large")
            && reason.contains("the platform would lose that call"),
        "{reason}"
    );
    let line = run
        .lines()
        .into_iter()
        .find(|l| l["case"] == "body/long-call")
        .unwrap();
    assert_eq!(line["statuses"], serde_json::json!([413]));
}

/// A receiver that stores each event under an id and answers `{"id": N}`. Each request
/// waits (up to 5 s) until another is in flight, so two copies meet inside the handler. With
/// `atomic`, the lookup and the insert are one step and a copy gets the first one's id; without,
/// it looks first and inserts later: a check-then-insert guard, which two copies at once pass.
struct Ledger {
    atomic: bool,
    in_flight: AtomicU64,
    most_in_flight: AtomicU64,
    meet: tokio::sync::Barrier,
    ids: Mutex<BTreeMap<Bytes, u64>>,
    got: Mutex<Vec<(Option<String>, Bytes)>>,
}

fn start_ledger(rt: &tokio::runtime::Runtime, atomic: bool) -> (String, Arc<Ledger>) {
    let state = Arc::new(Ledger {
        atomic,
        in_flight: AtomicU64::new(0),
        most_in_flight: AtomicU64::new(0),
        meet: tokio::sync::Barrier::new(2),
        ids: Mutex::new(BTreeMap::new()),
        got: Mutex::new(Vec::new()),
    });
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}/webhook", listener.local_addr().unwrap());
    let serving = state.clone();
    rt.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let state = serving.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req| ledger_answer(req, state.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, state)
}

async fn ledger_answer(
    req: Request<Incoming>,
    state: Arc<Ledger>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let signature = req
        .headers()
        .get("x-retell-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = req.into_body().collect().await.unwrap().to_bytes();
    state.got.lock().unwrap().push((signature, body.clone()));
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.most_in_flight.fetch_max(now, Ordering::SeqCst);
    let known = state.ids.lock().unwrap().get(&body).copied();
    let _ = tokio::time::timeout(Duration::from_secs(5), state.meet.wait()).await;
    let id = {
        let mut ids = state.ids.lock().unwrap();
        let next = ids.len() as u64 + 1;
        match (state.atomic, known) {
            (true, _) => *ids.entry(body).or_insert(next),
            (false, Some(id)) => id,
            (false, None) => {
                ids.insert(body, next);
                next
            }
        }
    };
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    let answer = format!("{{\"id\":{id},\"status\":\"ok\"}}");
    Ok(Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(answer)))
        .unwrap())
}

#[test]
fn concurrent_duplicate_sends_one_request_twice_at_once_and_flags_a_second_record() {
    let rt = runtime();
    let dir = temp_dir("concurrent-duplicate");
    let (url, ledger) = start_ledger(&rt, false);
    let run = check(&dir, &url, &["--only", "delivery/concurrent-duplicate"]);
    assert_eq!(run.code, 0, "a warning: {}\n{}", run.stdout, run.stderr);
    let got = ledger.got.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "two copies");
    assert_eq!(got[0], got[1], "the same bytes and the same signature");
    assert!(got[0].0.is_some(), "signed");
    assert_eq!(
        ledger.most_in_flight.load(Ordering::SeqCst),
        2,
        "both copies were in flight together"
    );
    let (result, reason) = &run.cases()["delivery/concurrent-duplicate"];
    assert_eq!(result, "warning");
    assert!(
        reason.contains("`id`") && reason.contains("handled twice"),
        "{reason}"
    );

    // The same receiver with its lookup and insert in one step answers the copy with the
    // first id: passed.
    let (url, ledger) = start_ledger(&rt, true);
    let run = check(&dir, &url, &["--only", "delivery/concurrent-duplicate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(ledger.most_in_flight.load(Ordering::SeqCst), 2);
    assert_eq!(
        run.cases()["delivery/concurrent-duplicate"],
        ("passed".to_string(), String::new())
    );
}

#[test]
fn a_redirect_shows_its_location_and_says_to_use_the_final_url() {
    let rt = runtime();
    let dir = temp_dir("redirect");
    let (url, _state) = start_flawed(&rt, Flaw::Redirects);
    let only = "delivers/call_ended,signature/missing,signature/malformed,body/malformed-json,event/unknown";
    let run = check(&dir, &url, &["--only", only, "--retries", "0"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let cases = run.cases();
    assert_eq!(cases.len(), 5);
    for (name, (_, reason)) in &cases {
        assert!(
            reason.contains(&format!("308 Permanent Redirect (Location: {FINAL_URL})"))
                && reason.contains("give the final URL in --to"),
            "{name}: {reason}"
        );
    }
    // A redirect is not a rejection: the signature case fails, not merely warns of no answer.
    assert_eq!(cases["signature/missing"].0, "failed");
    assert!(!cases["signature/missing"].1.contains("no answer"));
}

#[test]
fn body_reformatted_gives_its_reserialization_hint_only_when_the_signature_was_refused() {
    let rt = runtime();
    let dir = temp_dir("reformatted-timeout");
    let (url, _state) = start_flawed(&rt, Flaw::NeverAnswers);
    let run = check(
        &dir,
        &url,
        &[
            "--only",
            "body/reformatted",
            "--timeout",
            "300ms",
            "--retries",
            "0",
        ],
    );
    let (result, reason) = &run.cases()["body/reformatted"];
    assert_eq!(result, "failed");
    assert!(reason.contains("timed out after 300ms"), "{reason}");
    assert!(
        !reason.contains("re-serialized"),
        "a timeout is not a signature fault: {reason}"
    );
}

/// A port that speaks plain HTTP/1.1 and answers every connection `400 Bad Request`, as a
/// plain-HTTP server answers a TLS handshake; it counts the connections.
fn start_plain_http(rt: &tokio::runtime::Runtime) -> (u16, Arc<AtomicU64>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicU64::new(0));
    let counted = connections.clone();
    rt.spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                if matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {
                    let _ = stream
                        .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                }
            });
        }
    });
    (port, connections)
}

#[test]
fn https_to_a_plain_http_port_stops_early_and_says_use_http() {
    let rt = runtime();
    let dir = temp_dir("https-to-http");
    let (port, connections) = start_plain_http(&rt);
    let url = format!("https://127.0.0.1:{port}/webhook");
    // The platform's retries (3, backoff from 1s): a run to the end would take every case
    // four attempts and seconds of waiting.
    let run = hookcli(
        &dir,
        &[
            "check",
            "--to",
            &url,
            "--secret",
            KEY,
            "--junit",
            "report.xml",
        ],
        &[],
    );
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "error: the receiver at {url} speaks plain HTTP: use http://127.0.0.1:{port}/webhook"
        )),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("stuck"), "{}", run.stderr);
    assert!(
        run.stdout.is_empty(),
        "no case table blaming each case: {}",
        run.stdout
    );
    // Run to the end, each case would make four attempts (more for those that send several
    // requests); stopped early, most make one.
    let cases = hookcli(&dir, &["check", "--list", "--json"], &[])
        .lines()
        .len();
    let seen = connections.load(Ordering::SeqCst) as usize;
    assert!(
        seen < 2 * cases,
        "stopped at the first attempts, no retries: {seen} connections for {cases} cases"
    );
    let (total, failures) = junit_counts(&dir.join("report.xml"));
    assert_eq!((total, failures), (1, 1), "one receiver/reachable failure");
}

/// What a scripted receiver answers: status, a wait before answering, and a body.
type Script = dyn Fn(&Value) -> (u16, Duration, String) + Send + Sync;

/// A receiver that answers each JSON body as `script` says (a body that is not JSON is
/// passed as `null`), and counts its requests. It does not verify signatures.
fn start_scripted(
    rt: &tokio::runtime::Runtime,
    script: impl Fn(&Value) -> (u16, Duration, String) + Send + Sync + 'static,
) -> (String, Arc<AtomicU64>) {
    let script: Arc<Script> = Arc::new(script);
    let hits = Arc::new(AtomicU64::new(0));
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}/webhook", listener.local_addr().unwrap());
    let counted = hits.clone();
    rt.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (script, hits) = (script.clone(), counted.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let (script, hits) = (script.clone(), hits.clone());
                    async move {
                        hits.fetch_add(1, Ordering::Relaxed);
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let (status, wait, text) = script(&value);
                        tokio::time::sleep(wait).await;
                        Ok::<_, Infallible>(
                            Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(text)))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, hits)
}

#[test]
fn user_cases_run_beside_the_built_in_ones_and_a_failed_assertion_names_pointer_expected_and_actual()
 {
    let rt = runtime();
    let dir = temp_dir("user-cases");
    // Answers what it was told about the call, as an app's webhook might.
    let (url, _) = start_scripted(&rt, |body| {
        let tier = body["call"]["metadata"]["tier"].clone();
        let answer = serde_json::json!({"id": "rec_42", "tier": tier, "n": 3});
        (200, Duration::ZERO, answer.to_string())
    });
    std::fs::write(
        dir.join("hookcli.toml"),
        r#"
[[cases]]
name = "vip"
event = "call_analyzed"
set = ["call.metadata:={\"tier\": \"gold\"}"]
unset = ["call.disconnection_reason"]
status = 200
latency = "10s"
[[cases.assert]]
pointer = "/tier"
equals = "gold"
[[cases.assert]]
pointer = "/id"
matches = "^rec_[0-9]+$"
[[cases.assert]]
pointer = "/n"
equals = 3

[[cases]]
name = "wrong-tier"
event = "call_ended"
set = ["call.metadata:={\"tier\": \"gold\"}"]
assert = [{ pointer = "/tier", equals = "silver" }, { pointer = "/missing", exists = true }]

[[cases]]
name = "rejected"
event = "call_ended"
status = [400, 422]
"#,
    )
    .unwrap();
    let list = hookcli(&dir, &["check", "--list"], &[]);
    assert!(list.stdout.contains("cases/vip"), "{}", list.stdout);
    let run = check(
        &dir,
        &url,
        &[
            "--only",
            "cases/",
            "--junit",
            "report.xml",
            "--backoff",
            "0",
        ],
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let cases = run.cases();
    assert_eq!(
        cases.keys().map(String::as_str).collect::<Vec<_>>(),
        ["cases/rejected", "cases/vip", "cases/wrong-tier"]
    );
    assert_eq!(cases["cases/vip"].0, "passed", "{:?}", cases["cases/vip"]);
    let (result, reason) = &cases["cases/wrong-tier"];
    assert_eq!(result, "failed");
    assert!(
        reason.contains(r#"`/tier`: expected "silver", got "gold""#)
            && reason.contains("`/missing`: expected to exist, got nothing"),
        "{reason}"
    );
    let (result, reason) = &cases["cases/rejected"];
    assert_eq!(result, "failed");
    assert!(
        reason.contains("expected one of 400,422, got 200 OK"),
        "{reason}"
    );
    let xml = std::fs::read_to_string(dir.join("report.xml")).unwrap();
    assert!(
        xml.contains("cases/wrong-tier") && xml.contains("expected &quot;silver&quot;"),
        "{xml}"
    );
}

#[test]
fn a_user_case_with_an_unknown_key_or_a_bad_path_is_refused_by_line_and_nothing_is_sent() {
    let rt = runtime();
    let dir = temp_dir("user-cases-bad");
    let (url, hits) = start_scripted(&rt, |_| (204, Duration::ZERO, String::new()));
    for (text, expected) in [
        (
            "[[cases]]\nname = \"a\"\nevent = \"call_ended\"\nstauts = 200\n",
            "hookcli.toml line 4",
        ),
        (
            "[[cases]]\nname = \"a\"\nevent = \"call_ended\"\nset = [\"call.statu=x\"]\n",
            "hookcli.toml line 4, key `set`: --set `call.statu=x`: the body has no `call.statu`",
        ),
        (
            "[[cases]]\nname = \"a\"\nevent = \"call_endd\"\n",
            "hookcli.toml line 3, key `event`: unknown event `call_endd` for uponai",
        ),
        (
            "[[cases]]\nname = \"a\"\nevent = \"call_ended\"\n[[cases.assert]]\npointer = \"/x\"\nmatches = \"(\"\n",
            "hookcli.toml line 6, key `matches`: `(` is not a regular expression",
        ),
    ] {
        std::fs::write(dir.join("hookcli.toml"), text).unwrap();
        let run = check(&dir, &url, &[]);
        assert_eq!(run.code, 2, "{text}\n{}", run.stderr);
        assert!(run.stderr.contains(expected), "{text}\n{}", run.stderr);
        assert!(run.stderr.contains("hint:"), "{}", run.stderr);
    }
    assert_eq!(hits.load(Ordering::Relaxed), 0, "nothing was sent");
}

/// The event type of a body, `""` when it has none.
fn event_of(body: &Value) -> &str {
    body["event"].as_str().unwrap_or("")
}

#[test]
fn a_receiver_that_crashes_on_a_missing_optional_field_fails_and_the_printed_command_reproduces_it()
{
    let rt = runtime();
    let dir = temp_dir("missing-optional");
    // Reads call_analysis.custom_analysis_data without checking it is there: a 500 when the
    // field is missing or null, as an unguarded `analysis.custom_analysis_data.keys()` does.
    let (url, hits) = start_scripted(&rt, |body| {
        let data = &body["call"]["call_analysis"]["custom_analysis_data"];
        if event_of(body) == "call_analyzed" && !data.is_object() {
            let crash = "TypeError: Cannot convert undefined or null to object";
            return (500, Duration::ZERO, crash.into());
        }
        (204, Duration::ZERO, String::new())
    });
    let run = check(
        &dir,
        &url,
        &[
            "--only",
            "body/missing-optional",
            "--backoff",
            "0",
            "--retries",
            "0",
        ],
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let line = run.lines().remove(0);
    assert_eq!(line["result"], "failed");
    let reason = line["reason"].as_str().unwrap();
    assert!(
        reason.contains("call_analyzed with call.call_analysis.custom_analysis_data removed")
            && reason.contains("call_analyzed with call.call_analysis.custom_analysis_data null")
            && reason.contains("500 Internal Server Error"),
        "{reason}"
    );
    assert!(
        !reason.contains("metadata removed"),
        "only the one field fails: {reason}"
    );
    let command = line["reproduce"].as_str().unwrap();
    assert!(
        command.starts_with("HOOKCLI_SEED=")
            && command.contains("hookcli send call_analyzed -p uponai --to")
            && command.ends_with(
                "--unset call.call_analysis.custom_analysis_data --secret \"$HOOKCLI_SECRET\""
            ),
        "{command}"
    );
    assert!(!command.contains(KEY), "no key in the command");
    assert_eq!(
        line["response"],
        "TypeError: Cannot convert undefined or null to object"
    );
    // The command, run as printed, makes the receiver crash again.
    let before = hits.load(Ordering::Relaxed);
    let bin = Path::new(env!("CARGO_BIN_EXE_hookcli")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let again = Command::new("sh")
        .args(["-c", command])
        .current_dir(&dir)
        .env("PATH", path)
        .env("HOOKCLI_SECRET", KEY)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&again.stdout);
    assert_eq!(again.status.code(), Some(1), "{out}");
    assert!(out.contains("500 Internal Server Error"), "{out}");
    assert!(hits.load(Ordering::Relaxed) > before);

    // The table with -v shows the same command and answer; JUnit has them in system-out.
    let text = hookcli(
        &dir,
        &[
            "check",
            "--to",
            &url,
            "--only",
            "body/missing-optional",
            "--backoff",
            "0",
            "--retries",
            "0",
            "-v",
            "--junit",
            "report.xml",
        ],
        &[("HOOKCLI_SECRET", KEY)],
    );
    assert_eq!(text.code, 1, "{}", text.stderr);
    assert!(
        text.stdout.contains("reproduce: HOOKCLI_SEED=")
            && text.stdout.contains("response: TypeError"),
        "{}",
        text.stdout
    );
    let xml = std::fs::read_to_string(dir.join("report.xml")).unwrap();
    assert!(
        xml.contains("<system-out>reproduce: HOOKCLI_SEED="),
        "{xml}"
    );
}

#[test]
fn a_receiver_slow_only_on_call_ended_gives_one_root_cause_line_and_call_ended_is_sent_once() {
    let rt = runtime();
    let dir = temp_dir("root-cause");
    let ended = Arc::new(AtomicU64::new(0));
    let counted = ended.clone();
    let (url, _) = start_scripted(&rt, move |body| {
        if event_of(body) == "call_ended" {
            counted.fetch_add(1, Ordering::Relaxed);
            return (204, Duration::from_secs(3), String::new());
        }
        (204, Duration::ZERO, String::new())
    });
    let args = ["--timeout", "1s", "--retries", "0", "--backoff", "0"];
    let run = check(&dir, &url, &args);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let summary = run.summary();
    let causes = summary["root_causes"].as_array().unwrap();
    assert_eq!(causes.len(), 1, "{causes:?}");
    assert_eq!(
        causes[0]["cause"],
        "call_ended timed out after 1s (see delivers/call_ended)"
    );
    let cases: Vec<&str> = causes[0]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for expected in [
        "delivers/call_ended",
        "lifecycle/call",
        "body/unicode",
        "delivery/duplicate",
    ] {
        assert!(cases.contains(&expected), "{expected} in {cases:?}");
    }
    // Every failed case failed for that one cause, and no case waited for call_ended again.
    assert_eq!(
        run.with_result("failed").len(),
        cases.len(),
        "{:?}",
        run.cases()
    );
    // call_ended went out once as itself; the signature cases, which expect a quick rejection
    // of a single forged attempt, still ran.
    let forged: u64 = run
        .lines()
        .iter()
        .filter(|l| {
            l["case"]
                .as_str()
                .is_some_and(|c| c.starts_with("signature/"))
        })
        .filter_map(|l| l["requests"].as_u64())
        .sum();
    assert_eq!(
        ended.load(Ordering::Relaxed),
        1 + forged,
        "call_ended was sent once"
    );
    let (_, reason) = &run.cases()["lifecycle/call"];
    assert!(
        reason.contains(
            "not sent: it delivers call_ended, which got no answer in delivers/call_ended"
        ),
        "{reason}"
    );
    // The table's summary says it in one line.
    let text = hookcli(
        &dir,
        &[
            "check",
            "--to",
            &url,
            "--secret",
            KEY,
            "--timeout",
            "1s",
            "--retries",
            "0",
            "--backoff",
            "0",
        ],
        &[],
    );
    let lines: Vec<&str> = text
        .stdout
        .lines()
        .filter(|l| l.contains("failed because"))
        .collect();
    assert_eq!(lines.len(), 1, "one root-cause line: {}", text.stdout);
    assert!(
        lines[0].ends_with(
            " cases failed because call_ended timed out after 1s (see delivers/call_ended)"
        ),
        "{}",
        text.stdout
    );
}

#[test]
fn dry_run_prints_the_requests_in_case_order_and_sends_nothing() {
    let rt = runtime();
    let dir = temp_dir("dry-run");
    let (url, hits) = start_scripted(&rt, |_| (204, Duration::ZERO, String::new()));
    let run = check(
        &dir,
        &url,
        &[
            "--dry-run",
            "--only",
            "delivers/call_started,lifecycle/call",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(hits.load(Ordering::Relaxed), 0, "a dry run sends nothing");
    let lines = run.lines();
    let cases: Vec<&str> = lines.iter().map(|l| l["case"].as_str().unwrap()).collect();
    assert_eq!(cases[0], "delivers/call_started");
    assert!(
        cases[1..].iter().all(|c| *c == "lifecycle/call"),
        "{cases:?}"
    );
    let events: Vec<String> = lines
        .iter()
        .skip(1)
        .map(|l| {
            let body: Value = serde_json::from_str(l["body"].as_str().unwrap()).unwrap();
            body["event"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(events.first().map(String::as_str), Some("call_started"));
    assert_eq!(
        events.last().map(String::as_str),
        Some("call_analyzed"),
        "in order: {events:?}"
    );
    assert!(lines[0]["headers"]["x-retell-signature"].is_string());
    assert!(!run.stdout.contains(KEY));
    assert!(run.stderr.contains("nothing sent"), "{}", run.stderr);
    // Text: send --dry-run's format under a `# case` line.
    let text = hookcli(
        &dir,
        &[
            "check",
            "--to",
            &url,
            "--dry-run",
            "--only",
            "delivers/call_ended",
        ],
        &[],
    );
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout.starts_with("# delivers/call_ended\nPOST "),
        "{}",
        text.stdout
    );
    assert_eq!(hits.load(Ordering::Relaxed), 0, "a dry run sends nothing");
}

#[test]
fn verbose_shows_each_request_and_answer_on_stderr_case_by_case() {
    let rt = runtime();
    let dir = temp_dir("verbose");
    let (url, hits) = start_scripted(&rt, |_| (200, Duration::ZERO, "{\"ok\":true}".into()));
    let run = hookcli(
        &dir,
        &[
            "check",
            "--to",
            &url,
            "--secret",
            KEY,
            "-v",
            "--only",
            "delivers/call_started,delivers/call_ended",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(hits.load(Ordering::Relaxed), 2);
    let started = run
        .stderr
        .find("# delivers/call_started")
        .expect("the first case");
    let ended = run
        .stderr
        .find("# delivers/call_ended")
        .expect("the second case");
    assert!(started < ended, "in case order:\n{}", run.stderr);
    assert!(
        run.stderr.contains("\"event\": \"call_ended\""),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("{\"ok\":true}"),
        "the answer: {}",
        run.stderr
    );
}
