//! One call, told consistently: the ids, people, timeline and transcript that every event of
//! the call shares. Events are rendered from it at their moment.

use std::time::{Duration, UNIX_EPOCH};

use rand::Rng;
use rand::seq::SliceRandom;
use serde_json::{Map, Value, json};

use crate::catalog::{Catalog, EventSpec, Lifecycle, Moment, Platform, Speaker};
use crate::template;

/// A template that refers to a variable no call defines.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: unknown variable `{{{{{name}}}}}` (payloads/README.md lists them)")]
pub struct RenderError {
    pub origin: String,
    pub name: String,
}

/// Where the call sits in time.
#[derive(Clone, Copy, Debug)]
pub enum Anchor {
    /// The call is over: its last moment (analysis done) is at this Unix ms.
    EndsAt(u64),
    /// The call is placed at this Unix ms and runs into the future (for --realtime).
    StartsAt(u64),
}

/// What kind of call to make.
#[derive(Clone, Debug)]
pub struct CallPlan {
    pub connected: bool,
    pub transfer: bool,
    pub vars: Map<String, Value>,
    pub anchor: Anchor,
}

impl CallPlan {
    /// A connected call that ended just now, for sending one event.
    pub fn for_event(event: &EventSpec, now_ms: u64) -> Self {
        CallPlan {
            connected: true,
            transfer: matches!(event.at, Moment::Transfer | Moment::Bridged),
            vars: Map::new(),
            anchor: Anchor::EndsAt(now_ms),
        }
    }

    /// The call a lifecycle describes.
    pub fn for_lifecycle(platform: &Platform, lifecycle: &Lifecycle, anchor: Anchor) -> Self {
        let transfer = lifecycle.steps.iter().any(|s| {
            platform
                .event(&s.event)
                .is_some_and(|e| matches!(e.at, Moment::Transfer | Moment::Bridged))
        });
        CallPlan {
            connected: lifecycle.connected,
            transfer,
            vars: lifecycle.vars.clone(),
            anchor,
        }
    }
}

struct Turn {
    at_ms: u64,
    vars: Map<String, Value>,
    line: String,
    object: Value,
}

/// A generated call. Render its events with [`Call::render`].
pub struct Call {
    base: Map<String, Value>,
    turns: Vec<Turn>,
    moments: Moments,
}

#[derive(Clone, Copy, Default)]
struct Moments {
    dial: u64,
    ring: u64,
    start: u64,
    transfer: u64,
    bridged: u64,
    end: u64,
    analyzed: u64,
}

const AGENT_HANGUP_RATE: f64 = 0.3;

impl Call {
    pub fn generate(
        catalog: &Catalog,
        platform: &Platform,
        plan: &CallPlan,
        rng: &mut impl Rng,
    ) -> Result<Call, RenderError> {
        let conversation = catalog
            .conversations
            .choose(rng)
            .expect("catalog has conversations");
        let mut base = Map::new();
        for (name, pattern) in &platform.ids {
            base.insert(name.clone(), pattern.generate(rng));
        }
        add_person(&mut base, catalog, rng);
        base.insert(
            "direction".into(),
            json!(if rng.gen_bool(0.5) {
                "inbound"
            } else {
                "outbound"
            }),
        );
        base.insert("topic".into(), json!(conversation.topic));
        base.insert("sentiment".into(), json!(conversation.sentiment));
        base.insert("outcome".into(), json!(conversation.outcome));
        base.insert("successful".into(), json!(conversation.successful));
        base.insert("score".into(), json!(conversation.score));
        base.insert("connected".into(), json!(plan.connected));
        let hangup = if rng.gen_bool(AGENT_HANGUP_RATE) {
            "agent_hangup"
        } else {
            "user_hangup"
        };
        base.insert("disconnection_reason".into(), json!(hangup));
        base.insert(
            "error_message".into(),
            json!(ERRORS.choose(rng).copied().unwrap_or("media stream closed")),
        );
        base.insert(
            "transfer_number".into(),
            json!(format!(
                "+1{}{:07}",
                rng.gen_range(201..990),
                rng.gen_range(0..10_000_000)
            )),
        );
        let summary = interpolate_text(&conversation.summary, &base);
        base.insert("summary".into(), json!(summary));

        // The conversation's words, with each caller variable filled in.
        let spoken: Vec<(Speaker, String)> = if plan.connected {
            conversation
                .turns
                .iter()
                .map(|(who, text)| (*who, interpolate_text(text, &base)))
                .collect()
        } else {
            Vec::new()
        };
        let (moments, turn_times) = timeline(&spoken, plan, rng);
        add_times(&mut base, &moments);
        for (name, value) in &plan.vars {
            base.insert(name.clone(), value.clone());
        }
        let turns = spoken
            .iter()
            .zip(turn_times)
            .enumerate()
            .map(|(i, ((who, text), at_ms))| make_turn(platform, &base, i, *who, text, at_ms))
            .collect::<Result<_, _>>()?;
        Ok(Call {
            base,
            turns,
            moments,
        })
    }

