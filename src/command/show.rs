//! `hookcli show EVENT`: the rendered body, JSON only, on stdout.

use std::path::Path;

use anyhow::Result;

use super::{apply_sets, find_event, load_catalog_for, platform_of};
use crate::cli::ShowArgs;
use crate::error::exit;

pub fn run(args: ShowArgs, overlay: Option<&Path>) -> Result<u8> {
    let catalog = load_catalog_for(overlay, &args.platform.platform)?;
    let platform = platform_of(&catalog, &args.platform)?;
    let event = find_event(&catalog, platform, &args.event)?;
    let mut body = crate::call::render_event(
        &catalog,
        platform,
        event,
        &mut crate::call::rng_from(crate::config::Env::process().seed()?),
    )?;
    apply_sets(&args.sets, &args.unsets, &mut body, platform, &event.name)?;
    let text = if platform.format != crate::catalog::BodyFormat::Json {
        // The body as sent: a form is one line whatever --compact says.
        String::from_utf8_lossy(&platform.encode(&body)).into_owned()
    } else if args.compact {
        serde_json::to_string(&body)?
    } else {
        serde_json::to_string_pretty(&body)?
    };
    outln!("{text}");
    Ok(exit::OK)
}
