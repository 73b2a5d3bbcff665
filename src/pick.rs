//! The values at a few JSON pointers, read in one pass over the bytes without building a tree.
//!
//! listen names every request's event and call id: parsing a 2 KB body into a
//! `serde_json::Value` (a map and a String per key) cost as much as the HTTP exchange. This
//! pass allocates only the strings it keeps, skips everything else as `IgnoredAny`, and
//! validates the whole body on the way, so one pass both judges "is it JSON" and names it.

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::catalog::Platform;

/// At most this many pointers: one bit each in a mask.
const MOST: usize = 64;

/// What a pointer found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Picked {
    Str(String),
    /// A number as `serde_json::Number` shows it.
    Num(String),
    /// An object, array, bool or null: there, but not a name.
    Other,
}

/// JSON pointers compiled to their segments (`~1` and `~0` unescaped).
#[derive(Clone, Debug, Default)]
pub struct Pointers {
    paths: Vec<Vec<Segment>>,
}

#[derive(Clone, Debug)]
struct Segment {
    key: String,
    /// The array index it names, when it is one.
    index: Option<usize>,
}

impl Pointers {
    /// Pointers past the 64th are ignored (a platform names a handful).
    pub fn new<'a>(pointers: impl IntoIterator<Item = &'a str>) -> Self {
        let paths = pointers
            .into_iter()
            .take(MOST)
            .map(|p| {
                p.split('/')
                    .skip(1)
                    .map(|s| {
                        let key = s.replace("~1", "/").replace("~0", "~");
                        let index = key
                            .parse()
                            .ok()
                            .filter(|_| key == "0" || !key.starts_with('0'));
                        Segment { key, index }
                    })
                    .collect()
            })
            .collect();
        Pointers { paths }
    }

    /// One value per pointer, in order; `Err` when the bytes are not one JSON value.
    pub fn pick(&self, json: &str) -> Result<Vec<Option<Picked>>, serde_json::Error> {
        let mut out = vec![None; self.paths.len()];
        let all = if self.paths.len() == MOST {
            u64::MAX
        } else {
            (1u64 << self.paths.len()) - 1
        };
        let mut de = serde_json::Deserializer::from_str(json);
        Node {
            paths: &self.paths,
            active: all,
            depth: 0,
            out: &mut out,
        }
        .deserialize(&mut de)?;
        de.end()?;
        Ok(out)
    }
}

/// One value in the document, with the pointers (bits of `active`) that lead through it.
struct Node<'p, 'o> {
    paths: &'p [Vec<Segment>],
    active: u64,
    depth: usize,
    out: &'o mut Vec<Option<Picked>>,
}

impl Node<'_, '_> {
    /// The pointers (by index) that lead through this node: the set bits of `active`, so a
    /// node under one pointer looks at one, not at all of them.
    fn bits(&self) -> impl Iterator<Item = usize> + use<> {
        let mut rest = self.active;
        std::iter::from_fn(move || {
            let i = rest.trailing_zeros() as usize;
            rest &= rest.wrapping_sub(1);
            (i < MOST).then_some(i)
        })
    }

    /// Records `found` for every pointer that ends here.
    fn found(&mut self, found: impl Fn() -> Picked) {
        for i in self.bits() {
            if self.paths[i].len() == self.depth {
                self.out[i] = Some(found());
            }
        }
    }

    /// The pointers that go on below this node, under a key or index.
    fn below(&self, matches: impl Fn(&Segment) -> bool) -> u64 {
        self.bits()
            .filter(|i| self.paths[*i].get(self.depth).is_some_and(&matches))
            .fold(0, |mask, i| mask | (1 << i))
    }

    fn child(&mut self, active: u64) -> Node<'_, '_> {
        Node {
            paths: self.paths,
            active,
            depth: self.depth + 1,
            out: self.out,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.active == 0 {
            return IgnoredAny::deserialize(d).map(|_| ());
        }
        d.deserialize_any(self)
    }
}

fn number(n: serde_json::Number) -> Picked {
    Picked::Num(n.to_string())
}

impl<'de> Visitor<'de> for Node<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E: de::Error>(mut self, v: &str) -> Result<(), E> {
        self.found(|| Picked::Str(v.to_string()));
        Ok(())
    }

