//! Fresh bodies fast enough for a load test.
//!
//! Rendering through `serde_json::Value`s costs about 55 µs per call_ended (see
//! benches/render_sign.rs), which would cap a 2-core machine far below what nginx answers. So a
//! handful of calls are rendered the ordinary way up front and compiled into byte templates
//! whose slots are the call's ids and timestamps. Each delivery fills the slots with fresh ids
//! and with times moved to now: the same bytes `hookcli send` would produce for a call with
//! those ids that ended at that moment.
//!
//! The slots are found, not guessed: every call is rendered twice from one seed, anchored at
//! two instants a known shift apart, and only the bytes that moved with the clock become time
//! slots. A compiled template must then reproduce the second render exactly, or it is refused
//! and the slow path is used.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value};

use crate::call::{Anchor, Call, CallPlan, RenderError};
use crate::catalog::{Catalog, EventSpec, IdPattern, Lifecycle, Platform};
use crate::replay::EventFilter;

/// How many calls are compiled: enough that bodies vary in people, words and length.
const PROTOTYPES: usize = 64;

/// The second render is anchored this much later: one day, hour, minute and second, so every
/// field of a timestamp moves and a shift in seconds cannot pass for one in milliseconds.
const SHIFT_S: u64 = 90_061;
const SHIFT_MS: u64 = SHIFT_S * 1000;

/// What one call delivers: a single event, or a lifecycle's steps (those the filter wants;
/// the others still shape the call, as they do in replay, but are not sent).
#[derive(Clone, Debug)]
pub enum Script {
    Event(EventSpec),
    Lifecycle(Lifecycle, EventFilter),
}

impl Script {
    /// The event or lifecycle name.
    pub fn name(&self) -> &str {
        match self {
            Script::Event(e) => &e.name,
            Script::Lifecycle(l, _) => &l.name,
        }
    }
}

/// Makes the bodies of fresh calls. Owns what it needs, so workers can share it.
pub enum Bodies {
    Compiled(Vec<Prototype>),
    /// The ordinary renderer, for templates the compiler refuses.
    Rendered {
        catalog: Arc<Catalog>,
        platform: Box<Platform>,
        script: Box<Script>,
    },
}

impl Bodies {
    /// Compiles the script, or falls back to rendering each call (with the reason).
    pub fn new(
        catalog: Arc<Catalog>,
        platform: &Platform,
        script: Script,
        rng: &mut impl Rng,
    ) -> Result<(Self, Option<String>), RenderError> {
        let now = crate::signing::now_ms();
        if platform.format != crate::catalog::BodyFormat::Json {
            // The compiler finds values in JSON text; a form body is encoded after rendering.
            let slow = Bodies::Rendered {
                catalog,
                platform: Box::new(platform.clone()),
                script: Box::new(script),
            };
            return Ok((slow, Some("the platform's bodies are not JSON".into())));
        }
        let mut prototypes = Vec::with_capacity(PROTOTYPES);
        for _ in 0..PROTOTYPES {
            match Prototype::compile(&catalog, platform, &script, rng.r#gen(), now)? {
                Ok(p) => prototypes.push(p),
                Err(why) => {
                    let slow = Bodies::Rendered {
                        catalog,
                        platform: Box::new(platform.clone()),
                        script: Box::new(script),
                    };
                    return Ok((slow, Some(why)));
                }
            }
        }
        Ok((Bodies::Compiled(prototypes), None))
    }

    /// The bodies of one fresh call that ends at `now_ms`, in delivery order.
    pub fn call(&self, rng: &mut impl Rng, now_ms: u64) -> Vec<Bytes> {
        match self {
            Bodies::Compiled(prototypes) => {
                let prototype = &prototypes[rng.gen_range(0..prototypes.len())];
                prototype.fresh(rng, now_ms)
            }
            Bodies::Rendered {
                catalog,
                platform,
                script,
            } => render(catalog, platform, script, rng, now_ms)
                .map(|bodies| bodies.into_iter().map(Bytes::from).collect())
                // The same templates rendered when the prototypes were tried, so this holds.
                .unwrap_or_default(),
        }
    }
}

