//! The suite file, `hookcli.toml`: the settings a team keeps next to its receiver so CI runs
//! `hookcli check` with no flags. Every key is optional; flags override them.
//!
//! Errors name the file, the line and the key: toml's error carries a byte span, turned into
//! a line number here, and values hookcli checks itself keep their spans (`toml::Spanned`).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::policy::SuccessRule;

/// The keys of hookcli.toml (README "Use in CI" documents each).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// The receiver's URL.
    pub to: Option<Spanned<String>>,
    /// The platform to play.
    pub platform: Option<Spanned<String>>,
    /// The name of the environment variable that holds the receiver's key.
    pub secret_env: Option<Spanned<String>>,
    /// Cases to run, by name or prefix (all when empty).
    #[serde(default)]
    pub only: Vec<Spanned<String>>,
    /// Cases not to run, by name or prefix.
    #[serde(default)]
    pub skip: Vec<Spanned<String>>,
    /// The success rule instead of the platform's.
    #[serde(default, deserialize_with = "rule")]
    pub expect: Option<SuccessRule>,
    /// The per-attempt deadline instead of the platform's.
    #[serde(default, deserialize_with = "deadline")]
    pub timeout: Option<Duration>,
    /// Retries after the first attempt instead of the platform's.
    pub retries: Option<u32>,
    /// The first wait between attempts instead of the platform's.
    #[serde(default, deserialize_with = "duration")]
    pub backoff: Option<Duration>,
    /// Extra headers, `Name: value`, on every request.
    #[serde(default)]
    pub headers: Vec<Spanned<String>>,
    /// Calls sent at once by load/burst.
    #[serde(default, deserialize_with = "burst")]
    pub burst: Option<u16>,
    /// How long to wait for the receiver to accept connections.
    #[serde(default, deserialize_with = "duration")]
    pub wait_for: Option<Duration>,
    /// The phone number's inbound call webhook URL, for answers/call_inbound.
    pub inbound_url: Option<Spanned<String>>,
    /// Custom functions the agent calls, for answers/functions.
    #[serde(default)]
    pub functions: Vec<FunctionEntry>,
    /// An agent's (or its LLM's) exported JSON, whose custom tools are functions too.
    pub agent_json: Option<Spanned<String>>,
    /// The user's own cases (`[[cases]]`), run by check beside the built-in ones.
    #[serde(default)]
    pub cases: Vec<CaseEntry>,
    /// check's own settings (only, skip, burst, wait_for), also accepted at the top level.
    pub check: Option<CheckTable>,
    /// load's own settings. A load never takes its target from the file.
    #[serde(default)]
    pub load: LoadTable,
    #[serde(skip)]
    file: PathBuf,
    #[serde(skip)]
    text: String,
}

/// A custom function as configured on the agent (`[[functions]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionEntry {
    pub name: String,
    pub url: String,
    /// GET, POST (the default), PUT, PATCH or DELETE.
    #[serde(default = "post")]
    pub method: String,
    /// The parameters' JSON Schema exactly as configured on the agent.
    #[serde(default)]
    pub parameters: Option<serde_json::Value>,
    /// Response variables: dynamic variable name → JSON path into the answer (`$.order.eta`).
    #[serde(default)]
    pub response_variables: std::collections::BTreeMap<String, String>,
    /// "Payload: args only".
    #[serde(default)]
    pub args_only: bool,
    /// The function's own timeout (2 minutes unless configured).
    #[serde(default, deserialize_with = "deadline")]
    pub timeout: Option<Duration>,
}

fn post() -> String {
    "POST".into()
}

/// The custom functions of an exported agent or LLM (retell-sdk's `CustomTool`: `type =
/// "custom"` with `name` and `url`), wherever they sit (`general_tools`, a state's `tools`).
pub fn functions_of_agent(agent: &serde_json::Value) -> Vec<FunctionEntry> {
    use serde_json::Value;
    let mut found = Vec::new();
    let mut stack = vec![agent];
    while let Some(node) = stack.pop() {
        match node {
            Value::Object(map) => {
                let text = |key: &str| map.get(key).and_then(Value::as_str);
                if let (Some("custom"), Some(name), Some(url)) =
                    (text("type"), text("name"), text("url"))
                {
                    found.push(custom_tool(map, name, url));
                } else {
                    stack.extend(map.values().rev());
                }
            }
            Value::Array(items) => stack.extend(items.iter().rev()),
            _ => {}
        }
    }
    found
}