    fn visit_u64<E: de::Error>(mut self, v: u64) -> Result<(), E> {
        self.found(|| number(v.into()));
        Ok(())
    }

    fn visit_i64<E: de::Error>(mut self, v: i64) -> Result<(), E> {
        self.found(|| number(v.into()));
        Ok(())
    }

    fn visit_f64<E: de::Error>(mut self, v: f64) -> Result<(), E> {
        self.found(|| serde_json::Number::from_f64(v).map_or(Picked::Other, number));
        Ok(())
    }

    fn visit_bool<E: de::Error>(mut self, _: bool) -> Result<(), E> {
        self.found(|| Picked::Other);
        Ok(())
    }

    fn visit_unit<E: de::Error>(mut self) -> Result<(), E> {
        self.found(|| Picked::Other);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.found(|| Picked::Other);
        while let Some(active) = map.next_key_seed(Key { node: &self })? {
            map.next_value_seed(self.child(active))?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.found(|| Picked::Other);
        let mut index = 0;
        loop {
            let active = self.below(|s| s.index == Some(index));
            if seq.next_element_seed(self.child(active))?.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }
}

/// An object's key, read as the mask of pointers that go on under it (nothing allocated).
struct Key<'n, 'p, 'o> {
    node: &'n Node<'p, 'o>,
}

impl<'de> DeserializeSeed<'de> for Key<'_, '_, '_> {
    type Value = u64;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_, '_, '_> {
    type Value = u64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        Ok(self.node.below(|s| s.key == v))
    }
}

/// A request's event and call id, named as `Platform::event_of` and `call_id_of` name them
/// from a tree, for a JSON platform.
#[derive(Clone, Debug, Default)]
pub struct Namer {
    pointers: Pointers,
    /// Pointer 0 is the event field, when the platform has one.
    has_event_field: bool,
    /// The only event's name, for a platform that has one event and no event field.
    only_event: Option<String>,
    /// Which pointers are call ids: `calls.start..calls.end`.
    calls: std::ops::Range<usize>,
    /// Function events, by the pointer of their args (after the call ids).
    functions: Vec<String>,
    /// Events whose line sums up values from the body (a function's args, an inbound call's
    /// numbers): those few still need a tree.
    summed: Vec<String>,
}

/// What [`Namer::name`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Named {
    pub event: Option<String>,
    pub call_id: Option<String>,
}

impl Namer {
    pub fn of(platform: &Platform) -> Namer {
        let mut pointers: Vec<&str> = Vec::new();
        pointers.extend(platform.event_field.as_deref());
        let start = pointers.len();
        pointers.extend(platform.call_id_fields.iter().map(String::as_str));
        let calls = start..pointers.len();
        let mut functions = Vec::new();
        for event in &platform.events {
            if let Some(function) = &event.function {
                pointers.push(&function.args_at);
                functions.push(event.name.clone());
            }
        }
        Namer {
            pointers: Pointers::new(pointers),
            has_event_field: platform.event_field.is_some(),
            only_event: (platform.event_field.is_none() && platform.events.len() == 1)
                .then(|| platform.events[0].name.clone()),
            calls,
            functions,
            summed: platform
                .events
                .iter()
                .filter(|e| e.function.is_some() || e.line.is_some())
                .map(|e| e.name.clone())
                .collect(),
        }
    }

    /// Whether listen's line for this event sums up values of its body.
    pub fn sums_up(&self, event: &str) -> bool {
        self.summed.iter().any(|e| e == event)
    }

