//! `hookcli llm` reports: the turns of a call (or, for many calls, per turn across them), the
//! cases, the summary; JSON lines; JUnit (through quick-junit, as check's).

use quick_junit::{NonSuccessKind, Report as Junit, TestCase, TestCaseStatus, TestSuite};
use tabled::Tabled;
use tabled::settings::object::Columns;
use tabled::settings::{Modify, Width};

use super::json::{LlmCaseJson, LlmListJson, LlmSummaryJson, LlmTurnJson, ms};
use super::{bad, good, warn};
use crate::llm::cases::{Case, CaseResult, Outcome};
use crate::llm::{CallLog, Report, Turn, percentiles};

const TEXT_WIDTH: usize = 44;

#[derive(Tabled)]
struct TurnRow {
    turn: String,
    #[tabled(rename = "user said")]
    user: String,
    #[tabled(rename = "agent answered")]
    agent: String,
    #[tabled(rename = "first chunk")]
    first: String,
    complete: String,
    chunks: usize,
}

fn latency(d: Option<std::time::Duration>) -> String {
    d.map(crate::duration::latency)
        .unwrap_or_else(|| "-".into())
}

/// What the agent did besides speaking, and why a turn did not finish.
fn agent_cell(turn: &Turn) -> String {
    let mut parts = Vec::new();
    for tool in &turn.tool_calls {
        parts.push(format!("[tool {tool}]"));
    }
    parts.push(super::escape_controls(&turn.agent).into_owned());
    if turn.interrupted {
        parts.push("[interrupted]".into());
    }
    if turn.end_call {
        parts.push("[end_call]".into());
    }
    if let Some(number) = &turn.transfer_number {
        parts.push(format!("[transfer to {number}]"));
    }
    if let Some(error) = &turn.error {
        parts.push(format!("[{error}]"));
    }
    parts.retain(|p| !p.is_empty());
    parts.join(" ")
}

/// `response 3` (its response_id), or over SSE, where there is none, `turn 3`.
fn turn_label(turn: &Turn, index: usize) -> String {
    match turn.response_id {
        Some(id) => format!("{} {id}", turn.ask.word()),
        None => format!("turn {}", index + 1),
    }
}

fn wrapped<T: Tabled>(rows: Vec<T>, wrap: &[usize]) -> String {
    let mut table = tabled::Table::new(rows);
    table.with(tabled::settings::Style::sharp());
    for column in wrap {
        table.with(
            Modify::new(Columns::one(*column)).with(Width::wrap(TEXT_WIDTH).keep_words(true)),
        );
    }
    table.to_string()
}

/// One call's turns.
pub fn call_table(log: &CallLog) -> String {
    let rows = log
        .turns
        .iter()
        .enumerate()
        .map(|(i, t)| TurnRow {
            turn: turn_label(t, i),
            user: super::escape_controls(&t.user).into_owned(),
            agent: agent_cell(t),
            first: latency(t.first_chunk),
            complete: latency(t.complete),
            chunks: t.chunks,
        })
        .collect();
    wrapped(rows, &[1, 2])
}

#[derive(Tabled)]
struct ManyRow {
    turn: usize,
    #[tabled(rename = "user said (first call)")]
    user: String,
    calls: usize,
    #[tabled(rename = "first chunk p50")]
    first50: String,
    #[tabled(rename = "p95")]
    first95: String,
    #[tabled(rename = "complete p50")]
    complete50: String,
    failed: usize,
}

/// Many calls: each turn's latencies across the calls.
pub fn many_table<'a>(logs: impl Iterator<Item = &'a CallLog> + Clone) -> String {
    let most = logs.clone().map(|l| l.turns.len()).max().unwrap_or(0);
    let rows = (0..most)
        .map(|i| {
            let turns: Vec<&Turn> = logs.clone().filter_map(|l| l.turns.get(i)).collect();
            let first: Vec<_> = turns.iter().filter_map(|t| t.first_chunk).collect();
            let complete: Vec<_> = turns.iter().filter_map(|t| t.complete).collect();
            let f = percentiles(&first, &[0.5, 0.95]);
            let c = percentiles(&complete, &[0.5]);
            ManyRow {
                turn: i,
                user: turns
                    .first()
                    .map(|t| super::escape_controls(&t.user).into_owned())
                    .unwrap_or_default(),
                calls: turns.len(),
                first50: latency(f[0]),
                first95: latency(f[1]),
                complete50: latency(c[0]),
                failed: turns.iter().filter(|t| t.error.is_some()).count(),
            }
        })
        .collect();
    wrapped(rows, &[1])
}

#[derive(Tabled)]
struct CaseRow {
    case: String,
    result: &'static str,
    reason: String,
}

pub fn cases_table(results: &[CaseResult]) -> String {
    let rows: Vec<CaseRow> = results
        .iter()
        .map(|r| CaseRow {
            case: r.name.clone(),
            result: r.result.word(),
            reason: super::escape_controls(r.reason.as_deref().unwrap_or_default()).into_owned(),
        })
        .collect();
    let mut table = tabled::Table::new(rows);
    table.with(tabled::settings::Style::sharp());
    table.with(Modify::new(Columns::one(2)).with(Width::wrap(72).keep_words(true)));
    table.to_string()
}

