//! A GitHub release, laid out on disk as its download URLs are and served over HTTP on
//! 127.0.0.1:0, for install.sh and the Action's install step.

#![allow(dead_code)] // Each test file uses a different subset.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// The target triple install.sh picks on this machine, by the same rules.
pub fn this_target() -> String {
    let cpu = match std::env::consts::ARCH {
        "aarch64" => "aarch64",
        _ => "x86_64",
    };
    match std::env::consts::OS {
        "macos" => format!("{cpu}-apple-darwin"),
        _ => format!("{cpu}-unknown-linux-musl"),
    }
}

pub struct Release {
    pub root: PathBuf,
    /// Where install.sh finds the releases: HOOKCLI_BASE_URL.
    pub url: String,
}

impl Release {
    /// An empty release folder under `dir`, served at once.
    pub fn serve(dir: &Path) -> Release {
        let root = dir.join("releases");
        std::fs::create_dir_all(&root).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let served = root.clone();
        // Lives as long as the test process; each connection is one GET answered and closed.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                answer(stream, &served);
            }
        });
        Release { root, url }
    }

    /// Adds `hookcli-TARGET.tar.gz` holding `binary` (a file named hookcli) under `at` (like
    /// `download/v0.1.0` or `latest/download`), and its `.sha256`, unless `sum` says otherwise.
    pub fn add(&self, at: &str, target: &str, binary: &Path, sum: Option<&str>) {
        let folder = self.root.join(at);
        std::fs::create_dir_all(&folder).unwrap();
        // Packed from where it is, not copied first: the debug binary is large.
        assert_eq!(
            binary.file_name().unwrap(),
            "hookcli",
            "{}",
            binary.display()
        );
        let name = format!("hookcli-{target}.tar.gz");
        let archive = folder.join(&name);
        // gzip -1: only the layout is under test.
        let packed = Command::new("sh")
            .arg("-c")
            .arg("tar -cf - -C \"$1\" hookcli | gzip -1 > \"$2\"")
            .args([
                "sh",
                binary.parent().unwrap().to_str().unwrap(),
                archive.to_str().unwrap(),
            ])
            .status()
            .unwrap();
        assert!(packed.success(), "tar | gzip");
        let actual = hex::encode(Sha256::digest(std::fs::read(&archive).unwrap()));
        let sum = sum.map(str::to_string).unwrap_or(actual);
        std::fs::write(
            folder.join(format!("{name}.sha256")),
            format!("{sum}  {name}\n"),
        )
        .unwrap();
    }
}

fn answer(mut stream: std::net::TcpStream, root: &Path) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    // The headers, up to the blank line; a GET has no body.
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let path = request.split(' ').nth(1).unwrap_or("/");
    let file = root.join(path.trim_start_matches('/'));
    let found = !path.contains("..") && file.is_file();
    let (status, body) = if found {
        ("200 OK", std::fs::read(&file).unwrap())
    } else {
        ("404 Not Found", b"not found".to_vec())
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}

/// A stand-in hookcli: a script that says what it was run with.
pub fn fake_binary(dir: &Path) -> PathBuf {
    let path = dir.join("fake/hookcli");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "#!/bin/sh\necho \"fake hookcli $*\"\n").unwrap();
    path
}

/// A fresh folder under the system temp dir, removed with what it holds when dropped: the
/// tests here copy a large debug binary around.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str, name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
