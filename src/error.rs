//! One exit path: errors carry their exit code and an optional hint; `main` prints them once.

use std::io;
use std::path::Path;

use crate::call::RenderError;
use crate::catalog::CatalogError;
use crate::receiver::ReceiverError;

/// The documented exit codes (README "Exit codes", and `--help`).
pub mod exit {
    /// Every delivery met its rule (check: no error-level case failed).
    pub const OK: u8 = 0;
    /// A delivery failed its rule: a wrong status, a timeout, a reset.
    pub const FAILED: u8 = 1;
    /// Bad usage or input; nothing was sent.
    pub const USAGE: u8 = 2;
    /// The receiver was unreachable on every attempt (refused, DNS, TLS); for check, also a
    /// receiver that took connections but answered no request.
    pub const UNREACHABLE: u8 = 3;
}

/// A mistake in what the user asked for, with a hint at the fix.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct UserError {
    pub message: String,
    pub hint: Option<String>,
    pub code: u8,
}

impl UserError {
    pub fn new(message: impl Into<String>) -> Self {
        UserError {
            message: message.into(),
            hint: None,
            code: exit::USAGE,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn code(mut self, code: u8) -> Self {
        self.code = code;
        self
    }
}

/// A shorthand: `Err(usage("..."))?`.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    UserError::new(message).into()
}

/// The exit code for an error that stopped a command. The user's mistakes (a bad flag, a bad
/// payloads folder, a port in use) are 2, "nothing was sent"; anything else is not the
/// user's (a bug, a failure of this machine) and must not claim that, so it is 1: the run
/// did not do what was asked.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if let Some(user) = err.downcast_ref::<UserError>() {
        return user.code;
    }
    if err.downcast_ref::<CatalogError>().is_some()
        || err.downcast_ref::<ReceiverError>().is_some()
        || err.downcast_ref::<RenderError>().is_some()
    {
        return exit::USAGE;
    }
    exit::FAILED
}

/// The hint line for an error, if it has one.
pub fn hint(err: &anyhow::Error) -> Option<&str> {
    if let Some(receiver) = err.downcast_ref::<ReceiverError>() {
        return Some(receiver.hint());
    }
    if let Some(catalog) = err.downcast_ref::<CatalogError>() {
        return Some(catalog.hint());
    }
    match err.downcast_ref::<UserError>() {
        Some(user) => user.hint.as_deref(),
        None if exit_code(err) == exit::FAILED => Some(
            "this is not a usage error: hookcli could not finish; if it persists, please report \
             it with the command that caused it",
        ),
        None => None,
    }
}

/// An I/O failure in plain words, without Rust's "(os error N)": "permission denied".
pub fn io_reason(err: &io::Error) -> String {
    use io::ErrorKind as K;
    let words = match err.kind() {
        K::NotFound => "no such file or folder",
        K::PermissionDenied => "permission denied",
        K::AlreadyExists => "it already exists",
        K::IsADirectory => "it is a folder",
        K::NotADirectory => "a part of the path is not a folder",
        K::ReadOnlyFilesystem => "the file system is read-only",
        K::StorageFull => "the disk is full",
        K::AddrInUse => "the address is in use",
        K::AddrNotAvailable => "not an address of this machine",
        K::ConnectionRefused => "connection refused",
        K::ConnectionReset => "the connection was reset",
        K::BrokenPipe => "the other end closed the connection",
        K::TimedOut => "timed out",
        _ => return without_os_error(&err.to_string()),
    };
    words.to_string()
}

/// [`io_reason`] for a file at `path`: a missing file and a missing folder are told apart.
pub fn path_reason(path: &Path, err: &io::Error) -> String {
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
    match err.kind() {
        io::ErrorKind::NotFound if folder.is_some_and(|f| !f.is_dir()) => {
            "its folder does not exist".into()
        }
        io::ErrorKind::NotFound => "no such file".into(),
        _ if path.is_dir() => "it is a folder".into(),
        _ => io_reason(err),
    }
}

/// `Network is unreachable (os error 101)` as `network is unreachable`.
fn without_os_error(text: &str) -> String {
    let text = match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => &text[..at],
        _ => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => "failed".into(),
    }
}

/// Exit codes as `--help` shows them.
pub const EXIT_CODES_HELP: &str = "Exit codes:
  0  every delivery met the platform's success rule
  1  a delivery failed: a status outside the rule, a timeout, a reset; or the run
     was interrupted, or could not finish (a report file not written)
  2  bad usage or input (nothing was sent)
  3  the receiver was unreachable on every attempt (refused, DNS, TLS)";

/// A dead task's cause in plain words: the panic message when there is one.
pub fn task_failure(error: tokio::task::JoinError) -> String {
    if !error.is_panic() {
        return "its task was cancelled".into();
    }
    match panic_message(error.into_panic().as_ref()) {
        Some(message) => format!("it panicked: {message}"),
        None => "it panicked".into(),
    }
}

/// The message a panic was raised with (`panic!("...")` gives a `&str` or a `String`).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_users_mistakes_are_exit_2() {
        assert_eq!(exit_code(&usage("bad flag")), exit::USAGE);
        let unreachable = UserError::new("down").code(exit::UNREACHABLE);
        assert_eq!(exit_code(&unreachable.into()), exit::UNREACHABLE);
        // Not the user's: a bug or this machine. "Nothing was sent" would be a lie.
        let internal = anyhow::anyhow!("the runtime could not start");
        assert_eq!(exit_code(&internal), exit::FAILED);
        assert!(hint(&internal).is_some_and(|h| h.contains("not a usage error")));
    }

    #[test]
    fn io_reasons_never_show_the_os_error_number() {
        let raw = io::Error::from_raw_os_error(101);
        assert!(raw.to_string().contains("(os error 101)"));
        let reason = io_reason(&raw);
        assert!(!reason.contains("os error"), "{reason}");
        assert!(reason.starts_with(char::is_lowercase), "{reason}");
        let gone = io::Error::from(io::ErrorKind::NotFound);
        assert_eq!(io_reason(&gone), "no such file or folder");
    }

    #[test]
    fn a_missing_folder_is_told_apart_from_a_missing_file() {
        let gone = io::Error::from(io::ErrorKind::NotFound);
        let in_missing_folder = Path::new("/nonexistent-hookcli/dir/file");
        assert_eq!(
            path_reason(in_missing_folder, &gone),
            "its folder does not exist"
        );
        let here = std::env::temp_dir().join("hookcli-no-such-file");
        assert_eq!(path_reason(&here, &gone), "no such file");
        let other = io::Error::from(io::ErrorKind::PermissionDenied);
        assert_eq!(path_reason(&std::env::temp_dir(), &other), "it is a folder");
    }
}
