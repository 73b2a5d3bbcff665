//! Shared helpers: the built binary, and hookcli's own receiver started in-process on
//! 127.0.0.1:0 with a channel that reports every request it got.

#![allow(dead_code)] // Each test file uses a different subset.

use std::process::{Command, Output, Stdio};

use hookcli::catalog::Catalog;
use hookcli::receiver::{Faults, Received, Receiver, ReceiverConfig};
use hookcli::secret::Secret;
use tokio::sync::mpsc;

/// The key the tests sign with; asserted never to show up in any output.
pub const KEY: &str = "key_test_hookcli_s3cr3t";

/// `hookcli` with a clean environment: no key, platform or payloads from the caller's shell,
/// no colour, stdin closed.
pub fn hookcli() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookcli"));
    for var in [
        "HOOKCLI_SECRET",
        "UPONAI_API_KEY",
        "RETELL_API_KEY",
        "HOOKCLI_PLATFORM",
        "HOOKCLI_PAYLOADS",
        "HOOKCLI_SEED",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1").stdin(Stdio::null());
    cmd
}

/// A command line hookcli printed (a reproduce line, "copy as"), to run through `sh` as a user
/// would paste it: the built hookcli first on PATH, the key in HOOKCLI_SECRET, no colour.
pub fn printed_command(line: &str) -> Command {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_hookcli"))
        .parent()
        .expect("the binary is in a folder");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("sh");
    cmd.args(["-c", line])
        .env("PATH", path)
        .env("HOOKCLI_SECRET", KEY)
        .env("NO_COLOR", "1");
    cmd
}

/// Runs `hookcli ARGS` to the end.
pub fn run(args: &[&str]) -> Output {
    hookcli()
        .args(args)
        .output()
        .expect("the hookcli binary runs")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn code(out: &Output) -> i32 {
    out.status
        .code()
        .expect("hookcli exits, not killed by a signal")
}

/// Asserts the exit code, showing both streams when it differs.
#[track_caller]
pub fn assert_code(out: &Output, expected: i32) {
    assert_eq!(
        code(out),
        expected,
        "stdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
}

/// Asserts no panic text or Debug dump leaked into either stream.
#[track_caller]
pub fn assert_no_panic(out: &Output) {
    let all = format!("{}{}", stdout(out), stderr(out));
    for needle in [
        "panicked",
        "RUST_BACKTRACE",
        "stack backtrace",
        "UserError {",
    ] {
        assert!(!all.contains(needle), "`{needle}` in output:\n{all}");
    }
}

pub fn platform(id: &str) -> hookcli::catalog::Platform {
    Catalog::load(None)
        .expect("the built-in catalog loads")
        .platform(id)
        .map(|platform| hookcli::catalog::Platform::clone(platform))
        .expect("the platform exists")
}

/// hookcli's receiver running in-process, on its own runtime so the test thread can block on
/// a child process while it serves.
pub struct Server {
    runtime: tokio::runtime::Runtime,
    receiver: Option<Receiver>,
    rx: mpsc::UnboundedReceiver<Received>,
    pub url: String,
    seen: Vec<Received>,
}

impl Server {
    /// A well-behaved uponai receiver verifying with [`KEY`].
    pub fn uponai() -> Server {
        Server::start("uponai", Some(KEY), Faults::default())
    }

    pub fn start(platform_id: &str, key: Option<&str>, faults: Faults) -> Server {
        Server::with(platform_id, key, |config| config.faults = faults)
    }

    /// A receiver with any config changes (record file, body limit, ...).
    pub fn with(
        platform_id: &str,
        key: Option<&str>,
        change: impl FnOnce(&mut ReceiverConfig),
    ) -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let mut config = ReceiverConfig::local(platform(platform_id), key.map(Secret::new));
        change(&mut config);
        let (tx, rx) = mpsc::unbounded_channel();
        let receiver = runtime
            .block_on(Receiver::start(config, Some(tx)))
            .expect("the receiver binds 127.0.0.1:0");
        Server {
            url: receiver.url.clone(),
            runtime,
            receiver: Some(receiver),
            rx,
            seen: Vec::new(),
        }
    }

    /// Every request received so far. The receiver reports a request before it answers, so
    /// once the sender has exited every request it made is here.
    pub fn received(&mut self) -> &[Received] {
        while let Ok(r) = self.rx.try_recv() {
            self.seen.push(r);
        }
        &self.seen
    }

    pub fn hits(&mut self) -> usize {
        self.received().len()
    }

    /// Waits (on the channel, not the clock) for the next request.
    pub fn next(&mut self) -> Received {
        if let Ok(r) = self.rx.try_recv() {
            self.seen.push(r.clone());
            return r;
        }
        let r = self
            .runtime
            .block_on(async {
                tokio::time::timeout(std::time::Duration::from_secs(30), self.rx.recv()).await
            })
            .expect("a request within 30 s")
            .expect("the receiver is running");
        self.seen.push(r.clone());
        r
    }

    /// Runs a future on the server's runtime (for in-process clients).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// `hookcli send ... --to <this receiver>`.
    pub fn send(&self, args: &[&str]) -> Output {
        hookcli()
            .arg("send")
            .args(args)
            .args(["--to", &self.url])
            .output()
            .expect("the hookcli binary runs")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(receiver) = self.receiver.take() {
            self.runtime.block_on(receiver.stop());
        }
    }
}

/// The value of a header as the receiver saw it.
pub fn header<'a>(received: &'a Received, name: &str) -> Option<&'a str> {
    received
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A port with nothing listening on it: bound, then released.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("a local address").port()
}

