//! signature/*: requests the receiver must reject because their signature is missing, wrong,
//! stale or malformed, and, for schemes that allow them, variations it must accept. Every case
//! follows from the scheme's declared properties (signing::Properties): its time and
//! tolerance, whether it covers the body and the URL, key rotation, the key's format. So a
//! correct receiver of any scheme never fails one, and no platform is named here. Skipped when
//! the platform does not sign or no key is known.

use std::time::Duration;

use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::context::{
    Context, Finding, REDIRECT, WRONG_ROUTE, answer, redirected, taken, wrong_route,
};
use super::{Severity, Spec};
use crate::call::RenderError;
use crate::catalog::{BodyFormat, Platform};
use crate::check::Case;
use crate::delivery::ErrorKind;
use crate::signing::{KeyFormat, Properties, Rules, Tolerance, now_ms};
use crate::text::status_text;

/// Beyond the scheme's tolerance, so a receiver a little generous is not failed: a request
/// this much further out than the platform allows must be refused.
const MARGIN: Duration = Duration::from_secs(5 * 60);

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

const MISSING: Spec = verifies(
    "signature/missing",
    Severity::Error,
    "a request without the signature headers is rejected",
    |c, _, r| Box::pin(signature(c, Forgery::Missing, r)),
);
const WRONG_KEY: Spec = verifies(
    "signature/wrong-key",
    Severity::Error,
    "a request signed with another key is rejected",
    |c, _, r| Box::pin(signature(c, Forgery::WrongKey, r)),
);
const TAMPERED: Spec = verifies(
    "signature/tampered-body",
    Severity::Error,
    "a body changed after signing is rejected (skipped when the scheme does not sign the body)",
    |c, _, r| Box::pin(signature(c, Forgery::Tampered, r)),
);
const STALE: Spec = verifies(
    "signature/stale",
    Severity::Error,
    "a signature older than the scheme's tolerance is rejected (skipped without a timestamp)",
    |c, _, r| Box::pin(signature(c, Forgery::Stale, r)),
);
const FUTURE: Spec = verifies(
    "signature/future",
    Severity::Warning,
    "a signature further in the future than the tolerance is rejected (skipped when the \
     platform's verifiers do not bound the future)",
    |c, _, r| Box::pin(signature(c, Forgery::Future, r)),
);
const MALFORMED: Spec = verifies(
    "signature/malformed",
    Severity::Error,
    "a signature header of garbage, of the scheme's shape without a digest, and of 16 KB is rejected",
    |c, _, r| Box::pin(signature_malformed(c, r)),
);
/// Schemes that sign the URL (twilio).
const URL_QUERY: Spec = verifies(
    "signature/url-query",
    Severity::Error,
    "a request to the URL with a query added, signed over that full URL, is accepted",
    |c, _, r| Box::pin(url_query(c, r)),
);
const WRONG_URL: Spec = verifies(
    "signature/wrong-url",
    Severity::Error,
    "a request signed over another URL is rejected",
    |c, _, r| Box::pin(signature(c, Forgery::WrongUrl, r)),
);
/// Form bodies under a scheme that signs the parameters sorted.
const FORM_ORDER: Spec = verifies(
    "signature/form-order",
    Severity::Error,
    "the fields in another order, with a repeated key, signed as the platform signs them, are accepted",
    |c, _, r| Box::pin(form_order(c, r)),
);
/// Schemes that allow several signatures (standard-webhooks).
const ROTATED: Spec = verifies(
    "signature/rotated-key",
    Severity::Error,
    "a request with two signatures, an old key's and the right one, is accepted",
    |c, _, r| Box::pin(rotated(c, r)),
);
/// Keys written as whsec_ + base64.
const WHSEC_RAW: Spec = verifies(
    "signature/whsec-raw",
    Severity::Error,
    "a request signed with the whsec_ key string itself, not its decoded bytes, is rejected",
    |c, _, r| Box::pin(signature(c, Forgery::WhsecRaw, r)),
);

/// The cases for the platform's scheme: the common six, then those its properties call for.
pub(super) fn cases(platform: &Platform) -> Vec<Case> {
    let mut specs = vec![&MISSING, &WRONG_KEY, &TAMPERED, &STALE, &FUTURE, &MALFORMED];
    if let Some(signing) = &platform.signing {
        let properties = signing.rules.properties();
        if properties.covers_url {
            specs.extend([&URL_QUERY, &WRONG_URL]);
            if platform.format == BodyFormat::Form {
                specs.push(&FORM_ORDER);
            }
        }
        if properties.rotation {
            specs.push(&ROTATED);
        }
        if signing.rules.key_format == KeyFormat::Whsec {
            specs.push(&WHSEC_RAW);
        }
    }
    let tolerance = platform
        .signing
        .as_ref()
        .and_then(|s| s.rules.properties().tolerance);
    specs
        .into_iter()
        .map(|spec| {
            let mut case = spec.case();
            // The times the case will use, from this platform's tolerance.
            match (spec.name, tolerance) {
                ("signature/stale", Some(t)) => {
                    case.about = format!(
                        "a signature {} old (the tolerance, {}, plus {}) is rejected",
                        short(t.past + MARGIN),
                        short(t.past),
                        short(MARGIN)
                    );
                }
                (
                    "signature/future",
                    Some(Tolerance {
                        future: Some(f), ..
                    }),
                ) => {
                    case.about = format!(
                        "a signature {} in the future (the tolerance, {}, plus {}) is rejected",
                        short(f + MARGIN),
                        short(f),
                        short(MARGIN)
                    );
                }
                _ => {}
            }
            case
        })
        .collect()
}

