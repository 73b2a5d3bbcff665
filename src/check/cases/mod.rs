//! The cases of `hookcli check`: one registry, each case declared once (name, severity, what
//! it checks, the function that runs it) in the file of its family. A new signing scheme or
//! platform adds its cases to one family file; the runner, `--list` and `--only` pick them up.
//!
//! Positive cases (the receiver must accept) deliver by the platform's policy, retries
//! included, as the platform would. Negative cases (the receiver must reject) send one
//! attempt: retrying a rejection changes nothing. load/burst also judges first attempts only,
//! because retries would hide exactly the overload it looks for.

mod answers;
mod body;
mod context;
mod delivery;
mod lifecycle;
mod load;
mod long_call;
mod signature;
mod user;
mod watch;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use rand::rngs::StdRng;

pub use body::reformat;
pub use context::Exchange;
use context::Finding;
pub(super) use context::{CASE, Context};

use super::{Case, CaseOutcome, CaseResult, Severity};
use crate::call::RenderError;
use crate::catalog::Platform;

/// What a case's function returns: what it found, or the event it could not render.
pub(super) type CaseFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Finding, RenderError>> + Send + 'a>>;

/// The function that runs a case: the shared context, the case's subject (the event or
/// lifecycle of the cases made per platform; empty for the others) and the case's own
/// random source.
pub(super) type RunFn = for<'a> fn(&'a Context, &'a str, &'a mut StdRng) -> CaseFuture<'a>;

/// One case as its family declares it.
pub(super) struct Spec {
    pub name: &'static str,
    pub severity: Severity,
    pub about: &'static str,
    pub run: RunFn,
    /// Tests signature verification: skipped when the platform does not sign or no key is known.
    pub needs_key: bool,
    /// Runs after the others, alone, so its load does not slow their answers.
    pub alone: bool,
}

impl Spec {
    /// The defaults of most cases: runs with the others and needs no key.
    pub const fn new(
        name: &'static str,
        severity: Severity,
        about: &'static str,
        run: RunFn,
    ) -> Spec {
        Spec {
            name,
            severity,
            about,
            run,
            needs_key: false,
            alone: false,
        }
    }

    pub fn case(&self) -> Case {
        Case {
            name: self.name.into(),
            severity: self.severity,
            about: self.about.into(),
            runner: Runner {
                subject: String::new(),
                run: self.run,
                needs_key: self.needs_key,
                alone: self.alone,
            },
        }
    }
}

/// How a [`Case`] runs; made only by the families.
#[derive(Clone)]
pub(super) struct Runner {
    subject: String,
    run: RunFn,
    needs_key: bool,
    alone: bool,
}

impl Runner {
    /// A case made for one of the platform's events or lifecycles (`subject`).
    fn for_subject(subject: &str, run: RunFn) -> Runner {
        Runner {
            subject: subject.into(),
            run,
            needs_key: false,
            alone: false,
        }
    }

    pub(super) fn runs_alone(&self) -> bool {
        self.alone
    }
}

impl fmt::Debug for Runner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runner")
            .field("subject", &self.subject)
            .field("needs_key", &self.needs_key)
            .field("alone", &self.alone)
            .finish_non_exhaustive()
    }
}

/// The families, in report order.
const FAMILIES: [fn(&Platform) -> Vec<Case>; 6] = [
    lifecycle::cases,
    signature::cases,
    body::cases,
    delivery::cases,
    answers::cases,
    load::cases,
];

/// Every case for the platform, in report order.
pub(super) fn all(platform: &Platform) -> Vec<Case> {
    FAMILIES
        .iter()
        .flat_map(|family| family(platform))
        .collect()
}

/// The user's own cases (`[[cases]]`), reported after the built-in ones.
pub(super) fn user_cases(user: &[crate::check::user::UserCase]) -> Vec<Case> {
    user::cases(user)
}

