//! `hookcli completions SHELL` and `hookcli man`: the command line described for shells and
//! for man, from the clap definition itself so they cannot drift from it.

use std::path::Path;

use anyhow::Result;
use clap::CommandFactory;
use clap::builder::PossibleValuesParser;

use super::load_catalog;
use crate::catalog::Catalog;
use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::error::{UserError, exit};
use crate::text::path_reason;

/// Static completion scripts, with the catalog's names written into them as each argument's
/// possible values. Chosen over clap_complete's dynamic completion (`unstable-dynamic`, where
/// the shell calls hookcli back on every Tab) because it works the same in all five shells,
/// needs no unstable API and no hookcli process per keystroke; the price is that the names are
/// those of the catalog when the script was made, and events are those of every platform
/// rather than the one `-p` names.
pub fn completions(args: CompletionsArgs, overlay: Option<&Path>) -> Result<u8> {
    let catalog = load_catalog(overlay)?;
    let mut command = completion_command(&catalog);
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "hookcli", &mut script);
    out!("{}", String::from_utf8_lossy(&script));
    if args.shell == clap_complete::Shell::Fish {
        out!("{}", fish_positionals(&command));
    }
    Ok(exit::OK)
}

/// The CLI with the catalog's platform, event and lifecycle names as possible values. Only for
/// writing the script: parsing keeps its own checks, whose errors suggest the closest name.
pub fn completion_command(catalog: &Catalog) -> clap::Command {
    let platforms = sorted(
        catalog
            .platforms
            .iter()
            .flat_map(|p| std::iter::once(&p.id).chain(&p.aliases)),
    );
    let events = sorted(
        catalog
            .platforms
            .iter()
            .flat_map(|p| p.events.iter().map(|e| &e.name)),
    );
    let lifecycles = sorted(
        catalog
            .platforms
            .iter()
            .flat_map(|p| p.lifecycles.iter().map(|l| &l.name)),
    );
    let hints = [
        ("platform", platforms),
        ("event", events),
        ("lifecycle", lifecycles),
    ];
    // Built whole: a command's arguments are deferred until it is parsed (cli.rs).
    let mut command = Cli::command();
    command.build();
    let names: Vec<String> = command
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in names {
        command = command.mut_subcommand(name, |mut sub| {
            for (id, values) in &hints {
                if sub.get_arguments().any(|a| a.get_id() == id) {
                    let values = values.clone();
                    sub = sub.mut_arg(id, |arg| {
                        arg.value_parser(PossibleValuesParser::new(values))
                    });
                }
            }
            sub
        });
    }
    command
}

/// clap_complete's fish script completes only flags; these lines add the names an argument
/// like `send EVENT` takes. (Its PowerShell and Elvish scripts have no such hook: there only
/// the flags' values, such as -p's platforms, are completed.)
fn fish_positionals(command: &clap::Command) -> String {
    let mut lines = String::new();
    for sub in command.get_subcommands() {
        for arg in sub.get_positionals() {
            let values: Vec<String> = arg
                .get_possible_values()
                .iter()
                .map(|v| v.get_name().to_string())
                .collect();
            if !values.is_empty() {
                lines.push_str(&format!(
                    "complete -c hookcli -n \"__fish_hookcli_using_subcommand {}\" -a \"{}\"\n",
                    sub.get_name(),
                    values.join(" ")
                ));
            }
        }
    }
    lines
}

fn sorted<'a>(names: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut names: Vec<String> = names.cloned().collect();
    names.sort();
    names.dedup();
    names
}

/// The top-level page on stdout, or with --out every page (hookcli.1, hookcli-send.1, ...)
/// written into the folder, which is made when missing.
pub fn man(args: ManArgs) -> Result<u8> {
    let command = Cli::command();
    let Some(dir) = args.out else {
        let mut page = Vec::new();
        clap_mangen::Man::new(command).render(&mut page)?;
        out!("{}", String::from_utf8_lossy(&page));
        return Ok(exit::OK);
    };
    let fail = |e: std::io::Error| -> anyhow::Error {
        UserError::new(format!(
            "--out {}: cannot write the pages: {}",
            dir.display(),
            path_reason(&dir, &e)
        ))
        .hint("name a folder you can write to, like --out man/")
        .into()
    };
    std::fs::create_dir_all(&dir).map_err(fail)?;
    clap_mangen::generate_to(command, &dir).map_err(fail)?;
    errln!("wrote the man pages into {}", dir.display());
    Ok(exit::OK)
}
