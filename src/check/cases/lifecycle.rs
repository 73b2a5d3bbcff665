//! The platform's own events and lifecycles: `delivers/<event>` for each event and
//! `lifecycle/<name>` for each lifecycle. A new platform's cases come from its catalog folder.

use rand::Rng;
use rand::rngs::StdRng;

use super::context::{Context, Finding, lifecycle_bodies};
use super::{Runner, Severity};
use crate::call::{RenderError, render_event};
use crate::catalog::Platform;
use crate::check::Case;

pub(super) fn cases(platform: &Platform) -> Vec<Case> {
    // A request whose answer the platform reads goes to its own URL (an inbound webhook, a
    // function), not the webhook URL: answers/* check those.
    let answered = |name: &str| platform.event(name).is_some_and(|e| e.answer.is_some());
    let webhooks = platform.events.iter().filter(|e| !answered(&e.name));
    let events = webhooks.map(|event| Case {
        name: format!("delivers/{}", event.name),
        severity: Severity::Error,
        about: format!(
            "a validly signed {} meets the success rule within the timeout",
            event.name
        ),
        runner: Runner::for_subject(&event.name, |c, event, r| Box::pin(delivers(c, event, r))),
    });
    let lifecycles = platform.lifecycles.iter();
    let lifecycles = lifecycles.filter(|l| !l.steps.iter().any(|s| answered(&s.event)));
    let lifecycles = lifecycles.map(|l| Case {
        name: format!("lifecycle/{}", l.name),
        severity: Severity::Error,
        about: format!(
            "every event of the `{}` lifecycle, in order, is accepted",
            l.name
        ),
        runner: Runner::for_subject(&l.name, |c, name, r| Box::pin(lifecycle(c, name, r))),
    });
    events.chain(lifecycles).collect()
}

async fn delivers(
    context: &Context,
    event: &str,
    rng: &mut StdRng,
) -> Result<Finding, RenderError> {
    let platform = context.platform();
    let spec = platform
        .event(event)
        .expect("the case list comes from the platform's events");
    // Its own seed, so a seeded `hookcli send` renders the same body again.
    let seed: u64 = rng.r#gen();
    let mut seeded = crate::call::rng_from(Some(seed));
    let body = platform.encode(&render_event(
        &context.config.catalog,
        platform,
        spec,
        &mut seeded,
    )?);
    let mut finding = Finding::default();
    let policy = &context.config.policy;
    let repro = context.send_line(event, seed, &[]);
    context
        .delivery_reproduced(&context.signed(body), policy, &mut finding, "", Some(repro))
        .await;
    Ok(finding)
}

async fn lifecycle(
    context: &Context,
    name: &str,
    rng: &mut StdRng,
) -> Result<Finding, RenderError> {
    let lifecycle = context
        .platform()
        .lifecycle(name)
        .expect("the case list comes from the platform's lifecycles");
    let bodies = lifecycle_bodies(context, lifecycle, true, rng)?;
    let mut finding = Finding::default();
    let total = bodies.len();
    for (i, (event, body)) in bodies.into_iter().enumerate() {
        let what = format!("{event} (step {} of {total}): ", i + 1);
        // The first failure is enough to report; the rest would only repeat it.
        if !context
            .deliver(
                &context.signed(body),
                &context.config.policy,
                &mut finding,
                &what,
            )
            .await
        {
            break;
        }
    }
    Ok(finding)
}
