//! One hookcli.toml for every command: the shared keys (to, platform, secret_env, headers,
//! timeout, retries, expect) are read by send, replay, check, load and listen alike; flags
//! override them; each command names the file it read; load never aims where a file says.

mod common;

use std::path::Path;
use std::process::Output;

use common::{KEY, Server, TempFile, assert_code, hookcli, stderr, stdout};
use hookcli::receiver::Faults;
use serde_json::Value;

/// Runs hookcli in the folder of `file` (so ./hookcli.toml is found without --config).
fn run_in(file: &TempFile, args: &[&str]) -> Output {
    hookcli()
        .current_dir(file.path.parent().expect("a folder"))
        .env("RECEIVER_KEY", KEY)
        .args(args)
        .output()
        .expect("the binary runs")
}

fn settings(text: &str) -> TempFile {
    TempFile::new("hookcli.toml", text.as_bytes())
}

#[test]
fn send_and_replay_take_the_receiver_key_and_rule_from_hookcli_toml() {
    let mut server = Server::start(
        "uponai",
        Some(KEY),
        Faults {
            status: 200,
            ..Faults::default()
        },
    );
    let file = settings(&format!(
        "to = \"{}\"\nsecret_env = \"RECEIVER_KEY\"\nexpect = \"200\"\nheaders = [\"X-Team: voice\"]\n",
        server.url
    ));
    let out = run_in(&file, &["send", "call_ended"]);
    assert_code(&out, 0);
    assert!(
        stderr(&out).contains("reading hookcli.toml"),
        "{}",
        stderr(&out)
    );
    let got = server.next();
    assert_eq!(got.verdict.word(), "valid", "signed with the file's key");
    assert_eq!(common::header(&got, "x-team"), Some("voice"));
    assert!(
        stdout(&out).contains("(200)"),
        "the file's rule: {}",
        stdout(&out)
    );

    let out = run_in(&file, &["replay", "--json"]);
    assert_code(&out, 0);
    assert_eq!(
        server.hits(),
        4,
        "send's one, then replay's three default events"
    );

    // A flag beats the file: --expect 204 fails on the receiver's 200.
    let out = run_in(
        &file,
        &["send", "call_ended", "--expect", "204", "--retries", "0"],
    );
    assert_code(&out, 1);
    assert!(
        stdout(&out).contains("--expect requires exactly 204"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn the_files_platform_is_used_unless_p_is_given() {
    // salpre takes exactly 200.
    let mut server = Server::start(
        "salpre",
        None,
        Faults {
            status: 200,
            ..Faults::default()
        },
    );
    let file = settings(&format!("to = \"{}\"\nplatform = \"salpre\"\n", server.url));
    let out = run_in(&file, &["send", "call_ringing"]);
    assert_code(&out, 0);
    assert_eq!(server.next().event.as_deref(), Some("call_ringing"));
    // -p wins: call_ringing is no uponai event.
    let out = run_in(&file, &["send", "call_ringing", "-p", "uponai"]);
    assert_code(&out, 2);
}

#[test]
fn load_never_aims_where_the_file_says_but_takes_its_own_table() {
    let mut elsewhere = Server::uponai();
    let file = settings(&format!(
        "to = \"{}\"\n\n[load]\nconnections = 1\n",
        elsewhere.url
    ));
    let out = run_in(&file, &["load", "-n", "3", "--json"]);
    assert_code(&out, 0);
    assert!(
        stderr(&out).contains("built-in receiver"),
        "no --to: the built-in receiver, not the file's to: {}",
        stderr(&out)
    );
    assert_eq!(elsewhere.hits(), 0, "the file's receiver got nothing");
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON report");
    assert_eq!(report["connections"], 1, "[load] connections");
}

#[test]
fn checks_table_holds_its_own_keys() {
    let file = settings("[check]\nonly = [\"delivers/\"]\n");
    let out = run_in(&file, &["check", "--json"]);
    assert_code(&out, 0);
    let cases: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON lines"))
        .filter(|l| l["type"] == "case")
        .collect();
    assert!(!cases.is_empty());
    assert!(
        cases
            .iter()
            .all(|c| c["case"].as_str().unwrap().starts_with("delivers/")),
        "{}",
        stdout(&out)
    );
    let both = settings("only = [\"delivers/\"]\n[check]\nonly = [\"signature/\"]\n");
    let out = run_in(&both, &["check", "--list"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("keep one"), "{}", stderr(&out));
}

#[test]
fn an_unknown_key_is_an_error_naming_its_line_and_nothing_is_sent() {
    let mut server = Server::uponai();
    let file = settings(&format!("to = \"{}\"\n\ntimout = \"5s\"\n", server.url));
    for args in [
        &["send", "call_ended"][..],
        &["replay"],
        &["listen", "--port", "0"],
    ] {
        let out = run_in(&file, args);
        assert_code(&out, 2);
        let text = stderr(&out);
        assert!(text.contains("line 3"), "{args:?}: {text}");
        assert!(text.contains("timout"), "{args:?}: {text}");
    }
    assert_eq!(server.hits(), 0);
}

#[test]
fn config_names_another_file_for_every_command() {
    let mut server = Server::uponai();
    let file = settings(&format!(
        "to = \"{}\"\nsecret_env = \"RECEIVER_KEY\"\n",
        server.url
    ));
    let out = hookcli()
        .env("RECEIVER_KEY", KEY)
        .args(["send", "call_ended", "--config", file.path_str()])
        .output()
        .expect("the binary runs");
    assert_code(&out, 0);
    assert!(
        stderr(&out).contains(&format!("reading {}", file.path_str())),
        "{}",
        stderr(&out)
    );
    assert_eq!(server.next().verdict.word(), "valid");
    assert!(Path::new(file.path_str()).exists());
}
