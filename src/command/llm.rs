//! `hookcli llm`: play a custom-LLM server as the platform does, and `hookcli llm serve`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::StreamExt;
use rand::Rng;
use rand::distributions::Alphanumeric;
use serde_json::{Value, json};

use crate::catalog::{Catalog, Conversation, Speaker};
use crate::cli::{LlmArgs, LlmCommand, LlmServeArgs};
use crate::error::{UserError, exit};
use crate::llm::cases::{self, CONVERSATION, Case, Limits, Outcome};
use crate::llm::serve::Server;
use crate::llm::ws::{CallSetup, Step};
use crate::llm::{
    CallError, CallLog, Protocol, ProtocolKind, Report, Script, Settings, Turn, sse, ws,
};
use crate::output;
use crate::output::json::line;

pub fn run(args: LlmArgs, overlay: Option<&Path>) -> Result<u8> {
    let script = Script::load(overlay).map_err(|e| {
        UserError::new(e.to_string())
            .hint("fix the file, or leave --payloads out to use the built-in one")
    })?;
    if let Some(LlmCommand::Serve(serve)) = &args.serve {
        return serve_command(serve, script);
    }
    let catalog = super::load_catalog(overlay)?;
    let name = args
        .platform
        .as_deref()
        .unwrap_or(crate::catalog::DEFAULT_PLATFORM);
    let platform = super::find_platform_from(&catalog, name, args.platform_from_env)?;
    let Some(protocol) = script.protocols.get(&platform.id).cloned() else {
        let known: Vec<&str> = script.protocols.keys().map(String::as_str).collect();
        let source = if args.platform_from_env {
            " (from HOOKCLI_PLATFORM)"
        } else {
            ""
        };
        return Err(UserError::new(format!(
            "{}{source} hands no conversation to a custom LLM that hookcli plays",
            platform.id
        ))
        .hint(format!("llm plays -p {}", known.join(", -p ")))
        .into());
    };
    let picked = select(cases::cases(protocol.kind), &args.only, &args.skip)?;
    if args.list {
        list(&picked, args.json);
        return Ok(exit::OK);
    }
    check_url(args.to.as_deref(), protocol.kind)?;
    if let Some(path) = &args.junit {
        super::check::check_writable(path)?;
    }
    let calls = args.calls.unwrap_or(1) as usize;
    let plan = Plan {
        platform: platform.id.clone(),
        kind: protocol.kind,
        settings: settings(&args, &protocol)?,
        script,
        conversations: pick_conversations(&catalog, args.conversation.as_deref())?,
        people: (
            catalog.people.first_names.clone(),
            catalog.people.last_names.clone(),
        ),
        calls,
        concurrency: args
            .concurrency
            .map_or(calls.min(10), |c| c as usize)
            .max(1),
        cases: picked,
        limits: Limits {
            max_first_chunk: args.max_first_chunk,
            ping_timeout: args.ping_timeout,
        },
    };
    let report = super::runtime()?.block_on(async {
        // Ctrl-C (or SIGTERM) stops the calls where they are: the report so far.
        let stop = plan.settings.stop.clone();
        let signal = super::interrupt();
        tokio::spawn(async move {
            signal.await;
            stop.cancel();
        });
        execute(&plan, args.to.as_deref()).await
    })?;
    print_report(&report, &args)
}

/// The flags as a call's settings; the protocol's own deadline when --timeout is not given
/// (uponai states none: 10 s).
fn settings(args: &LlmArgs, protocol: &Protocol) -> Result<Settings> {
    Ok(Settings {
        timeout: args
            .timeout
            .or(protocol.timeout)
            .unwrap_or(Duration::from_secs(10)),
        ping_interval: args.ping_interval,
        ping_timeout: args.ping_timeout,
        silence: args.silence,
        call_fields: protocol.call_fields,
        headers: super::parse_headers(&args.headers)?,
        stop: tokio_util::sync::CancellationToken::new(),
    })
}

/// What `execute` plays.
struct Plan {
    platform: String,
    kind: ProtocolKind,
    settings: Settings,
    script: Script,
    conversations: Vec<Dialogue>,
    people: (Vec<String>, Vec<String>),
    calls: usize,
    concurrency: usize,
    cases: Vec<&'static Case>,
    limits: Limits,
}

