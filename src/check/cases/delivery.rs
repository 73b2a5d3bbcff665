//! delivery/* and http/*: how the platform delivers, not what it sends: the same event again
//! (as a retry), a call's events out of order, a Content-Type with a charset.

use rand::rngs::StdRng;
use reqwest::header::{CONTENT_TYPE, HeaderValue};

use super::context::{Context, Finding, lifecycle_bodies};
use super::{Severity, Spec, fixed};
use crate::call::RenderError;
use crate::catalog::Platform;
use crate::check::Case;

const CASES: [Spec; 3] = [
    Spec::new(
        "delivery/duplicate",
        Severity::Error,
        "the same event twice, as a retry sends it, is accepted both times",
        |c, _, r| Box::pin(delivery_duplicate(c, r)),
    ),
    Spec::new(
        "delivery/out-of-order",
        Severity::Error,
        "a call's events in reverse order are all accepted",
        |c, _, r| Box::pin(delivery_out_of_order(c, r)),
    ),
    Spec::new(
        "http/charset",
        Severity::Error,
        "Content-Type: application/json; charset=utf-8 is accepted",
        |c, _, r| Box::pin(http_charset(c, r)),
    ),
];

pub(super) fn cases(_: &Platform) -> Vec<Case> {
    fixed(&CASES)
}

async fn delivery_duplicate(context: &Context, rng: &mut StdRng) -> Result<Finding, RenderError> {
    let body = serde_json::to_vec(&context.render_sample(rng)?).expect("a JSON value serializes");
    let event = &context.sample_event().name;
    let mut finding = Finding::default();
    let policy = &context.config.policy;
    let first = format!("the first {event}: ");
    if context
        .deliver(&context.signed(body.clone()), policy, &mut finding, &first)
        .await
    {
        let again = format!("the same {event} again (as a retry sends it): ");
        if !context
            .deliver(&context.signed(body), policy, &mut finding, &again)
            .await
        {
            finding
                .reasons
                .push("answer a duplicate with a 2xx and do nothing".into());
        }
    }
    Ok(finding)
}

async fn delivery_out_of_order(
    context: &Context,
    rng: &mut StdRng,
) -> Result<Finding, RenderError> {
    let platform = context.platform();
    let Some(lifecycle) = context.main_lifecycle() else {
        return Ok(Finding::skipped(format!(
            "{} has no lifecycles",
            platform.id
        )));
    };
    let mut bodies = lifecycle_bodies(context, lifecycle, false, rng)?;
    if bodies.len() < 2 {
        return Ok(Finding::skipped(format!(
            "{} sends one event per call",
            platform.id
        )));
    }
    bodies.reverse();
    let mut finding = Finding::default();
    let total = bodies.len();
    for (i, (event, body)) in bodies.into_iter().enumerate() {
        let what = format!("{event} (sent {} of {total}, reversed): ", i + 1);
        context
            .deliver(
                &context.signed(body),
                &context.config.policy,
                &mut finding,
                &what,
            )
            .await;
    }
    Ok(finding)
}

async fn http_charset(context: &Context, rng: &mut StdRng) -> Result<Finding, RenderError> {
    let body = serde_json::to_vec(&context.render_sample(rng)?).expect("a JSON value serializes");
    let mut request = context.signed(body);
    request.headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    let mut finding = Finding::default();
    context
        .deliver(
            &request,
            &context.config.policy,
            &mut finding,
            "with a charset: ",
        )
        .await;
    Ok(finding)
}
