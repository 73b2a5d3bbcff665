//! One request as the page shows it: a row, a detail, and the commands that reproduce it.

use std::time::SystemTime;

use bytes::Bytes;
use serde_json::{Value, json};

use super::Setup;
use crate::receiver::{CREDENTIAL_HEADERS, Received};
use crate::signing::Verdict;

/// A request kept for the page. Bodies are shared with listen's report, not copied.
#[derive(Clone, Debug, Default)]
pub struct Entry {
    /// The page's number for it (across restarts: records loaded first).
    pub id: u64,
    /// listen's number in its own session; `None` for one read back from the record file.
    pub n: Option<u64>,
    pub time: String,
    pub time_ms: u64,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub bytes: u64,
    pub event: Option<String>,
    pub call_id: Option<String>,
    /// `valid`, `invalid`, ... (`?` for an old record line that did not say).
    pub verdict: String,
    /// Why the verdict, in words (never a digest, never the key).
    pub why: String,
    pub status: Option<u16>,
    pub note: Option<String>,
    pub duplicate_of: Option<u64>,
    pub forwarded: Option<Value>,
    /// The app's answer headers and body, when forwarded (this session only).
    pub app_headers: Vec<(String, String)>,
    pub app_body: Bytes,
    pub from_record: bool,
}

impl Entry {
    pub fn from_received(r: &Received, setup: &Setup) -> Entry {
        let time_ms =
            r.at.duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
        let (app_headers, app_body) = r
            .forwarded
            .as_ref()
            .map(|f| (f.headers.clone(), f.body.clone()))
            .unwrap_or_default();
        Entry {
            id: 0,
            n: Some(r.n),
            time: crate::text::iso_millis(r.at),
            time_ms,
            method: r.method.clone(),
            path: r.path.clone(),
            headers: masked(&r.headers),
            body: r.body.clone(),
            bytes: r.size(),
            event: r.event.clone(),
            call_id: r.call_id.clone(),
            verdict: r.verdict.word().to_string(),
            why: why(&r.verdict, setup),
            status: r.answered,
            note: r.note.clone(),
            duplicate_of: r.duplicate_of,
            forwarded: r.forwarded.as_ref().map(crate::receiver::forwarded_json),
            app_headers,
            app_body,
            from_record: false,
        }
    }

    /// An entry from a `listen --record` line; `None` for a line that does not read.
    pub fn from_record(line: &str, setup: &Setup) -> Option<Entry> {
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
        let json = serde_json::from_slice::<Value>(&body).ok();
        let platform = &setup.platform;
        let verdict = value
            .get("verdict")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        let text = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_string);
        Some(Entry {
            id: 0,
            n: None,
            time: text("time").unwrap_or_default(),
            time_ms: value.get("time_ms").and_then(Value::as_u64).unwrap_or(0),
            method: text("method").unwrap_or_default(),
            path: text("path").unwrap_or_default(),
            headers,
            bytes: value
                .get("bytes")
                .and_then(Value::as_u64)
                .unwrap_or(body.len() as u64),
            event: json.as_ref().and_then(|j| platform.event_of(j)),
            call_id: json.as_ref().and_then(|j| platform.call_id_of(j)),
            why: format!("{verdict} (recorded before listen restarted)"),
            verdict,
            status: value
                .get("status")
                .and_then(Value::as_u64)
                .map(|s| s as u16),
            note: text("rejected").map(|r| format!("refused unread: {}", r.replace('_', " "))),
            duplicate_of: None,
            forwarded: value.get("forwarded").cloned(),
            body,
            app_headers: Vec::new(),
            app_body: Bytes::new(),
            from_record: true,
        })
    }

    /// A row of the list.
    pub fn summary(&self) -> Value {
        json!({
            "id": self.id,
            "n": self.n,
            "time": self.time,
            "time_ms": self.time_ms,
            "method": self.method,
            "path": self.path,
            "event": self.event,
            "call_id": self.call_id,
            "verdict": self.verdict,
            "status": self.status,
            "bytes": self.bytes,
            "duplicate_of": self.duplicate_of,
            "forwarded": self.forwarded,
            "from_record": self.from_record,
            "note": self.note,
        })
    }

    /// Everything about it: headers, body as text and base64 (the page shows the bytes),
    /// the verdict's reason, the app's answer, and the commands that send it again.
    pub fn detail(&self, setup: &Setup) -> Value {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut value = self.summary();
        value["why"] = json!(self.why);
        value["headers"] = json!(self.headers);
        value["body_text"] = json!(String::from_utf8_lossy(&self.body));
        value["body_json"] = serde_json::from_slice::<Value>(&self.body).unwrap_or(Value::Null);
        value["body_base64"] = json!(b64.encode(&self.body));
        value["app_headers"] = json!(self.app_headers);
        value["app_body_text"] = json!(String::from_utf8_lossy(&self.app_body));
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
    for (name, value) in &entry.headers {
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