fn custom_tool(
    map: &serde_json::Map<String, serde_json::Value>,
    name: &str,
    url: &str,
) -> FunctionEntry {
    use serde_json::Value;
    let mut url = url.to_string();
    if let Some(Value::Object(query)) = map.get("query_params")
        && let Ok(mut parsed) = reqwest::Url::parse(&url)
    {
        for (k, v) in query {
            parsed
                .query_pairs_mut()
                .append_pair(k, v.as_str().unwrap_or_default());
        }
        url = parsed.to_string();
    }
    FunctionEntry {
        name: name.to_string(),
        url,
        method: map
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("POST")
            .to_string(),
        parameters: map.get("parameters").cloned(),
        response_variables: map
            .get("response_variables")
            .and_then(Value::as_object)
            .map(|vars| {
                vars.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default(),
        args_only: map
            .get("args_at_root")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        timeout: map
            .get("timeout_ms")
            .and_then(Value::as_u64)
            .map(Duration::from_millis),
    }
}

/// One `[[cases]]` entry as written; the command checks it against the catalog.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseEntry {
    /// Reported as `cases/<name>`.
    pub name: Spanned<String>,
    pub event: Spanned<String>,
    /// Edits as `--set` takes them: `PATH=STRING` or `PATH:=JSON`.
    #[serde(default)]
    pub set: Vec<Spanned<String>>,
    /// Paths to remove, as `--unset` takes them.
    #[serde(default)]
    pub unset: Vec<Spanned<String>>,
    /// The status expected: a number or a list of numbers.
    pub status: Option<Spanned<toml::Value>>,
    /// The slowest answer allowed, like "500ms".
    #[serde(default, deserialize_with = "deadline")]
    pub latency: Option<Duration>,
    /// Assertions on the answer's JSON.
    #[serde(default, rename = "assert")]
    pub asserts: Vec<AssertEntry>,
}

/// `[[cases.assert]]`: a JSON pointer and one test.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertEntry {
    pub pointer: Spanned<String>,
    pub equals: Option<Spanned<toml::Value>>,
    pub exists: Option<Spanned<bool>>,
    pub matches: Option<Spanned<String>>,
}

/// `[check]`: the keys only check reads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckTable {
    #[serde(default)]
    pub only: Vec<Spanned<String>>,
    #[serde(default)]
    pub skip: Vec<Spanned<String>>,
    #[serde(default, deserialize_with = "burst")]
    pub burst: Option<u16>,
    #[serde(default, deserialize_with = "duration")]
    pub wait_for: Option<Duration>,
}

/// `[load]`: the keys only load reads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadTable {
    /// Connections, as `-c`.
    pub connections: Option<u32>,
    /// Deliveries per second, as `--rate`.
    pub rate: Option<f64>,
}

/// A suite file that cannot be used, located in it.
#[derive(Debug, thiserror::Error)]
#[error("{file}{at}: {message}", at = location(*line, key.as_deref()))]
pub struct SuiteError {
    pub file: String,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

fn location(line: Option<usize>, key: Option<&str>) -> String {
    match (line, key) {
        (Some(line), Some(key)) => format!(" line {line}, key `{key}`"),
        (Some(line), None) => format!(" line {line}"),
        (None, Some(key)) => format!(" key `{key}`"),
        (None, None) => String::new(),
    }
}

/// The file hookcli reads when no --config is given.
pub const DEFAULT_FILE: &str = "hookcli.toml";

impl Suite {
    /// Reads and parses a suite file.
    pub fn load(path: &Path) -> Result<Suite, SuiteError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SuiteError {
            file: file.clone(),
            line: None,
            key: None,
            message: match e.kind() {
                std::io::ErrorKind::NotFound => "no such file".into(),
                _ => format!("cannot read it: {}", crate::text::path_reason(path, &e)),
            },
        })?;
        Suite::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Suite, SuiteError> {
        let mut suite: Suite = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            SuiteError {
                file: path.display().to_string(),
                line,
                key: e.span().and_then(|s| key_at(text, s.start)),
                message: e.message().trim().to_string(),
            }
        })?;
        suite.file = path.to_path_buf();
        suite.text = text.to_string();
        suite.lift_check_table()?;
        if let Some(name) = &suite.secret_env
            && !is_variable_name(name.get_ref())
        {
            // The value is not echoed: a key pasted here by mistake stays out of CI logs.
            return Err(suite.error(
                name.span(),
                "secret_env",
                "not the name of an environment variable (letters, digits and _, not \
                 starting with a digit): give the name of the variable that holds the key, \
                 not the key",
            ));
        }
        Ok(suite)
    }

    /// `[check]` keys stand where check reads them; one given both there and at the top level
    /// is an error, not a silent choice.
    fn lift_check_table(&mut self) -> Result<(), SuiteError> {
        let Some(table) = self.check.take() else {
            return Ok(());
        };
        let twice = |key: &str| SuiteError {
            file: self.file.display().to_string(),
            line: None,
            key: Some(key.into()),
            message: "given both at the top level and in [check]: keep one".to_string(),
        };
        if !table.only.is_empty() {
            if !self.only.is_empty() {
                return Err(twice("only"));
            }
            self.only = table.only;
        }
        if !table.skip.is_empty() {
            if !self.skip.is_empty() {
                return Err(twice("skip"));
            }
            self.skip = table.skip;
        }
        if table.burst.is_some() {
            if self.burst.is_some() {
                return Err(twice("burst"));
            }
            self.burst = table.burst;
        }
        if table.wait_for.is_some() {
            if self.wait_for.is_some() {
                return Err(twice("wait_for"));
            }
            self.wait_for = table.wait_for;
        }
        Ok(())
    }

    /// An error about a value of this file, at the value's line.
    pub fn error(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> SuiteError {
        SuiteError {
            file: self.file.display().to_string(),
            line: Some(line_of(&self.text, span.start)),
            key: Some(key.into()),
            message: message.into(),
        }
    }

    pub fn file(&self) -> &Path {
        &self.file
    }
}

