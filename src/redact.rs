//! `replay --redact`: personal data out, shape kept. Phone numbers, emails, names and
//! transcript text become generated stand-ins; keys, types and array lengths stay. One
//! [`Redactor`] gives a value the same stand-in every time it meets it, so the events of a
//! recorded call still agree after redaction: one caller number, one name, and a transcript
//! that still grows line by line.

use std::collections::HashMap;

use rand::Rng;
use rand::seq::SliceRandom;
use serde_json::Value;

const NAMES: [&str; 8] = [
    "Alex Doe",
    "Sam Roe",
    "Jamie Poe",
    "Robin Moe",
    "Casey Loe",
    "Jordan Vey",
    "Taylor Kim",
    "Morgan Lee",
];
const WORDS: [&str; 16] = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "labore",
    "magna",
    "aliqua",
];

/// Keys whose string values are a person's name.
fn is_name_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    matches!(
        key.as_str(),
        "name"
            | "first_name"
            | "last_name"
            | "full_name"
            | "customer_name"
            | "caller_name"
            | "firstname"
            | "lastname"
            | "fullname"
            | "customername"
    )
}

/// Keys whose string values are spoken or written conversation.
fn is_text_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    matches!(
        key.as_str(),
        "transcript"
            | "content"
            | "message"
            | "text"
            | "summary"
            | "call_summary"
            | "chat_summary"
            | "transcript_text"
            | "words"
    )
}

/// Redacts a body in place (stand-ins consistent within this body only).
pub fn redact(value: &mut Value, rng: &mut impl Rng) {
    Redactor::default().redact(value, rng);
}

/// Redacts many bodies with consistent stand-ins: each distinct phone number, email, name
/// and line of text is replaced the same way in every body.
#[derive(Default)]
pub struct Redactor {
    seen: HashMap<(Kind, String), String>,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Email,
    Phone,
    Name,
    Text,
    Url,
}

impl Redactor {
    pub fn redact(&mut self, value: &mut Value, rng: &mut impl Rng) {
        self.walk(value, None, rng);
    }

