//! Words and units: the leaf every layer may use (status texts, byte sizes, times, I/O
//! failures in plain words). It imports nothing of hookcli's, so dependencies point one way:
//! domain modules use it, and error.rs and output/ sit on top.

use std::io;
use std::path::Path;
use std::time::SystemTime;

/// Whether a comma-separated header value (`Connection: keep-alive, close`) lists `token`,
/// compared as HTTP compares tokens: without the spaces around it, in any case.
pub fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|b| *b == b',')
        .any(|listed| listed.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// `204 No Content`.
pub fn status_text(status: u16) -> String {
    match reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

/// `text`, cut to `most` characters (Unicode scalar values) with `…` when longer.
pub fn shorten(text: &str, most: usize) -> String {
    if text.chars().count() <= most {
        return text.to_string();
    }
    let kept: String = text.chars().take(most).collect();
    format!("{kept}…")
}

/// `3, 9, 12, 40, 41 and 2 more`: the first few line numbers of a file.
pub fn line_list(lines: &[usize]) -> String {
    const SHOWN: usize = 5;
    let shown: Vec<String> = lines.iter().take(SHOWN).map(usize::to_string).collect();
    match lines.len() > SHOWN {
        true => format!("{} and {} more", shown.join(", "), lines.len() - SHOWN),
        false => shown.join(", "),
    }
}

/// `one` for a count of 1, else `many`.
pub fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

/// `25 MB`, `64 KB`, `812 B`.
pub fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1024 * 1024 && n % (1024 * 1024) == 0 => format!("{} MB", n / (1024 * 1024)),
        n if n >= 1024 * 1024 => format!("{:.1} MB", n as f64 / (1024.0 * 1024.0)),
        n if n >= 1024 => format!("{:.1} KB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// ISO 8601 UTC with milliseconds, for logs and records.
pub fn iso_millis(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

/// `25MB`, `512KB`, `1GB`, `1048576`: sizes in bytes, with 1024-based units.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(split);
    let unit_size: u64 = match unit.trim() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        _ => {
            return Err(format!(
                "`{text}` is not a size: write it like 25MB, 512KB or 1048576"
            ));
        }
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size: write it like 25MB, 512KB or 1048576"))?;
    number
        .checked_mul(unit_size)
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            format!("`{text}` is not a usable size: give one above 0, like 25MB or 512KB")
        })
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

/// Single quotes for a shell, when the text needs them: one shell word, whatever it holds.
pub fn shell_quote(text: &str) -> String {
    let plain = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain && !text.is_empty() {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// How much of a failed answer's body reports keep.
pub const RESPONSE_SHOWN: usize = 1024;

/// The first [`RESPONSE_SHOWN`] bytes of an answer, as text, cut on a character boundary
/// (`…` when cut).
pub fn response_start(body: &[u8]) -> String {
    let mut text = String::from_utf8_lossy(&body[..body.len().min(RESPONSE_SHOWN)]).into_owned();
    if body.len() > RESPONSE_SHOWN {
        // A cut through a character leaves a replacement character at the end; drop it.
        text = text.trim_end_matches('\u{fffd}').to_string();
        text.push('…');
    }
    text
}

/// `printf %s 'BODY' | hookcli send -p ID --to URL --data -ARGS`: the exact bytes again,
/// signed afresh; `None` for a body over 16 KB or not UTF-8, too big or unsafe to paste.
pub fn data_line(body: &[u8], platform: &str, to: Option<&str>, args: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let to = to
        .map(|url| format!(" --to {}", shell_quote(url)))
        .unwrap_or_default();
    (body.len() <= 16 * 1024).then(|| {
        format!(
            "printf %s {} | hookcli send -p {platform}{to} --data -{args}",
            shell_quote(text)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
