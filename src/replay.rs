//! Replaying whole calls: plan each call's deliveries from a lifecycle (or a recording), then
//! deliver them in order per call, calls interleaved up to a concurrency, paced as asked.
//! Nothing here prints: each result goes out on a channel as it completes.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::{Semaphore, mpsc};

use crate::call::{Anchor, Call, CallPlan, RenderError};
use crate::catalog::{Catalog, Lifecycle, Platform};
use crate::delivery::{self, Delivery, Request};
use crate::policy::DeliveryPolicy;

/// Which events the (simulated) agent subscribes to: uponai's `webhook_events`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventFilter {
    /// The platform's defaults (`default = true` in platform.toml).
    Defaults,
    All,
    Only(BTreeSet<String>),
}

impl EventFilter {
    pub fn wants(&self, platform: &Platform, event: &str) -> bool {
        match self {
            EventFilter::All => true,
            EventFilter::Only(names) => names.contains(event),
            // Events the platform does not list (a recording's custom ones) go through.
            EventFilter::Defaults => platform.event(event).is_none_or(|e| e.default),
        }
    }
}

/// One delivery of a call, ready to go.
#[derive(Clone, Debug)]
pub struct Planned {
    pub event: String,
    pub call_id: Option<String>,
    pub body: Bytes,
    /// When to send it, relative to the call's first event (for --realtime).
    pub offset: Duration,
    pub filtered: bool,
}

/// Renders every step of one call of `lifecycle`, in order.
pub fn plan_lifecycle(
    catalog: &Catalog,
    platform: &Platform,
    lifecycle: &Lifecycle,
    filter: &EventFilter,
    anchor: Anchor,
    rng: &mut impl rand::Rng,
) -> Result<Vec<Planned>, RenderError> {
    let call = Call::generate(
        catalog,
        platform,
        &CallPlan::for_lifecycle(platform, lifecycle, anchor),
        rng,
    )?;
    let mut planned = Vec::new();
    let mut first_ms = None;
    for step in &lifecycle.steps {
        let Some(event) = platform.event(&step.event) else {
            continue;
        };
        let turns: Vec<Option<usize>> = if step.per_turn {
            (0..call.turn_count()).map(Some).collect()
        } else {
            vec![None]
        };
        for turn in turns {
            let value = call.render(event, turn)?;
            let at_ms = call.moment_ms(event.at, turn);
            let first = *first_ms.get_or_insert(at_ms);
            planned.push(Planned {
                event: event.name.clone(),
                call_id: platform.call_id_of(&value),
                body: Bytes::from(serde_json::to_vec(&value).unwrap_or_default()),
                offset: Duration::from_millis(at_ms.saturating_sub(first)),
                filtered: !filter.wants(platform, &event.name),
            });
        }
    }
    Ok(planned)
}

/// Where a call's deliveries come from.
pub enum Source {
    /// `calls` fresh calls of a lifecycle.
    Lifecycle {
        catalog: Arc<Catalog>,
        platform: usize,
        lifecycle: Lifecycle,
        filter: EventFilter,
        calls: usize,
    },
    /// Recorded bodies, replayed as one sequence.
    Recorded(Vec<Planned>),
}

/// How deliveries of one call are spaced.
#[derive(Clone, Copy, Debug)]
pub enum Pacing {
    BackToBack,
    Gap(Duration),
    /// By the call's own timestamps, divided by the speed factor.
    Realtime {
        speed: f64,
    },
}

/// One completed (or filtered) delivery.
#[derive(Debug)]
pub struct Outcome {
    /// 0-based call index, and the delivery's place within its call.
    pub call: usize,
    pub seq: usize,
    pub event: String,
    pub call_id: Option<String>,
    /// `None` when filtered out.
    pub delivery: Option<Delivery>,
    /// The call's last delivery: the call is done.
    pub last: bool,
}

/// Everything a run needs besides the source.
pub struct Settings {
    pub request: Request,
    pub policy: DeliveryPolicy,
    pub concurrency: usize,
    pub pacing: Pacing,
}

/// Plays the source; every outcome is sent on `results` as it happens. Returns when all
/// calls are done.
pub async fn run(
    source: Source,
    settings: Settings,
    results: mpsc::UnboundedSender<Outcome>,
) -> Result<(), RenderError> {
    let settings = Arc::new(settings);
    let client = delivery::client();
    match source {
        Source::Recorded(planned) => {
            play_call(0, planned, &settings, &client, &results).await;
            Ok(())
        }
        Source::Lifecycle {
            catalog,
            platform,
            lifecycle,
            filter,
            calls,
        } => {
            let gate = Arc::new(Semaphore::new(settings.concurrency.max(1)));
            let lifecycle = Arc::new(lifecycle);
            let mut tasks = tokio::task::JoinSet::new();
            for index in 0..calls {
                let permit = gate
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed");
                let (catalog, lifecycle, settings, client, results) = (
                    catalog.clone(),
                    lifecycle.clone(),
                    settings.clone(),
                    client.clone(),
                    results.clone(),
                );
                let filter = filter.clone();
                tasks.spawn(async move {
                    let _permit = permit;
                    let platform = &catalog.platforms[platform];
                    let anchor = match settings.pacing {
                        Pacing::Realtime { .. } => Anchor::StartsAt(crate::signing::now_ms()),
                        _ => Anchor::EndsAt(crate::signing::now_ms()),
                    };
                    // Rendered when the call starts, so a thousand calls are never all in memory.
                    let planned = plan_lifecycle(
                        &catalog,
                        platform,
                        &lifecycle,
                        &filter,
                        anchor,
                        &mut rand::thread_rng(),
                    )?;
                    play_call(index, planned, &settings, &client, &results).await;
                    Ok::<(), RenderError>(())
                });
                // Collect finished calls as we go so errors surface early.
                while let Some(done) = tasks.try_join_next() {
                    done.expect("replay tasks do not panic")?;
                }
            }
            while let Some(done) = tasks.join_next().await {
                done.expect("replay tasks do not panic")?;
            }
            Ok(())
        }
    }
}

