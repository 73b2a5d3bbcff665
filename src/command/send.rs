//! `hookcli send EVENT --to URL`: one event, signed and delivered by the platform's rules.

use std::path::Path;

use anyhow::Result;
use bytes::Bytes;
use serde_json::json;
use tokio::sync::mpsc;

use super::{apply_sets, check_body, find_event, load_catalog, platform_of, read_input};
use crate::catalog::{Catalog, Platform};
use crate::cli::SendArgs;
use crate::config::{DeliveryConfig, Env, Flags, KeyOrigin, Target};
use crate::delivery::{self, Attempt, Outcome};
use crate::error::{UserError, exit};
use crate::output::delivery::{DeliveryReport, attempt_exchange_text, attempt_line, header_line};
use crate::output::{self, received};

/// Everything a send needs, checked before anything goes out.
struct Prepared {
    event: String,
    body: Bytes,
    call_id: Option<String>,
    config: DeliveryConfig,
}

pub fn run(args: SendArgs, overlay: Option<&Path>) -> Result<u8> {
    let catalog = load_catalog(overlay)?;
    let platform = platform_of(&catalog, &args.platform)?;
    let prepared = prepare(&args, &catalog, platform, &Env::process())?;
    if args.dry_run {
        print_dry_run(&prepared, args.json)?;
        return Ok(exit::OK);
    }
    super::runtime()?.block_on(execute(prepared, &args))
}

fn prepare(args: &SendArgs, catalog: &Catalog, platform: &Platform, env: &Env) -> Result<Prepared> {
    let flags = Flags {
        to: args.to.as_deref(),
        key: &args.key,
        delivery: &args.delivery,
    };
    let config = DeliveryConfig::resolve(platform, &flags, None, env)?;
    let (event, body, value) = match &args.data {
        Some(file) => {
            let bytes = read_input(Some(file), "--data")?;
            let shown = if file == "-" {
                "--data (stdin)".to_string()
            } else {
                format!("--data `{file}`")
            };
            if bytes.trim_ascii().is_empty() {
                return Err(empty_data(file, &shown, bytes.is_empty(), args, platform));
            }
            let value = check_body(&bytes, &shown, platform)?;
            let named = platform.event_of(&value);
            let event = match &args.event {
                Some(name) => {
                    let given = find_event(catalog, platform, name)?.name.clone();
                    match named {
                        // The body is what is sent: its own event is what the receiver sees.
                        Some(named) if named != given => {
                            errln!(
                                "note: the body is a `{named}` event, not `{given}`: it is labelled `{named}`"
                            );
                            named
                        }
                        _ => given,
                    }
                }
                None => named.unwrap_or_else(|| "custom".into()),
            };
            (event, Bytes::from(bytes), value)
        }
        None => {
            let name = args.event.as_deref().ok_or_else(|| {
                UserError::new("which event? name one, or give a body with --data FILE").hint(
                    format!(
                        "`hookcli events -p {}` lists them, e.g. hookcli send {} -p {}",
                        platform.id,
                        example_event(platform),
                        platform.id
                    ),
                )
            })?;
            let event = find_event(catalog, platform, name)?;
            let mut rng = crate::call::rng_from(config.seed);
            let mut value = crate::call::render_event(catalog, platform, event, &mut rng)?;
            apply_sets(&args.sets, &mut value, platform, &event.name)?;
            let body = Bytes::from(platform.encode(&value));
            (event.name.clone(), body, value)
        }
    };
    let instead = if args.dry_run {
        "the dry run shows it unsigned (nothing is sent)"
    } else {
        "sending unsigned"
    };
    if let Some(note) = config.no_key_note(instead) {
        errln!("{note}");
    }
    Ok(Prepared {
        call_id: platform.call_id_of(&value),
        event,
        body,
        config,
    })
}

/// `--data` that holds no body: said as such, rather than as JSON that ends too soon.
fn empty_data(
    file: &str,
    shown: &str,
    no_bytes: bool,
    args: &SendArgs,
    platform: &Platform,
) -> anyhow::Error {
    let what = if no_bytes {
        "is empty"
    } else {
        "is only whitespace"
    };
    let event = args
        .event
        .as_deref()
        .unwrap_or_else(|| example_event(platform));
    let show = format!("hookcli show {event} -p {} --compact", platform.id);
    let hint = if file == "-" {
        format!(
            "pipe one JSON body in, e.g. `{show} | hookcli send -p {} --data -`; or leave out --data to send the rendered event",
            platform.id
        )
    } else {
        format!(
            "put one JSON body in the file (`{show} > {file}` writes one); or leave out --data to send the rendered event"
        )
    };
    UserError::new(format!("{shown} {what}: there is no body to send"))
        .hint(hint)
        .into()
}

