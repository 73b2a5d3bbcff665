//! listen's own HTTP/1 path for the request webhooks are: an HTTP/1.1 POST with a
//! Content-Length body within the limits. hyper's server cost about 2 µs a request on top of
//! this path's work, a tenth to a fifth of nginx's rate (bench/README.md, "listen against its
//! floor"), so the plain request is parsed with `httparse` (hyper's own parser), answered
//! from one buffer and written with one write.
//!
//! Anything else hands the connection to hyper for good, with the bytes already read: a
//! chunked body, `Expect` or `Upgrade` headers, HTTP/1.0, another method, a body over
//! `--max-body` or the memory budget, a head hyper would refuse. hyper then answers exactly
//! as it did before this path existed, so the rules of those cases live in one place.
//! `Connection` is read here, as hyper reads it: Node's and Python's HTTP clients send
//! `Connection: keep-alive` with every request, and a `close` among its tokens closes the
//! connection after the answer, which then says `connection: close`.

use std::io::{self, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use hyper::header::{CONNECTION, CONTENT_LENGTH, HeaderName, HeaderValue};
use hyper::{HeaderMap, Method, Response, StatusCode, Uri};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::{Arrival, Body, Conn, Head, State, respond, with_hyper};

/// How much more room each read asks for.
const READ_SIZE: usize = 8 * 1024;

/// A head not whole after this many bytes is left to hyper, whose limit (about 400 KB) and
/// 431 answer then apply.
const MAX_HEAD: usize = 64 * 1024;

/// Headers one request may have here; hyper takes a request with more.
const MAX_HEADERS: usize = 64;

/// Headers that change how a request is framed or answered: a request with one goes to hyper.
const HANDED_TO_HYPER: [&str; 4] = ["transfer-encoding", "expect", "upgrade", "trailer"];

/// Serves requests one after another (pipelined ones too) until the connection ends, or
/// hands it to hyper at the first request this path does not serve.
pub(super) async fn serve(mut stream: TcpStream, state: &Arc<State>, conn: &Arc<Conn>) {
    let mut unread = BytesMut::new();
    let mut out = Vec::new();
    loop {
        let (read, plain) = match next_head(&mut stream, &mut unread, state).await {
            Next::Plain(read, plain) => (read, plain),
            Next::Closed => return,
            Next::Other(read) => {
                return with_hyper(Rewound::new(read, stream), state, conn).await;
            }
        };
        let Some(held) = state.memory.take(plain.body_len as u64) else {
            // Over the memory budget: hyper's path refuses it and reads the rest away.
            return with_hyper(Rewound::new(read, stream), state, conn).await;
        };
        let arrival = Arrival::now(state, conn);
        let body_end = plain.head_len + plain.body_len;
        let body = if read.len() >= body_end {
            // The usual webhook: head and body came in one read, and are kept as read.
            unread = rest_of(&read, body_end);
            Body::Read(read.slice(plain.head_len..body_end), held)
        } else {
            let arrived = &read[plain.head_len..];
            match read_rest(&mut stream, arrived, plain.body_len, arrival.deadline).await {
                Rest::Read(body) => Body::Read(body, held),
                Rest::TimedOut { bytes } => Body::TimedOut { bytes },
                // The sender went away mid-body: no answer, as hyper does.
                Rest::Gone => return,
            }
        };
        drop(read);
        let Ok(mut response) = respond(state, conn, arrival, plain.head, body).await else {
            return;
        };
        if plain.close {
            say_close(&mut response);
        }
        out.clear();
        let close = encode(&response, &mut out);
        drop(response);
        if stream.write_all(&out).await.is_err() {
            return;
        }
        if close {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

/// The bytes after `end`, as the start of the next read: pipelined requests.
fn rest_of(read: &Bytes, end: usize) -> BytesMut {
    match read.len() - end {
        0 => BytesMut::new(),
        _ => BytesMut::from(&read[end..]),
    }
}

#[expect(
    clippy::large_enum_variant,
    reason = "returned once a request and matched at once; a Box would allocate per request"
)]
enum Next {
    /// A plain request's head, with everything read so far (from the head's first byte).
    Plain(Bytes, Plain),
    /// Any other request: hyper takes the connection, starting from these bytes.
    Other(Bytes),
    /// The connection ended between requests (or failed).
    Closed,
}

/// Reads until a request's head is whole, and says whether this path serves it.
async fn next_head(stream: &mut TcpStream, unread: &mut BytesMut, state: &State) -> Next {
    loop {
        if !unread.is_empty() {
            let read = std::mem::take(unread).freeze();
            match parse(&read, state.config.max_body) {
                Parsed::Plain(plain) => return Next::Plain(read, plain),
                Parsed::Other => return Next::Other(read),
                Parsed::Partial if read.len() > MAX_HEAD => return Next::Other(read),
                // Back to a buffer to read on into; no copy when nothing else holds it.
                Parsed::Partial => {
                    *unread = read
                        .try_into_mut()
                        .unwrap_or_else(|read| BytesMut::from(&read[..]));
                }
            }
        }
        unread.reserve(READ_SIZE);
        match stream.read_buf(unread).await {
            Ok(0) | Err(_) if unread.is_empty() => return Next::Closed,
            // Ended inside a head: hyper answers what it answers to a cut-off head.
            Ok(0) | Err(_) => return Next::Other(std::mem::take(unread).freeze()),
            Ok(_) => {}
        }
    }
}

/// The rest of a body, as it came.
enum Rest {
    Read(Bytes),
    /// Not all there by the deadline: how many bytes were.
    TimedOut {
        bytes: u64,
    },
    /// The connection ended or failed first.
    Gone,
}

/// Reads the rest of a body of `len` bytes, of which `arrived` are in, by the deadline.
async fn read_rest(
    stream: &mut TcpStream,
    arrived: &[u8],
    len: usize,
    deadline: tokio::time::Instant,
) -> Rest {
    let mut body = BytesMut::with_capacity(len);
    body.extend_from_slice(arrived);
    while body.len() < len {
        let room = len - body.len();
        // Limited to the body: the bytes after it are the next request's, read with it.
        let mut room = (&mut body).limit(room);
        match tokio::time::timeout_at(deadline, stream.read_buf(&mut room)).await {
            Err(_) => {
                let bytes = body.len() as u64;
                return Rest::TimedOut { bytes };
            }
            Ok(Ok(0) | Err(_)) => return Rest::Gone,
            Ok(Ok(_)) => {}
        }
    }
    Rest::Read(body.freeze())
}

/// The request at the start of `read` when this path serves it (for `Judge::judge_raw`).
pub(super) fn plain_request(read: &Bytes, max_body: u64) -> Option<Plain> {
    match parse(read, max_body) {
        Parsed::Plain(plain) => Some(plain),
        Parsed::Partial | Parsed::Other => None,
    }
}

/// A request this path serves, parsed.
pub(super) struct Plain {
    pub(super) head: Head,
    pub(super) head_len: usize,
    pub(super) body_len: usize,
    /// A `Connection` header asked to close the connection after the answer.
    pub(super) close: bool,
}

#[expect(
    clippy::large_enum_variant,
    reason = "returned once a request and matched at once; a Box would allocate per request"
)]
enum Parsed {
    Plain(Plain),
    Partial,
    Other,
}

