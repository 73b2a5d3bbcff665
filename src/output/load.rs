//! The load report as text and as the documented JSON object
//! (schemas/load-report.schema.json), and the live display while it runs.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use super::json::{LoadReportJson, Requested};
use super::{bad, bold, dim, good, thousands, warn};
use crate::load::histogram::{self, HistogramError};
use crate::load::{FailKind, Report};
use crate::policy::SuccessRule;
use crate::text::status_text;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What was asked for, to head the report.
pub struct LoadRun<'a> {
    pub platform: &'a str,
    /// `Some` for a single event; `None` with a lifecycle.
    pub event: Option<&'a str>,
    pub lifecycle: Option<&'a str>,
    pub url: &'a str,
    pub connections: u32,
    pub count: Option<u64>,
    pub duration: Option<Duration>,
    pub rate: Option<f64>,
    pub timeout: Duration,
    pub retries: u32,
    pub rule: &'a SuccessRule,
    pub platform_timeout: Duration,
    pub interrupted: bool,
    /// The host, when the receiver was unreachable because its name does not resolve.
    pub unresolved: Option<&'a str>,
}

/// Milliseconds with three decimals: load's latencies are in microseconds.
fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

fn per_second(n: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        ((n as f64 / secs) * 10.0).round() / 10.0
    } else {
        0.0
    }
}

/// Counts by status, keyed by the status as text (a JSON object's keys are strings).
fn statuses(counts: &[(u16, u64)]) -> BTreeMap<String, u64> {
    counts.iter().map(|(s, n)| (s.to_string(), *n)).collect()
}

