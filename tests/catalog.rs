//! The built-in catalog: every event of every platform renders with the seed examples' keys
//! and types, ids in each platform's format, consistent times, and the documented delivery
//! rules, all checked from the data without sending anything.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use clap::CommandFactory;
use hookcli::call::{Call, CallPlan};
use hookcli::catalog::{Catalog, Platform};
use hookcli::policy::DeliveryPolicy;
use serde_json::Value;

const SEEDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/seeds");

fn catalog() -> Catalog {
    Catalog::load(None).expect("the built-in catalog loads")
}

/// Renders `event` of `platform` from a freshly generated call.
fn render(catalog: &Catalog, platform: &Platform, event: &str) -> Value {
    let spec = platform.event(event).expect("the event exists");
    let plan = CallPlan::for_event(spec, hookcli::signing::now_ms());
    let call = Call::generate(catalog, platform, &plan, &mut hookcli::call::rng_from(None))
        .expect("the call generates");
    call.render(spec, None).expect("the event renders")
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every key of `seed` is in `ours` at the same path with the same JSON type; for arrays,
/// every one of our elements carries the keys of every seed element. Returns the mismatches.
fn covers(seed: &Value, ours: &Value, path: &str, problems: &mut Vec<String>) {
    // A seed's null says nothing about the type the field takes when set.
    if !seed.is_null() && type_name(seed) != type_name(ours) {
        problems.push(format!(
            "{path}: seed has {}, ours has {}",
            type_name(seed),
            type_name(ours)
        ));
        return;
    }
    match (seed, ours) {
        (Value::Object(s), Value::Object(o)) => {
            for (key, sv) in s {
                let at = format!("{path}.{key}");
                match o.get(key) {
                    Some(ov) => covers(sv, ov, &at, problems),
                    None => problems.push(format!("{at}: missing")),
                }
            }
        }
        (Value::Array(s), Value::Array(o)) => {
            if !s.is_empty() && o.is_empty() {
                problems.push(format!("{path}: seed has elements, ours is empty"));
            }
            for (i, ov) in o.iter().enumerate() {
                for sv in s {
                    covers(sv, ov, &format!("{path}[{i}]"), problems);
                }
            }
        }
        _ => {}
    }
}

/// (platform, event, seed JSON) for every seed example under tests/fixtures/seeds.
fn seeds() -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(SEEDS).expect("the seeds folder") {
        let dir = dir.expect("a folder entry").path();
        if !dir.is_dir() {
            continue;
        }
        let platform = dir.file_name().unwrap().to_string_lossy().into_owned();
        for file in std::fs::read_dir(&dir).expect("a platform folder") {
            let file = file.expect("a file entry").path();
            let event = file.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&file).expect("a readable seed");
            let value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", file.display()));
            out.push((platform.clone(), event, value));
        }
    }
    out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    out
}

/// What one folder under payloads/ declares, read with toml and the file system rather than
/// through the catalog code under test.
struct Folder {
    id: String,
    aliases: Vec<String>,
    /// Events named in platform.toml plus templates under events/ (a template alone adds one).
    events: BTreeSet<String>,
    signs: bool,
}

fn payload_folders() -> Vec<Folder> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("payloads");
    let mut folders = Vec::new();
    for entry in std::fs::read_dir(&root).expect("the payloads folder") {
        let dir = entry.expect("a folder entry").path();
        if !dir.is_dir() {
            continue;
        }
        let text = std::fs::read_to_string(dir.join("platform.toml"))
            .unwrap_or_else(|e| panic!("{}/platform.toml: {e}", dir.display()));
        let table: toml::Table = toml::from_str(&text).expect("platform.toml is TOML");
        let strings = |key: &str| -> Vec<String> {
            let items = table.get(key).and_then(toml::Value::as_array);
            items
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_ascii_lowercase))
                .collect()
        };
        let listed = table.get("events").and_then(toml::Value::as_array);
        let mut events: BTreeSet<String> = listed
            .into_iter()
            .flatten()
            .filter_map(|e| e.get("name")?.as_str().map(str::to_string))
            .collect();
        for file in std::fs::read_dir(dir.join("events")).expect("an events folder") {
            let file = file.expect("a file entry").path();
            if file.extension().is_some_and(|e| e == "json") {
                events.insert(file.file_stem().unwrap().to_string_lossy().into_owned());
            }
        }
        folders.push(Folder {
            id: table["id"].as_str().expect("an id").to_ascii_lowercase(),
            aliases: strings("aliases"),
            events,
            signs: table.contains_key("signing"),
        });
    }
    assert!(!folders.is_empty(), "payloads/ holds platforms");
    folders
}

