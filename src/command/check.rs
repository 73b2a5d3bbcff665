//! `hookcli check`: flags and hookcli.toml → a validated config → the run → the report → the
//! exit code. Everything the user can get wrong is caught before a request goes out.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use toml::Spanned;

use super::{find_platform_from, load_catalog, shown_url};
use crate::catalog::{Platform, closest};
use crate::check::suite::Suite;
use crate::check::{self, Case, CheckConfig, CheckReport, ReceiverState};
use crate::cli::{CheckArgs, CheckFormat};
use crate::config::{DeliveryConfig, Env, FileSettings, Flags};
use crate::error::{UserError, exit};
use crate::output;

const DEFAULT_BURST: usize = 20;

pub fn run(args: CheckArgs, overlay: Option<&Path>, file: Option<&Path>) -> Result<u8> {
    let suite = crate::config::read_file(file)?;
    let catalog = Arc::new(load_catalog(overlay)?);
    let platform = match &args.platform {
        Some(name) => find_platform_from(&catalog, name, args.platform_from_env)?,
        None => crate::config::platform(&catalog, &default_platform(), suite.as_ref())?,
    }
    .clone();
    let cases = select_cases(&args, suite.as_ref(), &platform)?;
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
fn select_cases(args: &CheckArgs, suite: Option<&Suite>, platform: &Platform) -> Result<Vec<Case>> {
    let all = check::case_list(platform);
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
