//! `hookcli listen`: receive webhooks, verify them, answer or misbehave, record.

use std::path::Path;

use anyhow::Result;
use std::sync::{Arc, Mutex};

use super::load_catalog;
use crate::cli::ListenArgs;
use crate::error::{UserError, exit};
use crate::inspector::{Inspector, Ring, Setup};
use crate::output::{self, received};
use crate::receiver::{
    DEFAULT_MAX_BODY, Faults, LineFormat, Received, Receiver, ReceiverConfig, Stats, Taps,
    default_body_memory,
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
    // A key the scheme cannot use would make every request fail to verify: refuse it now,
    // as send and load do.
    if let Some(key) = &key {
        crate::config::usable_key(platform, key)?;
    }
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
        taps: Taps::default(),
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
    let mut config = config;
    // Each request's line is written before it is answered: nothing answered goes unprinted.
    if !args.quiet {
        config.taps = Taps::lines(line_format(args.json, args.verbose), Arc::new(stdout_lines));
    }
    // The page's ring, filled from the record's history before the first live request (read
    // before listen appends to it), then by every request as it is answered.
    let ring = args.ui.then(|| {
        let mut ring = Ring::default();
        let loaded = match &args.record {
            Some(path) => std::fs::read_to_string(path).map_or(0, |text| ring.load_record(&text)),
            None => 0,
        };
        (Arc::new(Mutex::new(ring)), loaded)
    });
    if let Some((ring, _)) = &ring {
        let ring = ring.clone();
        config.taps.observe = Some(Arc::new(move |received| {
            if let Ok(mut ring) = ring.lock() {
                ring.push_received(received);
            }
        }));
    }
    // On one core (taskset, a container's CPU limit) a worker thread only adds hand-offs
    // between it and the thread that waits for the stop.
    let runtime = match std::thread::available_parallelism().map_or(1, |n| n.get()) {
        1 => super::current_thread_runtime()?,
        _ => super::runtime()?,
    };
    runtime.block_on(async move {
        // A record file past `ulimit -f` must fail its write (and be said), not kill listen.
        let _file_size_signal = ignore_file_size_signal();
        let receiver = Receiver::start(config, None).await?;
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
        let _inspector = match ring {
            Some((ring, loaded)) => {
                Some(start_inspector(&config_for_ui, receiver.url.clone(), ring, loaded).await?)
            }
            None => None,
        };
        stop.await;
        let stats = receiver.stats.clone();
        // Every request answered so far has its line: it was written before the answer.
        receiver.stop().await;
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
    platform: Arc<crate::catalog::Platform>,
    key: Option<crate::secret::Secret>,
    forward_url: Option<String>,
    tolerance: std::time::Duration,
}

/// Starts the page on its own loopback port, with the record's history, and prints its
/// address (with the token) once.
async fn start_inspector(
    ui: &UiSetup,
    listen_url: String,
    ring: Arc<Mutex<Ring>>,
    loaded: usize,
) -> Result<Inspector> {
    let setup = Setup {
        platform: ui.platform.clone(),
        key: ui.key.clone(),
        listen_url,
        forward_url: ui.forward_url.clone(),
        tolerance: ui.tolerance,
    };
    let inspector = Inspector::start(setup, ring).await?;
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

/// How each request's line looks: the table line (and with `-v` the body), or a JSON object.
fn line_format(json: bool, verbose: bool) -> LineFormat {
    Arc::new(move |r: &Received, buf: &mut Vec<u8>| {
        use std::io::Write;
        if json {
            let _ = writeln!(buf, "{}", crate::output::json::line(&received::json(r)));
            return;
        }
        received::write_line(r, buf);
        buf.push(b'\n');
        if verbose {
            let _ = writeln!(buf, "{}", received::pretty_body(r));
        }
    })
}

/// Writes a group of lines to stdout; a stdout nobody reads is not a reason to refuse
/// requests (print.rs drops the rest of the output).
fn stdout_lines(bytes: &[u8]) -> Result<(), String> {
    crate::print::write_stdout_bytes(bytes);
    Ok(())
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
