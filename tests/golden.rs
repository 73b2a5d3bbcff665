//! Golden outputs of every command, text and `--json`, with HOOKCLI_SEED fixed and whatever
//! the clock or the network decides (times, ports, latencies, signatures) masked. They pin what
//! users and scripts read, so a refactor that changes a word or a key shows up here.
//!
//! `HOOKCLI_BLESS=1 cargo test --test golden` rewrites tests/golden/ after an intended change;
//! the diff then shows exactly what changed, for the CHANGELOG.

mod common;

use std::path::PathBuf;

use common::{KEY, TempFile, hookcli};
use regex::Regex;

/// Runs hookcli with a seed, returning `$ command`, exit code, stdout and stderr as one text.
fn capture(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = hookcli()
        .env("HOOKCLI_SEED", "7")
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("the hookcli binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stdout.contains(KEY) && !stderr.contains(KEY),
        "the key leaked: {args:?}"
    );
    format!(
        "$ hookcli {}\nexit {}\n--- stdout\n{}--- stderr\n{}",
        mask(&args.join(" ")),
        out.status.code().unwrap_or(-1),
        mask_stdout(&stdout),
        mask(&stderr)
    )
}

/// Masks what differs run to run in text: ports, times, latencies, signatures, temp paths.
fn mask(text: &str) -> String {
    let rules: &[(&str, &str)] = &[
        (r"/tmp/hookcli-test-[A-Za-z0-9_.-]+", "TMPFILE"),
        (r"127\.0\.0\.1:\d+", "LOCALHOST:PORT"),
        (
            r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?",
            "ISO",
        ),
        (r"\b\d{2}:\d{2}:\d{2}(\.\d+)?\b", "HMS"),
        (r"\b1\d{12}\b", "TS_MS"),
        (r"\b1\d{9}\b", "TS_S"),
        (r"\b[0-9a-f]{64}\b", "HEX"),
        // Latencies and rates: digits with an optional fraction before a unit.
        (
            r"\b\d+(\.\d+)?\s?(ns|µs|us|ms|s|m|/s|req/s|MB|KB|kB|B|MiB|KiB)\b",
            "N$2",
        ),
        (r"\b\d+\.\d+\b", "F"),
        // Which delivery was the slowest is the scheduler's choice.
        (r"slowest (\S+) \([^)]*\)", "slowest $1 (EVENT)"),
        // Table cells are padded to the widest value, which the masks above changed.
        (r" {2,}", " "),
        (r"─+", "─"),
    ];
    let mut text = text.to_string();
    for (pattern, replacement) in rules {
        text = Regex::new(pattern)
            .expect("a valid pattern")
            .replace_all(&text, *replacement)
            .into_owned();
    }
    text
}

/// JSON lines keep their keys and stable values; every number that is a time, a latency or a
/// rate is zeroed (integers that count things stay).
fn mask_stdout(text: &str) -> String {
    text.lines()
        .map(
            |line| match serde_json::from_str::<serde_json::Value>(line) {
                Ok(mut value) if value.is_object() || value.is_array() => {
                    zero_volatile(&mut value, "");
                    mask(&value.to_string())
                }
                _ => mask(line),
            },
        )
        .map(|line| line + "\n")
        .collect()
}

fn zero_volatile(value: &mut serde_json::Value, key: &str) {
    use serde_json::Value;
    let volatile = |key: &str| {
        // Settings echoed back are stable; measurements are not.
        let setting = matches!(key, "timeout_ms" | "duration_ms" | "platform_timeout_ms");
        !setting && key.ends_with("_ms")
            || key.ends_with("_s")
            || key.contains("latency")
            || key.contains("per_second")
            || key.contains("rate")
            || key.contains("elapsed")
            || key.contains("histogram")
            || key.contains("cpu")
            || key.contains("memory")
            || key.contains("percentile")
            || key.starts_with('p') && key[1..].chars().all(|c| c.is_ascii_digit() || c == '_')
            || matches!(
                key,
                "min" | "max" | "mean" | "stdev" | "start" | "end" | "ms"
            )
    };
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                zero_volatile(v, k);
            }
        }
        Value::Array(items) => {
            for item in items {
                zero_volatile(item, key);
            }
        }
        Value::Number(n) if volatile(key) || n.is_f64() => *value = Value::from(0),
        // An encoded histogram changes with every latency.
        Value::String(_) if key.contains("histogram") => *value = Value::from("HIST"),
        _ => {}
    }
}

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.txt"))
}

