use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    hookcli::output::init_colors();
    let cli = hookcli::cli::Cli::parse();
    match hookcli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!(
                "{} {err:#}",
                console::style("error:").red().bold().for_stderr()
            );
            if let Some(hint) = hookcli::error::hint(&err) {
                eprintln!("{} {hint}", console::style("hint:").cyan().for_stderr());
            }
            ExitCode::from(hookcli::error::exit_code(&err))
        }
    }
}