#[test]
fn every_platform_folder_is_in_the_catalog_with_its_events_and_aliases() {
    let catalog = catalog();
    let folders = payload_folders();
    let mut ids = catalog.platform_ids();
    ids.sort();
    let mut expected: Vec<&str> = folders.iter().map(|f| f.id.as_str()).collect();
    expected.sort();
    assert_eq!(ids, expected, "one platform per folder, no more");
    for folder in &folders {
        let platform = catalog.platform(&folder.id).expect("the folder's platform");
        let events: BTreeSet<String> = platform.events.iter().map(|e| e.name.clone()).collect();
        assert_eq!(events, folder.events, "{}: the events", folder.id);
        assert_eq!(
            platform.aliases, folder.aliases,
            "{}: the aliases",
            folder.id
        );
        for alias in &folder.aliases {
            assert_eq!(
                catalog.platform(alias).unwrap().id,
                folder.id,
                "alias {alias}"
            );
        }
    }
    assert_eq!(
        catalog.platforms[0].id,
        hookcli::catalog::DEFAULT_PLATFORM,
        "the default platform is listed first"
    );
}

#[test]
fn the_binary_lists_every_platform_folder() {
    // The embedded catalog is the one built from the folders as they are now: build.rs
    // makes cargo rebuild when payloads/ changes.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookcli"))
        .args(["platforms", "--json"])
        .env_remove("HOOKCLI_PAYLOADS")
        .output()
        .expect("the hookcli binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut listed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let row: Value = serde_json::from_str(line).expect("one JSON object per line");
            row["id"].as_str().expect("an id").to_string()
        })
        .collect();
    listed.sort();
    let mut expected: Vec<String> = payload_folders().into_iter().map(|f| f.id).collect();
    expected.sort();
    assert_eq!(listed, expected);
}

#[test]
fn every_event_of_every_platform_renders_to_a_json_object() {
    let catalog = catalog();
    for platform in &catalog.platforms {
        for event in &platform.events {
            let body = render(&catalog, platform, &event.name);
            assert!(body.is_object(), "{} {}: {body}", platform.id, event.name);
            let bytes = serde_json::to_vec(&body).unwrap();
            assert!(
                bytes.len() > 20,
                "{} {} is nearly empty",
                platform.id,
                event.name
            );
            if platform.event_field.is_some() {
                assert_eq!(
                    platform.event_of(&body).as_deref(),
                    Some(event.name.as_str()),
                    "{} {} names its event",
                    platform.id,
                    event.name
                );
            }
            assert!(
                platform.call_id_of(&body).is_some(),
                "{} {} carries a call id",
                platform.id,
                event.name
            );
        }
    }
}

#[test]
fn every_seed_example_key_is_rendered_with_the_same_json_type() {
    let catalog = catalog();
    let seeds = seeds();
    assert!(!seeds.is_empty(), "the seed fixtures are read");
    let mut problems = Vec::new();
    for (platform_id, event, seed) in &seeds {
        let platform = catalog.platform(platform_id).expect("a seed's platform");
        assert!(
            platform.event(event).is_some(),
            "seed {platform_id}/{event} names a catalog event"
        );
        // Several renders: people, conversations and branches vary from call to call.
        for _ in 0..5 {
            let ours = render(&catalog, platform, event);
            covers(
                seed,
                &ours,
                &format!("{platform_id}/{event}"),
                &mut problems,
            );
        }
    }
    problems.sort();
    problems.dedup();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn call_ids_are_in_each_platform_format() {
    let catalog = catalog();
    for _ in 0..20 {
        let uponai = catalog.platform("uponai").unwrap();
        let body = render(&catalog, uponai, "call_ended");
        let id = body["call"]["call_id"]
            .as_str()
            .expect("uponai call_id is a string");
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric()), "{id}");

        let salpre = catalog.platform("salpre").unwrap();
        let body = render(&catalog, salpre, "call_ended");
        assert!(body["payload"]["call_id"].is_u64(), "{}", body["payload"]);

        let postcall = catalog.platform("postcall").unwrap();
        let body = render(&catalog, postcall, "call_completed");
        let id = body["callId"]
            .as_str()
            .expect("postcall callId is a string");
        assert_eq!(id.len(), 24, "{id}");
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{id}");

        let callevents = catalog.platform("callevents").unwrap();
        for event in ["call.start", "call.end", "analytics.completed"] {
            let body = render(&catalog, callevents, event);
            let id = body["call_id"]
                .as_str()
                .expect("callevents call_id is a string");
            assert!(id.starts_with("call_") && id.len() > 5, "{id}");
        }
    }
}

