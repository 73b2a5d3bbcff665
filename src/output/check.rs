//! `hookcli check` reports: the table and summary line, JSON lines, JUnit XML, and the case
//! list. JUnit goes through quick-junit (nextest's writer): escaping and the attribute set the
//! common CI viewers read are its job, not ours.

use std::collections::BTreeMap;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use tabled::Tabled;
use tabled::settings::object::Columns;
use tabled::settings::{Modify, Width};

use super::json::{CheckCaseJson, CheckListJson, CheckSummaryJson, RootCauseJson, ms};
use super::{bad, good, warn};
use crate::check::{Case, CaseOutcome, CaseResult, CheckReport, ReceiverState};

#[derive(Tabled)]
struct Row {
    case: String,
    result: &'static str,
    status: String,
    latency: String,
    reason: String,
}

/// The reason column wraps here, so a long reason does not push the table off the screen.
const REASON_WIDTH: usize = 64;

pub(super) fn statuses(result: &CaseResult) -> String {
    if result.statuses.is_empty() {
        return "-".into();
    }
    result
        .statuses
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn latency(result: &CaseResult) -> String {
    result
        .latency
        .map(crate::duration::latency)
        .unwrap_or_else(|| "-".into())
}

/// One row per case.
pub fn table(report: &CheckReport) -> String {
    let rows = report.results.iter().map(|r| Row {
        case: r.name.clone(),
        result: r.result.word(),
        status: statuses(r),
        latency: latency(r),
        // A reason can quote the receiver's answer.
        reason: super::escape_controls(r.reason.as_deref().unwrap_or_default()).into_owned(),
    });
    let mut table = tabled::Table::new(rows);
    table.with(tabled::settings::Style::sharp());
    table.with(Modify::new(Columns::one(4)).with(Width::wrap(REASON_WIDTH).keep_words(true)));
    table.to_string()
}

/// `uponai · http://127.0.0.1:3000/webhook: 31 passed, 1 failed, 2 warnings, 0 skipped in 1.2s`
pub fn summary(report: &CheckReport) -> String {
    let failed = report.count(CaseOutcome::Failed);
    let warnings = report.count(CaseOutcome::Warning);
    let counts = format!(
        "{} passed, {} failed, {} warning{}, {} skipped",
        report.count(CaseOutcome::Passed),
        failed,
        warnings,
        if warnings == 1 { "" } else { "s" },
        report.count(CaseOutcome::Skipped),
    );
    let counts = if failed > 0 {
        bad(&counts)
    } else if warnings > 0 {
        warn(&counts)
    } else {
        good(&counts)
    };
    let line = format!(
        "{} · {}: {counts} in {}",
        report.platform,
        report.url,
        crate::duration::short(report.elapsed)
    );
    let mut line = match receiver_line(report) {
        Some(stopped) => format!("{line}\n{}", bad(&stopped)),
        None => line,
    };
    for cause in root_cause_lines(report) {
        line = format!("{line}\n{}", bad(&cause));
    }
    if report.interrupted {
        format!("{line}\n{}", warn(INTERRUPTED))
    } else {
        line
    }
}

/// The line under the summary of a run stopped by Ctrl-C or SIGTERM.
const INTERRUPTED: &str = "interrupted: the report so far (the unfinished cases are skipped)";

/// A plain sentence when the receiver stopped taking connections, for the summary.
pub fn receiver_line(report: &CheckReport) -> Option<String> {
    // The most common reason: a receiver that went down while requests were queued in its
    // backlog resets a few of them, then refuses all the rest.
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, detail) in report.results.iter().flat_map(|r| &r.refused) {
        *counts.entry(detail.as_str()).or_default() += 1;
    }
    let detail = counts
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(detail, _)| *detail)
        .unwrap_or("connection refused");
    let hit = report.results.iter().filter(|r| r.cut_off).count();
    match report.receiver {
        ReceiverState::Up => None,
        ReceiverState::Stopped => Some(format!(
            "the receiver stopped answering during the run: from then on every request failed \
             to connect ({detail}); {hit} case{} failed for that",
            if hit == 1 { "" } else { "s" }
        )),
        ReceiverState::Down => Some(format!(
            "the receiver never answered: every request failed to connect ({detail}); is it \
             running, and on this port?"
        )),
        ReceiverState::Silent => Some(format!(
            "the receiver never answered: it took connections, but no request got an answer \
             ({}); is its handler stuck, or slower than the timeout?",
            silence(report)
        )),
    }
}

