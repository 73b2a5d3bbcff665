//! A replay's results: one row per delivery (or per event when there are many calls), totals,
//! and the JSON lines.

use std::collections::BTreeMap;
use std::time::Duration;

use tabled::Tabled;

use super::json::{ReplaySummaryJson, SkippedJson, ms};
use super::{bad, dim, escape_controls, good, table, warn};
use crate::text::status_text;

/// One delivery, reduced to what the report shows (no bodies kept).
#[derive(Clone, Debug)]
pub struct Row {
    pub call: usize,
    pub seq: usize,
    pub event: String,
    pub call_id: Option<String>,
    pub status: Option<u16>,
    pub attempts: usize,
    pub latency: Option<Duration>,
    /// delivered, failed, unreachable or filtered.
    pub outcome: &'static str,
    pub reason: String,
    /// What the built-in receiver made of it, when it was the target.
    pub receiver: Option<String>,
}

#[derive(Default, Debug)]
pub struct Totals {
    pub calls: usize,
    /// Calls whose last event has its outcome; fewer than `calls` only when interrupted.
    pub calls_finished: usize,
    pub delivered: u64,
    pub failed: u64,
    pub unreachable: u64,
    pub filtered: u64,
    pub slowest: Option<(Duration, String)>,
    pub elapsed: Duration,
    /// Calls whose task died before their last event (a hookcli bug, reported on stderr).
    pub crashed: u64,
    /// Ctrl-C (or SIGTERM) stopped the replay: the totals are the report so far.
    pub interrupted: bool,
    /// With --from: what the recording held that was not replayed.
    pub left_out: Option<crate::replay::LeftOut>,
}

impl Totals {
    pub fn add(&mut self, row: &Row) {
        match row.outcome {
            "delivered" => self.delivered += 1,
            "failed" => self.failed += 1,
            "unreachable" => self.unreachable += 1,
            _ => self.filtered += 1,
        }
        if let Some(latency) = row.latency
            && self.slowest.as_ref().is_none_or(|(s, _)| latency > *s)
        {
            self.slowest = Some((latency, row.event.clone()));
        }
    }

    /// The interrupted run's closing line: what it did not get to.
    pub fn interrupted_line(&self) -> String {
        let unfinished = self.calls - self.calls_finished.min(self.calls);
        warn(&format!(
            "interrupted: the report so far; {} of {} call{} finished, {unfinished} unfinished",
            self.calls_finished,
            self.calls,
            if self.calls == 1 { "" } else { "s" }
        ))
    }

    pub fn line(&self) -> String {
        let mut parts = vec![good(&format!("{} delivered", self.delivered))];
        let failed = format!("{} failed", self.failed);
        parts.push(if self.failed > 0 {
            bad(&failed)
        } else {
            failed
        });
        if self.unreachable > 0 {
            parts.push(bad(&format!("{} unreachable", self.unreachable)));
        }
        parts.push(format!("{} filtered", self.filtered));
        if self.crashed > 0 {
            let calls = if self.crashed == 1 { "call" } else { "calls" };
            parts.push(bad(&format!("{} {calls} crashed", self.crashed)));
        }
        if let Some((latency, event)) = &self.slowest {
            parts.push(format!(
                "slowest {} ({})",
                crate::duration::latency(*latency),
                escape_controls(event)
            ));
        }
        let calls = if self.calls == 1 {
            "1 call".to_string()
        } else {
            format!("{} calls", self.calls)
        };
        format!(
            "{} · {calls} in {}",
            parts.join(", "),
            crate::duration::short(self.elapsed)
        )
    }

