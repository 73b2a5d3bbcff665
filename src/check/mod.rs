//! `hookcli check`: a contract test of a webhook receiver. The case list, the runner and the
//! report it returns. Nothing here prints: `output::check` renders the report.

pub mod cases;
pub mod suite;
pub mod user;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use reqwest::header::HeaderMap;
use std::future::Future;
use std::pin::Pin;

use tokio::task::JoinSet;

use crate::catalog::{Catalog, Platform};
use crate::policy::DeliveryPolicy;
use crate::secret::Secret;

/// How much a failed case matters: errors fail the run (exit 1), warnings do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

impl Severity {
    pub fn word(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One case: its name, how much it matters and what it checks.
#[derive(Clone, Debug)]
pub struct Case {
    pub name: String,
    pub severity: Severity,
    pub about: String,
    runner: cases::Runner,
}

/// How a case ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CaseOutcome {
    Passed,
    Skipped,
    /// Failed at warning level (a warning case, or the milder failure of an error case).
    Warning,
    /// Failed at error level: the run exits 1.
    Failed,
}

impl CaseOutcome {
    pub fn word(self) -> &'static str {
        match self {
            CaseOutcome::Passed => "passed",
            CaseOutcome::Skipped => "skipped",
            CaseOutcome::Warning => "warning",
            CaseOutcome::Failed => "failed",
        }
    }
}

/// What one case found.
#[derive(Clone, Debug)]
pub struct CaseResult {
    pub name: String,
    pub severity: Severity,
    pub result: CaseOutcome,
    /// The HTTP statuses answered, in the order the requests were sent (deduplicated).
    pub statuses: Vec<u16>,
    /// The slowest answer (or timeout) among the case's requests.
    pub latency: Option<Duration>,
    /// Why it did not pass (or why it was skipped), in plain words.
    pub reason: Option<String>,
    /// Requests sent, retries included.
    pub requests: usize,
    /// Wall time of the whole case.
    pub elapsed: Duration,
    /// When the case's latest request that got an HTTP answer was sent.
    pub last_answer: Option<Instant>,
    /// When each request that could not connect was sent, with the reason
    /// ("connection refused").
    pub refused: Vec<(Instant, String)>,
    /// Why the first request that connected got no HTTP answer ("timed out after 10s").
    pub no_answer: Option<String>,
    /// The receiver had stopped taking connections when this case ran: it tested nothing.
    pub cut_off: bool,
    /// A command that reproduces the first failed request (`hookcli send ...`), when one can.
    pub reproduce: Option<String>,
    /// The first 1 KB of that request's answer body.
    pub response: Option<String>,
    /// The root cause this failure shares with others: `call_ended timed out after 10s (see
    /// delivers/call_ended)`.
    pub cause: Option<String>,
}

impl CaseResult {
    /// The result of a case whose task died (a panic: a hookcli bug). It is reported as an
    /// error-level failure under its own name, so the run cannot pass without it.
    fn crashed(case: &Case, why: &str) -> CaseResult {
        CaseResult::untested(
            case,
            CaseOutcome::Failed,
            format!(
                "hookcli failed inside this case ({why}), so it tested nothing; this is a \
                 hookcli bug: please report it"
            ),
        )
    }

    /// A case that Ctrl-C (or SIGTERM) stopped before it finished, or before it began.
    fn interrupted(case: &Case) -> CaseResult {
        CaseResult::untested(
            case,
            CaseOutcome::Skipped,
            "not finished: the run was interrupted".into(),
        )
    }

    fn untested(case: &Case, result: CaseOutcome, reason: String) -> CaseResult {
        CaseResult {
            name: case.name.clone(),
            severity: case.severity,
            result,
            statuses: Vec::new(),
            latency: None,
            reason: Some(reason),
            requests: 0,
            elapsed: Duration::ZERO,
            last_answer: None,
            refused: Vec::new(),
            no_answer: None,
            cut_off: false,
            reproduce: None,
            response: None,
            cause: None,
        }
    }

