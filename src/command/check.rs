//! `hookcli check`: flags and hookcli.toml → a validated config → the run → the report → the
//! exit code. Everything the user can get wrong is caught before a request goes out.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use toml::Spanned;

use super::{find_platform_from, load_catalog, shown_url};
use crate::catalog::{Platform, closest};
use crate::check::suite::{AssertEntry, CaseEntry, Suite};
use crate::check::user::{Assertion, Test, UserCase};
use crate::check::{self, Case, CheckConfig, CheckReport, ReceiverState};
use crate::cli::{CheckArgs, CheckFormat};
use crate::config::{DeliveryConfig, Env, FileSettings, Flags};
use crate::error::{UserError, exit};
use crate::output;
use crate::overrides::Override;

const DEFAULT_BURST: usize = 20;

pub fn run(args: CheckArgs, overlay: Option<&Path>, file: Option<&Path>) -> Result<u8> {
    let suite = crate::config::read_file(file)?;
    let catalog = Arc::new(load_catalog(overlay)?);
    let platform = match &args.platform {
        Some(name) => find_platform_from(&catalog, name, args.platform_from_env)?,
        None => crate::config::platform(&catalog, &default_platform(), suite.as_ref())?,
    }
    .clone();
    let user_cases = user_cases(suite.as_ref(), &catalog, &platform)?;
    let cases = select_cases(&args, suite.as_ref(), &platform, &user_cases)?;
    if args.list {
        print_list(&cases, format(&args) == CheckFormat::Json);
        return Ok(exit::OK);
    }
    let file = suite.as_ref().map(FileSettings::of).transpose()?;
    let flags = Flags {
        to: args.to.as_deref(),
        key: &args.key,
        delivery: &args.delivery,
    };
    let delivery = DeliveryConfig::resolve(&platform, &flags, file.as_ref(), &Env::process())?;
    let config = CheckConfig {
        no_key_reason: delivery.no_key_reason(),
        burst: burst(&args, suite.as_ref()),
        catalog,
        // Replaced by the target's URL once it is up.
        url: reqwest::Url::parse("http://127.0.0.1/").expect("a static URL parses"),
        platform: delivery.platform.clone(),
        headers: delivery.headers.clone(),
        policy: delivery.policy.clone(),
        rule_owner: delivery.rule_owner.clone(),
        key: delivery.key.clone(),
        seed: delivery.seed,
        policies: delivery.event_policies(),
        inbound_url: inbound_url(&args, suite.as_ref())?,
        functions: functions(suite.as_ref())?,
        user_cases,
        verbose: args.verbose,
        dry_run: args.dry_run,
        repro_key: if args.key.secret.is_some() {
            " --secret \"$HOOKCLI_SECRET\"".into()
        } else {
            String::new()
        },
        built_in_target: false,
    };
    if let Some(path) = &args.junit {
        check_writable(path)?;
    }
    // Only once everything else is valid, so a usage error stands alone on stderr.
    if config.key.is_none() && config.platform.signing.is_some() {
        errln!(
            "note: {}; the signature cases are skipped and events go unsigned",
            config.no_key_reason
        );
    }
    let wait = args
        .wait_for
        .or(suite.as_ref().and_then(|s| s.wait_for))
        .unwrap_or(Duration::ZERO);
    super::runtime()?.block_on(execute(config, delivery, cases, wait, &args))
}

/// The suite's `[[functions]]`, then the custom tools of its `agent_json` file.
fn functions(suite: Option<&Suite>) -> Result<Vec<crate::check::suite::FunctionEntry>> {
    let Some(suite) = suite else {
        return Ok(Vec::new());
    };
    let mut functions = suite.functions.clone();
    if let Some(path) = &suite.agent_json {
        // Relative to the suite file, as a team keeps them side by side.
        let file = suite
            .file()
            .parent()
            .unwrap_or(Path::new("."))
            .join(path.get_ref());
        let fail = |why: String| {
            UserError::new(suite.error(path.span(), "agent_json", why).to_string()).hint(
                "give the JSON of an agent or its LLM as exported from the dashboard or the API",
            )
        };
        let text = std::fs::read_to_string(&file).map_err(|e| {
            fail(format!(
                "cannot read {}: {}",
                file.display(),
                crate::text::path_reason(&file, &e)
            ))
        })?;
        let agent: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| fail(format!("{} is not JSON ({e})", file.display())))?;
        let found = crate::check::suite::functions_of_agent(&agent);
        if found.is_empty() {
            return Err(fail(format!("{} has no custom functions", file.display())).into());
        }
        functions.extend(found);
    }
    Ok(functions)
}

