//! The Retell/UponAI LLM WebSocket, played from the platform's side: one call per connection
//! to `{url}/{call_id}`. The call follows the server's `config` (call_details, ping_pong
//! every interval when auto_reconnect), waits for the greeting (response_id 0), then plays
//! its steps and records everything the cases judge in a [`CallLog`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::Instant as TokioInstant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{Ask, CallError, CallLog, DEFAULT_SILENCE, Malformed, Settings, Turn};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long after a newer response_required chunks of the discarded response are still taken
/// for ones already on the wire (a server's Nagle buffer can hold a whole short response).
/// Later ones, and any after the server's first chunk of the newer response, are wasted work.
pub const IN_FLIGHT: Duration = Duration::from_millis(200);

/// One thing the caller does (payloads/llm.toml's steps, or a conversation's user turns).
#[derive(Debug, Clone)]
pub enum Step {
    Say {
        text: String,
        interrupt: Option<String>,
        update: Option<String>,
    },
    Silence,
}

/// Who is calling, for call_details and the transcript.
#[derive(Debug, Clone)]
pub struct CallSetup {
    pub call_id: String,
    pub scenario: String,
    pub details: Value,
}

/// One response the platform asked for, as it streams in.
#[derive(Debug, Default)]
struct Resp {
    asked_at: Option<Instant>,
    first: Option<Instant>,
    complete_at: Option<Instant>,
    content: String,
    chunks: usize,
    end_call: bool,
    transfer_number: Option<String>,
    discarded_at: Option<Instant>,
    wasted: usize,
    tools: Vec<String>,
}

/// How a wait ended.
#[derive(Debug, PartialEq, Eq)]
enum Waited {
    Met,
    Timeout,
    Closed,
}

struct Call<'a> {
    socket: Socket,
    settings: &'a Settings,
    log: CallLog,
    responses: BTreeMap<u64, Resp>,
    newest: u64,
    transcript: Vec<Value>,
    with_tools: Vec<Value>,
    pending_pings: VecDeque<(u64, Instant)>,
    pinging: bool,
    next_ping: TokioInstant,
    closed: bool,
    details_sent: bool,
    details: Value,
    /// From update_agent's reminder_trigger_ms.
    reminder_after: Option<Duration>,
    tool_ids: BTreeSet<String>,
    started: Instant,
}

/// Plays one call: connect, greeting, the steps, the last ping, close.
pub async fn play(
    url: &str,
    setup: CallSetup,
    steps: &[Step],
    settings: &Settings,
) -> Result<CallLog, CallError> {
    let full = format!("{}/{}", url.trim_end_matches('/'), setup.call_id);
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = full
        .as_str()
        .into_client_request()
        .map_err(|e| CallError::Unreachable(format!("{full}: {}", open_error(&e))))?;
    request.headers_mut().extend(settings.headers.clone());
    // Nagle off: the frames are small, and a delayed ACK would add 40 ms to every latency.
    let connecting = tokio_tungstenite::connect_async_with_config(request, None, true);
    let connecting = tokio::time::timeout(settings.timeout, connecting);
    let connected = tokio::select! {
        connected = connecting => connected,
        () = settings.stop.cancelled() => return Err(CallError::Interrupted),
    };
    let socket = match connected {
        Err(_) => {
            return Err(CallError::Unreachable(format!(
                "{full}: no WebSocket handshake within {}",
                crate::duration::short(settings.timeout)
            )));
        }
        Ok(Err(e)) => {
            return Err(CallError::Unreachable(format!(
                "{full}: {}",
                open_error(&e)
            )));
        }
        Ok(Ok((socket, _))) => socket,
    };
    let started = Instant::now();
    let mut call = Call {
        socket,
        settings,
        log: CallLog {
            scenario: setup.scenario,
            call_id: setup.call_id,
            url: full,
            ..CallLog::default()
        },
        responses: BTreeMap::new(),
        newest: 0,
        transcript: Vec::new(),
        with_tools: Vec::new(),
        pending_pings: VecDeque::new(),
        pinging: false,
        next_ping: TokioInstant::now(),
        closed: false,
        details_sent: false,
        details: setup.details,
        reminder_after: None,
        tool_ids: BTreeSet::new(),
        started,
    };
    // The greeting is asked by connecting.
    call.responses.insert(
        0,
        Resp {
            asked_at: Some(started),
            ..Resp::default()
        },
    );
    call.run(steps).await;
    Ok(call.log)
}

