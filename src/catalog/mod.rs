//! The platform catalog: platforms, events, templates and lifecycles, read from `payloads/`.
//!
//! The built-in catalog is embedded in the binary; `--payloads DIR` reads a folder of the same
//! layout on top of it (see payloads/README.md). Nothing here prints.

pub mod ids;
mod source;

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::policy::{DeliveryPolicy, PolicyOverrides, RetryOn, SuccessRule};
use crate::signing::Rules;
pub use ids::IdPattern;

/// A catalog file that could not be read or does not fit the format.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{file}: {message}")]
    File { file: String, message: String },
    #[error("--payloads {path}: {message}")]
    Overlay { path: String, message: String },
    /// A folder of the --payloads folder that is no platform: a new id without platform.toml.
    #[error("--payloads {root}: the folder {folder} has no platform.toml")]
    NotAPlatform { root: String, folder: String },
    /// Two folders whose platforms share an id or alias.
    #[error("the platform name `{name}` is claimed by both {first} and {second}")]
    Claimed {
        name: String,
        first: String,
        second: String,
    },
}

/// The platform played when neither -p, HOOKCLI_PLATFORM nor hookcli.toml names one; listed
/// first.
pub const DEFAULT_PLATFORM: &str = "uponai";

/// What a --payloads folder holds, for the hints.
const LAYOUT: &str = "each platform is a folder with platform.toml and events/ (a folder named \
                      after a built-in platform, like uponai, may hold only what it changes); \
                      payloads/README.md describes the layout";

impl CatalogError {
    /// The fix, for the `hint:` line.
    pub fn hint(&self) -> &'static str {
        match self {
            CatalogError::File { .. } => {
                "fix that file: payloads/README.md describes each file of the catalog and its keys"
            }
            CatalogError::Overlay { .. } => {
                "give a folder laid out like payloads/: each platform a folder with \
                 platform.toml and events/ (payloads/README.md describes the layout); or leave \
                 out --payloads and HOOKCLI_PAYLOADS"
            }
            CatalogError::NotAPlatform { .. } => LAYOUT,
            CatalogError::Claimed { .. } => {
                "give each platform an id and aliases no other platform uses; to replace a \
                 built-in platform, name the --payloads folder after it (like uponai)"
            }
        }
    }

    fn file(file: impl Into<String>, message: impl std::fmt::Display) -> Self {
        CatalogError::File {
            file: file.into(),
            message: message.to_string(),
        }
    }
}

/// Everything hookcli knows about the platforms it plays.
#[derive(Debug)]
pub struct Catalog {
    /// Shared, not copied: a platform holds every event's template, and each command keeps
    /// its platform beside the catalog (a deep copy and its drop were 5% of replay's
    /// start-up instructions).
    pub platforms: Vec<Arc<Platform>>,
    pub people: People,
    pub conversations: Vec<Conversation>,
    /// Only some platforms were built ([`Catalog::load_one`]): a question about the others
    /// (which platform has this event?) needs the whole catalog.
    pub partial: bool,
}

/// One webhook-sending platform, validated.
#[derive(Debug, Clone)]
pub struct Platform {
    pub id: String,
    pub name: String,
    pub aliases: Vec<String>,
    pub documents: String,
    /// JSON pointer to the event name in a body; `None` for one-event platforms.
    pub event_field: Option<String>,
    pub call_id_fields: Vec<String>,
    /// Delivery values the platform's documents do not state.
    pub assumed: Vec<String>,
    pub policy: DeliveryPolicy,
    pub signing: Option<Signing>,
    /// How an event's body is written on the wire: JSON, or a form of its string fields.
    pub format: BodyFormat,
    /// The largest body the platform sends, when more than listen's default (an hour of
    /// ElevenLabs audio is about 38 MB of base64): listen's `--max-body` default.
    pub max_body: Option<u64>,
    pub headers: Vec<(String, String)>,
    pub ids: Vec<(String, IdPattern)>,
    pub transcript: TranscriptStyle,
    /// Keys whose objects the platform's users fill themselves (`metadata`): `--set` may add
    /// a new key inside them, and nowhere else.
    pub free_form: Vec<String>,
    pub events: Vec<EventSpec>,
    pub lifecycles: Vec<Lifecycle>,
}

/// How a platform writes a body. Templates are JSON either way; a form platform's template is
/// an object of string fields, rendered, then encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyFormat {
    #[default]
    Json,
    /// `application/x-www-form-urlencoded` (Twilio): `a=1&b=2`, in the template's key order;
    /// an array value repeats its key.
    Form,
}