/// The file's `[[cases]]`, checked against the platform's catalog before anything is sent:
/// the event exists, every edit applies to a rendering of it, the status is a status, each
/// assertion has one test and its regex compiles. Each error names the line.
fn user_cases(
    suite: Option<&Suite>,
    catalog: &crate::catalog::Catalog,
    platform: &Platform,
) -> Result<Vec<UserCase>> {
    let Some(suite) = suite else {
        return Ok(Vec::new());
    };
    let mut cases: Vec<UserCase> = Vec::new();
    for entry in &suite.cases {
        let case = user_case(suite, entry, catalog, platform)?;
        if cases.iter().any(|c| c.name == case.name) {
            return Err(UserError::new(
                suite
                    .error(
                        entry.name.span(),
                        "name",
                        format!("a second case is called `{}`", entry.name.get_ref()),
                    )
                    .to_string(),
            )
            .hint("give each [[cases]] entry its own name")
            .into());
        }
        cases.push(case);
    }
    Ok(cases)
}

fn user_case(
    suite: &Suite,
    entry: &CaseEntry,
    catalog: &crate::catalog::Catalog,
    platform: &Platform,
) -> Result<UserCase> {
    let fail = |span: std::ops::Range<usize>, key: &str, message: String, hint: String| {
        anyhow::Error::from(UserError::new(suite.error(span, key, message).to_string()).hint(hint))
    };
    let name = entry.name.get_ref();
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./".contains(c);
    if name.is_empty() || !name.chars().all(plain) {
        return Err(fail(
            entry.name.span(),
            "name",
            format!("`{name}` is not a case name"),
            "use letters, digits and - _ . / (it is reported as cases/NAME and picked with --only)"
                .into(),
        ));
    }
    let event_name = entry.event.get_ref();
    let Some(event) = platform.event(event_name) else {
        let list = platform.event_names().join(", ");
        let hint = match platform.closest_event(event_name) {
            Some(near) => format!("did you mean {near}? {} events: {list}", platform.id),
            None => format!("{} events: {list}", platform.id),
        };
        return Err(fail(
            entry.event.span(),
            "event",
            format!("unknown event `{event_name}` for {}", platform.id),
            hint,
        ));
    };
    // One rendering to try the edits on, so a typo in a path stops the run before it starts.
    let mut sample = crate::call::render_event(
        catalog,
        platform,
        event,
        &mut crate::call::rng_from(Some(0)),
    )?;
    let show = format!(
        "`hookcli show {event_name} -p {}` prints the body",
        platform.id
    );
    let mut edits = Vec::new();
    let parsed = entry
        .set
        .iter()
        .map(|s| (s, "set", s.get_ref().parse::<Override>()))
        .chain(
            entry
                .unset
                .iter()
                .map(|u| (u, "unset", Override::unset(u.get_ref()))),
        );
    for (item, key, edit) in parsed {
        let edit = edit
            .and_then(|e| e.apply(&mut sample, &platform.free_form).map(|()| e))
            .map_err(|e| fail(item.span(), key, e.to_string(), show.clone()))?;
        edits.push(edit);
    }
    let status = match &entry.status {
        None => Vec::new(),
        Some(value) => statuses(value.get_ref()).ok_or_else(|| {
            fail(
                value.span(),
                "status",
                format!("`{}` is not an HTTP status", value.get_ref()),
                "write status = 200, or a list like status = [200, 202]".into(),
            )
        })?,
    };
    let asserts = entry
        .asserts
        .iter()
        .map(|a| assertion(a, &fail))
        .collect::<Result<Vec<_>>>()?;
    Ok(UserCase {
        name: format!("{}{name}", check::user::PREFIX),
        event: event.name.clone(),
        edits,
        status,
        latency: entry.latency,
        asserts,
    })
}