/// The events a case sends, for running the cases of an event that timed out last: its
/// subject's for delivers/*, lifecycle/* and cases/*; the default events for the body cases
/// that go through them all; the main lifecycle's for out-of-order and burst; none for
/// answers/* (their own URLs), nor for the cases that expect a rejection of a single attempt
/// (signature/*, event/unknown with its unknown type, body/malformed-json): a receiver may
/// well reject those before the slow work; the sample event (the call's end) for the rest.
pub(super) fn sends(
    case: &Case,
    platform: &Platform,
    user: &[crate::check::user::UserCase],
) -> Vec<String> {
    let subject = case.runner.subject.as_str();
    let family = case.name.split('/').next().unwrap_or_default();
    let names =
        |events: Vec<&crate::catalog::EventSpec>| events.iter().map(|e| e.name.clone()).collect();
    let main = || {
        let lifecycles = &platform.lifecycles;
        lifecycles
            .iter()
            .find(|l| l.connected)
            .or(lifecycles.first())
    };
    match (family, case.name.as_str()) {
        ("delivers", _) => vec![subject.to_string()],
        ("lifecycle", _) => platform
            .lifecycle(subject)
            .map(|l| l.steps.iter().map(|s| s.event.clone()).collect())
            .unwrap_or_default(),
        ("cases", _) => user
            .iter()
            .filter(|c| c.name == case.name)
            .map(|c| c.event.clone())
            .collect(),
        ("answers" | "signature", _) | (_, "event/unknown" | "body/malformed-json") => Vec::new(),
        (_, "body/extra-fields" | "body/missing-optional") => {
            let defaults: Vec<_> = platform.events.iter().filter(|e| e.default).collect();
            if defaults.is_empty() {
                names(platform.events.iter().collect())
            } else {
                names(defaults)
            }
        }
        (_, "delivery/out-of-order" | "load/burst") => main()
            .map(|l| l.steps.iter().map(|s| s.event.clone()).collect())
            .unwrap_or_default(),
        _ => platform
            .events
            .iter()
            .find(|e| e.at == crate::catalog::Moment::End)
            .or(platform.events.last())
            .map(|e| vec![e.name.clone()])
            .unwrap_or_default(),
    }
}

/// The cases of a family whose list does not depend on the platform.
fn fixed(specs: &[Spec]) -> Vec<Case> {
    specs.iter().map(Spec::case).collect()
}

/// Runs one case to its result.
pub(super) async fn run_case(context: &Context, case: &Case, mut rng: StdRng) -> CaseResult {
    let started = Instant::now();
    let runner = &case.runner;
    let found = match key_skip(context, runner) {
        Some(reason) => Ok(Finding::skipped(reason)),
        None => (runner.run)(context, &runner.subject, &mut rng).await,
    };
    let finding = found.unwrap_or_else(|e| {
        let mut finding = Finding::default();
        finding.fail(Severity::Error, format!("cannot render the event: {e}"));
        finding
    });
    let failed = matches!(
        finding.outcome(),
        CaseOutcome::Failed | CaseOutcome::Warning
    );
    CaseResult {
        name: case.name.clone(),
        severity: case.severity,
        result: finding.outcome(),
        statuses: finding.statuses.clone(),
        latency: finding.latency,
        reason: (!finding.reasons.is_empty()).then(|| finding.reasons.join("; ")),
        requests: finding.requests,
        elapsed: started.elapsed(),
        last_answer: finding.last_answer,
        refused: finding.refused,
        no_answer: finding.no_answer,
        cut_off: false,
        // Only a failure needs reproducing (a warning is one too).
        reproduce: failed.then_some(finding.reproduce).flatten(),
        response: failed.then_some(finding.response).flatten(),
        cause: None,
    }
}

/// Why a case that tests verification cannot run: the platform does not sign, or there is
/// no key.
fn key_skip(context: &Context, runner: &Runner) -> Option<String> {
    if !runner.needs_key {
        return None;
    }
    let platform = context.platform();
    match (&platform.signing, &context.config.key) {
        (None, _) => Some(format!("{} does not sign its webhooks", platform.id)),
        (Some(_), None) => Some(context.config.no_key_reason.clone()),
        _ => None,
    }
}