    /// The event and call id of a JSON body; `None` when it is not JSON (nor UTF-8).
    pub fn name(&self, body: &[u8]) -> Option<Named> {
        let text = std::str::from_utf8(body).ok()?;
        let mut picked = self.pointers.pick(text).ok()?;
        let mut take = |i: usize| picked.get_mut(i).and_then(Option::take);
        let by_field = if self.has_event_field { take(0) } else { None };
        let field_there = by_field.is_some();
        let call_id = self.calls.clone().find_map(|i| match take(i)? {
            Picked::Str(s) | Picked::Num(s) => Some(s),
            Picked::Other => None,
        });
        let event = match by_field {
            Some(Picked::Str(s)) => Some(s),
            _ => self.only_event.clone(),
        }
        .or_else(|| {
            // A request without an event field: the function whose args pointer it has.
            if field_there {
                return None;
            }
            let first = self.calls.end;
            (0..self.functions.len())
                .find(|f| take(first + f).is_some())
                .map(|f| self.functions[f].clone())
        });
        Some(Named { event, call_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(pointers: &[&str], json: &str) -> Vec<Option<Picked>> {
        Pointers::new(pointers.iter().copied())
            .pick(json)
            .expect("valid JSON")
    }

    fn s(v: &str) -> Option<Picked> {
        Some(Picked::Str(v.into()))
    }

    #[test]
    fn picks_strings_numbers_and_presence_like_value_pointer() {
        let json = r#"{"event":"call_ended","call":{"call_id":"c1","n":12,"f":1.5,"o":{}},
                       "list":[{"id":"a"},{"id":"b"}],"a/b":{"~":"esc"},"t":true}"#;
        let value: serde_json::Value = serde_json::from_str(json).expect("json");
        let pointers = [
            "/event",
            "/call/call_id",
            "/call/n",
            "/call/f",
            "/call/o",
            "/list/1/id",
            "/list/01/id",
            "/a~1b/~0",
            "/t",
            "/missing",
            "/call/call_id/deeper",
        ];
        let got = pick(&pointers, json);
        for (pointer, got) in pointers.iter().zip(&got) {
            let want = match value.pointer(pointer) {
                None => None,
                Some(serde_json::Value::String(v)) => s(v),
                Some(serde_json::Value::Number(n)) => Some(Picked::Num(n.to_string())),
                Some(_) => Some(Picked::Other),
            };
            assert_eq!(got, &want, "{pointer}");
        }
    }

    #[test]
    fn the_last_of_a_repeated_key_wins_as_in_a_tree() {
        assert_eq!(pick(&["/e"], r#"{"e":"a","e":"b"}"#), vec![s("b")]);
    }

    #[test]
    fn the_first_64_pointers_are_picked_and_the_rest_ignored() {
        let pointers: Vec<String> = (0..70).map(|i| format!("/k{i}")).collect();
        let fields: Vec<String> = (0..70).map(|i| format!("\"k{i}\":\"v{i}\"")).collect();
        let json = format!("{{{}}}", fields.join(","));
        let picked = Pointers::new(pointers.iter().map(String::as_str))
            .pick(&json)
            .expect("valid JSON");
        let expected: Vec<Option<Picked>> = (0..MOST).map(|i| s(&format!("v{i}"))).collect();
        assert_eq!(picked, expected);
    }

    #[test]
    fn anything_that_is_not_one_json_value_is_refused() {
        let pointers = Pointers::new(["/e"]);
        for bad in ["", "{", r#"{"e":"a"} x"#, r#"{"e":}"#, "[1,]", "nul"] {
            assert!(pointers.pick(bad).is_err(), "{bad:?}");
        }
        assert!(pointers.pick(" [1, {\"x\": [null]}] \n").is_ok());
    }

    #[test]
    fn names_as_the_tree_does_for_every_platform_and_event() {
        let catalog = crate::catalog::Catalog::load(None).expect("the embedded catalog");
        for id in catalog.platform_ids() {
            let platform = catalog.platform(id).expect("listed");
            if platform.format != crate::catalog::BodyFormat::Json {
                continue;
            }
            let namer = Namer::of(platform);
            for event in &platform.events {
                let body = serde_json::to_vec(event.template.value()).expect("a template");
                let tree: serde_json::Value = serde_json::from_slice(&body).expect("json");
                let named = namer.name(&body).expect("JSON");
                assert_eq!(named.event, platform.event_of(&tree), "{}", event.name);
                assert_eq!(named.call_id, platform.call_id_of(&tree), "{}", event.name);
            }
        }
        let uponai = catalog.platform("uponai").expect("uponai");
        assert_eq!(Namer::of(uponai).name(b"{\"event\": 1"), None);
        assert_eq!(Namer::of(uponai).name(b"\"\xff\""), None, "not UTF-8");
    }
}