/// `200` or `[200, 202]`, each 100 to 599.
fn statuses(value: &toml::Value) -> Option<Vec<u16>> {
    let one = |v: &toml::Value| {
        v.as_integer()
            .and_then(|n| u16::try_from(n).ok())
            .filter(|n| (100..=599).contains(n))
    };
    match value {
        toml::Value::Array(items) if !items.is_empty() => items.iter().map(one).collect(),
        other => one(other).map(|n| vec![n]),
    }
}

type Fail<'a> = dyn Fn(std::ops::Range<usize>, &str, String, String) -> anyhow::Error + 'a;

fn assertion(entry: &AssertEntry, fail: &Fail<'_>) -> Result<Assertion> {
    let pointer = entry.pointer.get_ref();
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return Err(fail(
            entry.pointer.span(),
            "pointer",
            format!("`{pointer}` is not a JSON pointer"),
            format!(
                "a pointer starts with /, like pointer = \"/{}\"",
                pointer.replace('.', "/")
            ),
        ));
    }
    let tests = [
        entry.equals.is_some(),
        entry.exists.is_some(),
        entry.matches.is_some(),
    ];
    if tests.iter().filter(|t| **t).count() != 1 {
        return Err(fail(
            entry.pointer.span(),
            "pointer",
            format!("the assertion on `{pointer}` needs exactly one of equals, exists, matches"),
            "write one test per [[cases.assert]], like equals = \"confirmed\"".into(),
        ));
    }
    let test = if let Some(value) = &entry.equals {
        let json = serde_json::to_value(value.get_ref()).map_err(|e| {
            fail(
                value.span(),
                "equals",
                format!("cannot compare with JSON: {e}"),
                "give a string, number, boolean, array or table".into(),
            )
        })?;
        Test::Equals(json)
    } else if let Some(exists) = &entry.exists {
        Test::Exists(*exists.get_ref())
    } else {
        let pattern = entry.matches.as_ref().expect("one test is given");
        let regex = regex::Regex::new(pattern.get_ref()).map_err(|e| {
            let why = e
                .to_string()
                .lines()
                .last()
                .unwrap_or_default()
                .trim()
                .to_string();
            fail(
                pattern.span(),
                "matches",
                format!(
                    "`{}` is not a regular expression ({why})",
                    pattern.get_ref()
                ),
                "the syntax is Rust's regex crate's (https://docs.rs/regex)".into(),
            )
        })?;
        Test::Matches(regex)
    };
    Ok(Assertion {
        pointer: pointer.clone(),
        test,
    })
}

/// --inbound-url, else inbound_url in the suite file.
fn inbound_url(args: &CheckArgs, suite: Option<&Suite>) -> Result<Option<reqwest::Url>> {
    if let Some(url) = &args.inbound_url {
        return super::parse_url(url).map(Some);
    }
    let Some((suite, url)) = suite.and_then(|s| s.inbound_url.as_ref().map(|u| (s, u))) else {
        return Ok(None);
    };
    super::parse_url(url.get_ref()).map(Some).map_err(|e| {
        UserError::new(
            suite
                .error(url.span(), "inbound_url", e.to_string())
                .to_string(),
        )
        .hint("write it like inbound_url = \"http://127.0.0.1:3000/inbound\"")
        .into()
    })
}

