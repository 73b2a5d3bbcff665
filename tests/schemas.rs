//! Every `--json` output against its JSON Schema in schemas/: real commands (into hookcli's
//! built-in receiver, or a `listen` child), every stdout line validated. Keys may be added to
//! an output (the schemas allow them), but a key renamed or removed fails here: each schema
//! requires every key it describes, and a renamed copy of each real line must be refused.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;
use std::sync::OnceLock;

use common::*;
use jsonschema::{Registry, Validator};
use serde_json::Value;

/// Every schema file, by the name the table uses. `include_str!` rebuilds the test when one
/// changes.
const SCHEMAS: &[(&str, &str)] = &[
    ("delivery", include_str!("../schemas/delivery.schema.json")),
    ("dry-run", include_str!("../schemas/dry-run.schema.json")),
    (
        "replay-summary",
        include_str!("../schemas/replay-summary.schema.json"),
    ),
    (
        "check-case",
        include_str!("../schemas/check-case.schema.json"),
    ),
    (
        "check-summary",
        include_str!("../schemas/check-summary.schema.json"),
    ),
    (
        "check-list",
        include_str!("../schemas/check-list.schema.json"),
    ),
    (
        "listen-request",
        include_str!("../schemas/listen-request.schema.json"),
    ),
    (
        "platforms",
        include_str!("../schemas/platforms.schema.json"),
    ),
    ("events", include_str!("../schemas/events.schema.json")),
    (
        "lifecycles",
        include_str!("../schemas/lifecycles.schema.json"),
    ),
    (
        "load-report",
        include_str!("../schemas/load-report.schema.json"),
    ),
    ("llm", include_str!("../schemas/llm.schema.json")),
    ("llm-list", include_str!("../schemas/llm-list.schema.json")),
];

/// Where the schemas live by `$id`; delivery's `receiver` items `$ref` listen-request's.
const BASE: &str = "https://github.com/hookcli/hookcli/schemas/";

fn schema(name: &str) -> Value {
    let text = SCHEMAS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no schema named {name}"))
        .1;
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}.schema.json is JSON: {e}"))
}

/// A validator per schema, each able to resolve the others' `$id`s without a network.
fn validators() -> BTreeMap<&'static str, Validator> {
    let registry = Registry::new()
        .extend(
            SCHEMAS
                .iter()
                .map(|(name, _)| (format!("{BASE}{name}.schema.json"), schema(name))),
        )
        .expect("the schema ids are URIs")
        .prepare()
        .expect("the schemas resolve");
    SCHEMAS
        .iter()
        .map(|(name, _)| {
            let validator = jsonschema::options()
                .with_registry(&registry)
                .build(&schema(name))
                .unwrap_or_else(|e| panic!("{name}.schema.json compiles: {e}"));
            (*name, validator)
        })
        .collect()
}

/// How a command's stdout lines map to schemas.
#[derive(Clone, Copy)]
enum Lines {
    /// Exactly one line.
    One(&'static str),
    /// One line or more, all of one shape.
    Each(&'static str),
    /// One line or more of the first shape, then a last line of the second (a summary).
    ThenLast(&'static str, &'static str),
}

/// One real line of output and the schema it must meet.
struct Sample {
    command: String,
    schema: &'static str,
    line: Value,
}

fn samples(command: &str, out: &Output, lines: Lines) -> Vec<Sample> {
    parse(command, &stdout(out), &stderr(out), lines)
}

/// Each stdout line parsed and paired with its schema.
fn parse(command: &str, text: &str, err: &str, lines: Lines) -> Vec<Sample> {
    let values: Vec<Value> = text
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| {
                panic!("`{command}`: a stdout line is not JSON ({e}): {line}\nstderr:\n{err}")
            })
        })
        .collect();
    assert!(
        !values.is_empty(),
        "`{command}` printed nothing on stdout\nstderr:\n{err}"
    );
    let last = values.len() - 1;
    values
        .into_iter()
        .enumerate()
        .map(|(i, line)| {
            let schema = match lines {
                Lines::One(s) => {
                    assert_eq!(last, 0, "`{command}` prints one line:\n{text}");
                    s
                }
                Lines::Each(s) => s,
                Lines::ThenLast(_, s) if i == last => s,
                Lines::ThenLast(s, _) => s,
            };
            Sample {
                command: command.to_string(),
                schema,
                line,
            }
        })
        .collect()
}

