//! `hookcli llm serve`: a scripted custom-LLM server on one port. A WebSocket upgrade on any
//! path speaks Retell's LLM WebSocket (config, greeting as response_id 0, ping_pong echoes,
//! answers streamed in chunks, abandoned when a newer response_required comes); a POST to
//! any path ending in `/chat/completions` answers as an OpenAI-compatible server, streamed
//! as SSE when asked. The answers come from payloads/llm.toml's `[serve]`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::script::Serve;

type Body = BoxBody<Bytes, Infallible>;

/// The largest request body read (a long conversation is a few kilobytes).
const MAX_BODY: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {host}:{port}: {reason}")]
pub struct ServeError {
    pub host: String,
    pub port: u16,
    pub reason: String,
}

/// A running server; dropping it stops accepting.
pub struct Server {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Binds and starts serving.
    pub async fn start(host: &str, port: u16, script: Serve) -> Result<Server, ServeError> {
        let error = |e: std::io::Error| ServeError {
            host: host.to_string(),
            port,
            reason: crate::text::io_reason(&e),
        };
        let listener = TcpListener::bind((host, port)).await.map_err(error)?;
        let addr = listener.local_addr().map_err(error)?;
        let script = Arc::new(script);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                connection(stream, script.clone());
            }
        });
        Ok(Server { addr, task })
    }

    /// The Retell LLM WebSocket base URL (the platform appends the call id).
    pub fn ws_url(&self) -> String {
        format!("ws://{}/llm-websocket", self.addr)
    }

    /// The OpenAI base URL (OPENAI_BASE_URL; `/chat/completions` is under it).
    pub fn http_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }
}

fn connection(stream: TcpStream, script: Arc<Serve>) {
    let _ = stream.set_nodelay(true);
    tokio::spawn(async move {
        let service = hyper::service::service_fn(move |req| route(req, script.clone()));
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades()
            .await;
    });
}

async fn route(req: Request<Incoming>, script: Arc<Serve>) -> Result<Response<Body>, Infallible> {
    if is_upgrade(&req) {
        return Ok(upgrade(req, script));
    }
    if req.method() == hyper::Method::POST && req.uri().path().ends_with("/chat/completions") {
        return Ok(completions(req, script).await);
    }
    Ok(plain(
        StatusCode::NOT_FOUND,
        "hookcli llm serve: a WebSocket on any path (Retell's LLM WebSocket), or POST \
         .../chat/completions (OpenAI format)\n",
    ))
}

fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(text.to_string())).boxed());
    *response.status_mut() = status;
    response
}

fn is_upgrade(req: &Request<Incoming>) -> bool {
    req.headers()
        .get("upgrade")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
        && req.headers().contains_key("sec-websocket-key")
}

/// Answers the handshake and plays the call on the upgraded connection.
fn upgrade(mut req: Request<Incoming>, script: Arc<Serve>) -> Response<Body> {
    let key = req
        .headers()
        .get("sec-websocket-key")
        .map(|k| derive_accept_key(k.as_bytes()))
        .unwrap_or_default();
    let upgrading = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(upgraded) = upgrading.await {
            let ws =
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
            session(ws, script).await;
        }
    });
    let mut response = Response::new(Full::new(Bytes::new()).boxed());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(
        "upgrade",
        hyper::header::HeaderValue::from_static("websocket"),
    );
    headers.insert(
        "connection",
        hyper::header::HeaderValue::from_static("Upgrade"),
    );
    if let Ok(value) = hyper::header::HeaderValue::from_str(&key) {
        headers.insert("sec-websocket-accept", value);
    }
    response
}

/// One call on the Retell LLM WebSocket.
async fn session<S>(ws: WebSocketStream<S>, script: Arc<Serve>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut stream) = ws.split();
    // Answers stream from their own tasks; one writer keeps the frames whole.
    let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if sink.send(Message::text(frame.to_string())).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let newest = Arc::new(AtomicU64::new(0));
    if script.auto_reconnect || script.call_details {
        let config =
            json!({"auto_reconnect": script.auto_reconnect, "call_details": script.call_details});
        let _ = tx.send(json!({"response_type": "config", "config": config}));
    }
    if let Some(agent) = &script.agent_config {
        let agent = serde_json::to_value(agent).unwrap_or_default();
        let _ = tx.send(json!({"response_type": "update_agent", "agent_config": agent}));
    }
    // Like the Node demo: with call_details asked for, greet once they have come.
    if !script.call_details {
        answer(0, script.greeting.clone(), None, &script, &tx, &newest);
    }
    while let Some(Ok(message)) = stream.next().await {
        let Message::Text(text) = message else {
            if matches!(message, Message::Close(_)) {
                break;
            }
            continue;
        };
        let Ok(frame) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        handle(&frame, &script, &tx, &newest);
    }
    drop(tx);
    let _ = writer.await;
}

