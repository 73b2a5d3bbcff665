//! `hookcli platforms` and `hookcli events`: what the catalog holds.

use std::path::Path;

use anyhow::Result;
use serde_json::json;
use tabled::Tabled;

use super::{load_catalog, platform_of};
use crate::catalog::{Moment, Platform};
use crate::cli::{EventsArgs, ListArgs};
use crate::error::exit;
use crate::output;

#[derive(Tabled)]
struct PlatformRow {
    id: String,
    events: usize,
    timeout: String,
    retries: String,
    success: String,
    signing: String,
}

fn assumed(platform: &Platform, field: &str, text: String) -> String {
    if platform.assumed.iter().any(|a| a == field) {
        format!("{text} (assumed)")
    } else {
        text
    }
}

pub fn platforms(args: ListArgs, overlay: Option<&Path>) -> Result<u8> {
    let catalog = load_catalog(overlay)?;
    if args.json {
        for p in &catalog.platforms {
            let line = json!({
                "id": p.id,
                "name": p.name,
                "aliases": p.aliases,
                "events": p.event_names(),
                "timeout_ms": p.policy.timeout.as_millis() as u64,
                "retries": p.policy.retries,
                "backoff_ms": p.policy.backoff.as_millis() as u64,
                "success": p.policy.success.to_string(),
                "signing": p.signing.as_ref().map(|s| s.header.clone()),
                "assumed": p.assumed,
            });
            outln!("{line}");
        }
        return Ok(exit::OK);
    }
    let rows = catalog.platforms.iter().map(|p| {
        let id = if p.aliases.is_empty() {
            p.id.clone()
        } else {
            format!("{} ({})", p.id, p.aliases.join(", "))
        };
        PlatformRow {
            id,
            events: p.events.len(),
            timeout: assumed(p, "timeout", crate::duration::short(p.policy.timeout)),
            retries: assumed(p, "retries", p.policy.retries.to_string()),
            success: p.policy.success.to_string(),
            signing: p.signing_text(),
        }
    });
    outln!("{}", output::table(rows));
    outln!(
        "{}",
        output::dim("(assumed): the platform's documents do not say; hookcli's choice, see README")
    );
    Ok(exit::OK)
}

#[derive(Tabled)]
struct EventRow {
    event: String,
    when: String,
    #[tabled(rename = "sent by default")]
    default: String,
    description: String,
}

fn moment_word(at: Moment) -> &'static str {
    match at {
        Moment::Dial => "dialing",
        Moment::Ring => "ringing",
        Moment::Start => "start",
        Moment::Turn => "each turn",
        Moment::Transfer => "transfer",
        Moment::Bridged => "transfer bridged",
        Moment::End => "end",
        Moment::Analyzed => "after the call",
    }
}

pub fn events(args: EventsArgs, overlay: Option<&Path>) -> Result<u8> {
    let catalog = load_catalog(overlay)?;
    let platform = platform_of(&catalog, &args.platform)?;
    if args.json {
        for e in &platform.events {
            outln!(
                "{}",
                json!({"platform": platform.id, "event": e.name, "at": moment_word(e.at), "default": e.default, "description": e.description})
            );
        }
        return Ok(exit::OK);
    }
    let rows = platform.events.iter().map(|e| EventRow {
        event: e.name.clone(),
        when: moment_word(e.at).into(),
        default: if e.default { "yes" } else { "only when listed" }.into(),
        description: e.description.clone(),
    });
    outln!("{}", output::table(rows));
    Ok(exit::OK)
}

#[derive(Tabled)]
struct LifecycleRow {
    lifecycle: String,
    events: String,
    description: String,
}

/// A step as `hookcli lifecycles` shows it: `transcript_updated × each turn`.
fn step_text(step: &crate::catalog::Step) -> String {
    if step.per_turn {
        format!("{} × each turn", step.event)
    } else {
        step.event.clone()
    }
}

pub fn lifecycles(args: EventsArgs, overlay: Option<&Path>) -> Result<u8> {
    let catalog = load_catalog(overlay)?;
    let platform = platform_of(&catalog, &args.platform)?;
    if args.json {
        for l in &platform.lifecycles {
            let steps: Vec<_> = l
                .steps
                .iter()
                .map(|s| json!({"event": s.event, "per_turn": s.per_turn}))
                .collect();
            outln!(
                "{}",
                json!({"platform": platform.id, "lifecycle": l.name, "description": l.description, "steps": steps})
            );
        }
        return Ok(exit::OK);
    }
    let rows = platform
        .lifecycles
        .iter()
        .enumerate()
        .map(|(i, l)| LifecycleRow {
            lifecycle: if i == 0 {
                format!("{} (default)", l.name)
            } else {
                l.name.clone()
            },
            events: l
                .steps
                .iter()
                .map(step_text)
                .collect::<Vec<_>>()
                .join(" → "),
            description: l.description.clone(),
        });
    outln!("{}", output::table(rows));
    Ok(exit::OK)
}
