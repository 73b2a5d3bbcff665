//! answers/*: requests whose answer the platform reads. The inbound call webhook (at its own
//! URL, `inbound_url`) must answer a usable routing in time; each custom function of
//! hookcli.toml's `[[functions]]` is called with args generated from its parameters' JSON
//! Schema and must answer 2xx, in time, under the cap, with its response variables, and must
//! reject a wrong signature. Platform-neutral: which events have answers, where a function's
//! name and args go and what an answer may be are the catalog's data.

use bytes::Bytes;
use rand::rngs::StdRng;
use serde_json::{Map, Value, json};

use super::context::{Context, Finding, answer};
use super::{Runner, Severity};
use crate::answer::{json_path_pointer, judge, send_line};
use crate::call::{RenderError, render_event};
use crate::catalog::{EventSpec, Platform};
use crate::check::Case;
use crate::check::suite::FunctionEntry;
use crate::delivery::Request;
use crate::secret::Secret;

pub(super) fn cases(platform: &Platform) -> Vec<Case> {
    let mut cases = Vec::new();
    if let Some(event) = inbound_event(platform) {
        cases.push(Case {
            name: format!("answers/{}", event.name),
            severity: Severity::Error,
            about: format!(
                "{} at inbound_url (hookcli.toml or --inbound-url) is answered in time with a usable answer",
                event.name
            ),
            runner: Runner::for_subject(&event.name, |c, s, r| Box::pin(inbound(c, s, r))),
        });
    }
    if let Some(event) = function_event(platform) {
        cases.push(Case {
            name: "answers/functions".into(),
            severity: Severity::Error,
            about: "each [[functions]] entry of hookcli.toml, called with args generated from its parameters (required only, every field, boundary values, unicode), answers 2xx in time, under the cap, with its response variables, and rejects a wrong signature".into(),
            runner: Runner::for_subject(&event.name, |c, s, r| Box::pin(functions(c, s, r))),
        });
    }
    cases
}

/// The first event with an answer that is not a function call: an inbound call.
fn inbound_event(platform: &Platform) -> Option<&EventSpec> {
    platform
        .events
        .iter()
        .find(|e| e.answer.is_some() && e.function.is_none())
}

fn function_event(platform: &Platform) -> Option<&EventSpec> {
    platform
        .events
        .iter()
        .find(|e| e.answer.is_some() && e.function.is_some())
}

async fn inbound(context: &Context, event: &str, rng: &mut StdRng) -> Result<Finding, RenderError> {
    let Some(url) = &context.config.inbound_url else {
        return Ok(Finding::skipped(
            "no inbound_url (hookcli.toml) or --inbound-url: the inbound call webhook is set per \
             phone number, usually at its own URL",
        ));
    };
    let platform = context.platform();
    let spec = platform.event(event).expect("the case's event exists");
    let body = serde_json::to_vec(&render_event(&context.config.catalog, platform, spec, rng)?)
        .expect("a JSON value serializes");
    let mut request = context.signed(body);
    request.url = url.clone();
    let policy = context.config.policies.for_event(event).clone();
    let mut finding = Finding::default();
    let delivery = context
        .delivery(&request, &policy, &mut finding, &format!("{event}: "))
        .await;
    if delivery.delivered()
        && let Some(answer_spec) = &spec.answer
    {
        let judged = judge(answer_spec, &delivery.last().response_body);
        for problem in &judged.problems {
            finding.fail(Severity::Error, format!("{event}'s answer: {problem}"));
        }
    }
    Ok(finding)
}

async fn functions(
    context: &Context,
    event: &str,
    _rng: &mut StdRng,
) -> Result<Finding, RenderError> {
    let entries = &context.config.functions;
    if entries.is_empty() {
        return Ok(Finding::skipped(
            "no [[functions]] in hookcli.toml: list each custom function (name, url, method, \
             parameters) to have it called",
        ));
    }
    let platform = context.platform();
    let spec = platform.event(event).expect("the case's event exists");
    let mut finding = Finding::default();
    for entry in entries {
        let Ok(url) = reqwest::Url::parse(&entry.url) else {
            finding.fail(
                Severity::Error,
                format!(
                    "function `{}`: url `{}` is not a URL",
                    entry.name, entry.url
                ),
            );
            continue;
        };
        let parameters = entry
            .parameters
            .clone()
            .unwrap_or_else(|| json!({"type": "object"}));
        for (label, args) in generated_args(&parameters) {
            call_once(context, spec, entry, &url, label, &args, &mut finding).await?;
        }
        if context.config.key.is_some() && platform.signing.is_some() {
            wrong_signature(context, spec, entry, &url, &parameters, &mut finding).await?;
        }
    }
    Ok(finding)
}