/// What the first request that connected met, for a receiver that answered nothing.
pub fn silence(report: &CheckReport) -> &str {
    report
        .results
        .iter()
        .find_map(|r| r.no_answer.as_deref())
        .unwrap_or("no response")
}

/// The documented JSON object for one case (README "Use in CI").
pub fn case_json(result: &CaseResult) -> CheckCaseJson<'_> {
    CheckCaseJson {
        kind: "case",
        case: &result.name,
        severity: result.severity.word(),
        result: result.result.word(),
        statuses: &result.statuses,
        latency_ms: result.latency.map(ms),
        reason: result.reason.as_deref(),
        requests: result.requests,
        reproduce: result.reproduce.as_deref(),
        response: result.response.as_deref(),
        cause: result.cause.as_deref(),
    }
}

/// `11 cases failed because call_ended timed out after 10s (see delivers/call_ended)`, one
/// line per root cause.
pub fn root_cause_lines(report: &CheckReport) -> Vec<String> {
    report
        .root_causes()
        .into_iter()
        .map(|(cause, cases)| {
            let n = cases.len();
            format!(
                "{n} case{} failed because {cause}",
                if n == 1 { "" } else { "s" }
            )
        })
        .collect()
}

/// `-v` under the table: each failed case's reproducing command and the start of its answer.
pub fn details(report: &CheckReport) -> String {
    let mut out = String::new();
    for result in &report.results {
        let failed = matches!(result.result, CaseOutcome::Failed | CaseOutcome::Warning);
        if !failed || (result.reproduce.is_none() && result.response.is_none()) {
            continue;
        }
        out.push_str(&format!(
            "{} {}
",
            result.name,
            result.result.word()
        ));
        out.push_str(&failure_lines(result, "  "));
    }
    out
}

/// `reproduce: ...` and `response: ...`, each on its own line, controls escaped.
fn failure_lines(result: &CaseResult, indent: &str) -> String {
    let mut out = String::new();
    if let Some(command) = &result.reproduce {
        out.push_str(&format!(
            "{indent}reproduce: {}\n",
            super::escape_controls(command)
        ));
    }
    if let Some(body) = &result.response {
        out.push_str(&format!(
            "{indent}response: {}\n",
            super::escape_controls(body)
        ));
    }
    out
}

/// The last JSON line: counts and the exit code.
pub fn summary_json(report: &CheckReport, exit_code: u8) -> CheckSummaryJson<'_> {
    CheckSummaryJson {
        kind: "summary",
        platform: &report.platform,
        url: &report.url,
        total: report.results.len(),
        passed: report.count(CaseOutcome::Passed),
        failed: report.count(CaseOutcome::Failed),
        warnings: report.count(CaseOutcome::Warning),
        skipped: report.count(CaseOutcome::Skipped),
        seconds: (report.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        receiver: report.receiver.word(),
        interrupted: report.interrupted,
        exit_code,
        root_causes: report
            .root_causes()
            .into_iter()
            .map(|(cause, cases)| RootCauseJson { cause, cases })
            .collect(),
    }
}

