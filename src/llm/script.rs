//! payloads/llm.toml as types: the protocol of each platform, the scenarios the protocol cases
//! play, and what `hookcli llm serve` answers. Read from the embedded file, or from
//! `--payloads DIR/llm.toml` when there is one (it replaces the built-in file whole).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// The built-in file; build.rs reruns when anything under payloads/ changes.
const BUILTIN: &str = include_str!("../../payloads/llm.toml");

#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{origin} is not a valid llm script: {reason}")]
    Invalid { origin: String, reason: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    pub protocols: BTreeMap<String, Protocol>,
    #[serde(default)]
    pub scenarios: Vec<Scenario>,
    pub serve: Serve,
}

/// How a platform hands the conversation to the developer's server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Protocol {
    pub kind: ProtocolKind,
    /// Vapi's `call`, `phoneNumber`, `customer` and `metadata` request fields.
    #[serde(default)]
    pub call_fields: bool,
    /// The platform's own deadline for a response's first token, when it states one.
    #[serde(default, with = "opt_duration")]
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProtocolKind {
    Websocket,
    OpenaiSse,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub steps: Vec<Step>,
}

/// One thing the caller does on a scenario's call.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Step {
    #[serde(default)]
    pub say: Option<String>,
    #[serde(default)]
    pub interrupt: Option<String>,
    #[serde(default)]
    pub update: Option<String>,
    #[serde(default)]
    pub silence: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Serve {
    pub greeting: String,
    pub reply: String,
    pub reminder: String,
    pub words_per_chunk: usize,
    #[serde(with = "duration")]
    pub chunk_delay: Duration,
    #[serde(default)]
    pub auto_reconnect: bool,
    #[serde(default)]
    pub call_details: bool,
    /// Sent as update_agent's agent_config after the config, when given.
    #[serde(default)]
    pub agent_config: Option<toml::Table>,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub when: String,
    pub answer: String,
    #[serde(default)]
    pub tool: Option<Tool>,
    #[serde(default)]
    pub transfer_number: Option<String>,
    #[serde(default)]
    pub end_call: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    pub name: String,
    /// A JSON string, as the protocol carries it.
    pub arguments: String,
    pub result: String,
}

mod duration {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        crate::duration::parse(&text).map_err(serde::de::Error::custom)
    }
}

mod opt_duration {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(d)?;
        crate::duration::parse(&text)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

impl Script {
    /// The built-in script, or `overlay/llm.toml` when that file exists.
    pub fn load(overlay: Option<&Path>) -> Result<Script, ScriptError> {
        let file = overlay.map(|dir| dir.join("llm.toml"));
        match file.filter(|f| f.is_file()) {
            Some(path) => {
                let origin = path.display().to_string();
                let text = std::fs::read_to_string(&path).map_err(|e| ScriptError::Read {
                    path: origin.clone(),
                    reason: crate::text::io_reason(&e),
                })?;
                Script::parse(&text, &origin)
            }
            None => Script::parse(BUILTIN, "built-in payloads/llm.toml"),
        }
    }

    pub fn parse(text: &str, origin: &str) -> Result<Script, ScriptError> {
        let invalid = |reason: String| ScriptError::Invalid {
            origin: origin.to_string(),
            reason,
        };
        let script: Script = toml::from_str(text).map_err(|e| invalid(e.message().to_string()))?;
        if script.serve.words_per_chunk == 0 {
            return Err(invalid("serve.words_per_chunk must be 1 or more".into()));
        }
        for scenario in &script.scenarios {
            for step in &scenario.steps {
                if step.silence == step.say.is_some() {
                    return Err(invalid(format!(
                        "scenario {}: each step is either `say` or `silence = true`",
                        scenario.name
                    )));
                }
            }
        }
        Ok(script)
    }

    pub fn scenario(&self, name: &str) -> Option<&Scenario> {
        self.scenarios.iter().find(|s| s.name == name)
    }
}

impl Serve {
    /// The rule answering the user's last words, if one does.
    pub fn rule_for(&self, last: &str) -> Option<&Rule> {
        let last = last.to_lowercase();
        self.rules
            .iter()
            .find(|r| last.contains(&r.when.to_lowercase()))
    }

    /// The answer's text for the user's last words.
    pub fn answer_text(&self, last: &str) -> String {
        match self.rule_for(last) {
            Some(rule) => rule.answer.clone(),
            None => self.reply.replace("{{last}}", last.trim()),
        }
    }

    /// `text` cut into the chunks the server streams (spaces kept, so they join back).
    pub fn chunks(&self, text: &str) -> Vec<String> {
        let words: Vec<&str> = text.split_inclusive(' ').collect();
        words
            .chunks(self.words_per_chunk)
            .map(|c| c.concat())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_script_parses_and_has_the_case_scenarios() {
        let script = Script::load(None).expect("built-in llm.toml parses");
        for name in ["interruption", "update-mid-stream", "reminder"] {
            assert!(script.scenario(name).is_some(), "{name}");
        }
        assert_eq!(
            script.protocols["uponai"].kind,
            ProtocolKind::Websocket,
            "uponai speaks the websocket"
        );
    }

    #[test]
    fn answers_follow_the_rules_and_chunks_join_back() {
        let script = Script::load(None).unwrap();
        let serve = &script.serve;
        assert!(serve.rule_for("OK, bye then").unwrap().end_call);
        assert!(serve.answer_text("what?").contains("what?"));
        let text = "one two three four five";
        assert_eq!(serve.chunks(text).concat(), text);
    }
}
