//! The load engine: C workers, each with one kept-alive connection, delivering fresh signed
//! bodies until a count or a deadline, optionally paced to a rate. Nothing here prints.
//!
//! One worker function runs C times; the stop condition and the pacer are values handed to
//! it. Results go into one tally per thread (an HDR histogram and counters), so memory stays
//! the same however many deliveries are made; on Ctrl-C the workers stop at once and their
//! tallies are the report so far. Stopping is each thread's business, not each delivery's: a
//! thread drops its workers where they wait, so no worker polls a stop signal per request.
//!
//! Retries are scheduled, not waited for: a failed attempt goes into its thread's retry queue,
//! due after the backoff, and the worker moves on to the next delivery, as the platform does
//! (it keeps sending new calls' webhooks while earlier ones wait to be retried). Any worker of
//! the thread sends a retry once it is due, before new deliveries. So with --rate the requests
//! per second rise above the rate (the retry storm); without it, retries share the -c
//! connections with new deliveries. The queue holds only deliveries waiting to be retried.
//!
//! A call's events go out in order, each only once the one before is settled (accepted, or
//! out of attempts): a failed event takes the rest of its call into the retry queue with it,
//! and when it settles the rest is resumed by the thread's next new delivery. Meanwhile the
//! worker goes on with other calls.
//!
//! Plain http goes over load's own HTTP/1 client ([`http1`]): one connection per worker is
//! exactly what a load tool wants, and it skips reqwest's pool and per-request URL handling,
//! and hyper's connection task. https goes through reqwest (one client per thread), which
//! brings TLS.

pub mod body;
pub mod histogram;
mod http1;

use std::cell::{Cell, RefCell};
use std::cmp::Ordering as Order;
use std::collections::{BinaryHeap, VecDeque};
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use hdrhistogram::Histogram;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use reqwest::header::{HOST, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use tokio::sync::{Notify, mpsc};
use tokio::task::{JoinSet, LocalSet};
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;

pub use body::{Bodies, Script};

use crate::delivery::Signer;
use crate::policy::DeliveryPolicy;
use crate::signing::Keyed;

/// When the workers stop taking new deliveries.
#[derive(Debug)]
pub enum Stop {
    /// After this many deliveries in all (a shared ticket counter).
    Count { limit: u64, taken: AtomicU64 },
    /// At this instant; deliveries in flight then are abandoned and not counted.
    Until(Instant),
}

impl Stop {
    pub fn count(limit: u64) -> Self {
        Stop::Count {
            limit,
            taken: AtomicU64::new(0),
        }
    }

    /// Claims one delivery, or says there are none left.
    fn take(&self) -> bool {
        match self {
            Stop::Count { limit, taken } => taken.fetch_add(1, Ordering::Relaxed) < *limit,
            Stop::Until(deadline) => Instant::now() < *deadline,
        }
    }

    /// Whether deliveries still waiting to be retried are finished once no new ones are left
    /// (with a count), or abandoned (at a deadline).
    fn drains(&self) -> bool {
        matches!(self, Stop::Count { .. })
    }

    pub fn deadline(&self) -> Option<Instant> {
        match self {
            Stop::Until(deadline) => Some(*deadline),
            Stop::Count { .. } => None,
        }
    }
}

/// Spaces deliveries evenly at a rate shared by all workers: ticket k is due at start + k/rate.
#[derive(Debug)]
pub struct Pacer {
    start: Instant,
    interval: Duration,
    next: AtomicU64,
}

impl Pacer {
    pub fn new(per_second: f64) -> Self {
        Pacer {
            start: Instant::now(),
            interval: Duration::from_secs_f64(1.0 / per_second),
            next: AtomicU64::new(0),
        }
    }

    /// Claims the next start slot; the worker waits for it (or sends a due retry first).
    fn claim(&self) -> Instant {
        let k = self.next.fetch_add(1, Ordering::Relaxed);
        self.start + self.interval.mul_f64(k as f64)
    }
}

/// Where and how to deliver: everything but the bodies.
pub struct Settings {
    pub url: reqwest::Url,
    /// The platform's headers and the user's -H.
    pub headers: HeaderMap,
    pub signer: Option<Signer>,
    /// Timeout, retries (0 unless asked), backoff and success rule per delivery.
    pub policy: DeliveryPolicy,
    /// The platform's own timeout: attempts slower than this it would count as timed out.
    pub platform_timeout: Duration,
    pub connections: usize,
}

/// Why a delivery failed, as the report counts them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailKind {
    /// A status outside the success rule.
    Status,
    Timeout,
    Connect,
    /// Closed or reset before a whole response.
    Reset,
}

