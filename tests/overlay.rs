//! `--payloads DIR`: a folder read on top of the built-in catalog adds platforms and events,
//! merges settings, replaces templates, and fails with the file, line and column when wrong.

mod common;

use std::path::{Path, PathBuf};

use common::{run, stderr};
use hookcli::catalog::Catalog;

fn folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hookcli-overlay-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn an_overlay_merges_settings_and_adds_events_and_platforms() {
    let dir = folder("merge");
    write(
        &dir.join("uponai/platform.toml"),
        "[delivery]\nretries = 5\n",
    );
    write(
        &dir.join("uponai/events/custom_thing.json"),
        r#"{"event": "custom_thing", "call": {"call_id": "{{call_id}}"}}"#,
    );
    let builtin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("payloads/postcall");
    for file in [
        "platform.toml",
        "lifecycles.toml",
        "events/call_completed.json",
    ] {
        let text = std::fs::read_to_string(builtin.join(file)).unwrap();
        write(
            &dir.join("acme").join(file),
            &text.replace("id = \"postcall\"", "id = \"acme\""),
        );
    }
    let catalog = Catalog::load(Some(&dir)).expect("overlay loads");
    let uponai = catalog.platform("uponai").unwrap();
    assert_eq!(uponai.policy.retries, 5, "merged over the built-in value");
    assert_eq!(uponai.policy.timeout.as_secs(), 10, "untouched values stay");
    assert!(uponai.event("call_ended").is_some(), "built-in events stay");
    let custom = uponai
        .event("custom_thing")
        .expect("a template adds an event");
    assert!(custom.default);
    assert!(
        catalog.platform("acme").is_some(),
        "a new folder adds a platform"
    );

    let out = run(&[
        "--payloads",
        dir.to_str().unwrap(),
        "show",
        "custom_thing",
        "--compact",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["event"], "custom_thing");
    assert_eq!(body["call"]["call_id"].as_str().unwrap().len(), 32);
}

#[test]
fn an_overlay_template_replaces_the_built_in_one() {
    let dir = folder("replace");
    write(
        &dir.join("salpre/events/error.json"),
        r#"{"event_type": "error", "payload": {"call_id": "{{call_id}}", "error_message": "replaced"}}"#,
    );
    let catalog = Catalog::load(Some(&dir)).unwrap();
    let error = catalog.platform("salpre").unwrap().event("error").unwrap();
    assert_eq!(
        error.template.value()["payload"]["error_message"],
        "replaced"
    );
}

#[test]
fn a_broken_overlay_names_the_file_line_and_column_and_exits_2() {
    let dir = folder("broken");
    write(
        &dir.join("uponai/platform.toml"),
        "[delivery]\nretries = \n",
    );
    let out = run(&["--payloads", dir.to_str().unwrap(), "platforms"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("uponai/platform.toml") && err.contains("line 2, column"),
        "{err}"
    );

    write(
        &dir.join("uponai/platform.toml"),
        "[delivery]\nretries = 1\n",
    );
    write(&dir.join("uponai/events/call_ended.json"), "{\"event\": \n");
    let out = run(&["--payloads", dir.to_str().unwrap(), "platforms"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("call_ended.json") && err.contains("line 2"),
        "{err}"
    );

    write(
        &dir.join("uponai/events/call_ended.json"),
        r#"{"event": "{{no_such_variable}}"}"#,
    );
    let out = run(&["--payloads", dir.to_str().unwrap(), "show", "call_ended"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("no_such_variable"), "{err}");
}

#[test]
fn an_overlay_platform_lists_its_own_free_form_objects() {
    let dir = folder("free-form");
    let set_tier = |dir: &Path| {
        let args = ["show", "call_ended", "--set", "call.metadata.tier=gold"];
        run(&[&["--payloads", dir.to_str().unwrap()][..], &args].concat())
    };
    // The built-in list lets a key into metadata; an overlay's list replaces it.
    write(&dir.join("uponai/platform.toml"), "free_form = []\n");
    let out = set_tier(&dir);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the body has no `call.metadata.tier`"),
        "{}",
        stderr(&out)
    );

    // A path instead of a key name would match nothing: it is refused with the file.
    write(
        &dir.join("uponai/platform.toml"),
        "free_form = [\"call.metadata\"]\n",
    );
    let out = set_tier(&dir);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("uponai/platform.toml") && err.contains("free_form: `call.metadata`"),
        "{err}"
    );
}

#[test]
fn a_missing_overlay_folder_is_exit_2() {
    let out = run(&["--payloads", "/no/such/folder", "platforms"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("/no/such/folder") && !err.contains("panicked"),
        "{err}"
    );
}

/// The two lines on stderr of a command that must fail with exit 2.
fn error_and_hint(args: &[&str]) -> (String, String) {
    let out = run(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{args:?}: one error and one hint\n{err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(lines[1].starts_with("hint: "), "{err}");
    (lines[0].to_string(), lines[1].to_string())
}

#[test]
fn a_folder_that_is_no_platform_is_named_by_its_full_path_with_the_layout_as_hint() {
    let dir = folder("not-a-platform");
    std::fs::create_dir_all(dir.join("ab")).unwrap();
    write(&dir.join("ab/notes.txt"), "not a platform");
    let root = dir.to_str().unwrap();
    let (error, hint) = error_and_hint(&["--payloads", root, "events"]);
    assert_eq!(
        error,
        format!("error: --payloads {root}: the folder {root}/ab has no platform.toml")
    );
    assert!(
        hint.contains("platform.toml and events/") && hint.contains("payloads/README.md"),
        "{hint}"
    );
}

#[test]
fn a_payloads_path_that_is_no_folder_gets_a_hint() {
    let dir = folder("file");
    let file = dir.join("payloads.toml");
    write(&file, "");
    let file = file.to_str().unwrap();
    for (path, reason) in [
        ("/no/such/folder", "no such file or folder"),
        (file, "it is a file, not a folder"),
    ] {
        let (error, hint) = error_and_hint(&["--payloads", path, "events"]);
        assert_eq!(
            error,
            format!("error: --payloads {path}: cannot read the folder ({reason})")
        );
        assert!(
            hint.contains("payloads/README.md") && hint.contains("HOOKCLI_PAYLOADS"),
            "{hint}"
        );
    }
}

#[test]
fn a_broken_overlay_file_gets_a_hint_too() {
    let dir = folder("broken-hint");
    write(
        &dir.join("uponai/platform.toml"),
        "[delivery]\nretries = \n",
    );
    let (error, hint) = error_and_hint(&["--payloads", dir.to_str().unwrap(), "events"]);
    assert!(
        error.starts_with(&format!(
            "error: {}/uponai/platform.toml: line 2",
            dir.display()
        )),
        "{error}"
    );
    assert!(hint.contains("payloads/README.md"), "{hint}");
}

/// Writes a copy of the built-in postcall platform into `dir/folder`, with `id` and `aliases`.
fn postcall_copy(dir: &Path, folder: &str, id: &str, aliases: &str) {
    let builtin = Path::new(env!("CARGO_MANIFEST_DIR")).join("payloads/postcall");
    for file in [
        "platform.toml",
        "lifecycles.toml",
        "events/call_completed.json",
    ] {
        let text = std::fs::read_to_string(builtin.join(file)).unwrap();
        let text = text
            .replace("id = \"postcall\"", &format!("id = \"{id}\""))
            .replace("aliases = []", &format!("aliases = {aliases}"));
        write(&dir.join(folder).join(file), &text);
    }
}

#[test]
fn a_folder_named_after_a_built_in_platform_replaces_it_and_lists_it_once() {
    let dir = folder("same-name");
    postcall_copy(&dir, "postcall", "postcall", "[\"pc\"]");
    let catalog = Catalog::load(Some(&dir)).expect("a same-named folder replaces");
    let ids = catalog.platform_ids();
    assert_eq!(
        ids.iter().filter(|id| **id == "postcall").count(),
        1,
        "{ids:?}"
    );
    assert_eq!(catalog.platform("pc").unwrap().id, "postcall");
}

#[test]
fn another_folder_claiming_a_taken_id_or_alias_names_both_folders() {
    let root = folder("claims");
    let root_text = root.to_str().unwrap();
    // (what the folder claims, the error's name, the folder that had it first)
    let cases = [
        (
            "acme",
            "\"uponai\"",
            "[]",
            "uponai",
            "built-in payloads/uponai",
        ),
        (
            "acme",
            "\"acme\"",
            "[\"retell\"]",
            "retell",
            "built-in payloads/uponai",
        ),
        (
            "acme",
            "\"retell\"",
            "[]",
            "retell",
            "built-in payloads/uponai",
        ),
        (
            "acme",
            "\"acme\"",
            "[\"salpre\"]",
            "salpre",
            "built-in payloads/salpre",
        ),
    ];
    for (i, (name, id, aliases, claimed, first)) in cases.into_iter().enumerate() {
        let dir = root.join(i.to_string());
        postcall_copy(&dir, name, id.trim_matches('"'), aliases);
        let path = dir.to_str().unwrap();
        let (error, hint) = error_and_hint(&["--payloads", path, "platforms"]);
        assert_eq!(
            error,
            format!(
                "error: the platform name `{claimed}` is claimed by both {first} and {path}/{name}"
            ),
            "{root_text} case {i}"
        );
        assert!(
            hint.contains("name the --payloads folder after it"),
            "{hint}"
        );
    }

    // Two overlay folders, neither built in, claiming one alias.
    let dir = root.join("two");
    postcall_copy(&dir, "acme", "acme", "[\"shared\"]");
    postcall_copy(&dir, "beta", "beta", "[\"shared\"]");
    let path = dir.to_str().unwrap();
    let (error, _) = error_and_hint(&["--payloads", path, "platforms"]);
    assert_eq!(
        error,
        format!("error: the platform name `shared` is claimed by both {path}/acme and {path}/beta")
    );
}

#[test]
fn a_new_platform_with_its_own_names_lists_once_and_its_alias_finds_it() {
    let dir = folder("own-names");
    postcall_copy(&dir, "acme", "acme", "[\"ac\"]");
    let out = run(&["--payloads", dir.to_str().unwrap(), "events", "-p", "ac"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(common::stdout(&out).contains("call_completed"));
    let out = run(&["--payloads", dir.to_str().unwrap(), "events", "-p", "nope"]);
    assert!(
        stderr(&out).contains("acme (alias ac)"),
        "hints list the overlay's platforms: {}",
        stderr(&out)
    );
}