/// Latency quantiles in milliseconds, from the histogram (recorded in microseconds).
fn quantiles(report: &Report) -> Option<[(&'static str, f64); 7]> {
    quantiles_of(&report.tally.latency)
}

fn quantiles_of(h: &hdrhistogram::Histogram<u64>) -> Option<[(&'static str, f64); 7]> {
    if h.is_empty() {
        return None;
    }
    let at = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    Some([
        ("min", h.min() as f64 / 1000.0),
        ("mean", (h.mean() / 1000.0 * 1000.0).round() / 1000.0),
        ("p50", at(0.5)),
        ("p90", at(0.9)),
        ("p99", at(0.99)),
        ("p99_9", at(0.999)),
        ("max", h.max() as f64 / 1000.0),
    ])
}

/// `latency_ms`: the quantiles as a JSON object, null when nothing was answered.
fn latency_json(
    h: &hdrhistogram::Histogram<u64>,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    quantiles_of(h).map(|q| {
        q.into_iter()
            .map(|(name, v)| (name.to_string(), v.into()))
            .collect()
    })
}

impl LoadRun<'_> {
    /// The one JSON report.
    pub fn json(&self, report: &Report) -> Result<LoadReportJson, HistogramError> {
        let t = &report.tally;
        Ok(LoadReportJson {
            platform: self.platform.to_string(),
            event: self.event.map(str::to_string),
            lifecycle: self.lifecycle.map(str::to_string),
            url: self.url.to_string(),
            connections: self.connections,
            requested: Requested {
                count: self.count,
                duration_ms: self.duration.map(ms),
                rate: self.rate,
            },
            timeout_ms: ms(self.timeout),
            retries: self.retries,
            rule: self.rule.to_string(),
            interrupted: self.interrupted,
            elapsed_ms: ms(report.elapsed),
            deliveries: t.deliveries,
            requests: t.attempts,
            retried: t.retried,
            deliveries_per_second: per_second(t.deliveries, report.elapsed),
            requests_per_second: per_second(t.attempts, report.elapsed),
            succeeded: t.succeeded,
            failed: t.failed(),
            unfinished: t.unfinished,
            success_statuses: statuses(&t.success_statuses),
            failures: FailKind::ALL
                .iter()
                .map(|k| (k.word().to_string(), t.failures_of(*k).into()))
                .collect(),
            failure_statuses: statuses(&t.failure_statuses),
            latency_ms: latency_json(&t.latency),
            platform_timeout_ms: ms(self.platform_timeout),
            platform_timeouts: t.platform_timeouts,
            reconnected: t.reconnected,
            started_at: crate::text::iso_millis(report.started_at),
            ended_at: crate::text::iso_millis(report.started_at + report.elapsed),
            latency_histogram: histogram::encode(&t.latency)?,
            version: env!("CARGO_PKG_VERSION").to_string(),
            reports: 1,
        })
    }

    /// The human report.
    pub fn text(&self, report: &Report) -> String {
        let t = &report.tally;
        let mut out = String::new();
        let what = match (self.event, self.lifecycle) {
            (Some(event), _) => event.to_string(),
            (None, Some(lifecycle)) => format!("{lifecycle} lifecycle"),
            (None, None) => "event".to_string(),
        };
        let _ = writeln!(
            out,
            "{} {} {} {what} deliveries to {} over {} connection{} in {}",
            bold("load:"),
            thousands(t.deliveries),
            self.platform,
            self.url,
            self.connections,
            if self.connections == 1 { "" } else { "s" },
            seconds(report.elapsed),
        );
        if self.interrupted {
            let _ = writeln!(out, "  {}", warn("interrupted: the report so far"));
        }
        let _ = writeln!(
            out,
            "  throughput  {} deliveries/s",
            bold(&format!("{:.1}", per_second(t.deliveries, report.elapsed)))
        );
        let ok: Vec<String> = t
            .success_statuses
            .iter()
            .map(|(s, n)| format!("{} × {}", status_text(*s), thousands(*n)))
            .collect();
        let _ = writeln!(
            out,
            "  succeeded   {}{}",
            good(&thousands(t.succeeded)),
            if ok.is_empty() {
                String::new()
            } else {
                format!("  {}", dim(&ok.join(", ")))
            }
        );
        let kinds: Vec<String> = FailKind::ALL
            .iter()
            .map(|k| {
                let n = t.failures_of(*k);
                let text = format!("{} {}", k.word(), thousands(n));
                if *k == FailKind::Status && n > 0 {
                    let by: Vec<String> = t
                        .failure_statuses
                        .iter()
                        .map(|(s, n)| format!("{s} × {}", thousands(*n)))
                        .collect();
                    format!("{text} ({})", by.join(", "))
                } else {
                    text
                }
            })
            .collect();
        let failed = thousands(t.failed());
        let failed = if t.failed() > 0 { bad(&failed) } else { failed };
        let _ = writeln!(out, "  failed      {failed}  {}", dim(&kinds.join(", ")));
        if t.unfinished > 0 {
            let line = format!(
                "{} failed and still waiting for a retry when the load stopped: not delivered",
                thousands(t.unfinished)
            );
            let _ = writeln!(out, "  unfinished  {}", bad(&line));
        }
        if t.unreachable() {
            let _ = writeln!(
                out,
                "  {}",
                bad(&match self.unresolved {
                    Some(host) => format!(
                        "unreachable: `{host}` does not resolve, so no connection to {} was made",
                        self.url
                    ),
                    None => format!(
                        "unreachable: no connection to {} succeeded; is the receiver running there?",
                        self.url
                    ),
                })
            );
        }
        if let Some(q) = quantiles(report) {
            let parts: Vec<String> = q
                .iter()
                .filter(|(name, _)| *name != "min" && *name != "mean")
                .map(|(name, v)| format!("{} {}", name.replace('_', "."), latency(*v)))
                .collect();
            let _ = writeln!(out, "  latency     {}", parts.join("  "));
        } else if t.attempts > 0 {
            let _ = writeln!(out, "  latency     none: no request got an answer");
        }
        if self.retries > 0 {
            let _ = writeln!(
                out,
                "  retries     {} extra requests: {} requests in all, {:.1}/s ({:.2} per delivery)",
                thousands(t.retried),
                thousands(t.attempts),
                per_second(t.attempts, report.elapsed),
                // Over every delivery started: an unfinished one's attempts count too.
                t.attempts as f64 / (t.deliveries + t.unfinished).max(1) as f64,
            );
            let _ = writeln!(
                out,
                "  {}",
                dim(&format!(
                    "(up to {} per failed delivery, each after the backoff while new deliveries go on: the retry storm)",
                    if self.retries == 1 {
                        "1 retry".to_string()
                    } else {
                        format!("{} retries", self.retries)
                    }
                ))
            );
        }
        let slow = t.platform_timeouts;
        let line = format!(
            "{} of {} requests slower than {}'s {} timeout",
            thousands(slow),
            thousands(t.attempts),
            self.platform,
            crate::duration::short(self.platform_timeout)
        );
        let line = if slow > 0 { warn(&line) } else { line };
        let _ = writeln!(out, "  platform    {line}");
        if t.reconnected > 0 {
            let line = format!(
                "reconnected {}: requests sent again on a fresh connection, the receiver had closed the kept-alive one without `Connection: close`",
                thousands(t.reconnected)
            );
            let _ = writeln!(out, "  {}", warn(&line));
        }
        if self.timeout < self.platform_timeout {
            let _ = writeln!(
                out,
                "  {}",
                dim(&format!(
                    "(--timeout {} cuts requests before the platform would)",
                    crate::duration::short(self.timeout)
                ))
            );
        }
        out
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

fn latency(ms: f64) -> String {
    crate::duration::latency(Duration::from_secs_f64(ms / 1000.0))
}

/// The live line on stderr: shown on a terminal only, never with --json.
pub fn progress(visible: bool, total: Option<u64>) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
    };
    let template = if total.is_some() {
        "{spinner} [{elapsed_precise}] {wide_bar} {msg}"
    } else {
        "{spinner} [{elapsed_precise}] {msg}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

/// Updates the live line: deliveries, throughput over the last tick, failures and retries so
/// far (retries only once there are some).
pub fn tick(bar: &ProgressBar, delivered: u64, failed: u64, retried: u64, per_second: f64) {
    bar.set_position(delivered);
    let retries = if retried > 0 {
        format!(" · {} retries", thousands(retried))
    } else {
        String::new()
    };
    bar.set_message(format!(
        "{} deliveries · {}/s · {} failed{retries}",
        thousands(delivered),
        thousands(per_second.round() as u64),
        thousands(failed)
    ));
}

/// Why reports cannot be merged into one.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error(
        "{file}: its {field} is {theirs}, and {first}'s is {ours}: only runs of one load merge"
    )]
    Differs {
        file: String,
        first: String,
        field: &'static str,
        theirs: String,
        ours: String,
    },
    #[error("{file}: its latency_histogram is {why}")]
    Histogram { file: String, why: HistogramError },
    #[error("{file}: its {field} `{value}` is not an RFC 3339 time")]
    Time {
        file: String,
        field: &'static str,
        value: String,
    },
}

