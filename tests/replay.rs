//! `hookcli replay` against hookcli's own receiver on 127.0.0.1:0: order, counts, shared ids,
//! growing transcripts, non-blocking failures, many calls, recordings and bad input.

mod common;

use std::process::Output;

use common::{KEY, Server, TempFile, assert_no_panic, hookcli, printed_command, stderr, stdout};
use hookcli::receiver::{Faults, Received};
use serde_json::Value;

/// `hookcli ARGS` signing with [`KEY`] from the environment, as a user's shell would.
fn run(args: &[&str]) -> Output {
    hookcli()
        .args(args)
        .env("HOOKCLI_SECRET", KEY)
        .output()
        .expect("hookcli runs")
}

/// hookcli's receiver, in-process on 127.0.0.1:0, verifying with [`KEY`].
fn receiver(
    platform: &str,
    configure: impl FnOnce(&mut hookcli::receiver::ReceiverConfig),
) -> Server {
    Server::with(platform, Some(KEY), configure)
}

fn replay(target: &Server, args: &[&str]) -> Output {
    let mut all = vec!["replay", "--to", target.url.as_str()];
    all.extend_from_slice(args);
    run(&all)
}

fn events(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| r.event.clone().unwrap_or_default())
        .collect()
}

fn body(r: &Received) -> Value {
    serde_json::from_slice(&r.body).expect("bodies are JSON")
}

