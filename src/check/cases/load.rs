//! load/*: many calls at once, as a busy hour sends them. Runs alone, after the other cases,
//! so its load does not slow their answers.

use std::time::Instant;

use rand::rngs::StdRng;

use super::context::{Context, Finding, answer, lifecycle_bodies, tally};
use super::{Severity, Spec, fixed};
use crate::call::RenderError;
use crate::catalog::Platform;
use crate::check::Case;
use crate::delivery;

const CASES: [Spec; 1] = [Spec {
    alone: true,
    ..Spec::new(
        "load/burst",
        Severity::Error,
        "many calls' events at once (--burst) are all accepted within the timeout",
        |c, _, r| Box::pin(load_burst(c, r)),
    )
}];

pub(super) fn cases(_: &Platform) -> Vec<Case> {
    fixed(&CASES)
}

async fn load_burst(context: &Context, rng: &mut StdRng) -> Result<Finding, RenderError> {
    let mut bodies = Vec::new();
    for _ in 0..context.config.burst {
        match context.main_lifecycle() {
            Some(lifecycle) => bodies.extend(lifecycle_bodies(context, lifecycle, false, rng)?),
            None => bodies.push((
                context.sample_event().name.clone(),
                context.platform().encode(&context.render_sample(rng)?),
            )),
        }
    }
    let mut finding = Finding::default();
    if context.config.dry_run {
        for (_, body) in bodies {
            context
                .send(&context.signed(body), &context.config.policy)
                .await;
        }
        return Ok(finding);
    }
    let mut set = tokio::task::JoinSet::new();
    for (_, body) in bodies {
        let request = context.signed(body);
        let client = context.client.clone();
        let policy = context.config.policy.clone();
        set.spawn(async move {
            let started = Instant::now();
            let attempt = delivery::attempt(&client, &request, &policy, 1).await;
            (attempt, started, request)
        });
    }
    let mut failures: Vec<String> = Vec::new();
    while let Some(joined) = set.join_next().await {
        // A request task that panicked (a bug) counts as not accepted; stopping at it would
        // drop the requests still running from the count.
        let Ok((attempt, started, request)) = joined else {
            finding.requests += 1;
            failures.push("hookcli failed inside the request (a bug)".into());
            continue;
        };
        context.log(&request, std::slice::from_ref(&attempt));
        finding.record(&attempt, started);
        if !attempt.accepted {
            failures.push(answer(&attempt));
        }
    }
    if !failures.is_empty() {
        finding.fail(
            Severity::Error,
            format!(
                "{} of {} requests sent at once were not accepted: {}",
                failures.len(),
                finding.requests,
                tally(&failures)
            ),
        );
    }
    Ok(finding)
}
