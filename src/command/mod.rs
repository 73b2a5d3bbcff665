//! One file per subcommand. Each turns its clap args into settings, calls the domain modules
//! and hands the results to `output`.

pub mod check;
pub mod docs;
pub mod function;
pub mod listen;
pub mod llm;
pub mod load;
pub mod platforms;
pub mod record;
pub mod replay;
pub mod respond;
pub mod send;
pub mod show;
pub mod sign;

use std::io::{IsTerminal, Read};
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use crate::catalog::{Catalog, DEFAULT_PLATFORM, EventSpec, Lifecycle, Platform, closest};
use crate::cli::PlatformArg;
use crate::error::{UserError, usage};
use crate::overrides::{Override, OverrideError};
use crate::text::{io_reason, path_reason};

pub fn load_catalog(overlay: Option<&Path>) -> Result<Catalog> {
    Ok(Catalog::load(overlay)?)
}

/// The catalog of a command that plays one platform: without --payloads, only that platform
/// is built (most of a `send`'s start-up was building all of them). A name no built-in
/// platform has gets the whole catalog, whose lookup then says what the platforms are.
pub fn load_catalog_for(overlay: Option<&Path>, platform: &str) -> Result<Catalog> {
    if overlay.is_none()
        && let Some(catalog) = Catalog::load_one(platform)?
    {
        return Ok(catalog);
    }
    load_catalog(overlay)
}

/// The platform by id or alias, or an error that lists them.
pub fn find_platform<'a>(catalog: &'a Catalog, name: &str) -> Result<&'a Arc<Platform>> {
    find_platform_from(catalog, name, false)
}

/// The platform of a command's -p (or HOOKCLI_PLATFORM).
pub fn platform_of<'a>(catalog: &'a Catalog, arg: &PlatformArg) -> Result<&'a Arc<Platform>> {
    find_platform_from(catalog, &arg.platform, arg.from_env)
}

/// [`find_platform`]; `from_env` when the name came from HOOKCLI_PLATFORM rather than -p, so
/// the error names the variable the user did not type on the command line.
pub fn find_platform_from<'a>(
    catalog: &'a Catalog,
    name: &str,
    from_env: bool,
) -> Result<&'a Arc<Platform>> {
    catalog.platform(name).ok_or_else(|| {
        let list = catalog.platform_list();
        let source = if from_env {
            " (from HOOKCLI_PLATFORM)"
        } else {
            ""
        };
        let mut error = UserError::new(format!("unknown platform `{name}`{source}"));
        // Aliases count as near names too: `retel` means retell.
        let names = catalog
            .platforms
            .iter()
            .flat_map(|p| std::iter::once(&p.id).chain(&p.aliases))
            .map(String::as_str);
        let near = closest(&name.to_ascii_lowercase(), names);
        error = match (near, from_env) {
            (Some(near), false) => {
                error.hint(format!("did you mean `-p {near}`? platforms: {list}"))
            }
            (None, false) => error.hint(format!("platforms: {list}")),
            (Some(near), true) => error.hint(format!(
                "did you mean HOOKCLI_PLATFORM={near}? platforms: {list}; or unset it for \
                 {DEFAULT_PLATFORM}"
            )),
            (None, true) => error.hint(format!(
                "set HOOKCLI_PLATFORM to one of {list}, or unset it for {DEFAULT_PLATFORM}"
            )),
        };
        error.into()
    })
}