/// A command run to the end: its arguments, its exit code, how its lines map to schemas.
struct Run {
    args: &'static [&'static str],
    code: i32,
    lines: Lines,
}

/// The commands that need nothing but hookcli: the built-in receiver where one is needed.
const RUNS: &[Run] = &[
    Run {
        args: &["send", "call_ended", "--json"],
        code: 0,
        lines: Lines::One("delivery"),
    },
    Run {
        args: &["send", "call_ended", "-p", "salpre", "--json"],
        code: 0,
        lines: Lines::One("delivery"),
    },
    // An answer the platform reads: `response`, judged.
    Run {
        args: &["send", "call_inbound", "--json"],
        code: 0,
        lines: Lines::One("delivery"),
    },
    Run {
        args: &["send", "function_call", "--args", "{\"id\": 1}", "--json"],
        code: 0,
        lines: Lines::One("delivery"),
    },
    Run {
        args: &["replay", "inbound", "--json"],
        code: 0,
        lines: Lines::ThenLast("delivery", "replay-summary"),
    },
    Run {
        args: &["send", "call_ended", "--dry-run", "--json"],
        code: 0,
        lines: Lines::One("dry-run"),
    },
    // A dry run connects nowhere: the URL is only printed.
    Run {
        args: &[
            "send",
            "call_ended",
            "--dry-run",
            "--json",
            "--to",
            "http://127.0.0.1:9/webhook",
            "--secret",
            KEY,
        ],
        code: 0,
        lines: Lines::One("dry-run"),
    },
    // The default events leave transcript_updated out: `filtered` lines.
    Run {
        args: &["replay", "--json"],
        code: 0,
        lines: Lines::ThenLast("delivery", "replay-summary"),
    },
    Run {
        args: &["replay", "transfer", "--events", "all", "--json"],
        code: 0,
        lines: Lines::ThenLast("delivery", "replay-summary"),
    },
    Run {
        args: &["replay", "-p", "callevents", "--calls", "2", "--json"],
        code: 0,
        lines: Lines::ThenLast("delivery", "replay-summary"),
    },
    Run {
        args: &["check", "--json", "--only", "signature/,delivers/"],
        code: 0,
        lines: Lines::ThenLast("check-case", "check-summary"),
    },
    Run {
        args: &["check", "--list", "--json"],
        code: 0,
        lines: Lines::Each("check-list"),
    },
    Run {
        args: &["platforms", "--json"],
        code: 0,
        lines: Lines::Each("platforms"),
    },
    Run {
        args: &["events", "--json"],
        code: 0,
        lines: Lines::Each("events"),
    },
    Run {
        args: &["events", "-p", "salpre", "--json"],
        code: 0,
        lines: Lines::Each("events"),
    },
    Run {
        args: &["lifecycles", "--json"],
        code: 0,
        lines: Lines::Each("lifecycles"),
    },
    Run {
        args: &["load", "-n", "20", "-c", "2", "--json"],
        code: 0,
        lines: Lines::One("load-report"),
    },
    Run {
        args: &[
            "load",
            "--lifecycle",
            "call",
            "-n",
            "6",
            "-c",
            "2",
            "--json",
        ],
        code: 0,
        lines: Lines::One("load-report"),
    },
    // Against the built-in scripted server: every case, every turn kind.
    Run {
        args: &["llm", "--silence", "10ms", "--json"],
        code: 0,
        lines: Lines::Each("llm"),
    },
    Run {
        args: &["llm", "-p", "vapi", "--json"],
        code: 0,
        lines: Lines::Each("llm"),
    },
    Run {
        args: &["llm", "--list", "--json"],
        code: 0,
        lines: Lines::Each("llm-list"),
    },
];

