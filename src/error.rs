//! One exit path: errors carry their exit code and an optional hint; `main` prints them once.

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

/// The exit code for an error that stopped a command.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if let Some(user) = err.downcast_ref::<UserError>() {
        return user.code;
    }
    if err.downcast_ref::<CatalogError>().is_some() || err.downcast_ref::<ReceiverError>().is_some()
    {
        return exit::USAGE;
    }
    exit::USAGE
}

/// The hint line for an error, if it has one.
pub fn hint(err: &anyhow::Error) -> Option<&str> {
    err.downcast_ref::<UserError>()
        .and_then(|u| u.hint.as_deref())
}

/// Exit codes as `--help` shows them.
pub const EXIT_CODES_HELP: &str = "Exit codes:
  0  every delivery met the platform's success rule
  1  a delivery failed: a status outside the rule, a timeout, a reset
  2  bad usage or input (nothing was sent)
  3  the receiver was unreachable on every attempt (refused, DNS, TLS)";
