//! `listen --forward-to`: the request listen judged goes on to the user's app, byte for byte,
//! and the app's answer comes back to the platform. Nothing here prints.
//!
//! hyper's own client, not reqwest: reqwest adds headers of its own (`accept: */*`) and the
//! app must see what the platform sent, end-to-end headers and body exactly.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{CONTENT_LENGTH, HOST, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The most of an app's answer relayed back; a longer one is cut off with a 502.
pub const ANSWER_LIMIT: usize = 25 * 1024 * 1024;

/// Where listen forwards, and how long the app has to answer.
#[derive(Clone, Debug)]
pub struct Forward {
    /// `http://127.0.0.1:3000/webhook`, as given (shown in lines and the page).
    pub url: String,
    host: String,
    port: u16,
    /// The app's path and query, in origin form.
    target: Uri,
    /// The `Host` the app sees: its own address, not the public one the platform used.
    authority: HeaderValue,
    /// Over connect, the answer's headers and its body together: the platform's timeout.
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ForwardUrlError {
    #[error("`{0}` is not a URL like http://127.0.0.1:3000/webhook")]
    NotUrl(String),
    #[error("`{0}`: listen forwards over plain http (the app runs on this machine)")]
    NotHttp(String),
}

impl Forward {
    pub fn new(url: &str, timeout: Duration) -> Result<Forward, ForwardUrlError> {
        let uri: Uri = url
            .parse()
            .map_err(|_| ForwardUrlError::NotUrl(url.to_string()))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(_) => return Err(ForwardUrlError::NotHttp(url.to_string())),
            None => return Err(ForwardUrlError::NotUrl(url.to_string())),
        }
        let authority = uri
            .authority()
            .filter(|a| !a.host().is_empty())
            .ok_or_else(|| ForwardUrlError::NotUrl(url.to_string()))?;
        // Credentials in the URL would have to become a header the platform never sent.
        if authority.as_str().contains('@') {
            return Err(ForwardUrlError::NotUrl(url.to_string()));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = authority.port_u16().unwrap_or(80);
        let target: Uri = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .map_err(|_| ForwardUrlError::NotUrl(url.to_string()))?;
        let authority = HeaderValue::from_str(authority.as_str())
            .map_err(|_| ForwardUrlError::NotUrl(url.to_string()))?;
        Ok(Forward {
            url: url.to_string(),
            host,
            port,
            target,
            authority,
            timeout,
        })
    }

    /// Sends one request on to the app and waits, within the timeout, for its whole answer.
    pub async fn forward(&self, method: Method, headers: &HeaderMap, body: Bytes) -> Relayed {
        let started = Instant::now();
        let exchange = self.exchange(method, headers, body);
        let outcome = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(answer)) => Outcome::Answered(answer),
            Ok(Err(failure)) => Outcome::Failed(failure),
            Err(_) => Outcome::Failed(Failure::TooSlow(self.timeout)),
        };
        Relayed {
            outcome,
            took: started.elapsed(),
        }
    }

    async fn exchange(
        &self,
        method: Method,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Answer, Failure> {
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| Failure::Down(crate::text::io_reason(&e)))?;
        let _ = stream.set_nodelay(true);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Failure::Broken(e.to_string()))?;
        // One connection per request: when the sender is dropped the connection closes.
        tokio::spawn(connection);
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = self.target.clone();
        let mut forwarded = end_to_end(headers);
        // hyper sets the length from the body it sends: the same bytes, the same number.
        forwarded.remove(CONTENT_LENGTH);
        forwarded.insert(HOST, self.authority.clone());
        *request.headers_mut() = forwarded;
        let response = sender.send_request(request).await.map_err(|e| {
            Failure::Broken(if e.is_incomplete_message() || e.is_canceled() {
                "the app closed the connection without answering".into()
            } else {
                format!("the app's answer is not HTTP ({e})")
            })
        })?;
        let status = response.status().as_u16();
        let mut headers = end_to_end(response.headers());
        headers.remove(CONTENT_LENGTH);
        let body = Limited::new(response.into_body(), ANSWER_LIMIT)
            .collect()
            .await
            .map_err(|_| {
                Failure::Broken("the app's answer body broke off or is over 25 MB".into())
            })?
            .to_bytes();
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

