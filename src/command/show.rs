//! `hookcli show EVENT`: the rendered body, JSON only, on stdout.

use std::path::Path;

use anyhow::Result;

use super::{find_event, find_platform, load_catalog, parse_sets};
use crate::cli::ShowArgs;
use crate::error::{exit, usage};
use crate::overrides::Applied;

pub fn run(args: ShowArgs, overlay: Option<&Path>) -> Result<u8> {
    let catalog = load_catalog(overlay)?;
    let platform = find_platform(&catalog, &args.platform.platform)?;
    let event = find_event(&catalog, platform, &args.event)?;
    let sets = parse_sets(&args.sets)?;
    let mut body = crate::call::render_event(&catalog, platform, event, &mut crate::call::rng())?;
    for set in &sets {
        if let Applied::Added(path) = set.apply(&mut body).map_err(usage)? {
            eprintln!(
                "note: --set added `{path}`, which the {} template does not have",
                event.name
            );
        }
    }
    let text = if args.compact {
        serde_json::to_string(&body)?
    } else {
        serde_json::to_string_pretty(&body)?
    };
    println!("{text}");
    Ok(exit::OK)
}