/// JUnit XML: one testcase per case; failures carry status, latency and reason; warnings
/// are passed testcases with the warning in system-out; skipped cases say why.
pub fn junit(report: &CheckReport) -> Result<String, quick_junit::SerializeError> {
    let mut suite = TestSuite::new(format!("hookcli check {}", report.platform));
    for result in &report.results {
        let detail = format!("status: {}, latency: {}", statuses(result), latency(result));
        let reason = result.reason.clone().unwrap_or_default();
        let status = match result.result {
            CaseOutcome::Failed => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status
                    .set_message(reason.clone())
                    .set_type(result.severity.word())
                    .set_description(format!("{detail}\n{reason}"));
                status
            }
            CaseOutcome::Skipped => {
                let mut status = TestCaseStatus::skipped();
                status.set_message(reason.clone());
                status
            }
            CaseOutcome::Passed | CaseOutcome::Warning => TestCaseStatus::success(),
        };
        let mut case = TestCase::new(result.name.clone(), status);
        let group = result.name.split('/').next().unwrap_or("check");
        case.set_classname(format!("hookcli.{}.{group}", report.platform))
            .set_time(result.elapsed);
        let failure = failure_lines(result, "");
        match result.result {
            CaseOutcome::Warning => {
                case.set_system_out(format!("warning: {reason}\n{detail}\n{failure}"));
            }
            CaseOutcome::Passed => {
                case.set_system_out(detail);
            }
            CaseOutcome::Failed if !failure.is_empty() => {
                case.set_system_out(failure);
            }
            _ => {}
        }
        suite.add_test_case(case);
    }
    suite.set_time(report.elapsed);
    let notes: Vec<String> = [
        receiver_line(report),
        report.interrupted.then(|| INTERRUPTED.to_string()),
    ]
    .into_iter()
    .flatten()
    .chain(root_cause_lines(report))
    .collect();
    if !notes.is_empty() {
        suite.set_system_err(notes.join("\n"));
    }
    let mut junit = Report::new("hookcli check");
    junit.add_test_suite(suite);
    junit.set_time(report.elapsed);
    junit.to_string()
}

/// JUnit XML for a run that could not start: one failed testcase, `receiver/reachable`, whose
/// message is `why`, so a CI report viewer shows the reason instead of nothing.
pub fn junit_unreachable(platform: &str, why: &str) -> Result<String, quick_junit::SerializeError> {
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
    status
        .set_message(why)
        .set_type("error")
        .set_description(format!("{why}\nno case ran: hookcli check exited 3"));
    let mut case = TestCase::new("receiver/reachable", status);
    case.set_classname(format!("hookcli.{platform}.receiver"));
    let mut suite = TestSuite::new(format!("hookcli check {platform}"));
    suite.add_test_case(case);
    let mut junit = Report::new("hookcli check");
    junit.add_test_suite(suite);
    junit.to_string()
}

#[derive(Tabled)]
struct ListRow {
    case: String,
    severity: &'static str,
    checks: String,
}

/// `--list`: the cases as a table.
pub fn list(cases: &[Case]) -> String {
    super::table(cases.iter().map(|c| ListRow {
        case: c.name.clone(),
        severity: c.severity.word(),
        checks: c.about.clone(),
    }))
}

/// `--list --json`: one object per case.
pub fn list_json(case: &Case) -> CheckListJson<'_> {
    CheckListJson {
        case: &case.name,
        severity: case.severity.word(),
        checks: &case.about,
    }
}

/// `check --dry-run`: one request as `send --dry-run` prints it, under its case's name.
pub fn dry_run_text(exchange: &crate::check::cases::Exchange) -> String {
    let request = &exchange.request;
    let shown = super::delivery::dry_run_text(
        request.method.as_str(),
        &shown(request),
        &shown_headers(exchange),
        &request.body,
    );
    format!("# {}\n{shown}", exchange.case)
}

/// `check --dry-run --json`: send's dry-run object with the case; `url` as shown.
pub fn dry_run_json<'a>(
    exchange: &'a crate::check::cases::Exchange,
    url: &'a str,
) -> super::json::DryRunJson<'a> {
    let request = &exchange.request;
    super::json::DryRunJson::new(
        request.method.as_str(),
        url,
        &shown_headers(exchange),
        &request.body,
        Some(&exchange.case),
    )
}

/// `check -v`: a request's attempts and answers, as `send -v` shows them, under its case.
pub fn exchange_text(exchange: &crate::check::cases::Exchange) -> String {
    let url = shown(&exchange.request);
    let mut out = format!("# {}\n", exchange.case);
    for attempt in &exchange.attempts {
        out.push_str(&super::delivery::attempt_exchange_text(
            &url,
            attempt,
            &exchange.request.body,
        ));
    }
    out
}

pub fn shown(request: &crate::delivery::Request) -> String {
    crate::redact::shown_url(&request.url)
}

/// The headers the dry run's only attempt carried (signed then), masked as send masks them.
fn shown_headers(exchange: &crate::check::cases::Exchange) -> reqwest::header::HeaderMap {
    let headers = exchange
        .attempts
        .first()
        .map(|a| a.request_headers.clone())
        .unwrap_or_else(|| exchange.request.attempt_headers());
    crate::delivery::shown_headers(&exchange.request.url, headers)
}