#[test]
fn default_call_sends_only_the_default_events_in_order_and_reports_the_rest_filtered() {
    let mut target = receiver("uponai", |_| {});
    let out = replay(&target, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let got = target.received();
    assert_eq!(events(got), ["call_started", "call_ended", "call_analyzed"]);
    assert!(got.iter().all(|r| r.verdict.word() == "valid"));
    let text = stdout(&out);
    assert!(text.contains("filtered"), "{text}");
    assert!(text.contains("3 delivered, 0 failed"), "{text}");
}

#[test]
fn events_all_sends_a_transcript_update_per_turn_with_a_growing_transcript() {
    let mut target = receiver("uponai", |_| {});
    let out = replay(&target, &["--events", "all"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let got = target.received();
    let names = events(got);
    assert_eq!(names.first().map(String::as_str), Some("call_started"));
    assert_eq!(&names[names.len() - 2..], ["call_ended", "call_analyzed"]);
    let updates: Vec<&Received> = got
        .iter()
        .filter(|r| r.event.as_deref() == Some("transcript_updated"))
        .collect();
    assert!(updates.len() >= 4, "one update per turn: {names:?}");
    assert_eq!(updates.len(), names.len() - 3);

    // One call: every body carries the same call id and agent.
    let bodies: Vec<Value> = got.iter().map(body).collect();
    let call_id = &bodies[0]["call"]["call_id"];
    let agent_id = &bodies[0]["call"]["agent_id"];
    assert!(
        bodies
            .iter()
            .all(|b| &b["call"]["call_id"] == call_id && &b["call"]["agent_id"] == agent_id)
    );

    // The transcript grows turn by turn, and call_ended carries all of it.
    let lengths: Vec<usize> = updates
        .iter()
        .map(|r| {
            body(r)["call"]["transcript_object"]
                .as_array()
                .map_or(0, Vec::len)
        })
        .collect();
    assert!(lengths.windows(2).all(|w| w[1] == w[0] + 1), "{lengths:?}");
    let ended = &bodies[bodies.len() - 2];
    assert_eq!(
        ended["call"]["transcript_object"].as_array().unwrap().len(),
        *lengths.last().unwrap()
    );
    assert!(ended["call"].get("call_analysis").is_none());
    assert!(bodies.last().unwrap()["call"]["call_analysis"].is_object());

    // Timestamps advance: started before ended, ended before analyzed arrives.
    let start = bodies[0]["call"]["start_timestamp"].as_u64().unwrap();
    let end = ended["call"]["end_timestamp"].as_u64().unwrap();
    assert!(start < end);
    assert_eq!(ended["call"]["duration_ms"].as_u64().unwrap(), end - start);
}

#[test]
fn every_uponai_lifecycle_sends_its_sequence() {
    let cases: [(&str, &[&str]); 4] = [
        (
            "transfer",
            &[
                "call_started",
                "transcript_updated",
                "transfer_started",
                "transfer_bridged",
                "transfer_ended",
                "call_ended",
                "call_analyzed",
            ],
        ),
        (
            "transfer-cancelled",
            &[
                "call_started",
                "transcript_updated",
                "transfer_started",
                "transfer_cancelled",
                "call_ended",
                "call_analyzed",
            ],
        ),
        ("dial-failed", &["call_ended", "call_analyzed"]),
        ("chat", &["chat_started", "chat_ended", "chat_analyzed"]),
    ];
    for (lifecycle, expected) in cases {
        let mut target = receiver("uponai", |_| {});
        let out = replay(&target, &[lifecycle, "--events", "all"]);
        assert_eq!(out.status.code(), Some(0), "{lifecycle}: {}", stderr(&out));
        assert_eq!(events(target.received()), expected, "{lifecycle}");
    }
}

#[test]
fn dial_failed_sends_no_call_started_and_says_why_the_call_ended() {
    let mut target = receiver("uponai", |_| {});
    let out = replay(&target, &["dial-failed"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let got = target.received();
    assert!(!events(got).contains(&"call_started".to_string()));
    let ended = body(&got[0]);
    assert_eq!(ended["event"], "call_ended");
    assert_eq!(ended["call"]["disconnection_reason"], "dial_no_answer");
}

#[test]
fn a_failed_call_started_does_not_stop_call_ended() {
    let mut target = receiver("uponai", |c| {
        c.faults = Faults {
            fail_first: 1,
            ..c.faults.clone()
        }
    });
    let out = replay(&target, &["--retries", "0"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed event makes the run fail"
    );
    let got = target.received();
    assert_eq!(events(got), ["call_started", "call_ended", "call_analyzed"]);
    assert_eq!(got[0].answered, Some(500));
    assert_eq!(got[1].answered, Some(204));
    assert!(
        stdout(&out).contains("2 delivered, 1 failed"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn many_calls_each_keep_their_own_order() {
    let mut target = receiver("uponai", |_| {});
    let out = replay(
        &target,
        &["--calls", "6", "--concurrency", "3", "--events", "all"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let got = target.received();
    let mut calls: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for r in got {
        calls
            .entry(r.call_id.clone().unwrap())
            .or_default()
            .push(r.event.clone().unwrap());
    }
    assert_eq!(calls.len(), 6, "six distinct calls");
    for sequence in calls.values() {
        assert_eq!(sequence.first().map(String::as_str), Some("call_started"));
        assert_eq!(
            &sequence[sequence.len() - 2..],
            ["call_ended", "call_analyzed"]
        );
        assert!(
            sequence[1..sequence.len() - 2]
                .iter()
                .all(|e| e == "transcript_updated")
        );
    }
}

#[test]
fn salpre_sends_one_transcript_event_per_utterance_and_the_whole_transcript_at_the_end() {
    let mut target = receiver("salpre", |_| {});
    let out = replay(&target, &["-p", "salpre"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let got = target.received();
    let names = events(got);
    assert_eq!(
        &names[..3],
        ["call_initiated", "call_ringing", "call_answered"]
    );
    assert_eq!(names.last().map(String::as_str), Some("call_ended"));
    let utterances: Vec<Value> = got
        .iter()
        .filter(|r| r.event.as_deref() == Some("transcript"))
        .map(body)
        .collect();
    let ended = body(got.last().unwrap());
    let whole = ended["payload"]["transcript"].as_array().unwrap();
    assert_eq!(whole.len(), utterances.len());
    for (one, line) in utterances.iter().zip(whole) {
        assert_eq!(one["payload"]["transcript"], line["message"]);
    }
    let call_id = ended["payload"]["call_id"].to_string();
    assert!(
        got.iter()
            .all(|r| r.call_id.as_deref() == Some(call_id.as_str())),
        "one call id throughout"
    );
}

#[test]
fn other_platforms_play_their_call() {
    for (platform, expected) in [
        ("postcall", vec!["call_completed"]),
        (
            "callevents",
            vec!["call.start", "call.end", "analytics.completed"],
        ),
    ] {
        let mut target = receiver(platform, |_| {});
        let out = replay(&target, &["-p", platform]);
        assert_eq!(out.status.code(), Some(0), "{platform}: {}", stderr(&out));
        assert_eq!(events(target.received()), expected);
    }
}

#[test]
fn a_recording_replays_byte_for_byte_and_is_signed_afresh() {
    let file = TempFile::new("traffic.ndjson", b"");
    let record = file.path.clone();
    let mut first = receiver("uponai", |c| c.record = Some(record.clone()));
    assert_eq!(replay(&first, &["--events", "all"]).status.code(), Some(0));
    let original = first.received().to_vec();
    drop(first);

    let mut second = receiver("uponai", |_| {});
    let out = replay(&second, &["--from", record.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let again = second.received();
    assert_eq!(again.len(), original.len());
    for (a, b) in original.iter().zip(again) {
        assert_eq!(a.body, b.body, "the exact bytes go out again");
        assert_eq!(b.verdict.word(), "valid", "re-signed with the current key");
    }
}

#[test]
fn redact_changes_people_and_text_but_not_the_shape() {
    let file = TempFile::new("traffic.ndjson", b"");
    let record = file.path.clone();
    let mut first = receiver("uponai", |c| c.record = Some(record.clone()));
    assert_eq!(replay(&first, &[]).status.code(), Some(0));
    let original: Vec<Value> = first.received().iter().map(body).collect();
    drop(first);

    let mut second = receiver("uponai", |_| {});
    let out = replay(&second, &["--from", record.to_str().unwrap(), "--redact"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let redacted: Vec<Value> = second.received().iter().map(body).collect();
    assert_eq!(redacted.len(), original.len());
    for (a, b) in original.iter().zip(&redacted) {
        assert_eq!(shape(a), shape(b));
        assert_eq!(
            a["call"]["call_id"], b["call"]["call_id"],
            "ids are not personal data"
        );
        assert_ne!(a["call"]["from_number"], b["call"]["from_number"]);
    }
    let ended = |v: &Vec<Value>| {
        v.iter().find(|b| b["event"] == "call_ended").unwrap()["call"]["transcript"].clone()
    };
    assert_ne!(ended(&original), ended(&redacted));
}

/// A body's keys and types, without its values.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
        Value::String(_) => Value::from("string"),
        Value::Number(_) => Value::from("number"),
        Value::Bool(_) => Value::from("bool"),
        Value::Null => Value::Null,
    }
}

#[test]
fn json_prints_one_object_per_delivery_then_a_summary() {
    let target = receiver("uponai", |_| {});
    let out = replay(&target, &["--json"]);
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    let summary = lines.last().unwrap();
    assert_eq!(summary["delivered"], 3);
    let deliveries = &lines[..lines.len() - 1];
    assert!(
        deliveries
            .iter()
            .all(|d| d["call"] == 1 && d["seq"].is_u64())
    );
    let filtered = deliveries
        .iter()
        .filter(|d| d["outcome"] == "filtered")
        .count();
    assert_eq!(summary["filtered"], filtered);
    assert!(
        deliveries
            .iter()
            .filter(|d| d["outcome"] == "delivered")
            .all(|d| d["status"] == 204 && d["attempts"][0]["n"] == 1)
    );
}

#[test]
fn without_to_it_replays_into_the_built_in_receiver() {
    let out = run(&["replay"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("built-in receiver"));
    assert!(
        stdout(&out).contains("built-in receiver: 3 requests: 3 valid"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn bad_input_is_exit_2_and_sends_nothing() {
    let not_json = TempFile::new("bad.ndjson", b"{\"event\":\"call_ended\"}\nnot json\n");
    let missing = not_json.path.with_file_name("missing.ndjson");
    let not_json = &not_json.path;
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["nope".into()], "dial-failed"),
        (
            vec!["--events".into(), "call_started,nope".into()],
            "call_analyzed",
        ),
        (
            vec!["--from".into(), missing.display().to_string()],
            "no such file",
        ),
        (
            vec!["--from".into(), not_json.display().to_string()],
            "line 2",
        ),
        (vec!["--speed".into(), "0".into()], "speed"),
        (vec!["--calls".into(), "0".into()], "calls"),
        (
            vec!["--calls".into(), "abc".into()],
            "`abc` is not a whole number",
        ),
        (
            vec!["--concurrency".into(), "-2".into()],
            "`-2` is not a whole number",
        ),
        (vec!["--gap".into(), "-1s".into()], "cannot be negative"),
        (
            vec!["--events".into(), "all,call_started".into()],
            "`all` cannot be part of a list",
        ),
        (
            vec![
                "--from".into(),
                not_json.display().to_string(),
                "--concurrency".into(),
                "4".into(),
            ],
            "'--from <FILE>' cannot be used with '--concurrency <N>'",
        ),
    ];
    for (args, needle) in cases {
        let mut target = receiver("uponai", |_| {});
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = replay(&target, &args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(target.received().is_empty(), "{args:?} sent something");
    }
}

#[test]
fn a_speed_too_small_or_negative_is_one_error_line_not_a_panic() {
    for speed in ["1e-300", "-2"] {
        let mut target = receiver("uponai", |_| {});
        // `=` so "-2" is not taken for a flag by a shell-less argv either way.
        let out = replay(&target, &[&format!("--speed={speed}")]);
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(2), "{speed}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.starts_with(&format!("error: invalid value '{speed}' for '--speed <N>'")),
            "{err}"
        );
        assert!(err.contains("from 0.001 up"), "{err}");
        assert!(target.received().is_empty(), "{speed} sent something");
    }
    // Negative without `=`, as a user types it.
    let out = run(&["replay", "--speed", "-2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("`-2` is not a speed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn gap_with_speed_is_refused_rather_than_ignored() {
    let mut target = receiver("uponai", |_| {});
    let out = replay(&target, &["--speed", "1000", "--gap", "1h"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("'--speed <N>' cannot be used with '--gap <DUR>'"),
        "{}",
        stderr(&out)
    );
    assert!(target.received().is_empty());
}

#[test]
fn an_unusable_recording_names_the_file_and_line_with_a_hint() {
    let not_json = TempFile::new("bad.ndjson", b"{\"event\":\"call_ended\"}\nnot json\n");
    let empty = TempFile::new("empty.ndjson", b"\n  \n");
    let mut target = receiver("uponai", |_| {});
    let out = replay(&target, &["--from", not_json.path_str()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].starts_with("error: --from ") && lines[0].contains("bad.ndjson, line 2: not JSON")
    );
    assert!(
        !lines[0].contains("line 1"),
        "serde's own line number contradicts ours: {err}"
    );
    assert!(lines[1].starts_with("hint: "), "{err}");

    let out = replay(&target, &["--from", empty.path_str()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("empty.ndjson: holds no requests"), "{err}");
    assert!(!err.contains("line 0"), "{err}");
    assert!(
        err.lines().nth(1).is_some_and(|l| l.starts_with("hint: ")),
        "{err}"
    );
    assert!(target.received().is_empty());
}

#[test]
fn redacted_events_of_one_call_still_agree_with_each_other() {
    let file = TempFile::new("traffic.ndjson", b"");
    let record = file.path.clone();
    let mut first = receiver("uponai", |c| c.record = Some(record.clone()));
    assert_eq!(replay(&first, &["--events", "all"]).status.code(), Some(0));
    let original: Vec<Value> = first.received().iter().map(body).collect();
    drop(first);

    let mut second = receiver("uponai", |_| {});
    let out = replay(&second, &["--from", record.to_str().unwrap(), "--redact"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let redacted: Vec<Value> = second.received().iter().map(body).collect();
    assert_eq!(redacted.len(), original.len());
    let caller = &redacted[0]["call"]["from_number"];
    assert_ne!(caller, &original[0]["call"]["from_number"]);
    let mut so_far = String::new();
    for b in &redacted {
        assert_eq!(&b["call"]["from_number"], caller, "one caller per call");
        let transcript = b["call"]["transcript"].as_str().unwrap_or_default();
        assert!(
            transcript.starts_with(&so_far),
            "the redacted transcript still grows: {so_far:?} then {transcript:?}"
        );
        so_far = transcript.to_string();
    }
    assert!(!so_far.is_empty());
}

/// `hookcli replay ARGS --to TARGET` as a child with piped output, to stop with a signal.
fn spawn_replay(target: &Server, args: &[&str]) -> std::process::Child {
    hookcli()
        .args(["replay", "--to", target.url.as_str()])
        .args(args)
        .env("HOOKCLI_SECRET", KEY)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("hookcli replay starts")
}

#[test]
fn ctrl_c_stops_the_replay_with_the_report_so_far() {
    use std::io::{BufRead, BufReader, Read};
    for json in [false, true] {
        let mut target = receiver("uponai", |_| {});
        let mut args = vec!["--events", "all", "--gap", "1h"];
        if json {
            args.push("--json");
        }
        let mut child = spawn_replay(&target, &args);
        // The first event arrives at once; the second waits an hour.
        assert_eq!(target.next().event.as_deref(), Some("call_started"));
        let mut stdout_reader = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut text = String::new();
        if json {
            // --json streams each delivery: once its line is out, hookcli has the answer.
            stdout_reader.read_line(&mut text).unwrap();
        }
        let status = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        stdout_reader.read_to_string(&mut text).unwrap();
        let out = child.wait_with_output().expect("replay exits");
        assert_no_panic(&out);
        assert_eq!(
            out.status.code(),
            Some(1),
            "an interrupted run is never a pass: {}",
            stderr(&out)
        );
        if json {
            let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
            assert_eq!(first["event"], "call_started", "{text}");
            let summary: Value =
                serde_json::from_str(text.lines().last().expect("a summary line")).unwrap();
            assert_eq!(summary["interrupted"], true, "{text}");
            assert_eq!(summary["delivered"], 1, "{text}");
            assert_eq!(summary["calls_finished"], 0, "{text}");
        } else {
            // The table comes at the end, so the signal may beat call_started's answer by a
            // hair: its delivery is then cut off, not reported (the JSON run above is exact).
            assert!(
                text.contains("1 delivered, 0 failed") || text.contains("0 delivered, 0 failed"),
                "{text}"
            );
            assert!(
                text.contains("interrupted: the report so far; 0 of 1 call finished, 1 unfinished"),
                "{text}"
            );
        }
    }
}

#[test]
fn a_recording_replays_only_the_webhook_deliveries_listen_recorded() {
    let file = TempFile::new("traffic.ndjson", b"");
    let record = file.path.clone();
    let mut first = receiver("uponai", |c| c.record = Some(record.clone()));
    let other_path = first.url.replace("/webhook", "/health");
    let (get, stray) = first.block_on(async {
        let client = reqwest::Client::new();
        let get = client.get(&first.url).send().await.expect("a GET");
        let stray = client
            .post(&other_path)
            .body(r#"{"event":"call_ended","call":{"call_id":"stray"}}"#)
            .send()
            .await
            .expect("a POST to another path");
        (get.status().as_u16(), stray.status().as_u16())
    });
    assert_eq!((get, stray), (405, 404));
    assert_eq!(replay(&first, &["--events", "all"]).status.code(), Some(0));
    let deliveries: Vec<Received> = first.received()[2..].to_vec();
    assert!(!deliveries.is_empty());
    drop(first);
    let lines = std::fs::read_to_string(&record).expect("the record file");
    assert_eq!(
        lines.lines().count(),
        deliveries.len() + 2,
        "listen records every request"
    );

    let mut second = receiver("uponai", |_| {});
    let out = replay(&second, &["--from", record.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let again = second.received();
    assert_eq!(
        again.len(),
        deliveries.len(),
        "only the deliveries are sent"
    );
    for (a, b) in deliveries.iter().zip(again) {
        assert_eq!(a.body, b.body);
    }
    let err = stderr(&out);
    let notes: Vec<&str> = err.lines().filter(|l| l.contains("skipped")).collect();
    assert_eq!(
        notes,
        [
            "note: skipped 2 recorded requests that were not webhook deliveries: a GET to \
             /webhook (line 1), a POST to /health, not the webhook path (line 2)"
        ],
        "{err}"
    );
}

#[test]
fn a_recording_of_only_stray_requests_sends_nothing() {
    let get =
        r#"{"time_ms":1,"method":"GET","path":"/webhook","headers":[],"status":405,"body":""}"#;
    let file = TempFile::new("stray.ndjson", format!("{get}\n").as_bytes());
    let mut target = receiver("uponai", |_| {});
    let out = replay(&target, &["--from", file.path_str()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: --from ")
            && err.contains(
                "stray.ndjson: holds no webhook deliveries, only a GET to /webhook (line 1)"
            ),
        "{err}"
    );
    assert!(
        err.lines().nth(1).is_some_and(|l| l.starts_with("hint: ")),
        "{err}"
    );
    assert!(target.received().is_empty());
}

#[test]
fn a_recorded_delivery_listen_refused_as_not_json_is_skipped_and_the_rest_replays() {
    let good = r#"{"time_ms":1,"method":"POST","path":"/webhook","headers":[],"status":204,"body":"{\"event\":\"call_started\",\"call\":{\"call_id\":\"c1\"}}"}"#;
    let mut target = receiver("uponai", |_| {});
    for bad in [
        r#"{"time_ms":2,"method":"POST","path":"/webhook","headers":[],"status":400,"body":"not json"}"#,
        r#"{"time_ms":2,"method":"POST","path":"/webhook","headers":[],"status":400,"body":""}"#,
        r#"{"time_ms":2,"method":"POST","path":"/webhook","headers":[],"body_base64":"//79"}"#,
    ] {
        let file = TempFile::new("bad.ndjson", format!("{good}\n{bad}\n").as_bytes());
        let before = target.hits();
        let out = replay(&target, &["--from", file.path_str()]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(
                "note: skipped 1 delivery listen rejected: a body that is not JSON (line 2); \
                 --include-rejected replays them"
            ),
            "{err}"
        );
        assert_eq!(target.hits(), before + 1, "only the good one: {bad}");
        assert_no_panic(&out);
    }
}

#[test]
fn hookcli_seed_makes_the_calls_reproducible_and_each_call_its_own() {
    let ids = || {
        let mut target = receiver("uponai", |_| {});
        let out = hookcli()
            .args(["replay", "--to", target.url.as_str(), "--calls", "2"])
            .env("HOOKCLI_SEED", "7")
            .env("HOOKCLI_SECRET", KEY)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let mut ids: Vec<String> = target
            .received()
            .iter()
            .map(|r| r.call_id.clone().unwrap())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    };
    let first = ids();
    assert_eq!(first.len(), 2, "two calls, two ids: {first:?}");
    assert_eq!(ids(), first, "the same seed, the same calls");
}

#[test]
fn a_recorded_body_that_names_no_event_is_custom_as_in_send() {
    let file = TempFile::new("no-event.ndjson", b"{\"hello\":1}\n");
    let mut target = receiver("uponai", |_| {});
    let out = replay(&target, &["--from", file.path_str(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let first: Value = serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    assert_eq!(first["event"], "custom", "{first}");
    assert_eq!(target.received().len(), 1);
}

#[test]
fn a_webhook_delivery_answered_404_on_purpose_is_still_replayed() {
    // Recorded by `listen --status 404`: a webhook delivery, whatever the answer.
    let line = r#"{"time_ms":1,"method":"POST","path":"/webhook","headers":[],"status":404,"webhook":true,"body":"{\"event\":\"call_started\",\"call\":{\"call_id\":\"c1\"}}"}"#;
    let file = TempFile::new("status-404.ndjson", format!("{line}\n").as_bytes());
    let mut target = receiver("uponai", |_| {});
    let out = replay(&target, &["--from", file.path_str()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(target.received().len(), 1);
    assert!(!stderr(&out).contains("skipped"), "{}", stderr(&out));
}

#[test]
fn a_rule_from_expect_is_named_as_the_users_not_the_platforms() {
    // The receiver answers 204, which --expect 200 does not take: the verdict must say whose
    // rule failed (the user's flag), not "uponai requires", which would send the user to the
    // platform's documents for a rule they gave themselves.
    let mut target = receiver("uponai", |_| {});
    let out = replay(&target, &["--expect", "200", "--retries", "0", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["expect"], "200", "{text}");
    let table = replay(&target, &["--expect", "200", "--retries", "0"]);
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    assert!(table.contains("--expect requires exactly 200"), "{table}");
    assert!(!table.contains("uponai requires"), "{table}");
    assert_eq!(target.hits(), 6, "three default events, twice, no retries");
}

#[test]
fn a_recorded_event_name_cannot_reach_the_terminal_as_control_characters() {
    // A recording is traffic from outside: its event names are shown escaped in the table.
    let body = "{\"event\":\"x\\u001b[2Kvalid\",\"call\":{\"call_id\":\"abc\"}}\n";
    let file = TempFile::new("hostile.ndjson", body.as_bytes());
    let mut target = receiver("uponai", |_| {});
    let out = replay(&target, &["--from", file.path_str()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert_eq!(target.hits(), 1);
}

/// Runs `hookcli replay ARGS` with `input` on its stdin.
fn replay_stdin(target: &Server, args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = hookcli()
        .args(["replay", "--to", target.url.as_str()])
        .args(args)
        .env("HOOKCLI_SECRET", KEY)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("hookcli runs");
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(input).expect("write stdin");
    drop(stdin);
    child.wait_with_output().expect("hookcli finishes")
}

#[test]
fn pretty_printed_bodies_as_show_prints_them_replay_from_stdin() {
    let mut input = Vec::new();
    let mut shown = Vec::new();
    for event in ["call_started", "call_ended"] {
        let out = run(&["show", event]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(stdout(&out).starts_with("{\n  "), "pretty-printed");
        shown.push(serde_json::from_slice::<Value>(&out.stdout).unwrap());
        input.extend_from_slice(&out.stdout);
    }
    let mut target = receiver("uponai", |_| {});
    let out = replay_stdin(&target, &["--from", "-", "--json"], &input);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let got: Vec<Value> = target.received().iter().map(body).collect();
    assert_eq!(got, shown, "each body as show printed it, in order");
    assert!(
        target
            .received()
            .iter()
            .all(|r| r.verdict.word() == "valid")
    );
    let summary: Value = serde_json::from_str(stdout(&out).lines().last().unwrap()).unwrap();
    assert_eq!(summary["calls"], 2, "two renders, two call ids: {summary}");
    assert_eq!(summary["calls_finished"], 2, "played to the end: {summary}");
    assert_eq!(
        summary["skipped"],
        serde_json::json!({"too_large": 0, "torn": 0, "rejected": 0, "not_deliveries": 0})
    );
    let schema: Value =
        serde_json::from_str(include_str!("../schemas/replay-summary.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&summary)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}\n{summary}");
}

#[test]
fn a_json_array_of_bodies_replays_each_in_order() {
    let text = r#"[
  {"event": "call_started", "call": {"call_id": "a1"}},
  {"event": "call_ended", "call": {"call_id": "a1"}}
]"#;
    let file = TempFile::new("bodies.json", text.as_bytes());
    let mut target = receiver("uponai", |_| {});
    let out = replay(&target, &["--from", file.path_str()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(events(target.received()), ["call_started", "call_ended"]);
    let out = replay(&target, &["--from", file.path_str(), "--json"]);
    let summary: Value = serde_json::from_str(stdout(&out).lines().last().unwrap()).unwrap();
    assert_eq!(
        (&summary["calls"], &summary["calls_finished"]),
        (&Value::from(1), &Value::from(1)),
        "{summary}"
    );
}

#[test]
fn too_large_and_torn_entries_are_skipped_and_counted_and_the_rest_replays() {
    let file = TempFile::new("traffic.ndjson", b"");
    let record = file.path.clone();
    // call_started fits in 1 KB; call_ended and call_analyzed do not: listen keeps their size.
    let mut first = receiver("uponai", |c| {
        c.record = Some(record.clone());
        c.max_body = 1024;
    });
    assert_eq!(replay(&first, &["--retries", "0"]).status.code(), Some(1));
    let kept = first.received()[0].body.clone();
    drop(first);
    let recorded = std::fs::read_to_string(&record).unwrap();
    assert_eq!(recorded.matches("\"rejected\":\"too_large\"").count(), 2);
    let first_line = recorded.lines().next().unwrap();
    // A listener killed midway through a line, then the next session appending to the file;
    // and a last line cut short.
    let torn = format!(
        "{}{first_line}\n{recorded}{}",
        &first_line[..first_line.len() / 2],
        &first_line[..40]
    );
    std::fs::write(&record, torn).unwrap();

    let mut second = receiver("uponai", |_| {});
    let out = replay(&second, &["--from", record.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let got = second.received();
    assert_eq!(got.len(), 2, "the glued record and call_started");
    assert!(got.iter().all(|r| r.body == kept));
    let summary: Value = serde_json::from_str(stdout(&out).lines().last().unwrap()).unwrap();
    assert_eq!(
        summary["skipped"],
        serde_json::json!({"too_large": 2, "torn": 2, "rejected": 0, "not_deliveries": 0}),
        "{summary}"
    );
    let err = stderr(&out);
    assert!(
        err.contains("note: skipped 2 torn entries (line 1, 5)"),
        "{err}"
    );
    assert!(
        err.contains(
            "note: skipped 2 bodies listen refused as too large, so not recorded (line 3, 4)"
        ),
        "{err}"
    );

    let out = replay(&second, &["--from", record.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("skipped from the recording: 2 too large (not recorded), 2 torn"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn deliveries_listen_rejected_are_skipped_unless_include_rejected() {
    let file = TempFile::new("traffic.ndjson", b"");
    let record = file.path.clone();
    let first = receiver("uponai", |c| c.record = Some(record.clone()));
    let good = first.send(&["call_started", "--secret", KEY]);
    assert_eq!(good.status.code(), Some(0), "{}", stderr(&good));
    let forged = first.send(&["call_ended", "--secret", "not_the_key", "--retries", "0"]);
    assert_eq!(forged.status.code(), Some(1), "{}", stderr(&forged));
    let status = first.block_on(async {
        let answer = reqwest::Client::new()
            .post(&first.url)
            .body("not json")
            .send()
            .await
            .expect("a POST");
        answer.status().as_u16()
    });
    assert_eq!(status, 401, "unsigned: listen's own verdict");
    drop(first);

    let mut second = receiver("uponai", |_| {});
    let out = replay(&second, &["--from", record.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(events(second.received()), ["call_started"]);
    let summary: Value = serde_json::from_str(stdout(&out).lines().last().unwrap()).unwrap();
    assert_eq!(summary["skipped"]["rejected"], 2, "{summary}");
    assert!(
        stderr(&out).contains(
            "note: skipped 2 deliveries listen rejected: a bad signature (invalid) (line 2), \
             a bad signature (missing) (line 3); --include-rejected replays them"
        ),
        "{}",
        stderr(&out)
    );

    let mut third = receiver("uponai", |_| {});
    let out = replay(
        &third,
        &[
            "--from",
            record.to_str().unwrap(),
            "--include-rejected",
            "--retries",
            "0",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "the not-JSON body fails: {}",
        stderr(&out)
    );
    let got = third.received();
    assert_eq!(got.len(), 3, "all three, re-signed");
    assert_eq!(&got[2].body[..], b"not json", "sent as it was recorded");
}

#[test]
fn an_apps_4xx_through_the_relay_is_not_a_rejection_and_replays() {
    let app = Server::start(
        "uponai",
        Some(KEY),
        Faults {
            status: 422,
            ..Faults::default()
        },
    );
    let file = TempFile::new("relayed.ndjson", b"");
    let relay = common::Listener::start(&[
        "--secret",
        KEY,
        "--forward-to",
        &app.url,
        "--record",
        file.path_str(),
    ]);
    let out = relay.send(&["call_ended", "--secret", KEY, "--retries", "0"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the app's 422: {}",
        stderr(&out)
    );
    relay.stop();
    let recorded = std::fs::read_to_string(&file.path).unwrap();
    assert!(recorded.contains("\"status\":422"), "{recorded}");
    assert!(
        recorded.contains("\"forwarded\":{\"status\":422"),
        "{recorded}"
    );

    let mut target = receiver("uponai", |_| {});
    let out = replay(&target, &["--from", file.path_str()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(events(target.received()), ["call_ended"]);
    assert!(!stderr(&out).contains("rejected"), "{}", stderr(&out));
}

/// A fixture made with `hookcli listen --record` and `hookcli record redact` (see
/// tests/fixtures/recordings/README.md): a default uponai call, a forged delivery and a GET.
const FIXTURE: &str = "tests/fixtures/recordings/uponai-call.ndjson";

#[test]
fn the_committed_redacted_fixture_replays_its_call() {
    let text = std::fs::read_to_string(FIXTURE).expect("the fixture");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let accepted: Vec<&str> = lines
        .iter()
        .filter(|l| l["webhook"] == true && l["verdict"] == "valid")
        .map(|l| l["body"].as_str().unwrap())
        .collect();
    assert_eq!(accepted.len(), 3);
    let mut target = receiver("uponai", |_| {});
    let out = replay(&target, &["--from", FIXTURE, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let got = target.received();
    assert_eq!(events(got), ["call_started", "call_ended", "call_analyzed"]);
    for (sent, recorded) in got.iter().zip(&accepted) {
        assert_eq!(&sent.body[..], recorded.as_bytes(), "the fixture's bytes");
        assert_eq!(sent.verdict.word(), "valid", "signed afresh");
    }
    let summary: Value = serde_json::from_str(stdout(&out).lines().last().unwrap()).unwrap();
    assert_eq!(
        summary["skipped"],
        serde_json::json!({"too_large": 0, "torn": 0, "rejected": 1, "not_deliveries": 1})
    );
}

#[test]
fn a_fresh_recording_redacted_replays_as_the_original_did() {
    let file = TempFile::new("traffic.ndjson", b"");
    let record = file.path_str().to_string();
    let listener = common::Listener::start(&["--secret", KEY, "--record", &record]);
    let out = hookcli()
        .args(["replay", "--events", "all", "--to", &listener.url])
        .env("HOOKCLI_SECRET", KEY)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let forged = listener.send(&["call_ended", "--secret", "not_the_key", "--retries", "0"]);
    assert_eq!(forged.status.code(), Some(1));
    listener.stop();
    let original = std::fs::read_to_string(&record).unwrap();

    let redacted_file = TempFile::new("fixture.ndjson", b"");
    let out = hookcli()
        .args([
            "record",
            "redact",
            &record,
            "--out",
            redacted_file.path_str(),
        ])
        .env("HOOKCLI_SEED", "7")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let redacted = std::fs::read_to_string(&redacted_file.path).unwrap();
    assert_eq!(redacted.lines().count(), original.lines().count());
    let first: Value = serde_json::from_str(original.lines().next().unwrap()).unwrap();
    let caller = serde_json::from_str::<Value>(first["body"].as_str().unwrap()).unwrap()["call"]
        ["from_number"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!redacted.contains(&caller), "the caller's number is gone");
    let signature = first["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0] == "x-retell-signature")
        .unwrap()[1]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !redacted.contains(&signature),
        "signatures no longer match: masked"
    );

    let mut a = receiver("uponai", |_| {});
    let mut b = receiver("uponai", |_| {});
    let from_original = replay(&a, &["--from", &record, "--json"]);
    let from_redacted = replay(&b, &["--from", redacted_file.path_str(), "--json"]);
    assert_eq!(
        from_redacted.status.code(),
        Some(0),
        "{}",
        stderr(&from_redacted)
    );
    assert_eq!(events(a.received()), events(b.received()));
    for (x, y) in a.received().iter().zip(b.received()) {
        assert_eq!(shape(&body(x)), shape(&body(y)));
        assert_eq!(x.call_id, y.call_id);
    }
    let summary = |out: &Output| -> Value {
        serde_json::from_str(stdout(out).lines().last().unwrap()).unwrap()
    };
    assert_eq!(
        summary(&from_original)["skipped"],
        summary(&from_redacted)["skipped"]
    );
    assert_eq!(summary(&from_redacted)["skipped"]["rejected"], 1);

    // -p comes from HOOKCLI_PLATFORM too, and a blank one is no platform, as for every command.
    for (value, code) in [("", 0), ("uponai", 0), ("nope", 2)] {
        let out = hookcli()
            .args([
                "record",
                "redact",
                &record,
                "--out",
                redacted_file.path_str(),
            ])
            .env("HOOKCLI_PLATFORM", value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(code), "{value:?}: {}", stderr(&out));
    }

    let missing = run(&[
        "record",
        "redact",
        "/no/such/file",
        "--out",
        redacted_file.path_str(),
    ]);
    assert_eq!(missing.status.code(), Some(2));
    let err = stderr(&missing);
    assert!(
        err.starts_with("error: record redact `/no/such/file`: "),
        "{err}"
    );
    assert!(
        err.lines().nth(1).is_some_and(|l| l.starts_with("hint: ")),
        "{err}"
    );
}

#[test]
fn dry_run_prints_each_calls_requests_in_order_and_sends_nothing() {
    let mut server = receiver("uponai", |_| {});
    let out = replay(
        &server,
        &["--dry-run", "--json", "--calls", "2", "--concurrency", "2"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(server.hits(), 0, "a dry run sends nothing");
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seen: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            let body: Value = serde_json::from_str(l["body"].as_str().unwrap()).unwrap();
            (
                l["case"].as_str().unwrap().to_string(),
                body["event"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let call = |n: &str| {
        ["call_started", "call_ended", "call_analyzed"].map(|e| (n.to_string(), e.to_string()))
    };
    let expected: Vec<(String, String)> =
        call("call 1").into_iter().chain(call("call 2")).collect();
    assert_eq!(seen, expected);
    assert!(
        lines[0]["headers"]["x-retell-signature"].is_string(),
        "signed"
    );
    assert!(!stdout(&out).contains(KEY));
    assert!(stderr(&out).contains("nothing sent"), "{}", stderr(&out));
}

#[test]
fn verbose_shows_each_delivery_and_its_answer_on_stderr() {
    let mut server = receiver("uponai", |_| {});
    let out = replay(&server, &["-v"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(server.hits(), 3);
    let err = stderr(&out);
    let at = |what: &str| err.find(what).unwrap_or_else(|| panic!("{what} in\n{err}"));
    assert!(at("# call 1: call_started") < at("# call 1: call_ended"));
    assert!(at("# call 1: call_ended") < at("# call 1: call_analyzed"));
    assert!(err.contains("204"), "the answers: {err}");
}

#[test]
fn a_failed_delivery_prints_the_command_that_sends_its_body_again() {
    let mut server = receiver("uponai", |config| {
        config.faults = Faults {
            fail_first: 100,
            ..Faults::default()
        }
    });
    let out = replay(&server, &["--retries", "0"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("call 1 #1 call_started failed:"), "{text}");
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("reproduce: "))
        .unwrap_or_else(|| panic!("a reproduce line in\n{text}"));
    assert!(
        line.starts_with("printf %s '{\"event\":\"call_started\"")
            && line.contains("| hookcli send -p uponai --to "),
        "{line}"
    );
    // Run as printed (the key from the environment), it sends the very same bytes.
    let again = printed_command(line).output().unwrap();
    assert_eq!(
        again.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let got = server.received().to_vec();
    assert_eq!(got[0].body, got.last().unwrap().body, "the same bytes");
    let json = replay(&server, &["--retries", "0", "--json"]);
    let first: Value = serde_json::from_str(stdout(&json).lines().next().unwrap()).unwrap();
    assert!(
        first["reproduce"]
            .as_str()
            .is_some_and(|c| c.starts_with("printf %s "))
    );
}
