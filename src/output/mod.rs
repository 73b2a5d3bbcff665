//! Turning reports into text, tables and JSON. The only place that decides how things look.

pub mod check;
pub mod delivery;
pub mod load;
pub mod progress;
pub mod received;
pub mod replay;

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

pub fn good(text: &str) -> String {
    Style::new().green().apply_to(text).to_string()
}

pub fn bad(text: &str) -> String {
    Style::new().red().apply_to(text).to_string()
}

pub fn warn(text: &str) -> String {
    Style::new().yellow().apply_to(text).to_string()
}

pub fn dim(text: &str) -> String {
    Style::new().dim().apply_to(text).to_string()
}

pub fn bold(text: &str) -> String {
    Style::new().bold().apply_to(text).to_string()
}

/// A table in the house style.
pub fn table<T: Tabled>(rows: impl IntoIterator<Item = T>) -> String {
    let mut table = Table::new(rows);
    table.with(TableStyle::sharp());
    table.to_string()
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
