//! `hookcli replay`: a call's whole story, many calls at once, or recorded traffic.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use tokio::sync::mpsc;

use super::{find_lifecycle, load_catalog_for};
use crate::catalog::Platform;
use crate::cli::ReplayArgs;
use crate::config::{DeliveryConfig, Env, FileSettings, Flags};
use crate::delivery::{Delivery, ErrorKind, Outcome as DeliveryOutcome};
use crate::error::{UserError, exit};
use crate::output::delivery::{DeliveryReport, outcome_word};
use crate::output::json::{self, DeliveryJson};
use crate::output::replay::{ByEvent, Row, Totals};
use crate::output::{self, progress};
use crate::policy::EventPolicies;
use crate::replay::{self, EventFilter, Outcome, Pacing, Settings, Source};
use crate::text::{line_list, plural};

/// Above this many deliveries the table shows one row per event instead of per delivery.
const MAX_TABLE_ROWS: usize = 60;

pub fn run(args: ReplayArgs, overlay: Option<&Path>, file: Option<&Path>) -> Result<u8> {
    let suite = crate::config::read_file(file)?;
    let name = crate::config::platform_name(&args.target.platform, suite.as_ref());
    let catalog = Arc::new(load_catalog_for(overlay, name)?);
    let platform = crate::config::platform(&catalog, &args.target.platform, suite.as_ref())?;
    let settings = suite.as_ref().map(FileSettings::of).transpose()?;
    let platform_index = catalog
        .platforms
        .iter()
        .position(|p| p.id == platform.id)
        .unwrap_or(0);
    let flags = Flags::of(&args.target);
    // Resolved first, so a bad HOOKCLI_SEED is refused even where replay does not use it.
    let config = DeliveryConfig::resolve(platform, &flags, settings.as_ref(), &Env::process())?;
    let filter = parse_filter(args.events.as_deref(), platform, args.from.is_some())?;
    let pacing = match (args.realtime || args.speed.is_some(), args.gap) {
        (true, _) => Pacing::Realtime {
            speed: args.speed.unwrap_or(1.0),
        },
        (false, Some(gap)) => Pacing::Gap(gap),
        (false, None) => Pacing::BackToBack,
    };
    let mut left_out = None;
    let (source, sequence) = match &args.from {
        Some(file) => {
            let (planned, skipped) = read_recording(file, platform, &filter, &args, config.seed)?;
            left_out = Some(skipped);
            (Source::Recorded(planned), Vec::new())
        }
        None => {
            let lifecycle = find_lifecycle(platform, args.lifecycle.as_deref())?.clone();
            let sequence = lifecycle.steps.iter().map(|s| s.event.clone()).collect();
            let source = Source::Lifecycle {
                catalog: catalog.clone(),
                platform: platform_index,
                lifecycle,
                filter,
                calls: args.calls as usize,
                seed: config.seed,
            };
            (source, sequence)
        }
    };
    if args.redact && args.from.is_none() {
        errln!("note: --redact applies to --from recordings; generated calls hold no real people");
    }
    if let Some(note) = config.no_key_note("sending unsigned") {
        errln!("{note}");
    }
    let plan = Plan {
        policies: config.event_policies(),
        config,
        pacing,
        sequence,
        left_out,
        calls: if args.from.is_some() {
            1
        } else {
            args.calls as usize
        },
    };
    // One call (or a recording), or calls played one at a time, go out a delivery at a time:
    // one thread is all that needs, and waking workers across cores for each answer would
    // cost more than the deliveries.
    let one_at_a_time = plan.calls == 1 || args.concurrency == 1;
    let runtime = if one_at_a_time {
        super::current_thread_runtime()?
    } else {
        super::runtime()?
    };
    runtime.block_on(execute(source, plan, &args))
}

struct Plan {
    config: DeliveryConfig,
    policies: EventPolicies,
    pacing: Pacing,
    /// The lifecycle's event names, to order the per-event table.
    sequence: Vec<String>,
    calls: usize,
    /// With --from: what the recording held that is not replayed.
    left_out: Option<replay::LeftOut>,
}