/// One report per machine, named by its file, combined into the report of the whole load: the
/// histograms and counts added, the percentiles recomputed from the merged histogram,
/// started_at the earliest and ended_at the latest, and the rates over that span. What makes
/// them one load (platform, event, lifecycle, rule, timeouts, retries) must agree; URLs that
/// differ are listed. Requested count and rate add up; the requested duration is the longest.
pub fn merge(reports: &[(String, LoadReportJson)]) -> Result<LoadReportJson, MergeError> {
    let (first_file, first) = &reports[0];
    let mut merged = first.clone();
    let mut histogram = histogram::empty();
    let mut span: Option<(std::time::SystemTime, std::time::SystemTime)> = None;
    let mut urls: Vec<&str> = Vec::new();
    for (i, (file, r)) in reports.iter().enumerate() {
        same(first_file, first, file, r)?;
        let decoded =
            histogram::decode(&r.latency_histogram).map_err(|why| MergeError::Histogram {
                file: file.clone(),
                why,
            })?;
        // Cannot fail: the merged histogram resizes to take any value.
        let _ = histogram.add(&decoded);
        let start = time(file, "started_at", &r.started_at)?;
        let end = time(file, "ended_at", &r.ended_at)?;
        span = Some(match span {
            Some((s, e)) => (s.min(start), e.max(end)),
            None => (start, end),
        });
        if !urls.contains(&r.url.as_str()) {
            urls.push(&r.url);
        }
        if i > 0 {
            add(&mut merged, r);
        }
    }
    let (start, end) = span.expect("at least one report");
    let elapsed = end.duration_since(start).unwrap_or_default();
    merged.url = urls.join(", ");
    merged.started_at = crate::text::iso_millis(start);
    merged.ended_at = crate::text::iso_millis(end);
    merged.elapsed_ms = ms(elapsed);
    merged.deliveries_per_second = per_second(merged.deliveries, elapsed);
    merged.requests_per_second = per_second(merged.requests, elapsed);
    merged.latency_ms = latency_json(&histogram);
    merged.latency_histogram =
        histogram::encode(&histogram).map_err(|why| MergeError::Histogram {
            file: "the merged report".into(),
            why,
        })?;
    Ok(merged)
}