/// Why the WebSocket did not open, in plain words (Retell: error_llm_websocket_open).
fn open_error(e: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error;
    match e {
        Error::Io(io) => crate::text::io_reason(io),
        Error::Http(response) => format!(
            "answered HTTP {} instead of switching to WebSocket",
            response.status()
        ),
        Error::Url(url) => format!("not a WebSocket URL ({url})"),
        other => other.to_string(),
    }
}

impl Call<'_> {
    async fn run(&mut self, steps: &[Step]) {
        let greeting = self.await_response(0, Ask::Greeting, "").await;
        let mut ended = self.finish_turn(greeting);
        for step in steps {
            if ended || self.closed || self.log.interrupted {
                break;
            }
            ended = match step {
                Step::Say {
                    text,
                    interrupt,
                    update,
                } => {
                    self.say(text, interrupt.as_deref(), update.as_deref())
                        .await
                }
                Step::Silence => self.silence().await,
            };
        }
        self.last_ping().await;
        if self.log.ended_by.is_empty() {
            self.log.ended_by = if self.log.interrupted {
                "interrupted".into()
            } else if self.closed {
                "server closed".into()
            } else {
                "hangup".into()
            };
        }
        self.close().await;
    }

    /// The user says `text`; the agent answers (and may be talked over, or hear more words).
    async fn say(&mut self, text: &str, interrupt: Option<&str>, update: Option<&str>) -> bool {
        self.user_speaks(text).await;
        let id = self.ask("response_required").await;
        if interrupt.is_none() && update.is_none() {
            let turn = self.await_response(id, Ask::Response, text).await;
            return self.finish_turn(turn);
        }
        let first = self.wait_first(id).await;
        if let Some(more) = update {
            // The user's words go on while the agent streams: the transcript changes, the
            // response in progress must still finish.
            if first == Waited::Met {
                if let Some(last) = self.transcript.last_mut() {
                    *last = utterance("user", more);
                }
                self.send_update(None).await;
            }
            let turn = self.await_response(id, Ask::Response, text).await;
            return self.finish_turn(turn);
        }
        let interruption = interrupt.unwrap_or_default();
        let mut cut = self.turn_of(id, Ask::Response, text);
        cut.interrupted = self.responses[&id].complete_at.is_none();
        if first == Waited::Timeout {
            cut.error = Some(format!(
                "no chunk for response_id {id} within {}",
                crate::duration::short(self.settings.timeout)
            ));
        }
        // What was spoken of the cut response stays in the transcript, as on a real call.
        if !cut.agent.is_empty() {
            self.transcript.push(utterance("agent", &cut.agent));
        }
        if first == Waited::Closed {
            return self.finish_turn(cut);
        }
        self.log.turns.push(cut);
        self.user_speaks(interruption).await;
        let next = self.ask("response_required").await;
        let turn = self.await_response(next, Ask::Response, interruption).await;
        self.finish_turn(turn)
    }

    /// The user stays silent: reminder_required after the silence.
    async fn silence(&mut self) -> bool {
        let wait = self
            .settings
            .silence
            .or(self.reminder_after)
            .unwrap_or(DEFAULT_SILENCE);
        let until = Instant::now() + wait;
        if self.wait(|_| false, until).await == Waited::Closed {
            return true;
        }
        let id = self.ask("reminder_required").await;
        let turn = self.await_response(id, Ask::Reminder, "").await;
        self.finish_turn(turn)
    }

    /// Appends the user's words to the transcript as the platform does: an update_only
    /// while they speak (half the words, the user's turn), then the whole utterance.
    async fn user_speaks(&mut self, text: &str) {
        let words: Vec<&str> = text.split_whitespace().collect();
        let half = words[..words.len() / 2].join(" ");
        if !half.is_empty() {
            self.transcript.push(utterance("user", &half));
            self.send_update(Some("user_turn")).await;
            self.transcript.pop();
        }
        self.transcript.push(utterance("user", text));
        self.send_update(None).await;
    }

    async fn send_update(&mut self, turntaking: Option<&str>) {
        let mut frame = json!({
            "interaction_type": "update_only",
            "transcript": self.transcript,
        });
        if let Some(t) = turntaking {
            frame["turntaking"] = json!(t);
        }
        self.add_tools(&mut frame);
        self.send(frame).await;
    }

    /// Sends response_required or reminder_required with the next id; every older response
    /// still streaming is discarded from now on.
    async fn ask(&mut self, kind: &str) -> u64 {
        self.newest += 1;
        let id = self.newest;
        let now = Instant::now();
        for resp in self.responses.values_mut() {
            if resp.complete_at.is_none() && resp.discarded_at.is_none() {
                resp.discarded_at = Some(now);
            }
        }
        self.responses.insert(
            id,
            Resp {
                asked_at: Some(Instant::now()),
                ..Resp::default()
            },
        );
        let mut frame = json!({
            "interaction_type": kind,
            "response_id": id,
            "transcript": self.transcript,
        });
        self.add_tools(&mut frame);
        self.send(frame).await;
        id
    }

    fn add_tools(&self, frame: &mut Value) {
        let asked = self
            .log
            .config
            .as_ref()
            .and_then(|c| c.get("transcript_with_tool_calls"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if asked {
            let mut all = self.transcript.clone();
            all.extend(self.with_tools.iter().cloned());
            frame["transcript_with_tool_calls"] = Value::Array(all);
        }
    }

    /// Adds a finished turn to the log and the agent's words to the transcript; true when
    /// the call ends with it (end_call, a transfer).
    fn finish_turn(&mut self, turn: Turn) -> bool {
        if !turn.agent.is_empty() && !turn.interrupted {
            self.transcript.push(utterance("agent", &turn.agent));
        }
        let ended = if turn.end_call {
            Some("end_call")
        } else if turn.transfer_number.is_some() {
            Some("transfer")
        } else {
            None
        };
        if let Some(how) = ended {
            self.log.ended_by = how.into();
        }
        self.log.turns.push(turn);
        ended.is_some()
    }

    async fn wait_first(&mut self, id: u64) -> Waited {
        let until = Instant::now() + self.settings.timeout;
        self.wait(
            move |c| {
                let r = &c.responses[&id];
                r.first.is_some() || r.complete_at.is_some()
            },
            until,
        )
        .await
    }

    /// Waits for response `id`: its first chunk within the timeout, then its content_complete
    /// within the timeout of that.
    async fn await_response(&mut self, id: u64, ask: Ask, user: &str) -> Turn {
        let timeout = self.settings.timeout;
        let error = match self.wait_first(id).await {
            Waited::Met => {
                let first = self.responses[&id].first.unwrap_or_else(Instant::now);
                let done = self
                    .wait(
                        move |c| c.responses[&id].complete_at.is_some(),
                        first + timeout,
                    )
                    .await;
                match done {
                    Waited::Met => None,
                    Waited::Timeout => Some(format!(
                        "no content_complete within {} of the first chunk",
                        crate::duration::short(timeout)
                    )),
                    Waited::Closed => Some(self.closed_reason()),
                }
            }
            Waited::Timeout => Some(format!(
                "no chunk for response_id {id} within {}",
                crate::duration::short(timeout)
            )),
            Waited::Closed => Some(self.closed_reason()),
        };
        let mut turn = self.turn_of(id, ask, user);
        turn.error = error;
        turn
    }

    fn closed_reason(&self) -> String {
        if self.log.interrupted {
            return super::INTERRUPTED.into();
        }
        match (self.log.server_close, self.log.dropped) {
            (Some(code), _) => format!("the server closed the connection (code {code})"),
            (None, true) => "the connection was lost (no close frame)".into(),
            (None, false) => "the connection closed".into(),
        }
    }

    fn turn_of(&self, id: u64, ask: Ask, user: &str) -> Turn {
        let resp = &self.responses[&id];
        let asked = resp.asked_at.unwrap_or(self.started);
        let mut turn = Turn::new(ask, Some(id), user);
        turn.agent = resp.content.clone();
        turn.first_chunk = resp.first.map(|t| t - asked);
        turn.complete = resp.complete_at.map(|t| t - asked);
        turn.chunks = resp.chunks;
        turn.end_call = resp.end_call;
        turn.transfer_number = resp.transfer_number.clone();
        turn.tool_calls = resp.tools.clone();
        turn
    }

    /// Reads frames (and sends pings) until `done` holds, `until` passes or the connection
    /// closes.
    async fn wait(&mut self, done: impl Fn(&Self) -> bool, until: Instant) -> Waited {
        let until = TokioInstant::from_std(until);
        loop {
            if done(self) {
                return Waited::Met;
            }
            if self.closed || self.log.interrupted {
                return Waited::Closed;
            }
            tokio::select! {
                frame = self.socket.next() => self.receive(frame).await,
                () = self.settings.stop.cancelled() => self.log.interrupted = true,
                _ = tokio::time::sleep_until(self.next_ping), if self.pinging => self.ping().await,
                _ = tokio::time::sleep_until(until) => return Waited::Timeout,
            }
        }
    }

    async fn ping(&mut self) {
        self.note_ping_age();
        // Each ping its own timestamp, even two in one millisecond: an echo names its ping.
        let last = self.pending_pings.back().map_or(0, |(t, _)| *t);
        let timestamp = now_ms().max(last + 1);
        self.pending_pings.push_back((timestamp, Instant::now()));
        self.log.pings_sent += 1;
        self.next_ping = TokioInstant::now() + self.settings.ping_interval;
        self.send(json!({"interaction_type": "ping_pong", "timestamp": timestamp}))
            .await;
    }

    /// Keeps the worst wait of an unechoed ping, and whether it passed the ping timeout.
    fn note_ping_age(&mut self) {
        if let Some((_, sent)) = self.pending_pings.front() {
            let age = sent.elapsed();
            self.log.ping_worst = self.log.ping_worst.max(Some(age));
            if age >= self.settings.ping_timeout {
                self.log.ping_missed = true;
            }
        }
    }

    /// With auto_reconnect, the call's last ping must be echoed too: one is sent now if the
    /// call was too short for any, and the oldest unechoed one is waited for up to the ping
    /// timeout.
    async fn last_ping(&mut self) {
        if !self.pinging || self.closed || self.log.interrupted {
            return;
        }
        if self.log.pings_sent == 0 {
            self.ping().await;
        }
        if let Some((_, sent)) = self.pending_pings.front() {
            let until = *sent + self.settings.ping_timeout;
            self.wait(|c| c.pending_pings.is_empty(), until).await;
            self.note_ping_age();
        }
    }

    async fn close(&mut self) {
        if self.closed {
            return;
        }
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "call ended".into(),
        };
        if self.socket.send(Message::Close(Some(frame))).await.is_err() {
            return;
        }
        // The server's answering close frame; a server that never answers is not waited on
        // longer than a response would be. A code other than 1000 there is the server's own
        // (one already on its way, or an answer that is not an echo).
        // After Ctrl-C the user is waiting: a second at most.
        let limit = if self.log.interrupted {
            self.settings.timeout.min(Duration::from_secs(1))
        } else {
            self.settings.timeout
        };
        let log = &mut self.log;
        let drain = async {
            while let Some(Ok(message)) = self.socket.next().await {
                if let Message::Close(Some(frame)) = message
                    && frame.code != CloseCode::Normal
                {
                    log.server_close = Some(u16::from(frame.code));
                }
            }
        };
        let _ = tokio::time::timeout(limit, drain).await;
        self.closed = true;
    }

    async fn send(&mut self, frame: Value) {
        if self.closed {
            return;
        }
        if self
            .socket
            .send(Message::text(frame.to_string()))
            .await
            .is_err()
        {
            self.closed = true;
            self.log.dropped = self.log.server_close.is_none();
        }
    }

    async fn receive(
        &mut self,
        frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) {
        match frame {
            None | Some(Err(_)) => {
                self.closed = true;
                self.log.dropped = self.log.server_close.is_none();
            }
            Some(Ok(Message::Close(frame))) => {
                self.closed = true;
                // No status in the close frame is 1005 on the wire's terms.
                self.log.server_close = Some(frame.map_or(1005, |f| u16::from(f.code)));
            }
            Some(Ok(Message::Text(text))) => self.frame(text.as_str()).await,
            Some(Ok(Message::Binary(bytes))) => self.log.malformed.push(Malformed {
                frame: format!("({} bytes of binary)", bytes.len()),
                why: "a binary frame: the protocol is JSON text frames".into(),
            }),
            Some(Ok(_)) => {}
        }
    }

    /// One text frame from the server.
    async fn frame(&mut self, text: &str) {
        let parsed: Result<Value, _> = serde_json::from_str(text);
        let value = match parsed {
            Ok(Value::Object(map)) => Value::Object(map),
            Ok(_) => return self.malformed(text, "not a JSON object"),
            Err(e) => return self.malformed(text, &format!("not JSON ({e})")),
        };
        let kind = value.get("response_type").and_then(Value::as_str);
        match kind {
            Some("config") => self.config(&value).await,
            Some("response") => self.response(&value, text),
            Some("agent_interrupt") => {
                if let Err(why) = check_interrupt(&value) {
                    self.malformed(text, &why);
                }
            }
            Some("ping_pong") => self.pong(&value, text),
            Some("tool_call_invocation") => self.tool_invocation(&value),
            Some("tool_call_result") => self.tool_result(&value),
            Some("update_agent") => self.update_agent(&value),
            Some("metadata") => {}
            Some(other) => self.malformed(text, &format!("unknown response_type `{other}`")),
            None => self.malformed(text, "no response_type"),
        }
    }

    fn malformed(&mut self, text: &str, why: &str) {
        self.log.malformed.push(Malformed {
            frame: text.chars().take(200).collect(),
            why: why.to_string(),
        });
    }

    async fn config(&mut self, value: &Value) {
        let Some(config) = value.get("config").filter(|c| c.is_object()) else {
            return self.malformed(&value.to_string(), "config without a `config` object");
        };
        self.log.config = Some(config.clone());
        let flag = |name: &str| config.get(name).and_then(Value::as_bool).unwrap_or(false);
        if flag("call_details") && !self.details_sent {
            self.details_sent = true;
            let frame = json!({"interaction_type": "call_details", "call": self.details});
            self.send(frame).await;
        }
        if flag("auto_reconnect") && !self.pinging {
            self.pinging = true;
            self.next_ping = TokioInstant::now();
        }
    }

    fn response(&mut self, value: &Value, text: &str) {
        let (id, content, complete) = match check_response(value) {
            Ok(parts) => parts,
            Err(why) => return self.malformed(text, &why),
        };
        let newer_started = self
            .responses
            .range(id + 1..)
            .any(|(_, r)| r.first.is_some());
        let Some(resp) = self.responses.get_mut(&id) else {
            if !self.log.unasked.contains(&id) {
                self.log.unasked.push(id);
            }
            return;
        };
        if resp.complete_at.is_some() {
            let list = if complete {
                &mut self.log.double_complete
            } else {
                &mut self.log.after_complete
            };
            if !list.contains(&id) {
                list.push(id);
            }
            return;
        }
        let now = Instant::now();
        if let Some(at) = resp.discarded_at
            && (newer_started || now - at > IN_FLIGHT)
        {
            resp.wasted += 1;
        }
        resp.first.get_or_insert(now);
        resp.content.push_str(&content);
        resp.chunks += 1;
        resp.end_call |= value.get("end_call").and_then(Value::as_bool) == Some(true);
        if let Some(number) = value.get("transfer_number").and_then(Value::as_str) {
            resp.transfer_number = Some(number.to_string());
        }
        if complete {
            resp.complete_at = Some(now);
        }
        if resp.wasted > 0 {
            match self.log.wasted.iter_mut().find(|(w, _)| *w == id) {
                Some(entry) => entry.1 = resp.wasted,
                None => self.log.wasted.push((id, resp.wasted)),
            }
        }
    }

    fn pong(&mut self, value: &Value, text: &str) {
        let Some(timestamp) = value.get("timestamp").and_then(Value::as_u64) else {
            return self.malformed(text, "ping_pong without a numeric `timestamp`");
        };
        if let Some(at) = self.pending_pings.iter().position(|(t, _)| *t == timestamp) {
            // An echo answers its ping and every older one.
            let (_, sent) = self.pending_pings[at];
            self.log.ping_worst = self.log.ping_worst.max(Some(sent.elapsed()));
            if sent.elapsed() >= self.settings.ping_timeout {
                self.log.ping_missed = true;
            }
            self.note_ping_age();
            self.pending_pings.drain(..=at);
            self.log.pings_echoed += 1;
        }
    }

    /// The response the server is working on: the newest asked.
    fn current(&mut self) -> Option<&mut Resp> {
        self.responses.get_mut(&self.newest)
    }

    fn tool_invocation(&mut self, value: &Value) {
        self.log.tool_frames += 1;
        let id = value.get("tool_call_id").and_then(Value::as_str);
        let name = value.get("name").and_then(Value::as_str);
        let arguments = value.get("arguments");
        let problem = match (id, name, arguments) {
            (None, _, _) => Some("tool_call_invocation without a string tool_call_id".into()),
            (_, None, _) => Some("tool_call_invocation without a string name".into()),
            (_, _, Some(Value::String(args))) => serde_json::from_str::<Value>(args)
                .err()
                .map(|e| format!("tool_call_invocation arguments are not JSON text ({e}): {args}")),
            (_, _, Some(other)) => Some(format!(
                "tool_call_invocation arguments must be a JSON string, got {other}"
            )),
            (_, _, None) => Some("tool_call_invocation without arguments".into()),
        };
        if let Some(problem) = problem {
            self.log.bad_tool_frames.push(problem);
            return;
        }
        let (id, name) = (id.unwrap_or_default(), name.unwrap_or_default());
        let args = arguments.and_then(Value::as_str).unwrap_or_default();
        self.tool_ids.insert(id.to_string());
        self.with_tools.push(json!({
            "role": "tool_call_invocation", "tool_call_id": id, "name": name, "arguments": args,
        }));
        let shown = format!("{name}({args})");
        if let Some(resp) = self.current() {
            resp.tools.push(shown);
        }
    }

    fn tool_result(&mut self, value: &Value) {
        self.log.tool_frames += 1;
        let id = value.get("tool_call_id").and_then(Value::as_str);
        let content = value.get("content").and_then(Value::as_str);
        let (Some(id), Some(content)) = (id, content) else {
            self.log
                .bad_tool_frames
                .push("tool_call_result without a string tool_call_id and content".into());
            return;
        };
        if !self.tool_ids.contains(id) {
            self.log.bad_tool_frames.push(format!(
                "tool_call_result for tool_call_id `{id}`, which no invocation named"
            ));
            return;
        }
        self.with_tools.push(json!({
            "role": "tool_call_result", "tool_call_id": id, "content": content,
        }));
        let content = content.to_string();
        if let Some(last) = self.current().and_then(|r| r.tools.last_mut()) {
            last.push_str(&format!(" = {content}"));
        }
    }

    fn update_agent(&mut self, value: &Value) {
        self.log.agent_updates += 1;
        let Some(config) = value.get("agent_config").and_then(Value::as_object) else {
            self.log
                .bad_agent_updates
                .push("update_agent without an agent_config object".into());
            return;
        };
        let unit = |key: &str| match config.get(key) {
            None => None,
            Some(v) if v.as_f64().is_some_and(|f| (0.0..=1.0).contains(&f)) => None,
            Some(v) => Some(format!("{key} must be a number from 0 to 1, got {v}")),
        };
        let mut problems: Vec<String> = ["responsiveness", "interruption_sensitivity"]
            .into_iter()
            .filter_map(unit)
            .collect();
        match config.get("reminder_trigger_ms") {
            Some(v) if v.as_u64().is_some_and(|ms| ms > 0) => {
                self.reminder_after = v.as_u64().map(Duration::from_millis);
            }
            Some(v) => problems.push(format!("reminder_trigger_ms must be above 0, got {v}")),
            None => {}
        }
        if let Some(v) = config.get("reminder_max_count")
            && v.as_u64().is_none()
        {
            problems.push(format!("reminder_max_count must be 0 or more, got {v}"));
        }
        self.log.bad_agent_updates.extend(problems);
    }
}

