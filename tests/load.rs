//! `hookcli load` against real receivers on 127.0.0.1:0: hookcli's own (which verifies every
//! signature and reports each request on a channel) and a tiny faulty one.

mod common;

use std::collections::HashSet;
use std::convert::Infallible;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hookcli::catalog::Catalog;
use hookcli::receiver::{Faults, Received, Receiver, ReceiverConfig};
use hookcli::secret::Secret;
use hookcli::signing::Verdict;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const KEY: &str = "key_test_load";

/// Runs the binary off the runtime's threads, so in-process receivers keep serving.
async fn hookcli(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_hookcli"))
            .args(&args)
            .env_remove("HOOKCLI_SECRET")
            .env_remove("UPONAI_API_KEY")
            .env_remove("RETELL_API_KEY")
            .output()
            .expect("the binary runs")
    })
    .await
    .expect("the blocking task finishes")
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is one JSON report ({e}); stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

async fn verifying_receiver() -> (Receiver, mpsc::UnboundedReceiver<Received>) {
    let catalog = Catalog::load(None).unwrap();
    let platform = catalog.platform("uponai").unwrap().clone();
    let (tx, rx) = mpsc::unbounded_channel();
    let config = ReceiverConfig::local(platform, Some(Secret::new(KEY)));
    (Receiver::start(config, Some(tx)).await.unwrap(), rx)
}

fn drain(rx: &mut mpsc::UnboundedReceiver<Received>) -> Vec<Received> {
    let mut all = Vec::new();
    while let Ok(r) = rx.try_recv() {
        all.push(r);
    }
    all
}

