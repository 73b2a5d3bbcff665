//! Progress bars, built in one place: hidden with --json, when quiet, or off a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar of `total` units drawn on stderr, or a hidden one.
pub fn bar(total: u64, unit: &str, visible: bool) -> ProgressBar {
    if !visible || !std::io::stdout().is_terminal() || !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(total);
    let template = format!("{{bar:30.cyan/blue}} {{pos}}/{{len}} {unit} {{msg}} [{{elapsed}}]");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("█▉▊▋▌▍▎▏ "));
    }
    bar
}