/// A `response` frame's id, content and content_complete, or what is wrong with it.
fn check_response(value: &Value) -> Result<(u64, String, bool), String> {
    let id = value
        .get("response_id")
        .and_then(Value::as_u64)
        .ok_or("response without an integer response_id")?;
    let content = value
        .get("content")
        .and_then(Value::as_str)
        .ok_or("response without a string content")?;
    let complete = value
        .get("content_complete")
        .and_then(Value::as_bool)
        .ok_or("response without a boolean content_complete")?;
    Ok((id, content.to_string(), complete))
}

fn check_interrupt(value: &Value) -> Result<(), String> {
    value
        .get("interrupt_id")
        .and_then(Value::as_u64)
        .ok_or("agent_interrupt without an integer interrupt_id")?;
    value
        .get("content")
        .and_then(Value::as_str)
        .ok_or("agent_interrupt without a string content")?;
    value
        .get("content_complete")
        .and_then(Value::as_bool)
        .ok_or("agent_interrupt without a boolean content_complete")?;
    Ok(())
}

/// A transcript entry as the platform writes it, with word timings 0.3 s apart.
fn utterance(role: &str, content: &str) -> Value {
    let words: Vec<Value> = content
        .split_whitespace()
        .enumerate()
        .map(|(i, word)| {
            let start = i as f64 * 0.3;
            json!({"word": word, "start": start, "end": start + 0.25})
        })
        .collect();
    json!({"role": role, "content": content, "words": words})
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