/// Renders one call's bodies the ordinary way.
fn render(
    catalog: &Catalog,
    platform: &Platform,
    script: &Script,
    rng: &mut impl Rng,
    ends_at_ms: u64,
) -> Result<Vec<Vec<u8>>, RenderError> {
    render_call(catalog, platform, script, rng, ends_at_ms, &Map::new()).map(|(_, b)| b)
}

fn render_call(
    catalog: &Catalog,
    platform: &Platform,
    script: &Script,
    rng: &mut impl Rng,
    ends_at_ms: u64,
    vars: &Map<String, Value>,
) -> Result<(Call, Vec<Vec<u8>>), RenderError> {
    let mut plan = match script {
        Script::Event(event) => CallPlan::for_event(event, ends_at_ms),
        Script::Lifecycle(l, _) => CallPlan::for_lifecycle(platform, l, Anchor::EndsAt(ends_at_ms)),
    };
    // Plan variables replace generated ones after every random draw, so the rest of the
    // call stays the same.
    plan.vars.extend(vars.clone());
    let call = Call::generate(catalog, platform, &plan, rng)?;
    let mut bodies = Vec::new();
    for (event, turn) in steps(platform, script, call.turn_count()) {
        let value = call.render(event, turn)?;
        bodies.push(platform.encode(&value));
    }
    Ok((call, bodies))
}

/// The deliveries of one call: per-turn steps once per turn.
fn steps<'a>(
    platform: &'a Platform,
    script: &'a Script,
    turns: usize,
) -> Vec<(&'a EventSpec, Option<usize>)> {
    match script {
        Script::Event(event) => vec![(event, None)],
        Script::Lifecycle(lifecycle, filter) => lifecycle
            .steps
            .iter()
            .filter(|step| filter.wants(platform, &step.event))
            .filter_map(|step| platform.event(&step.event).map(|e| (e, step)))
            .flat_map(|(event, step)| {
                let turns: Vec<Option<usize>> = if step.per_turn {
                    (0..turns).map(Some).collect()
                } else {
                    vec![None]
                };
                turns.into_iter().map(move |t| (event, t))
            })
            .collect(),
    }
}

/// A slot in a body: a timestamp (its value in the compiled render) or an id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Millis(u64),
    Seconds(u64),
    /// `2024-07-15T14:30:00Z`; the value is Unix seconds.
    Iso(u64),
    /// Index into the prototype's id patterns.
    Id(usize),
}

struct Template {
    text: Vec<u8>,
    /// Sorted, not overlapping.
    slots: Vec<(Range<usize>, Slot)>,
}

/// One compiled call.
pub struct Prototype {
    templates: Vec<Template>,
    ids: Vec<IdPattern>,
    /// The compiled render ends at this Unix ms; fresh calls move by whole seconds from it.
    anchor_ms: u64,
}

impl Prototype {
    /// `Ok(Err(why))` when the templates do something the compiler cannot follow.
    fn compile(
        catalog: &Catalog,
        platform: &Platform,
        script: &Script,
        seed: u64,
        anchor_ms: u64,
    ) -> Result<Result<Prototype, String>, RenderError> {
        let none = Map::new();
        let render = |at: u64, vars: &Map<String, Value>| {
            render_call(
                catalog,
                platform,
                script,
                &mut StdRng::seed_from_u64(seed),
                at,
                vars,
            )
        };
        let (call, first) = render(anchor_ms, &none)?;
        let (_, later) = render(anchor_ms + SHIFT_MS, &none)?;
        // Each id, changed in every character, shows where it lands in the bodies.
        let mut ids = Vec::new();
        let mut texts = Vec::new();
        let mut moved = Vec::new();
        for (name, pattern) in &platform.ids {
            let Some((text, other)) = call.var(name).and_then(changed) else {
                continue;
            };
            let vars = Map::from_iter([(name.clone(), other.clone())]);
            ids.push(pattern.clone());
            texts.push((text, id_text(&other)));
            moved.push(render(anchor_ms, &vars)?.1);
        }
        if first.len() != later.len() || moved.iter().any(|m| m.len() != first.len()) {
            return Ok(Err(
                "the number of steps changed with the clock or an id".into()
            ));
        }
        let originals: Vec<String> = texts.iter().map(|(a, _)| a.clone()).collect();
        let mut templates = Vec::new();
        for (step, (a, b)) in first.into_iter().zip(&later).enumerate() {
            let with_ids: Vec<&[u8]> = moved.iter().map(|m| m[step].as_slice()).collect();
            let template = match compile_body(a, b, &texts, &with_ids) {
                Ok(t) => t,
                Err(why) => return Ok(Err(why)),
            };
            // The template must give back every render it was made from.
            let mut checks = vec![(SHIFT_S, originals.clone(), b.as_slice())];
            for (i, body) in with_ids.iter().enumerate() {
                let mut values = originals.clone();
                values[i] = texts[i].1.clone();
                checks.push((0, values, body));
            }
            for (shift, values, expected) in checks {
                let mut out = Vec::new();
                let values: Vec<&[u8]> = values.iter().map(String::as_bytes).collect();
                template.fill(&mut out, shift, &values);
                if out != expected {
                    return Ok(Err(
                        "a compiled template did not reproduce its render".into()
                    ));
                }
            }
            templates.push(template);
        }
        let ids = drop_unused_ids(ids, &mut templates);
        Ok(Ok(Prototype {
            templates,
            ids,
            anchor_ms,
        }))
    }