/// An event of this platform for examples in hints: `call_ended` where it has one.
fn example_event(platform: &Platform) -> &str {
    let names = || platform.events.iter().map(|e| e.name.as_str());
    names()
        .find(|n| *n == "call_ended")
        .or_else(|| names().next())
        .unwrap_or("call_ended")
}

fn print_dry_run(prepared: &Prepared, json: bool) -> Result<()> {
    let config = &prepared.config;
    let url = config
        .target
        .url()
        .map(super::shown_url)
        .unwrap_or_else(|| "http://127.0.0.1:<free port>/webhook".into());
    let request = config.request(
        reqwest::Url::parse("http://127.0.0.1/")?,
        prepared.body.clone(),
    );
    let headers = match config.target.url() {
        Some(url) => crate::delivery::shown_headers(url, request.attempt_headers()),
        None => request.attempt_headers(),
    };
    if json {
        let headers: serde_json::Map<String, serde_json::Value> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), json!(String::from_utf8_lossy(v.as_bytes()))))
            .collect();
        // The exact bytes as a string (a JSON body is UTF-8): re-serialized, a --data body
        // would no longer be the bytes the signature covers.
        let body = String::from_utf8_lossy(&prepared.body);
        outln!(
            "{}",
            json!({"method": "POST", "url": url, "headers": headers, "body": body})
        );
        return Ok(());
    }
    outln!("POST {url}");
    for (name, value) in &headers {
        outln!("{name}: {}", String::from_utf8_lossy(value.as_bytes()));
    }
    outln!();
    outln!("{}", String::from_utf8_lossy(&prepared.body));
    if let Target::BuiltIn { why } = &config.target {
        // A platform that does not sign is sent unsigned; one that signs gets a key made for
        // the built-in receiver unless one was given.
        let signed = match config.key_origin {
            KeyOrigin::Given => ", signed with the key given",
            KeyOrigin::Made => ", signed with a key made for it",
            KeyOrigin::Missing { .. } | KeyOrigin::NotSigned { .. } => "",
        };
        errln!("note: {why}: a real send would go to hookcli's built-in receiver{signed}");
    }
    Ok(())
}

async fn execute(prepared: Prepared, args: &SendArgs) -> Result<u8> {
    let config = &prepared.config;
    let platform = &config.platform;
    let (events_tx, mut events_rx) = mpsc::unbounded_channel();
    let endpoint = config
        .start_target(Some(events_tx), "delivering to", "")
        .await?;
    let request = config.request(endpoint.url.clone(), prepared.body.clone());
    let url_text = super::shown_url(&endpoint.url);
    // The human report streams: the header before the first attempt, each attempt's line as
    // soon as it is known (a "retrying in 3s" before the wait), then the verdict. -v goes to
    // stderr as each attempt ends, with or without --json; --json itself is one object at
    // the end.
    if !args.json {
        outln!(
            "{}",
            header_line(
                &url_text,
                &platform.id,
                &prepared.event,
                prepared.call_id.as_deref()
            )
        );
    }
    let on_attempt = |attempt: &Attempt| {
        if args.verbose {
            err!(
                "{}",
                attempt_exchange_text(&url_text, attempt, &prepared.body)
            );
        }
        if !args.json {
            outln!("{}", attempt_line(attempt));
        }
    };
    let policy = config.policy_for(&prepared.event);
    let delivery = delivery::deliver_with(&delivery::client(), &request, &policy, on_attempt).await;
    let report = DeliveryReport {
        platform: &platform.id,
        event: &prepared.event,
        url: &url_text,
        call_id: prepared.call_id.clone(),
        rule: &policy.success,
        rule_owner: config.rule_owner.clone(),
        timeout: policy.timeout,
        delivery: &delivery,
    };
    let built_in = endpoint.is_built_in();
    endpoint.stop().await;
    let mut seen = Vec::new();
    while let Ok(r) = events_rx.try_recv() {
        seen.push(r);
    }
    if args.json {
        let mut object = report.json();
        if built_in {
            object["receiver"] = json!(seen.iter().map(received::json).collect::<Vec<_>>());
        }
        outln!("{object}");
    } else {
        out!("{}", report.ending());
        for r in &seen {
            outln!("{} {}", output::dim("receiver saw:"), received::line(r));
        }
    }
    Ok(match delivery.outcome {
        Outcome::Delivered => exit::OK,
        Outcome::Failed => exit::FAILED,
        Outcome::Unreachable => exit::UNREACHABLE,
    })
}