/// `--events`: `default`, `all`, or names of the platform's events.
pub(crate) fn parse_filter(
    arg: Option<&str>,
    platform: &Platform,
    recorded: bool,
) -> Result<EventFilter> {
    let Some(arg) = arg.map(str::trim) else {
        // A recording is replayed as it was: the agent that received it was subscribed.
        return Ok(if recorded {
            EventFilter::All
        } else {
            EventFilter::Defaults
        });
    };
    match arg {
        "all" => return Ok(EventFilter::All),
        "default" | "defaults" => return Ok(EventFilter::Defaults),
        _ => {}
    }
    let mut names = BTreeSet::new();
    for name in arg.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if matches!(name, "all" | "default" | "defaults") {
            return Err(UserError::new(format!(
                "--events {arg}: `{name}` cannot be part of a list"
            ))
            .hint(format!(
                "write --events {name} alone, or list the events without it"
            ))
            .into());
        }
        if platform.event(name).is_none() {
            let mut error = UserError::new(format!(
                "--events: unknown event `{name}` for {}",
                platform.id
            ));
            error = match platform.closest_event(name) {
                Some(near) => error.hint(format!(
                    "did you mean {near}? events: {}, or `all`",
                    platform.event_names().join(", ")
                )),
                None => error.hint(format!(
                    "events: {}, or `all`",
                    platform.event_names().join(", ")
                )),
            };
            return Err(error.into());
        }
        names.insert(name.to_string());
    }
    if names.is_empty() {
        return Err(UserError::new("--events is empty")
            .hint("give `all`, `default`, or a comma list of events")
            .into());
    }
    Ok(EventFilter::Only(names))
}

/// A recording's text: a file, or stdin for `-`; `shown` names it in messages. A file torn
/// inside a character at its very end keeps the whole characters (that value is then torn).
pub(crate) fn recording_text(file: &Path, flag: &str) -> Result<(String, String)> {
    let stdin = file == Path::new("-");
    let shown = if stdin {
        "stdin".to_string()
    } else {
        file.display().to_string()
    };
    let refuse = |reason: String| {
        UserError::new(format!("{flag} `{shown}`: {reason}")).hint(
            "give a file written by `hookcli listen --record FILE`, JSON bodies (as `hookcli \
             show` prints them), or - to read them from stdin",
        )
    };
    let bytes = if stdin {
        use std::io::{IsTerminal, Read};
        if std::io::stdin().is_terminal() {
            return Err(refuse("stdin is a terminal, not a recording".into()).into());
        }
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| refuse(crate::text::io_reason(&e)))?;
        bytes
    } else {
        std::fs::read(file).map_err(|e| refuse(crate::text::path_reason(file, &e)))?
    };
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) if e.utf8_error().error_len().is_none() => {
            let whole = e.utf8_error().valid_up_to();
            let mut bytes = e.into_bytes();
            bytes.truncate(whole);
            String::from_utf8(bytes).map_err(|_| refuse("not UTF-8 text".into()))?
        }
        Err(_) => return Err(refuse("not UTF-8 text".into()).into()),
    };
    Ok((text, shown))
}

fn read_recording(
    file: &Path,
    platform: &Platform,
    filter: &EventFilter,
    args: &ReplayArgs,
    seed: Option<u64>,
) -> Result<(Vec<replay::Planned>, replay::LeftOut)> {
    let (text, shown) = recording_text(file, "--from")?;
    let reading = replay::Reading {
        include_rejected: args.include_rejected,
    };
    let recording =
        replay::plan_recording(&text, &shown, platform, filter, reading).map_err(|e| {
            let hint = if e.line == 0 {
                "record traffic with `hookcli listen --record FILE`, or give JSON bodies"
            } else {
                "each value must be a `hookcli listen --record` line or one JSON body; fix or \
                 delete it"
            };
            UserError::new(format!("--from {e}")).hint(hint)
        })?;
    notes(&recording);
    let left_out = recording.left_out();
    let mut planned = recording.planned;
    if args.redact {
        let mut rng = crate::call::rng_from(seed);
        // One redactor for the file: a call's events keep agreeing with each other.
        let mut redactor = crate::redact::Redactor::default();
        for item in &mut planned {
            if let Ok(mut value) = platform.decode(&item.body) {
                redactor.redact(&mut value, &mut rng);
                item.body = platform.encode(&value).into();
            }
        }
    }
    Ok((planned, left_out))
}

