//! `hookcli load`: many fresh, signed deliveries over kept-alive connections, and the report.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::{find_event, find_lifecycle, load_catalog};
use crate::catalog::{Catalog, Moment, Platform};
use crate::check::suite::Suite;
use crate::cli::{LoadArgs, LoadCommand, MergeArgs};
use crate::config::{DeliveryConfig, Env, FileSettings, Flags};
use crate::error::{UserError, exit, usage};
use crate::load::{Bodies, Load, Report, Script, Settings, Stop};
use crate::output::load::{self as out, LoadRun};

/// `-c` when neither the flag nor hookcli.toml's [load] gives one.
const DEFAULT_CONNECTIONS: u32 = 50;

/// How often the live display is redrawn.
const TICK: Duration = Duration::from_millis(250);

pub fn run(args: LoadArgs, overlay: Option<&Path>, file: Option<&Path>) -> Result<u8> {
    if let Some(LoadCommand::Merge(merge_args)) = &args.command {
        return merge(merge_args);
    }
    amount(&args)?;
    let suite = crate::config::read_file(file)?;
    let catalog = Arc::new(load_catalog(overlay)?);
    let platform =
        crate::config::platform(&catalog, &args.target.platform, suite.as_ref())?.clone();
    // Never the file's `to`: a repository's file must not aim a load test by surprise.
    let settings = match &suite {
        Some(suite) => Some(FileSettings::of(suite)?.without_target()),
        None => None,
    };
    let script = script(&args, &catalog, &platform)?;
    let flags = Flags::of(&args.target);
    let mut config =
        DeliveryConfig::resolve(&platform, &flags, settings.as_ref(), &Env::process())?;
    // A load test measures the receiver; retries only when asked for.
    config.set_retries(args.target.delivery.retries.unwrap_or(0));
    if let Some(note) = config.no_key_note("sending unsigned") {
        errln!("{note}");
    }
    let seed = config.seed;
    super::runtime()?.block_on(async move {
        // No channel: the receiver keeps nothing per request.
        let endpoint = config.start_target(None, "loading", "").await?;
        let url = endpoint.url.clone();
        let policy = config.policy.clone();
        let settings = Settings {
            url: url.clone(),
            headers: config.headers.clone(),
            signer: config.signer(),
            policy: policy.clone(),
            platform_timeout: platform.policy.timeout,
            connections: connections(&args, suite.as_ref()),
        };
        let (bodies, slow) = Bodies::new(
            catalog.clone(),
            &platform,
            script.clone(),
            &mut crate::call::rng_from(seed),
        )?;
        if let Some(why) = slow {
            errln!("note: rendering every call in full, which is slower ({why})");
        }
        let rate = rate(&args, suite.as_ref());
        let (report, interrupted) = drive(&args, rate, settings, bodies, seed).await;
        endpoint.stop().await;
        let url_text = super::shown_url(&url);
        let unresolved = match report.tally.unreachable() {
            true => crate::delivery::unresolved_host(&url).await,
            false => None,
        };
        let run = LoadRun {
            unresolved: unresolved.as_deref(),
            platform: &platform.id,
            event: matches!(script, Script::Event(_)).then(|| script.name()),
            lifecycle: matches!(script, Script::Lifecycle(..)).then(|| script.name()),
            url: &url_text,
            connections: connections(&args, suite.as_ref()) as u32,
            count: args.count,
            duration: args.duration,
            rate,
            timeout: policy.timeout,
            retries: policy.retries,
            rule: &policy.success,
            platform_timeout: platform.policy.timeout,
            interrupted,
        };
        if args.json {
            outln!("{}", crate::output::json::line(&run.json(&report)?));
        } else {
            out!("{}", run.text(&report));
        }
        let code = exit_code(&report, interrupted);
        if code == exit::UNREACHABLE {
            // The report (stdout) has the counts; stderr says why the run is exit 3, with
            // --json too, where the report alone would not say it in words.
            return Err(UserError::new(format!(
                "the receiver at {url_text} was unreachable: no connection succeeded"
            ))
            .hint(match &unresolved {
                Some(host) => format!("`{host}` does not resolve: check the host in --to"),
                None => "start it first, and check the host and port in --to".into(),
            })
            .code(exit::UNREACHABLE)
            .into());
        }
        Ok(code)
    })
}