    /// One of the call's variables (ids, people, times), as the templates see it.
    pub fn var(&self, name: &str) -> Option<&Value> {
        self.base.get(name)
    }

    pub fn turn_count(&self) -> usize {
        self.turns.len()
    }

    /// The Unix ms an event describes: its moment, or its turn.
    pub fn moment_ms(&self, at: Moment, turn: Option<usize>) -> u64 {
        let m = &self.moments;
        match at {
            Moment::Dial => m.dial,
            Moment::Ring => m.ring,
            Moment::Start => m.start,
            Moment::Turn => match self.turn_index(turn) {
                Some(i) => self.turns[i].at_ms,
                None => m.start,
            },
            Moment::Transfer => m.transfer,
            Moment::Bridged => m.bridged,
            Moment::End => m.end,
            Moment::Analyzed => m.analyzed,
        }
    }

    /// A per-turn event sent on its own describes the last turn.
    fn turn_index(&self, turn: Option<usize>) -> Option<usize> {
        let last = self.turns.len().checked_sub(1)?;
        Some(turn.unwrap_or(last).min(last))
    }

    /// Renders `event` at its moment (or at turn `turn` for a per-turn step).
    pub fn render(&self, event: &EventSpec, turn: Option<usize>) -> Result<Value, RenderError> {
        self.render_with(event, turn, |layers| {
            template::render(event.template.value(), layers)
        })
    }

    /// Runs `render` over the variables of `event` at its moment: the call's, the turn's and
    /// the event's own.
    pub(crate) fn render_with<T>(
        &self,
        event: &EventSpec,
        turn: Option<usize>,
        render: impl FnOnce(&template::Layers) -> Result<T, String>,
    ) -> Result<T, RenderError> {
        let at_ms = self.moment_ms(event.at, turn);
        let mut layer = Map::new();
        layer.insert("event".into(), json!(event.name));
        add_time(&mut layer, "event", at_ms);
        let so_far: Vec<&Turn> = self.turns.iter().filter(|t| t.at_ms <= at_ms).collect();
        let lines: Vec<&str> = so_far.iter().map(|t| t.line.as_str()).collect();
        layer.insert("transcript_text".into(), json!(lines.join("\n")));
        layer.insert(
            "transcript_turns".into(),
            Value::Array(so_far.iter().map(|t| t.object.clone()).collect()),
        );
        layer.insert("turn_count".into(), json!(so_far.len()));
        let current = if event.at == Moment::Turn {
            self.turn_index(turn)
        } else {
            None
        };
        let empty = Map::new();
        let turn_vars = current.map(|i| &self.turns[i].vars).unwrap_or(&empty);
        render(&[&self.base, turn_vars, &layer]).map_err(|name| RenderError {
            origin: event.origin.clone(),
            name,
        })
    }
}