impl FailKind {
    pub const ALL: [FailKind; 4] = [
        FailKind::Status,
        FailKind::Timeout,
        FailKind::Connect,
        FailKind::Reset,
    ];

    pub fn word(self) -> &'static str {
        match self {
            FailKind::Status => "status",
            FailKind::Timeout => "timeout",
            FailKind::Connect => "connect",
            FailKind::Reset => "reset",
        }
    }
}

/// What one attempt came to.
#[derive(Clone, Copy, Debug)]
enum Answer {
    Status(u16),
    Error(FailKind),
}

/// Counts and latencies; the same size after ten deliveries or ten million.
#[derive(Clone, Debug)]
pub struct Tally {
    pub deliveries: u64,
    pub succeeded: u64,
    /// Requests sent, retries included.
    pub attempts: u64,
    /// Of those, retries (attempts after a delivery's first).
    pub retried: u64,
    /// Accepted statuses, by status.
    pub success_statuses: Vec<(u16, u64)>,
    /// Failed deliveries by kind, in [`FailKind::ALL`] order.
    pub failures: [u64; 4],
    /// The statuses behind `status` failures.
    pub failure_statuses: Vec<(u16, u64)>,
    /// Attempts the platform would have given up on (slower than its timeout).
    pub platform_timeouts: u64,
    /// Attempts that could not connect, to tell an unreachable receiver.
    pub refused: u64,
    /// Deliveries that had failed an attempt and were still waiting for (or sending) a retry
    /// when the load stopped: not delivered, not given up on, so not a success.
    pub unfinished: u64,
    /// Requests sent a second time on a fresh connection because the kept-alive one they went
    /// out on had been closed by the receiver with no answer (not counted as attempts).
    pub reconnected: u64,
    /// Latency in microseconds of the attempts that got an HTTP answer (any status). A
    /// refused connect or a timeout is no answer; those are counted in `failures`.
    pub latency: Histogram<u64>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally::new()
    }
}

impl Tally {
    fn new() -> Self {
        Tally {
            deliveries: 0,
            succeeded: 0,
            attempts: 0,
            retried: 0,
            success_statuses: Vec::new(),
            failures: [0; 4],
            failure_statuses: Vec::new(),
            platform_timeouts: 0,
            refused: 0,
            unfinished: 0,
            reconnected: 0,
            // Three significant figures from 1 µs to an hour; it grows if ever needed.
            latency: histogram::empty(),
        }
    }

    fn merge(&mut self, other: &Tally) {
        self.deliveries += other.deliveries;
        self.succeeded += other.succeeded;
        self.attempts += other.attempts;
        self.retried += other.retried;
        for (status, n) in &other.success_statuses {
            bump(&mut self.success_statuses, *status, *n);
        }
        for (mine, theirs) in self.failures.iter_mut().zip(other.failures) {
            *mine += theirs;
        }
        for (status, n) in &other.failure_statuses {
            bump(&mut self.failure_statuses, *status, *n);
        }
        self.platform_timeouts += other.platform_timeouts;
        self.refused += other.refused;
        self.unfinished += other.unfinished;
        self.reconnected += other.reconnected;
        let _ = self.latency.add(&other.latency);
    }

    pub fn failed(&self) -> u64 {
        self.failures.iter().sum()
    }

    pub fn failures_of(&self, kind: FailKind) -> u64 {
        self.failures[kind as usize]
    }

    /// Whether every request sent failed to connect: the receiver was unreachable.
    pub fn unreachable(&self) -> bool {
        self.attempts > 0 && self.refused == self.attempts
    }

    /// Whether every delivery started met the rule: none failed, none left waiting to retry.
    pub fn all_succeeded(&self) -> bool {
        self.failed() == 0 && self.unfinished == 0
    }
}

