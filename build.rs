//! Two jobs for the catalog under payloads/:
//!
//! - It is embedded with include_dir!, which cargo does not know reads files: without
//!   rerun-if-changed, a new platform folder stays invisible until some .rs file changes. A
//!   directory given to rerun-if-changed is scanned recursively, so any file added, edited or
//!   removed under payloads/ reruns this script, and the crate is rebuilt with the new catalog.
//! - Its TOML files (payloads/**/*.toml) are converted to JSON. Parsing TOML was about a tenth
//!   of a one-shot command's start-up (`hookcli send` reads its platform's tables, the people
//!   and the conversations every time), and serde_json reads the same tables in about a third
//!   of the time. A --payloads overlay is still TOML read at run time; src/catalog/source.rs's
//!   tests check that each JSON reads back as its TOML.

// A build script talks to cargo through stdout; there is no reader that can go away.
#![allow(clippy::disallowed_macros)]

use std::path::Path;

fn main() {
    println!("cargo::rerun-if-changed=payloads");
    println!("cargo::rerun-if-changed=build.rs");
    let mut files = Vec::new();
    collect(Path::new("payloads"), &mut files);
    files.sort();
    let mut out = String::from("&[\n");
    for path in files {
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let table: toml::Table = toml::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not valid TOML: {e}", path.display()));
        let json = serde_json::to_string(&table).expect("a TOML table is JSON");
        let name = path.strip_prefix("payloads").expect("under payloads/");
        let name = name.to_string_lossy().replace('\\', "/");
        out.push_str(&format!("    ({name:?}, {json:?}),\n"));
    }
    out.push(']');
    let dest =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("builtin_json.rs");
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}

fn collect(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|e| e == "toml") {
            files.push(path);
        }
    }
}