/// One stderr note per kind of thing the recording held that is not replayed.
fn notes(recording: &replay::Recording) {
    if !recording.torn.is_empty() {
        let n = recording.torn.len();
        errln!(
            "note: skipped {n} torn {} (line {}): cut short, a record write that did not finish",
            plural(n, "entry", "entries"),
            line_list(&recording.torn)
        );
    }
    if !recording.too_large.is_empty() {
        let n = recording.too_large.len();
        errln!(
            "note: skipped {n} {} listen refused as too large, so not recorded (line {})",
            plural(n, "body", "bodies"),
            line_list(&recording.too_large)
        );
    }
    let rejected = &recording.rejected;
    if !rejected.is_empty() {
        errln!(
            "note: skipped {} {} listen rejected: {}; --include-rejected replays them",
            rejected.len(),
            plural(rejected.len(), "delivery", "deliveries"),
            replay::skipped_list(rejected)
        );
    }
    let skipped = &recording.skipped;
    if !skipped.is_empty() {
        errln!(
            "note: skipped {} recorded request{} that {}: {}",
            skipped.len(),
            plural(skipped.len(), "", "s"),
            plural(
                skipped.len(),
                "was not a webhook delivery",
                "were not webhook deliveries"
            ),
            replay::skipped_list(skipped)
        );
    }
}

