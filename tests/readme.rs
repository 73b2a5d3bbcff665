//! The doc test: every `$ hookcli ...` line of the ```console blocks of README.md and
//! docs/*.md runs against the built binary, so the docs cannot drift from the command line.
//!
//! A line passes when it is not a usage error (exit 2) and nothing panics; a line whose block
//! shows `error:` right after it is the documented usage error and must exit 2. Receivers in
//! the docs (`http://localhost:8080/...`, `http://127.0.0.1:3000/...`) are rewritten to one
//! in-process receiver; `listen` lines get `--port 0`, run until their ready line, and stop.
//! A line ending in `# not run: why` is skipped and counted.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{KEY, Server, assert_no_panic, hookcli, stderr, stdout};

/// One `$ ...` line of a console block.
#[derive(Debug, Clone)]
struct DocLine {
    place: String,
    command: String,
    /// The block shows `error:` right after it: the documented usage error.
    expects_usage_error: bool,
    /// Why it is not run (`# not run: ...`), if so.
    skipped: Option<String>,
}

/// The console blocks of one file, each a list of its `$` lines in order.
fn console_blocks(path: &Path) -> Vec<Vec<DocLine>> {
    let text = std::fs::read_to_string(path).expect("a doc file");
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut current: Option<Vec<DocLine>> = None;
    for (i, line) in lines.iter().enumerate() {
        let line = line.trim_end();
        if current.is_none() {
            if line == "```console" {
                current = Some(Vec::new());
            }
        } else if line == "```" {
            blocks.extend(current.take());
        } else if let (Some(block), Some(command)) = (current.as_mut(), line.strip_prefix("$ ")) {
            let next = lines.get(i + 1).copied().unwrap_or("");
            block.push(DocLine {
                place: format!("{name}:{}", i + 1),
                command: command.to_string(),
                expects_usage_error: next.starts_with("error:"),
                skipped: command
                    .split_once("# not run:")
                    .map(|(_, why)| why.trim().to_string()),
            });
        }
    }
    assert!(
        current.is_none(),
        "{name}: a ```console block is not closed"
    );
    blocks
}

fn doc_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.expect("a docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    files.insert(0, root.join("README.md"));
    files
}

fn runs_hookcli(command: &str) -> bool {
    let words: Vec<&str> = command
        .split(|c: char| c.is_whitespace() || c == '(')
        .collect();
    words.contains(&"hookcli")
}

/// The docs' example receivers become the test's receiver; listen binds a free port.
fn rewrite(command: &str, receiver: &str) -> String {
    let receiver = receiver.trim_end_matches("/webhook");
    let origins = regex::Regex::new(r"http://(localhost|127\.0\.0\.1):[0-9]+").unwrap();
    let command = origins.replace_all(command, receiver).into_owned();
    if !command.contains("hookcli listen") {
        return command;
    }
    let port = regex::Regex::new(r"--port [0-9]+").unwrap();
    if port.is_match(&command) {
        port.replace_all(&command, "--port 0").into_owned()
    } else {
        command.replacen("hookcli listen", "hookcli listen --port 0", 1)
    }
}

/// bash in the block's folder under `timeout`, which ends a line that would hang (exit 124
/// fails the test).
fn shell(command: &str, dir: &Path) -> Command {
    let mut cmd = Command::new("timeout");
    cmd.args(["60", "bash", "-c", command]);
    in_doc_env(cmd, dir)
}