    fn fresh(&self, rng: &mut impl Rng, now_ms: u64) -> Vec<Bytes> {
        let shift_s = now_ms.saturating_sub(self.anchor_ms) / 1000;
        // The call's ids, drawn into one buffer rather than a String each.
        let mut text = Vec::with_capacity(self.ids.len() * 40);
        let mut ends = Vec::with_capacity(self.ids.len());
        for pattern in &self.ids {
            pattern.write_quick(rng, &mut text);
            ends.push(text.len());
        }
        let ids: Vec<&[u8]> = ends
            .iter()
            .scan(0, |start, &end| {
                let id = &text[*start..end];
                *start = end;
                Some(id)
            })
            .collect();
        self.templates
            .iter()
            .map(|t| {
                // Exactly the body's length when the ids and times keep theirs, so the Bytes
                // takes the buffer as it is.
                let mut out = Vec::with_capacity(t.text.len());
                t.fill(&mut out, shift_s, &ids);
                Bytes::from(out)
            })
            .collect()
    }
}

/// The ids some template has a slot for, the slots renumbered: a platform's other ids (a
/// chat id in a call's webhook) would be drawn for every delivery and never sent.
fn drop_unused_ids(ids: Vec<IdPattern>, templates: &mut [Template]) -> Vec<IdPattern> {
    let slotted = |i: usize| {
        templates
            .iter()
            .any(|t| t.slots.iter().any(|(_, slot)| *slot == Slot::Id(i)))
    };
    let kept: Vec<usize> = (0..ids.len()).filter(|&i| slotted(i)).collect();
    for template in templates.iter_mut() {
        for (_, slot) in &mut template.slots {
            if let Slot::Id(i) = slot {
                *i = kept.iter().position(|k| k == i).unwrap_or(*i);
            }
        }
    }
    kept.into_iter().map(|i| ids[i].clone()).collect()
}

/// An id's text and a value of the same type and length that differs in every digit and
/// letter; `None` for values that are not ids (empty, or not a string or number).
fn changed(value: &Value) -> Option<(String, Value)> {
    let text = id_text(value);
    if text.is_empty() {
        return None;
    }
    let shifted: String = text
        .chars()
        .enumerate()
        .map(|(i, c)| match c {
            // A number's first digit never becomes 0, so the length stays.
            '0'..='8' if i == 0 && value.is_number() => (c as u8 + 1) as char,
            '9' if i == 0 && value.is_number() => '1',
            '0'..='8' | 'a'..='y' | 'A'..='Y' => (c as u8 + 1) as char,
            '9' => '0',
            'z' => 'a',
            'Z' => 'A',
            other => other,
        })
        .collect();
    let other = match value {
        Value::String(_) => Value::String(shifted),
        Value::Number(_) => serde_json::from_str(&shifted).ok()?,
        _ => return None,
    };
    Some((text, other))
}