async fn execute(source: Source, plan: Plan, args: &ReplayArgs) -> Result<u8> {
    let platform = &plan.config.platform;
    let (seen_tx, seen_rx) = mpsc::unbounded_channel();
    let endpoint = plan
        .config
        .start_target(Some(seen_tx), "replaying into", "")
        .await?;
    let url = endpoint.url.clone();
    let (stop_watching, stop_rx) = tokio::sync::oneshot::channel();
    let watcher = tokio::spawn(watch_receiver(seen_rx, stop_rx));
    let settings = Settings {
        request: plan.config.request(url.clone(), Default::default()),
        policies: plan.policies.clone(),
        concurrency: args.concurrency as usize,
        pacing: plan.pacing,
        functions: function_settings(args)?,
        dry_run: args.dry_run,
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let started = Instant::now();
    // Installed before the first delivery: Ctrl-C (or SIGTERM) stops with the report so far.
    let interrupt = super::interrupt();
    tokio::pin!(interrupt);
    let recorded_calls = source.recorded_calls();
    let mut engine = tokio::spawn(replay::run(source, settings, tx));
    let bar = progress::bar(plan.calls as u64, "calls", !args.json);
    let url_text = super::shown_url(&url);
    let mut rows = Vec::new();
    let mut totals = Totals {
        calls: recorded_calls.unwrap_or(plan.calls),
        left_out: plan.left_out,
        ..Totals::default()
    };
    let mut by_event = ByEvent::default();
    let mut failures: Vec<String> = Vec::new();
    let mut failed_count = 0usize;
    let mut record = |outcome: Outcome, totals: &mut Totals| {
        let row = to_row(&outcome, platform, &plan, &url_text);
        let failure = failure(&outcome, platform, args);
        if args.json {
            outln!(
                "{}",
                delivery_json(&outcome, &row, platform, &plan, &url_text, failure.as_ref())
            );
        } else if let Some((command, body)) = &failure {
            failed_count += 1;
            if failures.len() < MAX_REPRODUCE_LINES {
                failures.push(failure_text(&outcome, command.as_deref(), body.as_deref()));
            }
        }
        totals.add(&row);
        let order = plan
            .sequence
            .iter()
            .position(|e| *e == row.event)
            .unwrap_or(usize::MAX);
        by_event.add(&row, order);
        if rows.len() <= MAX_TABLE_ROWS {
            rows.push(row);
        }
        if outcome.last {
            totals.calls_finished += 1;
            bar.inc(1);
            bar.set_message(format!(
                "{} delivered, {} failed",
                totals.delivered,
                totals.failed + totals.unreachable
            ));
        }
    };
    // --dry-run: the requests, printed in call order once all are planned.
    let mut dry: Vec<Outcome> = Vec::new();
    loop {
        tokio::select! {
            outcome = rx.recv() => match outcome {
                Some(outcome) if args.dry_run => dry.push(outcome),
                Some(outcome) => {
                    if args.verbose {
                        err!("{}", exchange_text(&outcome, &url_text));
                    }
                    record(outcome, &mut totals)
                }
                None => break,
            },
            _ = &mut interrupt => {
                totals.interrupted = true;
                engine.abort();
                // Deliveries that finished before the signal are part of the report.
                while let Ok(outcome) = rx.try_recv() {
                    record(outcome, &mut totals);
                }
                break;
            }
        }
    }
    bar.finish_and_clear();
    let crashed = match (&mut engine).await {
        Ok(Ok(crashed)) => crashed,
        Ok(Err(render)) => return Err(render.into()),
        Err(_) if totals.interrupted => Vec::new(),
        Err(dead) => vec![replay::Crashed {
            call: 0,
            why: format!("the replay stopped: {dead}"),
        }],
    };
    for call in &crashed {
        errln!(
            "error: call {} stopped before its last event: {} (a hookcli bug: please report it)",
            call.call + 1,
            call.why
        );
    }
    totals.crashed = crashed.len() as u64;
    // A recording plays as one sequence whose last event ends it, yet counts its calls by
    // call id: played to the end, every one of them is finished.
    if recorded_calls.is_some() && !totals.interrupted && crashed.is_empty() {
        totals.calls_finished = totals.calls;
    }
    totals.elapsed = started.elapsed();
    let built_in = endpoint.is_built_in();
    endpoint.stop().await;
    if args.dry_run {
        print_dry_run(dry, args.json);
        return Ok(exit::OK);
    }
    let _ = stop_watching.send(());
    let watched = watcher.await.unwrap_or_default();
    let seen = built_in.then_some(watched);
    if args.json {
        outln!("{}", json::line(&totals.json()));
    } else {
        if let Some(seen) = &seen {
            for row in rows.iter_mut() {
                row.receiver = row
                    .call_id
                    .as_ref()
                    .and_then(|c| seen.verdicts.get(&(c.clone(), row.event.clone())))
                    .cloned();
            }
        }
        if rows.len() > MAX_TABLE_ROWS {
            outln!("{}", by_event.table());
        } else {
            outln!("{}", output::replay::delivery_table(&rows, plan.calls > 1));
        }
        outln!("{}", totals.line());
        if let Some(line) = totals.left_out_line() {
            outln!("{line}");
        }
        for failure in &failures {
            out!("{failure}");
        }
        if failed_count > failures.len() {
            outln!(
                "… and {} more failed deliveries (--json has a reproduce line for each)",
                failed_count - failures.len()
            );
        }
        if let Some(seen) = &seen {
            outln!("{} {}", output::dim("built-in receiver:"), seen.summary());
        }
        if totals.interrupted {
            outln!("{}", totals.interrupted_line());
        }
    }
    Ok(
        if totals.unreachable > 0
            && totals.delivered == 0
            && totals.failed == 0
            && totals.crashed == 0
        {
            exit::UNREACHABLE
        } else if totals.failed + totals.unreachable + totals.crashed > 0 || totals.interrupted {
            // An interrupted run did not do what was asked: never a pass (README
            // "Interrupted runs").
            exit::FAILED
        } else {
            exit::OK
        },
    )
}

/// The failed deliveries the text report shows a reproducing command for; --json has all.
const MAX_REPRODUCE_LINES: usize = 5;

/// A failed delivery's command that sends its exact body again, and the first 1 KB of its
/// last answer.
type Failure = (Option<String>, Option<String>);

fn failure(outcome: &Outcome, platform: &Platform, args: &ReplayArgs) -> Option<Failure> {
    let (Some(request), Some(delivery)) = (&outcome.request, &outcome.delivery) else {
        return None;
    };
    if delivery.delivered() {
        return None;
    }
    let key = if args.target.key.secret.is_some() {
        " --secret \"$HOOKCLI_SECRET\""
    } else {
        ""
    };
    let to = args.target.to.as_deref().map(crate::redact::shown_text);
    let command = crate::text::data_line(&request.body, &platform.id, to.as_deref(), key);
    let body = &delivery.last().response_body;
    let start = (!body.is_empty()).then(|| crate::text::response_start(body));
    Some((command, start))
}

/// `call 2 #3 call_ended failed:` then its `response:` and `reproduce:` lines.
fn failure_text(outcome: &Outcome, command: Option<&str>, body: Option<&str>) -> String {
    let mut out = format!(
        "call {} #{} {} failed:\n",
        outcome.call + 1,
        outcome.seq + 1,
        output::escape_controls(&outcome.event)
    );
    if let Some(body) = body {
        out.push_str(&format!("  response: {}\n", output::escape_controls(body)));
    }
    match command {
        Some(command) => out.push_str(&format!(
            "  reproduce: {}\n",
            output::escape_controls(command)
        )),
        None => out.push_str("  reproduce: (the body is over 16 KB: see it with -v)\n"),
    }
    out
}

/// `-v`: a delivery's request and answers as `send -v` shows them, under `# call N: event`.
fn exchange_text(outcome: &Outcome, url: &str) -> String {
    let (Some(request), Some(delivery)) = (&outcome.request, &outcome.delivery) else {
        return format!(
            "# call {}: {} (filtered, not sent)\n",
            outcome.call + 1,
            outcome.event
        );
    };
    let mut out = format!("# call {}: {}\n", outcome.call + 1, outcome.event);
    for attempt in &delivery.attempts {
        out.push_str(&output::delivery::attempt_exchange_text(
            url,
            attempt,
            &request.body,
        ));
    }
    out
}

/// `--dry-run`: every request the calls would send, call by call, each call's in order, as
/// `send --dry-run` prints one (`--json`: its object with `case` = `call N`).
fn print_dry_run(mut outcomes: Vec<Outcome>, json: bool) {
    outcomes.sort_by_key(|o| (o.call, o.seq));
    let mut count = 0;
    for outcome in &outcomes {
        let (Some(request), Some(delivery)) = (&outcome.request, &outcome.delivery) else {
            continue;
        };
        count += 1;
        let url = super::shown_url(&request.url);
        let headers =
            crate::delivery::shown_headers(&request.url, delivery.last().request_headers.clone());
        let case = format!("call {}", outcome.call + 1);
        let method = request.method.as_str();
        if json {
            let object = json::DryRunJson::new(method, &url, &headers, &request.body, Some(&case));
            outln!("{}", json::line(&object));
        } else {
            outln!("# {case}: {}", outcome.event);
            out!(
                "{}",
                output::delivery::dry_run_text(method, &url, &headers, &request.body)
            );
            outln!();
        }
    }
    let filtered = outcomes.iter().filter(|o| o.request.is_none()).count();
    errln!(
        "dry run: {count} request{} ({filtered} filtered out), nothing sent",
        if count == 1 { "" } else { "s" }
    );
}

fn to_row(outcome: &Outcome, platform: &Platform, plan: &Plan, url: &str) -> Row {
    let mut row = Row {
        call: outcome.call,
        seq: outcome.seq,
        event: outcome.event.clone(),
        call_id: outcome.call_id.clone(),
        status: None,
        attempts: 0,
        latency: None,
        outcome: "filtered",
        reason: String::new(),
        receiver: None,
    };
    if let Some(delivery) = &outcome.delivery {
        let report = report(outcome, delivery, platform, plan, url);
        let last = delivery.last();
        row.status = last.status;
        row.attempts = delivery.attempts.len();
        row.latency = Some(last.latency);
        row.outcome = outcome_word(delivery.outcome);
        if delivery.outcome != DeliveryOutcome::Delivered {
            row.reason = match last.error {
                Some(ErrorKind::Timeout | ErrorKind::Connect | ErrorKind::Reset) => {
                    last.detail.clone().unwrap_or_default()
                }
                _ => report.why(last),
            };
        }
    }
    row
}

fn report<'a>(
    outcome: &'a Outcome,
    delivery: &'a Delivery,
    platform: &'a Platform,
    plan: &'a Plan,
    url: &'a str,
) -> DeliveryReport<'a> {
    DeliveryReport {
        platform: &platform.id,
        event: &outcome.event,
        url,
        call_id: outcome.call_id.clone(),
        rule: &plan.policies.for_event(&outcome.event).success,
        rule_owner: plan.config.rule_owner.clone(),
        timeout: plan.policies.for_event(&outcome.event).timeout,
        delivery,
    }
}