/// Delivers one call's events in order. A failed event does not stop the next (the seeds:
/// "events fire in order but are non-blocking").
async fn play_call(
    index: usize,
    planned: Vec<Planned>,
    settings: &Settings,
    client: &reqwest::Client,
    results: &mpsc::UnboundedSender<Outcome>,
) {
    let started = Instant::now();
    let mut sent_any = false;
    let count = planned.len();
    for (seq, item) in planned.into_iter().enumerate() {
        let delivery = if item.filtered {
            None
        } else {
            pace(settings.pacing, started, item.offset, sent_any).await;
            sent_any = true;
            let request = Request {
                body: item.body,
                ..settings.request.clone()
            };
            Some(delivery::deliver(client, &request, &settings.policy).await)
        };
        let last = seq + 1 == count;
        let _ = results.send(Outcome {
            call: index,
            seq,
            event: item.event,
            call_id: item.call_id,
            delivery,
            last,
        });
    }
}

async fn pace(pacing: Pacing, started: Instant, offset: Duration, sent_any: bool) {
    match pacing {
        Pacing::BackToBack => {}
        Pacing::Gap(gap) => {
            if sent_any && !gap.is_zero() {
                tokio::time::sleep(gap).await;
            }
        }
        Pacing::Realtime { speed } => {
            let due = started + offset.div_f64(speed);
            tokio::time::sleep_until(due.into()).await;
        }
    }
}

/// One line of a recording that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{file}, line {line}: {message}")]
pub struct RecordingError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Reads a `listen --record` file (or one JSON body per line) into deliveries, in order,
/// spaced by the recorded arrival times.
pub fn plan_recording(
    text: &str,
    file: &str,
    platform: &Platform,
    filter: &EventFilter,
) -> Result<Vec<Planned>, RecordingError> {
    let mut planned = Vec::new();
    let mut first_ms: Option<u64> = None;
    for (i, line) in text.lines().enumerate() {
        let fail = |message: String| RecordingError {
            file: file.to_string(),
            line: i + 1,
            message,
        };
        if line.trim().is_empty() {
            continue;
        }
        let value: Value =
            serde_json::from_str(line).map_err(|e| fail(format!("not JSON ({e})")))?;
        let (body, time_ms) = recorded_body(&value).map_err(fail)?;
        let parsed: Option<Value> = serde_json::from_slice(&body).ok();
        let event = parsed
            .as_ref()
            .and_then(|v| platform.event_of(v))
            .unwrap_or_else(|| "-".into());
        let call_id = parsed.as_ref().and_then(|v| platform.call_id_of(v));
        let offset = match (time_ms, *first_ms.get_or_insert(time_ms.unwrap_or(0))) {
            (Some(t), first) => Duration::from_millis(t.saturating_sub(first)),
            (None, _) => Duration::ZERO,
        };
        let filtered = !filter.wants(platform, &event);
        planned.push(Planned {
            event,
            call_id,
            body,
            offset,
            filtered,
        });
    }
    if planned.is_empty() {
        return Err(RecordingError {
            file: file.to_string(),
            line: 0,
            message: "holds no requests".into(),
        });
    }
    Ok(planned)
}

/// A record line's exact body bytes and arrival time, or a bare body line as it is.
fn recorded_body(value: &Value) -> Result<(Bytes, Option<u64>), String> {
    if value.get("headers").is_some() && value.get("rejected").is_some_and(|r| r == "too_large") {
        return Err(format!(
            "the receiver refused this body as too large ({} bytes), so it was not recorded; \
             delete the line to replay the rest",
            value.get("bytes").and_then(Value::as_u64).unwrap_or(0)
        ));
    }
    let is_record = value.get("headers").is_some()
        && (value.get("body").is_some() || value.get("body_base64").is_some());
    if !is_record {
        return Ok((Bytes::from(value.to_string()), None));
    }
    let time_ms = value.get("time_ms").and_then(Value::as_u64);
    if let Some(body) = value.get("body").and_then(Value::as_str) {
        return Ok((Bytes::from(body.to_string()), time_ms));
    }
    use base64::Engine;
    let encoded = value
        .get("body_base64")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| "body_base64 is not base64".to_string())?;
    Ok((Bytes::from(bytes), time_ms))
}
