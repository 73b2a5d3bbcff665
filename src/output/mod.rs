//! Turning reports into text, tables and JSON. The only place that decides how things look.

pub mod answer;
pub mod check;
pub mod delivery;
pub mod github;
pub mod json;
pub mod llm;
pub mod load;
pub mod progress;
pub mod received;
pub mod replay;

use std::borrow::Cow;
use std::fmt::Write as _;

use console::Style;
use tabled::settings::Style as TableStyle;
use tabled::{Table, Tabled};

/// Colour is on only for a terminal, and never with NO_COLOR (console checks both per stream).
pub fn init_colors() {
    if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        console::set_colors_enabled(false);
        console::set_colors_enabled_stderr(false);
    }
}

/// What a piece of output says, and so its colour: one place for the palette. [`good`] and
/// its siblings make a String; [`Tone::style`] is for writing in place (listen's line).
#[derive(Clone, Copy)]
pub enum Tone {
    Good,
    Bad,
    Warn,
    Dim,
}

impl Tone {
    pub fn style(self) -> Style {
        match self {
            Tone::Good => Style::new().green(),
            Tone::Bad => Style::new().red(),
            Tone::Warn => Style::new().yellow(),
            Tone::Dim => Style::new().dim(),
        }
    }
}

pub fn good(text: &str) -> String {
    Tone::Good.style().apply_to(text).to_string()
}

pub fn bad(text: &str) -> String {
    Tone::Bad.style().apply_to(text).to_string()
}

pub fn warn(text: &str) -> String {
    Tone::Warn.style().apply_to(text).to_string()
}

pub fn dim(text: &str) -> String {
    Tone::Dim.style().apply_to(text).to_string()
}

pub fn bold(text: &str) -> String {
    Style::new().bold().apply_to(text).to_string()
}

/// Text that came from the wire (event names, ids, header values, bodies), made safe for a
/// terminal: control characters and bidirectional overrides become visible escapes (`\n`,
/// `\u{1b}`), so a peer cannot colour the screen, move the cursor or forge a line. A
/// multi-line body is escaped line by line. `--json` needs none of this: JSON escapes its own.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// C0, DEL and C1 controls (C1 includes the one-byte CSI), and the marks that reorder text.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// [`escape_controls`] for text shown over several lines: each line escaped on its own.
pub fn escape_lines(text: &str) -> String {
    text.lines()
        .map(escape_controls)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A table in the house style.
pub fn table<T: Tabled>(rows: impl IntoIterator<Item = T>) -> String {
    let mut table = Table::new(rows);
    table.with(TableStyle::sharp());
    table.to_string()
}

/// A number with thousands separators: 12,345.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_from_the_wire_are_shown_as_escapes() {
        assert_eq!(escape_controls("call_ended"), "call_ended");
        assert_eq!(escape_controls("café 👋"), "café 👋");
        assert_eq!(
            escape_controls("x\u{1b}[2K\rvalid  204\n"),
            "x\\u{1b}[2K\\rvalid  204\\n"
        );
        assert_eq!(escape_controls("\u{9b}31m\u{7f}"), "\\u{9b}31m\\u{7f}");
        assert_eq!(escape_controls("a\u{202e}b"), "a\\u{202e}b");
        assert_eq!(escape_lines("one\u{1b}\ntwo\r\n"), "one\\u{1b}\ntwo");
    }

    #[test]
    fn no_control_character_survives_escaping() {
        let every: String = (0..=0x3000u32).filter_map(char::from_u32).collect();
        let shown = escape_controls(&every);
        assert!(!shown.chars().any(needs_escape), "{shown:?}");
        assert!(
            !escape_lines(&every)
                .chars()
                .any(|c| c != '\n' && needs_escape(c))
        );
    }
}
