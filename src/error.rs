//! One exit path: errors carry their exit code and an optional hint; `main` prints them once.

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

/// Exit codes as `--help` shows them.
pub const EXIT_CODES_HELP: &str = "Exit codes:
  0  every delivery met the platform's success rule
  1  a delivery failed: a status outside the rule, a timeout, a reset; or the run
     was interrupted, or could not finish (a report file not written)
  2  bad usage or input (nothing was sent)
  3  the receiver was unreachable on every attempt (refused, DNS, TLS)";

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
}