/// The built hookcli first on PATH, the example keys set to the receiver's key, and none of
/// the caller's hookcli settings.
fn in_doc_env(mut cmd: Command, dir: &Path) -> Command {
    let binary = PathBuf::from(hookcli().get_program());
    let bin_dir = binary.parent().expect("the binary's folder");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    cmd.current_dir(dir)
        .env("PATH", path)
        .env("HOME", dir)
        .env("NO_COLOR", "1")
        .env("UPONAI_API_KEY", KEY)
        .env("KEY", KEY)
        .stdin(Stdio::null());
    for var in [
        "HOOKCLI_SECRET",
        "RETELL_API_KEY",
        "HOOKCLI_PLATFORM",
        "HOOKCLI_PAYLOADS",
        "HOOKCLI_SEED",
        "HOOKCLI_CONFIG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Starts a listen line, reads stderr to its ready line (or to its exit), then stops it.
fn run_listen(command: &str, dir: &Path) -> Output {
    // bash execs hookcli (no `timeout` in between), so killing the child stops listen itself.
    let mut bash = Command::new("bash");
    bash.args(["-c", &format!("exec {command}")]);
    let mut child = in_doc_env(bash, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash starts");
    let mut err = BufReader::new(child.stderr.take().expect("piped stderr"));
    let mut seen = String::new();
    let mut line = String::new();
    while err.read_line(&mut line).expect("read stderr") > 0 {
        seen.push_str(&line);
        if line.starts_with("listening on ") {
            let _ = child.kill();
            break;
        }
        line.clear();
    }
    let mut out = child.wait_with_output().expect("listen ends");
    out.stderr = seen.into_bytes();
    out
}

fn check_line(line: &DocLine, command: &str, dir: &Path) {
    let out = if command.contains("hookcli listen") {
        run_listen(command, dir)
    } else {
        shell(command, dir).output().expect("bash runs")
    };
    assert_no_panic(&out);
    let code = out.status.code();
    let context = format!(
        "{}: `{}` (run as `{command}`) exited {code:?}\nstdout:\n{}\nstderr:\n{}",
        line.place,
        line.command,
        stdout(&out),
        stderr(&out)
    );
    assert_ne!(code, Some(124), "timed out: {context}");
    if line.expects_usage_error {
        assert_eq!(code, Some(2), "the documented error: {context}");
    } else {
        assert_ne!(code, Some(2), "a usage error: {context}");
    }
}

/// Runs a block's lines in order in a folder of its own (a `printf > body.json` line feeds
/// the next), returning (run, skipped).
fn run_block(block: &[DocLine], receiver: &str, dir: &Path) -> (usize, usize) {
    std::fs::create_dir_all(dir).expect("a block folder");
    let (mut run, mut skipped) = (0, 0);
    for line in block {
        if line.skipped.is_some() {
            skipped += 1;
            continue;
        }
        let command = rewrite(&line.command, receiver);
        if runs_hookcli(&line.command) {
            check_line(line, &command, dir);
            run += 1;
        } else {
            let out = shell(&command, dir).output().expect("bash runs");
            assert!(
                out.status.success(),
                "{}: setup `{command}` failed",
                line.place
            );
        }
    }
    (run, skipped)
}

/// A line for `cargo test -- --nocapture`: the test harness owns stderr, so eprintln! is fine.
#[allow(clippy::disallowed_macros)]
fn note(text: &str) {
    eprintln!("note: {text}");
}

#[test]
fn every_console_command_in_the_docs_runs() {
    let mut server = Server::uponai();
    let blocks: Vec<Vec<DocLine>> = doc_files().iter().flat_map(|f| console_blocks(f)).collect();
    let root = std::env::temp_dir().join(format!("hookcli-readme-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    // Blocks are independent: run them side by side to stay within a few seconds.
    let counts: Vec<(usize, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = blocks
            .iter()
            .enumerate()
            .map(|(i, block)| {
                let (url, dir) = (server.url.clone(), root.join(i.to_string()));
                s.spawn(move || run_block(block, &url, &dir))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a doc block"))
            .collect()
    });
    let _ = std::fs::remove_dir_all(&root);
    let run: usize = counts.iter().map(|c| c.0).sum();
    let skipped: usize = counts.iter().map(|c| c.1).sum();
    note(&format!(
        "doc commands: {run} run, {skipped} skipped (# not run)"
    ));
    assert!(
        run >= 30,
        "only {run} doc commands found: is the extraction broken?"
    );
    assert!(skipped <= 3, "{skipped} doc commands are not run");
    // The rewritten --to lines reached the test's receiver.
    assert!(
        server.hits() > 0,
        "no doc command reached the test receiver"
    );
}

#[test]
fn the_readme_stays_a_front_door() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let lines = readme.lines().count();
    assert!(
        lines <= 300,
        "README.md has {lines} lines; move details to docs/"
    );
    for command in [
        "cargo run --release -- send call_ended",
        "cargo test --locked",
    ] {
        assert!(
            readme.contains(&format!("\n    {command}\n")),
            "README's own command `{command}` is gone"
        );
    }
}

#[test]
fn every_readme_link_to_docs_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let links = regex::Regex::new(r"\]\(((?:docs|bench|schemas|payloads)/[^)#]*)").unwrap();
    for link in links.captures_iter(&readme) {
        let target = root.join(&link[1]);
        assert!(
            target.exists(),
            "README links to {}, which is missing",
            &link[1]
        );
    }
}
