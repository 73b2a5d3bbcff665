//! One request as the page shows it: a row, a detail, and the commands that reproduce it.

use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::{Value, json};

use super::Setup;
use crate::receiver::{CREDENTIAL_HEADERS, Forwarded, Received};
use crate::signing::Verdict;

/// A request kept for the page. Made by moving listen's report in, without copying or parsing
/// anything: that is left to when the page asks, so keeping it costs the request nothing.
#[derive(Debug, Default)]
pub struct Entry {
    /// The page's number for it (across restarts: records loaded first).
    pub id: u64,
    /// listen's number in its own session; `None` for one read back from the record file.
    pub n: Option<u64>,
    pub time_ms: u64,
    pub method: String,
    pub path: String,
    /// As received; credential headers are masked when shown. A live request's are kept
    /// in `wire` as they came, and copied into text only when the page asks.
    pub headers: Vec<(String, String)>,
    wire: hyper::HeaderMap,
    pub body: Bytes,
    pub bytes: u64,
    /// Event and call id, named from the body on first need.
    named: OnceLock<(Option<String>, Option<String>)>,
    /// This session's verdict; a record line's is only its word.
    verdict: Option<Verdict>,
    verdict_word: String,
    pub status: Option<u16>,
    pub note: Option<String>,
    pub duplicate_of: Option<u64>,
    forwarded: Option<Forwarded>,
    /// A record line's `forwarded` object.
    recorded_forward: Option<Value>,
    pub from_record: bool,
}

impl Entry {
    pub fn from_received(r: Received) -> Entry {
        let time_ms = crate::signing::unix_ms(r.at);
        let bytes = r.size();
        let named = OnceLock::new();
        if r.event.is_some() || r.call_id.is_some() {
            let _ = named.set((r.event, r.call_id));
        }
        Entry {
            id: 0,
            n: Some(r.n),
            time_ms,
            method: r.method,
            path: r.path,
            headers: r.headers,
            wire: r.header_map,
            body: r.body,
            bytes,
            named,
            verdict_word: String::new(),
            verdict: Some(r.verdict),
            status: r.answered,
            note: r.note,
            duplicate_of: r.duplicate_of,
            forwarded: r.forwarded,
            recorded_forward: None,
            from_record: false,
        }
    }

    /// An entry from a `listen --record` line; `None` for a line that does not read.
    pub fn from_record(line: &str) -> Option<Entry> {
        let value: Value = serde_json::from_str(line).ok()?;
        let headers: Vec<(String, String)> = value
            .get("headers")?
            .as_array()?
            .iter()
            .filter_map(|pair| {
                Some((
                    pair.get(0)?.as_str()?.to_string(),
                    pair.get(1)?.as_str()?.to_string(),
                ))
            })
            .collect();
        let body = match (value.get("body"), value.get("body_base64")) {
            (Some(Value::String(text)), _) => Bytes::from(text.clone()),
            (_, Some(Value::String(encoded))) => {
                use base64::Engine;
                Bytes::from(
                    base64::engine::general_purpose::STANDARD
                        .decode(encoded)
                        .ok()?,
                )
            }
            _ => Bytes::new(),
        };
        let text = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_string);
        Some(Entry {
            id: 0,
            n: None,
            time_ms: value.get("time_ms").and_then(Value::as_u64).unwrap_or(0),
            method: text("method").unwrap_or_default(),
            path: text("path").unwrap_or_default(),
            headers,
            wire: hyper::HeaderMap::new(),
            bytes: value
                .get("bytes")
                .and_then(Value::as_u64)
                .unwrap_or(body.len() as u64),
            named: OnceLock::new(),
            verdict: None,
            verdict_word: text("verdict").unwrap_or_else(|| "?".into()),
            status: value
                .get("status")
                .and_then(Value::as_u64)
                .map(|s| s as u16),
            note: text("rejected").map(|r| format!("refused unread: {}", r.replace('_', " "))),
            duplicate_of: None,
            forwarded: None,
            recorded_forward: value.get("forwarded").cloned(),
            body,
            from_record: true,
        })
    }

    fn named(&self, setup: &Setup) -> &(Option<String>, Option<String>) {
        self.named
            .get_or_init(|| match serde_json::from_slice::<Value>(&self.body) {
                Ok(json) => (
                    setup.platform.event_of(&json),
                    setup.platform.call_id_of(&json),
                ),
                Err(_) => (None, None),
            })
    }

    fn verdict_word(&self) -> &str {
        match &self.verdict {
            Some(verdict) => verdict.word(),
            None => &self.verdict_word,
        }
    }

    /// The headers as text, in order.
    fn header_pairs(&self) -> Vec<(String, String)> {
        if !self.headers.is_empty() {
            return self.headers.clone();
        }
        self.wire
            .iter()
            .map(|(k, v)| {
                let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (k.as_str().to_string(), value)
            })
            .collect()
    }

    fn forwarded(&self) -> Option<Value> {
        match &self.forwarded {
            Some(f) => Some(crate::receiver::forwarded_json(f)),
            None => self.recorded_forward.clone(),
        }
    }

    /// A row of the list.
    pub fn summary(&self, setup: &Setup) -> Value {
        let (event, call_id) = self.named(setup);
        let at = UNIX_EPOCH + Duration::from_millis(self.time_ms);
        json!({
            "id": self.id,
            "n": self.n,
            "time": crate::text::iso_millis(at),
            "time_ms": self.time_ms,
            "method": self.method,
            "path": self.path,
            "event": event,
            "call_id": call_id,
            "verdict": self.verdict_word(),
            "status": self.status,
            "bytes": self.bytes,
            "duplicate_of": self.duplicate_of,
            "forwarded": self.forwarded(),
            "from_record": self.from_record,
            "note": self.note,
        })
    }

    /// Everything about it: headers, body as text and base64 (the page shows the bytes),
    /// the verdict's reason, the app's answer, and the commands that send it again.
    pub fn detail(&self, setup: &Setup) -> Value {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut value = self.summary(setup);
        value["why"] = json!(match &self.verdict {
            Some(verdict) => why(verdict, setup),
            None => format!("{} (recorded before listen restarted)", self.verdict_word),
        });
        value["headers"] = json!(masked(&self.header_pairs()));
        value["body_text"] = json!(String::from_utf8_lossy(&self.body));
        value["body_json"] = serde_json::from_slice::<Value>(&self.body).unwrap_or(Value::Null);
        value["body_base64"] = json!(b64.encode(&self.body));
        let (app_headers, app_body) = match &self.forwarded {
            Some(f) => (
                f.headers.clone(),
                String::from_utf8_lossy(&f.body).into_owned(),
            ),
            None => (Vec::new(), String::new()),
        };
        value["app_headers"] = json!(app_headers);
        value["app_body_text"] = json!(app_body);
        value["copy_send"] = json!(send_command(self, setup));
        value["copy_curl"] = json!(curl_command(self, setup));
        value
    }
}