fn bump(counts: &mut Vec<(u16, u64)>, status: u16, n: u64) {
    match counts.iter_mut().find(|(s, _)| *s == status) {
        Some((_, count)) => *count += n,
        None => {
            counts.push((status, n));
            counts.sort_unstable();
        }
    }
}

/// What the workers share.
struct Shared {
    settings: Settings,
    bodies: Bodies,
    /// The path and query, and whether to go through hyper directly.
    target: Target,
    /// For the live display, one pair per thread so the threads share no cache line.
    progress: Vec<Progress>,
}

#[derive(Default)]
#[repr(align(128))]
struct Progress {
    delivered: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
}

enum Target {
    /// http: load's own HTTP/1 client over one TCP connection per worker, signing with the
    /// key made ready once (None: unsigned).
    Plain {
        addr: String,
        preamble: http1::Preamble,
        keyed: Option<Box<Keyed>>,
    },
    /// https: reqwest, for TLS, one client per thread so a thread's connections stay on it.
    Tls,
}

/// A running load. Stop it with [`Load::cancel`], wait with [`Load::finished`], then take
/// [`Load::report`]: after a Ctrl-C it is the load so far.
pub struct Load {
    shared: Arc<Shared>,
    /// Each load thread sends its tally here when its workers have stopped.
    done: mpsc::UnboundedReceiver<Tally>,
    tally: Tally,
    cancel: CancellationToken,
    started: Instant,
    started_at: SystemTime,
    stopped: Option<Instant>,
}

/// The result, or the result so far.
#[derive(Debug)]
pub struct Report {
    pub tally: Tally,
    pub elapsed: Duration,
    /// The clock time the load started: reports of several machines line up by it.
    pub started_at: SystemTime,
}

/// What every worker gets: the stop condition and the pacer are values like the rest.
#[derive(Clone)]
struct Job {
    shared: Arc<Shared>,
    stop: Arc<Stop>,
    pacer: Option<Arc<Pacer>>,
}

impl Load {
    /// Starts the workers: one thread per core, each a single-threaded runtime running its
    /// share of the connections (as oha does). A worker and its connection then never
    /// change threads, and each thread tallies without locks.
    pub fn start(
        mut settings: Settings,
        bodies: Bodies,
        stop: Stop,
        rate: Option<f64>,
        seed: Option<u64>,
    ) -> Load {
        let target = match settings.url.scheme() {
            "http" => {
                let keyed = settings.signer.as_ref().and_then(Signer::keyed);
                prepare_plain_headers(&mut settings, keyed.as_ref());
                Target::Plain {
                    addr: format!(
                        "{}:{}",
                        settings.url.host_str().unwrap_or("localhost"),
                        settings.url.port_or_known_default().unwrap_or(80)
                    ),
                    preamble: http1::Preamble::new(
                        &path_and_query(&settings.url),
                        &settings.headers,
                    ),
                    keyed: keyed.map(Box::new),
                }
            }
            _ => Target::Tls,
        };
        let workers = settings.connections.max(1);
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = cores.min(workers);
        let job = Job {
            shared: Arc::new(Shared {
                settings,
                bodies,
                target,
                progress: (0..threads).map(|_| Progress::default()).collect(),
            }),
            stop: Arc::new(stop),
            pacer: rate.map(|r| Arc::new(Pacer::new(r))),
        };
        let cancel = CancellationToken::new();
        let (done_tx, done) = mpsc::unbounded_channel();
        let mut first = 0;
        for t in 0..threads {
            let share = workers / threads + usize::from(t < workers % threads);
            let ids = first..first + share;
            first += share;
            let (job, cancel, done_tx) = (job.clone(), cancel.clone(), done_tx.clone());
            std::thread::Builder::new()
                .name(format!("hookcli-load-{t}"))
                .spawn(move || {
                    let tally = run_thread(t, ids, job, cancel, seed);
                    let _ = done_tx.send(tally);
                })
                .expect("the OS starts a thread");
        }
        Load {
            shared: job.shared,
            done,
            tally: Tally::new(),
            cancel,
            started: Instant::now(),
            started_at: SystemTime::now(),
            stopped: None,
        }
    }

    /// Waits until every worker has stopped. Cancel-safe: call it again after a select.
    pub async fn finished(&mut self) {
        while let Some(tally) = self.done.recv().await {
            self.tally.merge(&tally);
        }
        self.stopped.get_or_insert_with(Instant::now);
    }