/// `uponai · ws://...: 1 call, 6 turns; first chunk p50 3.1 ms, p95 4.0 ms; complete p50 ...;
/// 10 passed, 0 failed, 2 skipped in 1.2s`
pub fn summary(report: &Report) -> String {
    let [f50, f95, c50, c95] = report.latencies();
    let calls = report.logs.len();
    let turns = report.turns().count();
    let failed = report.count(Outcome::Failed);
    let counts = format!(
        "{} passed, {failed} failed, {} skipped",
        report.count(Outcome::Passed),
        report.count(Outcome::Skipped)
    );
    let counts = if failed > 0 {
        bad(&counts)
    } else {
        good(&counts)
    };
    let note = if report.interrupted {
        format!("\n{}", warn("interrupted (Ctrl-C): the report so far"))
    } else {
        String::new()
    };
    format!(
        "{} · {}: {calls} call{}, {turns} turns; first chunk p50 {}, p95 {}; complete p50 {}, p95 {}\n{counts} in {}{note}",
        report.platform,
        report.url,
        if calls == 1 { "" } else { "s" },
        latency(f50),
        latency(f95),
        latency(c50),
        latency(c95),
        crate::duration::short(report.elapsed)
    )
}

/// The failed cases' reasons, one line each: the protocol findings.
pub fn findings(report: &Report) -> Vec<String> {
    report
        .results
        .iter()
        .filter(|r| r.result == Outcome::Failed)
        .map(|r| {
            warn(&format!(
                "{}: {}",
                r.name,
                super::escape_controls(r.reason.as_deref().unwrap_or_default())
            ))
        })
        .collect()
}

/// Every turn of every call, as JSON objects.
pub fn turns_json(report: &Report) -> Vec<LlmTurnJson<'_>> {
    report
        .logs
        .iter()
        .enumerate()
        .flat_map(|(call, log)| {
            log.turns.iter().enumerate().map(move |(i, t)| LlmTurnJson {
                kind: "turn",
                call: call + 1,
                call_id: &log.call_id,
                scenario: &log.scenario,
                turn: i,
                ask: t.ask.word(),
                response_id: t.response_id,
                user: &t.user,
                agent: &t.agent,
                first_chunk_ms: t.first_chunk.map(ms),
                complete_ms: t.complete.map(ms),
                chunks: t.chunks,
                end_call: t.end_call,
                transfer_number: t.transfer_number.as_deref(),
                tool_calls: &t.tool_calls,
                interrupted: t.interrupted,
                error: t.error.as_deref(),
            })
        })
        .collect()
}

pub fn case_json(result: &CaseResult) -> LlmCaseJson<'_> {
    LlmCaseJson {
        kind: "case",
        case: &result.name,
        result: result.result.word(),
        reason: result.reason.as_deref(),
    }
}

pub fn summary_json(report: &Report, exit_code: u8) -> LlmSummaryJson<'_> {
    let [f50, f95, c50, c95] = report.latencies();
    LlmSummaryJson {
        kind: "summary",
        platform: &report.platform,
        url: &report.url,
        calls: report.logs.len(),
        turns: report.turns().count(),
        first_chunk_p50_ms: f50.map(ms),
        first_chunk_p95_ms: f95.map(ms),
        complete_p50_ms: c50.map(ms),
        complete_p95_ms: c95.map(ms),
        passed: report.count(Outcome::Passed),
        failed: report.count(Outcome::Failed),
        skipped: report.count(Outcome::Skipped),
        seconds: (report.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        interrupted: report.interrupted,
        exit_code,
    }
}

/// JUnit XML: one testcase per case; the latency summary in the suite's system-out.
pub fn junit(report: &Report) -> Result<String, quick_junit::SerializeError> {
    let mut suite = TestSuite::new(format!("hookcli llm {}", report.platform));
    for result in &report.results {
        let reason = result.reason.clone().unwrap_or_default();
        let status = match result.result {
            Outcome::Failed => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status.set_message(reason.clone()).set_type("protocol");
                status
            }
            Outcome::Skipped => {
                let mut status = TestCaseStatus::skipped();
                status.set_message(reason.clone());
                status
            }
            Outcome::Passed => TestCaseStatus::success(),
        };
        let mut case = TestCase::new(result.name.clone(), status);
        case.set_classname(format!("hookcli.{}.llm", report.platform));
        if result.result == Outcome::Passed && !reason.is_empty() {
            case.set_system_out(reason);
        }
        suite.add_test_case(case);
    }
    suite.set_time(report.elapsed);
    suite.set_system_out(strip(&summary(report)));
    let mut junit = Junit::new("hookcli llm");
    junit.add_test_suite(suite);
    junit.set_time(report.elapsed);
    junit.to_string()
}

/// The summary without colour codes, for the XML.
fn strip(text: &str) -> String {
    console::strip_ansi_codes(text).into_owned()
}

#[derive(Tabled)]
struct ListRow {
    case: &'static str,
    checks: &'static str,
}

pub fn list(cases: &[&Case]) -> String {
    let rows: Vec<ListRow> = cases
        .iter()
        .map(|c| ListRow {
            case: c.name,
            checks: c.about,
        })
        .collect();
    let mut table = tabled::Table::new(rows);
    table.with(tabled::settings::Style::sharp());
    table.with(Modify::new(Columns::one(1)).with(Width::wrap(72).keep_words(true)));
    table.to_string()
}

pub fn list_json(case: &Case) -> LlmListJson<'_> {
    LlmListJson {
        case: case.name,
        checks: case.about,
    }
}
