//! load's HTTP/1 client for plain http: one kept-alive connection per worker, a request
//! written with one write, the answer's head parsed with `httparse` and its body read to its
//! end and thrown away. hyper's connection-level client cost about 5 µs of CPU a delivery
//! (oha's whole user time, bench/README.md), mostly in passing each request and answer
//! between the worker and a connection task of its own; this path has no second task.
//!
//! It reads what a receiver may answer to a POST: a Content-Length or chunked body, none
//! for 1xx, 204 and 304, or a body to the end of the connection; interim 1xx answers are
//! skipped. Anything it cannot read is a reset, as hyper reports it.

use std::io;
use std::mem::MaybeUninit;

use bytes::{Buf, BytesMut};
use hyper::header::{CONTENT_LENGTH, HeaderMap};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::FailKind;
use crate::signing::Keyed;
use crate::text::has_token;

/// How much more room each read asks for.
const READ_SIZE: usize = 8 * 1024;

/// An answer's head not whole after this many bytes is not an answer load can read.
const MAX_HEAD: usize = 64 * 1024;

/// Headers an answer may have.
const MAX_HEADERS: usize = 64;

/// A chunk-size line longer than this is not one.
const MAX_CHUNK_LINE: usize = 1024;

/// A request's signature: the key made ready, the URL it covers, the time it is made at.
pub(super) struct Signature<'a> {
    pub keyed: &'a Keyed,
    pub url: &'a str,
    pub at_ms: u64,
}

/// A request's first line and the headers every request has, written once at start.
pub(super) struct Preamble {
    bytes: Vec<u8>,
    /// Whether the headers give a Content-Length (a -H), so none is added.
    has_length: bool,
}

impl Preamble {
    /// `POST path`, and `headers` as hyper writes them: without those the signature writes
    /// (see `prepare_plain_headers`).
    pub(super) fn new(path: &str, headers: &HeaderMap) -> Preamble {
        let mut bytes = Vec::with_capacity(512);
        bytes.extend_from_slice(b"POST ");
        bytes.extend_from_slice(path.as_bytes());
        bytes.extend_from_slice(b" HTTP/1.1\r\n");
        for (name, value) in headers {
            bytes.extend_from_slice(name.as_str().as_bytes());
            bytes.extend_from_slice(b": ");
            bytes.extend_from_slice(value.as_bytes());
            bytes.extend_from_slice(b"\r\n");
        }
        Preamble {
            bytes,
            has_length: headers.contains_key(CONTENT_LENGTH),
        }
    }
}

