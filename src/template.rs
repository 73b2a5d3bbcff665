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
        Value::String(s) => render_string(s, layers)?,
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

/// A string that is exactly one placeholder takes the variable's own JSON type.
fn render_string(s: &str, layers: &Layers) -> Result<Value, String> {
    if let Some(name) = whole_placeholder(s) {
        return lookup(layers, name)
            .cloned()
            .ok_or_else(|| name.to_string());
    }
    if !s.contains("{{") {
        return Ok(Value::String(s.to_string()));
    }
    interpolate(s, layers).map(Value::String)
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