/// The lifecycle by name (`None`: the platform's first), or an error that suggests the closest
/// name and lists them (replay, load).
pub fn find_lifecycle<'a>(platform: &'a Platform, name: Option<&str>) -> Result<&'a Lifecycle> {
    let names: Vec<&str> = platform
        .lifecycles
        .iter()
        .map(|l| l.name.as_str())
        .collect();
    let found = match name {
        Some(name) => platform.lifecycle(name),
        None => platform.lifecycles.first(),
    };
    found.ok_or_else(|| {
        let message = match name {
            Some(name) => format!("unknown lifecycle `{name}` for {}", platform.id),
            None => format!("{} has no lifecycles", platform.id),
        };
        let near = name.and_then(|n| closest(n, names.iter().copied()));
        let hint = match near {
            Some(near) => format!(
                "did you mean {near}? {} lifecycles: {}",
                platform.id,
                names.join(", ")
            ),
            None => format!(
                "{} lifecycles: {} (`hookcli lifecycles -p {}` shows their events)",
                platform.id,
                names.join(", "),
                platform.id
            ),
        };
        UserError::new(message).hint(hint).into()
    })
}

/// The event, or an error that suggests the closest name and names the platforms that have it.
pub fn find_event<'a>(
    catalog: &Catalog,
    platform: &'a Platform,
    name: &str,
) -> Result<&'a EventSpec> {
    if let Some(event) = platform.event(name) {
        return Ok(event);
    }
    // Which other platforms have the event is worth reading them all for, on this error path.
    let whole;
    let catalog = if catalog.partial {
        whole = Catalog::load(None)?;
        &whole
    } else {
        catalog
    };
    let elsewhere = catalog.platforms_with_event(name, &platform.id);
    let message = format!("unknown event `{name}` for {}", platform.id);
    let list = platform.event_names().join(", ");
    let hint = if !elsewhere.is_empty() {
        let ids: Vec<&str> = elsewhere.iter().map(|p| p.id.as_str()).collect();
        let flags: Vec<String> = ids.iter().map(|id| format!("-p {id}")).collect();
        // With the platform's own events too: `-p postcall` may have been meant, and its
        // call_completed is what the user was after.
        format!(
            "{name} is a {} event: add {} ({} events: {list})",
            spoken_list(&ids, "and"),
            spoken_list(&flags, "or"),
            platform.id
        )
    } else if let Some(near) = platform.closest_event(name) {
        format!("did you mean {near}? {} events: {list}", platform.id)
    } else {
        format!("{} events: {list}", platform.id)
    };
    Err(UserError::new(message).hint(hint).into())
}

/// `a`, `a and b`, `a, b and c`.
fn spoken_list<T: AsRef<str>>(items: &[T], and: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.as_ref().to_string(),
        [rest @ .., last] => {
            let rest: Vec<&str> = rest.iter().map(AsRef::as_ref).collect();
            format!("{} {and} {}", rest.join(", "), last.as_ref())
        }
    }
}

/// An http or https URL, or an error that says what is wrong with it.
pub fn parse_url(text: &str) -> Result<reqwest::Url> {
    // Quoted masked: a password in a --to that fails here is still a password.
    let shown = crate::redact::shown_text(text);
    if text.trim().is_empty() || text.contains(char::is_whitespace) {
        return Err(UserError::new(format!(
            "--to `{shown}` is not a URL: it is empty or has spaces"
        ))
        .hint("write it like http://localhost:8080/webhook, with any space as %20")
        .into());
    }
    if !text.contains("://") {
        return Err(UserError::new(format!("--to `{shown}` has no scheme"))
            .hint(format!("write it as {}", with_scheme(&shown)))
            .into());
    }
    let url = reqwest::Url::parse(text).map_err(|e| {
        UserError::new(format!("--to `{shown}` is not a URL ({e})"))
            .hint("write it like http://localhost:8080/webhook")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UserError::new(format!(
            "--to `{shown}`: the scheme must be http or https, not {}",
            url.scheme()
        ))
        .hint("webhooks are POSTed over http or https")
        .into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(usage(format!("--to `{shown}` has no host")));
    }
    Ok(url)
}

/// What a --to without a scheme most likely meant: a bare port is a local receiver's
/// (`3000` → `http://127.0.0.1:3000/webhook`, not `http://3000`), anything else gets `http://`.
fn with_scheme(text: &str) -> String {
    let port = text.strip_prefix(':').unwrap_or(text);
    if !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit()) {
        return format!("http://127.0.0.1:{port}/webhook");
    }
    format!("http://{text}")
}

