//! `hookcli record redact IN --out OUT`: a recording made safe to commit as a test fixture.

use std::path::Path;

use anyhow::Result;

use super::{load_catalog, platform_of};
use crate::cli::{RecordArgs, RecordCommand, RedactArgs};
use crate::error::{UserError, exit};
use crate::text::{line_list, plural};

pub fn run(args: RecordArgs, overlay: Option<&Path>) -> Result<u8> {
    match args.command {
        RecordCommand::Redact(args) => redact(args, overlay),
    }
}

fn redact(args: RedactArgs, overlay: Option<&Path>) -> Result<u8> {
    let catalog = load_catalog(overlay)?;
    let platform = platform_of(&catalog, &args.platform)?;
    let seed = crate::config::Env::process().seed()?;
    let (text, shown) = super::replay::recording_text(&args.input, "record redact")?;
    let redacted =
        crate::recording::redact(&text, &shown, platform, &mut crate::call::rng_from(seed))
            .map_err(|e| {
                UserError::new(format!("record redact {e}"))
                    .hint("each value must be a `hookcli listen --record` line or one JSON body")
            })?;
    if redacted.entries == 0 {
        return Err(
            UserError::new(format!("record redact `{shown}`: holds no requests"))
                .hint("record traffic with `hookcli listen --record FILE`")
                .into(),
        );
    }
    write(&args.out, &redacted.text)?;
    if !redacted.torn.is_empty() {
        errln!(
            "note: left out {} torn {} (line {}): cut short, a record write that did not finish",
            redacted.torn.len(),
            plural(redacted.torn.len(), "entry", "entries"),
            line_list(&redacted.torn)
        );
    }
    errln!(
        "wrote {} redacted {} to {}",
        redacted.entries,
        plural(redacted.entries, "entry", "entries"),
        args.out.display()
    );
    Ok(exit::OK)
}

/// Writes beside the target and renames, so OUT is never half written (and IN may be OUT).
fn write(out: &Path, text: &str) -> Result<()> {
    let refuse = |e: &std::io::Error| {
        UserError::new(format!(
            "--out `{}`: {}",
            out.display(),
            crate::text::path_reason(out, e)
        ))
        .hint("name a file in an existing, writable folder, like --out tests/fixtures/call.ndjson")
    };
    let mut partial = out.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    std::fs::write(&partial, text).map_err(|e| refuse(&e))?;
    std::fs::rename(&partial, out).map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        refuse(&e)
    })?;
    Ok(())
}