/// Parses a head at the start of `read`. Header values and the path are kept as slices of
/// `read`, not copied.
fn parse(read: &Bytes, max_body: u64) -> Parsed {
    // Left uninitialised, as hyper does: httparse writes the headers it finds, and zeroing
    // 64 slots (2 KB) cost more than parsing a webhook's few.
    let mut slots = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let head_len = match request.parse_with_uninit_headers(read, &mut slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Other,
    };
    plain(read, &request, head_len, max_body).map_or(Parsed::Other, Parsed::Plain)
}

/// The request as [`Plain`], when it is one: an HTTP/1.1 POST in origin form whose body is
/// framed by one Content-Length within `max_body`, and nothing that changes the exchange.
fn plain(
    read: &Bytes,
    request: &httparse::Request<'_, '_>,
    head_len: usize,
    max_body: u64,
) -> Option<Plain> {
    if request.method != Some("POST") || request.version != Some(1) {
        return None;
    }
    let path = request.path.filter(|path| path.starts_with('/'))?;
    let uri = Uri::from_maybe_shared(read.slice_ref(path.as_bytes())).ok()?;
    let mut headers = HeaderMap::with_capacity(request.headers.len());
    let mut body_len = None;
    let mut close = false;
    for header in request.headers.iter() {
        if HANDED_TO_HYPER
            .iter()
            .any(|handed| header.name.eq_ignore_ascii_case(handed))
        {
            return None;
        }
        let name = HeaderName::from_bytes(header.name.as_bytes()).ok()?;
        let value = HeaderValue::from_maybe_shared(read.slice_ref(header.value)).ok()?;
        if name == CONTENT_LENGTH {
            if body_len.is_some() {
                return None;
            }
            body_len = Some(content_length(value.as_bytes())?);
        }
        // Any line asking to close wins, and a later `keep-alive` does not undo it.
        close |= name == CONNECTION && asks_to_close(&value);
        headers.append(name, value);
    }
    let body_len = body_len.filter(|len| *len <= max_body)?;
    Some(Plain {
        head: Head {
            method: Method::POST,
            uri,
            headers,
        },
        head_len,
        body_len: usize::try_from(body_len).ok()?,
        close,
    })
}