/// One call of `entry` with `args`, judged.
async fn call_once(
    context: &Context,
    spec: &EventSpec,
    entry: &FunctionEntry,
    url: &reqwest::Url,
    label: &str,
    args: &Value,
    finding: &mut Finding,
) -> Result<(), RenderError> {
    let mut request = function_request(context, spec, entry, url, args)?;
    request.signer = context.signer();
    let mut policy = context.config.policies.for_event(&spec.name).clone();
    if let Some(timeout) = entry.timeout {
        policy.timeout = timeout;
    }
    let started = std::time::Instant::now();
    let delivery = context.send(&request, &policy).await;
    finding.record_all(&delivery.attempts, started);
    let reproduce = || {
        send_line(
            entry.url.as_str(),
            &entry.name,
            args,
            &entry.method,
            entry.args_only,
        )
    };
    let name = &entry.name;
    let what = format!("`{name}` with {label} args {args}");
    let last = delivery.last();
    if !delivery.delivered() {
        finding.fail(
            Severity::Error,
            format!("{what}: {}; reproduce: {}", answer(last), reproduce()),
        );
        return Ok(());
    }
    let Some(answer_spec) = &spec.answer else {
        return Ok(());
    };
    let judged = judge(answer_spec, &last.response_body);
    let mut problems: Vec<String> = judged.problems.iter().map(ToString::to_string).collect();
    for (variable, path) in &entry.response_variables {
        let found = judged
            .json
            .as_ref()
            .and_then(|j| j.pointer(&json_path_pointer(path)));
        let path = path.as_str();
        if found.is_none() {
            problems.push(format!(
                "response variable `{variable}` ({path}) is not in the answer"
            ));
        }
    }
    if !problems.is_empty() {
        finding.fail(
            Severity::Error,
            format!(
                "{what}: {}; reproduce: {}",
                problems.join("; "),
                reproduce()
            ),
        );
    }
    Ok(())
}

/// The function's request, unsigned: the rendered call with name and args, or the args alone,
/// or (GET, DELETE) the args in the query.
fn function_request(
    context: &Context,
    spec: &EventSpec,
    entry: &FunctionEntry,
    url: &reqwest::Url,
    args: &Value,
) -> Result<Request, RenderError> {
    let function = spec.function.as_ref().expect("a function event");
    let mut value = render_event(
        &context.config.catalog,
        context.platform(),
        spec,
        &mut crate::call::rng_from(context.config.seed),
    )?;
    if let Some(slot) = value.pointer_mut(&function.name_at) {
        *slot = Value::String(entry.name.clone());
    }
    if let Some(slot) = value.pointer_mut(&function.args_at) {
        *slot = args.clone();
    }
    let method: reqwest::Method = entry
        .method
        .to_ascii_uppercase()
        .parse()
        .unwrap_or(reqwest::Method::POST);
    let mut url = url.clone();
    let body = if method == reqwest::Method::GET || method == reqwest::Method::DELETE {
        if let Value::Object(map) = args {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in map {
                match v {
                    Value::String(s) => pairs.append_pair(k, s),
                    other => pairs.append_pair(k, &other.to_string()),
                };
            }
        }
        Bytes::new()
    } else if entry.args_only {
        Bytes::from(args.to_string())
    } else {
        Bytes::from(value.to_string())
    };
    let mut request = context.signed(body);
    request.method = method;
    request.url = url;
    request.signer = None;
    Ok(request)
}

