//! `{{variable}}` placeholders in JSON templates (see payloads/README.md).

use std::borrow::Cow;

use serde_json::{Map, Value};

/// Variables, looked up from the last layer to the first so later layers override.
pub type Layers<'a> = [&'a Map<String, Value>];

fn lookup<'a>(layers: &'a Layers<'a>, name: &str) -> Option<&'a Value> {
    layers.iter().rev().find_map(|layer| layer.get(name))
}

/// Renders a template. The error names the unknown variable.
pub fn render(template: &Value, layers: &Layers) -> Result<Value, String> {
    Ok(match template {
        Value::String(s) => match render_str(s, layers)? {
            Rendered::Variable(value) => value.clone(),
            Rendered::Text(text) => Value::String(text.into_owned()),
        },
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| render(i, layers))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (key, value) in map {
                out.insert(key.clone(), render(value, layers)?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

/// Renders a template as compact JSON into `out`: the bytes `serde_json::to_vec` gives for
/// [`render`]'s value, without building that value (its maps hash every key) and walking it
/// again to serialize it. The error names the unknown variable; `out` then holds a part.
pub fn render_json(template: &Value, layers: &Layers, out: &mut Vec<u8>) -> Result<(), String> {
    match template {
        Value::String(s) => match render_str(s, layers)? {
            Rendered::Variable(value) => write_json(out, value),
            Rendered::Text(text) => write_json(out, &*text),
        },
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                render_json(item, layers, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (i, (key, value)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(out, key);
                out.push(b':');
                render_json(value, layers, out)?;
            }
            out.push(b'}');
        }
        other => write_json(out, other),
    }
    Ok(())
}

/// What a template holds at a JSON pointer.
pub enum At<'a> {
    /// This node: rendered, it is what the rendered value holds there.
    Node(&'a Value),
    /// Nothing: the rendered value has nothing there either.
    Absent,
    /// The path runs into a placeholder, whose value may or may not reach it.
    Placeholder,
}

/// The node of `template` at `pointer` (RFC 6901, as `Value::pointer` reads it).
pub fn at<'a>(template: &'a Value, pointer: &str) -> At<'a> {
    let ends = pointer.match_indices('/').skip(1).map(|(i, _)| i);
    for end in ends.chain([pointer.len()]) {
        match template.pointer(&pointer[..end]) {
            None => return At::Absent,
            Some(Value::String(s)) if end < pointer.len() && s.contains("{{") => {
                return At::Placeholder;
            }
            Some(node) if end == pointer.len() => return At::Node(node),
            Some(_) => {}
        }
    }
    At::Absent
}

fn write_json(out: &mut Vec<u8>, value: &(impl serde::Serialize + ?Sized)) {
    serde_json::to_writer(out, value).expect("JSON values and strings serialize");
}

/// What a template's string renders to.
enum Rendered<'a> {
    /// A string that is exactly one placeholder takes the variable's own JSON type.
    Variable(&'a Value),
    /// Any other is text, its placeholders replaced.
    Text(Cow<'a, str>),
}

fn render_str<'a>(s: &'a str, layers: &'a Layers) -> Result<Rendered<'a>, String> {
    if let Some(name) = whole_placeholder(s) {
        return lookup(layers, name)
            .map(Rendered::Variable)
            .ok_or_else(|| name.to_string());
    }
    if !s.contains("{{") {
        return Ok(Rendered::Text(Cow::Borrowed(s)));
    }
    interpolate(s, layers).map(|text| Rendered::Text(Cow::Owned(text)))
}

fn whole_placeholder(s: &str) -> Option<&str> {
    let name = s.strip_prefix("{{")?.strip_suffix("}}")?;
    (!name.contains("{{") && !name.contains("}}")).then(|| name.trim())
}

/// Replaces every placeholder in `s` by its variable's text.
pub fn interpolate(s: &str, layers: &Layers) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find("{{") {
        let Some(close) = rest[open..].find("}}") else {
            break;
        };
        out.push_str(&rest[..open]);
        let name = rest[open + 2..open + close].trim();
        let value = lookup(layers, name).ok_or_else(|| name.to_string())?;
        out.push_str(&text_of(value));
        rest = &rest[open + close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A value as text inside a string: strings bare, everything else as JSON.
pub fn text_of(value: &Value) -> Cow<'_, str> {
    match value {
        Value::String(s) => Cow::Borrowed(s),
        Value::Null => Cow::Borrowed(""),
        other => Cow::Owned(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars() -> Map<String, Value> {
        json!({"n": 5, "id": "abc", "list": [1, 2], "ok": true})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn whole_placeholders_keep_their_type() {
        let v = vars();
        let out = render(
            &json!({"a": "{{n}}", "b": "{{list}}", "c": "{{ ok }}"}),
            &[&v],
        )
        .unwrap();
        assert_eq!(out, json!({"a": 5, "b": [1, 2], "c": true}));
    }

    #[test]
    fn embedded_placeholders_become_text() {
        let v = vars();
        let out = render(&json!(["x/{{id}}/{{n}}.wav", "plain", 3]), &[&v]).unwrap();
        assert_eq!(out, json!(["x/abc/5.wav", "plain", 3]));
    }

    #[test]
    fn rendered_json_is_the_rendered_value_serialized() {
        let v = vars();
        let template = json!({
            "a": "{{n}}", "b": ["{{list}}", "x/{{id}}/{{n}}.wav", {"c": "{{ok}}"}], "q": "\"é\n",
            "z": [], "o": {}, "f": 1.5, "nul": null
        });
        let mut out = Vec::new();
        render_json(&template, &[&v], &mut out).unwrap();
        let value = render(&template, &[&v]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            serde_json::to_string(&value).unwrap()
        );
        assert_eq!(
            render_json(&json!(["{{nope}}"]), &[&v], &mut Vec::new()).unwrap_err(),
            "nope"
        );
    }

    #[test]
    fn a_pointer_finds_a_node_nothing_or_a_placeholder_on_its_way() {
        let template = json!({"call": {"id": "{{id}}", "list": [1, "{{n}}"]}, "meta": "{{m}}"});
        let node = |pointer| match at(&template, pointer) {
            At::Node(node) => Some(node.clone()),
            At::Absent => None,
            At::Placeholder => Some(json!("placeholder")),
        };
        assert_eq!(node("/call/id"), Some(json!("{{id}}")));
        assert_eq!(node("/call/list/1"), Some(json!("{{n}}")));
        assert_eq!(node(""), Some(template.clone()));
        assert_eq!(node("/call/nope"), None);
        assert_eq!(node("/call/id/deeper"), Some(json!("placeholder")));
        assert_eq!(node("/meta/call_id"), Some(json!("placeholder")));
    }

    #[test]
    fn later_layers_win_and_unknown_names_fail() {
        let base = vars();
        let over = json!({"n": 6}).as_object().unwrap().clone();
        assert_eq!(render(&json!("{{n}}"), &[&base, &over]).unwrap(), json!(6));
        assert_eq!(
            render(&json!({"a": "{{nope}}"}), &[&base]).unwrap_err(),
            "nope"
        );
    }
}
