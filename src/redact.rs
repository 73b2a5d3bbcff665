//! `replay --redact`: personal data out, shape kept. Phone numbers, emails, names and
//! transcript text become generated stand-ins; keys, types and array lengths stay.

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

/// Redacts a body in place.
pub fn redact(value: &mut Value, rng: &mut impl Rng) {
    walk(value, None, rng);
}

fn walk(value: &mut Value, key: Option<&str>, rng: &mut impl Rng) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                walk(v, Some(k), rng);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| walk(v, key, rng)),
        Value::String(s) => {
            if let Some(new) = redact_string(s, key, rng) {
                *s = new;
            }
        }
        _ => {}
    }
}

fn redact_string(s: &str, key: Option<&str>, rng: &mut impl Rng) -> Option<String> {
    if looks_like_email(s) {
        return Some(format!("person{}@example.com", rng.gen_range(1000..9999)));
    }
    if looks_like_phone(s) {
        return Some(scramble_digits(s, rng));
    }
    match key {
        Some(k) if is_name_key(k) && !s.is_empty() => {
            Some(NAMES.choose(rng).copied().unwrap_or("Alex Doe").to_string())
        }
        Some(k) if is_text_key(k) && !s.is_empty() => Some(stand_in_text(s, rng)),
        _ => None,
    }
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

/// The same lines and word counts; `Agent:`-style speaker labels stay.
fn stand_in_text(s: &str, rng: &mut impl Rng) -> String {
    s.split('\n')
        .map(|line| {
            let (label, rest) = match line.split_once(": ") {
                Some((label, rest)) if label.len() <= 12 && !label.contains(' ') => {
                    (format!("{label}: "), rest)
                }
                _ => (String::new(), line),
            };
            let count = rest.split_whitespace().count();
            let words: Vec<&str> = (0..count)
                .map(|_| *WORDS.choose(rng).unwrap_or(&"lorem"))
                .collect();
            format!("{label}{}", words.join(" "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A URL as hookcli prints it (reports, `--json`, `-v`, `--dry-run`, `check`): a password in it
/// (`http://user:pw@host/`) is a secret, shown as `***`.
pub fn shown_url(url: &reqwest::Url) -> String {
    if url.password().is_none() {
        return url.to_string();
    }
    let mut shown = url.clone();
    let _ = shown.set_password(Some("***"));
    shown.to_string()
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
}