/// Runs the table, two at a time (the machine has few cores, most runs are short).
fn built_in_samples() -> Vec<Sample> {
    let mut all = Vec::new();
    for pair in RUNS.chunks(2) {
        let outputs: Vec<(String, Output, &Run)> = std::thread::scope(|scope| {
            let handles: Vec<_> = pair
                .iter()
                .map(|r| scope.spawn(move || (r.args.join(" "), run(r.args), r)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("the run thread finishes"))
                .collect()
        });
        for (command, out, r) in outputs {
            assert_no_panic(&out);
            assert_code(&out, r.code);
            all.extend(samples(&command, &out, r.lines));
        }
    }
    all
}

/// The error shapes: a receiver that answers 500 (a `listen --json` child, whose own lines
/// are samples too), a request to a path it does not serve, and a port nothing listens on.
fn failure_samples() -> Vec<Sample> {
    let mut all = Vec::new();
    let listener = Listener::start(&["--secret", KEY, "--status", "500", "--json"]);
    let failed = listener.send(&[
        "call_ended",
        "--secret",
        KEY,
        "--json",
        "--expect",
        "204",
        "--retries",
        "1",
        "--backoff",
        "0",
    ]);
    assert_code(&failed, 1);
    all.extend(samples(
        "send --expect 204 (500)",
        &failed,
        Lines::One("delivery"),
    ));
    let elsewhere = listener.url.replace("/webhook", "/elsewhere");
    let wrong_path = hookcli()
        .args([
            "send",
            "call_started",
            "--secret",
            KEY,
            "--json",
            "--retries",
            "0",
        ])
        .args(["--to", &elsewhere])
        .output()
        .expect("the hookcli binary runs");
    assert_code(&wrong_path, 1);
    all.extend(samples(
        "send to another path",
        &wrong_path,
        Lines::One("delivery"),
    ));
    let (out, err) = listener.stop();
    let listened = parse("listen --json", &out, &err, Lines::Each("listen-request"));
    assert_eq!(
        listened.len(),
        3,
        "two attempts and the stray request:\n{out}"
    );
    all.extend(listened);

    let closed = format!("http://127.0.0.1:{}/webhook", closed_port());
    let unreachable = hookcli()
        .args([
            "send",
            "call_ended",
            "--json",
            "--retries",
            "1",
            "--backoff",
            "0",
        ])
        .args(["--to", &closed])
        .output()
        .expect("the hookcli binary runs");
    assert_code(&unreachable, 3);
    all.extend(samples(
        "send to a closed port",
        &unreachable,
        Lines::One("delivery"),
    ));
    all
}

fn errors(validator: &Validator, line: &Value) -> Vec<String> {
    validator
        .iter_errors(line)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

/// The real lines, made once for the tests that read them (they run at once, the second
/// waits for the first to make them).
fn all_samples() -> &'static [Sample] {
    static SAMPLES: OnceLock<Vec<Sample>> = OnceLock::new();
    SAMPLES.get_or_init(|| {
        let mut all = built_in_samples();
        all.extend(failure_samples());
        all
    })
}

#[test]
fn every_json_output_validates_against_its_schema() {
    let validators = validators();
    let samples = all_samples();

    let mut failures = Vec::new();
    for s in samples {
        let found = errors(&validators[s.schema], &s.line);
        if !found.is_empty() {
            failures.push(format!(
                "`{}` against {}.schema.json: {found:#?}\n{}",
                s.command, s.schema, s.line
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    // Every schema met real output, and the runs reached the shapes worth covering.
    let used: BTreeSet<&str> = samples.iter().map(|s| s.schema).collect();
    for (name, _) in SCHEMAS {
        assert!(used.contains(name), "no output was checked against {name}");
    }
    let of = |schema: &'static str| samples.iter().filter(move |s| s.schema == schema);
    let outcomes: BTreeSet<&str> = of("delivery")
        .filter_map(|s| s.line["outcome"].as_str())
        .collect();
    assert_eq!(
        outcomes,
        BTreeSet::from(["delivered", "failed", "filtered", "unreachable"])
    );
    let errors_seen: BTreeSet<&str> = of("delivery")
        .flat_map(|s| s.line["attempts"].as_array().into_iter().flatten())
        .filter_map(|a| a["error"].as_str())
        .collect();
    assert!(errors_seen.contains("connect"), "{errors_seen:?}");
    assert!(
        of("delivery").any(|s| s.line["receiver"].as_array().is_some_and(|r| !r.is_empty())),
        "a send into the built-in receiver shows what it saw"
    );
    assert!(
        of("delivery").any(|s| s.line["call"] == 2),
        "replay --calls 2"
    );
    let listened: Vec<&Value> = of("listen-request").map(|s| &s.line).collect();
    assert_eq!(listened[0]["verdict"], "valid");
    assert_eq!(listened[0]["status"], 500);
    assert!(
        listened
            .iter()
            .any(|l| l["status"] == 404 && l["reason"].is_string()),
        "the stray request is answered 404 with a reason: {listened:?}"
    );
    let results: BTreeSet<&str> = of("check-case")
        .filter_map(|s| s.line["result"].as_str())
        .collect();
    assert_eq!(results, BTreeSet::from(["passed"]));
}

/// The keys a schema describes without requiring them: printed only by some commands.
const OPTIONAL: &[(&str, &str)] = &[
    // send only, without --to.
    ("delivery", "/properties/receiver"),
    // replay only.
    ("delivery", "/properties/call"),
    ("delivery", "/properties/seq"),
    // send only, for an event whose answer the platform reads.
    ("delivery", "/properties/response"),
    // replay --from only.
    ("replay-summary", "/properties/skipped"),
];

/// A schema that required nothing would pass any output, and a key described but not required
/// could be renamed unnoticed; one whose `required` named a key it does not describe would be
/// documenting nothing. Checked on every object schema, nested ones included; maps (headers,
/// statuses) are the objects without `properties`.
#[test]
fn every_object_schema_requires_the_keys_it_describes() {
    fn walk(name: &str, path: &str, node: &Value, problems: &mut Vec<String>) {
        match node {
            Value::Object(map) => {
                if let Some(Value::Object(properties)) = map.get("properties") {
                    let required: Vec<&str> = map
                        .get("required")
                        .and_then(Value::as_array)
                        .map(|r| r.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    // `if` blocks narrow existing keys; only object shapes must require.
                    let shape = map.get("type").is_some_and(|t| t == "object");
                    if shape && required.is_empty() {
                        problems.push(format!("{name} {path}: an object that requires no key"));
                    }
                    for key in &required {
                        if !properties.contains_key(*key) {
                            problems
                                .push(format!("{name} {path}: requires `{key}`, not described"));
                        }
                    }
                    for key in properties.keys() {
                        let at = format!("{path}/properties/{key}");
                        let optional = OPTIONAL.contains(&(name, at.as_str()));
                        if shape && !required.contains(&key.as_str()) && !optional {
                            problems.push(format!(
                                "{name} {at}: described, not required (or listed in OPTIONAL)"
                            ));
                        }
                    }
                }
                for (key, child) in map {
                    walk(name, &format!("{path}/{key}"), child, problems);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(name, &format!("{path}/{i}"), child, problems);
                }
            }
            _ => {}
        }
    }
    let mut problems = Vec::new();
    for (name, _) in SCHEMAS {
        let schema = schema(name);
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
        assert_eq!(schema["$id"], format!("{BASE}{name}.schema.json"), "{name}");
        assert_eq!(
            schema["type"], "object",
            "{name}: each output line is an object"
        );
        if let Err(e) = jsonschema::meta::validate(&schema) {
            problems.push(format!("{name}: not a valid 2020-12 schema: {e}"));
        }
        walk(name, "", &schema, &mut problems);
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Every `*.schema.json` under schemas/ is in the table above, so none goes untested.
#[test]
fn every_schema_file_is_tested() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let files: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("schemas/ is readable")
        .map(|e| {
            e.expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|f| f.ends_with(".schema.json"))
        .collect();
    let tested: BTreeSet<String> = SCHEMAS
        .iter()
        .map(|(name, _)| format!("{name}.schema.json"))
        .collect();
    assert_eq!(files, tested);
}

/// Every key `required` somewhere in a schema (or in one it refers to).
fn required_names(name: &str) -> BTreeSet<String> {
    fn collect(node: &Value, names: &mut BTreeSet<String>) {
        match node {
            Value::Object(map) => {
                if let Some(Value::Array(required)) = map.get("required") {
                    names.extend(required.iter().filter_map(Value::as_str).map(String::from));
                }
                map.values().for_each(|v| collect(v, names));
            }
            Value::Array(items) => items.iter().for_each(|v| collect(v, names)),
            _ => {}
        }
    }
    let mut names = BTreeSet::new();
    collect(&schema(name), &mut names);
    if name == "delivery" {
        collect(&schema("listen-request"), &mut names);
    }
    names
}

/// Copies of `line`, each with one key renamed, wherever objects nest; with the key's path.
fn renamed_copies(line: &Value, required: &BTreeSet<String>) -> Vec<(String, Value)> {
    let mut copies = Vec::new();
    match line {
        Value::Object(map) => {
            for (key, child) in map {
                if required.contains(key) {
                    let mut copy = map.clone();
                    let value = copy.remove(key).expect("the key is there");
                    copy.insert(format!("{key}_renamed"), value);
                    copies.push((format!("/{key}"), Value::Object(copy)));
                }
                for (path, inner) in renamed_copies(child, required) {
                    let mut copy = map.clone();
                    copy.insert(key.clone(), inner);
                    copies.push((format!("/{key}{path}"), Value::Object(copy)));
                }
            }
        }
        Value::Array(items) => {
            // The first item stands for the rest: they share one item schema.
            if let Some(first) = items.first() {
                for (path, inner) in renamed_copies(first, required) {
                    let mut copy = items.clone();
                    copy[0] = inner;
                    copies.push((format!("/0{path}"), Value::Array(copy)));
                }
            }
        }
        _ => {}
    }
    copies
}

/// The contract, "keys may be added, none removed or renamed", as a test: take a real line of
/// every output and rename each key its schema requires, at any depth; the schema refuses
/// every such copy.
#[test]
fn a_renamed_key_fails_its_schema() {
    let validators = validators();
    let samples = all_samples();
    // The richest line of each shape: the one with the most keys, nested ones counted.
    fn size(v: &Value) -> usize {
        match v {
            Value::Object(m) => m.len() + m.values().map(size).sum::<usize>(),
            Value::Array(a) => a.iter().map(size).sum(),
            _ => 0,
        }
    }
    let mut richest: BTreeMap<&str, &Sample> = BTreeMap::new();
    for s in samples {
        let best = richest.entry(s.schema).or_insert(s);
        if size(&s.line) > size(&best.line) {
            *best = s;
        }
    }
    let mut accepted = Vec::new();
    for (schema, sample) in richest {
        let required = required_names(schema);
        let copies = renamed_copies(&sample.line, &required);
        assert!(
            !copies.is_empty(),
            "{schema}: no key to rename in {}",
            sample.line
        );
        for (path, copy) in copies {
            if validators[schema].is_valid(&copy) {
                accepted.push(format!("{schema}: `{path}` renamed is still accepted"));
            }
        }
    }
    assert!(accepted.is_empty(), "{accepted:#?}");
}

/// The receiver's verdict words are a closed list in the schema: a new verdict in the code
/// must reach the schema (and README) too, or a consumer that trusts the enum breaks.
#[test]
fn the_verdict_enum_is_the_receivers() {
    let schema = schema("listen-request");
    let in_schema: BTreeSet<&str> = schema["properties"]["verdict"]["enum"]
        .as_array()
        .expect("verdict is an enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let in_code: BTreeSet<&str> = hookcli::signing::Verdict::WORDS.into_iter().collect();
    assert_eq!(in_schema, in_code);
}
