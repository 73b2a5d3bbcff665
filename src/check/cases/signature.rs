//! signature/*: requests the receiver must reject because their signature is missing, wrong,
//! stale or malformed. Skipped when the platform does not sign or no key is known.

use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::context::{
    Context, Finding, REDIRECT, WRONG_ROUTE, answer, redirected, taken, wrong_route,
};
use super::{Severity, Spec, fixed};
use crate::call::RenderError;
use crate::catalog::Platform;
use crate::check::Case;
use crate::delivery::ErrorKind;
use crate::secret::Secret;
use crate::signing::now_ms;
use crate::text::status_text;

/// Ten minutes: twice the 5-minute tolerance the platforms document.
const SKEW_MS: u64 = 10 * 60 * 1000;

/// A verification case: run only with a key, on a platform that signs.
const fn verifies(
    name: &'static str,
    severity: Severity,
    about: &'static str,
    run: super::RunFn,
) -> Spec {
    Spec {
        needs_key: true,
        ..Spec::new(name, severity, about, run)
    }
}

const CASES: [Spec; 6] = [
    verifies(
        "signature/missing",
        Severity::Error,
        "a request without the signature header is rejected",
        |c, _, r| Box::pin(signature(c, Forgery::Missing, r)),
    ),
    verifies(
        "signature/wrong-key",
        Severity::Error,
        "a request signed with another key is rejected",
        |c, _, r| Box::pin(signature(c, Forgery::WrongKey, r)),
    ),
    verifies(
        "signature/tampered-body",
        Severity::Error,
        "a body changed after signing is rejected",
        |c, _, r| Box::pin(signature(c, Forgery::Tampered, r)),
    ),
    verifies(
        "signature/stale",
        Severity::Error,
        "a signature 10 minutes old is rejected",
        |c, _, r| Box::pin(signature(c, Forgery::Stale, r)),
    ),
    verifies(
        "signature/future",
        Severity::Warning,
        "a signature 10 minutes in the future is rejected",
        |c, _, r| Box::pin(signature(c, Forgery::Future, r)),
    ),
    verifies(
        "signature/malformed",
        Severity::Error,
        "headers `garbage`, `v=1,d=zz` and a 16 KB value are rejected",
        |c, _, r| Box::pin(signature_malformed(c, r)),
    ),
];

pub(super) fn cases(_: &Platform) -> Vec<Case> {
    fixed(&CASES)
}

/// How a signature case's request is wrong.
#[derive(Clone, Copy)]
enum Forgery {
    Missing,
    WrongKey,
    Tampered,
    Stale,
    Future,
}

async fn signature(
    context: &Context,
    forgery: Forgery,
    rng: &mut StdRng,
) -> Result<Finding, RenderError> {
    let value = context.render_sample(rng)?;
    let body = serde_json::to_vec(&value).expect("a JSON value serializes");
    let key = context
        .config
        .key
        .clone()
        .expect("signature cases are skipped without a key");
    let header = &context.platform().signing.as_ref().expect("checked").header;
    let now = now_ms();
    let not_verifying = "the receiver does not verify signatures";
    let (request, level, what, means) = match forgery {
        Forgery::Missing => (
            context.with_signature(body, None),
            Severity::Error,
            format!("a request without {header}"),
            not_verifying.to_string(),
        ),
        Forgery::WrongKey => {
            let signature = context.signature(&Secret::generate(), &body, now);
            (
                context.with_signature(body, signature.as_deref()),
                Severity::Error,
                "a request signed with another key".to_string(),
                not_verifying.to_string(),
            )
        }
        Forgery::Tampered => {
            let signature = context.signature(&key, &body, now);
            let mut changed = value.clone();
            if let Value::Object(map) = &mut changed {
                map.insert("tampered".into(), json!(true));
            }
            let changed = serde_json::to_vec(&changed).expect("a JSON value serializes");
            (
                context.with_signature(changed, signature.as_deref()),
                Severity::Error,
                "a body changed after signing".to_string(),
                "the receiver does not check the digest against the body".to_string(),
            )
        }
        Forgery::Stale => {
            let signature = context.signature(&key, &body, now - SKEW_MS);
            (
                context.with_signature(body, signature.as_deref()),
                Severity::Error,
                "a signature 10 minutes old".to_string(),
                "the receiver does not check the signature's time, so old requests can be replayed"
                    .to_string(),
            )
        }
        Forgery::Future => {
            let signature = context.signature(&key, &body, now + SKEW_MS);
            (
                context.with_signature(body, signature.as_deref()),
                Severity::Warning,
                "a signature 10 minutes in the future".to_string(),
                "the receiver does not bound the signature's time".to_string(),
            )
        }
    };
    let mut finding = Finding::default();
    let attempt = context.once(&request, &mut finding).await;
    context.judge_rejected(&attempt, &mut finding, level, &what, &means);
    Ok(finding)
}

async fn signature_malformed(context: &Context, rng: &mut StdRng) -> Result<Finding, RenderError> {
    let body = serde_json::to_vec(&context.render_sample(rng)?).expect("a JSON value serializes");
    let long = format!("v={},d={}", now_ms(), "a".repeat(16 * 1024));
    let mut finding = Finding::default();
    let mut accepted = Vec::new();
    let mut misrouted = Vec::new();
    let mut redirect = None;
    for (value, shown) in [
        ("garbage", "`garbage`"),
        ("v=1,d=zz", "`v=1,d=zz`"),
        (long.as_str(), "a 16 KB value"),
    ] {
        let request = context.with_signature(body.clone(), Some(value));
        let attempt = context.once(&request, &mut finding).await;
        if taken(&attempt) {
            accepted.push(format!("{shown} ({})", answer(&attempt)));
        } else if let (Some(status), None) = (attempt.status, attempt.error)
            && wrong_route(status)
        {
            misrouted.push((shown, status_text(status)));
        } else if attempt.error == Some(ErrorKind::Redirect) {
            redirect = Some(redirected(&attempt));
        } else {
            let what = format!("the signature header {shown}");
            context.judge_rejected(&attempt, &mut finding, Severity::Error, &what, "");
        }
    }
    if !misrouted.is_empty() {
        // One sentence for all: a wrong route answers every value the same way.
        let (shown, mut statuses): (Vec<&str>, Vec<String>) = misrouted.into_iter().unzip();
        statuses.dedup();
        finding.fail(
            Severity::Error,
            format!(
                "malformed signature headers ({}) were answered {}, which is not a rejection: \
                 {WRONG_ROUTE}",
                shown.join(", "),
                statuses.join(" or ")
            ),
        );
    }
    if let Some(redirect) = redirect {
        // One sentence for all: a redirect answers every value the same way.
        finding.fail(
            Severity::Error,
            format!(
                "malformed signature headers were answered {redirect}, which is not a \
                 rejection: {REDIRECT}"
            ),
        );
    }
    if !accepted.is_empty() {
        // One sentence for all three: they fail for the same reason.
        finding.fail(
            Severity::Error,
            format!(
                "malformed signature headers were accepted: {}: the receiver does not verify signatures",
                accepted.join(", ")
            ),
        );
    }
    Ok(finding)
}
