//! The floor under `listen -q`, for `FLOOR=1 bench/listen.sh`: listen's own per-request
//! decision (`receiver::Judge`: name the event, verify the signature, pick the answer) behind a
//! bare HTTP/1 layer, without the connection bookkeeping (phases, the idle timer, stats, the
//! shed signal) that `hookcli listen` adds around it.
//!
//!   HOOKCLI_SECRET=KEY cargo run --release --example floor -- hyper   # hyper's http1 server
//!   HOOKCLI_SECRET=KEY cargo run --release --example floor -- raw     # httparse, one buffer
//!
//! Serves uponai on 127.0.0.1 (a free port), one thread, and prints `listening on URL` on
//! stderr. A measuring tool, not a receiver: `raw` reads only Content-Length bodies and
//! answers with the status alone.

use std::io::Write;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use hookcli::catalog::Catalog;
use hookcli::receiver::{Judge, ReceiverConfig};
use hookcli::secret::Secret;
use http_body_util::{BodyExt, Empty};
use hyper::{HeaderMap, Method, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let layer = std::env::args().nth(1).unwrap_or_default();
    if layer != "hyper" && layer != "raw" {
        return Err(format!("layer `{layer}`: give hyper or raw"));
    }
    let key = std::env::var("HOOKCLI_SECRET").map_err(|_| "set HOOKCLI_SECRET".to_string())?;
    let catalog = Catalog::load(None).map_err(|e| e.to_string())?;
    let platform = catalog.platform("uponai").ok_or("uponai is not built in")?;
    let judge = Arc::new(Judge::new(ReceiverConfig::local(
        platform.clone(),
        Some(Secret::new(key)),
    )));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(serve(layer == "hyper", judge))
}

async fn serve(hyper: bool, judge: Arc<Judge>) -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let _ = writeln!(std::io::stderr(), "listening on http://{addr}/webhook");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let judge = judge.clone();
        if hyper {
            tokio::spawn(with_hyper(stream, judge));
        } else {
            tokio::spawn(raw(stream, judge));
        }
    }
}

fn status(judge: &Judge, method: Method, uri: &Uri, headers: HeaderMap, body: Bytes) -> u16 {
    judge
        .judge(method, uri, headers, body)
        .answered
        .unwrap_or(500)
}

async fn with_hyper(stream: TcpStream, judge: Arc<Judge>) {
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let judge = judge.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = body.collect().await?.to_bytes();
            let code = status(&judge, parts.method, &parts.uri, parts.headers, body);
            let mut response = Response::new(Empty::<Bytes>::new());
            *response.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
            Ok::<_, hyper::Error>(response)
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// Requests one after another on one connection: parse the head, wait for the body, answer.
async fn raw(mut stream: TcpStream, judge: Arc<Judge>) {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    loop {
        let Some((method, uri, headers, head_len, body_len)) = head(&buf) else {
            if !read_more(&mut stream, &mut buf).await {
                return;
            }
            continue;
        };
        while buf.len() < head_len + body_len {
            if !read_more(&mut stream, &mut buf).await {
                return;
            }
        }
        buf.advance(head_len);
        let body = buf.split_to(body_len).freeze();
        let code = status(&judge, method, &uri, headers, body);
        let reason = StatusCode::from_u16(code)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        // No Content-Length on a 204, which may not have one.
        let length = if code == 204 {
            ""
        } else {
            "content-length: 0\r\n"
        };
        let answer = format!("HTTP/1.1 {code} {reason}\r\n{length}\r\n");
        if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut BytesMut) -> bool {
    buf.reserve(8 * 1024);
    matches!(stream.read_buf(buf).await, Ok(n) if n > 0)
}

/// A whole request head at the start of `buf`: its parts, its length and the body's.
fn head(buf: &[u8]) -> Option<(Method, Uri, HeaderMap, usize, usize)> {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut slots);
    let httparse::Status::Complete(head_len) = request.parse(buf).ok()? else {
        return None;
    };
    let method = Method::from_bytes(request.method?.as_bytes()).ok()?;
    let uri: Uri = request.path?.parse().ok()?;
    let mut headers = HeaderMap::with_capacity(request.headers.len());
    let mut body_len = 0;
    for header in request.headers.iter() {
        let name = hyper::header::HeaderName::from_bytes(header.name.as_bytes()).ok()?;
        let value = hyper::header::HeaderValue::from_bytes(header.value).ok()?;
        if name == hyper::header::CONTENT_LENGTH {
            body_len = value.to_str().ok()?.parse().ok()?;
        }
        headers.append(name, value);
    }
    Some((method, uri, headers, head_len, body_len))
}