    /// A case not sent because it delivers an event the receiver did not answer in time in
    /// its own delivers/* case: it would wait out the same timeouts and fail the same way.
    fn blocked(case: &Case, root: &Root) -> CaseResult {
        CaseResult {
            reproduce: root.reproduce.clone(),
            cause: Some(root.cause.clone()),
            ..CaseResult::untested(
                case,
                CaseOutcome::Failed,
                format!(
                    "not sent: it delivers {}, which got no answer in {} ({}); fix that and run \
                     again",
                    root.event, root.case, root.detail
                ),
            )
        }
    }
}

/// An event that got no answer at all (every attempt timed out or was closed) in its
/// delivers/* case: the root cause of every case that sends it.
#[derive(Clone, Debug)]
struct Root {
    event: String,
    case: String,
    detail: String,
    /// `call_ended timed out after 10s (see delivers/call_ended)`.
    cause: String,
    reproduce: Option<String>,
}

impl Root {
    fn of(result: &CaseResult) -> Option<Root> {
        let event = result.name.strip_prefix("delivers/")?;
        let detail = result.no_answer.as_deref()?;
        let unanswered = result.result == CaseOutcome::Failed
            && result.last_answer.is_none()
            && result.requests > 0
            && !result.cut_off;
        unanswered.then(|| Root {
            event: event.to_string(),
            case: result.name.clone(),
            detail: detail.to_string(),
            cause: format!("{event} {detail} (see {})", result.name),
            reproduce: result.reproduce.clone(),
        })
    }
}

/// Whether the receiver kept taking connections through the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiverState {
    /// It took connections to the end (whatever it answered).
    Up,
    /// It answered, then from some moment every request failed to connect, and it still
    /// refused a connection after the run: it stopped (crashed, was killed) during the run.
    Stopped,
    /// No request ever got an answer and the requests failed to connect: it was not up for
    /// the run (exit 3).
    Down,
    /// It took connections but answered no request at all: every request timed out or was
    /// closed unanswered. It tested nothing, as a receiver that is down (exit 3).
    Silent,
}

impl ReceiverState {
    /// The JSON word. Silent is `down` too: the documented meaning of `down` is "it never
    /// answered", which holds for both, and the JSON values stay the ones documented.
    pub fn word(self) -> &'static str {
        match self {
            ReceiverState::Up => "up",
            ReceiverState::Stopped => "stopped",
            ReceiverState::Down | ReceiverState::Silent => "down",
        }
    }

    /// Whether the run tested nothing because the receiver never answered (exit 3).
    pub fn never_answered(self) -> bool {
        matches!(self, ReceiverState::Down | ReceiverState::Silent)
    }
}

/// Everything a run needs, validated by the command layer.
pub struct CheckConfig {
    pub catalog: Arc<Catalog>,
    pub platform: Arc<Platform>,
    pub url: reqwest::Url,
    /// The platform's headers plus the user's -H.
    pub headers: HeaderMap,
    pub policy: DeliveryPolicy,
    /// Whose success rule it is, for reasons: the platform id or `--expect`.
    pub rule_owner: String,
    /// The receiver's key; `None` skips the signature cases and sends unsigned.
    pub key: Option<Secret>,
    /// Why there is no key, for the skip reason of the signature cases.
    pub no_key_reason: String,
    /// Calls sent at once by load/burst.
    pub burst: usize,
    /// HOOKCLI_SEED, read (and checked) by the command.
    pub seed: Option<u64>,
    /// Each event's policy (an inbound call's or a function's own timeout and retries).
    pub policies: crate::policy::EventPolicies,
    /// The inbound call webhook's URL, for answers/call_inbound.
    pub inbound_url: Option<reqwest::Url>,
    /// The custom functions of hookcli.toml, for answers/functions.
    pub functions: Vec<suite::FunctionEntry>,
    /// The user's own cases of hookcli.toml (`[[cases]]`).
    pub user_cases: Vec<user::UserCase>,
    /// Appended to reproducing commands so they sign as check did, without the key itself:
    /// ` --secret "$HOOKCLI_SECRET"` when check was given --secret, else empty (send finds the
    /// key where check found it).
    pub repro_key: String,
    /// The target is hookcli's built-in receiver, gone when check ends: reproducing commands
    /// leave out `--to`, so send starts its own.
    pub built_in_target: bool,
    /// Keep every request and its attempts for the report (-v).
    pub verbose: bool,
    /// Send nothing: each request is logged and taken as accepted (--dry-run).
    pub dry_run: bool,
}

