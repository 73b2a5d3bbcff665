//! The catalog under payloads/ is embedded with include_dir!, which cargo does not know reads
//! files: without this, a new platform folder stays invisible until some .rs file changes.
//! A directory given to rerun-if-changed is scanned recursively, so any file added, edited or
//! removed under payloads/ reruns this script, and the crate is rebuilt with the new catalog.

// A build script talks to cargo through stdout; there is no reader that can go away.
#![allow(clippy::disallowed_macros)]

fn main() {
    println!("cargo::rerun-if-changed=payloads");
    println!("cargo::rerun-if-changed=build.rs");
}
