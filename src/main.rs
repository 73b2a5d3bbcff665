use std::io::Write;
use std::process::ExitCode;

use clap::error::ErrorKind;

fn main() -> ExitCode {
    hookcli::output::init_colors();
    quiet_panics();
    let cli = match hookcli::cli::parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(err),
    };
    match hookcli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            print_error(&format!("{err:#}"), hookcli::error::hint(&err));
            ExitCode::from(hookcli::error::exit_code(&err))
        }
    }
}

/// A panic is a bug, but the user still gets one `error:` line and a hint instead of Rust's
/// paragraph and its RUST_BACKTRACE note; a call or case that panics is also reported by
/// name where it happened. With RUST_BACKTRACE set, the default hook shows everything.
fn quiet_panics() {
    if std::env::var_os("RUST_BACKTRACE").is_some() {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        let message = hookcli::text::panic_message(info.payload()).unwrap_or("no message");
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        print_error(
            &format!("hookcli panicked: {message}{place}"),
            Some("this is a bug in hookcli: please report it with the command that caused it"),
        );
    }));
}

/// Written with `writeln!`, not `eprintln!`: a stderr nobody reads (`2>&1 | head`) must not
/// turn an error into a panic; the exit code still tells.
fn print_error(message: &str, hint: Option<&str>) {
    let mut stderr = std::io::stderr().lock();
    let error = console::style("error:").red().bold().for_stderr();
    let _ = writeln!(stderr, "{error} {message}");
    if let Some(hint) = hint {
        let label = console::style("hint:").cyan().for_stderr();
        let _ = writeln!(stderr, "{label} {hint}");
    }
}

/// Help and version print as clap renders them; a usage error becomes the same one
/// `error:` line (and `hint:` line) as every other hookcli error, instead of clap's
/// paragraph with a usage block and "For more information".
fn usage_error(err: clap::Error) -> ExitCode {
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        err.exit();
    }
    let (mut message, mut hint) = condense(&err.render().to_string());
    if hint.is_none() && err.kind() == ErrorKind::ValueValidation {
        let (problem, fix) = split_fix(&message, &err);
        message = problem;
        hint = Some(fix);
    }
    // clap's tip for an unknown flag is how to pass it as a value: rarely what was meant.
    if err.kind() == ErrorKind::UnknownArgument
        && !hint.as_deref().is_some_and(|h| h.starts_with("a similar"))
    {
        hint = Some(format!("`{} --help` lists the flags", command_path()));
    }
    // clap's usage line for a conflict shows one of the pair, which reads as a correction.
    if err.kind() == ErrorKind::ArgumentConflict {
        hint = Some(format!(
            "give one or the other; `{} --help` says what each does",
            command_path()
        ));
    }
    // A bad or missing value (`--wait-for abc`, `--to` at the end) comes from clap without a
    // tip or usage line: point at the help, which says what each flag takes.
    if hint.is_none() {
        hint = Some(format!(
            "`{} --help` says what each flag takes",
            command_path()
        ));
    }
    print_error(&message, hint.as_deref());
    ExitCode::from(2)
}

/// A bad flag value's message, cut into the problem and the fix for the hint line. hookcli's
/// value parsers say `<problem>: write ...` (or `; write`, `: use`, `: give`); a value without
/// such a fix gets a hint pointing at the help that describes the flag.
fn split_fix(message: &str, err: &clap::Error) -> (String, String) {
    use std::error::Error;
    let source = err.source().map(ToString::to_string).unwrap_or_default();
    let fix_at = [": write ", "; write ", ": use ", ": give "]
        .iter()
        .filter_map(|sep| source.find(sep))
        .min();
    if let Some(at) = fix_at {
        let fix = &source[at + 2..];
        if let Some(problem) = message.strip_suffix(fix) {
            let problem = problem.trim_end_matches([':', ';', ' ']);
            return (problem.to_string(), fix.to_string());
        }
    }
    let flag = match err.get(clap::error::ContextKind::InvalidArg) {
        Some(clap::error::ContextValue::String(arg)) => {
            arg.split(' ').next().unwrap_or("").to_string()
        }
        _ => "the flag".to_string(),
    };
    (
        message.to_string(),
        format!("`{} --help` describes {flag}", command_path()),
    )
}

/// `hookcli` and the subcommand the user typed, if any, for pointing at its help.
fn command_path() -> String {
    let sub = std::env::args().skip(1).find(|arg| !arg.starts_with('-'));
    let known = sub.filter(|name| {
        use clap::CommandFactory;
        hookcli::cli::Cli::command().find_subcommand(name).is_some()
    });
    match known {
        Some(name) => format!("hookcli {name}"),
        None => "hookcli".to_string(),
    }
}

/// Splits clap's rendered error into its message (continuation lines joined) and a hint:
/// clap's own `tip:` when it has one, else the usage line.
fn condense(rendered: &str) -> (String, Option<String>) {
    let mut paragraphs = rendered.trim().split("\n\n");
    let first = paragraphs.next().unwrap_or_default();
    let message = first
        .trim_start_matches("error:")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let rest: Vec<&str> = paragraphs.map(str::trim).collect();
    let tip = rest.iter().find_map(|p| p.strip_prefix("tip: "));
    let usage = rest.iter().find_map(|p| p.strip_prefix("Usage: "));
    let hint = match (tip, usage) {
        (Some(tip), _) => Some(tip.to_string()),
        (None, Some(usage)) => Some(format!("usage: {usage}")),
        (None, None) => None,
    };
    (message, hint)
}