/// The whole run, computed first and rendered after.
#[derive(Debug)]
pub struct CheckReport {
    pub url: String,
    pub platform: String,
    pub results: Vec<CaseResult>,
    pub elapsed: Duration,
    pub receiver: ReceiverState,
    /// Ctrl-C or SIGTERM stopped the run: the cases not finished are skipped.
    pub interrupted: bool,
    /// Every request failed to connect in this one way and none got an answer: the URL cannot
    /// be used as it is (an `https://` URL on a plain-HTTP port), so the run stopped early and
    /// its case results mean nothing.
    pub unusable: Option<String>,
    /// Every request sent (or, in a dry run, that would be), in case order, for -v and
    /// --dry-run; empty otherwise.
    pub exchanges: Vec<cases::Exchange>,
}

impl CheckReport {
    pub fn count(&self, result: CaseOutcome) -> usize {
        self.results.iter().filter(|r| r.result == result).count()
    }

    /// Failures that share a root cause, with the cases of each, in report order.
    pub fn root_causes(&self) -> Vec<(&str, Vec<&str>)> {
        let mut causes: Vec<(&str, Vec<&str>)> = Vec::new();
        for result in &self.results {
            let Some(cause) = result.cause.as_deref() else {
                continue;
            };
            match causes.iter_mut().find(|(c, _)| *c == cause) {
                Some((_, names)) => names.push(&result.name),
                None => causes.push((cause, vec![&result.name])),
            }
        }
        causes
    }

    /// Whether an error-level case failed.
    pub fn failed(&self) -> bool {
        self.count(CaseOutcome::Failed) > 0
    }
}

/// Every case for `platform`, in the order they run and are reported.
pub fn case_list(platform: &Platform) -> Vec<Case> {
    cases::all(platform)
}

/// The user's own cases, as cases: after the built-in ones in the report.
pub fn user_case_list(user: &[user::UserCase]) -> Vec<Case> {
    cases::user_cases(user)
}

/// Whether `name` is picked by `pattern`: the exact name, or a prefix such as `signature/`
/// (also written without the slash).
pub fn matches(pattern: &str, name: &str) -> bool {
    let prefix = pattern.trim_end_matches('/');
    name == pattern
        || name
            .strip_prefix(prefix)
            .is_some_and(|r| r.starts_with('/'))
}

/// Keeps the cases picked by `only` (all when empty) and not by `skip`. Returns the first
/// pattern that picks no case at all, as an error.
pub fn select(cases: Vec<Case>, only: &[String], skip: &[String]) -> Result<Vec<Case>, String> {
    for pattern in only.iter().chain(skip) {
        if !cases.iter().any(|c| matches(pattern, &c.name)) {
            return Err(pattern.clone());
        }
    }
    Ok(cases
        .into_iter()
        .filter(|c| only.is_empty() || only.iter().any(|p| matches(p, &c.name)))
        .filter(|c| !skip.iter().any(|p| matches(p, &c.name)))
        .collect())
}

