//! The Action (action.yml) run here as a runner runs a composite action: each step's `run`
//! script in bash with its `env` (the `${{ }}` expressions filled in), a fake GITHUB_*
//! environment, GITHUB_PATH carried to the next step, the outputs read from GITHUB_OUTPUT.
//! Its install step fetches the binary from a release served on 127.0.0.1:0, on a PATH
//! without cargo, so the fallback build would fail the test if it were taken.
//!
//! `HOOKCLI_BLESS=1 cargo test --test action` rewrites tests/golden/action-summary.md.

mod common;
#[path = "common/release.rs"]
mod release;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{KEY, Server};
use hookcli::receiver::Faults;
use release::{Release, TempDir, this_target};
use yaml_rust2::{Yaml, YamlLoader};

const BARE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

fn temp_dir(name: &str) -> TempDir {
    TempDir::new("hookcli-action", name)
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn action() -> Yaml {
    let text = std::fs::read_to_string(root().join("action.yml")).unwrap();
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

/// What one run of the action left behind.
struct Ran {
    /// The exit code of the step that failed, or 0.
    code: i32,
    log: String,
    outputs: BTreeMap<String, String>,
    summary: String,
}

/// Runs the action's steps in order with `given` inputs (the rest take their defaults).
fn run_action(dir: &Path, release: &Release, given: &[(&str, &str)]) -> Ran {
    let action = action();
    assert_eq!(action["runs"]["using"].as_str(), Some("composite"));
    let mut inputs: BTreeMap<String, String> = BTreeMap::new();
    for (name, spec) in action["inputs"].as_hash().unwrap() {
        let default = spec["default"].as_str().unwrap_or("").to_string();
        inputs.insert(name.as_str().unwrap().to_string(), default);
    }
    for (name, value) in given {
        assert!(inputs.contains_key(*name), "the action has no input {name}");
        inputs.insert(name.to_string(), value.to_string());
    }
    let temp = dir.join("runner-temp");
    std::fs::create_dir_all(&temp).unwrap();
    let summary = dir.join("step-summary.md");
    std::fs::write(&summary, "").unwrap();
    let mut path = BARE_PATH.to_string();
    let mut steps: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut log = String::new();
    let mut code = 0;
    for (n, step) in action["runs"]["steps"].as_vec().unwrap().iter().enumerate() {
        assert_eq!(step["shell"].as_str(), Some("bash"), "step {n}");
        let script = dir.join(format!("step-{n}.sh"));
        std::fs::write(&script, step["run"].as_str().unwrap()).unwrap();
        let output = dir.join(format!("output-{n}"));
        let add_path = dir.join(format!("path-{n}"));
        std::fs::write(&output, "").unwrap();
        std::fs::write(&add_path, "").unwrap();
        // As the runner does: bash from a file, -e and pipefail, in a bare environment.
        let mut cmd = Command::new("bash");
        cmd.args(["--noprofile", "--norc", "-eo", "pipefail"])
            .arg(&script)
            .current_dir(dir)
            .env_clear()
            .env("PATH", &path)
            .env("HOME", dir)
            .env("NO_COLOR", "1")
            .env("CI", "true")
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_WORKSPACE", dir)
            .env("GITHUB_ACTION_PATH", root())
            .env("GITHUB_REPOSITORY", "hookcli/hookcli")
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("GITHUB_OUTPUT", &output)
            .env("GITHUB_PATH", &add_path)
            .env("RUNNER_TEMP", &temp)
            .env("HOOKCLI_BASE_URL", &release.url);
        if let Some(env) = step["env"].as_hash() {
            for (name, value) in env {
                let value = expand(value.as_str().unwrap(), &inputs, &steps);
                cmd.env(name.as_str().unwrap(), value);
            }
        }
        let out = cmd.output().unwrap();
        log.push_str(&String::from_utf8_lossy(&out.stdout));
        log.push_str(&String::from_utf8_lossy(&out.stderr));
        if let Some(id) = step["id"].as_str() {
            steps.insert(id.to_string(), key_values(&output));
        }
        for line in std::fs::read_to_string(&add_path).unwrap().lines() {
            path = format!("{line}:{path}");
        }
        if !out.status.success() {
            code = out.status.code().unwrap_or(-1);
            break;
        }
    }
    let mut outputs = BTreeMap::new();
    for (name, spec) in action["outputs"].as_hash().unwrap() {
        let value = expand(spec["value"].as_str().unwrap(), &inputs, &steps);
        outputs.insert(name.as_str().unwrap().to_string(), value);
    }
    Ran {
        code,
        log,
        outputs,
        summary: std::fs::read_to_string(&summary).unwrap(),
    }
}

fn key_values(file: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Fills in the `${{ }}` expressions the action uses; any other is a test to extend.
fn expand(
    text: &str,
    inputs: &BTreeMap<String, String>,
    steps: &BTreeMap<String, BTreeMap<String, String>>,
) -> String {
    let pattern = regex::Regex::new(r"\$\{\{\s*(.*?)\s*\}\}").unwrap();
    pattern
        .replace_all(text, |caps: &regex::Captures| {
            let expr = &caps[1];
            if let Some(name) = expr.strip_prefix("inputs.") {
                return inputs[name].clone();
            }
            if let Some(rest) = expr.strip_prefix("steps.") {
                let (id, name) = rest.split_once(".outputs.").unwrap();
                return steps
                    .get(id)
                    .and_then(|o| o.get(name))
                    .cloned()
                    .unwrap_or_default();
            }
            match expr {
                "github.action_path" => root().display().to_string(),
                // Run from ./ in the repository itself: no action_repository.
                "github.action_repository || github.repository" => "hookcli/hookcli".into(),
                _ => panic!("action.yml uses ${{{{ {expr} }}}}: teach this test what it is"),
            }
        })
        .into_owned()
}

/// A release whose latest is the binary under test, built for this machine.
fn release(dir: &Path) -> Release {
    let release = Release::serve(dir);
    let binary = Path::new(env!("CARGO_BIN_EXE_hookcli"));
    release.add("latest/download", &this_target(), binary, None);
    release
}

/// Latencies, times and ports vary run to run; the rest of the summary must not.
fn normalized(summary: &str) -> String {
    let latency = regex::Regex::new(r"\| [0-9.]+ ms \|").unwrap();
    let elapsed = regex::Regex::new(r"\*\* in [0-9.]+m?s ").unwrap();
    let port = regex::Regex::new(r"127\.0\.0\.1:[0-9]+").unwrap();
    let text = latency.replace_all(summary, "| <latency> |");
    let text = elapsed.replace_all(&text, "** in <elapsed> ");
    port.replace_all(&text, "127.0.0.1:<port>").into_owned()
}

#[test]
fn the_action_checks_the_built_in_receiver_and_writes_the_expected_summary() {
    let dir = temp_dir("builtin");
    let release = release(&dir);
    let ran = run_action(&dir, &release, &[("junit", "report.xml")]);
    assert_eq!(ran.code, 0, "{}", ran.log);
    assert!(ran.log.contains("installed hookcli latest"), "{}", ran.log);
    assert!(!ran.log.contains("cargo install"), "{}", ran.log);
    assert_eq!(ran.outputs["failed"], "0");
    assert!(ran.outputs["passed"].parse::<u32>().unwrap() > 0);
    assert_eq!(ran.outputs["report"], "report.xml");
    assert!(dir.join("report.xml").is_file());

    let summary = normalized(&ran.summary);
    let golden = root().join("tests/golden/action-summary.md");
    if std::env::var_os("HOOKCLI_BLESS").is_some() {
        std::fs::write(&golden, &summary).unwrap();
    }
    let expected = std::fs::read_to_string(&golden)
        .unwrap_or_else(|_| panic!("no {}: run with HOOKCLI_BLESS=1", golden.display()));
    assert_eq!(
        summary, expected,
        "the summary differs from tests/golden/action-summary.md (HOOKCLI_BLESS=1 rewrites it)"
    );
}

#[test]
fn the_action_exits_1_on_a_failing_receiver_with_its_failures_annotated() {
    let dir = temp_dir("failing");
    let release = release(&dir);
    let server = Server::start(
        "uponai",
        Some(KEY),
        Faults {
            status: 500,
            ..Faults::default()
        },
    );
    let ran = run_action(
        &dir,
        &release,
        &[
            ("to", server.url.as_str()),
            ("secret", KEY),
            ("wait-for", "5s"),
            (
                "args",
                "--only delivers/,signature/ --retries 0 --backoff 0",
            ),
        ],
    );
    assert_eq!(ran.code, 1, "{}", ran.log);
    assert!(!ran.log.contains(KEY), "the key leaked:\n{}", ran.log);
    let failed: u32 = ran.outputs["failed"].parse().unwrap();
    assert!(failed > 0, "{:?}", ran.outputs);
    let errors = ran
        .log
        .lines()
        .filter(|l| l.starts_with("::error title=hookcli check%3A delivers/"))
        .count();
    assert!(errors > 0, "{}", ran.log);
    assert!(ran.summary.contains("| ❌ failed |"), "{}", ran.summary);
    assert!(ran.summary.contains("(exit 1)"), "{}", ran.summary);
    // Given a key, the signature cases ran rather than being skipped.
    assert!(
        ran.summary
            .lines()
            .any(|l| l.contains("`signature/") && !l.contains("skipped")),
        "{}",
        ran.summary
    );
}