/// How a signature case's request is wrong.
#[derive(Clone, Copy)]
enum Forgery {
    Missing,
    WrongKey,
    Tampered,
    Stale,
    Future,
    WrongUrl,
    WhsecRaw,
}

fn rules(context: &Context) -> &Rules {
    &context
        .platform()
        .signing
        .as_ref()
        .expect("signature cases are skipped when the platform does not sign")
        .rules
}

fn properties(context: &Context) -> Properties {
    rules(context).properties()
}

/// The sample event as the platform sends it: its value and its bytes.
fn sample(context: &Context, rng: &mut StdRng) -> Result<(Value, Vec<u8>), RenderError> {
    let value = context.render_sample(rng)?;
    let body = context.platform().encode(&value);
    Ok((value, body))
}

fn key(context: &Context) -> crate::secret::Secret {
    context
        .config
        .key
        .clone()
        .expect("signature cases are skipped without a key")
}

/// Why a time case does not apply to this scheme, if it does not.
fn time_skip(properties: &Properties, future: bool) -> Option<String> {
    match properties.tolerance {
        None => Some("the scheme carries no timestamp".into()),
        Some(Tolerance { future: None, .. }) if future => {
            Some("the platform's verifiers do not bound a time in the future".into())
        }
        _ => None,
    }
}

fn short(d: Duration) -> String {
    crate::duration::short(d)
}

async fn signature(
    context: &Context,
    forgery: Forgery,
    rng: &mut StdRng,
) -> Result<Finding, RenderError> {
    let properties = properties(context);
    let skip = match forgery {
        Forgery::Tampered if !properties.covers_body => {
            Some("the scheme does not sign the body".to_string())
        }
        Forgery::Stale => time_skip(&properties, false),
        Forgery::Future => time_skip(&properties, true),
        _ => None,
    };
    if let Some(reason) = skip {
        return Ok(Finding::skipped(reason));
    }
    let tolerance = properties
        .tolerance
        .unwrap_or(Tolerance::both(Duration::ZERO));
    let (value, body) = sample(context, rng)?;
    let key = key(context);
    let rules = rules(context);
    let headers = properties.headers.join(", ");
    let now = now_ms();
    let not_verifying = "the receiver does not verify signatures";
    let (request, level, what, means) = match forgery {
        Forgery::Missing => (
            context.with_headers(body, &[]),
            Severity::Error,
            format!("a request without {headers}"),
            not_verifying.to_string(),
        ),
        Forgery::WrongKey => {
            let signature = context.signature(&rules.generate_key(), &body, now);
            (
                context.with_headers(body, &signature),
                Severity::Error,
                "a request signed with another key".to_string(),
                not_verifying.to_string(),
            )
        }
        Forgery::Tampered => {
            let signature = context.signature(&key, &body, now);
            let mut changed = value.clone();
            if let Value::Object(map) = &mut changed {
                map.insert("tampered".into(), json!("yes"));
            }
            let changed = context.platform().encode(&changed);
            (
                context.with_headers(changed, &signature),
                Severity::Error,
                "a body changed after signing".to_string(),
                "the receiver does not check the digest against the body".to_string(),
            )
        }
        Forgery::Stale => {
            let age = tolerance.past + MARGIN;
            let signature = context.signature(&key, &body, now - age.as_millis() as u64);
            (
                context.with_headers(body, &signature),
                Severity::Error,
                format!(
                    "a signature {} old (the platform allows {})",
                    short(age),
                    short(tolerance.past)
                ),
                "the receiver does not check the signature's time, so old requests can be replayed"
                    .to_string(),
            )
        }
        Forgery::Future => {
            let ahead = tolerance.future.unwrap_or_default() + MARGIN;
            let signature = context.signature(&key, &body, now + ahead.as_millis() as u64);
            (
                context.with_headers(body, &signature),
                Severity::Warning,
                format!("a signature {} in the future", short(ahead)),
                "the receiver does not bound the signature's time".to_string(),
            )
        }
        Forgery::WrongUrl => {
            let mut elsewhere = context.config.url.clone();
            elsewhere.set_path(&format!(
                "{}-elsewhere",
                elsewhere.path().trim_end_matches('/')
            ));
            let signature = context.signature_for(elsewhere.as_str(), &key, &body, now);
            (
                context.with_headers(body, &signature),
                Severity::Error,
                format!("a request signed over {elsewhere}"),
                "the receiver does not check the URL the signature covers".to_string(),
            )
        }
        Forgery::WhsecRaw => {
            let raw = Rules {
                key_format: KeyFormat::Text,
                ..rules.clone()
            };
            let signature = raw
                .sign(&key, context.config.url.as_str(), &body, now)
                .unwrap_or_default();
            (
                context.with_headers(body, &signature),
                Severity::Error,
                "a request signed with the whsec_ string as the raw key".to_string(),
                "the receiver uses the whsec_ key string as the HMAC key; strip whsec_ and \
                 base64-decode the rest"
                    .to_string(),
            )
        }
    };
    let mut finding = Finding::default();
    let attempt = context.once(&request, &mut finding).await;
    context.judge_rejected(&attempt, &mut finding, level, &what, &means);
    Ok(finding)
}

