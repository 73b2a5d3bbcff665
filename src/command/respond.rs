//! `listen --respond [EVENT=]FILE`: the bodies the receiver answers with.

use bytes::Bytes;

use crate::answer::Answers;
use crate::catalog::Platform;
use crate::error::UserError;
use crate::text::io_reason;

/// The catalog's example answers, with each `--respond` over them: `FILE` for every request,
/// `EVENT=FILE` for one event.
pub fn answers(platform: &Platform, given: &[String]) -> anyhow::Result<Answers> {
    let mut answers = Answers::examples(platform);
    for item in given {
        let (event, file) = match item.split_once('=') {
            Some((event, file)) if platform.event(event).is_some() => (Some(event), file),
            Some((event, _)) if !std::path::Path::new(item).exists() => {
                return Err(UserError::new(format!(
                    "--respond `{item}`: {} has no event `{event}`",
                    platform.id
                ))
                .hint(format!(
                    "give EVENT=FILE with an event `hookcli events -p {}` lists, or FILE alone for every request",
                    platform.id
                ))
                .into());
            }
            _ => (None, item.as_str()),
        };
        let body = std::fs::read(file).map_err(|e| {
            UserError::new(format!(
                "--respond `{file}`: cannot read it ({})",
                io_reason(&e)
            ))
            .hint("give a file holding the answer's body, e.g. --respond call_inbound=answer.json")
        })?;
        match event {
            Some(event) => {
                answers
                    .by_event
                    .insert(event.to_string(), Bytes::from(body));
            }
            None => answers.every = Some(Bytes::from(body)),
        }
    }
    Ok(answers)
}
