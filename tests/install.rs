//! install.sh against a release laid out like GitHub's and served on 127.0.0.1:0: it picks
//! this machine's asset, checks its SHA-256, installs it, and refuses a wrong sum.

mod common;
#[path = "common/release.rs"]
mod release;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{assert_code, stderr, stdout};
use release::{Release, TempDir, fake_binary, this_target};

fn temp_dir(name: &str) -> TempDir {
    TempDir::new("hookcli-install", name)
}

/// PATH without cargo or rustup: the tools a bare machine has.
const BARE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// `sh install.sh` with only the settings given, on a bare PATH.
fn install(release: &Release, into: &Path, version: Option<&str>) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("install.sh");
    let mut cmd = Command::new("sh");
    cmd.arg(script)
        .env_clear()
        .env("PATH", BARE_PATH)
        .env("HOME", into)
        .env("HOOKCLI_BASE_URL", &release.url)
        .env("HOOKCLI_INSTALL_DIR", into.join("bin"));
    if let Some(version) = version {
        cmd.env("HOOKCLI_VERSION", version);
    }
    cmd.output().unwrap()
}

#[test]
fn the_release_binary_installs_without_cargo_and_sends_at_once() {
    let dir = temp_dir("real");
    let release = Release::serve(&dir);
    let binary = Path::new(env!("CARGO_BIN_EXE_hookcli"));
    release.add("download/v0.1.0", &this_target(), binary, None);
    let started = Instant::now();
    let out = install(&release, &dir, Some("v0.1.0"));
    assert_code(&out, 0);
    let installed = dir.join("bin/hookcli");
    assert!(
        stdout(&out).contains(&format!("installed hookcli 0.1.0 ({})", this_target())),
        "{}",
        stdout(&out)
    );
    // What the README's first command does: no toolchain, no build.
    let sent = Command::new(&installed)
        .args(["send", "call_ended"])
        .env_clear()
        .env("PATH", BARE_PATH)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_code(&sent, 0);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(60),
        "install and first send took {took:?}"
    );
}

#[test]
fn latest_is_the_default_version() {
    let dir = temp_dir("latest");
    let release = Release::serve(&dir);
    release.add("latest/download", &this_target(), &fake_binary(&dir), None);
    let out = install(&release, &dir, None);
    assert_code(&out, 0);
    let ran = Command::new(dir.join("bin/hookcli"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(stdout(&ran), "fake hookcli --version\n");
}

#[test]
fn a_wrong_sum_is_refused_and_nothing_is_installed() {
    let dir = temp_dir("wrong-sum");
    let release = Release::serve(&dir);
    let wrong = "0".repeat(64);
    release.add(
        "download/v0.1.0",
        &this_target(),
        &fake_binary(&dir),
        Some(&wrong),
    );
    let out = install(&release, &dir, Some("0.1.0"));
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("SHA-256") && err.contains(&wrong), "{err}");
    assert!(err.contains("not installed"), "{err}");
    assert!(!dir.join("bin/hookcli").exists());
}

#[test]
fn a_version_without_a_release_exits_3() {
    let dir = temp_dir("missing");
    let release = Release::serve(&dir);
    release.add("download/v0.1.0", &this_target(), &fake_binary(&dir), None);
    let out = install(&release, &dir, Some("9.9.9"));
    assert_code(&out, 3);
    assert!(
        stderr(&out).contains("no release asset"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.join("bin/hookcli").exists());
}