/// A portable environment variable name: `RECEIVER_KEY`, not `` or `my key`.
fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The key an error offset belongs to: the `key =` on its line, or on the nearest line above
/// (an element of a multi-line array).
fn key_at(text: &str, offset: usize) -> Option<String> {
    let line = line_of(text, offset);
    text.lines()
        .take(line)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .find_map(|l| {
            // A table header: `[name]` is the key of everything under it.
            let key = match l.trim().strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
                Some(table) => table,
                None => l.split_once('=')?.0,
            };
            let key = key.trim().trim_matches(['"', '\'']);
            let bare = !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            bare.then(|| key.to_string())
        })
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    crate::duration::parse(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// A timeout, which must be more than zero (as `--timeout` requires).
fn deadline<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    crate::duration::parse_deadline_flag(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// The range `--burst` takes.
const BURST_RANGE: std::ops::RangeInclusive<u16> = 1..=1000;

fn burst<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    let n = i64::deserialize(d)?;
    u16::try_from(n)
        .ok()
        .filter(|n| BURST_RANGE.contains(n))
        .map(Some)
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{n} is not in {}..={}",
                BURST_RANGE.start(),
                BURST_RANGE.end()
            ))
        })
}

fn rule<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SuccessRule>, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map(Some).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Suite, SuiteError> {
        Suite::parse(text, Path::new("hookcli.toml"))
    }

    #[test]
    fn reads_every_key() {
        let suite = parse(
            "to = \"http://127.0.0.1:3000/webhook\"\nplatform = \"uponai\"\nsecret_env = \"KEY\"\n\
             only = [\"delivers/\"]\nskip = [\"signature/future\"]\nexpect = \"200\"\ntimeout = \"5s\"\n\
             retries = 0\nbackoff = \"0\"\nheaders = [\"Authorization: Bearer x\"]\nburst = 5\nwait_for = \"30s\"\n",
        )
        .unwrap();
        assert_eq!(suite.timeout, Some(Duration::from_secs(5)));
        assert_eq!(suite.expect.unwrap().to_string(), "200");
        assert_eq!(suite.burst, Some(5));
        assert_eq!(suite.skip[0].get_ref(), "signature/future");
    }

    #[test]
    fn reads_cases_and_refuses_unknown_keys_in_them_by_line() {
        let suite = parse(
            "[[cases]]\nname = \"vip\"\nevent = \"call_analyzed\"\nset = [\"call.metadata.tier=gold\"]\n\
             unset = [\"call.disconnection_reason\"]\nstatus = 200\nlatency = \"500ms\"\n\
             [[cases.assert]]\npointer = \"/ok\"\nequals = true\n",
        )
        .unwrap();
        let case = &suite.cases[0];
        assert_eq!(case.event.get_ref(), "call_analyzed");
        assert_eq!(case.latency, Some(Duration::from_millis(500)));
        assert_eq!(case.asserts[0].pointer.get_ref(), "/ok");
        let e = parse("[[cases]]\nname = \"x\"\nevent = \"call_ended\"\nstauts = 200\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 4") && e.contains("stauts"), "{e}");
        let e = parse("[[cases]]\nname = \"x\"\nevent = \"e\"\n[[cases.assert]]\npointer = \"/a\"\nequal = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 6") && e.contains("equal"), "{e}");
    }

    #[test]
    fn errors_name_the_line_and_key() {
        let text = "platform = \"uponai\"\n\ntimeout = 5\n";
        let e = parse(text).unwrap_err().to_string();
        assert!(e.starts_with("hookcli.toml line 3, key `timeout`:"), "{e}");
        let e = parse("retries = 1\ntmeout = \"5s\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("tmeout"), "{e}");
        let e = parse("timeout = \"soon\"\n").unwrap_err().to_string();
        assert!(
            e.contains("line 1, key `timeout`") && e.contains("`soon`"),
            "{e}"
        );
        let e = parse("skip = [\n  \"a\",\n  3,\n]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3, key `skip`"), "{e}");
        let e = parse("to = \"http://127.0.0.1/\"\ntimeout = \"0s\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 2, key `timeout`") && e.contains("more than 0"),
            "{e}"
        );
        for (value, shown) in [("0", "0 is not in 1..=1000"), ("5000", "5000 is not in")] {
            let e = parse(&format!("burst = {value}\n"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("line 1, key `burst`") && e.contains(shown),
                "{e}"
            );
        }
        let e = parse("[extra]\na = 1\n").unwrap_err().to_string();
        assert!(
            e.contains("line 1, key `extra`: unknown field `extra`"),
            "{e}"
        );
    }
}
