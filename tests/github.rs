//! `check --format github` against hookcli's own receiver: annotations on stdout, the job
//! summary appended to $GITHUB_STEP_SUMMARY, the counts in $GITHUB_OUTPUT.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{KEY, Server, assert_code, assert_no_panic, closed_port, hookcli, stderr, stdout};
use hookcli::receiver::Faults;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hookcli-github-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `hookcli check --format github` run in `dir` (no stray hookcli.toml), as a step on a runner:
/// GITHUB_STEP_SUMMARY and GITHUB_OUTPUT name files there, already holding an earlier step's
/// line that must stay.
fn check(dir: &Path, url: &str, extra: &[&str]) -> Output {
    std::fs::write(dir.join("summary.md"), "earlier step\n").unwrap();
    std::fs::write(dir.join("output.txt"), "earlier=1\n").unwrap();
    hookcli()
        .current_dir(dir)
        .args(["check", "--format", "github", "--to", url, "--secret", KEY])
        .args(["--retries", "0", "--backoff", "0", "--timeout", "5s"])
        .args(extra)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", dir.join("summary.md"))
        .env("GITHUB_OUTPUT", dir.join("output.txt"))
        .output()
        .unwrap()
}

/// The summary table's rows: (case, result word), in order.
fn rows(summary: &str) -> Vec<(String, String)> {
    summary
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split(" | ").collect();
            let case = cells[0].trim_start_matches("| ").trim_matches('`');
            let result = cells[1].split(' ').next_back().unwrap();
            (case.to_string(), result.to_string())
        })
        .collect()
}

fn outputs(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(dir.join("output.txt"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn a_failing_receiver_gets_an_error_annotation_per_failed_case_and_a_summary_failures_first() {
    let dir = temp_dir("failing");
    let server = Server::start(
        "uponai",
        Some(KEY),
        Faults {
            status: 500,
            ..Faults::default()
        },
    );
    let out = check(&dir, &server.url, &[]);
    assert_code(&out, 1);
    assert_no_panic(&out);
    let text = stdout(&out);
    assert!(!text.contains(KEY) && !stderr(&out).contains(KEY));

    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(summary.starts_with("earlier step\n### hookcli check · uponai · http://127.0.0.1:"));
    let rows = rows(&summary);
    let failed: Vec<&str> = rows
        .iter()
        .filter(|(_, r)| r == "failed")
        .map(|(c, _)| c.as_str())
        .collect();
    assert!(
        failed.contains(&"delivers/call_ended"),
        "a 500 fails the call_ended case:\n{summary}"
    );
    // Failures first, then warnings, skipped and passed.
    let order = ["failed", "warning", "skipped", "passed"];
    let ranks: Vec<usize> = rows
        .iter()
        .map(|(_, r)| order.iter().position(|o| o == r).unwrap())
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{summary}");
    // Every failed row says why: the 500.
    for line in summary.lines().filter(|l| l.contains("| ❌ failed |")) {
        assert!(line.contains("500"), "{line}");
    }
    assert!(
        summary.contains(&format!("{} failed", failed.len())),
        "{summary}"
    );

    // One ::error per failed case, titled with it, on one line each; ::warning per warning.
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("::error ")).collect();
    assert_eq!(errors.len(), failed.len(), "{text}");
    for case in &failed {
        let title = format!("::error title=hookcli check%3A {case}::");
        assert!(
            errors.iter().any(|l| l.starts_with(&title)),
            "{title}\n{text}"
        );
    }
    let warnings = rows.iter().filter(|(_, r)| r == "warning").count();
    let warning_lines = text.lines().filter(|l| l.starts_with("::warning ")).count();
    assert_eq!(warning_lines, warnings, "{text}");
    // The table is still there for the log.
    assert!(text.contains("delivers/call_ended"));

    let outputs = outputs(&dir);
    assert_eq!(outputs["earlier"], "1");
    assert_eq!(outputs["failed"], failed.len().to_string());
    let passed = rows.iter().filter(|(_, r)| r == "passed").count();
    assert_eq!(outputs["passed"], passed.to_string());
}

#[test]
fn a_passing_receiver_gets_no_error_and_a_green_summary() {
    let dir = temp_dir("passing");
    let server = Server::uponai();
    let out = check(&dir, &server.url, &[]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(!text.contains("::error"), "{text}");
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(summary.contains(" 0 failed"), "{summary}");
    assert!(summary.contains("(exit 0)"), "{summary}");
    assert!(rows(&summary).iter().all(|(_, r)| r != "failed"));
    assert_eq!(outputs(&dir)["failed"], "0");
}

#[test]
fn an_unreachable_receiver_is_annotated_and_summarized() {
    let dir = temp_dir("unreachable");
    let url = format!("http://127.0.0.1:{}/webhook", closed_port());
    let out = check(&dir, &url, &[]);
    assert_code(&out, 3);
    assert_no_panic(&out);
    let text = stdout(&out);
    assert!(
        text.starts_with("::error title=hookcli check::the receiver at "),
        "{text}"
    );
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(summary.contains("**no case ran** (exit 3)"), "{summary}");
    assert!(stderr(&out).contains("did not accept a connection"));
}

#[test]
fn without_a_step_summary_file_it_says_so_and_still_annotates() {
    let dir = temp_dir("no-summary");
    let server = Server::start(
        "uponai",
        Some(KEY),
        Faults {
            status: 500,
            ..Faults::default()
        },
    );
    let out = hookcli()
        .current_dir(&dir)
        .args([
            "check",
            "--format",
            "github",
            "--to",
            &server.url,
            "--secret",
            KEY,
        ])
        .args(["--retries", "0", "--backoff", "0", "--only", "event/"])
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_OUTPUT")
        .output()
        .unwrap();
    assert_code(&out, 1);
    assert!(stdout(&out).contains("::error title=hookcli check%3A event/"));
    assert!(
        stderr(&out).contains("GITHUB_STEP_SUMMARY is not set"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn format_json_is_json_and_conflicts_with_json_flag() {
    let out = hookcli()
        .args(["check", "--list", "--format", "json"])
        .current_dir(temp_dir("list-json"))
        .output()
        .unwrap();
    assert_code(&out, 0);
    let first = stdout(&out).lines().next().unwrap().to_string();
    assert!(first.starts_with("{\"case\":"), "{first}");
    let out = hookcli()
        .args(["check", "--json", "--format", "github"])
        .output()
        .unwrap();
    assert_code(&out, 2);
}