/// The cases to run: the flags' --only/--skip when given, else the file's. A name or prefix
/// that picks no case is an error that lists the cases.
fn select_cases(
    args: &CheckArgs,
    suite: Option<&Suite>,
    platform: &Platform,
    user: &[UserCase],
) -> Result<Vec<Case>> {
    let mut all = check::case_list(platform);
    all.extend(check::user_case_list(user));
    let names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
    let unknown = |pattern: &str, origin: String| -> anyhow::Error {
        let mut error = UserError::new(format!("{origin}: no case is called `{pattern}`"));
        let list = names.join(", ");
        // Groups too, so `signatur/` suggests `signature/`.
        let mut candidates: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        for name in &names {
            if let Some((group, _)) = name.split_once('/') {
                let group = format!("{group}/");
                if !candidates.contains(&group) {
                    candidates.push(group);
                }
            }
        }
        error = match closest(pattern, candidates.iter().map(String::as_str)) {
            Some(near) => error.hint(format!("did you mean {near}? cases: {list}")),
            None => error.hint(format!(
                "cases (a prefix like signature/ picks a group): {list}"
            )),
        };
        error.into()
    };
    let from_file = |list: &[Spanned<String>], key: &str| -> Result<Vec<String>> {
        let suite = suite.expect("a list from the file means there is a file");
        for item in list {
            if !all.iter().any(|c| check::matches(item.get_ref(), &c.name)) {
                let at = suite.error(item.span(), key, "").to_string();
                return Err(unknown(
                    item.get_ref(),
                    at.trim_end_matches([':', ' ']).to_string(),
                ));
            }
        }
        Ok(list.iter().map(|s| s.get_ref().clone()).collect())
    };
    let pick = |flag: &[String], name: &str| -> Result<Vec<String>> {
        if !flag.is_empty() {
            if let Some(bad) = flag
                .iter()
                .find(|p| !all.iter().any(|c| check::matches(p, &c.name)))
            {
                return Err(unknown(bad, format!("--{name} {bad}")));
            }
            return Ok(flag.to_vec());
        }
        match suite {
            Some(s) => from_file(if name == "only" { &s.only } else { &s.skip }, name),
            None => Ok(Vec::new()),
        }
    };
    let only = pick(&args.only, "only")?;
    let skip = pick(&args.skip, "skip")?;
    let selected =
        check::select(all.clone(), &only, &skip).map_err(|p| unknown(&p, "case".into()))?;
    if selected.is_empty() {
        return Err(UserError::new("--only and --skip leave no case to run")
            .hint("`hookcli check --list` prints the cases")
            .into());
    }
    Ok(selected)
}

fn print_list(cases: &[Case], json: bool) {
    if json {
        for case in cases {
            outln!("{}", output::json::line(&output::check::list_json(case)));
        }
    } else {
        outln!("{}", output::check::list(cases));
    }
}

/// check's `-p` has no default value (a file may give one): the default, as if unset.
fn default_platform() -> crate::cli::PlatformArg {
    crate::cli::PlatformArg {
        platform: crate::cli::DEFAULT_PLATFORM.to_string(),
        from_env: false,
        from_default: true,
    }
}

fn burst(args: &CheckArgs, suite: Option<&Suite>) -> usize {
    // Both the flag and the file are checked against 1..=1000 when read.
    args.burst
        .or(suite.and_then(|s| s.burst))
        .map(usize::from)
        .unwrap_or(DEFAULT_BURST)
}

/// The report file's folder must exist before anything is sent.
pub(super) fn check_writable(path: &Path) -> Result<()> {
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if path.is_dir() || !folder.is_dir() {
        return Err(UserError::new(format!(
            "--junit {}: {}",
            path.display(),
            if path.is_dir() {
                "it is a folder"
            } else {
                "its folder does not exist"
            }
        ))
        .hint("name a file in an existing folder, like --junit report.xml")
        .into());
    }
    // The folder exists, but can the file be written there (permissions, a read-only file
    // system)? Try now, not after the run: opened for appending, so an existing report is left
    // as it is until the run replaces it, and a file made only for the try is removed.
    let existed = path.exists();
    match std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
    {
        Ok(_) => {
            if !existed {
                let _ = std::fs::remove_file(path);
            }
            Ok(())
        }
        Err(e) => Err(UserError::new(format!(
            "--junit {}: cannot write it: {}",
            path.display(),
            match e.kind() {
                std::io::ErrorKind::NotFound => "the file cannot be created there".to_string(),
                _ => crate::text::io_reason(&e),
            }
        ))
        .hint("name a file in a folder you can write to, like --junit report.xml")
        .into()),
    }
}