/// Walks every object in a body and checks start < end and duration = end - start.
fn check_times(value: &Value, what: &str) {
    match value {
        Value::Object(map) => {
            let start = map.get("start_timestamp").and_then(Value::as_u64);
            let end = map.get("end_timestamp").and_then(Value::as_u64);
            if let (Some(start), Some(end)) = (start, end) {
                assert!(start < end, "{what}: start {start} not before end {end}");
                if let Some(duration) = map.get("duration_ms") {
                    assert_eq!(duration.as_u64(), Some(end - start), "{what}: duration_ms");
                }
            }
            map.values().for_each(|v| check_times(v, what));
        }
        Value::Array(items) => items.iter().for_each(|v| check_times(v, what)),
        _ => {}
    }
}

#[test]
fn times_are_consistent_and_in_the_platform_unit() {
    let catalog = catalog();
    let now_ms = hookcli::signing::now_ms();
    let day_ms = 24 * 3600 * 1000;
    for platform in &catalog.platforms {
        for event in &platform.events {
            let body = render(&catalog, platform, &event.name);
            check_times(&body, &format!("{} {}", platform.id, event.name));
        }
    }
    let uponai = catalog.platform("uponai").unwrap();
    let ended = render(&catalog, uponai, "call_ended");
    let start = ended["call"]["start_timestamp"].as_u64().unwrap();
    assert!(
        start.abs_diff(now_ms) < day_ms,
        "uponai times are current Unix ms"
    );

    let salpre = catalog.platform("salpre").unwrap();
    let body = render(&catalog, salpre, "call_ended");
    let seconds = body["timestamp_utc"]
        .as_u64()
        .expect("timestamp_utc is a number");
    assert!(
        seconds.abs_diff(now_ms / 1000) < day_ms / 1000,
        "salpre timestamp_utc is current Unix seconds: {seconds}"
    );

    let callevents = catalog.platform("callevents").unwrap();
    let body = render(&catalog, callevents, "call.end");
    let stamp = body["timestamp"].as_str().unwrap();
    assert!(
        stamp.len() >= 20 && stamp.as_bytes()[10] == b'T' && stamp.ends_with('Z'),
        "callevents timestamp is ISO 8601 UTC: {stamp}"
    );
    let seconds = &body["duration_seconds"];
    assert!(seconds.as_f64().is_some_and(|s| s > 0.0), "{seconds}");
}

/// Whether `key` holds an object anywhere in `value`.
fn has_object_at_key(value: &Value, key: &str) -> bool {
    match value {
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| (k == key && v.is_object()) || has_object_at_key(v, key)),
        Value::Array(items) => items.iter().any(|v| has_object_at_key(v, key)),
        _ => false,
    }
}

#[test]
fn every_optional_field_in_platform_toml_is_in_its_rendered_event() {
    // The loader leaves out a pointer its template lacks (for overlays), so a typo in the
    // built-in data would quietly make body/missing-optional test less: caught here.
    let catalog = catalog();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("payloads");
    let mut marked = 0;
    for platform in &catalog.platforms {
        let file = root.join(&platform.id).join("platform.toml");
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let raw: toml::Value = toml::from_str(&text).unwrap();
        let events = raw
            .get("events")
            .and_then(|e| e.as_array())
            .cloned()
            .unwrap_or_default();
        for event in events {
            let name = event["name"].as_str().unwrap();
            let listed = event
                .get("optional")
                .and_then(|o| o.as_array())
                .cloned()
                .unwrap_or_default();
            let spec = platform.event(name).unwrap();
            assert_eq!(
                spec.optional.len(),
                listed.len(),
                "{}/{name}: every optional field loads",
                platform.id
            );
            let body = render(&catalog, platform, name);
            for field in &spec.optional {
                assert!(
                    body.pointer(&field.at).is_some(),
                    "{}/{name}: {} renders",
                    platform.id,
                    field.at
                );
                assert!(
                    !field.source.is_empty(),
                    "{}/{name}: {} cites a source",
                    platform.id,
                    field.at
                );
                marked += 1;
            }
        }
    }
    assert!(marked > 0, "uponai marks optional fields");
}

