//! `hookcli load`: many fresh, signed deliveries over kept-alive connections, and the report.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::send::{platform_headers, signer_for};
use super::{choose_key, find_event, find_lifecycle, load_catalog, parse_url, platform_of};
use crate::catalog::{Catalog, Moment, Platform};
use crate::cli::{DeliveryArgs, LoadArgs};
use crate::error::{UserError, exit, usage};
use crate::load::{Bodies, Load, Report, Script, Settings, Stop};
use crate::output::load::{self as out, LoadRun};
use crate::policy::PolicyOverrides;
use crate::receiver::{Receiver, ReceiverConfig};

/// How often the live display is redrawn.
const TICK: Duration = Duration::from_millis(250);

pub fn run(args: LoadArgs, overlay: Option<&Path>) -> Result<u8> {
    amount(&args)?;
    let seed = crate::call::seed()?;
    let catalog = Arc::new(load_catalog(overlay)?);
    let platform = platform_of(&catalog, &args.platform)?.clone();
    let script = script(&args, &catalog, &platform)?;
    let url = args.to.as_deref().map(parse_url).transpose()?;
    let delivery = DeliveryArgs {
        headers: args.headers.clone(),
        ..DeliveryArgs::default()
    };
    let headers = platform_headers(&platform, &delivery)?;
    let policy = platform.policy.clone().with_overrides(&PolicyOverrides {
        timeout: args.timeout,
        // A load test measures the receiver; retries only when asked for.
        retries: Some(args.retries.unwrap_or(0)),
        backoff: args.backoff,
        success: args.expect.clone(),
    });
    let key = choose_key(args.key.given().as_deref(), &platform, url.is_none());
    super::runtime()?.block_on(async move {
        let receiver = match &url {
            Some(_) => None,
            None => {
                let mut config = ReceiverConfig::local(platform.clone(), key.clone());
                // Answer what the rule wants (salpre requires exactly 200, not the usual 204).
                if let Some(status) = [204, 200, 201, 202]
                    .into_iter()
                    .find(|s| policy.success.accepts(*s))
                {
                    config.faults.status = status;
                }
                // No channel: the receiver keeps nothing per request.
                let receiver = Receiver::start(config, None).await?;
                errln!(
                    "no --to given: loading hookcli's built-in receiver at {}",
                    receiver.url
                );
                Some(receiver)
            }
        };
        let url = match (url, &receiver) {
            (Some(url), _) => url,
            (None, Some(r)) => reqwest::Url::parse(&r.url)?,
            (None, None) => unreachable!("a receiver is started when there is no URL"),
        };
        let settings = Settings {
            url: url.clone(),
            headers,
            signer: signer_for(&platform, key.as_ref()),
            policy: policy.clone(),
            platform_timeout: platform.policy.timeout,
            connections: connections(&args),
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
        let (report, interrupted) = drive(&args, settings, bodies, seed).await;
        if let Some(receiver) = receiver {
            receiver.stop().await;
        }
        let url_text = super::shown_url(&url);
        let unresolved = match report.tally.unreachable() {
            true => crate::delivery::unresolved_host(&url).await,
            false => None,
        };
        let run = LoadRun {
            unresolved: unresolved.as_deref(),
            platform: &platform.id,
            event: matches!(script, Script::Event(_)).then(|| script.name()),
            lifecycle: matches!(script, Script::Lifecycle(_)).then(|| script.name()),
            url: &url_text,
            connections: connections(&args) as u32,
            count: args.count,
            duration: args.duration,
            rate: args.rate,
            timeout: policy.timeout,
            retries: policy.retries,
            rule: &policy.success,
            platform_timeout: platform.policy.timeout,
            interrupted,
        };
        if args.json {
            outln!("{}", run.json(&report));
        } else {
            out!("{}", run.text(&report));
        }
        let code = exit_code(&report);
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
        return Ok(Script::Lifecycle(lifecycle.clone()));
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

/// No more connections than deliveries.
fn connections(args: &LoadArgs) -> usize {
    let c = args.connections as u64;
    args.count.map_or(c, |n| c.min(n)) as usize
}

enum Event {
    Done,
    Interrupted,
    Tick,
}

/// Runs the load until the count, the deadline or Ctrl-C, redrawing the live line.
async fn drive(
    args: &LoadArgs,
    settings: Settings,
    bodies: Bodies,
    seed: Option<u64>,
) -> (Report, bool) {
    let stop = match args.duration {
        Some(d) => Stop::Until(Instant::now() + d),
        None => Stop::count(args.count.unwrap_or(1)),
    };
    let deadline = stop.deadline();
    let ctrl_c = super::interrupt();
    tokio::pin!(ctrl_c);
    let mut load = Load::start(settings, bodies, stop, args.rate, seed);
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
/// succeeded, so it keeps the run from passing: an interrupted run is not a success.
fn exit_code(report: &Report) -> u8 {
    let t = &report.tally;
    if t.all_succeeded() {
        exit::OK
    } else if t.unreachable() {
        exit::UNREACHABLE
    } else {
        exit::FAILED
    }
}