pub use crate::redact::shown_url;

/// `-H 'Name: value'` flags as a header map.
pub fn parse_headers(list: &[String]) -> Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    for raw in list {
        let bad = |why: &str| {
            UserError::new(format!("-H `{raw}`: {why}")).hint("write a header as -H 'Name: value'")
        };
        let (name, value) = raw
            .split_once(':')
            .ok_or_else(|| bad("no `:` between name and value"))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| bad("not a valid header name"))?;
        // The framing comes from the body itself: a hand-set length or encoding would cut
        // the signed bytes short on the wire, or leave the rest to be read as a next request.
        if name == reqwest::header::CONTENT_LENGTH || name == reqwest::header::TRANSFER_ENCODING {
            return Err(UserError::new(format!(
                "-H `{raw}`: hookcli sets {name} from the body it sends"
            ))
            .hint("drop this -H: the body goes on the wire whole, byte for byte as signed")
            .into());
        }
        let value = HeaderValue::from_str(value.trim())
            .map_err(|_| bad("the value has characters a header cannot carry"))?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// Applies `--set`s, then `--unset`s, to a rendered body. All are parsed before any is
/// applied, and every one is applied before anything is sent, so a typo in the last one
/// changes and sends nothing.
pub fn apply_sets(
    list: &[String],
    unsets: &[String],
    body: &mut Value,
    platform: &Platform,
    event: &str,
) -> Result<()> {
    let fail = |e| set_error(e, platform, event);
    let edits = parse_edits(list, unsets).map_err(fail)?;
    for edit in &edits {
        edit.apply(body, &platform.free_form).map_err(fail)?;
    }
    Ok(())
}

/// `--set`s then `--unset`s, parsed, in the order they are applied.
pub fn parse_edits(sets: &[String], unsets: &[String]) -> Result<Vec<Override>, OverrideError> {
    let sets = sets.iter().map(|s| s.parse::<Override>());
    let unsets = unsets.iter().map(|u| Override::unset(u));
    sets.chain(unsets).collect()
}

/// A `--set` error, with a hint that names the `hookcli show` command printing this body.
fn set_error(error: OverrideError, platform: &Platform, event: &str) -> anyhow::Error {
    let show = format!("`hookcli show {event} -p {}`", platform.id);
    let hint = match &error {
        OverrideError::NoEquals { .. } => {
            format!("write --set PATH=STRING or --set PATH:=JSON, with a PATH from {show}")
        }
        OverrideError::UnsetValue { .. } => {
            format!(
                "write --unset PATH to remove a field, or --set 'PATH:=null' to make it null; {show} prints the body"
            )
        }
        OverrideError::BadPath { .. } => format!(
            "write a dotted path like call.metadata.tier or payload.transcript[0].message; {show} prints the body"
        ),
        OverrideError::Missing {
            near: Some(near), ..
        } => {
            format!("did you mean {near}? {show} prints the body's keys")
        }
        OverrideError::Missing { near: None, .. } => missing_hint(&show, &platform.free_form),
        OverrideError::Shape { .. } => format!("{show} prints the body, to pick a path it has"),
        OverrideError::NotJson { .. } => {
            "for a string use PATH=STRING; a JSON string keeps its quotes: --set 'PATH:=\"text\"'"
                .into()
        }
    };
    UserError::new(error.to_string()).hint(hint).into()
}

/// The way to a path the body does not have: pick one it has, put a new key in a free-form
/// object, or send a whole edited body.
fn missing_hint(show: &str, free_form: &[String]) -> String {
    let edited = "send an edited body with --data FILE";
    if free_form.is_empty() {
        return format!("{show} prints the body's keys; for a key it lacks, {edited}");
    }
    let names: Vec<&str> = free_form.iter().map(String::as_str).collect();
    format!(
        "{show} prints the body's keys; a new key goes only in {} (else {edited})",
        spoken_list(&names, "or")
    )
}