    /// Stops the workers; deliveries in flight are abandoned and not counted.
    pub fn cancel(&mut self) {
        self.stopped.get_or_insert_with(Instant::now);
        self.cancel.cancel();
    }

    /// (deliveries, failed, retries) so far, cheaply, for the live display.
    pub fn progress(&self) -> (u64, u64, u64) {
        self.shared.progress.iter().fold((0, 0, 0), |(d, f, r), p| {
            (
                d + p.delivered.load(Ordering::Relaxed),
                f + p.failed.load(Ordering::Relaxed),
                r + p.retried.load(Ordering::Relaxed),
            )
        })
    }

    pub fn elapsed(&self) -> Duration {
        self.stopped
            .unwrap_or_else(Instant::now)
            .duration_since(self.started)
    }

    /// The tallies of the threads that have finished: all of them after [`Load::finished`].
    pub fn report(&self) -> Report {
        Report {
            tally: self.tally.clone(),
            elapsed: self.elapsed(),
            started_at: self.started_at,
        }
    }
}

/// What the workers of one thread share.
struct Local {
    progress: usize,
    tally: RefCell<Tally>,
    /// For https only.
    client: Option<reqwest::Client>,
    /// Failed deliveries waiting for their next attempt, soonest first.
    retries: RefCell<BinaryHeap<Retry>>,
    /// The rest of calls whose held-back event has settled, to go on with before new calls.
    resumable: RefCell<VecDeque<Vec<Bytes>>>,
    /// Deliveries started on this thread and not finished (waiting to retry included).
    open: Cell<u64>,
    /// Retries being sent now: those a stop abandons in flight are unfinished.
    retrying: Cell<u64>,
    /// Wakes a waiting worker when a sooner retry is queued, and all of them when the last
    /// open delivery finishes.
    changed: Notify,
}

/// A delivery's next attempt, due at an instant.
struct Retry {
    due: Instant,
    /// The delivery, with the attempt it will be (2 for the first retry).
    work: Work,
}

/// One event of a call to send, and the call's later events (last first), which wait for
/// this one to settle.
struct Work {
    body: Bytes,
    /// The attempt this is: 1, or a retry.
    n: u32,
    rest: Vec<Bytes>,
}

/// Soonest due first in a (max-)heap.
impl Ord for Retry {
    fn cmp(&self, other: &Self) -> Order {
        other.due.cmp(&self.due)
    }
}

impl PartialOrd for Retry {
    fn partial_cmp(&self, other: &Self) -> Option<Order> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Retry {
    fn eq(&self, other: &Self) -> bool {
        self.due == other.due
    }
}

impl Eq for Retry {}

impl Local {
    /// The retry whose time has come, if any.
    fn due_retry(&self) -> Option<Retry> {
        let mut queue = self.retries.borrow_mut();
        if queue.peek()?.due <= Instant::now() {
            queue.pop()
        } else {
            None
        }
    }

    /// Returns when the soonest queued retry falls due, or on a wake-up (see `changed`).
    async fn retry_due(&self) {
        let changed = self.changed.notified();
        let due = self.retries.borrow().peek().map(|r| r.due);
        match due {
            Some(due) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(due.into()) => {}
                    _ = changed => {}
                }
            }
            None => changed.await,
        }
    }
}

/// One load thread: its workers on a single-threaded runtime until they finish or `cancel`
/// (then they are dropped where they wait), and its tally.
fn run_thread(
    thread: usize,
    ids: Range<usize>,
    job: Job,
    cancel: CancellationToken,
    seed: Option<u64>,
) -> Tally {
    let local = Rc::new(Local {
        progress: thread,
        tally: RefCell::new(Tally::new()),
        client: matches!(job.shared.target, Target::Tls).then(crate::delivery::client),
        retries: RefCell::new(BinaryHeap::new()),
        resumable: RefCell::new(VecDeque::new()),
        open: Cell::new(0),
        retrying: Cell::new(0),
        changed: Notify::new(),
    });
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return local.tally.take();
    };
    let set = LocalSet::new();
    set.block_on(&runtime, async {
        let mut workers = JoinSet::new();
        for n in ids {
            let rng = match seed {
                Some(seed) => SmallRng::seed_from_u64(seed.wrapping_add(n as u64)),
                None => SmallRng::from_entropy(),
            };
            workers.spawn_local(worker(job.clone(), local.clone(), rng));
        }
        tokio::select! {
            () = async { while workers.join_next().await.is_some() {} } => {}
            // Dropping the JoinSet aborts the workers: deliveries in flight are abandoned.
            () = cancel.cancelled() => {}
        }
    });
    // Stopped with failed deliveries waiting for a retry, or sending one: they did not succeed.
    let waiting = local.retries.borrow().len() as u64 + local.retrying.get();
    local.tally.borrow_mut().unfinished += waiting;
    local.tally.take()
}