/// A call signed with another key must be rejected: anyone who finds the URL could call it.
async fn wrong_signature(
    context: &Context,
    spec: &EventSpec,
    entry: &FunctionEntry,
    url: &reqwest::Url,
    parameters: &Value,
    finding: &mut Finding,
) -> Result<(), RenderError> {
    let args = generated_args(parameters)
        .into_iter()
        .next()
        .map(|(_, a)| a)
        .unwrap_or_else(|| json!({}));
    let mut request = function_request(context, spec, entry, url, &args)?;
    // Signed as the platform signs, every header its scheme writes, with a key that is not
    // the receiver's.
    let wrong = Secret::new("hookcli_wrong_key".to_string());
    request.signer = crate::delivery::Signer::for_platform(context.platform(), Some(&wrong));
    let attempt = context.once(&request, finding).await;
    context.judge_rejected(
        &attempt,
        finding,
        Severity::Error,
        &format!("`{}` called with a wrong signature", entry.name),
        "anyone who finds the URL can call the function",
    );
    Ok(())
}

/// How a generated value is picked.
#[derive(Clone, Copy, PartialEq)]
enum Pick {
    Typical,
    Low,
    High,
    Unicode,
}

/// Args from the parameters' schema: required only, every field, the low and high
/// boundaries, unicode text; the same args twice are sent once.
pub(super) fn generated_args(schema: &Value) -> Vec<(&'static str, Value)> {
    let sets = [
        ("required-only", object(schema, Pick::Typical, true)),
        ("every-field", object(schema, Pick::Typical, false)),
        ("low-boundary", object(schema, Pick::Low, false)),
        ("high-boundary", object(schema, Pick::High, false)),
        ("unicode", object(schema, Pick::Unicode, false)),
    ];
    let mut out: Vec<(&'static str, Value)> = Vec::new();
    for (label, args) in sets {
        if !out.iter().any(|(_, a)| *a == args) {
            out.push((label, args));
        }
    }
    out
}

fn object(schema: &Value, pick: Pick, required_only: bool) -> Value {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut map = Map::new();
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            if required_only && !required.contains(&name.as_str()) {
                continue;
            }
            map.insert(name.clone(), value(prop, pick));
        }
    }
    Value::Object(map)
}

fn value(schema: &Value, pick: Pick) -> Value {
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.is_empty()
    {
        return match pick {
            Pick::High => options[options.len() - 1].clone(),
            _ => options[0].clone(),
        };
    }
    let number = |key: &str| schema.get(key).and_then(Value::as_f64);
    let kind = schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("string");
    match kind {
        "integer" | "number" => {
            let n = match pick {
                Pick::Low => number("minimum").unwrap_or(0.0),
                Pick::High => number("maximum").unwrap_or(2_147_483_647.0),
                _ => number("minimum").map_or(1.0, |m| m.max(1.0)),
            };
            if kind == "integer" {
                json!(n as i64)
            } else {
                json!(n)
            }
        }
        "boolean" => json!(pick != Pick::Low),
        "array" => {
            let item = schema.get("items").cloned().unwrap_or(json!({}));
            match pick {
                Pick::Low => json!([]),
                Pick::High => json!([value(&item, pick), value(&item, pick), value(&item, pick)]),
                _ => json!([value(&item, pick)]),
            }
        }
        "object" => object(schema, pick, false),
        _ => {
            let min = number("minLength").unwrap_or(0.0) as usize;
            let max = number("maxLength").map(|m| m as usize);
            json!(match pick {
                Pick::Low => "a".repeat(min),
                Pick::High => "x".repeat(max.unwrap_or(500)),
                Pick::Unicode => "Zoë Ångström 東京 🎉 مرحبا".to_string(),
                Pick::Typical => "sample"
                    .chars()
                    .chain(std::iter::repeat('x'))
                    .take(min.max(6))
                    .collect::<String>(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_variable_paths_become_pointers() {
        assert_eq!(json_path_pointer("$.order.eta"), "/order/eta");
        assert_eq!(json_path_pointer("items[0].name"), "/items/0/name");
        assert_eq!(json_path_pointer("$.a"), "/a");
    }

    #[test]
    fn args_cover_required_only_every_field_and_boundaries() {
        let schema = json!({"type": "object", "required": ["city"], "properties": {
            "city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 14}}});
        let sets = generated_args(&schema);
        let labels: Vec<&str> = sets.iter().map(|(l, _)| *l).collect();
        assert_eq!(
            labels,
            [
                "required-only",
                "every-field",
                "low-boundary",
                "high-boundary",
                "unicode"
            ]
        );
        assert_eq!(sets[0].1, json!({"city": "sample"}));
        assert_eq!(sets[2].1["days"], 1);
        assert_eq!(sets[3].1["days"], 14);
    }
}
