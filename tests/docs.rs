//! `hookcli completions` and `hookcli man`: the script is sourced by a real bash and its
//! completion function driven as bash drives it on Tab; the page is rendered by man.

mod common;

use std::process::Command;

use common::{assert_code, assert_no_panic, hookcli, run, stderr, stdout};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hookcli-docs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temp dir");
    dir
}

/// What bash's completion function offers for `words`, the last one being completed, as
/// `complete -F` calls it: COMP_WORDS/COMP_CWORD set, arguments (command, word, previous word).
fn bash_complete(script: &str, words: &[&str]) -> Vec<String> {
    // One folder per call: the tests run in parallel.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = temp_dir(&format!("bash-{n}"));
    let file = dir.join("hookcli.bash");
    std::fs::write(&file, script).unwrap();
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cword = words.len() - 1;
    let driver = format!(
        "source '{}' || exit 9\n\
         complete -p hookcli >/dev/null || exit 8\n\
         COMP_WORDS=({})\nCOMP_CWORD={cword}\n\
         COMP_LINE=\"${{COMP_WORDS[*]}}\"\nCOMP_POINT=${{#COMP_LINE}}\n\
         _hookcli hookcli \"${{COMP_WORDS[$COMP_CWORD]}}\" \"${{COMP_WORDS[$((COMP_CWORD-1))]}}\"\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file.display(),
        quoted.join(" ")
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &driver])
        .output()
        .expect("bash runs");
    assert!(out.status.success(), "bash: {}", stderr(&out));
    stdout(&out)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn bash_script() -> String {
    let out = run(&["completions", "bash"]);
    assert_code(&out, 0);
    stdout(&out)
}

#[test]
fn bash_completes_an_event_from_the_catalog() {
    let script = bash_script();
    assert_eq!(
        bash_complete(&script, &["hookcli", "send", "call_e"]),
        ["call_ended"]
    );
}

#[test]
fn bash_completes_platforms_lifecycles_and_subcommands() {
    let script = bash_script();
    let platforms = bash_complete(&script, &["hookcli", "send", "-p", "re"]);
    assert_eq!(platforms, ["retell"], "aliases are platform names too");
    let lifecycles = bash_complete(&script, &["hookcli", "replay", "dial"]);
    assert_eq!(lifecycles, ["dial-failed"]);
    let commands = bash_complete(&script, &["hookcli", "com"]);
    assert_eq!(commands, ["completions"]);
}

#[test]
fn an_overlay_event_is_completed_too() {
    let dir = temp_dir("overlay");
    let events = dir.join("uponai/events");
    std::fs::create_dir_all(&events).unwrap();
    std::fs::write(
        events.join("custom_thing.json"),
        r#"{"event": "custom_thing", "call": {"call_id": "{{call_id}}"}}"#,
    )
    .unwrap();
    let out = run(&["--payloads", dir.to_str().unwrap(), "completions", "bash"]);
    assert_code(&out, 0);
    let completed = bash_complete(&stdout(&out), &["hookcli", "send", "custom_t"]);
    assert_eq!(completed, ["custom_thing"], "{}", stderr(&out));
}

#[test]
fn every_shell_gets_a_script_with_the_platforms() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = run(&["completions", shell]);
        assert_code(&out, 0);
        assert_no_panic(&out);
        let script = stdout(&out);
        assert!(
            script.contains("uponai"),
            "{shell}: no platform in the script"
        );
        if matches!(shell, "bash" | "zsh" | "fish") {
            assert!(
                script.contains("call_ended"),
                "{shell}: no event in the script"
            );
        }
    }
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let out = run(&["completions", "tcsh"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("tcsh"), "{}", stderr(&out));
    assert_no_panic(&out);
}

fn man_installed() -> bool {
    Command::new("man")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A note in the test's output (shown with --nocapture) for an assertion skipped.
#[allow(clippy::disallowed_macros)]
fn note(text: &str) {
    eprintln!("note: {text}");
}

/// Renders a page with `man -l` as a reader would see it.
fn render(page: &std::path::Path) -> String {
    let out = Command::new("man")
        .arg("-l")
        .arg(page)
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .expect("man runs");
    assert!(out.status.success(), "man -l: {}", stderr(&out));
    stdout(&out)
}

#[test]
fn man_prints_a_page_that_man_renders() {
    let out = run(&["man"]);
    assert_code(&out, 0);
    let page = stdout(&out);
    assert!(
        page.starts_with(".ie") || page.contains(".TH hookcli"),
        "{page}"
    );
    if !man_installed() {
        note("`man` is not installed; the page was not rendered");
        return;
    }
    let dir = temp_dir("man-stdout");
    let file = dir.join("hookcli.1");
    std::fs::write(&file, &page).unwrap();
    let shown = render(&file);
    assert!(shown.contains("NAME"), "{shown}");
    assert!(shown.contains("SUBCOMMANDS"), "{shown}");
    assert!(shown.contains("hookcli-send(1)"), "{shown}");
}

#[test]
fn man_out_writes_a_page_per_subcommand() {
    let dir = temp_dir("man-out").join("pages");
    let out = hookcli().args(["man", "--out"]).arg(&dir).output().unwrap();
    assert_code(&out, 0);
    for name in [
        "hookcli.1",
        "hookcli-send.1",
        "hookcli-check.1",
        "hookcli-man.1",
    ] {
        assert!(dir.join(name).is_file(), "{name} missing");
    }
    if !man_installed() {
        note("`man` is not installed; the pages were not rendered");
        return;
    }
    let shown = render(&dir.join("hookcli-send.1"));
    assert!(shown.contains("--to"), "{shown}");
    assert!(shown.contains("Receiver URL"), "{shown}");
}

#[test]
fn man_out_into_a_file_is_a_usage_error() {
    let dir = temp_dir("man-file");
    let file = dir.join("taken");
    std::fs::write(&file, "x").unwrap();
    let out = hookcli()
        .args(["man", "--out"])
        .arg(&file)
        .output()
        .unwrap();
    assert_code(&out, 2);
    assert_no_panic(&out);
    let err = stderr(&out);
    assert!(err.contains("--out") && err.contains("hint:"), "{err}");
}