async fn execute(
    mut config: CheckConfig,
    delivery: DeliveryConfig,
    cases: Vec<Case>,
    wait: Duration,
    args: &CheckArgs,
) -> Result<u8> {
    let endpoint = delivery
        .start_target(
            None,
            "checking",
            ", to show what a passing receiver looks like",
        )
        .await?;
    config.url = endpoint.url.clone();
    config.built_in_target = endpoint.is_built_in();
    if args.dry_run {
        let report = check::run(config, cases, super::interrupt()).await;
        endpoint.stop().await;
        print_dry_run(&report, args.json);
        return Ok(exit::OK);
    }
    if !wait.is_zero() {
        errln!(
            "waiting up to {} for {} to accept connections",
            crate::duration::short(wait),
            shown_url(&config.url)
        );
    }
    if let Err(reason) = check::wait_for(&config.url, wait).await {
        let within = if wait.is_zero() {
            String::new()
        } else {
            format!(" within {}", crate::duration::short(wait))
        };
        let message = format!(
            "the receiver at {} did not accept a connection{within}: {reason}",
            shown_url(&config.url)
        );
        // CI report viewers show nothing without a report: say why there.
        if let Some(path) = &args.junit {
            write_junit(
                path,
                output::check::junit_unreachable(&config.platform.id, &message)?,
            )?;
        }
        github_unreachable(args, &config.platform.id, &config.url, &message)?;
        let hint = if wait.is_zero() {
            "start it first, or give --wait-for 30s so hookcli waits for it".to_string()
        } else {
            format!(
                "did it start? check its log and the host and port in --to; raise \
                 --wait-for if it needs longer than {} to start",
                crate::duration::short(wait)
            )
        };
        return Err(UserError::new(message)
            .hint(hint)
            .code(exit::UNREACHABLE)
            .into());
    }
    errln!(
        "checking {} as {}: {} case{}",
        shown_url(&config.url),
        config.platform.id,
        cases.len(),
        if cases.len() == 1 { "" } else { "s" }
    );
    let url = config.url.clone();
    let report = check::run(config, cases, super::interrupt()).await;
    endpoint.stop().await;
    if args.verbose {
        for exchange in &report.exchanges {
            err!("{}", output::check::exchange_text(exchange));
        }
    }
    if let Some(detail) = &report.unusable {
        return Err(unusable(&url, detail, &report, args).await?.into());
    }
    // An interrupted run left cases untested: it is not a pass, whatever ran passed.
    let code = if report.receiver.never_answered() {
        exit::UNREACHABLE
    } else if report.failed() || report.interrupted {
        exit::FAILED
    } else {
        exit::OK
    };
    if format(args) == CheckFormat::Json {
        for result in &report.results {
            outln!("{}", output::json::line(&output::check::case_json(result)));
        }
        outln!(
            "{}",
            output::json::line(&output::check::summary_json(&report, code))
        );
    } else {
        outln!("{}", output::check::table(&report));
        if args.verbose {
            out!("{}", output::check::details(&report));
        }
        outln!("{}", output::check::summary(&report));
    }
    if let Some(path) = &args.junit {
        write_junit(path, output::check::junit(&report)?)?;
    }
    if format(args) == CheckFormat::Github {
        let shown = if report.receiver.never_answered() {
            exit::UNREACHABLE
        } else {
            code
        };
        out!("{}", output::github::annotations(&report));
        write_github(
            &output::github::summary(&report, shown),
            Some(&output::github::outputs(&report)),
        )?;
    }
    match never_answered(&report) {
        Some(error) => Err(error.code(exit::UNREACHABLE).into()),
        None => Ok(code),
    }
}

/// --dry-run: each request the cases would send, in case order, as `send --dry-run` prints
/// one (text, or one JSON object per request with its case).
fn print_dry_run(report: &CheckReport, json: bool) {
    for exchange in &report.exchanges {
        if json {
            let url = output::check::shown(&exchange.request);
            outln!(
                "{}",
                output::json::line(&output::check::dry_run_json(exchange, &url))
            );
        } else {
            outln!("{}", output::check::dry_run_text(exchange));
        }
    }
    errln!(
        "dry run: {} request{} from {} case{}, nothing sent",
        report.exchanges.len(),
        if report.exchanges.len() == 1 { "" } else { "s" },
        report.results.len(),
        if report.results.len() == 1 { "" } else { "s" }
    );
}