    fn walk(&mut self, value: &mut Value, key: Option<&str>, rng: &mut impl Rng) {
        match value {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    self.walk(v, Some(k), rng);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.walk(v, key, rng)),
            Value::String(s) => {
                if let Some(new) = self.redact_string(s, key, rng) {
                    *s = new;
                }
            }
            _ => {}
        }
    }

    fn redact_string(&mut self, s: &str, key: Option<&str>, rng: &mut impl Rng) -> Option<String> {
        if let Some(url) = web_url(s) {
            if !carries_data(&url, key) {
                return None;
            }
            return Some(self.stand_in(Kind::Url, s, rng, |rng| {
                format!("https://redacted.example/{:08x}", rng.r#gen::<u32>())
            }));
        }
        if looks_like_email(s) {
            return Some(self.stand_in(Kind::Email, s, rng, |rng| {
                format!("person{}@example.com", rng.gen_range(1000..9999))
            }));
        }
        if looks_like_phone(s) {
            return Some(self.stand_in(Kind::Phone, s, rng, |rng| scramble_digits(s, rng)));
        }
        match key {
            Some(k) if is_name_key(k) && !s.is_empty() => {
                Some(self.stand_in(Kind::Name, s, rng, |rng| {
                    NAMES.choose(rng).copied().unwrap_or("Alex Doe").to_string()
                }))
            }
            Some(k) if is_text_key(k) && !s.is_empty() => Some(self.stand_in_text(s, rng)),
            _ => None,
        }
    }

    /// The stand-in already given to `original`, or a new one.
    fn stand_in<R: Rng>(
        &mut self,
        kind: Kind,
        original: &str,
        rng: &mut R,
        make: impl FnOnce(&mut R) -> String,
    ) -> String {
        self.seen
            .entry((kind, original.to_string()))
            .or_insert_with(|| make(rng))
            .clone()
    }

    /// The same lines and word counts; `Agent:`-style speaker labels stay. Each line's text
    /// is replaced as a unit, so a transcript that grows keeps its earlier lines.
    fn stand_in_text(&mut self, s: &str, rng: &mut impl Rng) -> String {
        s.split('\n')
            .map(|line| {
                let (label, rest) = match line.split_once(": ") {
                    Some((label, rest)) if label.len() <= 12 && !label.contains(' ') => {
                        (format!("{label}: "), rest)
                    }
                    _ => (String::new(), line),
                };
                let words = self.stand_in(Kind::Text, rest, rng, |rng| {
                    let count = rest.split_whitespace().count();
                    let words: Vec<&str> = (0..count)
                        .map(|_| *WORDS.choose(rng).unwrap_or(&"lorem"))
                        .collect();
                    words.join(" ")
                });
                format!("{label}{words}")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// An http(s) URL, or `None` for any other string.
fn web_url(s: &str) -> Option<reqwest::Url> {
    let url = reqwest::Url::parse(s).ok()?;
    matches!(url.scheme(), "http" | "https").then_some(url)
}

/// Whether a URL in a body carries people's data or credentials, so `--redact` replaces it:
/// one with a query, a fragment or userinfo (signed links, tokens: `?X-Amz-Signature=…`), or
/// any URL under a key ending in `url` (`recording_url`, `public_log_url`, `recordingUrl`):
/// those point at the call's recording and logs, often as links whose path is the key.
fn carries_data(url: &reqwest::Url, key: Option<&str>) -> bool {
    let credentials = url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some();
    credentials || key.is_some_and(|k| k.to_ascii_lowercase().ends_with("url"))
}

fn looks_like_email(s: &str) -> bool {
    let Some((user, domain)) = s.split_once('@') else {
        return false;
    };
    !user.is_empty() && domain.contains('.') && !s.contains(char::is_whitespace)
}

/// `+12137771234`, `+1-555-123-4567`, `(555) 123 4567`: 7 to 15 digits and phone punctuation.
fn looks_like_phone(s: &str) -> bool {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    (7..=15).contains(&digits)
        && s.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' ' | '(' | ')' | '.'))
        && (s.starts_with('+') || s.contains('-') || s.contains(' ') || s.contains('('))
}

/// Keeps the leading `+` and country digits' count and punctuation; replaces the rest.
fn scramble_digits(s: &str, rng: &mut impl Rng) -> String {
    let mut kept = 0;
    s.chars()
        .map(|c| {
            if !c.is_ascii_digit() {
                return c;
            }
            kept += 1;
            // The first two digits (country and area lead) stay so the format still reads right.
            if kept <= 2 {
                c
            } else {
                char::from(b'0' + rng.gen_range(0..10))
            }
        })
        .collect()
}

/// A URL as hookcli prints it (reports, `--json`, `-v`, `--dry-run`, `check`): a password in it
/// (`http://user:pw@host/`) is a secret, shown as `***`, and so is a user name with no
/// password (`http://TOKEN@host/`), and every query value (`?token=abc` shows as
/// `?token=***`): a query is where many services take a key, under any name.
pub fn shown_url(url: &reqwest::Url) -> String {
    shown_text(url.as_str())
}

/// [`shown_url`] for text that may not be a URL at all (an invalid `--to`, a `to` in
/// hookcli.toml), so error messages can quote it: the same masks, found in the text itself.
/// Userinfo is whatever stands before the last `@` ahead of the query (an unencoded `/` in a
/// password must not leave part of it showing); that may mask more than needed, never less.
pub fn shown_text(text: &str) -> String {
    let (main, fragment) = match text.find('#') {
        Some(at) => text.split_at(at),
        None => (text, ""),
    };
    let (base, query) = match main.find('?') {
        Some(at) => (&main[..at], Some(&main[at + 1..])),
        None => (main, None),
    };
    let start = base.find("://").map_or(0, |at| at + 3);
    let mut shown = base[..start].to_string();
    let rest = &base[start..];
    match rest.rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            if let Some(colon) = userinfo.find(':') {
                shown.push_str(&userinfo[..=colon]);
            }
            shown.push_str("***");
            shown.push_str(&rest[at..]);
        }
        None => shown.push_str(rest),
    }
    if let Some(query) = query {
        shown.push('?');
        let parts: Vec<String> = query
            .split('&')
            .map(|part| match part.split_once('=') {
                Some((key, _)) => format!("{key}=***"),
                None if part.is_empty() => String::new(),
                None => "***".to_string(),
            })
            .collect();
        shown.push_str(&parts.join("&"));
    }
    shown.push_str(fragment);
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use serde_json::json;

    #[test]
    fn redacts_people_and_text_but_keeps_shape() {
        let mut body = json!({
            "call": {"from_number": "+12137771234", "transcript": "Agent: Hi Ana.\nUser: Hello there!",
                     "retell_llm_dynamic_variables": {"customer_name": "Ana Lopez"}, "call_id": "abc123", "start": 17},
            "callerDetails": {"email": "ana@x.com", "phoneNumber": "+1-555-123-4567"},
            "transcript": [{"role": "agent", "content": "Hello world"}]
        });
        let original = body.clone();
        redact(&mut body, &mut rand::rngs::StdRng::seed_from_u64(1));
        assert_ne!(body["call"]["from_number"], original["call"]["from_number"]);
        assert!(
            body["call"]["from_number"]
                .as_str()
                .unwrap()
                .starts_with("+12")
        );
        assert_eq!(body["call"]["from_number"].as_str().unwrap().len(), 12);
        let transcript = body["call"]["transcript"].as_str().unwrap();
        assert!(transcript.starts_with("Agent: ") && transcript.contains("\nUser: "));
        assert!(!transcript.contains("Ana"));
        assert_ne!(
            body["call"]["retell_llm_dynamic_variables"]["customer_name"],
            "Ana Lopez"
        );
        assert!(
            body["callerDetails"]["email"]
                .as_str()
                .unwrap()
                .ends_with("@example.com")
        );
        assert_eq!(body["transcript"][0]["role"], "agent");
        assert_ne!(body["transcript"][0]["content"], "Hello world");
        assert_eq!(body["call"]["call_id"], "abc123");
        assert_eq!(body["call"]["start"], 17);
    }

    #[test]
    fn one_redactor_gives_a_value_the_same_stand_in_in_every_body() {
        let mut redactor = Redactor::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let mut first = json!({"from_number": "+12137771234", "customer_name": "Ana Lopez",
                               "transcript": "Agent: Hi Ana."});
        let mut second = json!({"from_number": "+12137771234", "customer_name": "Ana Lopez",
                                "transcript": "Agent: Hi Ana.\nUser: Hello there!",
                                "transcript_object": [{"content": "Hi Ana."}]});
        redactor.redact(&mut first, &mut rng);
        redactor.redact(&mut second, &mut rng);
        assert_eq!(first["from_number"], second["from_number"]);
        assert_eq!(first["customer_name"], second["customer_name"]);
        let (grown, earlier) = (
            second["transcript"].as_str().unwrap(),
            first["transcript"].as_str().unwrap(),
        );
        assert!(
            grown.starts_with(&format!("{earlier}\nUser: ")),
            "{earlier:?} / {grown:?}"
        );
        assert_eq!(
            format!(
                "Agent: {}",
                second["transcript_object"][0]["content"].as_str().unwrap()
            ),
            earlier
        );
    }

    #[test]
    fn urls_to_recordings_and_with_credentials_are_replaced_consistently() {
        let recording = "https://storage.example.net/rec/call_1.wav";
        let signed = "https://cdn.example.net/a/b.json?X-Amz-Signature=abc123";
        let mut body = json!({
            "call": {"recording_url": recording, "public_log_url": "https://x.example.net/log/1",
                     "recordingUrl": recording, "agent_page": "https://example.net/agents",
                     "anything": signed, "with_user": "https://tok:pw@example.net/",
                     "call_id": "abc123"},
            "again": {"recording_url": recording}
        });
        redact(&mut body, &mut rand::rngs::StdRng::seed_from_u64(3));
        let call = &body["call"];
        for key in [
            "recording_url",
            "public_log_url",
            "recordingUrl",
            "anything",
            "with_user",
        ] {
            let shown = call[key].as_str().unwrap();
            assert!(
                shown.starts_with("https://redacted.example/"),
                "{key}: {shown}"
            );
        }
        assert_eq!(call["recording_url"], call["recordingUrl"]);
        assert_eq!(call["recording_url"], body["again"]["recording_url"]);
        assert_eq!(call["agent_page"], "https://example.net/agents");
        assert_eq!(call["call_id"], "abc123");
    }

    #[test]
    fn credentials_in_a_url_are_masked() {
        let shown = |text: &str| shown_url(&reqwest::Url::parse(text).unwrap());
        assert_eq!(shown("http://u:pw@h/x"), "http://u:***@h/x");
        assert_eq!(shown("https://tok3n@h/x"), "https://***@h/x");
        assert_eq!(shown("http://h:8080/x"), "http://h:8080/x");
        assert_eq!(
            shown("http://h/x?token=abc&a=1&flag"),
            "http://h/x?token=***&a=***&***"
        );
        // Text that is no URL keeps what it can, masked the same way.
        assert_eq!(shown_text("ftp://user:PW@host/"), "ftp://user:***@host/");
        assert_eq!(shown_text("http://u:pa/ss@[zz/"), "http://u:***@[zz/");
        assert_eq!(shown_text("user:pw@host:3000"), "user:***@host:3000");
        assert_eq!(shown_text("3000"), "3000");
        assert_eq!(shown_text("http://h/#x"), "http://h/#x");
    }
}