/// Reads a body from a file, or stdin for `-` or no file. `what` names the flag in errors.
pub fn read_input(file: Option<&str>, what: &str) -> Result<Vec<u8>> {
    let (bytes, shown) = match file {
        None | Some("-") => {
            if file.is_none() && std::io::stdin().is_terminal() {
                return Err(UserError::new(format!("{what}: no body given"))
                    .hint("name a file, or pipe the body in: hookcli show call_ended --compact | hookcli ...")
                    .into());
            }
            let bytes = read_capped(std::io::stdin())
                .map_err(|e| usage(format!("{what}: cannot read stdin: {}", io_reason(&e))))?;
            (bytes, format!("{what} (stdin)"))
        }
        Some(path) => {
            let bytes = std::fs::File::open(path)
                .and_then(read_capped)
                .map_err(|e| {
                    UserError::new(format!(
                        "{what} `{path}`: {}",
                        path_reason(Path::new(path), &e)
                    ))
                    .hint("name a readable file, or - to read the body from stdin")
                })?;
            (bytes, format!("{what} `{path}`"))
        }
    };
    if bytes.len() as u64 > BODY_READ_LIMIT {
        return Err(UserError::new(format!(
            "{shown} is larger than {}, the most hookcli reads for one body",
            crate::text::human_bytes(BODY_READ_LIMIT)
        ))
        .hint("a webhook body is kilobytes; check the file (a device such as /dev/zero never ends)")
        .into());
    }
    Ok(bytes)
}

/// The most a body given with --data or on stdin may hold: listen's default --max-body, the
/// largest a receiver here takes, so no device or runaway pipe can exhaust memory.
pub const BODY_READ_LIMIT: u64 = crate::receiver::DEFAULT_MAX_BODY;

/// Reads at most one byte past [`BODY_READ_LIMIT`]: enough to tell that it was over.
fn read_capped(reader: impl Read) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader.take(BODY_READ_LIMIT + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Checks that bytes are a body in the platform's format (JSON, or a form for a form
/// platform), naming where they are not.
pub fn check_body(bytes: &[u8], what: &str, platform: &Platform) -> Result<serde_json::Value> {
    match platform.format {
        crate::catalog::BodyFormat::Json => check_json(bytes, what),
        format => format.decode(bytes).map_err(|e| {
            UserError::new(format!("{what} is {e}"))
                .hint(format!(
                    "{} sends form bodies (Name=value&Other=value); `hookcli show EVENT -p {}` prints one",
                    platform.id, platform.id
                ))
                .into()
        }),
    }
}

/// Checks that bytes are JSON, naming the line and column where they are not.
pub fn check_json(bytes: &[u8], what: &str) -> Result<serde_json::Value> {
    serde_json::from_slice(bytes).map_err(|e| {
        UserError::new(format!("{what} is not JSON: {e}"))
            .hint("the body must be one JSON value; `hookcli show EVENT` prints a valid one")
            .into()
    })
}

/// One thread, for a command that sends a request or a few at a time (send, replay): no
/// worker threads to start, wake and join, which cost more than the work itself.
pub fn current_thread_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {}", io_reason(&e)))
}

/// A multi-threaded runtime for commands that serve or deliver.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {}", io_reason(&e)))
}

/// Ctrl-C, or SIGTERM (a CI runner's stop): either one ends a load, replay or check with the
/// report so far.
/// The handlers are installed when this is called, before the first delivery: a signal
/// arriving before then would kill the process without a report.
#[cfg(unix)]
pub(super) fn interrupt() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let handlers = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    );
    async move {
        match handlers {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

#[cfg(not(unix))]
pub(super) fn interrupt() -> impl std::future::Future<Output = ()> {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