/// The error (exit 3) for a run stopped because every request failed to connect the same
/// way: one line for the URL's fault instead of a report that blames every case.
async fn unusable(
    url: &reqwest::Url,
    detail: &str,
    report: &CheckReport,
    args: &CheckArgs,
) -> Result<UserError> {
    let shown = shown_url(url);
    let (message, hint) = match check::plain_http(url).await {
        Some(plain) => (
            format!(
                "the receiver at {shown} speaks plain HTTP: use {}",
                shown_url(&plain)
            ),
            format!(
                "every request failed the TLS handshake ({detail}); give the http:// URL in --to"
            ),
        ),
        None => (
            format!(
                "the receiver at {shown}: every request failed to connect the same way \
                 ({detail}), so no case could run"
            ),
            "check the scheme and port in --to, and the receiver's TLS certificate".to_string(),
        ),
    };
    if let Some(path) = &args.junit {
        write_junit(
            path,
            output::check::junit_unreachable(&report.platform, &message)?,
        )?;
    }
    github_unreachable(args, &report.platform, url, &message)?;
    Ok(UserError::new(message).hint(hint).code(exit::UNREACHABLE))
}

/// The error line for a run the receiver answered nothing of (exit 3), after the report.
fn never_answered(report: &CheckReport) -> Option<UserError> {
    let url = &report.url;
    match report.receiver {
        ReceiverState::Down => Some(
            UserError::new(format!(
                "the receiver at {url} accepted a connection, then refused every request: it never answered"
            ))
            .hint("check that it stays up (its log may say why it stopped)"),
        ),
        ReceiverState::Silent => Some(
            UserError::new(format!(
                "the receiver at {url} accepted connections but never answered a request ({})",
                output::check::silence(report)
            ))
            .hint(
                "check that its handler answers every POST (is it stuck, or waiting on \
                 something?); if it is only slow, raise --timeout",
            ),
        ),
        ReceiverState::Up | ReceiverState::Stopped => None,
    }
}

pub(super) fn write_junit(path: &Path, xml: String) -> Result<()> {
    std::fs::write(path, xml).map_err(|e| {
        let reason = crate::text::path_reason(path, &e);
        UserError::new(format!(
            "--junit {}: cannot write it: {reason}",
            path.display()
        ))
        .hint("the results above are complete; only the report file is missing")
        .code(exit::FAILED)
    })?;
    errln!("wrote {}", path.display());
    Ok(())
}

/// --format, else --json's.
fn format(args: &CheckArgs) -> CheckFormat {
    match (args.format, args.json) {
        (Some(format), _) => format,
        (None, true) => CheckFormat::Json,
        (None, false) => CheckFormat::Text,
    }
}

/// --format github for a run that could not start: an annotation, and a summary saying why.
fn github_unreachable(
    args: &CheckArgs,
    platform: &str,
    url: &reqwest::Url,
    message: &str,
) -> Result<()> {
    if format(args) != CheckFormat::Github {
        return Ok(());
    }
    out!("{}", output::github::unreachable_annotation(message));
    let shown = shown_url(url);
    write_github(
        &output::github::unreachable_summary(platform, &shown, message),
        None,
    )
}

/// Appends the job summary to $GITHUB_STEP_SUMMARY and the counts to $GITHUB_OUTPUT, each
/// when the runner set it (appended: earlier steps' lines stay).
fn write_github(summary: &str, outputs: Option<&str>) -> Result<()> {
    let env = Env::process();
    match env.var("GITHUB_STEP_SUMMARY") {
        Some(path) => append(&path, summary, "GITHUB_STEP_SUMMARY")?,
        None => errln!("note: GITHUB_STEP_SUMMARY is not set, so no job summary was written"),
    }
    if let (Some(path), Some(outputs)) = (env.var("GITHUB_OUTPUT"), outputs) {
        append(&path, outputs, "GITHUB_OUTPUT")?;
    }
    Ok(())
}

fn append(path: &str, text: &str, variable: &str) -> Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .map_err(|e| {
            let reason = crate::text::path_reason(Path::new(path), &e);
            UserError::new(format!("{variable} {path}: cannot write it: {reason}"))
                .hint("the results above are complete; only the GitHub report file is missing")
                .code(exit::FAILED)
        })?;
    Ok(())
}