/// The request target: the path, and the query if any.
fn path_and_query(url: &reqwest::Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_string(),
    }
}

/// load's own HTTP/1 client sends exactly the headers it is given: add Host and a user agent
/// once, here, and leave out those the signature writes (it replaces a -H of the same name).
fn prepare_plain_headers(settings: &mut Settings, keyed: Option<&Keyed>) {
    if let Some(keyed) = keyed {
        let signed: Vec<HeaderName> = settings
            .headers
            .keys()
            .filter(|name| keyed.writes_header(name.as_str()))
            .cloned()
            .collect();
        for name in signed {
            settings.headers.remove(name);
        }
    }
    let url = &settings.url;
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => String::new(),
    };
    if let Ok(value) = HeaderValue::from_str(&host) {
        settings.headers.insert(HOST, value);
    }
    if !settings.headers.contains_key(USER_AGENT) {
        settings.headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("hookcli/", env!("CARGO_PKG_VERSION"))),
        );
    }
}

/// What a worker does next.
enum Next {
    /// A queued delivery's retry.
    Retry(Retry),
    /// A new delivery, in its pacer slot.
    New,
    Stop,
}

/// One connection's worth of work: send due retries first, else take a new delivery (in its
/// pacer slot); when none are left, help finish this thread's retries.
async fn worker(job: Job, local: Rc<Local>, mut rng: SmallRng) {
    let shared = &job.shared;
    let mut link = Link::default();
    // The rest of this worker's current call, last event first.
    let mut pending: Vec<Bytes> = Vec::new();
    // A taken delivery and its pacer slot, kept while a due retry goes first.
    let mut taken: Option<Option<Instant>> = None;
    let mut exhausted = false;
    loop {
        if taken.is_none() && !exhausted {
            match job
                .stop
                .take()
                .then(|| job.pacer.as_ref().map(|p| p.claim()))
            {
                // A paced slot at or past the -z deadline is not the run's to send: -z 2s at
                // --rate 100 is 200 deliveries, not 201.
                Some(Some(slot)) if job.stop.deadline().is_some_and(|d| slot >= d) => {
                    exhausted = true;
                }
                Some(slot) => taken = Some(slot),
                None => exhausted = true,
            }
        }
        let next = match ready(&local, taken) {
            Some(next) => next,
            None => choose(&job, &local, taken, exhausted).await,
        };
        let (work, own) = match next {
            Next::Stop => break,
            Next::Retry(retry) => (retry.work, false),
            Next::New => {
                taken = None;
                let Some(work) = next_event(shared, &local, &mut pending, &mut rng) else {
                    break;
                };
                local.open.set(local.open.get() + 1);
                (work, true)
            }
        };
        // The workers whose answers came in together send their next requests together:
        // each yields once here, so the thread's other ready workers take their work first.
        // The receiver then finds several requests waiting when it wakes, instead of being
        // woken for each (nginx slept 0.09-0.13 times a request, 0.03 with this), and every
        // wake-up costs the sender's core too (an IPI; a VM exit on a VM). bench/README.md.
        tokio::task::yield_now().await;
        // A retry had failed before: if the load stops while it is in flight, it is left
        // unfinished, not a success (run_thread counts it).
        let retrying = u64::from(work.n > 1);
        local.retrying.set(local.retrying.get() + retrying);
        let settled = deliver(shared, &local, &mut link, work).await;
        local.retrying.set(local.retrying.get() - retrying);
        match settled {
            // This worker's own call: go on with it.
            Some(rest) if own => pending = rest,
            // A retried call's rest: the thread's next new delivery resumes it.
            Some(rest) if !rest.is_empty() => local.resumable.borrow_mut().push_back(rest),
            _ => {}
        }
    }
}