/// Compares with tests/golden/NAME.txt, or writes it under HOOKCLI_BLESS.
#[track_caller]
fn golden(name: &str, actual: &str) {
    let path = golden_path(name);
    if std::env::var_os("HOOKCLI_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("no {}: run with HOOKCLI_BLESS=1", path.display()));
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (e, a))| e != a)
            .take(8)
            .map(|(i, (e, a))| format!("line {}:\n  - {e}\n  + {a}", i + 1))
            .collect();
        panic!(
            "{name} differs from {} ({} lines expected, {} got):\n{}\n--- whole output\n{actual}",
            path.display(),
            expected.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}

fn key_env() -> [(&'static str, &'static str); 1] {
    [("HOOKCLI_SECRET", KEY)]
}

#[test]
fn catalog_listings() {
    let mut all = String::new();
    for args in [
        &["platforms"][..],
        &["platforms", "--json"],
        &["events"],
        &["events", "-p", "salpre", "--json"],
        &["lifecycles"],
        &["lifecycles", "--json"],
        &["show", "call_ended"],
        &["show", "call_ended", "-p", "salpre", "--compact"],
    ] {
        all += &capture(args, &[]);
    }
    golden("catalog", &all);
}

#[test]
fn send_outputs() {
    let mut all = String::new();
    for args in [
        &["send", "call_ended"][..],
        &["send", "call_ended", "--json"],
        &["send", "call_ended", "--expect", "200"],
        &["send", "call_ended", "--dry-run"],
        &["send", "call_ended", "--dry-run", "--json"],
        &["send", "call_ended", "-p", "salpre"],
        &["send", "call_analyzed", "--to", "ftp://x"],
        &["send", "nope"],
    ] {
        all += &capture(args, &key_env());
    }
    golden("send", &all);
}

#[test]
fn replay_outputs() {
    let mut all = String::new();
    for args in [
        &["replay"][..],
        &["replay", "--json"],
        &["replay", "--expect", "200"],
        &["replay", "transfer", "--events", "all", "-p", "uponai"],
        &["replay", "-p", "callevents", "--json"],
    ] {
        all += &capture(args, &key_env());
    }
    golden("replay", &all);
}

#[test]
fn check_outputs() {
    let mut all = String::new();
    for args in [
        &["check", "--list"][..],
        &["check", "--list", "--json"],
        &["check", "--only", "signature/,delivers/", "--json"],
        &["check", "--only", "delivers/", "--expect", "200"],
        &["check", "-p", "salpre", "--only", "delivers/"],
    ] {
        all += &capture(args, &key_env());
    }
    golden("check", &all);
}

#[test]
fn load_outputs() {
    let mut all = String::new();
    for args in [
        &["load", "-n", "20", "-c", "2", "--json"][..],
        &["load", "-n", "20", "-c", "2", "--expect", "200", "--json"],
        &["load", "-n", "5", "-c", "1", "-p", "salpre", "--json"],
    ] {
        all += &capture(args, &key_env());
    }
    golden("load", &all);
}

#[test]
fn sign_and_verify_outputs() {
    let body = TempFile::new("body.json", br#"{"event":"call_ended"}"#);
    let mut all = String::new();
    for args in [
        &["sign", "--timestamp", "1714608475945", body.path_str()][..],
        &[
            "verify",
            "--now",
            "1714608475945",
            "--signature",
            "v=1714608475945,d=00",
            body.path_str(),
        ],
    ] {
        all += &capture(args, &key_env());
    }
    golden("sign", &all);
}
