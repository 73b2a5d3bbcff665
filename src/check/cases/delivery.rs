//! delivery/* and http/*: how the platform delivers, not what it sends: the same event again
//! (as a retry), a call's events out of order, a Content-Type with a charset.

use rand::rngs::StdRng;
use reqwest::header::{CONTENT_TYPE, HeaderValue};

use std::time::Instant;

use serde_json::Value;

use super::context::{Context, Finding, lifecycle_bodies, printable};
use super::{Severity, Spec, fixed};
use crate::call::RenderError;
use crate::catalog::Platform;
use crate::check::Case;
use crate::signing::now_ms;

const CASES: [Spec; 4] = [
    Spec::new(
        "delivery/duplicate",
        Severity::Error,
        "the same event twice, as a retry sends it, is accepted both times",
        |c, _, r| Box::pin(delivery_duplicate(c, r)),
    ),
    Spec::new(
        "delivery/concurrent-duplicate",
        Severity::Error,
        "the same event twice at once (same bytes and signature, both in flight), as a retry after a timeout meets the first, is accepted both times; handled once only as far as the answers show",
        |c, _, r| Box::pin(delivery_concurrent_duplicate(c, r)),
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
        "the platform's Content-Type with `; charset=utf-8` added (application/json; charset=utf-8) is accepted",
        |c, _, r| Box::pin(http_charset(c, r)),
    ),
];

pub(super) fn cases(_: &Platform) -> Vec<Case> {
    fixed(&CASES)
}

async fn delivery_duplicate(context: &Context, rng: &mut StdRng) -> Result<Finding, RenderError> {
    let body = context.platform().encode(&context.render_sample(rng)?);
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

async fn delivery_concurrent_duplicate(
    context: &Context,
    rng: &mut StdRng,
) -> Result<Finding, RenderError> {
    let body = context.platform().encode(&context.render_sample(rng)?);
    let event = &context.sample_event().name;
    // One signature for both: a retry of the same request, not two signings of one body.
    let request = match (&context.config.key, &context.platform().signing) {
        (Some(key), Some(_)) => {
            let signature = context.signature(key, &body, now_ms());
            context.with_headers(body, &signature)
        }
        _ => context.signed(body),
    };
    let policy = &context.config.policy;
    let started = Instant::now();
    let (first, second) = tokio::join!(
        context.send(&request, policy),
        context.send(&request, policy)
    );
    let mut finding = Finding::default();
    let mut accepted = true;
    for (delivery, which) in [(&first, "one"), (&second, "the other")] {
        finding.record_all(&delivery.attempts, started);
        let what = format!("{which} of two identical {event}s sent at once: ");
        accepted &= context.judge_accepted(delivery, policy, &mut finding, &what);
    }
    if !accepted {
        finding.reasons.push(
            "a platform's retry can arrive while the first request is still being handled: \
             answer the copy with a 2xx and do nothing"
                .into(),
        );
    } else if let Some(sign) =
        double_handling(&first.last().response_body, &second.last().response_body)
    {
        finding.fail(Severity::Warning, sign);
    }
    Ok(finding)
}

/// What in two answers to the same event shows it was handled twice: the same JSON fields,
/// with a different id in each (two records made). Answers that say more apart (one marked a
/// duplicate) or say nothing (empty) show nothing.
fn double_handling(first: &[u8], second: &[u8]) -> Option<String> {
    let (Ok(Value::Object(a)), Ok(Value::Object(b))) = (
        serde_json::from_slice::<Value>(first),
        serde_json::from_slice::<Value>(second),
    ) else {
        return None;
    };
    if !a.keys().eq(b.keys()) {
        return None;
    }
    let (key, _) = a
        .iter()
        .find(|(key, value)| id_like(key) && b.get(*key) != Some(*value))?;
    let shown = |bytes: &[u8]| {
        printable(
            &String::from_utf8_lossy(bytes)
                .chars()
                .take(80)
                .collect::<String>(),
        )
    };
    Some(format!(
        "both copies were accepted, and the answers give each its own `{key}` ({} and {}): \
         the event was handled twice; a check-then-insert guard lets both copies through when \
         they arrive together: make the insert itself refuse the second (a unique key on the \
         call id and event)",
        shown(first),
        shown(second)
    ))
}

/// A field that names a record: `id`, `event_id`, `recordId`, `ID`.
fn id_like(key: &str) -> bool {
    key.eq_ignore_ascii_case("id")
        || key.to_ascii_lowercase().ends_with("_id")
        || (key.len() > 2 && key.ends_with("Id"))
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
    let body = context.platform().encode(&context.render_sample(rng)?);
    let mut request = context.signed(body);
    // The platform's own type (a form for twilio) with the charset some frameworks add.
    let with_charset = format!(
        "{}; charset=utf-8",
        context.platform().format.content_type()
    );
    if let Ok(value) = HeaderValue::from_str(&with_charset) {
        request.headers.insert(CONTENT_TYPE, value);
    }
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

#[cfg(test)]
mod tests {
    use super::double_handling;

    #[test]
    fn two_answers_show_double_handling_only_by_a_different_id_in_the_same_fields() {
        let twice = double_handling(br#"{"id":1,"ok":true}"#, br#"{"id":2,"ok":true}"#);
        assert!(twice.is_some_and(|s| s.contains("`id`")));
        let camel = double_handling(br#"{"recordId":"a"}"#, br#"{"recordId":"b"}"#);
        assert!(camel.is_some());
        // Told apart (one marked a duplicate), the same id, a time that differs, or nothing.
        for (a, b) in [
            (
                &br#"{"id":1,"status":"created"}"#[..],
                &br#"{"id":1,"duplicate":true}"#[..],
            ),
            (br#"{"id":1}"#, br#"{"id":1}"#),
            (br#"{"at":"12:00:01"}"#, br#"{"at":"12:00:02"}"#),
            (b"", b""),
            (b"ok", b"ok again"),
        ] {
            assert_eq!(double_handling(a, b), None);
        }
    }
}