/// The next event to send as a new delivery: this worker's call goes on, else a call whose
/// held-back event has settled, else a fresh call. `pending` keeps the call's later events.
fn next_event(
    shared: &Shared,
    local: &Local,
    pending: &mut Vec<Bytes>,
    rng: &mut SmallRng,
) -> Option<Work> {
    if pending.is_empty() {
        *pending = match local.resumable.borrow_mut().pop_front() {
            Some(rest) => rest,
            None => {
                // A call's bodies, delivered in order; popped from the back, so reversed.
                let mut call = shared.bodies.call(rng, crate::signing::now_ms());
                call.reverse();
                call
            }
        };
    }
    let body = pending.pop()?;
    Some(Work {
        body,
        n: 1,
        rest: std::mem::take(pending),
    })
}

/// The next piece of work when there is no need to wait for it (the usual case).
fn ready(local: &Local, taken: Option<Option<Instant>>) -> Option<Next> {
    if let Some(retry) = local.due_retry() {
        return Some(Next::Retry(retry));
    }
    match taken? {
        Some(slot) if slot > Instant::now() => None,
        _ => Some(Next::New),
    }
}

/// The next piece of work: a due retry, else the taken delivery once its slot comes; with no
/// new deliveries left, the retries still open on this thread (only when counting).
async fn choose(job: &Job, local: &Local, taken: Option<Option<Instant>>, exhausted: bool) -> Next {
    let retrying = job.shared.settings.policy.retries > 0;
    loop {
        if let Some(retry) = local.due_retry() {
            return Next::Retry(retry);
        }
        match taken {
            Some(slot) => {
                let Some(slot) = slot.filter(|s| *s > Instant::now()) else {
                    return Next::New;
                };
                if !retrying {
                    tokio::time::sleep_until(slot.into()).await;
                    return Next::New;
                }
                tokio::select! {
                    _ = tokio::time::sleep_until(slot.into()) => return Next::New,
                    _ = local.retry_due() => {}
                }
            }
            None if exhausted && retrying && job.stop.drains() && local.open.get() > 0 => {
                local.retry_due().await
            }
            None => return Next::Stop,
        }
    }
}

/// One attempt of a delivery, tallied. A failure with retries left is queued for its next
/// attempt after the backoff, its call's later events with it (None); else the delivery is
/// tallied as done and its call's later events are returned, free to go.
async fn deliver(
    shared: &Shared,
    local: &Local,
    link: &mut Link,
    work: Work,
) -> Option<Vec<Bytes>> {
    let policy = &shared.settings.policy;
    let started = Instant::now();
    let (answer, reconnected) = attempt(shared, local, link, &work.body, started).await;
    let latency = started.elapsed();
    let progress = &shared.progress[local.progress];
    let accepted = matches!(answer, Answer::Status(s) if policy.success.accepts(s));
    let mut tally = local.tally.borrow_mut();
    tally.attempts += 1;
    tally.reconnected += u64::from(reconnected);
    if work.n > 1 {
        tally.retried += 1;
        progress.retried.fetch_add(1, Ordering::Relaxed);
    }
    match answer {
        // Only an answer has a latency worth reporting: a refused connect takes microseconds
        // and would pull every percentile down.
        Answer::Status(_) => {
            let micros = latency.as_micros().clamp(1, u64::MAX as u128) as u64;
            let _ = tally.latency.record(micros);
        }
        Answer::Error(FailKind::Connect) => tally.refused += 1,
        Answer::Error(_) => {}
    }
    if latency >= shared.settings.platform_timeout {
        tally.platform_timeouts += 1;
    }
    let status = match answer {
        Answer::Status(status) => Some(status),
        Answer::Error(_) => None,
    };
    if !accepted && work.n < policy.max_attempts() && policy.retries_after(status) {
        drop(tally);
        queue_retry(local, policy.wait_after(work.n), work);
        return None;
    }
    tally.deliveries += 1;
    match answer {
        Answer::Status(status) if accepted => {
            tally.succeeded += 1;
            bump(&mut tally.success_statuses, status, 1);
        }
        Answer::Status(status) => {
            tally.failures[FailKind::Status as usize] += 1;
            bump(&mut tally.failure_statuses, status, 1);
        }
        Answer::Error(kind) => tally.failures[kind as usize] += 1,
    }
    drop(tally);
    progress.delivered.fetch_add(1, Ordering::Relaxed);
    if !accepted {
        progress.failed.fetch_add(1, Ordering::Relaxed);
    }
    local.open.set(local.open.get() - 1);
    if local.open.get() == 0 && policy.retries > 0 {
        // Nothing left to retry on this thread: workers waiting to help can stop.
        local.changed.notify_waiters();
    }
    Some(work.rest)
}