/// The send object, plus the call index and place in the call; filtered events have no
/// attempts.
fn delivery_json(
    outcome: &Outcome,
    row: &Row,
    platform: &Platform,
    plan: &Plan,
    url: &str,
    failure: Option<&Failure>,
) -> String {
    let report;
    let mut object = match &outcome.delivery {
        Some(delivery) => {
            report = self::report(outcome, delivery, platform, plan, url);
            report.json()
        }
        None => DeliveryJson {
            kind: "delivery",
            platform: &platform.id,
            event: &outcome.event,
            url,
            call_id: outcome.call_id.as_deref(),
            expect: plan.policies.for_event(&outcome.event).success.to_string(),
            delivered: false,
            outcome: row.outcome,
            status: None,
            attempts: Vec::new(),
            warnings: Vec::new(),
            receiver: None,
            call: None,
            seq: None,
            response: None,
            reproduce: None,
            response_body: None,
        },
    };
    object.call = Some(outcome.call + 1);
    object.seq = Some(outcome.seq + 1);
    if let Some((command, body)) = failure {
        object.reproduce = command.clone();
        object.response_body = body.clone();
    }
    json::line(&object)
}

/// What the built-in receiver saw: verdict counts and, per (call id, event), the last verdict.
#[derive(Default)]
struct Seen {
    counts: Vec<(String, u64)>,
    verdicts: HashMap<(String, String), String>,
    total: u64,
}