/// A body that does not parse in the platform's format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("not JSON at line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("not a form body: {0}")]
    Form(String),
}

impl BodyFormat {
    /// The bytes of `value` in this format. A form writes strings as they are, numbers and
    /// booleans as their JSON text, each element of an array as a repeat of its key, and
    /// skips nulls; objects are written as JSON text (no form platform nests them).
    pub fn encode(self, value: &Value) -> Vec<u8> {
        match self {
            BodyFormat::Json => serde_json::to_vec(value).expect("a JSON value serializes"),
            BodyFormat::Form => {
                let mut form = form_urlencoded::Serializer::new(String::new());
                if let Value::Object(map) = value {
                    for (key, item) in map {
                        match item {
                            Value::Array(items) => {
                                for item in items {
                                    form_field(&mut form, key, item);
                                }
                            }
                            item => form_field(&mut form, key, item),
                        }
                    }
                }
                form.finish().into_bytes()
            }
        }
    }

    /// `bytes` as a value: JSON as is; a form as an object of string fields (a repeated key
    /// becomes an array of its values, in order), so `--set` and templates see its fields.
    pub fn decode(self, bytes: &[u8]) -> Result<Value, BodyError> {
        match self {
            BodyFormat::Json => serde_json::from_slice(bytes).map_err(|e| BodyError::Json {
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            }),
            BodyFormat::Form => {
                let text = std::str::from_utf8(bytes)
                    .map_err(|_| BodyError::Form("it is not UTF-8 text".into()))?;
                if text.trim_start().starts_with(['{', '[']) {
                    return Err(BodyError::Form(
                        "it looks like JSON; this platform sends name=value&... fields".into(),
                    ));
                }
                let mut map = serde_json::Map::new();
                for (key, item) in form_urlencoded::parse(text.as_bytes()) {
                    let item = Value::String(item.into_owned());
                    match map.get_mut(key.as_ref()) {
                        Some(Value::Array(items)) => items.push(item),
                        Some(first) => *first = Value::Array(vec![first.take(), item]),
                        None => {
                            map.insert(key.into_owned(), item);
                        }
                    }
                }
                Ok(Value::Object(map))
            }
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            BodyFormat::Json => "application/json",
            BodyFormat::Form => "application/x-www-form-urlencoded",
        }
    }
}

fn form_field(form: &mut form_urlencoded::Serializer<'_, String>, key: &str, item: &Value) {
    match item {
        Value::Null => {}
        Value::String(text) => {
            form.append_pair(key, text);
        }
        other => {
            form.append_pair(key, &other.to_string());
        }
    }
}

#[derive(Debug, Clone)]
pub struct Signing {
    /// The scheme with its parameters (header names, tolerance, key format).
    pub rules: Rules,
    /// The main signature header, lowercase (`rules.header`), for messages.
    pub header: String,
    /// How far in the past a signature may be (`rules.tolerance.past`).
    pub tolerance: Duration,
    /// Environment variables read for the key after --secret and HOOKCLI_SECRET.
    pub key_env: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct TranscriptStyle {
    pub agent_role: String,
    pub user_role: String,
    pub agent_label: String,
    pub user_label: String,
    pub line: String,
    pub turn: Value,
}

/// The moment of a call an event describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Moment {
    Dial,
    Ring,
    Start,
    Turn,
    Transfer,
    Bridged,
    End,
    Analyzed,
}

#[derive(Debug, Clone)]
pub struct EventSpec {
    pub name: String,
    pub description: String,
    pub at: Moment,
    /// Delivered unless the user filters events (uponai's `webhook_events` defaults).
    pub default: bool,
    pub template: Template,
    /// Where the template came from, for error messages.
    pub origin: String,
    /// This event's own delivery rules over the platform's (a request the platform waits on,
    /// such as an inbound call, has its own timeout and retries). Empty for most events.
    pub rules: PolicyOverrides,
    /// The answer the platform reads from the receiver, for events that have one (boxed:
    /// most events have none, and an event is held by value in load's scripts).
    pub answer: Option<Box<AnswerSpec>>,
    /// For a custom function's request: where its name and args are.
    pub function: Option<FunctionSpec>,
    /// What listen's line shows of such a request: `{/pointer}` placeholders in text.
    pub line: Option<String>,
    /// Fields the platform's documents say may be absent: body/missing-optional removes each
    /// (and sets it to null), one at a time.
    pub optional: Vec<OptionalField>,
}