fn handle(
    frame: &Value,
    script: &Arc<Serve>,
    tx: &mpsc::UnboundedSender<Value>,
    newest: &Arc<AtomicU64>,
) {
    match frame.get("interaction_type").and_then(Value::as_str) {
        Some("ping_pong") => {
            let _ = tx.send(json!({"response_type": "ping_pong", "timestamp": frame["timestamp"]}));
        }
        Some("call_details") => {
            answer(0, script.greeting.clone(), None, script, tx, newest);
        }
        Some(kind @ ("response_required" | "reminder_required")) => {
            let Some(id) = frame.get("response_id").and_then(Value::as_u64) else {
                return;
            };
            newest.fetch_max(id, Ordering::SeqCst);
            let last = last_user(frame);
            let (text, rule) = if kind == "reminder_required" {
                (script.reminder.clone(), None)
            } else {
                (script.answer_text(&last), script.rule_for(&last).cloned())
            };
            answer(id, text, rule, script, tx, newest);
        }
        _ => {}
    }
}

/// The user's last words in a request's transcript.
fn last_user(frame: &Value) -> String {
    frame
        .get("transcript")
        .and_then(Value::as_array)
        .and_then(|t| {
            t.iter()
                .rev()
                .find(|u| u.get("role").and_then(Value::as_str) == Some("user"))
        })
        .and_then(|u| u.get("content").and_then(Value::as_str))
        .unwrap_or_default()
        .to_string()
}

/// Streams one response: a tool call first when the rule has one, then the chunks, then
/// content_complete with end_call or the transfer. Stops when a newer response is asked.
fn answer(
    id: u64,
    text: String,
    rule: Option<super::script::Rule>,
    script: &Arc<Serve>,
    tx: &mpsc::UnboundedSender<Value>,
    newest: &Arc<AtomicU64>,
) {
    let (script, tx, newest) = (script.clone(), tx.clone(), newest.clone());
    tokio::spawn(async move {
        if let Some(tool) = rule.as_ref().and_then(|r| r.tool.as_ref()) {
            let call_id = format!("call_{id}");
            let _ = tx.send(
                json!({"response_type": "tool_call_invocation", "tool_call_id": call_id,
                "name": tool.name, "arguments": tool.arguments}),
            );
            let _ = tx.send(
                json!({"response_type": "tool_call_result", "tool_call_id": call_id,
                "content": tool.result}),
            );
        }
        for chunk in script.chunks(&text) {
            if newest.load(Ordering::SeqCst) > id {
                return;
            }
            let frame = json!({"response_type": "response", "response_id": id, "content": chunk,
                "content_complete": false});
            if tx.send(frame).is_err() {
                return;
            }
            tokio::time::sleep(script.chunk_delay).await;
        }
        if newest.load(Ordering::SeqCst) > id {
            return;
        }
        let mut last = json!({"response_type": "response", "response_id": id, "content": "",
            "content_complete": true});
        if let Some(rule) = &rule {
            if rule.end_call {
                last["end_call"] = json!(true);
            }
            if let Some(number) = &rule.transfer_number {
                last["transfer_number"] = json!(number);
            }
        }
        let _ = tx.send(last);
    });
}

/// POST .../chat/completions: the answer to the last user message, streamed as SSE when the
/// request says `stream: true`.
async fn completions(req: Request<Incoming>, script: Arc<Serve>) -> Response<Body> {
    let limited = http_body_util::Limited::new(req.into_body(), MAX_BODY);
    let Ok(collected) = limited.collect().await else {
        return plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is too large\n",
        );
    };
    let Ok(body) = serde_json::from_slice::<Value>(&collected.to_bytes()) else {
        return plain(StatusCode::BAD_REQUEST, "the request body is not JSON\n");
    };
    let last = body
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| {
            m.iter()
                .rev()
                .find(|u| u.get("role").and_then(Value::as_str) == Some("user"))
        })
        .and_then(|u| u.get("content").and_then(Value::as_str))
        .unwrap_or_default()
        .to_string();
    let text = script.answer_text(&last);
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if body.get("stream").and_then(Value::as_bool) != Some(true) {
        let whole = json!({"id": "chatcmpl-hookcli", "object": "chat.completion", "created": created,
            "model": "hookcli-scripted", "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": text}}]});
        let mut response = Response::new(Full::new(Bytes::from(whole.to_string())).boxed());
        response.headers_mut().insert(
            "content-type",
            hyper::header::HeaderValue::from_static("application/json"),
        );
        return response;
    }
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        let chunk = |delta: Value, finish: Value| {
            let c = json!({"id": "chatcmpl-hookcli", "object": "chat.completion.chunk",
                "created": created, "model": "hookcli-scripted",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
            Bytes::from(format!("data: {c}\n\n"))
        };
        for piece in script.chunks(&text) {
            let delta = json!({"role": "assistant", "content": piece});
            if tx.send(chunk(delta, Value::Null)).await.is_err() {
                return;
            }
            tokio::time::sleep(script.chunk_delay).await;
        }
        let _ = tx.send(chunk(json!({}), json!("stop"))).await;
        let _ = tx.send(Bytes::from_static(b"data: [DONE]\n\n")).await;
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|bytes| (Ok::<_, Infallible>(Frame::data(bytes)), rx))
    });
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        hyper::header::HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        "cache-control",
        hyper::header::HeaderValue::from_static("no-cache"),
    );
    response
}
