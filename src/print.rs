//! `outln!` and `out!`: `println!` and `print!` for the data on stdout, except that a stdout
//! nobody reads any more (`hookcli check | head -1`) is not a panic. The rest of the output is
//! dropped and the command finishes its work, so a delivery is still made, a record file
//! still written and the exit code still honest.

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
            eprintln!(
                "warning: cannot write to stdout ({}): the rest of the output is lost",
                crate::error::io_reason(&e)
            );
        }
    }
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