/// An event's JSON template. A built-in one is parsed when it is first rendered: a command
/// renders a few of its platform's events, and parsing every one of them was 12% of replay's
/// start-up. An overlay's is parsed as the catalog loads, so that a broken one is refused
/// there with its line and column.
#[derive(Debug, Clone)]
pub struct Template {
    /// A built-in template's text; empty once parsed or when made from a value.
    text: &'static str,
    value: OnceLock<Value>,
}

impl Template {
    pub fn new(value: Value) -> Template {
        Template {
            text: "",
            value: OnceLock::from(value),
        }
    }

    /// A built-in template, parsed when first asked for: a unit test parses every one.
    pub(crate) fn built_in(text: &'static str) -> Template {
        Template {
            text,
            value: OnceLock::new(),
        }
    }

    /// The value, when it has been parsed.
    pub(crate) fn parsed(&self) -> Option<&Value> {
        self.value.get()
    }

    pub fn value(&self) -> &Value {
        self.value.get_or_init(|| {
            serde_json::from_str(self.text).expect("built-in templates are JSON (a unit test)")
        })
    }
}

/// A field of an event that may be absent, by the platform's documents.
#[derive(Debug, Clone)]
pub struct OptionalField {
    /// A JSON pointer into the event's body: `/call/metadata`.
    pub at: String,
    /// The document (and what in it) that says so.
    pub source: String,
    /// hookcli's reading of the documents rather than their words.
    pub assumed: bool,
}

/// Where a function call's request holds the function's name and its args (JSON pointers);
/// the args pointer names the event in a body that has no event field.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub name_at: String,
    pub args_at: String,
}

/// What a platform reads in the receiver's answer to an event, as data (`answers/` in the
/// platform's folder): a receiver that answers 2xx with a body the platform cannot use has
/// still failed the caller.
#[derive(Debug, Clone)]
pub struct AnswerSpec {
    /// A JSON Schema of the answer's body.
    pub schema: Value,
    /// The platform cuts an answer past this many characters (Unicode scalar values).
    pub max_chars: Option<usize>,
    /// A body that is not JSON is taken as text (a function's answer), not refused.
    pub text_ok: bool,
    /// What the platform does with a valid answer, in words, for reports.
    pub effect: String,
    /// (JSON pointer, phrase): said of a valid answer that has the pointer; `{}` in the
    /// phrase is the value, `{n}` its count of keys, items or characters.
    pub says: Vec<(String, String)>,
    /// (pointer in the answer, pointer in later events): where the platform puts the answer's
    /// values in the events that follow.
    pub carry: Vec<(String, String)>,
    /// A valid answer, given by hookcli's own receiver.
    pub example: Option<Value>,
    /// What the platform is taken to do with a 2xx whose answer it cannot use (the
    /// documents are silent; reports say it is assumed).
    pub unusable: String,
}