/// The signature headers with the main one replaced by `value`.
fn replacing_main(
    rules: &Rules,
    mut signed: Vec<(String, String)>,
    value: &str,
) -> Vec<(String, String)> {
    match signed.iter_mut().find(|(name, _)| *name == rules.header) {
        Some(main) => main.1 = value.to_string(),
        None => signed.push((rules.header.clone(), value.to_string())),
    }
    signed
}

async fn signature_malformed(context: &Context, rng: &mut StdRng) -> Result<Finding, RenderError> {
    let (_, body) = sample(context, rng)?;
    let rules = rules(context);
    let now = now_ms();
    // The other headers of the scheme (id, timestamp) stay valid: only the signature is bad.
    let signed = context.signature(&key(context), &body, now);
    let mut finding = Finding::default();
    let mut accepted = Vec::new();
    let mut misrouted = Vec::new();
    let mut redirect = None;
    for (value, shown) in rules.malformed_samples(now) {
        let headers = replacing_main(rules, signed.clone(), &value);
        let request = context.with_headers(body.clone(), &headers);
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
        let (shown, mut statuses): (Vec<String>, Vec<String>) = misrouted.into_iter().unzip();
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

/// The receiver's URL with a query parameter added: a scheme that signs the URL signs the
/// query too, so a receiver that rebuilds the URL without it refuses the request.
async fn url_query(context: &Context, rng: &mut StdRng) -> Result<Finding, RenderError> {
    let (_, body) = sample(context, rng)?;
    let mut url = context.config.url.clone();
    url.query_pairs_mut().append_pair("hookcli_check", "1");
    let signature = context.signature_for(url.as_str(), &key(context), &body, now_ms());
    let request = context.with_headers_to(url.clone(), body, &signature);
    let mut finding = Finding::default();
    let what = format!("a request to {url}, signed over that URL: ");
    let delivery = context
        .delivery(&request, &context.config.policy, &mut finding, &what)
        .await;
    if !delivery.delivered() && matches!(delivery.last().status, Some(401 | 403)) {
        finding.reasons.push(
            "does the receiver validate against a URL without its query string (or another \
             scheme, host or port than the one the request was sent to)?"
                .into(),
        );
    }
    Ok(finding)
}

/// The form's fields reversed, with one key given twice: the platform's signature sorts them,
/// so a receiver that signs them in body order, or keeps one value per key, refuses it.
async fn form_order(context: &Context, rng: &mut StdRng) -> Result<Finding, RenderError> {
    let value = context.render_sample(rng)?;
    let mut reordered = serde_json::Map::new();
    if let Value::Object(map) = &value {
        for (key, item) in map.iter().rev() {
            reordered.insert(key.clone(), item.clone());
        }
    }
    reordered.insert("HookcliRepeated".into(), json!(["b", "a"]));
    let body = context.platform().encode(&Value::Object(reordered));
    let signature = context.signature(&key(context), &body, now_ms());
    let request = context.with_headers(body, &signature);
    let mut finding = Finding::default();
    let what = "the fields in reverse order, with the key HookcliRepeated twice: ";
    let delivery = context
        .delivery(&request, &context.config.policy, &mut finding, what)
        .await;
    if !delivery.delivered() && matches!(delivery.last().status, Some(401 | 403)) {
        finding.reasons.push(
            "the signature covers the fields sorted by name, every value of a repeated key \
             included: does the receiver use the body's order, or one value per key?"
                .into(),
        );
    }
    Ok(finding)
}

/// Two signatures in one header, as during key rotation: an unknown key's first.
async fn rotated(context: &Context, rng: &mut StdRng) -> Result<Finding, RenderError> {
    let (_, body) = sample(context, rng)?;
    let rules = rules(context);
    let now = now_ms();
    let signed = context.signature(&key(context), &body, now);
    let old = context.signature(&rules.generate_key(), &body, now);
    let main = |headers: &[(String, String)]| {
        headers
            .iter()
            .find(|(name, _)| *name == rules.header)
            .map(|(_, value)| value.clone())
            .unwrap_or_default()
    };
    let both = format!("{} {}", main(&old), main(&signed));
    let headers = replacing_main(rules, signed, &both);
    let request = context.with_headers(body, &headers);
    let mut finding = Finding::default();
    let what = "two signatures, an unknown key's first, then the right one: ";
    context
        .delivery(&request, &context.config.policy, &mut finding, what)
        .await;
    Ok(finding)
}
