//! `hookcli listen`: receive webhooks, verify them, answer or misbehave, record.

use std::path::Path;

use anyhow::Result;
use tokio::sync::mpsc;

use super::load_catalog;
use crate::cli::ListenArgs;
use crate::error::{UserError, exit};
use crate::inspector::{Inspector, Setup};
use crate::output::{self, received};
use crate::receiver::{
    DEFAULT_MAX_BODY, Faults, Receiver, ReceiverConfig, Stats, default_body_memory,
};
use crate::relay::Forward;
use crate::text::human_bytes;

pub fn run(args: ListenArgs, overlay: Option<&Path>, file: Option<&Path>) -> Result<u8> {
    // The file's platform and key variable; listen takes its port and faults from flags.
    let suite = crate::config::read_file(file)?;
    let catalog = load_catalog(overlay)?;
    let platform = crate::config::platform(&catalog, &args.platform, suite.as_ref())?;
    let secret_env = suite
        .as_ref()
        .and_then(|s| s.secret_env.as_ref())
        .map(|v| v.get_ref().as_str());
    if !args.path.starts_with('/') {
        let fixed = match args.path.trim() {
            "" => "/webhook".to_string(),
            path => format!("/{path}"),
        };
        return Err(
            UserError::new(format!("--path `{}` must start with /", args.path))
                .hint(format!("write it like --path {fixed}"))
                .into(),
        );
    }
    let max_body = match args.max_body.or(platform.max_body) {
        Some(0) | None => DEFAULT_MAX_BODY,
        Some(size) => size,
    };
    let body_memory = args
        .body_memory
        .unwrap_or_else(|| default_body_memory(max_body));
    // A budget smaller than one body would answer 503 forever to bodies in between.
    if body_memory < max_body {
        return Err(UserError::new(format!(
            "--body-memory {} is less than --max-body {}: a body in between could never be held",
            human_bytes(body_memory),
            human_bytes(max_body)
        ))
        .hint("give --body-memory at least --max-body, like --body-memory 256MB")
        .into());
    }
    let key = crate::config::Env::process().user_key(&args.key, secret_env, platform);
    let tolerance = args
        .tolerance
        .or(platform.signing.as_ref().map(|s| s.tolerance))
        .unwrap_or(std::time::Duration::from_secs(300));
    let forward = match &args.forward_to {
        Some(url) => {
            let timeout = args.forward_timeout.unwrap_or(platform.policy.timeout);
            Some(Forward::new(url, timeout).map_err(|e| {
                UserError::new(format!("--forward-to {e}"))
                    .hint("give the app's address, like --forward-to http://127.0.0.1:3000/webhook")
            })?)
        }
        None => None,
    };
    let public_origin = args.public_url.as_deref().map(public_origin).transpose()?;
    let config = ReceiverConfig {
        host: args.host.clone(),
        port: args.port,
        path: args.path.clone(),
        platform: platform.clone(),
        key: key.clone(),
        tolerance,
        faults: Faults {
            status: args
                .status
                .unwrap_or_else(|| platform.policy.success.preferred_status()),
            delay: args.delay.unwrap_or_default(),
            fail_first: args.fail_first,
            drop: args.drop,
        },
        max_body,
        body_timeout: args.body_timeout.unwrap_or(platform.policy.timeout),
        body_memory,
        record: args.record.clone(),
        forward: forward.clone(),
        public_origin: public_origin.clone(),
        // With no line to print, the inspector names events in its own task.
        name_events: !args.quiet,
        answers: super::respond::answers(platform, &args.respond)?,
    };
    let how = match (&platform.signing, &key) {
        (Some(s), Some(_)) if s.rules.properties().timestamp => format!(
            "verifying {} ({} tolerance)",
            s.header,
            crate::duration::short(tolerance)
        ),
        (Some(s), Some(_)) if s.rules.properties().covers_url => match &public_origin {
            Some(origin) => format!("verifying {} over {origin} + path and query", s.header),
            None => format!(
                "verifying {} over the URL the Host header gives (behind a tunnel, give \
                 --public-url)",
                s.header
            ),
        },
        (Some(s), Some(_)) => format!(
            "verifying {} ({}: no timestamp)",
            s.header,
            s.rules.scheme.name()
        ),
        (Some(s), None) => format!(
            "not verifying: no key for {} ({})",
            s.header,
            crate::config::key_sources(platform)
        ),
        (None, _) => format!("{} does not sign: every request is `unsigned`", platform.id),
    };
    let config_for_ui = UiSetup {
        platform: platform.clone(),
        key: key.clone(),
        forward_url: forward.as_ref().map(|f| f.url.clone()),
        tolerance,
    };
    super::runtime()?.block_on(async move {
        let (tx, rx) = mpsc::unbounded_channel();
        // --quiet prints no line per request: nothing listens on the channel, so none is made
        // (unless the inspector does).
        let events = (!args.quiet || args.ui).then_some(tx);
        // Read before listen appends to it: the page's history is what came before.
        let history = match (&args.record, args.ui) {
            (Some(path), true) => std::fs::read_to_string(path).ok(),
            _ => None,
        };
        // A record file past `ulimit -f` must fail its write (and be said), not kill listen.
        let _file_size_signal = ignore_file_size_signal();
        let receiver = Receiver::start(config, events).await?;
        let stats = receiver.stats.clone();
        let warn_once = tokio::spawn(async move {
            stats.record_failed.notified().await;
            if let Some(reason) = stats.record_failure.get() {
                errln!(
                    "warning: cannot write the record file: {reason}; requests that cannot be \
                     recorded are answered 503 so the platform sends them again"
                );
            }
        });
        // Installed before the ready line: a script that stops listen as soon as it reads
        // that line still gets the summary.
        let stop = super::interrupt();
        errln!("listening on {}", receiver.url);
        if let Some(forward) = &forward {
            errln!(
                "{}",
                output::dim(&format!(
                    "forwarding to {} ({} to answer); the app's answer is the answer",
                    forward.url,
                    crate::duration::short(forward.timeout)
                ))
            );
            if let Some(note) = url_signing_note(platform, public_origin.as_deref()) {
                errln!("{}", output::warn(&note));
            }
        }
        errln!(
            "{}",
            output::dim(&format!("{} · {how} · Ctrl-C to stop", platform.id))
        );
        let inspector = match args.ui {
            true => Some(start_inspector(&config_for_ui, receiver.url.clone(), history).await?),
            false => None,
        };
        let done = tokio_util::sync::CancellationToken::new();
        let printer = tokio::spawn(print_requests(
            rx,
            done.clone(),
            args.json,
            args.verbose,
            args.quiet,
            inspector,
        ));
        stop.await;
        let stats = receiver.stats.clone();
        receiver.stop().await;
        // Every request answered so far gets its line: the printer drains the queue first.
        done.cancel();
        let _ = printer.await;
        warn_once.abort();
        errln!("{}", summary(&stats));
        // Requests lost to the record are a failure of the run, even with every answer sent.
        Ok(
            if stats
                .not_recorded
                .load(std::sync::atomic::Ordering::Relaxed)
                > 0
            {
                exit::FAILED
            } else {
                exit::OK
            },
        )
    })
}

