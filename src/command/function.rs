//! A custom function call from the flags: `--function NAME --args JSON`, `--args-only`,
//! `--method`, `--query`. Shared by `send` and `check`'s reproducing lines.

use bytes::Bytes;
use serde_json::Value;

use crate::catalog::{EventSpec, FunctionSpec, Platform};
use crate::cli::FunctionArgs;
use crate::error::UserError;

/// Whether any function flag was given (the method only when not the default POST).
pub fn given(args: &FunctionArgs) -> bool {
    args.function.is_some()
        || args.args.is_some()
        || args.args_only
        || !args.query.is_empty()
        || !args.method.eq_ignore_ascii_case("POST")
}

/// The error for function flags on an event that is no function call.
pub fn not_a_function(event: &str, platform: &Platform) -> anyhow::Error {
    let functions: Vec<&str> = platform
        .events
        .iter()
        .filter(|e| e.function.is_some())
        .map(|e| e.name.as_str())
        .collect();
    let hint = match functions.first() {
        Some(name) => format!(
            "send `{name}` for a function call, e.g. hookcli send {name} --function NAME --args '{{}}' -p {}",
            platform.id
        ),
        None => format!(
            "{} has no function calls; leave out --function, --args, --args-only, --method and --query",
            platform.id
        ),
    };
    UserError::new(format!(
        "--function, --args, --args-only, --method and --query are for function calls; `{event}` is not one"
    ))
    .hint(hint)
    .into()
}

/// The rendered request with the flags' name and args put in.
pub fn fill(args: &FunctionArgs, event: &EventSpec, value: &mut Value) -> anyhow::Result<()> {
    let Some(function) = &event.function else {
        return Ok(());
    };
    if let Some(name) = &args.function
        && let Some(slot) = value.pointer_mut(&function.name_at)
    {
        *slot = Value::String(name.clone());
    }
    if let Some(text) = &args.args {
        let parsed = parse_args(text)?;
        if let Some(slot) = value.pointer_mut(&function.args_at) {
            *slot = parsed;
        }
    }
    Ok(())
}

fn parse_args(text: &str) -> anyhow::Result<Value> {
    let hint = "give the arguments as one JSON object, e.g. --args '{\"order_id\": \"A-1\"}'";
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(other) => Err(UserError::new(format!(
            "--args `{text}` is {}, not an object of arguments",
            crate::answer::kind(&other)
        ))
        .hint(hint)
        .into()),
        Err(e) => Err(UserError::new(format!("--args `{text}` is not JSON ({e})"))
            .hint(hint)
            .into()),
    }
}

/// A function call's method, the query parameters to add to its URL, and its body.
pub struct FunctionRequest {
    pub method: reqwest::Method,
    pub query: Vec<(String, String)>,
    pub body: Bytes,
}

/// The method, query and body of the function's request. GET and DELETE carry no body
/// (the documents give body parameters only to POST, PUT and PATCH), so the args go in the
/// query instead (assumed: the documents do not say where they go).
pub fn request(
    args: &FunctionArgs,
    function: &FunctionSpec,
    value: &Value,
    body: Bytes,
) -> anyhow::Result<FunctionRequest> {
    let method: reqwest::Method = args
        .method
        .to_ascii_uppercase()
        .parse()
        .map_err(|_| UserError::new(format!("--method `{}` is not a method", args.method)))?;
    let mut query = Vec::new();
    for pair in &args.query {
        let (key, val) = pair.split_once('=').ok_or_else(|| {
            UserError::new(format!("--query `{pair}` has no `=`"))
                .hint("give each query parameter as KEY=VALUE, e.g. --query locale=en-US")
        })?;
        query.push((key.to_string(), val.to_string()));
    }
    let fn_args = value
        .pointer(&function.args_at)
        .cloned()
        .unwrap_or_default();
    let body_less = method == reqwest::Method::GET || method == reqwest::Method::DELETE;
    let body = if body_less {
        if let Value::Object(map) = &fn_args {
            for (k, v) in map {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                query.push((k.clone(), text));
            }
        }
        Bytes::new()
    } else if args.args_only {
        Bytes::from(serde_json::to_vec(&fn_args)?)
    } else {
        body
    };
    Ok(FunctionRequest {
        method,
        query,
        body,
    })
}