#[test]
fn every_free_form_name_holds_an_object_in_a_template_of_its_platform() {
    // A misspelled name in platform.toml would quietly let `--set` add nowhere.
    let catalog = catalog();
    for platform in &catalog.platforms {
        for name in &platform.free_form {
            let found = platform
                .events
                .iter()
                .any(|e| has_object_at_key(&render(&catalog, platform, &e.name), name));
            assert!(
                found,
                "{}: free_form `{name}` is in no template",
                platform.id
            );
        }
    }
    let free_form = |id: &str| catalog.platform(id).unwrap().free_form.clone();
    assert!(free_form("uponai").contains(&"metadata".to_string()));
    assert_eq!(free_form("callevents"), ["variables", "metrics"]);
    assert!(free_form("salpre").is_empty(), "salpre documents every key");
}

#[test]
fn every_lifecycle_step_names_an_event_of_its_platform() {
    let catalog = catalog();
    for platform in &catalog.platforms {
        assert!(
            !platform.lifecycles.is_empty(),
            "{} has lifecycles",
            platform.id
        );
        for lifecycle in &platform.lifecycles {
            assert!(
                !lifecycle.steps.is_empty(),
                "{} {}",
                platform.id,
                lifecycle.name
            );
            for step in &lifecycle.steps {
                assert!(
                    platform.event(&step.event).is_some(),
                    "{} lifecycle {} names unknown event {}",
                    platform.id,
                    lifecycle.name,
                    step.event
                );
            }
        }
    }
}

#[test]
fn a_call_that_did_not_connect_sends_no_call_started() {
    let uponai = catalog().platform("uponai").unwrap().clone();
    let dial_failed = uponai
        .lifecycle("dial-failed")
        .expect("uponai has a dial-failed lifecycle");
    assert!(!dial_failed.connected);
    assert!(dial_failed.steps.iter().all(|s| s.event != "call_started"));
}

fn policy(id: &str) -> DeliveryPolicy {
    catalog().platform(id).unwrap().policy.clone()
}

#[test]
fn uponai_times_out_at_10s_retries_3_times_and_accepts_any_2xx() {
    let p = policy("uponai");
    assert_eq!(p.timeout, Duration::from_secs(10));
    assert_eq!(p.retries, 3);
    assert_eq!(p.max_attempts(), 4);
    assert!(p.success.accepts(200) && p.success.accepts(204) && p.success.accepts(299));
    assert!(!p.success.accepts(301) && !p.success.accepts(500));
}

#[test]
fn salpre_requires_exactly_200_and_never_retries() {
    let p = policy("salpre");
    assert_eq!(p.retries, 0);
    assert!(p.success.accepts(200));
    assert!(!p.success.accepts(201) && !p.success.accepts(204));
    assert_eq!(p.success.requirement(), "exactly 200");
}

#[test]
fn postcall_accepts_any_2xx_and_never_retries() {
    let p = policy("postcall");
    assert_eq!(p.timeout, Duration::from_secs(10));
    assert_eq!(p.retries, 0);
    assert!(p.success.accepts(200) && p.success.accepts(204));
    assert!(!p.success.accepts(302));
}

#[test]
fn a_platform_signs_when_its_folder_has_a_signing_table() {
    let catalog = catalog();
    for folder in payload_folders() {
        let platform = catalog.platform(&folder.id).unwrap();
        assert_eq!(platform.signing.is_some(), folder.signs, "{}", folder.id);
    }
}

#[test]
fn uponai_signs_with_x_retell_signature_and_5_minutes_tolerance() {
    let uponai = catalog().platform("uponai").unwrap().clone();
    let signing = uponai.signing.as_ref().expect("uponai signs");
    assert_eq!(signing.header, "x-retell-signature");
    assert_eq!(signing.tolerance, Duration::from_secs(300));
    assert_eq!(signing.key_env, ["UPONAI_API_KEY", "RETELL_API_KEY"]);
}

#[test]
fn the_payloads_folder_is_the_same_data_as_the_embedded_catalog() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("payloads");
    let from_disk = Catalog::load(Some(&dir)).expect("payloads/ loads as an overlay");
    let builtin = catalog();
    assert_eq!(from_disk.platform_ids(), builtin.platform_ids());
    for (disk, embedded) in from_disk.platforms.iter().zip(&builtin.platforms) {
        assert_eq!(disk.event_names(), embedded.event_names(), "{}", disk.id);
    }
}

#[test]
fn the_command_line_definition_is_consistent() {
    hookcli::cli::Cli::command().debug_assert();
}
