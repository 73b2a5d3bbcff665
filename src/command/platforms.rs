//! `hookcli platforms` and `hookcli events`: what the catalog holds.

use std::path::Path;

use anyhow::Result;
use tabled::Tabled;

use super::{load_catalog, platform_of};
use crate::catalog::Platform;
use crate::cli::{EventsArgs, ListArgs};
use crate::error::exit;
use crate::output;
use crate::output::json::{self, moment_word};

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
            outln!("{}", json::line(&json::PlatformJson::of(p)));
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

pub fn events(args: EventsArgs, overlay: Option<&Path>) -> Result<u8> {
    let catalog = load_catalog(overlay)?;
    let platform = platform_of(&catalog, &args.platform)?;
    if args.json {
        for e in &platform.events {
            let event = json::EventJson {
                platform: &platform.id,
                event: &e.name,
                at: moment_word(e.at),
                default: e.default,
                description: &e.description,
            };
            outln!("{}", json::line(&event));
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
            outln!("{}", json::line(&json::LifecycleJson::of(platform, l)));
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