const ERRORS: [&str; 4] = [
    "SIP 503: destination unavailable",
    "media stream closed unexpectedly",
    "LLM response timed out after 8s",
    "carrier rejected the call: number not in service",
];

fn add_person(base: &mut Map<String, Value>, catalog: &Catalog, rng: &mut impl Rng) {
    let people = &catalog.people;
    let first = people.first_names.choose(rng).cloned().unwrap_or_default();
    let last = people.last_names.choose(rng).cloned().unwrap_or_default();
    let place = people
        .places
        .choose(rng)
        .cloned()
        .expect("catalog has places");
    let email = format!("{}.{}@example.com", ascii_lower(&first), ascii_lower(&last));
    base.insert("caller_name".into(), json!(format!("{first} {last}")));
    base.insert("caller_first_name".into(), json!(first));
    base.insert("caller_last_name".into(), json!(last));
    base.insert("caller_email".into(), json!(email));
    base.insert("city".into(), json!(place.city));
    base.insert("state".into(), json!(place.state));
    base.insert("country".into(), json!(place.country));
    base.insert("language".into(), json!(place.language));
}

/// Letters for an email address: accents dropped, only a-z and digits kept. Lowercased
/// first, so capitals with accents (Ö, Ł, İ) map like their small letters instead of vanishing.
fn ascii_lower(name: &str) -> String {
    name.chars()
        .flat_map(char::to_lowercase)
        .filter_map(|c| {
            let c = match c {
                'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' => 'a',
                'é' | 'è' | 'ê' | 'ë' | 'ễ' | 'ế' | 'ệ' => 'e',
                'í' | 'ì' | 'î' | 'ï' | 'ı' => 'i',
                'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'ø' => 'o',
                'ú' | 'ù' | 'û' | 'ü' => 'u',
                'ç' => 'c',
                'ñ' => 'n',
                'ł' => 'l',
                'ş' => 's',
                'ğ' => 'g',
                other => other.to_ascii_lowercase(),
            };
            c.is_ascii_alphanumeric().then_some(c)
        })
        .collect()
}

fn interpolate_text(text: &str, base: &Map<String, Value>) -> String {
    template::interpolate(text, &[base]).unwrap_or_else(|_| text.to_string())
}

/// Lays the call out in time: the moments, and when each turn finished being spoken.
fn timeline(
    spoken: &[(Speaker, String)],
    plan: &CallPlan,
    rng: &mut impl Rng,
) -> (Moments, Vec<u64>) {
    let mut m = Moments {
        ring: 1_000,
        ..Moments::default()
    };
    let mut turn_times = Vec::new();
    if plan.connected {
        m.start = m.ring + rng.gen_range(3_000..9_000);
        let mut t = m.start + rng.gen_range(400..900);
        for (_, text) in spoken {
            let words = text.split_whitespace().count() as u64;
            t += words * rng.gen_range(280..380) + 300;
            turn_times.push(t);
            t += rng.gen_range(400..1_300);
        }
        let last = turn_times.last().copied().unwrap_or(m.start);
        if plan.transfer {
            m.transfer = last + rng.gen_range(500..1_000);
            m.bridged = m.transfer + rng.gen_range(4_000..9_000);
            m.end = m.bridged + rng.gen_range(20_000..90_000);
        } else {
            m.end = last + rng.gen_range(800..2_000);
            m.transfer = m.end;
            m.bridged = m.end;
        }
    } else {
        // Never answered: it rang out.
        m.start = m.dial;
        m.end = m.ring + rng.gen_range(20_000..30_000);
        m.transfer = m.end;
        m.bridged = m.end;
    }
    m.analyzed = m.end + rng.gen_range(2_000..7_000);
    let shift = match plan.anchor {
        Anchor::EndsAt(ms) => ms.saturating_sub(m.analyzed),
        Anchor::StartsAt(ms) => ms,
    };
    for t in [
        &mut m.dial,
        &mut m.ring,
        &mut m.start,
        &mut m.transfer,
        &mut m.bridged,
        &mut m.end,
        &mut m.analyzed,
    ] {
        *t += shift;
    }
    (m, turn_times.into_iter().map(|t| t + shift).collect())
}