/// Queues a failed delivery's next attempt, due after `backoff`.
fn queue_retry(local: &Local, backoff: Duration, work: Work) {
    let due = Instant::now() + backoff;
    let work = Work {
        n: work.n + 1,
        ..work
    };
    let mut queue = local.retries.borrow_mut();
    queue.push(Retry { due, work });
    // Waiting workers sleep until the soonest retry: one must wake only when this one is
    // sooner (not on every push: with -c 1000 that would be a thousand wake-ups).
    if queue.peek().is_some_and(|r| r.due == due) {
        local.changed.notify_one();
    }
}

/// A deadline past any run, for a timeout too long to add to an instant (as tokio's own).
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// One signed request under the deadline, and whether it had to be sent again on a fresh
/// connection (the kept-alive one was closed under it).
async fn attempt(
    shared: &Shared,
    local: &Local,
    link: &mut Link,
    body: &Bytes,
    started: Instant,
) -> (Answer, bool) {
    let settings = &shared.settings;
    let reconnected = AtomicBool::new(false);
    // The timer apart, so the exchange can have the rest of the link.
    let mut timer = std::mem::take(&mut link.timer);
    let exchange = async {
        match &shared.target {
            Target::Plain {
                addr,
                preamble,
                keyed,
            } => {
                let keyed = keyed.as_deref();
                let request = Request {
                    addr,
                    preamble,
                    keyed,
                    settings,
                    body,
                };
                plain(link, request, &reconnected).await
            }
            Target::Tls => match &local.client {
                Some(client) => {
                    let mut headers = settings.headers.clone();
                    if let Some(signer) = &settings.signer {
                        signer.apply(settings.url.as_str(), body, &mut headers);
                    }
                    let (url, body) = (&settings.url, body.clone());
                    client_exchange(client, url, headers, body, &reconnected).await
                }
                None => Err(FailKind::Connect),
            },
        }
    };
    // From the instant the delivery took for its latency: a clock read less than `timeout`.
    let deadline = started
        .checked_add(settings.policy.timeout)
        .unwrap_or_else(|| started + FAR_FUTURE);
    let result = timer.run_until(deadline, exchange).await;
    let answer = result.unwrap_or(Err(FailKind::Timeout));
    link.timer = timer;
    if answer.is_err() {
        // A late answer would arrive on this connection: start the next one clean.
        link.connection = None;
    }
    let answer = match answer {
        Ok(status) => Answer::Status(status),
        Err(kind) => Answer::Error(kind),
    };
    (answer, reconnected.load(Ordering::Relaxed))
}

/// A worker's connection for plain http (None until opened, and after a failure), and the
/// buffer its requests are written in, kept from one request to the next.
#[derive(Default)]
struct Link {
    connection: Option<http1::Connection>,
    request: Vec<u8>,
    /// Its attempts' timer.
    timer: Timer,
}

/// One timer for all of a worker's attempts. `tokio::time::timeout` puts a timer in the
/// runtime's wheel and takes it out again for every attempt (about 1% of load's CPU at -c 64);
/// this one is left armed at an earlier attempt's deadline, never later than the current one's
/// (every attempt has the same timeout, and each starts after the last), and is moved on only
/// when it goes off before the current deadline: at most once a timeout.
#[derive(Default)]
struct Timer(Option<Pin<Box<Sleep>>>);

impl Timer {
    /// What `work` comes to, or None if `deadline` comes first.
    async fn run_until<F: Future>(&mut self, deadline: Instant, work: F) -> Option<F::Output> {
        let deadline = tokio::time::Instant::from_std(deadline);
        let timer = self
            .0
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() > deadline {
            timer.as_mut().reset(deadline);
        }
        tokio::pin!(work);
        loop {
            tokio::select! {
                biased;
                output = &mut work => return Some(output),
                () = timer.as_mut() => {
                    if timer.deadline() >= deadline {
                        return None;
                    }
                    timer.as_mut().reset(deadline);
                }
            }
        }
    }
}