/// Writes a POST of `body` into `out`: the preamble, the signature's headers, a
/// Content-Length unless the preamble has one, and the body. It is sent with one write: a
/// writev of the head and of the body where it lies cost 0.25 µs more system time a request,
/// and copying the body here costs no user time that shows (bench/README.md).
pub(super) fn encode(
    preamble: &Preamble,
    signature: Option<&Signature<'_>>,
    body: &[u8],
    out: &mut Vec<u8>,
) {
    out.clear();
    out.extend_from_slice(&preamble.bytes);
    if let Some(Signature { keyed, url, at_ms }) = signature {
        keyed.sign_each(url, body, *at_ms, &mut |name, value| {
            write_header(out, name, value)
        });
    }
    if !preamble.has_length {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// Appends `name: value`, the value given in pieces, as they are: the catalog checks the
/// signature's header names and token prefix when it is read, and `Rules::key_bytes` refuses
/// a token key a header cannot carry; the rest is digits, hex and base64.
fn write_header(out: &mut Vec<u8>, name: &str, value: &[&[u8]]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    for piece in value {
        out.extend_from_slice(piece);
    }
    out.extend_from_slice(b"\r\n");
}

/// How an exchange on a connection failed.
pub(super) enum Failure {
    /// The request could not be written: it never went out.
    Unsent,
    /// Written, and the connection ended (or was reset) before a whole answer head came back.
    Unanswered,
    /// Anything else: an answer cut off in its body, or one that is not HTTP/1.
    Reset,
}

/// One worker's connection, with the bytes read past the last answer's head.
pub(super) struct Connection {
    stream: TcpStream,
    read: BytesMut,
}

impl Connection {
    pub(super) async fn open(addr: &str) -> Result<Connection, FailKind> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|_| FailKind::Connect)?;
        let _ = stream.set_nodelay(true);
        Ok(Connection {
            stream,
            read: BytesMut::with_capacity(READ_SIZE),
        })
    }

    /// Whether the connection can carry another request: the receiver has not closed it
    /// (or sent anything unasked) since the last answer. tokio knows the socket is quiet
    /// without a system call when nothing arrived since a read found it empty.
    pub(super) fn reusable(&self) -> bool {
        let mut probe = [0u8; 1];
        self.read.is_empty()
            && matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Sends `request` and reads the answer whole: its status, and whether the connection
    /// can carry the next request.
    pub(super) async fn exchange(&mut self, request: &[u8]) -> Result<(u16, bool), Failure> {
        self.stream
            .write_all(request)
            .await
            .map_err(|_| Failure::Unsent)?;
        loop {
            let head = loop {
                match parse(&self.read) {
                    Parsed::Head(head) => break head,
                    Parsed::Partial if self.read.len() <= MAX_HEAD => {
                        if !self.fill().await {
                            return Err(Failure::Unanswered);
                        }
                    }
                    Parsed::Partial | Parsed::Bad => return Err(Failure::Reset),
                }
            };
            self.read.advance(head.len);
            if (100..200).contains(&head.status) {
                continue;
            }
            let kept = match head.body {
                Framing::None => head.keep_alive,
                Framing::Length(len) => self.skip(len).await.map(|()| head.keep_alive)?,
                Framing::Chunked => self.skip_chunked().await.map(|()| head.keep_alive)?,
                Framing::ToEnd => self.skip_to_end().await.map(|()| false)?,
            };
            return Ok((head.status, kept));
        }
    }

    /// Reads more; false at the end of the stream or on an error.
    async fn fill(&mut self) -> bool {
        self.read.reserve(READ_SIZE);
        matches!(self.stream.read_buf(&mut self.read).await, Ok(n) if n > 0)
    }

    async fn skip(&mut self, mut len: u64) -> Result<(), Failure> {
        loop {
            let here = len.min(self.read.len() as u64);
            self.read.advance(here as usize);
            len -= here;
            if len == 0 {
                return Ok(());
            }
            if !self.fill().await {
                return Err(Failure::Reset);
            }
        }
    }

    async fn skip_chunked(&mut self) -> Result<(), Failure> {
        loop {
            let size = self.line().await?;
            let size = chunk_size(&size).ok_or(Failure::Reset)?;
            if size == 0 {
                // Trailer fields, if any, up to the empty line.
                while !self.line().await?.is_empty() {}
                return Ok(());
            }
            self.skip(size).await?;
            if !self.line().await?.is_empty() {
                return Err(Failure::Reset);
            }
        }
    }

    /// The next line, without its CRLF.
    async fn line(&mut self) -> Result<BytesMut, Failure> {
        loop {
            if let Some(end) = self.read.windows(2).position(|pair| pair == b"\r\n") {
                let line = self.read.split_to(end);
                self.read.advance(2);
                return Ok(line);
            }
            if self.read.len() > MAX_CHUNK_LINE || !self.fill().await {
                return Err(Failure::Reset);
            }
        }
    }

    async fn skip_to_end(&mut self) -> Result<(), Failure> {
        loop {
            self.read.clear();
            match self.stream.read_buf(&mut self.read).await {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(_) => return Err(Failure::Reset),
            }
        }
    }
}

/// A chunk's size in hex, before any `;extension`.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let digits = line.split(|b| *b == b';').next()?;
    let digits = std::str::from_utf8(digits).ok()?.trim_matches([' ', '\t']);
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

/// How an answer's body is framed.
enum Framing {
    None,
    Length(u64),
    Chunked,
    /// No length: the body runs to the end of the connection.
    ToEnd,
}

struct Head {
    status: u16,
    len: usize,
    body: Framing,
    keep_alive: bool,
}

enum Parsed {
    Head(Head),
    Partial,
    Bad,
}

/// Parses an answer's head at the start of `read`.
fn parse(read: &[u8]) -> Parsed {
    if read.is_empty() {
        // Before an answer's first read: the usual case, not worth a parse.
        return Parsed::Partial;
    }
    // Left uninitialised: setting 64 empty headers wrote 2 KB per parse.
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        read,
        &mut slots,
    );
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Bad,
    };
    let Some(status) = response.code else {
        return Parsed::Bad;
    };
    let mut length = None;
    let mut chunked = false;
    // HTTP/1.1 keeps the connection unless told to close; HTTP/1.0 closes it.
    let mut keep_alive = response.version == Some(1);
    for header in response.headers.iter() {
        let value = header.value;
        if header.name.eq_ignore_ascii_case("content-length") {
            let Some(len) = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
            else {
                return Parsed::Bad;
            };
            if length.is_some_and(|before| before != len) {
                return Parsed::Bad;
            }
            length = Some(len);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = last_token(value).eq_ignore_ascii_case(b"chunked");
        } else if header.name.eq_ignore_ascii_case("connection") && has_token(value, "close") {
            keep_alive = false;
        }
    }
    let body = match (status, chunked, length) {
        (100..200 | 204 | 304, _, _) => Framing::None,
        (_, true, _) => Framing::Chunked,
        (_, false, Some(0)) => Framing::None,
        (_, false, Some(len)) => Framing::Length(len),
        (_, false, None) => Framing::ToEnd,
    };
    Parsed::Head(Head {
        status,
        len,
        body,
        keep_alive,
    })
}

