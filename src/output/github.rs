//! `check --format github`: GitHub Actions workflow commands (an `::error` annotation per failed
//! case, `::warning` per warning), the Markdown job summary (failures first) and the step
//! outputs. The command layer decides where each goes; this only says what they read.

use std::cmp::Reverse;

use super::check::{latency, receiver_line, statuses};
use crate::check::{CaseOutcome, CheckReport};

/// The title every annotation carries, so the checks tab groups them.
const TITLE: &str = "hookcli check";

/// One workflow command per failed or warning case (and one for a receiver that stopped),
/// each a single line whatever the reason holds.
pub fn annotations(report: &CheckReport) -> String {
    let mut lines = String::new();
    for result in &report.results {
        let level = match result.result {
            CaseOutcome::Failed => "error",
            CaseOutcome::Warning => "warning",
            CaseOutcome::Passed | CaseOutcome::Skipped => continue,
        };
        let reason = result.reason.as_deref().unwrap_or("failed");
        let message = format!(
            "{reason} (status: {}, latency: {})",
            statuses(result),
            latency(result)
        );
        lines.push_str(&command(
            level,
            &format!("{TITLE}: {}", result.name),
            &message,
        ));
    }
    if let Some(line) = receiver_line(report) {
        lines.push_str(&command("error", TITLE, &line));
    }
    lines
}

/// The annotation for a run that could not start (the receiver unreachable, exit 3).
pub fn unreachable_annotation(message: &str) -> String {
    command("error", TITLE, message)
}

/// `::LEVEL title=TITLE::MESSAGE`, escaped as the runner's parser expects: a newline in a
/// reason would otherwise end the command and print the rest as plain log text.
fn command(level: &str, title: &str, message: &str) -> String {
    format!(
        "::{level} title={}::{}\n",
        escape_property(title),
        escape_data(message)
    )
}

fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// The job summary: a heading, the counts, and a table of every case, failures first, then
/// warnings, skipped and passed, each in the order it ran.
pub fn summary(report: &CheckReport, exit_code: u8) -> String {
    let mut text = heading(&report.platform, &report.url);
    let failed = report.count(CaseOutcome::Failed);
    let warnings = report.count(CaseOutcome::Warning);
    let verdict = if failed > 0 {
        "❌"
    } else if warnings > 0 {
        "⚠️"
    } else {
        "✅"
    };
    text.push_str(&format!(
        "{verdict} **{} passed, {failed} failed, {warnings} warning{}, {} skipped** in {} \
         (exit {exit_code})\n\n",
        report.count(CaseOutcome::Passed),
        if warnings == 1 { "" } else { "s" },
        report.count(CaseOutcome::Skipped),
        crate::duration::short(report.elapsed)
    ));
    for note in [receiver_line(report), interrupted(report)]
        .into_iter()
        .flatten()
        .chain(super::check::root_cause_lines(report))
    {
        text.push_str(&format!("> {}\n\n", cell(&note)));
    }
    text.push_str("| Case | Result | Severity | Status | Latency | Reason |\n");
    text.push_str("| --- | --- | --- | --- | --- | --- |\n");
    let mut rows: Vec<_> = report.results.iter().collect();
    rows.sort_by_key(|r| Reverse(r.result));
    for result in rows {
        text.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            result.name.replace('`', "'"),
            outcome(result.result),
            result.severity.word(),
            statuses(result),
            latency(result),
            cell(result.reason.as_deref().unwrap_or(""))
        ));
    }
    text.push('\n');
    text
}

/// The summary of a run that could not start: the heading and why.
pub fn unreachable_summary(platform: &str, url: &str, message: &str) -> String {
    format!(
        "{}❌ **no case ran** (exit 3): {}\n\n",
        heading(platform, url),
        cell(message)
    )
}

/// `passed=N` lines for $GITHUB_OUTPUT, which an Action exposes as its outputs.
pub fn outputs(report: &CheckReport) -> String {
    format!(
        "passed={}\nfailed={}\nwarnings={}\nskipped={}\n",
        report.count(CaseOutcome::Passed),
        report.count(CaseOutcome::Failed),
        report.count(CaseOutcome::Warning),
        report.count(CaseOutcome::Skipped)
    )
}

fn heading(platform: &str, url: &str) -> String {
    format!("### hookcli check · {} · {}\n\n", cell(platform), cell(url))
}

fn interrupted(report: &CheckReport) -> Option<String> {
    report
        .interrupted
        .then(|| "interrupted: the report so far (the unfinished cases are skipped)".to_string())
}

fn outcome(result: CaseOutcome) -> &'static str {
    match result {
        CaseOutcome::Failed => "❌ failed",
        CaseOutcome::Warning => "⚠️ warning",
        CaseOutcome::Skipped => "⏭️ skipped",
        CaseOutcome::Passed => "✅ passed",
    }
}

/// Text for one table cell: a reason quotes the receiver, whose answer must neither break the
/// table (`|`, a newline) nor become HTML in the summary page.
fn cell(text: &str) -> String {
    super::escape_controls(&text.replace("\r\n", "\n").replace('\n', " "))
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newline_in_a_message_cannot_start_a_command_of_its_own() {
        let line = command("error", "a: b, c", "first\n::set-env name=X::1\r100%");
        assert_eq!(
            line,
            "::error title=a%3A b%2C c::first%0A::set-env name=X::1%0D100%25\n"
        );
        assert_eq!(line.lines().count(), 1);
    }

    #[test]
    fn a_cell_cannot_break_the_table_or_carry_html() {
        assert_eq!(
            cell("a | b\n<script>&\u{1b}[31m"),
            "a \\| b &lt;script&gt;&amp;\\u{1b}[31m"
        );
    }
}