/// What the app did with one forwarded request.
#[derive(Clone, Debug)]
pub struct Relayed {
    pub outcome: Outcome,
    pub took: Duration,
}

#[derive(Clone, Debug)]
pub enum Outcome {
    Answered(Answer),
    Failed(Failure),
}

/// The app's answer, with its hop-by-hop headers already dropped.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Why the app gave no answer to relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Nothing listening, or unreachable: the platform gets a 502.
    Down(String),
    /// No whole answer within the timeout: the platform gets a 504.
    TooSlow(Duration),
    /// A connection reset, or an answer that is not HTTP: a 502.
    Broken(String),
}

impl Failure {
    /// What the platform is answered instead, as a gateway would.
    pub fn status(&self) -> u16 {
        match self {
            Failure::TooSlow(_) => 504,
            _ => 502,
        }
    }

    /// `app down (connection refused)`, `app too slow (no answer in 10s)`.
    pub fn describe(&self) -> String {
        match self {
            Failure::Down(why) => format!("app down ({why})"),
            Failure::TooSlow(after) => format!(
                "app too slow (no answer in {})",
                crate::duration::short(*after)
            ),
            Failure::Broken(why) => format!("app failed ({why})"),
        }
    }
}

impl Relayed {
    /// The status the platform gets: the app's, or 502/504.
    pub fn status(&self) -> u16 {
        match &self.outcome {
            Outcome::Answered(answer) => answer.status,
            Outcome::Failed(failure) => failure.status(),
        }
    }
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) concern one connection, so a proxy does not pass them
/// on: `Connection`, the headers it names, and the ones listed here.
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The headers without the hop-by-hop ones, in their order, values untouched.
pub fn end_to_end(headers: &HeaderMap) -> HeaderMap {
    let named: Vec<HeaderName> = headers
        .get_all(hyper::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    let mut kept = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if HOP_BY_HOP.contains(&name.as_str()) || named.contains(name) {
            continue;
        }
        kept.append(name.clone(), value.clone());
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_the_ones_connection_names_are_dropped() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, X-Tunnel-Id"),
            ("keep-alive", "timeout=5"),
            ("x-tunnel-id", "abc"),
            ("te", "trailers"),
            ("upgrade", "h2c"),
            ("proxy-connection", "keep-alive"),
            ("transfer-encoding", "chunked"),
            ("trailer", "x-checksum"),
            ("x-retell-signature", "v=1,d=ab"),
            ("x-multi", "one"),
            ("x-multi", "two"),
        ] {
            headers.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        let kept = end_to_end(&headers);
        let names: Vec<&str> = kept.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["x-retell-signature", "x-multi"]);
        assert_eq!(kept.get_all("x-multi").iter().count(), 2);
    }

    #[test]
    fn only_plain_http_urls_with_a_host_are_forward_targets() {
        let ok = Forward::new("http://127.0.0.1:3000/hooks?x=1", Duration::from_secs(1))
            .expect("a plain URL");
        assert_eq!(ok.target, "/hooks?x=1");
        assert_eq!(ok.authority, "127.0.0.1:3000");
        assert_eq!(ok.port, 3000);
        let ipv6 = Forward::new("http://[::1]:3000", Duration::from_secs(1)).expect("IPv6");
        assert_eq!((ipv6.host.as_str(), ipv6.target.path()), ("::1", "/"));
        for bad in [
            "https://127.0.0.1/x",
            "127.0.0.1:3000",
            "http://",
            "http://u:p@h/",
        ] {
            assert!(
                Forward::new(bad, Duration::from_secs(1)).is_err(),
                "{bad} refused"
            );
        }
    }
}