/// A file in a fresh temporary folder, removed with the folder when the guard drops.
pub struct TempFile {
    pub path: std::path::PathBuf,
}

impl TempFile {
    pub fn new(name: &str, contents: &[u8]) -> TempFile {
        let dir = std::env::temp_dir().join(format!(
            "hookcli-test-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).expect("a temp folder");
        let path = dir.join(name);
        std::fs::write(&path, contents).expect("write the temp file");
        TempFile { path }
    }

    pub fn path_str(&self) -> &str {
        self.path.to_str().expect("a UTF-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn rand_suffix() -> u64 {
    use rand::Rng;
    rand::thread_rng().r#gen()
}

/// A `hookcli listen --port 0 ...` child process, started once its ready line is read.
pub struct Listener {
    child: std::process::Child,
    stderr: BufReader<std::process::ChildStderr>,
    /// From the ready line: `http://127.0.0.1:PORT/webhook`.
    pub url: String,
    pub ready_line: String,
}

use std::io::BufRead;
use std::io::BufReader;

impl Listener {
    pub fn start(args: &[&str]) -> Listener {
        let mut cmd = hookcli();
        cmd.args(["listen", "--port", "0"]).args(args);
        Listener::spawn(cmd)
    }

    /// Starts a `listen` command the caller built (under `ulimit`, say).
    pub fn spawn(mut cmd: Command) -> Listener {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hookcli listen starts");
        let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
        let mut ready_line = String::new();
        // Blocks until the ready line: the socket is bound once it is printed.
        stderr
            .read_line(&mut ready_line)
            .expect("read the ready line");
        let url = ready_line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("a ready line, got {ready_line:?}"))
            .to_string();
        Listener {
            child,
            stderr,
            url,
            ready_line,
        }
    }

    /// The next line of its stderr after the ready line (blocks until there is one).
    pub fn stderr_line(&mut self) -> String {
        let mut line = String::new();
        self.stderr.read_line(&mut line).expect("read stderr");
        line
    }

    /// Stops it with SIGTERM, returning (stdout, the rest of stderr).
    pub fn stop(self) -> (String, String) {
        self.stop_with("TERM")
    }

    /// Stops it with a signal (`INT` is Ctrl-C), returning (stdout, the rest of stderr).
    pub fn stop_with(self, signal: &str) -> (String, String) {
        let (out, rest, code) = self.stop_code(signal);
        assert_eq!(code, Some(0), "listen exits 0 when stopped\n{rest}");
        (out, rest)
    }

    /// Stops it with a signal, returning (stdout, the rest of stderr, the exit code).
    pub fn stop_code(mut self, signal: &str) -> (String, String, Option<i32>) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {pid}");
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.stderr, &mut rest).expect("read stderr");
        let mut out = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
            std::io::Read::read_to_string(&mut stdout, &mut out).expect("read stdout");
        }
        let status = self.child.wait().expect("the listener exits");
        (out, rest, status.code())
    }

    /// `hookcli send ... --to <this listener>`.
    pub fn send(&self, args: &[&str]) -> Output {
        hookcli()
            .arg("send")
            .args(args)
            .args(["--to", &self.url])
            .output()
            .expect("the hookcli binary runs")
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Only if a test failed before stop(): never leave the child running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `parts` as a chunked body, one chunk each, with the last chunk and no trailers.
pub fn chunked(parts: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        body.extend(format!("{:x}\r\n", part.len()).into_bytes());
        body.extend_from_slice(part);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    body
}
