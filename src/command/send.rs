//! `hookcli send EVENT --to URL`: one event, signed and delivered by the platform's rules.

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use bytes::Bytes;
use tokio::sync::mpsc;

use super::{apply_sets, check_body, find_event, load_catalog_for, read_input};
use crate::catalog::{AnswerSpec, Catalog, Platform};
use crate::cli::SendArgs;
use crate::config::{DeliveryConfig, Env, FileSettings, Flags, KeyOrigin, Target};
use crate::delivery::{self, Attempt, Outcome};
use crate::error::{UserError, exit};
use crate::output::answer::AnswerReport;
use crate::output::delivery::{DeliveryReport, attempt_exchange_text, attempt_line, header_line};
use crate::output::json::{self, DryRunJson};
use crate::output::{self, received};

/// Everything a send needs, checked before anything goes out.
struct Prepared {
    event: String,
    body: Bytes,
    call_id: Option<String>,
    config: DeliveryConfig,
    /// POST, or a function's configured method.
    method: reqwest::Method,
    /// Query parameters to add to the URL (a function's, or its args for GET and DELETE).
    query: Vec<(String, String)>,
    /// The answer the platform reads, for an event that has one.
    answer: Option<AnswerSpec>,
    /// A function call: the caller waits in silence for it.
    function: bool,
    /// The command that sends this body again, for a failed delivery's report.
    reproduce: Option<String>,
}

pub fn run(args: SendArgs, overlay: Option<&Path>, file: Option<&Path>) -> Result<u8> {
    let suite = crate::config::read_file(file)?;
    let name = crate::config::platform_name(&args.target.platform, suite.as_ref());
    let catalog = load_catalog_for(overlay, name)?;
    let platform = crate::config::platform(&catalog, &args.target.platform, suite.as_ref())?;
    let settings = suite.as_ref().map(FileSettings::of).transpose()?;
    let prepared = prepare(
        &args,
        &catalog,
        platform,
        settings.as_ref(),
        &Env::process(),
    )?;
    if args.dry_run {
        print_dry_run(&prepared, args.json)?;
        return Ok(exit::OK);
    }
    super::current_thread_runtime()?.block_on(execute(prepared, &args))
}

fn prepare(
    args: &SendArgs,
    catalog: &Catalog,
    platform: &Arc<Platform>,
    file: Option<&FileSettings>,
    env: &Env,
) -> Result<Prepared> {
    let flags = Flags::of(&args.target);
    let config = DeliveryConfig::resolve(platform, &flags, file, env)?;
    let seed = config.seed.unwrap_or_else(rand::random);
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
            // A seed even without HOOKCLI_SEED, so a failure's command can render this body again.
            let mut rng = crate::call::rng_from(Some(seed));
            let mut value = crate::call::render_event(catalog, platform, event, &mut rng)?;
            super::function::fill(&args.function, event, &mut value)?;
            apply_sets(&args.sets, &args.unsets, &mut value, platform, &event.name)?;
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
    let spec = platform.event(&event);
    let function = spec.and_then(|e| e.function.as_ref());
    if function.is_none() && super::function::given(&args.function) {
        return Err(super::function::not_a_function(&event, platform));
    }
    let request = match function {
        Some(function) => super::function::request(&args.function, function, &value, body)?,
        None => super::function::FunctionRequest {
            method: reqwest::Method::POST,
            query: Vec::new(),
            body,
        },
    };
    let reproduce = reproduce(
        args,
        platform,
        &event,
        seed,
        &request.body,
        function.is_some(),
    );
    Ok(Prepared {
        reproduce,
        call_id: platform.call_id_of(&value),
        answer: spec.and_then(|e| e.answer.as_deref().cloned()),
        function: function.is_some(),
        event,
        body: request.body,
        config,
        method: request.method,
        query: request.query,
    })
}