/// Exactly one of -n and -z, and a duration above 0.
fn amount(args: &LoadArgs) -> Result<()> {
    match (args.count, args.duration) {
        (None, None) => Err(UserError::new(
            "say how much load to send: -n COUNT (deliveries) or -z DURATION (how long)",
        )
        .hint("e.g. hookcli load -n 1000, or hookcli load -z 10s")
        .into()),
        (Some(n), Some(d)) => Err(UserError::new(format!(
            "-n {n} and -z {} both given: give one of them",
            crate::duration::short(d)
        ))
        .hint("-n stops after that many deliveries, -z after that long")
        .into()),
        (None, Some(d)) if d.is_zero() => Err(UserError::new("-z 0: the duration must be above 0")
            .hint("give how long to send, like -z 10s or -z 1m")
            .into()),
        _ => Ok(()),
    }
}

/// The event or lifecycle: named, or the platform's call-end event.
fn script(args: &LoadArgs, catalog: &Catalog, platform: &Platform) -> Result<Script> {
    if let Some(name) = &args.lifecycle {
        let lifecycle = find_lifecycle(platform, Some(name))?;
        // replay's --events, with replay's default: the platform's default events.
        let filter = super::replay::parse_filter(args.events.as_deref(), platform, false)?;
        if !lifecycle
            .steps
            .iter()
            .any(|s| filter.wants(platform, &s.event))
        {
            return Err(UserError::new(format!(
                "--events {}: none of the {} lifecycle's events ({}) would be sent",
                args.events.as_deref().unwrap_or("default"),
                lifecycle.name,
                lifecycle
                    .steps
                    .iter()
                    .map(|s| s.event.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .hint("name events of the lifecycle, or --events all")
            .into());
        }
        return Ok(Script::Lifecycle(lifecycle.clone(), filter));
    }
    let event = match &args.event {
        Some(name) => find_event(catalog, platform, name)?,
        None => platform
            .events
            .iter()
            .find(|e| e.at == Moment::End)
            .or(platform.events.first())
            .ok_or_else(|| usage(format!("{} has no events", platform.id)))?,
    };
    Ok(Script::Event(event.clone()))
}

/// `--rate`, else hookcli.toml's [load] `rate`.
fn rate(args: &LoadArgs, file: Option<&Suite>) -> Option<f64> {
    args.rate.or(file.and_then(|s| s.load.rate))
}

/// No more connections than deliveries.
fn connections(args: &LoadArgs, file: Option<&Suite>) -> usize {
    let given = args.connections.or(file.and_then(|s| s.load.connections));
    let c = given.unwrap_or(DEFAULT_CONNECTIONS) as u64;
    args.count.map_or(c, |n| c.min(n)) as usize
}

/// How long to wait for `--start-at`, said on stderr: nothing when it is already past (the
/// load starts at once, and its report's started_at says when it really did).
fn start_at(at: std::time::SystemTime) -> Duration {
    let shown = crate::text::iso_millis(at);
    match at.duration_since(std::time::SystemTime::now()) {
        Ok(wait) => {
            errln!(
                "waiting {} to start at {shown}",
                crate::duration::short(wait)
            );
            wait
        }
        Err(late) => {
            errln!(
                "note: --start-at {shown} was {} ago: starting now",
                crate::duration::short(late.duration())
            );
            Duration::ZERO
        }
    }
}

enum Event {
    Done,
    Interrupted,
    Tick,
}

/// Runs the load until the count, the deadline or Ctrl-C, redrawing the live line.
async fn drive(
    args: &LoadArgs,
    rate: Option<f64>,
    settings: Settings,
    bodies: Bodies,
    seed: Option<u64>,
) -> (Report, bool) {
    let ctrl_c = super::interrupt();
    tokio::pin!(ctrl_c);
    if let Some(at) = args.start_at {
        let wait = start_at(at);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut ctrl_c => {
                let nothing = Report {
                    tally: Default::default(),
                    elapsed: Duration::ZERO,
                    started_at: std::time::SystemTime::now(),
                };
                return (nothing, true);
            }
        }
    }
    // After the wait: -z counts from the start.
    let stop = match args.duration {
        Some(d) => Stop::Until(Instant::now() + d),
        None => Stop::count(args.count.unwrap_or(1)),
    };
    let deadline = stop.deadline();
    let mut load = Load::start(settings, bodies, stop, rate, seed);
    let visible = !args.json && std::io::stderr().is_terminal();
    let bar = out::progress(visible, args.count);
    let mut ticker = tokio::time::interval(TICK);
    let until = tokio::time::sleep_until(
        deadline
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365))
            .into(),
    );
    tokio::pin!(until);
    let mut last = (Instant::now(), 0);
    let interrupted = loop {
        let event = tokio::select! {
            _ = load.finished() => Event::Done,
            _ = &mut ctrl_c => Event::Interrupted,
            _ = &mut until => Event::Done,
            _ = ticker.tick() => Event::Tick,
        };
        match event {
            Event::Done => break false,
            Event::Interrupted => break true,
            Event::Tick => {
                let (delivered, failed, retried) = load.progress();
                let now = Instant::now();
                let rate = (delivered - last.1) as f64 / (now - last.0).as_secs_f64().max(1e-3);
                last = (now, delivered);
                out::tick(&bar, delivered, failed, retried, rate);
            }
        }
    };
    load.cancel();
    load.finished().await;
    bar.finish_and_clear();
    (load.report(), interrupted)
}