fn select(all: &'static [Case], only: &[String], skip: &[String]) -> Result<Vec<&'static Case>> {
    use crate::check::matches;
    for pattern in only.iter().chain(skip) {
        if !all.iter().any(|c| matches(pattern, c.name)) {
            let names: Vec<&str> = all.iter().map(|c| c.name).collect();
            return Err(UserError::new(format!("no llm case is called `{pattern}`"))
                .hint(format!(
                    "cases: {} (or a prefix like llm/)",
                    names.join(", ")
                ))
                .into());
        }
    }
    let picked: Vec<&Case> = all
        .iter()
        .filter(|c| only.is_empty() || only.iter().any(|p| matches(p, c.name)))
        .filter(|c| !skip.iter().any(|p| matches(p, c.name)))
        .collect();
    if picked.is_empty() {
        return Err(UserError::new("--only and --skip leave no case to run")
            .hint("`hookcli llm --list` shows the cases")
            .into());
    }
    Ok(picked)
}

fn list(cases: &[&Case], json: bool) {
    if json {
        for case in cases {
            outln!("{}", line(&output::llm::list_json(case)));
        }
    } else {
        outln!("{}", output::llm::list(cases));
    }
}

/// A conversation's topic and turns (the catalog's, without its analysis fields).
struct Dialogue {
    topic: String,
    turns: Vec<(Speaker, String)>,
}

fn owned(c: &Conversation) -> Dialogue {
    Dialogue {
        topic: c.topic.clone(),
        turns: c.turns.clone(),
    }
}

fn pick_conversations(catalog: &Catalog, topic: Option<&str>) -> Result<Vec<Dialogue>> {
    let Some(topic) = topic else {
        return Ok(catalog.conversations.iter().map(owned).collect());
    };
    match catalog.conversations.iter().find(|c| c.topic == topic) {
        Some(c) => Ok(vec![owned(c)]),
        None => {
            let topics: Vec<&str> = catalog
                .conversations
                .iter()
                .map(|c| c.topic.as_str())
                .collect();
            Err(UserError::new(format!("no conversation about `{topic}`"))
                .hint(format!("topics: {}", topics.join(", ")))
                .into())
        }
    }
}

/// The URL's scheme must fit the protocol: ws/wss for the WebSocket, http/https for SSE.
fn check_url(to: Option<&str>, kind: ProtocolKind) -> Result<()> {
    let Some(to) = to else { return Ok(()) };
    let scheme = to
        .split("://")
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let (ok, want, example) = match kind {
        ProtocolKind::Websocket => (
            ["ws", "wss"].contains(&scheme.as_str()) && to.contains("://"),
            "ws:// or wss://",
            "--to ws://localhost:8080/llm-websocket",
        ),
        ProtocolKind::OpenaiSse => (
            ["http", "https"].contains(&scheme.as_str()) && to.contains("://"),
            "http:// or https://",
            "-p vapi --to http://localhost:8080/v1",
        ),
    };
    if ok {
        return Ok(());
    }
    Err(UserError::new(format!(
        "--to {to}: this platform's custom LLM is reached at a {want} URL"
    ))
    .hint(format!("like {example}"))
    .into())
}

async fn execute(plan: &Plan, to: Option<&str>) -> Result<Report> {
    // Without --to, the scripted server, in-process (as send does with the built-in receiver).
    let builtin = match to {
        Some(_) => None,
        None => Some(Server::start("127.0.0.1", 0, plan.script.serve.clone()).await?),
    };
    let url = match (&builtin, plan.kind) {
        (Some(server), ProtocolKind::Websocket) => server.ws_url(),
        (Some(server), ProtocolKind::OpenaiSse) => server.http_url(),
        (None, _) => to.unwrap_or_default().to_string(),
    };
    let (url, started) = (url.as_str(), Instant::now());
    let client = &reqwest::Client::builder()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot make the HTTP client: {e}"))?;
    let mut scenarios: Vec<&str> = Vec::new();
    for case in &plan.cases {
        for s in case.plays {
            if !scenarios.contains(s) {
                scenarios.push(s);
            }
        }
    }
    let mut logs = Vec::new();
    if scenarios.contains(&CONVERSATION) {
        let mut played = futures_util::stream::iter(0..plan.calls)
            .map(|i| async move { (i, play_conversation(plan, url, client, i).await) })
            .buffer_unordered(plan.concurrency)
            .collect::<Vec<_>>()
            .await;
        // In call order, whatever order they finished in.
        played.sort_by_key(|(i, _)| *i);
        let reached = played.iter().any(|(_, r)| r.is_ok());
        for (_, result) in played {
            match result {
                Ok(log) => logs.push(log),
                Err(CallError::Unreachable(why)) if !reached => return Err(unreachable(&why)),
                Err(CallError::Unreachable(why)) => logs.push(failed_call(&why)),
                Err(CallError::Interrupted) => {}
            }
        }
    }
    // The cases' own scenarios, one call each, at once.
    let mut others = Vec::new();
    for name in scenarios.iter().filter(|s| **s != CONVERSATION) {
        let Some(scenario) = plan.script.scenario(name) else {
            return Err(UserError::new(format!("payloads/llm.toml has no scenario `{name}`"))
                .hint("the protocol cases need the interruption, update-mid-stream and reminder scenarios")
                .into());
        };
        let steps: Vec<Step> = scenario.steps.iter().map(step).collect();
        others.push(async move { play_ws(plan, url, name, &steps).await });
    }
    for result in futures_util::future::join_all(others).await {
        match result {
            Ok(log) => logs.push(log),
            Err(CallError::Unreachable(why)) if logs.is_empty() => return Err(unreachable(&why)),
            Err(CallError::Unreachable(why)) => logs.push(failed_call(&why)),
            Err(CallError::Interrupted) => {}
        }
    }
    let results = plan
        .cases
        .iter()
        .map(|c| c.judge(&logs, &plan.limits))
        .collect();
    Ok(Report {
        platform: plan.platform.clone(),
        url: url.to_string(),
        logs,
        results,
        elapsed: started.elapsed(),
        interrupted: plan.settings.stop.is_cancelled(),
    })
}

fn unreachable(why: &str) -> anyhow::Error {
    UserError::new(format!("cannot reach the custom LLM: {why}"))
        .hint("is the server running, on this port and path? (`hookcli llm serve` starts a scripted one)")
        .code(exit::UNREACHABLE)
        .into()
}

/// A call of many that could not connect (others did): its greeting failed.
fn failed_call(why: &str) -> CallLog {
    let mut turn = Turn::new(crate::llm::Ask::Greeting, Some(0), "");
    turn.error = Some(format!("could not connect: {why}"));
    CallLog {
        scenario: CONVERSATION.into(),
        turns: vec![turn],
        ended_by: "unreachable".into(),
        ..CallLog::default()
    }
}

fn step(s: &crate::llm::script::Step) -> Step {
    match &s.say {
        Some(text) => Step::Say {
            text: text.clone(),
            interrupt: s.interrupt.clone(),
            update: s.update.clone(),
        },
        None => Step::Silence,
    }
}

fn call_id() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// Call `i`'s caller: a name from people.toml.
fn caller(plan: &Plan, i: usize) -> (String, String) {
    let (first, last) = &plan.people;
    (
        first
            .get(i % first.len().max(1))
            .cloned()
            .unwrap_or_default(),
        last.get(i % last.len().max(1)).cloned().unwrap_or_default(),
    )
}

/// call_details' `call` object, as Retell shapes it.
fn details(call_id: &str, first: &str, topic: &str) -> Value {
    json!({
        "call_type": "phone_call",
        "from_number": "+14155550123",
        "to_number": "+14155550199",
        "direction": "inbound",
        "call_id": call_id,
        "agent_id": "agent_hookcli",
        "call_status": "ongoing",
        "metadata": {"conversation": topic},
        "retell_llm_dynamic_variables": {"customer_name": first},
        "opt_out_sensitive_data_storage": false,
    })
}

async fn play_conversation(
    plan: &Plan,
    url: &str,
    client: &reqwest::Client,
    i: usize,
) -> Result<CallLog, CallError> {
    let conversation = &plan.conversations[i % plan.conversations.len()];
    let (first, last) = caller(plan, i);
    let fill = |t: &str| crate::llm::fill_caller(t, &first, &last);
    let users: Vec<String> = conversation
        .turns
        .iter()
        .filter(|(who, _)| *who == Speaker::User)
        .map(|(_, t)| fill(t))
        .collect();
    let id = call_id();
    match plan.kind {
        ProtocolKind::Websocket => {
            let steps: Vec<Step> = users
                .into_iter()
                .map(|text| Step::Say {
                    text,
                    interrupt: None,
                    update: None,
                })
                .collect();
            let setup = CallSetup {
                details: details(&id, &first, &conversation.topic),
                call_id: id,
                scenario: CONVERSATION.into(),
            };
            ws::play(url, setup, &steps, &plan.settings).await
        }
        ProtocolKind::OpenaiSse => {
            let greeting = conversation
                .turns
                .iter()
                .find(|(who, _)| *who == Speaker::Agent)
                .map(|(_, t)| fill(t))
                .unwrap_or_default();
            let fields = plan
                .settings
                .call_fields
                .then(|| vapi_fields(&id, &first, &conversation.topic));
            let call = sse::SseCall {
                client,
                url: url.to_string(),
                call_id: id,
                scenario: CONVERSATION.into(),
                first_message: greeting,
                call_fields: fields,
            };
            sse::play(call, &users, &plan.settings).await
        }
    }
}

/// What Vapi adds to the request with metadataSendMode `variable` (its default).
fn vapi_fields(call_id: &str, first: &str, topic: &str) -> Value {
    json!({
        "call": {
            "id": call_id,
            "orgId": "org_hookcli",
            "type": "inboundPhoneCall",
            "status": "in-progress",
            "assistantId": "asst_hookcli",
        },
        "phoneNumber": {"number": "+14155550199"},
        "customer": {"number": "+14155550123", "name": first},
        "metadata": {"conversation": topic},
    })
}

async fn play_ws(
    plan: &Plan,
    url: &str,
    scenario: &str,
    steps: &[Step],
) -> Result<CallLog, CallError> {
    let id = call_id();
    let (first, _) = caller(plan, 0);
    let setup = CallSetup {
        details: details(&id, &first, scenario),
        call_id: id,
        scenario: scenario.into(),
    };
    ws::play(url, setup, steps, &plan.settings).await
}

fn print_report(report: &Report, args: &LlmArgs) -> Result<u8> {
    // An interrupted run did not do what was asked, whatever its cases say so far.
    let code = if report.count(Outcome::Failed) > 0 || report.interrupted {
        exit::FAILED
    } else {
        exit::OK
    };
    if args.json {
        for turn in output::llm::turns_json(report) {
            outln!("{}", line(&turn));
        }
        for result in &report.results {
            outln!("{}", line(&output::llm::case_json(result)));
        }
        outln!("{}", line(&output::llm::summary_json(report, code)));
    } else {
        text_report(report);
    }
    if let Some(path) = &args.junit {
        super::check::write_junit(path, output::llm::junit(report)?)?;
    }
    Ok(code)
}

fn text_report(report: &Report) {
    let conversations: Vec<&CallLog> = report.conversations().collect();
    match conversations.as_slice() {
        [] => {}
        [one] => {
            outln!(
                "call {} · {} · ended by {}",
                one.call_id,
                one.url,
                one.ended_by
            );
            outln!("{}", output::llm::call_table(one));
        }
        many => {
            outln!("{} conversation calls", many.len());
            outln!("{}", output::llm::many_table(many.iter().copied()));
        }
    }
    for log in report.logs.iter().filter(|l| l.scenario != CONVERSATION) {
        outln!("scenario {} · call {}", log.scenario, log.call_id);
        outln!("{}", output::llm::call_table(log));
    }
    outln!("{}", output::llm::cases_table(&report.results));
    for finding in output::llm::findings(report) {
        outln!("{finding}");
    }
    outln!("{}", output::llm::summary(report));
}

fn serve_command(args: &LlmServeArgs, script: Script) -> Result<u8> {
    super::runtime()?.block_on(async {
        let server = Server::start(&args.host, args.port, script.serve)
            .await
            .map_err(|e| {
                UserError::new(e.to_string()).hint("pick another --port, or 0 for a free one")
            })?;
        errln!(
            "listening on {} and {}/chat/completions",
            server.ws_url(),
            server.http_url()
        );
        super::interrupt().await;
        Ok(exit::OK)
    })
}