/// Credential headers masked, as in the record: the page is not a place for them.
fn masked(headers: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            if CREDENTIAL_HEADERS.contains(&k.as_str()) {
                (k.clone(), "***".to_string())
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect()
}

/// Why a signature verdict is what it is, in words a developer can act on. Never a digest:
/// the expected one would be a signing oracle for this body.
pub fn why(verdict: &Verdict, setup: &Setup) -> String {
    let header = setup
        .platform
        .signing
        .as_ref()
        .map_or("the signature header".to_string(), |s| s.header.clone());
    let tolerance = crate::duration::short(setup.tolerance);
    match verdict {
        Verdict::Valid => format!("{header} matches this body under listen's key, in time"),
        Verdict::Invalid => format!(
            "{header} is well-formed but does not match this body under listen's key: it was \
             signed with another key, or the body changed after signing (re-encoded, \
             pretty-printed, a proxy that rewrote it)"
        ),
        Verdict::Stale { skew_ms } if *skew_ms >= 0 => format!(
            "{header} matches, but it was made {} ago, beyond the {tolerance} tolerance: an \
             old request sent again, or a clock that is behind",
            crate::duration::short(std::time::Duration::from_millis(skew_ms.unsigned_abs()))
        ),
        Verdict::Stale { skew_ms } => format!(
            "{header} matches, but its time is {} in the future, beyond the {tolerance} \
             tolerance: the sender's clock is ahead",
            crate::duration::short(std::time::Duration::from_millis(skew_ms.unsigned_abs()))
        ),
        Verdict::Missing => format!(
            "no {header} header: the sender did not sign, or something on the way dropped it"
        ),
        Verdict::Malformed(reason) => format!("{header} cannot be read: {reason}"),
        Verdict::Unsigned => match &setup.platform.signing {
            Some(_) => "not checked: listen has no key for this platform".to_string(),
            None => format!("{} does not sign its webhooks", setup.platform.id),
        },
        other => format!("not checked: {other}"),
    }
}

/// `'it'\''s'`: one shell word, whatever it holds.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `printf %s '{...}' | hookcli send -p uponai --to URL --data -`: the same bytes (a heredoc
/// would add a newline), signed afresh by send with the key from the environment.
fn send_command(entry: &Entry, setup: &Setup) -> String {
    let target = setup.forward_url.as_deref().unwrap_or(&setup.listen_url);
    format!(
        "printf %s {} | hookcli send -p {} --to {} --data -",
        quote(&String::from_utf8_lossy(&entry.body)),
        setup.platform.id,
        quote(target)
    )
}

/// curl with the recorded headers (its signature is as old as the request) and exact body.
fn curl_command(entry: &Entry, setup: &Setup) -> String {
    let target = setup.forward_url.as_deref().unwrap_or(&setup.listen_url);
    let mut parts = vec![format!("curl -X {} {}", entry.method, quote(target))];
    for (name, value) in &masked(&entry.header_pairs()) {
        if matches!(
            name.as_str(),
            "host" | "content-length" | "connection" | "transfer-encoding" | "accept-encoding"
        ) {
            continue;
        }
        parts.push(format!("-H {}", quote(&format!("{name}: {value}"))));
    }
    parts.push("--data-binary @-".to_string());
    format!(
        "printf %s {} | {}",
        quote(&String::from_utf8_lossy(&entry.body)),
        parts.join(" \\\n  ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_survive_quotes() {
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