fn add_times(base: &mut Map<String, Value>, m: &Moments) {
    for (name, ms) in [
        ("dial", m.dial),
        ("ring", m.ring),
        ("start", m.start),
        ("end", m.end),
        ("analyzed", m.analyzed),
    ] {
        add_time(base, name, ms);
    }
    let duration = m.end.saturating_sub(m.start);
    base.insert("duration_ms".into(), json!(duration));
    base.insert("duration_s".into(), json!(duration / 1000));
}

/// `<name>_ms`, `<name>_s`, `<name>_s_text` and `<name>_iso` for one instant.
fn add_time(vars: &mut Map<String, Value>, name: &str, ms: u64) {
    vars.insert(format!("{name}_ms"), json!(ms));
    vars.insert(format!("{name}_s"), json!(ms / 1000));
    vars.insert(format!("{name}_s_text"), json!((ms / 1000).to_string()));
    vars.insert(format!("{name}_iso"), json!(iso(ms)));
}

/// ISO 8601 UTC, to the second: `2024-07-15T14:30:00Z`.
pub fn iso(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

fn make_turn(
    platform: &Platform,
    base: &Map<String, Value>,
    index: usize,
    who: Speaker,
    text: &str,
    at_ms: u64,
) -> Result<Turn, RenderError> {
    let style = &platform.transcript;
    let (role, label) = match who {
        Speaker::Agent => (&style.agent_role, &style.agent_label),
        Speaker::User => (&style.user_role, &style.user_label),
    };
    let mut vars = Map::new();
    vars.insert("role".into(), json!(role));
    vars.insert("label".into(), json!(label));
    vars.insert("text".into(), json!(text));
    vars.insert("turn_index".into(), json!(index));
    add_time(&mut vars, "turn", at_ms);
    let origin = format!("{} platform.toml [transcript]", platform.id);
    let fail = |name| RenderError {
        origin: origin.clone(),
        name,
    };
    let line = template::interpolate(&style.line, &[base, &vars]).map_err(fail)?;
    let object = template::render(&style.turn, &[base, &vars]).map_err(fail)?;
    Ok(Turn {
        at_ms,
        vars,
        line,
        object,
    })
}

/// The random source for renders: seeded (HOOKCLI_SEED, read by `config::Env`) for
/// reproducible ids, people and conversations (times still follow the clock), else from the OS.
pub fn rng_from(seed: Option<u64>) -> rand::rngs::StdRng {
    use rand::SeedableRng;
    match seed {
        Some(seed) => rand::rngs::StdRng::seed_from_u64(seed),
        None => rand::rngs::StdRng::from_entropy(),
    }
}

/// Renders one event of a fresh call that has just ended.
pub fn render_event(
    catalog: &Catalog,
    platform: &Platform,
    event: &EventSpec,
    rng: &mut impl Rng,
) -> Result<Value, RenderError> {
    let plan = CallPlan::for_event(event, crate::signing::now_ms());
    Call::generate(catalog, platform, &plan, rng)?.render(event, None)
}

#[cfg(test)]
mod tests {
    use super::ascii_lower;

    #[test]
    fn email_letters_keep_accented_capitals_and_other_scripts_letters() {
        assert_eq!(ascii_lower("Öztürk"), "ozturk");
        assert_eq!(ascii_lower("Łucja"), "lucja");
        assert_eq!(ascii_lower("Nguyễn"), "nguyen");
        assert_eq!(ascii_lower("İstanbul"), "istanbul");
        assert_eq!(ascii_lower("Lefèvre"), "lefevre");
    }
}