impl Seen {
    fn summary(&self) -> String {
        let parts: Vec<String> = self
            .counts
            .iter()
            .map(|(w, n)| format!("{n} {w}"))
            .collect();
        format!("{} requests: {}", self.total, parts.join(", "))
    }
}

/// Keeps only verdicts, never bodies, so a thousand calls cost little. Runs until told to
/// stop (every delivery has its answer by then, and the receiver reports a request before
/// answering it), then takes what is left on the channel.
async fn watch_receiver(
    mut rx: mpsc::UnboundedReceiver<crate::receiver::Received>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> Seen {
    let mut seen = Seen::default();
    let mut counts: HashMap<&'static str, u64> = HashMap::new();
    let mut stopped = false;
    loop {
        let r = if stopped {
            match rx.try_recv() {
                Ok(r) => r,
                Err(_) => break,
            }
        } else {
            tokio::select! {
                r = rx.recv() => match r { Some(r) => r, None => break },
                _ = &mut stop => { stopped = true; continue; }
            }
        };
        seen.total += 1;
        *counts.entry(r.verdict.word()).or_default() += 1;
        if seen.verdicts.len() < 10_000
            && let (Some(call), Some(event)) = (r.call_id, r.event)
        {
            seen.verdicts.insert((call, event), r.verdict.to_string());
        }
    }
    let mut counts: Vec<(String, u64)> = counts
        .into_iter()
        .map(|(w, n)| (w.to_string(), n))
        .collect();
    counts.sort();
    seen.counts = counts;
    seen
}

/// `--function-url` and `--response-variable`.
fn function_settings(args: &ReplayArgs) -> Result<crate::replay::FunctionSettings> {
    let url = args
        .function_url
        .as_deref()
        .map(super::parse_url)
        .transpose()?;
    let mut response_variables = Vec::new();
    for item in &args.response_variables {
        let (name, path) = item.split_once('=').ok_or_else(|| {
            UserError::new(format!("--response-variable `{item}` has no `=`"))
                .hint("give NAME=JSONPATH, e.g. --response-variable eta=$.order.eta")
        })?;
        response_variables.push((name.to_string(), path.to_string()));
    }
    Ok(crate::replay::FunctionSettings {
        url,
        response_variables,
    })
}