    /// `skipped from the recording: 2 too large, 1 torn, ...`, when --from left anything out.
    pub fn left_out_line(&self) -> Option<String> {
        let left = self.left_out.filter(|l| l.total() > 0)?;
        let parts: Vec<String> = [
            (left.too_large, "too large (not recorded)"),
            (left.torn, "torn"),
            (
                left.rejected,
                "rejected by listen (--include-rejected replays them)",
            ),
            (left.not_deliveries, "not webhook deliveries"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| match (*n, *what) {
            (1, "not webhook deliveries") => "1 not a webhook delivery".to_string(),
            (n, what) => format!("{n} {what}"),
        })
        .collect();
        Some(dim(&format!(
            "skipped from the recording: {}",
            parts.join(", ")
        )))
    }

    pub fn json(&self) -> ReplaySummaryJson {
        ReplaySummaryJson {
            kind: "summary",
            calls: self.calls,
            calls_finished: self.calls_finished,
            deliveries: self.delivered + self.failed + self.unreachable,
            delivered: self.delivered,
            failed: self.failed,
            unreachable: self.unreachable,
            filtered: self.filtered,
            slowest_ms: self.slowest.as_ref().map(|(d, _)| ms(*d)),
            elapsed_ms: self.elapsed.as_millis() as u64,
            crashed: self.crashed,
            interrupted: self.interrupted,
            skipped: self.left_out.map(|l| SkippedJson {
                too_large: l.too_large,
                torn: l.torn,
                rejected: l.rejected,
                not_deliveries: l.not_deliveries,
            }),
        }
    }
}

#[derive(Tabled)]
struct DeliveryRow {
    #[tabled(rename = "#")]
    n: String,
    event: String,
    status: String,
    attempts: String,
    latency: String,
    verdict: String,
}

#[derive(Tabled)]
struct DeliveryRowWithReceiver {
    #[tabled(inline)]
    row: DeliveryRow,
    receiver: String,
}

fn delivery_row(row: &Row, many_calls: bool) -> DeliveryRow {
    let n = if many_calls {
        format!("{}.{}", row.call + 1, row.seq + 1)
    } else {
        (row.seq + 1).to_string()
    };
    let verdict = match row.outcome {
        "delivered" => good("delivered"),
        "filtered" => warn("filtered"),
        other if row.reason.is_empty() => bad(other),
        other => bad(&format!("{other}: {}", escape_controls(&row.reason))),
    };
    DeliveryRow {
        n,
        // A recorded body's event name came from the wire.
        event: escape_controls(&row.event).into_owned(),
        status: row.status.map(status_text).unwrap_or_else(|| "-".into()),
        attempts: if row.outcome == "filtered" {
            "-".into()
        } else {
            row.attempts.to_string()
        },
        latency: row
            .latency
            .map(crate::duration::latency)
            .unwrap_or_else(|| "-".into()),
        verdict,
    }
}

/// One row per delivery.
pub fn delivery_table(rows: &[Row], many_calls: bool) -> String {
    if rows.iter().any(|r| r.receiver.is_some()) {
        return table(rows.iter().map(|r| DeliveryRowWithReceiver {
            row: delivery_row(r, many_calls),
            receiver: r.receiver.clone().unwrap_or_else(|| "-".into()),
        }));
    }
    table(rows.iter().map(|r| delivery_row(r, many_calls)))
}

#[derive(Tabled)]
struct EventRow {
    event: String,
    sent: u64,
    delivered: u64,
    failed: u64,
    filtered: u64,
    slowest: String,
}

/// One event's sums across many calls.
#[derive(Default)]
struct EventSums {
    sent: u64,
    delivered: u64,
    failed: u64,
    filtered: u64,
    slowest: Duration,
}

/// Per-event sums, for many calls, keyed by (place in the lifecycle, event).
#[derive(Default)]
pub struct ByEvent(BTreeMap<(usize, String), EventSums>);

impl ByEvent {
    /// `order` keeps events in lifecycle order rather than by name.
    pub fn add(&mut self, row: &Row, order: usize) {
        let sums = self.0.entry((order, row.event.clone())).or_default();
        match row.outcome {
            "delivered" => sums.delivered += 1,
            "filtered" => sums.filtered += 1,
            _ => sums.failed += 1,
        }
        if row.outcome != "filtered" {
            sums.sent += 1;
        }
        sums.slowest = sums.slowest.max(row.latency.unwrap_or_default());
    }

    pub fn table(&self) -> String {
        table(self.0.iter().map(|((_, event), sums)| EventRow {
            event: escape_controls(event).into_owned(),
            sent: sums.sent,
            delivered: sums.delivered,
            failed: sums.failed,
            filtered: sums.filtered,
            slowest: if sums.sent > 0 {
                crate::duration::latency(sums.slowest)
            } else {
                "-".into()
            },
        }))
    }
}