/// The last of a comma-separated header value's tokens (the coding applied last).
fn last_token(value: &[u8]) -> &[u8] {
    value
        .rsplit(|b| *b == b',')
        .next()
        .unwrap_or_default()
        .trim_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Head {
        match parse(text.as_bytes()) {
            Parsed::Head(head) => head,
            _ => panic!("not a whole head: {text:?}"),
        }
    }

    #[test]
    fn an_answers_framing_is_read_as_hyper_reads_it() {
        let h = head("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello");
        assert!(matches!(h.body, Framing::Length(5)) && h.keep_alive && h.len == 38);
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
        assert!(matches!(h.body, Framing::Chunked));
        let h = head("HTTP/1.1 204 No Content\r\ncontent-length: 9\r\n\r\n");
        assert!(matches!(h.body, Framing::None));
        let h = head("HTTP/1.1 500 Oops\r\nConnection: keep-alive, Close\r\n\r\n");
        assert!(matches!(h.body, Framing::ToEnd) && !h.keep_alive);
        let h = head("HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n");
        assert!(matches!(h.body, Framing::None) && !h.keep_alive);
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n"),
            Parsed::Bad
        ));
        assert!(matches!(parse(b"HTTP/1.1 200 OK\r\nfoo"), Parsed::Partial));
        assert!(matches!(parse(b"SSH-2.0-OpenSSH\r\n\r\n"), Parsed::Bad));
    }

    #[test]
    fn chunk_sizes_are_hex_before_any_extension() {
        assert_eq!(chunk_size(b"1a"), Some(26));
        assert_eq!(chunk_size(b"0;name=value"), Some(0));
        assert_eq!(chunk_size(b""), None);
        assert_eq!(chunk_size(b"zz"), None);
        assert_eq!(chunk_size(b"1234567890abcdef0"), None);
    }
}