/// What a plain http request is made of.
struct Request<'a> {
    addr: &'a str,
    preamble: &'a http1::Preamble,
    keyed: Option<&'a Keyed>,
    settings: &'a Settings,
    body: &'a [u8],
}

impl Request<'_> {
    /// Writes the request into `out`, signed now.
    fn encode(&self, out: &mut Vec<u8>) {
        // keyed was made from the signer, whose clock (or fixed time) signs.
        let signer = self.settings.signer.as_ref().zip(self.keyed);
        let signature = signer.map(|(signer, keyed)| http1::Signature {
            keyed,
            url: self.settings.url.as_str(),
            at_ms: signer.time_ms(),
        });
        http1::encode(self.preamble, signature.as_ref(), self.body, out);
    }
}

/// POST over the worker's own connection, opening it if needed. A request the old
/// connection never sent (the receiver had closed it) goes once more on a new one; so does
/// one it sent but got no answer to, closed under it, as curl does (`reconnected`), signed
/// afresh.
async fn plain(
    link: &mut Link,
    request: Request<'_>,
    reconnected: &AtomicBool,
) -> Result<u16, FailKind> {
    // Signed once per request (a second time, afresh, only to resend it).
    request.encode(&mut link.request);
    loop {
        let (conn, opened) = match link.connection.take() {
            Some(conn) if conn.reusable() => (link.connection.insert(conn), false),
            _ => (
                link.connection
                    .insert(http1::Connection::open(request.addr).await?),
                true,
            ),
        };
        match conn.exchange(&link.request).await {
            Ok((status, kept)) => {
                if !kept {
                    link.connection = None;
                }
                return Ok(status);
            }
            Err(failure) => {
                link.connection = None;
                match failure {
                    http1::Failure::Unsent if !opened => {}
                    http1::Failure::Unanswered if !opened => {
                        reconnected.store(true, Ordering::Relaxed);
                        request.encode(&mut link.request);
                    }
                    _ => return Err(FailKind::Reset),
                }
            }
        }
    }
}

async fn client_exchange(
    client: &reqwest::Client,
    url: &reqwest::Url,
    headers: HeaderMap,
    body: Bytes,
    reconnected: &AtomicBool,
) -> Result<u16, FailKind> {
    let kind = |e: reqwest::Error| {
        if e.is_timeout() {
            FailKind::Timeout
        } else if e.is_connect() {
            FailKind::Connect
        } else {
            FailKind::Reset
        }
    };
    let response = crate::delivery::post_reconnecting(client, url, headers, body, reconnected)
        .await
        .map_err(kind)?;
    let status = response.status().as_u16();
    response.bytes().await.map_err(kind)?;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// tokio's clock as a std `Instant`, so paused time moves it.
    fn now() -> Instant {
        tokio::time::Instant::now().into_std()
    }

    #[tokio::test(start_paused = true)]
    async fn one_timer_times_each_attempt_to_its_own_deadline() {
        const TIMEOUT: Duration = Duration::from_millis(300);
        let mut timer = Timer::default();
        let start = now();
        // Quick: the timer is left armed at start + 300 ms.
        assert_eq!(timer.run_until(start + TIMEOUT, async { 1 }).await, Some(1));
        tokio::time::sleep(Duration::from_millis(200)).await;
        // From 200 ms to 400 ms: past the first attempt's deadline, within its own (500 ms).
        let second = now();
        let slow = tokio::time::sleep(Duration::from_millis(200));
        assert_eq!(
            timer
                .run_until(second + TIMEOUT, async {
                    slow.await;
                    2
                })
                .await,
            Some(2)
        );
        assert_eq!(now() - start, Duration::from_millis(400));
        // One that never ends is cut off at its own deadline, 700 ms: not sooner, not later.
        let third = now();
        let endless = std::future::pending::<u8>();
        assert_eq!(timer.run_until(third + TIMEOUT, endless).await, None);
        assert_eq!(now() - start, Duration::from_millis(700));
    }
}