/// The command that sends the same body again: `HOOKCLI_SEED=N hookcli send EVENT ...` with
/// the same edits for a rendered event, the file for `--data FILE`, else the bytes inline.
/// The flags that shape the delivery go along; a key never does (`--secret` becomes
/// `--secret "$HOOKCLI_SECRET"`), nor `-H`, whose values may be credentials.
fn reproduce(
    args: &SendArgs,
    platform: &Platform,
    event: &str,
    seed: u64,
    body: &[u8],
    function: bool,
) -> Option<String> {
    let target = &args.target;
    let mut flags = String::new();
    let ms = |d: std::time::Duration| format!("{}ms", d.as_millis());
    let delivery = &target.delivery;
    for (name, value) in [
        ("--timeout", delivery.timeout.map(ms)),
        ("--retries", delivery.retries.map(|n| n.to_string())),
        ("--backoff", delivery.backoff.map(ms)),
        ("--expect", delivery.expect.as_ref().map(|r| r.to_string())),
    ] {
        if let Some(value) = value {
            flags.push_str(&format!(" {name} {}", crate::text::shell_quote(&value)));
        }
    }
    if target.key.secret.is_some() {
        flags.push_str(" --secret \"$HOOKCLI_SECRET\"");
    }
    let to = target.to.as_deref().map(crate::redact::shown_text);
    let to_flag = to
        .as_deref()
        .map(|url| format!(" --to {}", crate::text::shell_quote(url)))
        .unwrap_or_default();
    match args.data.as_deref() {
        Some(file) if file != "-" => Some(format!(
            "hookcli send -p {}{to_flag} --data {}{flags}",
            platform.id,
            crate::text::shell_quote(file)
        )),
        // A function call's body comes from --function/--args; inline, it is exact.
        Some(_) => crate::text::data_line(body, &platform.id, to.as_deref(), &flags),
        None if function => crate::text::data_line(body, &platform.id, to.as_deref(), &flags),
        None => {
            let edits = super::parse_edits(&args.sets, &args.unsets).ok()?;
            let edits: String = edits.iter().map(|e| format!(" {}", e.as_flag())).collect();
            Some(format!(
                "HOOKCLI_SEED={seed} hookcli send {event} -p {}{to_flag}{edits}{flags}",
                platform.id
            ))
        }
    }
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
    let mut url = config
        .target
        .url()
        .map(super::shown_url)
        .unwrap_or_else(|| "http://127.0.0.1:<free port>/webhook".into());
    if !prepared.query.is_empty()
        && let Ok(mut with_query) = reqwest::Url::parse(&url)
    {
        with_query.query_pairs_mut().extend_pairs(&prepared.query);
        url = super::shown_url(&with_query);
    }
    let method = prepared.method.as_str();
    let request = config.request(
        reqwest::Url::parse("http://127.0.0.1/")?,
        prepared.body.clone(),
    );
    let headers = match config.target.url() {
        Some(url) => crate::delivery::shown_headers(url, request.attempt_headers()),
        None => request.attempt_headers(),
    };
    if json {
        let dry_run = DryRunJson::new(method, &url, &headers, &prepared.body, None);
        outln!("{}", json::line(&dry_run));
        return Ok(());
    }
    out!(
        "{}",
        output::delivery::dry_run_text(method, &url, &headers, &prepared.body)
    );
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
    let mut url = endpoint.url.clone();
    if !prepared.query.is_empty() {
        url.query_pairs_mut().extend_pairs(&prepared.query);
    }
    let mut request = config.request(url.clone(), prepared.body.clone());
    request.method = prepared.method.clone();
    let url_text = super::shown_url(&url);
    // The human report streams: the header before the first attempt, each attempt's line as
    // soon as it is known (a "retrying in 3s" before the wait), then the verdict. -v goes to
    // stderr as each attempt ends, with or without --json; --json itself is one object at
    // the end.
    // The shared report lines say POST, which every webhook is; a function may use another.
    let method = |text: String| match prepared.method {
        reqwest::Method::POST => text,
        ref other => text.replacen("POST", other.as_str(), 1),
    };
    if !args.json {
        outln!(
            "{}",
            method(header_line(
                &url_text,
                &platform.id,
                &prepared.event,
                prepared.call_id.as_deref()
            ))
        );
    }
    let on_attempt = |attempt: &Attempt| {
        if args.verbose {
            err!(
                "{}",
                method(attempt_exchange_text(&url_text, attempt, &prepared.body))
            );
        }
        if !args.json {
            outln!("{}", attempt_line(attempt));
        }
    };
    let policy = config.policy_for(&prepared.event);
    let client = delivery::client_for(&request.url);
    let delivery = delivery::deliver_with(&client, &request, &policy, on_attempt).await;
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
    let judged = match (&prepared.answer, delivery.delivered()) {
        (Some(spec), true) => Some((
            spec,
            crate::answer::judge(spec, &delivery.last().response_body),
        )),
        _ => None,
    };
    let waited = prepared.function.then(|| {
        let waited = delivery
            .attempts
            .iter()
            .map(|a| a.latency + a.wait.unwrap_or_default())
            .sum();
        (waited, args.function.warn_after)
    });
    let answer = judged.as_ref().map(|(spec, judgement)| AnswerReport {
        spec,
        attempt: delivery.last(),
        judgement,
        waited,
    });
    let answer_failed = judged.as_ref().is_some_and(|(_, j)| !j.valid());
    let built_in = endpoint.is_built_in();
    endpoint.stop().await;
    let mut seen = Vec::new();
    while let Ok(r) = events_rx.try_recv() {
        seen.push(r);
    }
    let failed = !delivery.delivered() || answer_failed;
    let reproduce = prepared.reproduce.as_deref().filter(|_| failed);
    let body = &delivery.last().response_body;
    let response_body = (failed && !body.is_empty()).then(|| crate::text::response_start(body));
    if args.json {
        let mut object = report.json();
        object.reproduce = reproduce.map(str::to_string);
        object.response_body = response_body;
        if let Some(answer) = &answer {
            object.response = Some(answer.json());
            if answer_failed {
                object.delivered = false;
                object.outcome = "failed";
            }
        }
        if built_in {
            object.receiver = Some(seen.iter().map(received::json).collect());
        }
        outln!("{}", json::line(&object));
    } else {
        match &answer {
            // The status met the rule but the answer did not: the answer's verdict is the one.
            Some(answer) if answer_failed => out!("{}", answer.lines()),
            Some(answer) => out!("{}{}", report.ending(), answer.lines()),
            None => out!("{}", report.ending()),
        }
        for r in &seen {
            outln!("{} {}", output::dim("receiver saw:"), received::line(r));
        }
        if let Some(body) = &response_body {
            outln!(
                "{} {}",
                output::dim("response:"),
                output::escape_controls(body)
            );
        }
        if let Some(command) = reproduce {
            outln!(
                "{} {}",
                output::dim("reproduce:"),
                output::escape_controls(command)
            );
        }
    }
    Ok(match delivery.outcome {
        Outcome::Delivered if answer_failed => exit::FAILED,
        Outcome::Delivered => exit::OK,
        Outcome::Failed => exit::FAILED,
        Outcome::Unreachable => exit::UNREACHABLE,
    })
}