/// What the inspector is told about this listen, before its webhook URL is known.
struct UiSetup {
    platform: crate::catalog::Platform,
    key: Option<crate::secret::Secret>,
    forward_url: Option<String>,
    tolerance: std::time::Duration,
}

/// Starts the page on its own loopback port, with the record's history, and prints its
/// address (with the token) once.
async fn start_inspector(
    ui: &UiSetup,
    listen_url: String,
    history: Option<String>,
) -> Result<Inspector> {
    let inspector = Inspector::start(Setup {
        platform: ui.platform.clone(),
        key: ui.key.clone(),
        listen_url,
        forward_url: ui.forward_url.clone(),
        tolerance: ui.tolerance,
    })
    .await?;
    let loaded = history.map_or(0, |text| inspector.load_record(&text));
    errln!("inspector on {}", inspector.url);
    if loaded > 0 {
        errln!(
            "{}",
            output::dim(&format!(
                "the inspector shows {loaded} earlier request{} from the record file",
                if loaded == 1 { "" } else { "s" }
            ))
        );
    }
    Ok(inspector)
}

/// Replaces SIGXFSZ's default (kill the process) with a handler while the result is held,
/// so a write past the file size limit fails with an error instead.
#[cfg(unix)]
fn ignore_file_size_signal() -> Option<tokio::signal::unix::Signal> {
    const SIGXFSZ: i32 = 25;
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(SIGXFSZ)).ok()
}