/// 0 when every delivery met the rule, 3 when every request failed to connect, else 1. A
/// delivery left waiting for its retry (the load stopped first) failed an attempt and never
/// succeeded, so it keeps the run from passing; and a run stopped by Ctrl-C or SIGTERM did
/// not do what was asked, so it is never a pass either (README "Interrupted runs").
fn exit_code(report: &Report, interrupted: bool) -> u8 {
    let t = &report.tally;
    if t.unreachable() {
        exit::UNREACHABLE
    } else if t.all_succeeded() && !interrupted {
        exit::OK
    } else {
        exit::FAILED
    }
}

/// `hookcli load merge A.json B.json ...`: the merged report on stdout, a line on stderr.
/// Exit 0 when every delivery of every run met the rule, else 1, as load's own.
fn merge(args: &MergeArgs) -> Result<u8> {
    let mut reports = Vec::new();
    for path in &args.reports {
        reports.push((path.display().to_string(), read_report(path)?));
    }
    let merged = crate::output::load::merge(&reports).map_err(|e| {
        UserError::new(format!("load merge: {e}"))
            .hint("merge the --json reports of one `hookcli load` command run on several machines")
    })?;
    outln!("{}", crate::output::json::line(&merged));
    errln!(
        "merged {} reports: {} deliveries, {} failed, {} unfinished, from {} to {}",
        merged.reports,
        merged.deliveries,
        merged.failed,
        merged.unfinished,
        merged.started_at,
        merged.ended_at
    );
    let passed = merged.failed == 0 && merged.unfinished == 0 && !merged.interrupted;
    Ok(if passed { exit::OK } else { exit::FAILED })
}

/// One `load --json` report, or a one-line error naming the file and what is wrong with it.
fn read_report(path: &Path) -> Result<crate::output::json::LoadReportJson> {
    let shown = path.display().to_string();
    let refuse = |why: String| {
        UserError::new(format!("load merge `{shown}`: {why}"))
            .hint("give the files `hookcli load --json > FILE` wrote, one per machine")
    };
    let bytes = std::fs::read(path).map_err(|e| refuse(crate::text::path_reason(path, &e)))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        refuse(format!(
            "not a `hookcli load --json` report: not JSON ({e})"
        ))
    })?;
    let looks_like_one = value.get("deliveries").is_some() && value.get("latency_ms").is_some();
    if !looks_like_one {
        return Err(refuse("not a `hookcli load --json` report".into()).into());
    }
    let mine = env!("CARGO_PKG_VERSION");
    match value.get("version").and_then(serde_json::Value::as_str) {
        Some(version) if version == mine => {}
        version => {
            let by = version.map_or(
                "a hookcli older than 0.1.0 (no version in it)".into(),
                |v| format!("hookcli {v}"),
            );
            return Err(UserError::new(format!(
                "load merge `{shown}`: written by {by}; this is hookcli {mine}"
            ))
            .hint("merge reports of one hookcli version: run the load again with this one, or merge with that one")
            .into());
        }
    }
    serde_json::from_value(value)
        .map_err(|e| refuse(format!("not a `hookcli load --json` report ({e})")).into())
}