/// An id as it appears in a body: strings bare, numbers in decimal.
fn id_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// Slots for the timestamps (where `a` and `b` differ) and for each id (where `a` and that
/// id's render differ: exactly the places the id's text sits).
fn compile_body(
    a: Vec<u8>,
    b: &[u8],
    ids: &[(String, String)],
    with_ids: &[&[u8]],
) -> Result<Template, String> {
    if a.len() != b.len() || with_ids.iter().any(|m| m.len() != a.len()) {
        return Err("a body's length changed with the clock or an id".into());
    }
    let mut slots = time_slots(&a, b)?;
    for (index, ((original, other), moved)) in ids.iter().zip(with_ids).enumerate() {
        let (original, other) = (original.as_bytes(), other.as_bytes());
        let mut p = 0;
        while p < a.len() {
            if a[p] == moved[p] {
                p += 1;
                continue;
            }
            let start = (p.saturating_sub(original.len() - 1)..=p)
                .find(|&s| {
                    a.get(s..s + original.len()) == Some(original)
                        && moved.get(s..s + other.len()) == Some(other)
                })
                .ok_or_else(|| format!("byte {p} of a body changes with an id but is no id"))?;
            let range = start..start + original.len();
            if slots.iter().any(|(r, _)| overlaps(r, &range)) {
                return Err(format!("an id and a timestamp overlap at byte {start}"));
            }
            slots.push((range.clone(), Slot::Id(index)));
            p = range.end;
        }
    }
    slots.sort_by_key(|(r, _)| r.start);
    Ok(Template { text: a, slots })
}

/// The ranges of `a` that differ from `b` as timestamps shifted by exactly the known shift.
fn time_slots(a: &[u8], b: &[u8]) -> Result<Vec<(Range<usize>, Slot)>, String> {
    let mut slots = Vec::new();
    let mut p = 0;
    while p < a.len() {
        if a[p] == b[p] {
            p += 1;
            continue;
        }
        let (range, slot) = time_token(a, b, p).ok_or_else(|| {
            format!("byte {p} of a body moves with the clock but is no timestamp")
        })?;
        if slots
            .last()
            .is_some_and(|(r, _): &(Range<usize>, Slot)| r.end > range.start)
        {
            return Err(format!("timestamps overlap at byte {p}"));
        }
        p = range.end;
        slots.push((range, slot));
    }
    Ok(slots)
}

fn time_token(a: &[u8], b: &[u8], p: usize) -> Option<(Range<usize>, Slot)> {
    if let Some(start) = (p.saturating_sub(ISO_LEN - 1)..=p).find(|&s| is_iso(a, s) && is_iso(b, s))
    {
        let range = start..start + ISO_LEN;
        let (x, y) = (iso_secs(&a[range.clone()])?, iso_secs(&b[range.clone()])?);
        return (y.checked_sub(x)? == SHIFT_S).then_some((range, Slot::Iso(x)));
    }
    let digit = |s: &[u8], i: usize| s.get(i).is_some_and(u8::is_ascii_digit);
    if !digit(a, p) || !digit(b, p) {
        return None;
    }
    let mut start = p;
    while start > 0 && digit(a, start - 1) {
        start -= 1;
    }
    let mut end = p;
    while digit(a, end) {
        end += 1;
    }
    let same_extent =
        (start == 0 || !digit(b, start - 1)) && !digit(b, end) && (start..end).all(|i| digit(b, i));
    if !same_extent {
        return None;
    }
    let x: u64 = std::str::from_utf8(&a[start..end]).ok()?.parse().ok()?;
    let y: u64 = std::str::from_utf8(&b[start..end]).ok()?.parse().ok()?;
    match y.checked_sub(x)? {
        SHIFT_MS => Some((start..end, Slot::Millis(x))),
        SHIFT_S => Some((start..end, Slot::Seconds(x))),
        _ => None,
    }
}

const ISO_LEN: usize = "2024-07-15T14:30:00Z".len();

fn is_iso(s: &[u8], at: usize) -> bool {
    let Some(token) = s.get(at..at + ISO_LEN) else {
        return false;
    };
    token
        .iter()
        .zip(b"0000-00-00T00:00:00Z")
        .all(|(c, shape)| match shape {
            b'0' => c.is_ascii_digit(),
            other => c == other,
        })
}

fn iso_secs(token: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(token).ok()?;
    let time = humantime::parse_rfc3339(text).ok()?;
    Some(time.duration_since(UNIX_EPOCH).ok()?.as_secs())
}