fn assert_matches_schema(report: &Value) {
    let schema: Value =
        serde_json::from_str(include_str!("../schemas/load-report.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(report)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{report:#}");
}

/// load signs on its own path with the key made ready once: every scheme's headers must come
/// out as that platform's receiver verifies them, and replace a -H of the same name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_platforms_signature_verifies_and_replaces_a_header_of_its_name() {
    let catalog = Catalog::load(None).unwrap();
    let mut signed = 0;
    for id in catalog.platform_ids() {
        let platform = catalog.platform(id).unwrap().clone();
        let Some(signing) = platform.signing.clone() else {
            continue;
        };
        signed += 1;
        let key = signing.rules.generate_key();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let config = ReceiverConfig::local(platform, Some(key.clone()));
        let receiver = Receiver::start(config, Some(tx)).await.unwrap();
        let forged = format!("{}: forged", signing.rules.header);
        let output = hookcli(args(&[
            "load",
            "-p",
            id,
            "-c",
            "2",
            "-n",
            "6",
            "--json",
            "--secret",
            key.expose(),
            "-H",
            &forged,
            "--to",
            &receiver.url,
        ]))
        .await;
        receiver.stop().await;
        let got = drain(&mut rx);
        assert_eq!(got.len(), 6, "{id}: {output:?}");
        for r in &got {
            assert_eq!(
                r.verdict,
                Verdict::Valid,
                "{id}: request {} was not valid",
                r.n
            );
        }
        assert_eq!(output.status.code(), Some(0), "{id}: {output:?}");
    }
    assert!(signed >= 6, "the catalog signs for {signed} platforms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_exactly_n_fresh_validly_signed_calls() {
    let (receiver, mut rx) = verifying_receiver().await;
    let output = hookcli(args(&[
        "load",
        "-c",
        "4",
        "-n",
        "60",
        "--json",
        "--secret",
        KEY,
        "--to",
        &receiver.url,
    ]))
    .await;
    receiver.stop().await;
    let got = drain(&mut rx);

    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(got.len(), 60, "the receiver saw exactly -n deliveries");
    for r in &got {
        assert_eq!(
            r.verdict,
            Verdict::Valid,
            "request {} was not validly signed",
            r.n
        );
        assert_eq!(r.event.as_deref(), Some("call_ended"));
        let body: Value = serde_json::from_slice(&r.body).expect("every body is JSON");
        assert!(body["call"]["end_timestamp"].as_u64().is_some());
    }
    let ids: HashSet<_> = got.iter().map(|r| r.call_id.clone().unwrap()).collect();
    assert_eq!(ids.len(), 60, "every delivery has its own call id");

    let report = json(&output);
    assert_eq!(report["deliveries"], 60);
    assert_eq!(report["succeeded"], 60);
    assert_eq!(report["success_statuses"]["204"], 60);
    assert!(report["latency_ms"]["max"].as_f64().unwrap() > 0.0);
    assert_matches_schema(&report);
    let histogram =
        hookcli::load::histogram::decode(report["latency_histogram"].as_str().unwrap()).unwrap();
    assert_eq!(histogram.len(), 60, "one latency per answered request");
    assert_eq!(
        histogram.max() as f64 / 1000.0,
        report["latency_ms"]["max"].as_f64().unwrap(),
        "the quantiles are the histogram's"
    );
    let time = |key: &str| humantime::parse_rfc3339(report[key].as_str().unwrap()).unwrap();
    let (start, end) = (time("started_at"), time("ended_at"));
    assert!(start <= end && end <= std::time::SystemTime::now());
    let span = end.duration_since(start).unwrap().as_secs_f64() * 1000.0;
    assert!(
        (span - report["elapsed_ms"].as_f64().unwrap()).abs() <= 1.0,
        "ended_at is started_at + elapsed_ms: {report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lifecycle_delivers_each_calls_events_with_one_call_id() {
    let (receiver, mut rx) = verifying_receiver().await;
    // One connection: the calls' events arrive in order.
    let output = hookcli(args(&[
        "load",
        "--lifecycle",
        "transfer",
        "--events",
        "all",
        "-c",
        "1",
        "-n",
        "14",
        "--secret",
        KEY,
        "--to",
        &receiver.url,
    ]))
    .await;
    receiver.stop().await;
    let got = drain(&mut rx);

    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let events: Vec<_> = got.iter().map(|r| r.event.clone().unwrap()).collect();
    let one_call = [
        "call_started",
        "transcript_updated",
        "transfer_started",
        "transfer_bridged",
        "transfer_ended",
        "call_ended",
        "call_analyzed",
    ];
    assert_eq!(events, [one_call, one_call].concat());
    let first: HashSet<_> = got[..7].iter().map(|r| r.call_id.clone()).collect();
    let second: HashSet<_> = got[7..].iter().map(|r| r.call_id.clone()).collect();
    assert_eq!((first.len(), second.len()), (1, 1));
    assert_ne!(first, second, "each call has its own id");
    assert!(got.iter().all(|r| r.verdict == Verdict::Valid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lifecycle_sends_replays_default_events_unless_events_says_otherwise() {
    for (events, one_call) in [
        (None, &["call_started", "call_ended", "call_analyzed"][..]),
        (
            Some("call_ended,transfer_started"),
            &["transfer_started", "call_ended"][..],
        ),
    ] {
        let (receiver, mut rx) = verifying_receiver().await;
        let mut list = vec!["load", "--lifecycle", "transfer", "-c", "1", "-n", "6"];
        if let Some(events) = events {
            list.extend(["--events", events]);
        }
        list.extend(["--secret", KEY, "--to", &receiver.url]);
        let output = hookcli(args(&list)).await;
        receiver.stop().await;
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        let got: Vec<String> = drain(&mut rx)
            .iter()
            .map(|r| r.event.clone().unwrap())
            .collect();
        let expected: Vec<&str> = one_call.iter().cycle().take(6).copied().collect();
        assert_eq!(got, expected, "--events {events:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_that_leave_nothing_or_come_without_a_lifecycle_are_refused() {
    let (receiver, mut rx) = verifying_receiver().await;
    for (list, says) in [
        (
            vec![
                "load",
                "--lifecycle",
                "call",
                "--events",
                "transfer_started",
                "-n",
                "1",
            ],
            "error: --events transfer_started: none of the call lifecycle's events",
        ),
        (
            vec![
                "load",
                "--lifecycle",
                "call",
                "--events",
                "call_endd",
                "-n",
                "1",
            ],
            "error: --events: unknown event `call_endd` for uponai",
        ),
        (vec!["load", "--events", "all", "-n", "1"], "--lifecycle"),
    ] {
        let mut list = list.clone();
        list.extend(["--to", &receiver.url]);
        let output = hookcli(args(&list)).await;
        let err = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(2), "{list:?}: {err}");
        assert!(err.contains(says), "{list:?}: {err}");
    }
    receiver.stop().await;
    assert!(drain(&mut rx).is_empty(), "nothing sent");
}

/// A real `load --json` report against a verifying receiver, and its file.
async fn report_file(receiver: &Receiver, n: &str, dir: &std::path::Path) -> (Value, String) {
    let output = hookcli(args(&[
        "load",
        "-c",
        "2",
        "-n",
        n,
        "--json",
        "--secret",
        KEY,
        "--to",
        &receiver.url,
    ]))
    .await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let path = dir.join(format!("report-{n}.json"));
    std::fs::write(&path, &output.stdout).unwrap();
    (json(&output), path.display().to_string())
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hookcli-load-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn histogram(report: &Value) -> hdrhistogram::Histogram<u64> {
    hookcli::load::histogram::decode(report["latency_histogram"].as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_reports_merge_into_one_whose_histogram_and_totals_are_their_sums() {
    let (receiver, mut rx) = verifying_receiver().await;
    let dir = temp_dir("merge");
    let (a, a_file) = report_file(&receiver, "40", &dir).await;
    let (b, b_file) = report_file(&receiver, "25", &dir).await;
    receiver.stop().await;
    assert_eq!(drain(&mut rx).len(), 65);

    let output = hookcli(args(&["load", "merge", &a_file, &b_file])).await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let merged = json(&output);
    assert_matches_schema(&merged);

    // Every bucket: the merged histogram is the sum of the two, count for count.
    let (ha, hb, hm) = (histogram(&a), histogram(&b), histogram(&merged));
    assert_eq!((ha.len(), hb.len()), (40, 25));
    assert_eq!(hm.len(), ha.len() + hb.len());
    let mut sum = ha.clone();
    sum.add(&hb).unwrap();
    assert_eq!(hm, sum);
    for bucket in sum.iter_all() {
        let v = bucket.value_iterated_to();
        assert_eq!(
            hm.count_at(v),
            ha.count_at(v) + hb.count_at(v),
            "bucket {v}"
        );
    }
    for (q, key) in [(0.5, "p50"), (0.99, "p99"), (1.0, "max")] {
        assert_eq!(
            merged["latency_ms"][key].as_f64().unwrap(),
            hm.value_at_quantile(q) as f64 / 1000.0,
            "{key} is recomputed from the merged histogram"
        );
    }
    for key in [
        "deliveries",
        "requests",
        "succeeded",
        "failed",
        "retried",
        "connections",
    ] {
        assert_eq!(
            merged[key].as_u64().unwrap(),
            a[key].as_u64().unwrap() + b[key].as_u64().unwrap(),
            "{key}"
        );
    }
    assert_eq!(merged["success_statuses"]["204"], 65);
    assert_eq!(merged["requested"]["count"], 65);
    assert_eq!(merged["reports"], 2);
    assert_eq!(merged["started_at"], a["started_at"], "the earliest start");
    assert_eq!(merged["ended_at"], b["ended_at"], "the latest end");

    // A merged report merges again.
    let merged_file = dir.join("merged.json");
    std::fs::write(&merged_file, &output.stdout).unwrap();
    let again = hookcli(args(&[
        "load",
        "merge",
        merged_file.to_str().unwrap(),
        &a_file,
    ]))
    .await;
    assert_eq!(again.status.code(), Some(0), "{again:?}");
    let again = json(&again);
    assert_eq!(again["reports"], 3);
    assert_eq!(histogram(&again).len(), 105);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merging_what_is_not_a_report_of_this_version_is_one_clear_error() {
    let (receiver, _rx) = verifying_receiver().await;
    let dir = temp_dir("merge-bad");
    let (report, good) = report_file(&receiver, "5", &dir).await;
    receiver.stop().await;
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let older = write(
        "older.json",
        report
            .to_string()
            .replace("\"version\":\"", "\"version\":\"0.0."),
    );
    let other = write("other.json", r#"{"type":"summary","delivered":3}"#.into());
    let garbage = write("garbage.json", "not json".into());
    let mut salpre = report.clone();
    salpre["platform"] = "salpre".into();
    let salpre = write("salpre.json", salpre.to_string());
    let missing = dir.join("missing.json").display().to_string();
    for (bad, says) in [
        (
            &missing,
            format!("error: load merge `{missing}`: no such file"),
        ),
        (
            &other,
            format!("error: load merge `{other}`: not a `hookcli load --json` report"),
        ),
        (
            &garbage,
            format!("error: load merge `{garbage}`: not a `hookcli load --json` report: not JSON"),
        ),
        (
            &older,
            format!("error: load merge `{older}`: written by hookcli 0.0."),
        ),
        (
            &salpre,
            format!("error: load merge: {salpre}: its platform is salpre, and {good}'s is uponai"),
        ),
    ] {
        let output = hookcli(args(&["load", "merge", &good, bad])).await;
        let err = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(2), "{bad}: {err}");
        assert!(output.stdout.is_empty(), "no report: {bad}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{err}");
        assert!(lines[0].starts_with(&says), "{says}\n{err}");
        assert!(lines[1].starts_with("hint: "), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_at_waits_for_its_moment_and_one_already_past_starts_now() {
    let (receiver, mut rx) = verifying_receiver().await;
    let at = std::time::SystemTime::now() + Duration::from_millis(2000);
    let text = humantime::format_rfc3339_millis(at).to_string();
    let at = humantime::parse_rfc3339(&text).unwrap();
    let output = hookcli(args(&[
        "load",
        "-n",
        "3",
        "-c",
        "1",
        "--json",
        "--start-at",
        &text,
        "--secret",
        KEY,
        "--to",
        &receiver.url,
    ]))
    .await;
    let err = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(0), "{err}");
    // On a machine so busy that starting hookcli took the whole margin, the moment has
    // passed and it says so; either way nothing may go out before it.
    assert!(
        err.contains(&format!("to start at {text}"))
            || err.contains(&format!("--start-at {text} was")),
        "{err}"
    );
    let got = drain(&mut rx);
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.at >= at), "nothing before the moment");
    let report = json(&output);
    let started = humantime::parse_rfc3339(report["started_at"].as_str().unwrap()).unwrap();
    assert!(started >= at, "{report}");

    let past = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 60;
    let output = hookcli(args(&[
        "load",
        "-n",
        "2",
        "--start-at",
        &past.to_string(),
        "--secret",
        KEY,
        "--to",
        &receiver.url,
    ]))
    .await;
    let err = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(err.contains("ago: starting now"), "{err}");
    assert_eq!(drain(&mut rx).len(), 2);

    for bad in ["tomorrow", "2026-11-30T10:00:00", "1796032800000"] {
        let output = hookcli(args(&[
            "load",
            "-n",
            "1",
            "--start-at",
            bad,
            "--to",
            &receiver.url,
        ]))
        .await;
        let err = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(2), "{bad}: {err}");
        assert!(err.starts_with("error: invalid value"), "{err}");
    }
    receiver.stop().await;
    assert!(drain(&mut rx).is_empty(), "nothing sent for a bad time");
}

/// Answers 500 to every third request, 204 to the others; counts what it got.
async fn every_third_fails() -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicU64::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let hits = counter.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                    let hits = hits.clone();
                    async move {
                        let _ = request.into_body().collect().await;
                        let n = hits.fetch_add(1, Ordering::SeqCst) + 1;
                        let status = if n.is_multiple_of(3) { 500 } else { 204 };
                        let mut response = Response::new(Full::new(Bytes::new()));
                        *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_every_third_request_gives_a_third_status_failures() {
    let (url, hits) = every_third_fails().await;
    let output = hookcli(args(&[
        "load", "-c", "3", "-n", "90", "--json", "--secret", KEY, "--to", &url,
    ]))
    .await;

    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(hits.load(Ordering::SeqCst), 90);
    let report = json(&output);
    assert_eq!(report["deliveries"], 90);
    assert_eq!(report["failed"], 30);
    assert_eq!(report["failures"]["status"], 30);
    assert_eq!(report["failure_statuses"]["500"], 30);
    assert_eq!(report["failures"]["reset"], 0);
    assert_eq!(report["succeeded"], 60);
    assert_matches_schema(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_add_requests_to_the_load() {
    let (url, hits) = every_third_fails().await;
    let output = hookcli(args(&[
        "load",
        "-c",
        "1",
        "-n",
        "30",
        "--retries",
        "2",
        "--backoff",
        "0",
        "--json",
        "--secret",
        KEY,
        "--to",
        &url,
    ]))
    .await;

    // Every third request fails and its retry (the next request) succeeds.
    let report = json(&output);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(report["deliveries"], 30);
    assert_eq!(report["succeeded"], 30);
    let requests = report["requests"].as_u64().unwrap();
    // A request sent again on a fresh connection (a kept-alive one found closed) reached the
    // receiver twice but is one attempt.
    let reconnected = report["reconnected"].as_u64().unwrap();
    assert_eq!(requests + reconnected, hits.load(Ordering::SeqCst));
    assert_eq!(report["retried"].as_u64().unwrap(), requests - 30);
    assert!(requests > 30);
    assert_matches_schema(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_is_unreachable_and_exits_three() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    drop(listener);
    let output = hookcli(args(&[
        "load", "-c", "2", "-n", "5", "--json", "--to", &url,
    ]))
    .await;

    assert_eq!(output.status.code(), Some(3), "{output:?}");
    // With --json the report has only counts: stderr says in words why it is exit 3.
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains(&format!(
            "error: the receiver at {url} was unreachable: no connection succeeded\nhint: "
        )),
        "{err}"
    );
    let report = json(&output);
    assert_eq!(report["failures"]["connect"], 5);
    assert!(
        report["latency_ms"].is_null(),
        "a refused connect is no answer, so no latency: {report}"
    );
    assert_matches_schema(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_exits_two_and_sends_nothing() {
    let (url, hits) = every_third_fails().await;
    for bad in [
        args(&["load", "-n", "5", "--rate", "0", "--to", &url]),
        args(&["load", "no_such_event", "-n", "5", "--to", &url]),
        args(&["load", "-c", "2", "--to", &url]),
    ] {
        let output = hookcli(bad.clone()).await;
        assert_eq!(output.status.code(), Some(2), "{bad:?}: {output:?}");
        assert!(output.stdout.is_empty());
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_to_it_loads_the_built_in_receiver() {
    let output = hookcli(args(&["load", "-c", "2", "-n", "20", "--json"])).await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let report = json(&output);
    assert_eq!(report["succeeded"], 20);
    assert!(
        report["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    assert_matches_schema(&report);
}

async fn faulty_receiver(faults: Faults) -> Receiver {
    let catalog = Catalog::load(None).unwrap();
    let platform = catalog.platform("uponai").unwrap().clone();
    let mut config = ReceiverConfig::local(platform, Some(Secret::new(KEY)));
    config.faults = faults;
    Receiver::start(config, None).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_slower_than_the_timeout_gives_timeout_failures() {
    let receiver = faulty_receiver(Faults {
        delay: Duration::from_millis(600),
        ..Faults::default()
    })
    .await;
    let output = hookcli(args(&[
        "load",
        "-c",
        "3",
        "-n",
        "3",
        "--timeout",
        "100ms",
        "--json",
        "--secret",
        KEY,
        "--to",
        &receiver.url,
    ]))
    .await;
    let hits = receiver.stats.requests.load(Ordering::SeqCst);
    receiver.stop().await;

    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let report = json(&output);
    assert_eq!(report["failures"]["timeout"], 3);
    assert_eq!(report["failed"], 3);
    assert!(hits >= 1, "the requests reached the receiver");
    assert_matches_schema(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_drops_connections_gives_reset_failures() {
    let receiver = faulty_receiver(Faults {
        drop: true,
        ..Faults::default()
    })
    .await;
    let output = hookcli(args(&[
        "load",
        "-c",
        "2",
        "-n",
        "6",
        "--json",
        "--secret",
        KEY,
        "--to",
        &receiver.url,
    ]))
    .await;
    receiver.stop().await;

    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let report = json(&output);
    assert_eq!(report["failures"]["reset"], 6);
    assert_eq!(report["deliveries"], 6);
    assert_matches_schema(&report);
}

#[test]
fn the_command_line_definition_is_consistent() {
    use clap::CommandFactory;
    hookcli::cli::Cli::command().debug_assert();
}

/// `hookcli load ARGS` running, its output piped, for tests that stop it with a signal.
fn spawn_load(args: &[&str]) -> Child {
    common::hookcli()
        .arg("load")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the hookcli binary starts")
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name}");
}

#[test]
fn a_failed_delivery_waits_for_its_retry_while_new_deliveries_go_on() {
    // The first request gets a 500 and its retry is an hour away, so the next requests can
    // only be new deliveries: the platform does not hold new calls back behind a retry.
    let mut server = common::Server::start(
        "uponai",
        Some(common::KEY),
        Faults {
            fail_first: 1,
            ..Faults::default()
        },
    );
    let child = spawn_load(&[
        "-c",
        "1",
        "-n",
        "3",
        "--retries",
        "1",
        "--backoff",
        "1h",
        "--json",
        "--secret",
        common::KEY,
        "--to",
        &server.url,
    ]);
    let ids: Vec<_> = (0..3).map(|_| server.next().call_id).collect();
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(
        unique.len(),
        3,
        "three different calls before any retry: {ids:?}"
    );

    signal(&child, "INT");
    let output = child.wait_with_output().expect("hookcli exits");
    // The failed delivery never got its retry: the run did not succeed.
    common::assert_code(&output, 1);
    let report = json(&output);
    assert_eq!(report["interrupted"], true);
    // The receiver saw the third request, but its answer may still have been on the way
    // when the signal stopped the workers: it is then not counted, as the report documents.
    let requests = report["requests"].as_u64().unwrap();
    assert!((2..=3).contains(&requests), "{report}");
    assert_eq!(report["retried"], 0);
    assert_eq!(
        report["deliveries"],
        requests - 1,
        "the one waiting to retry is not finished"
    );
    assert_eq!(report["succeeded"], requests - 1);
    assert_eq!(report["failed"], 0);
    assert_eq!(report["unfinished"], 1);
    assert_matches_schema(&report);
}

#[test]
fn an_interrupted_load_with_a_retry_pending_says_so_and_does_not_pass() {
    let mut server = common::Server::start(
        "uponai",
        Some(common::KEY),
        Faults {
            fail_first: 1,
            ..Faults::default()
        },
    );
    let child = spawn_load(&[
        "-c",
        "1",
        "-n",
        "2",
        "--retries",
        "1",
        "--backoff",
        "1h",
        "--secret",
        common::KEY,
        "--to",
        &server.url,
    ]);
    server.next();
    server.next();
    signal(&child, "INT");
    let output = child.wait_with_output().expect("hookcli exits");
    common::assert_code(&output, 1);
    common::assert_no_panic(&output);
    let text = common::stdout(&output);
    assert!(
        text.contains(
            "unfinished  1 failed and still waiting for a retry when the load stopped: not delivered"
        ),
        "{text}"
    );
    // Requests per delivery started, the unfinished one included: 2 requests for 2.
    assert!(text.contains("(1.00 per delivery)"), "{text}");
}

#[test]
fn a_retry_in_flight_when_the_load_stops_is_unfinished() {
    // The first request gets a 500; its retry (no backoff) is read and never answered, so the
    // load is stopped while the retry is in flight.
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (seen, requests) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        let (mut read, mut chunk) = (Vec::new(), [0u8; 4096]);
        for n in 0.. {
            let end = loop {
                if let Some(end) = request_end(&read) {
                    break end;
                }
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(k) => read.extend_from_slice(&chunk[..k]),
                }
            };
            read.drain(..end);
            let _ = seen.send(n);
            if n == 0 {
                let _ = stream
                    .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n");
            }
        }
    });
    let child = spawn_load(&[
        "-c",
        "1",
        "-n",
        "1",
        "--retries",
        "1",
        "--backoff",
        "0",
        "--timeout",
        "1h",
        "--json",
        "--secret",
        KEY,
        "--to",
        &url,
    ]);
    for expected in 0..2 {
        let wait = Duration::from_secs(60);
        assert_eq!(
            requests.recv_timeout(wait),
            Ok(expected),
            "request {expected}"
        );
    }
    signal(&child, "INT");
    let output = child.wait_with_output().expect("hookcli exits");
    common::assert_code(&output, 1);
    common::assert_no_panic(&output);
    let report = json(&output);
    assert_eq!(report["unfinished"], 1, "{report}");
    assert_eq!(report["deliveries"], 0, "{report}");
    assert_eq!(
        report["requests"], 1,
        "the abandoned retry is not counted: {report}"
    );
}

#[test]
fn a_calls_next_event_waits_until_the_previous_one_is_settled() {
    // The first request (call A's call_started) gets a 500 and its retry is an hour away.
    // A's later events must wait for it; the connection goes on with call B meanwhile.
    let mut server = common::Server::start(
        "uponai",
        Some(common::KEY),
        Faults {
            fail_first: 1,
            ..Faults::default()
        },
    );
    let child = spawn_load(&[
        "--lifecycle",
        "transfer",
        "--events",
        "all",
        "-c",
        "1",
        "-n",
        "3",
        "--retries",
        "1",
        "--backoff",
        "1h",
        "--json",
        "--secret",
        common::KEY,
        "--to",
        &server.url,
    ]);
    let got: Vec<_> = (0..3)
        .map(|_| {
            let r = server.next();
            (r.call_id.unwrap(), r.event.unwrap())
        })
        .collect();
    signal(&child, "INT");
    let output = child.wait_with_output().expect("hookcli exits");
    let (a, b) = (&got[0].0, &got[1].0);
    assert_ne!(a, b, "call A's next event overtook its retry: {got:?}");
    let events: Vec<_> = got.iter().map(|(_, e)| e.as_str()).collect();
    assert_eq!(
        events,
        ["call_started", "call_started", "transcript_updated"],
        "{got:?}"
    );
    assert_eq!(&got[2].0, b, "call B goes on in order: {got:?}");
    common::assert_code(&output, 1);
    assert_eq!(json(&output)["unfinished"], 1);
}

#[test]
fn a_retried_event_is_followed_by_the_rest_of_its_call_in_order() {
    // call_started fails twice, then its third attempt is accepted; only then may the rest
    // of the call follow, and the next call after it.
    let mut server = common::Server::start(
        "uponai",
        Some(common::KEY),
        Faults {
            fail_first: 2,
            ..Faults::default()
        },
    );
    let output = common::run(&[
        "load",
        "--lifecycle",
        "transfer",
        "--events",
        "all",
        "-c",
        "1",
        "-n",
        "14",
        "--retries",
        "2",
        "--backoff",
        "0",
        "--json",
        "--secret",
        common::KEY,
        "--to",
        &server.url,
    ]);
    common::assert_code(&output, 0);
    let got: Vec<_> = server
        .received()
        .iter()
        .map(|r| (r.call_id.clone().unwrap(), r.event.clone().unwrap()))
        .collect();
    let one_call = [
        "call_started",
        "transcript_updated",
        "transfer_started",
        "transfer_bridged",
        "transfer_ended",
        "call_ended",
        "call_analyzed",
    ];
    let first = [&["call_started", "call_started"][..], &one_call[..]].concat();
    let events: Vec<_> = got.iter().map(|(_, e)| e.as_str()).collect();
    assert_eq!(events, [&first[..], &one_call[..]].concat());
    let calls: Vec<_> = got.iter().map(|(id, _)| id).collect();
    assert!(calls[..9].iter().all(|id| *id == calls[0]), "{got:?}");
    assert!(calls[9..].iter().all(|id| *id == calls[9]), "{got:?}");
    let report = json(&output);
    assert_eq!(
        (
            &report["deliveries"],
            &report["requests"],
            &report["unfinished"]
        ),
        (&Value::from(14), &Value::from(16), &Value::from(0))
    );
}

#[test]
fn retries_finish_before_a_counted_load_ends_and_the_report_explains_them() {
    let mut server = common::Server::start(
        "uponai",
        Some(common::KEY),
        Faults {
            fail_first: 2,
            ..Faults::default()
        },
    );
    let output = common::run(&[
        "load",
        "-c",
        "2",
        "-n",
        "4",
        "--retries",
        "3",
        "--backoff",
        "0",
        "--secret",
        common::KEY,
        "--to",
        &server.url,
    ]);
    common::assert_code(&output, 0);
    assert_eq!(server.hits(), 6, "four deliveries and two retries");
    let text = common::stdout(&output);
    assert!(
        text.contains("retries     2 extra requests: 6 requests in all"),
        "{text}"
    );
    assert!(text.contains("the retry storm"), "{text}");
    assert!(text.contains("succeeded   4  204 No Content × 4"), "{text}");
}

#[test]
fn sigint_and_sigterm_stop_the_load_with_the_report_so_far() {
    for name in ["INT", "TERM"] {
        let mut server = common::Server::uponai();
        let child = spawn_load(&[
            "-c",
            "2",
            "-n",
            "1000000000",
            "--secret",
            common::KEY,
            "--to",
            &server.url,
        ]);
        server.next();
        signal(&child, name);
        let output = child.wait_with_output().expect("hookcli exits");
        // An interrupted run did not do what was asked: never a pass.
        common::assert_code(&output, 1);
        common::assert_no_panic(&output);
        let text = common::stdout(&output);
        assert!(
            text.contains("interrupted: the report so far"),
            "{name}: {text}"
        );
        let all = format!("{text}{}", common::stderr(&output));
        assert!(!all.contains(common::KEY), "the key leaked: {all}");
    }
}

#[test]
fn bad_amounts_rates_and_timeouts_are_one_clear_error_and_send_nothing() {
    let mut server = common::Server::uponai();
    let url = server.url.clone();
    let cases: [(&[&str], &str); 11] = [
        (&[], "-n COUNT (deliveries) or -z DURATION"),
        (&["-n", "5", "-c", "abc"], "`abc` is not a whole number"),
        (&["-n", "5", "-c", "-1"], "`-1` is not a whole number"),
        (&["-n", "5", "--retries", "x"], "`x` is not a whole number"),
        (&["-n", "5", "-z", "1s"], "-n 5 and -z 1s both given"),
        (&["-n", "0"], "`0` is not a count"),
        (&["-n", "5", "--rate", "-5"], "`-5` is not a rate"),
        (&["-n", "5", "--rate", "abc"], "`abc` is not a rate"),
        (&["-n", "5", "--rate", "0"], "`0` is not a rate"),
        (
            &["-n", "5", "--timeout", "0"],
            "a timeout must be more than 0",
        ),
        (&["-z", "0s"], "-z 0: the duration must be above 0"),
    ];
    for (extra, message) in cases {
        let mut line = vec!["load", "--to", &url, "--secret", common::KEY];
        line.extend_from_slice(extra);
        let output = common::run(&line);
        common::assert_code(&output, 2);
        common::assert_no_panic(&output);
        let err = common::stderr(&output);
        let first = err.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("error: ") && first.contains(message),
            "{extra:?}: {err}"
        );
        assert_eq!(err.matches("error:").count(), 1, "{extra:?}: {err}");
        // And a hint line: what to write instead, or where the flags are described.
        assert!(
            err.lines().nth(1).is_some_and(|l| l.starts_with("hint: ")),
            "{extra:?}: {err}"
        );
        assert!(output.stdout.is_empty(), "{extra:?}");
    }
    assert_eq!(server.hits(), 0, "nothing was sent");
}

#[test]
fn an_unreachable_receiver_is_named_in_the_human_report() {
    let url = format!("http://127.0.0.1:{}/hook", common::closed_port());
    let output = common::run(&["load", "-c", "2", "-n", "4", "--to", &url]);
    common::assert_code(&output, 3);
    let text = common::stdout(&output);
    assert!(
        text.contains(&format!("unreachable: no connection to {url} succeeded")),
        "{text}"
    );
    assert!(
        text.contains("latency     none: no request got an answer"),
        "{text}"
    );
}

#[test]
fn an_unknown_lifecycle_or_event_suggests_the_nearest_name_like_replay() {
    let mut server = common::Server::uponai();
    let url = server.url.clone();
    let cases: [(&[&str], &str, &str); 3] = [
        (
            &["--lifecycle", "cal"],
            "error: unknown lifecycle `cal` for uponai",
            "hint: did you mean call? uponai lifecycles: call, transfer,",
        ),
        (
            &["--lifecycle", "transfr"],
            "error: unknown lifecycle `transfr` for uponai",
            "hint: did you mean transfer? uponai lifecycles: call, transfer,",
        ),
        (
            &["cal_ended"],
            "error: unknown event `cal_ended` for uponai",
            "hint: did you mean call_ended?",
        ),
    ];
    for (extra, error, hint) in cases {
        let mut line = vec!["load", "-n", "10", "--to", &url, "--secret", common::KEY];
        line.extend_from_slice(extra);
        let output = common::run(&line);
        common::assert_code(&output, 2);
        let err = common::stderr(&output);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{extra:?}: {err}");
        assert_eq!(lines[0], error, "{extra:?}");
        assert!(lines[1].starts_with(hint), "{extra:?}: {err}");
        assert!(output.stdout.is_empty(), "{extra:?}");
    }
    // The replay wording, word for word.
    let replay = common::run(&["replay", "transfr", "--to", &url]);
    let load = common::run(&["load", "--lifecycle", "transfr", "-n", "1", "--to", &url]);
    assert_eq!(common::stderr(&replay), common::stderr(&load));
    assert_eq!(server.hits(), 0, "nothing was sent");
}

/// The answers [`oddly_framed_receiver`] gives in turn: each framing an HTTP/1 receiver may
/// use for an answer to a POST, and whether it closes the connection after it.
const ODD_ANSWERS: [(&[u8], bool); 4] = [
    // An interim answer first, then the real one.
    (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
        false,
    ),
    (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n3\r\n, w\r\n\
          0\r\ntrailer: t\r\n\r\n",
        false,
    ),
    (
        b"HTTP/1.1 202 Accepted\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok",
        true,
    ),
    // No length: the body runs to the end of the connection.
    (b"HTTP/1.0 200 OK\r\n\r\nto the end", true),
];

/// Answers each request with the next of [`ODD_ANSWERS`]; counts requests and connections.
async fn oddly_framed_receiver() -> (String, Arc<AtomicU64>, Arc<AtomicU64>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (hits, connections) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (counter, opened) = (hits.clone(), connections.clone());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            opened.fetch_add(1, Ordering::SeqCst);
            let hits = counter.clone();
            tokio::spawn(async move {
                let mut read = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    // One whole request (head and Content-Length body), then its answer.
                    let end = loop {
                        if let Some(end) = request_end(&read) {
                            break end;
                        }
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => read.extend_from_slice(&chunk[..n]),
                        }
                    };
                    read.drain(..end);
                    let n = hits.fetch_add(1, Ordering::SeqCst);
                    let (answer, closes) = ODD_ANSWERS[n as usize % ODD_ANSWERS.len()];
                    if stream.write_all(answer).await.is_err() || closes {
                        return;
                    }
                }
            });
        }
    });
    (url, hits, connections)
}

/// Where the first whole request in `read` ends, when it is all there.
fn request_end(read: &[u8]) -> Option<usize> {
    let head = read.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let length: usize = String::from_utf8_lossy(&read[..head])
        .to_ascii_lowercase()
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())?;
    (read.len() >= head + length).then_some(head + length)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_framed_every_way_http1_allows_are_read_whole_and_the_connection_kept_or_not() {
    let (url, hits, connections) = oddly_framed_receiver().await;
    let output = hookcli(args(&[
        "load", "-c", "1", "-n", "40", "--json", "--secret", KEY, "--to", &url,
    ]))
    .await;
    let report = json(&output);
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert_eq!(report["succeeded"], 40, "{report}");
    assert_eq!(report["success_statuses"]["200"], 30, "{report}");
    assert_eq!(report["success_statuses"]["202"], 10, "{report}");
    assert_eq!(report["reconnected"], 0, "{report}");
    assert_eq!(hits.load(Ordering::SeqCst), 40);
    // Every second answer closes: 20 closes, the last with nothing after it.
    assert_eq!(connections.load(Ordering::SeqCst), 20);
}
