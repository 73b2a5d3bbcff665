//! `outln!` and `out!`: `println!` and `print!` for the data on stdout, except that a stdout
//! nobody reads any more (`hookcli check | head -1`) is not a panic. The rest of the output is
//! dropped and the command finishes its work, so a delivery is still made, a record file
//! still written and the exit code still honest. `errln!` is the same for stderr
//! (`hookcli listen 2>&1 | head`).

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set at the first failed write: later output is dropped rather than failing again.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);

/// Writes to stdout; see the module. A failure other than a closed pipe (a full disk behind a
/// redirect) is said once on stderr, since the output then is not whole.
pub fn write_stdout(args: fmt::Arguments) {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args) {
        STDOUT_GONE.store(true, Ordering::Relaxed);
        if e.kind() != io::ErrorKind::BrokenPipe {
            write_stderr(format_args!(
                "warning: cannot write to stdout ({}): the rest of the output is lost\n",
                crate::text::io_reason(&e)
            ));
        }
    }
}

/// Writes bytes (whole lines) to stdout in one write, as [`write_stdout`] does text.
pub fn write_stdout_bytes(bytes: &[u8]) {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    if let Err(e) = io::stdout().lock().write_all(bytes) {
        STDOUT_GONE.store(true, Ordering::Relaxed);
        if e.kind() != io::ErrorKind::BrokenPipe {
            write_stderr(format_args!(
                "warning: cannot write to stdout ({}): the rest of the output is lost\n",
                crate::text::io_reason(&e)
            ));
        }
    }
}

/// Writes to stderr; a failure there has nowhere to be told, so it is dropped.
pub fn write_stderr(args: fmt::Arguments) {
    let _ = io::stderr().lock().write_fmt(args);
}

macro_rules! out {
    ($($arg:tt)*) => {
        $crate::print::write_stdout(format_args!($($arg)*))
    };
}

macro_rules! outln {
    () => {
        $crate::print::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::print::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

macro_rules! errln {
    () => {
        $crate::print::write_stderr(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::print::write_stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}

macro_rules! err {
    ($($arg:tt)*) => {
        $crate::print::write_stderr(format_args!($($arg)*))
    };
}
