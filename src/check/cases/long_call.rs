//! The body of body/long-call: an hour-long call's end event, rendered through the catalog
//! from a conversation that goes on for an hour, with word-level timing in its transcript
//! object as uponai sends it (`transcript_object[].words`).

use rand::Rng;
use serde_json::{Map, Value, json};

use crate::call::{Call, CallPlan, RenderError};
use crate::catalog::{Catalog, Conversation, EventSpec, Moment, People, Platform};
use crate::signing::now_ms;

/// An hour: a long support call, and the size at which a receiver's body limit starts to bite.
pub(super) const LONG_CALL_MS: u64 = 60 * 60 * 1000;

/// Roughly how long a turn of `words` words takes in a generated call: the words at about
/// 330 ms each, plus the pause around the turn (call.rs lays the timeline out this way).
fn turn_ms(words: usize) -> u64 {
    words as u64 * 330 + 1_150
}

/// A conversation of about `ms_wanted` ms: the catalog's conversations one after another, from a
/// random one, until their turns fill it. `None` when the catalog has none.
fn talk(catalog: &Catalog, ms_wanted: u64, rng: &mut impl Rng) -> Option<Conversation> {
    let all = &catalog.conversations;
    let first = rng.gen_range(0..all.len().max(1));
    let opening = all.get(first)?;
    let mut turns = Vec::new();
    let mut ms = 0;
    for conversation in all.iter().cycle().skip(first) {
        for (who, text) in &conversation.turns {
            turns.push((*who, text.clone()));
            ms += turn_ms(text.split_whitespace().count());
        }
        if ms >= ms_wanted || turns.is_empty() {
            break;
        }
    }
    Some(Conversation {
        topic: opening.topic.clone(),
        summary: opening.summary.clone(),
        sentiment: opening.sentiment.clone(),
        outcome: opening.outcome.clone(),
        successful: opening.successful,
        score: opening.score,
        turns,
    })
}

/// `event` of an hour-long call, and the call's length in whole minutes.
pub(super) fn render(
    catalog: &Catalog,
    platform: &Platform,
    event: &EventSpec,
    rng: &mut impl Rng,
) -> Result<Option<(Value, u64)>, RenderError> {
    // The length of talk is an estimate of how call.rs lays turns out: a call that falls
    // short of the hour is made again with a little more.
    let mut wanted = LONG_CALL_MS;
    let call = loop {
        let Some(conversation) = talk(catalog, wanted, rng) else {
            return Ok(None);
        };
        let call = generate(catalog, platform, event, conversation, rng)?;
        if duration_ms(&call) >= LONG_CALL_MS || wanted > 2 * LONG_CALL_MS {
            break call;
        }
        wanted += LONG_CALL_MS / 20;
    };
    let mut value = call.render(event, None)?;
    add_words(&mut value, &call);
    Ok(Some((value, duration_ms(&call) / 60_000)))
}

fn duration_ms(call: &Call) -> u64 {
    call.var("duration_ms")
        .and_then(Value::as_u64)
        .unwrap_or_default()
}

/// A call of `conversation`, with the catalog's people.
fn generate(
    catalog: &Catalog,
    platform: &Platform,
    event: &EventSpec,
    conversation: Conversation,
    rng: &mut impl Rng,
) -> Result<Call, RenderError> {
    let only = Catalog {
        platforms: Vec::new(),
        people: People {
            first_names: catalog.people.first_names.clone(),
            last_names: catalog.people.last_names.clone(),
            places: catalog.people.places.clone(),
        },
        conversations: vec![conversation],
        partial: true,
    };
    Call::generate(&only, platform, &CallPlan::for_event(event, now_ms()), rng)
}

/// Adds `words` (each word with its start and end, in seconds from the call's start) to
/// every turn object of the transcript: the arrays with one object per turn.
fn add_words(value: &mut Value, call: &Call) {
    match value {
        Value::Array(items)
            if items.len() == call.turn_count() && items.iter().all(Value::is_object) =>
        {
            let start = call.moment_ms(Moment::Start, None);
            let mut spoken_until = 0.5;
            for (i, item) in items.iter_mut().enumerate() {
                let end =
                    call.moment_ms(Moment::Turn, Some(i)).saturating_sub(start) as f64 / 1000.0;
                if let Value::Object(turn) = item {
                    add_turn_words(turn, spoken_until, end);
                }
                spoken_until = end + 0.4;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| add_words(v, call)),
        Value::Object(map) => map.values_mut().for_each(|v| add_words(v, call)),
        _ => {}
    }
}

/// The turn's words spread evenly from `from` to `to` seconds; a turn that has its own
/// `words` keeps them.
fn add_turn_words(turn: &mut Map<String, Value>, from: f64, to: f64) {
    if turn.contains_key("words") {
        return;
    }
    let text = turn
        .values()
        .filter_map(Value::as_str)
        .max_by_key(|s| s.len())
        .unwrap_or_default()
        .to_string();
    let words: Vec<&str> = text.split_whitespace().collect();
    let from = from.min(to);
    let each = (to - from) / words.len().max(1) as f64;
    let seconds = |s: f64| (s * 1000.0).round() / 1000.0;
    let timed: Vec<Value> = words
        .iter()
        .enumerate()
        .map(|(k, word)| {
            let start = from + each * k as f64;
            json!({"word": word, "start": seconds(start), "end": seconds(start + each * 0.9)})
        })
        .collect();
    turn.insert("words".into(), Value::Array(timed));
}