#[cfg(not(unix))]
fn ignore_file_size_signal() -> Option<()> {
    None
}

/// Prints each request as it comes; once `done`, the ones still queued, then returns. A
/// request's line is queued before it is answered, so a sender that got its answers before
/// the stop finds every one of them printed.
async fn print_requests(
    mut rx: mpsc::UnboundedReceiver<crate::receiver::Received>,
    done: tokio_util::sync::CancellationToken,
    json: bool,
    verbose: bool,
    quiet: bool,
    inspector: Option<Inspector>,
) {
    let print = |r: crate::receiver::Received| {
        if quiet {
            // Here, off the webhook path: the request was answered (or is being) already.
            if let Some(inspector) = &inspector {
                inspector.push(r);
            }
            return;
        }
        if json {
            outln!("{}", crate::output::json::line(&received::json(&r)));
        } else {
            outln!("{}", received::line(&r));
            if verbose {
                outln!("{}", received::pretty_body(&r));
            }
        }
        if let Some(inspector) = &inspector {
            inspector.push(r);
        }
    };
    loop {
        tokio::select! {
            biased;
            r = rx.recv() => match r {
                Some(r) => print(r),
                None => return,
            },
            () = done.cancelled() => break,
        }
    }
    while let Ok(r) = rx.try_recv() {
        print(r);
    }
}

/// `stopped after 12 requests: 10 valid, 2 invalid`.
pub fn summary(stats: &Stats) -> String {
    let total = stats.requests.load(std::sync::atomic::Ordering::Relaxed);
    let parts: Vec<String> = stats
        .by_verdict()
        .iter()
        .map(|(w, n)| format!("{n} {}", w.replace('_', " ")))
        .collect();
    let dropped = stats.dropped.load(std::sync::atomic::Ordering::Relaxed);
    let mut line = format!(
        "stopped after {} request{}",
        output::thousands(total),
        if total == 1 { "" } else { "s" }
    );
    if !parts.is_empty() {
        line.push_str(&format!(": {}", parts.join(", ")));
    }
    if dropped > 0 {
        line.push_str(&format!(" ({dropped} dropped on purpose)"));
    }
    let not_recorded = stats
        .not_recorded
        .load(std::sync::atomic::Ordering::Relaxed);
    if not_recorded > 0 {
        line.push_str(&format!(
            "; {not_recorded} request{} not recorded",
            if not_recorded == 1 { "" } else { "s" }
        ));
    }
    let shed = stats.shed.load(std::sync::atomic::Ordering::Relaxed);
    if shed > 0 {
        line.push_str(&format!(
            "; {shed} idle or slow connection{} closed to make room (out of file descriptors)",
            if shed == 1 { "" } else { "s" }
        ));
    }
    line
}

/// `--public-url`: the origin a tunnel gives (`https://abc.ngrok.app`), without a path: the
/// request's own path and query are added to it, as the tunnel passes them on.
fn public_origin(text: &str) -> Result<String, UserError> {
    let hint = "give the tunnel's origin, like --public-url https://abc.ngrok.app";
    let shown = crate::redact::shown_text(text);
    let url = reqwest::Url::parse(text).map_err(|e| {
        UserError::new(format!("--public-url `{shown}` is not a URL ({e})")).hint(hint)
    })?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none();
    if !plain {
        return Err(UserError::new(format!(
            "--public-url `{shown}` is not an origin: an http(s) scheme and a host, with no \
             path, query or credentials"
        ))
        .hint(hint));
    }
    Ok(url.origin().ascii_serialization())
}

/// Behind a relay, an app whose platform signs the URL sees its own address, not the one the
/// platform signed: say so once, with what the app must verify against.
fn url_signing_note(platform: &crate::catalog::Platform, public: Option<&str>) -> Option<String> {
    let signing = platform.signing.as_ref()?;
    if !signing.rules.properties().covers_url {
        return None;
    }
    let id = &platform.id;
    Some(match public {
        Some(public) => format!(
            "note: {id} signs the URL: the app sees its own address, not {public}; it must \
             verify against {public} plus the request's path and query (docs/listen.md)"
        ),
        None => format!(
            "note: {id} signs the URL: behind a tunnel the app sees its own address, not the \
             public URL the platform signed; it must verify against that URL, and listen too \
             (--public-url; docs/listen.md)"
        ),
    })
}