fn overlaps(a: &Range<usize>, b: &Range<usize>) -> bool {
    a.start < b.end && b.start < a.end
}

impl Template {
    /// Writes the body with times moved `shift_s` seconds later and the given ids.
    fn fill(&self, out: &mut Vec<u8>, shift_s: u64, ids: &[&[u8]]) {
        use std::io::Write;
        let mut at = 0;
        let mut digits = itoa::Buffer::new();
        for (range, slot) in &self.slots {
            out.extend_from_slice(&self.text[at..range.start]);
            match *slot {
                Slot::Millis(ms) => {
                    out.extend_from_slice(digits.format(ms + shift_s * 1000).as_bytes())
                }
                Slot::Seconds(s) => out.extend_from_slice(digits.format(s + shift_s).as_bytes()),
                Slot::Iso(s) => {
                    let time = UNIX_EPOCH + Duration::from_secs(s + shift_s);
                    // Writing to a Vec cannot fail.
                    let _ = write!(out, "{}", humantime::format_rfc3339_seconds(time));
                }
                Slot::Id(i) => out.extend_from_slice(ids[i]),
            }
            at = range.end;
        }
        out.extend_from_slice(&self.text[at..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::load(None).unwrap()
    }

    #[test]
    fn every_built_in_event_and_lifecycle_compiles() {
        let catalog = Arc::new(catalog());
        let mut rng = StdRng::seed_from_u64(7);
        // A platform whose bodies are not JSON (a form) is rendered per call, never compiled.
        let json = catalog
            .platforms
            .iter()
            .filter(|p| p.format == crate::catalog::BodyFormat::Json);
        for platform in json {
            let scripts = platform.events.iter().cloned().map(Script::Event).chain(
                platform
                    .lifecycles
                    .iter()
                    .cloned()
                    .map(|l| Script::Lifecycle(l, EventFilter::All)),
            );
            // One prototype each: Bodies::new compiles 64, which is slow in a debug build.
            let now = crate::signing::now_ms();
            for script in scripts {
                let compiled = Prototype::compile(&catalog, platform, &script, rng.r#gen(), now);
                if let Err(why) = compiled.unwrap() {
                    panic!("{}: {why}", platform.id);
                }
            }
        }
    }

    #[test]
    fn fresh_bodies_have_their_own_ids_and_todays_times() {
        let catalog = Arc::new(catalog());
        let platform = catalog.platform("uponai").unwrap();
        let event = platform.event("call_ended").unwrap().clone();
        let mut rng = StdRng::seed_from_u64(1);
        let script = Script::Event(event);
        let (bodies, _) = Bodies::new(catalog.clone(), platform, script, &mut rng).unwrap();
        let later = crate::signing::now_ms() + 3_600_000;
        let one: Value = serde_json::from_slice(&bodies.call(&mut rng, later)[0]).unwrap();
        let two: Value = serde_json::from_slice(&bodies.call(&mut rng, later)[0]).unwrap();
        assert_ne!(platform.call_id_of(&one), platform.call_id_of(&two));
        let end = one["call"]["end_timestamp"].as_u64().unwrap();
        assert!(
            end <= later && later - end < 10 * 60_000,
            "{end} vs {later}"
        );
        let id = platform.call_id_of(&one).unwrap();
        assert!(one["call"]["recording_url"].as_str().unwrap().contains(&id));
    }
    #[test]
    fn numeric_call_ids_are_fresh_too() {
        let catalog = Arc::new(catalog());
        let platform = catalog.platform("salpre").unwrap();
        let event = platform.event("call_ended").unwrap().clone();
        let mut rng = StdRng::seed_from_u64(3);
        let script = Script::Event(event);
        let (bodies, why) = Bodies::new(catalog.clone(), platform, script, &mut rng).unwrap();
        assert!(why.is_none(), "{why:?}");
        let now = crate::signing::now_ms();
        let ids: std::collections::HashSet<String> = (0..100)
            .map(|_| {
                let body: Value = serde_json::from_slice(&bodies.call(&mut rng, now)[0]).unwrap();
                platform.call_id_of(&body).unwrap()
            })
            .collect();
        // 100 calls from 64 compiled ones: only fresh ids can all differ.
        assert_eq!(ids.len(), 100);
    }
}