/// The settings that make two reports runs of one load must be equal.
fn same(
    first_file: &str,
    first: &LoadReportJson,
    file: &str,
    r: &LoadReportJson,
) -> Result<(), MergeError> {
    let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
    let fields: [(&'static str, String, String); 7] = [
        ("platform", first.platform.clone(), r.platform.clone()),
        ("event", text(&first.event), text(&r.event)),
        ("lifecycle", text(&first.lifecycle), text(&r.lifecycle)),
        ("rule", first.rule.clone(), r.rule.clone()),
        (
            "timeout_ms",
            first.timeout_ms.to_string(),
            r.timeout_ms.to_string(),
        ),
        ("retries", first.retries.to_string(), r.retries.to_string()),
        (
            "platform_timeout_ms",
            first.platform_timeout_ms.to_string(),
            r.platform_timeout_ms.to_string(),
        ),
    ];
    match fields.into_iter().find(|(_, ours, theirs)| ours != theirs) {
        Some((field, ours, theirs)) => Err(MergeError::Differs {
            file: file.to_string(),
            first: first_file.to_string(),
            field,
            theirs,
            ours,
        }),
        None => Ok(()),
    }
}

fn time(file: &str, field: &'static str, value: &str) -> Result<std::time::SystemTime, MergeError> {
    humantime::parse_rfc3339_weak(value).map_err(|_| MergeError::Time {
        file: file.to_string(),
        field,
        value: value.to_string(),
    })
}

/// Adds one more report's counts into the merged one.
fn add(merged: &mut LoadReportJson, r: &LoadReportJson) {
    merged.connections = merged.connections.saturating_add(r.connections);
    let q = &mut merged.requested;
    q.count = q.count.zip(r.requested.count).map(|(a, b)| a + b);
    q.duration_ms = q
        .duration_ms
        .zip(r.requested.duration_ms)
        .map(|(a, b)| a.max(b));
    q.rate = q.rate.zip(r.requested.rate).map(|(a, b)| a + b);
    merged.interrupted |= r.interrupted;
    merged.deliveries += r.deliveries;
    merged.requests += r.requests;
    merged.retried += r.retried;
    merged.succeeded += r.succeeded;
    merged.failed += r.failed;
    merged.unfinished += r.unfinished;
    for (status, n) in &r.success_statuses {
        *merged.success_statuses.entry(status.clone()).or_default() += n;
    }
    for (status, n) in &r.failure_statuses {
        *merged.failure_statuses.entry(status.clone()).or_default() += n;
    }
    for (kind, n) in &r.failures {
        let sum = merged
            .failures
            .get(kind)
            .and_then(|v| v.as_u64())
            .unwrap_or(0)
            + n.as_u64().unwrap_or(0);
        merged.failures.insert(kind.clone(), sum.into());
    }
    merged.platform_timeouts += r.platform_timeouts;
    merged.reconnected += r.reconnected;
    merged.reports += r.reports;
}