/// A `Connection` value with a `close` token, as hyper reads one (a value that is not
/// visible ASCII asks nothing).
fn asks_to_close(value: &HeaderValue) -> bool {
    value.to_str().is_ok() && crate::text::has_token(value.as_bytes(), "close")
}

/// Makes the answer say `connection: close`, where hyper puts it: a `close` added to the
/// answer's own `Connection` header, or the header added after the others.
fn say_close(response: &mut Response<Bytes>) {
    use hyper::header::Entry;
    match response.headers_mut().entry(CONNECTION) {
        Entry::Occupied(mut entry) => {
            if !entry.iter().any(asks_to_close) {
                entry.append(HeaderValue::from_static("close"));
            }
        }
        Entry::Vacant(entry) => {
            entry.insert(HeaderValue::from_static("close"));
        }
    }
}

/// A Content-Length of digits only, as hyper reads it; `None` for anything else.
fn content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Writes the answer as hyper writes it (status line, headers, Content-Length unless the
/// status has no body, the date, the body); true when the connection closes after it.
fn encode(response: &Response<Bytes>, out: &mut Vec<u8>) -> bool {
    let status = response.status();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    // hyper's words for a status with no reason of its own.
    let reason = status.canonical_reason().unwrap_or("<none>");
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut close = false;
    for (name, value) in response.headers() {
        close |= name == CONNECTION && asks_to_close(value);
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let has_body = !matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED);
    if has_body {
        let _ = write!(out, "content-length: {}\r\n", response.body().len());
    }
    out.extend_from_slice(b"date: ");
    date::extend(out);
    out.extend_from_slice(b"\r\n\r\n");
    if has_body {
        out.extend_from_slice(response.body());
    }
    close
}

/// The Date header's value, formatted once a second per thread, as hyper caches it.
mod date {
    use std::cell::RefCell;
    use std::time::{SystemTime, UNIX_EPOCH};

    thread_local! {
        static CACHED: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
    }

    pub(super) fn extend(out: &mut Vec<u8>) {
        let now = SystemTime::now();
        let second = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        CACHED.with_borrow_mut(|(at, text)| {
            if *at != second || text.is_empty() {
                *at = second;
                *text = httpdate::fmt_http_date(now);
            }
            out.extend_from_slice(text.as_bytes());
        });
    }
}

/// A connection handed to hyper: the bytes this path read first, then the socket.
pub(super) struct Rewound {
    read: Bytes,
    stream: TcpStream,
}

impl Rewound {
    pub(super) fn new(read: Bytes, stream: TcpStream) -> Self {
        Rewound { read, stream }
    }
}

impl AsyncRead for Rewound {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.read.is_empty() {
            return Pin::new(&mut this.stream).poll_read(cx, buf);
        }
        let n = this.read.len().min(buf.remaining());
        buf.put_slice(&this.read.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Rewound {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
