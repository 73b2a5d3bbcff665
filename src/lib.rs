//! hookcli: play a voice-AI platform against a webhook receiver.
//!
//! The binary is a thin shell over [`run`]. Domain modules (catalog, call, signing, policy,
//! delivery, receiver) print nothing; `command` wires them to the CLI and `output` renders.

#[macro_use]
mod print;

pub mod answer;
pub mod call;
pub mod catalog;
pub mod check;
pub mod cli;
pub mod command;
pub mod config;
pub mod delivery;
pub mod duration;
pub mod error;
pub mod group_commit;
pub mod inspector;
pub mod llm;
pub mod load;
pub mod output;
pub mod overrides;
pub mod pick;
pub mod policy;
pub mod receiver;
pub mod recording;
pub mod redact;
pub mod relay;
pub mod replay;
pub mod secret;
pub mod signing;
pub mod template;
pub mod text;

use cli::{Cli, Command};

/// mimalloc rather than the C library's malloc: listen and load allocate per request, and
/// musl's malloc (the static release binary) is much slower than glibc's. Set here, not in
/// main.rs, so the criterion benches measure the allocator the binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs one parsed command line and returns its exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    let overlay = cli.payloads.as_deref();
    let file = cli.config.as_deref();
    match cli.command {
        Command::Send(args) => command::send::run(args, overlay, file),
        Command::Show(args) => command::show::run(args, overlay),
        Command::Platforms(args) => command::platforms::platforms(args, overlay),
        Command::Events(args) => command::platforms::events(args, overlay),
        Command::Listen(args) => command::listen::run(args, overlay, file),
        Command::Replay(args) => command::replay::run(args, overlay, file),
        Command::Lifecycles(args) => command::platforms::lifecycles(args, overlay),
        Command::Sign(args) => command::sign::sign(args, overlay),
        Command::Verify(args) => command::sign::verify(args, overlay),
        Command::Check(args) => command::check::run(args, overlay, file),
        Command::Load(args) => command::load::run(args, overlay, file),
        Command::Record(args) => command::record::run(args, overlay),
        Command::Completions(args) => command::docs::completions(args, overlay),
        Command::Man(args) => command::docs::man(args),
        Command::Llm(args) => command::llm::run(args, overlay),
    }
}