/// Runs `cases` against the receiver, concurrently, in three steps: delivers/* (whose events
/// that get no answer become the root cause of the cases sending them, not sent again), the
/// others, then `load/burst` alone, so its 60-odd simultaneous requests do not slow the
/// latency of others. When `stop` completes first (Ctrl-C), the cases not finished are
/// reported skipped and the report says it was interrupted.
pub async fn run(
    config: CheckConfig,
    cases: Vec<Case>,
    stop: impl Future<Output = ()>,
) -> CheckReport {
    let started = Instant::now();
    let url = crate::redact::shown_url(&config.url);
    let target = config.url.clone();
    let platform = config.platform.id.clone();
    let seed = config.seed;
    let context = Arc::new(cases::Context::new(config));
    // Stops the run as Ctrl-C does when its first requests all fail to connect the same way.
    let tripped = context.watch.tripped();
    let stop = async {
        tokio::select! {
            () = stop => {}
            () = tripped.cancelled() => {}
        }
    };
    tokio::pin!(stop);
    // One seed per case: reproducible under HOOKCLI_SEED, yet no two cases share call ids
    // (a receiver that deduplicates would otherwise see false duplicates).
    let mut master = crate::call::rng_from(seed);
    let seeded: Vec<(Case, u64)> = cases.into_iter().map(|c| (c, master.r#gen())).collect();
    let (alone, together): (Vec<_>, Vec<_>) = seeded
        .into_iter()
        .enumerate()
        .partition(|(_, (c, _))| c.runner.runs_alone());
    // delivers/* first: an event that gets no answer there is the root cause of every case
    // that sends it, and those are not sent again (they would wait out the same timeouts).
    let (delivers, rest): (Vec<_>, Vec<_>) = together
        .into_iter()
        .partition(|(_, (c, _))| c.name.starts_with("delivers/"));
    let mut results: Vec<(usize, CaseResult)> = Vec::new();
    let mut interrupted = false;
    let mut roots: Vec<Root> = Vec::new();
    for phase in [delivers, rest, alone] {
        if interrupted {
            results.extend(
                phase
                    .into_iter()
                    .map(|(i, (case, _))| (i, CaseResult::interrupted(&case))),
            );
            continue;
        }
        let (blocked, phase) = blocked_by(&context, &roots, phase);
        results.extend(blocked);
        let (done, stopped) = run_concurrently(&context, phase, stop.as_mut()).await;
        roots.extend(done.iter().filter_map(|(_, r)| Root::of(r)));
        results.extend(done);
        interrupted = stopped;
    }
    for (_, result) in results.iter_mut() {
        if let Some(root) = roots.iter().find(|r| r.case == result.name) {
            result.cause = Some(root.cause.clone());
        }
    }
    results.sort_by_key(|(i, _)| *i);
    let mut results: Vec<CaseResult> = results.into_iter().map(|(_, r)| r).collect();
    // Every request failing to connect the same way, with no answer at all (early, or in a
    // short run at the end), is one fault of the URL, not one per case.
    let unusable = if tripped.is_cancelled() || !interrupted {
        context.watch.same_failure()
    } else {
        None
    };
    if unusable.is_some() {
        interrupted = false;
    }
    // A stopped run says nothing of the receiver (a slow answer was cut off, not missing),
    // and probing it would only delay the report the user asked for.
    let receiver = if interrupted || unusable.is_some() {
        ReceiverState::Up
    } else {
        receiver_state(&mut results, &target).await
    };
    let exchanges = exchanges(&context, &results);
    CheckReport {
        url,
        platform,
        results,
        elapsed: started.elapsed(),
        receiver,
        interrupted,
        unusable,
        exchanges,
    }
}

/// The logged requests in case order (a case's own in the order it sent them), named.
fn exchanges(context: &cases::Context, results: &[CaseResult]) -> Vec<cases::Exchange> {
    let Some(log) = &context.log else {
        return Vec::new();
    };
    let mut logged = std::mem::take(
        &mut *log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    logged.sort_by_key(|(i, _)| *i);
    logged
        .into_iter()
        .map(|(i, mut exchange)| {
            exchange.case = results.get(i).map(|r| r.name.clone()).unwrap_or_default();
            exchange
        })
        .collect()
}

/// Whether the receiver stopped taking connections during the run: from some moment on,
/// every request failed to connect, and one more connection after the run is refused too
/// (a refusal or two while the receiver still runs, such as an overflowing accept queue under
/// load/burst, is not a stop). Every case that met the stopped receiver tested nothing, so it
/// fails at error level with that reason, whatever its severity.
async fn receiver_state(results: &mut [CaseResult], url: &reqwest::Url) -> ReceiverState {
    let last_answer = results.iter().filter_map(|r| r.last_answer).max();
    let stop = results
        .iter()
        .flat_map(|r| r.refused.iter().map(|(at, _)| *at))
        .filter(|at| last_answer.is_none_or(|answered| *at > answered))
        .min();
    let Some(stop) = stop else {
        return up_or_silent(results);
    };
    if wait_for(url, Duration::ZERO).await.is_ok() {
        return up_or_silent(results);
    }
    let state = match last_answer {
        Some(_) => ReceiverState::Stopped,
        None => ReceiverState::Down,
    };
    let why = match state {
        ReceiverState::Down => "the receiver never answered a request",
        _ => "the receiver had stopped answering",
    };
    for result in results.iter_mut() {
        let refused = result.refused.iter().find(|(at, _)| *at >= stop);
        let reason = match refused {
            Some((_, detail)) => format!("could not connect ({detail}): {why}"),
            // A receiver that never answered tested nothing, even where a request got in.
            None if state == ReceiverState::Down && result.requests > 0 => {
                format!("no answer: {why}")
            }
            None => continue,
        };
        result.result = CaseOutcome::Failed;
        result.reason = Some(reason);
        result.cut_off = true;
    }
    state
}

/// A receiver that took connections yet answered none of the requests that were sent is
/// [`ReceiverState::Silent`]; otherwise it was up. Each case keeps its own reason (they say
/// what every request met: "timed out after 10s").
fn up_or_silent(results: &[CaseResult]) -> ReceiverState {
    let sent = results.iter().any(|r| r.requests > 0);
    let answered = results.iter().any(|r| r.last_answer.is_some());
    if sent && !answered {
        ReceiverState::Silent
    } else {
        ReceiverState::Up
    }
}

type Phase = Vec<(usize, (Case, u64))>;

/// Splits off the cases that send an event with a root cause: each is reported failed for
/// that cause, unsent.
fn blocked_by(
    context: &cases::Context,
    roots: &[Root],
    phase: Phase,
) -> (Vec<(usize, CaseResult)>, Phase) {
    if roots.is_empty() {
        return (Vec::new(), phase);
    }
    let mut blocked = Vec::new();
    let mut run = Vec::new();
    for (i, (case, seed)) in phase {
        let sends = cases::sends(&case, &context.config.platform, &context.config.user_cases);
        match roots.iter().find(|r| sends.contains(&r.event)) {
            Some(root) => blocked.push((i, CaseResult::blocked(&case, root))),
            None => run.push((i, (case, seed))),
        }
    }
    (blocked, run)
}

/// The cases being run, by task, so a task that dies can still be reported by name.
type Running = HashMap<tokio::task::Id, (usize, Case)>;

/// Runs the cases at once; `true` when `stop` cut the run short.
async fn run_concurrently(
    context: &Arc<cases::Context>,
    cases: Vec<(usize, (Case, u64))>,
    stop: Pin<&mut impl Future<Output = ()>>,
) -> (Vec<(usize, CaseResult)>, bool) {
    let mut set = JoinSet::new();
    let mut running = Running::new();
    for (i, (case, seed)) in cases {
        let context = context.clone();
        let task_case = case.clone();
        let task = set.spawn(cases::CASE.scope(i, async move {
            let rng = rand::rngs::StdRng::seed_from_u64(seed);
            cases::run_case(&context, &task_case, rng).await
        }));
        running.insert(task.id(), (i, case));
    }
    gather(set, running, stop).await
}

/// Waits for every case task. One that panicked (a bug) becomes a failed case with its
/// name instead of vanishing from the report, which would let the run pass without it. When
/// `stop` completes first, the tasks still running are aborted and reported as interrupted.
async fn gather(
    mut set: JoinSet<CaseResult>,
    mut running: Running,
    mut stop: Pin<&mut impl Future<Output = ()>>,
) -> (Vec<(usize, CaseResult)>, bool) {
    let mut done = Vec::new();
    loop {
        let joined = tokio::select! {
            joined = set.join_next_with_id() => joined,
            () = stop.as_mut() => {
                set.abort_all();
                done.extend(running.into_values().map(|(i, case)| (i, CaseResult::interrupted(&case))));
                return (done, true);
            }
        };
        let Some(joined) = joined else {
            return (done, false);
        };
        let (id, result) = match joined {
            Ok((id, result)) => (id, Ok(result)),
            Err(e) => (e.id(), Err(crate::text::task_failure(e))),
        };
        let Some((i, case)) = running.remove(&id) else {
            continue;
        };
        let result = result.unwrap_or_else(|why| CaseResult::crashed(&case, &why));
        done.push((i, result));
    }
}

/// The `http://` URL for an `https://` one whose port answers plain HTTP: a TLS client meets
/// an HTTP answer where it expects a handshake, so every request fails to connect.
pub async fn plain_http(url: &reqwest::Url) -> Option<reqwest::Url> {
    if url.scheme() != "https" {
        return None;
    }
    let port = url.port_or_known_default()?;
    let mut plain = url.clone();
    plain.set_scheme("http").ok()?;
    plain.set_port(Some(port)).ok()?;
    let answered = crate::delivery::client()
        .head(plain.clone())
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .is_ok();
    answered.then_some(plain)
}

/// Waits until a TCP connection to the URL's host and port succeeds, trying every 100 ms,
/// for at most `deadline` (zero: one try). The error is the last reason it failed.
pub async fn wait_for(url: &reqwest::Url, deadline: Duration) -> Result<(), String> {
    let host = url
        .host_str()
        .unwrap_or("localhost")
        .trim_matches(['[', ']'])
        .to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let until = Instant::now() + deadline;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let budget = left.clamp(Duration::from_millis(200), Duration::from_secs(2));
        let reason = match tokio::time::timeout(
            budget,
            tokio::net::TcpStream::connect((host.as_str(), port)),
        )
        .await
        {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => crate::text::io_reason(&e),
            Err(_) => format!("no answer within {}", crate::duration::short(budget)),
        };
        if Instant::now() + Duration::from_millis(100) > until {
            return Err(reason);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform() -> Arc<Platform> {
        Catalog::load(None)
            .expect("the built-in catalog loads")
            .platform("uponai")
            .expect("uponai exists")
            .clone()
    }

    #[tokio::test]
    async fn a_case_that_panics_is_reported_failed_by_name() {
        let cases = case_list(&platform());
        let (calm, doomed) = (cases[0].clone(), cases[1].clone());
        let mut set = JoinSet::new();
        let mut running = Running::new();
        let passed = CaseResult {
            result: CaseOutcome::Passed,
            reason: None,
            ..CaseResult::crashed(&calm, "")
        };
        let task = set.spawn(async move { passed });
        running.insert(task.id(), (0, calm.clone()));
        let task = set.spawn(async { panic!("an index out of range") });
        running.insert(task.id(), (1, doomed.clone()));

        let never = std::pin::pin!(std::future::pending());
        let (mut done, interrupted) = gather(set, running, never).await;
        assert!(!interrupted);
        done.sort_by_key(|(i, _)| *i);
        assert_eq!(done.len(), 2, "the panicked case is not dropped");
        assert_eq!(done[0].1.result, CaseOutcome::Passed);
        let (i, crashed) = &done[1];
        assert_eq!((*i, crashed.name.as_str()), (1, doomed.name.as_str()));
        assert_eq!(crashed.result, CaseOutcome::Failed);
        let reason = crashed.reason.as_deref().unwrap_or_default();
        assert!(
            reason.contains("it panicked: an index out of range") && reason.contains("hookcli bug"),
            "{reason}"
        );
        let report = CheckReport {
            url: String::new(),
            platform: "uponai".into(),
            results: done.into_iter().map(|(_, r)| r).collect(),
            elapsed: Duration::ZERO,
            receiver: ReceiverState::Up,
            interrupted: false,
            unusable: None,
            exchanges: Vec::new(),
        };
        assert!(report.failed(), "the run fails (exit 1) with it");
    }

    #[tokio::test]
    async fn a_stop_reports_the_unfinished_cases_skipped_by_name() {
        let cases = case_list(&platform());
        let mut set = JoinSet::new();
        let mut running = Running::new();
        for (i, case) in cases.iter().take(2).enumerate() {
            let task = set.spawn(std::future::pending::<CaseResult>());
            running.insert(task.id(), (i, case.clone()));
        }
        let stop = std::pin::pin!(std::future::ready(()));
        let (mut done, interrupted) = gather(set, running, stop).await;
        assert!(interrupted);
        done.sort_by_key(|(i, _)| *i);
        let names: Vec<&str> = done.iter().map(|(_, r)| r.name.as_str()).collect();
        assert_eq!(names, [cases[0].name.as_str(), cases[1].name.as_str()]);
        for (_, result) in &done {
            assert_eq!(result.result, CaseOutcome::Skipped);
            assert_eq!(
                result.reason.as_deref(),
                Some("not finished: the run was interrupted")
            );
        }
    }

    #[test]
    fn patterns_match_names_and_prefixes() {
        assert!(matches("signature/", "signature/stale"));
        assert!(matches("signature", "signature/stale"));
        assert!(matches("body/large", "body/large"));
        assert!(!matches("body/lar", "body/large"));
        assert!(!matches("sig", "signature/stale"));
    }
}