#[derive(Debug, Clone)]
pub struct Lifecycle {
    pub name: String,
    pub description: String,
    pub steps: Vec<Step>,
    pub connected: bool,
    pub vars: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub event: String,
    /// Sent once per turn of the conversation.
    pub per_turn: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct People {
    pub first_names: Vec<String>,
    pub last_names: Vec<String>,
    pub places: Vec<Place>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Place {
    pub city: String,
    pub state: String,
    pub country: String,
    pub language: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conversation {
    pub topic: String,
    pub summary: String,
    pub sentiment: String,
    pub outcome: String,
    pub successful: bool,
    pub score: u32,
    pub turns: Vec<(Speaker, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    Agent,
    User,
}

impl Catalog {
    /// The built-in catalog, with `overlay` read on top when given.
    pub fn load(overlay: Option<&Path>) -> Result<Catalog, CatalogError> {
        source::assemble(overlay)
    }

    /// The built-in catalog with only the platform called `name` (id or alias, any case)
    /// built, or None when no built-in platform has that name. Building all ten platforms
    /// was most of a one-shot command's start-up (`send` renders one event of one platform).
    pub fn load_one(name: &str) -> Result<Option<Catalog>, CatalogError> {
        source::assemble_one(name)
    }

    /// Finds a platform by id or alias, case-insensitively.
    pub fn platform(&self, name: &str) -> Option<&Arc<Platform>> {
        let name = name.to_ascii_lowercase();
        self.platforms
            .iter()
            .find(|p| p.id == name || p.aliases.contains(&name))
    }

    pub fn platform_ids(&self) -> Vec<&str> {
        self.platforms.iter().map(|p| p.id.as_str()).collect()
    }

    /// Every platform with its aliases, for hints: `uponai (alias retell), callevents, ...`.
    pub fn platform_list(&self) -> String {
        let labels: Vec<String> = self.platforms.iter().map(|p| p.label()).collect();
        labels.join(", ")
    }

    /// Platforms other than `except` that have an event called `event`.
    pub fn platforms_with_event(&self, event: &str, except: &str) -> Vec<&Platform> {
        self.platforms
            .iter()
            .filter(|p| p.id != except && p.event(event).is_some())
            .map(|p| &**p)
            .collect()
    }
}

impl Platform {
    /// The id with its aliases: `uponai (alias retell)`, `acme (aliases a, b)`, `salpre`.
    pub fn label(&self) -> String {
        match self.aliases.as_slice() {
            [] => self.id.clone(),
            [one] => format!("{} (alias {one})", self.id),
            many => format!("{} (aliases {})", self.id, many.join(", ")),
        }
    }

    pub fn event(&self, name: &str) -> Option<&EventSpec> {
        self.events.iter().find(|e| e.name == name)
    }

    pub fn event_names(&self) -> Vec<&str> {
        self.events.iter().map(|e| e.name.as_str()).collect()
    }

    pub fn lifecycle(&self, name: &str) -> Option<&Lifecycle> {
        self.lifecycles.iter().find(|l| l.name == name)
    }

    /// The closest event name to a misspelled one, if any is close.
    pub fn closest_event(&self, name: &str) -> Option<&str> {
        closest(name, self.event_names())
    }

    /// The event named in a body, by `event_field`; the only event for one-event platforms.
    pub fn event_of(&self, body: &Value) -> Option<String> {
        match &self.event_field {
            Some(pointer) => body
                .pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_string),
            None if self.events.len() == 1 => Some(self.events[0].name.clone()),
            None => None,
        }
        .or_else(|| self.known_event_of(body))
    }

    /// The function event whose args pointer the body has: a request without an event field.
    fn known_event_of(&self, body: &Value) -> Option<String> {
        let by_field = self.event_field.as_deref().and_then(|p| body.pointer(p));
        if by_field.is_some() {
            return None;
        }
        self.events
            .iter()
            .find(|e| {
                e.function
                    .as_ref()
                    .is_some_and(|f| body.pointer(&f.args_at).is_some())
            })
            .map(|e| e.name.clone())
    }

    /// The call id in a body, by the first of `call_id_fields` present.
    pub fn call_id_of(&self, body: &Value) -> Option<String> {
        self.call_id_fields
            .iter()
            .find_map(|p| match body.pointer(p)? {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
    }

    /// The bytes of a rendered event, in the platform's body format.
    pub fn encode(&self, value: &Value) -> Vec<u8> {
        self.format.encode(value)
    }

    /// A body in the platform's format as a value.
    pub fn decode(&self, bytes: &[u8]) -> Result<Value, BodyError> {
        self.format.decode(bytes)
    }

    /// "signs with x-retell-signature" or "does not sign", for tables.
    pub fn signing_text(&self) -> String {
        match &self.signing {
            Some(s) => s.header.clone(),
            None => "none".into(),
        }
    }
}

/// The candidate nearest to `name` by edit distance, when it is plausibly a typo.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let candidates: Vec<&str> = candidates.into_iter().collect();
    if name.len() >= 3
        && let Some(prefixed) = candidates.iter().find(|c| c.starts_with(name))
    {
        return Some(prefixed);
    }
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        // A third of the longer name: `sned` finds `send`, but `bogus` does not find `body/`.
        .filter(|(d, c)| *d <= 1.max(c.len().max(name.len()) / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// A success rule as a TOML string: `2xx`, `200` or a list.
fn parse_success(text: &str) -> Result<SuccessRule, String> {
    text.parse()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_form_body_is_encoded_in_key_order_and_decoded_back_with_repeats() {
        let value = json!({"To": "+1 555", "Caller": "José 👋", "N": 3, "Ok": true, "Skip": null, "B": ["2", "1"]});
        let bytes = BodyFormat::Form.encode(&value);
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            "To=%2B1+555&Caller=Jos%C3%A9+%F0%9F%91%8B&N=3&Ok=true&B=2&B=1"
        );
        let back = BodyFormat::Form.decode(&bytes).unwrap();
        assert_eq!(
            back,
            json!({"To": "+1 555", "Caller": "José 👋", "N": "3", "Ok": "true", "B": ["2", "1"]})
        );
        assert_eq!(
            BodyFormat::Form.encode(&back),
            bytes,
            "strings round-trip byte for byte"
        );
        assert!(matches!(
            BodyFormat::Form.decode(br#"{"a":1}"#),
            Err(BodyError::Form(_))
        ));
        assert!(matches!(
            BodyFormat::Json.decode(b"a=1"),
            Err(BodyError::Json { line: 1, .. })
        ));
    }
}
