//! A receiver that closes a kept-alive connection without `Connection: close` (uvicorn does
//! after an unhandled exception): the request that went out on it gets no answer, and is sent
//! once more on a fresh connection, as curl does, without counting an attempt.
//!
//! The receiver here is a few lines of raw TCP on 127.0.0.1:0: it answers the first request
//! of each connection with a keep-alive 204, then reads the next request on that connection
//! and closes it without a word. Closing only once the next request has arrived (rather than
//! right after the answer) makes the race deterministic: the client cannot have seen the close
//! before it sent.

mod common;

use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use common::{assert_code, hookcli, stdout};

#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    requests: AtomicUsize,
}

/// Starts the dropping receiver; returns its URL and what it saw.
async fn dropping_receiver() -> (String, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/webhook", listener.local_addr().expect("addr"));
    let seen = Arc::new(Seen::default());
    let counts = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counts.connections.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve_once(stream, counts.clone()));
        }
    });
    (url, seen)
}

/// One answered request, then the next one read and the connection closed under it.
async fn serve_once(mut stream: TcpStream, seen: Arc<Seen>) {
    if !read_request(&mut stream).await {
        return;
    }
    seen.requests.fetch_add(1, Ordering::SeqCst);
    let answer = b"HTTP/1.1 204 No Content\r\n\r\n";
    if stream.write_all(answer).await.is_err() {
        return;
    }
    if read_request(&mut stream).await {
        seen.requests.fetch_add(1, Ordering::SeqCst);
    }
    // Dropped here: a FIN, as every byte sent was read.
}

/// Reads one request (head and Content-Length body); false at end of stream.
async fn read_request(stream: &mut TcpStream) -> bool {
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return true;
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => data.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn run(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || hookcli().args(&args).output().expect("the binary runs"))
        .await
        .expect("the blocking task finishes")
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_sends_again_on_a_fresh_connection_and_records_it() {
    let (url, seen) = dropping_receiver().await;
    let out = run(strings(&[
        "replay",
        "--events",
        "call_started,call_ended",
        "--retries",
        "0",
        "--json",
        "--to",
        &url,
    ]))
    .await;
    assert_code(&out, 0);
    // call_started on connection 1; call_ended on it, dropped; call_ended again on 2.
    assert_eq!(seen.requests.load(Ordering::SeqCst), 3);
    assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let deliveries: Vec<&Value> = lines
        .iter()
        .filter(|l| l["attempts"].as_array().is_some_and(|a| !a.is_empty()))
        .collect();
    assert_eq!(deliveries.len(), 2, "{}", stdout(&out));
    let first = &deliveries[0]["attempts"];
    let second = &deliveries[1]["attempts"];
    assert_eq!(first[0]["reconnected"], false);
    assert_eq!(second.as_array().map(Vec::len), Some(1), "not an attempt");
    assert_eq!(second[0]["reconnected"], true);
    assert_eq!(second[0]["status"], 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_counts_the_reconnects_and_every_delivery_succeeds() {
    let (url, seen) = dropping_receiver().await;
    let out = run(strings(&[
        "load",
        "-n",
        "2",
        "-c",
        "1",
        "--retries",
        "0",
        "--json",
        "--to",
        &url,
    ]))
    .await;
    assert_code(&out, 0);
    assert_eq!(seen.requests.load(Ordering::SeqCst), 3);
    assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON report");
    assert_eq!(report["succeeded"], 2);
    assert_eq!(report["requests"], 2);
    assert_eq!(report["reconnected"], 1);

    let (url, _) = dropping_receiver().await;
    let out = run(strings(&[
        "load",
        "-n",
        "2",
        "-c",
        "1",
        "--retries",
        "0",
        "--to",
        &url,
    ]))
    .await;
    assert_code(&out, 0);
    assert!(stdout(&out).contains("reconnected 1"), "{}", stdout(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_warns_about_a_receiver_that_drops_kept_alive_connections() {
    let (url, seen) = dropping_receiver().await;
    let out = run(strings(&[
        "check",
        "--only",
        "delivery/duplicate",
        "--json",
        "--to",
        &url,
    ]))
    .await;
    // A warning, not a failure: both copies were delivered in the end.
    assert_code(&out, 0);
    // The duplicate's second copy went out on the kept-alive connection and was dropped.
    assert_eq!(seen.requests.load(Ordering::SeqCst), 3);
    let case: Value = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON lines"))
        .find(|l| l["type"] == "case")
        .expect("a case line");
    assert_eq!(case["result"], "warning", "{}", stdout(&out));
    let reason = case["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("without `Connection: close`"), "{reason}");
}
