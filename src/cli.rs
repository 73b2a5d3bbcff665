//! The command line, as clap types. Commands turn these into validated settings; nothing past
//! the command layer sees a clap struct.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::duration::parse_flag as duration;
use crate::error::EXIT_CODES_HELP;
use crate::policy::{PolicyOverrides, SuccessRule};

#[derive(Debug, Parser)]
#[command(
    name = "hookcli",
    version,
    about = "Play a voice-AI platform against your webhook receiver: render its events, sign them, \
             deliver them by its rules, replay whole calls, receive and verify, contract-test.",
    after_help = EXIT_CODES_HELP,
    max_term_width = 100
)]
pub struct Cli {
    /// Read a payloads folder on top of the built-in catalog (see payloads/README.md)
    #[arg(long, global = true, env = "HOOKCLI_PAYLOADS", value_name = "DIR")]
    pub payloads: Option<PathBuf>,

    /// Settings file to read [default: ./hookcli.toml when present]; flags override it
    #[arg(long, global = true, env = "HOOKCLI_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

// Deferred: a command's arguments are built only when that command runs, not all fifteen
// commands' for every run (8% of replay's start-up instructions, 37% of --version's). An
// `Args` struct's doc comment would then override its command's about, so those structs carry
// plain comments.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Render one event, sign it and deliver it by the platform's rules
    #[command(after_help = EXIT_CODES_HELP)]
    Send(SendArgs),
    /// Print an event's rendered body (JSON only, on stdout)
    Show(ShowArgs),
    /// List the platforms and their delivery rules
    Platforms(ListArgs),
    /// List a platform's events
    Events(EventsArgs),
    /// Receive webhooks: verify signatures, answer (or misbehave on purpose), record
    Listen(ListenArgs),
    /// Replay whole call lifecycles, many calls at once, or recorded traffic
    #[command(after_help = EXIT_CODES_HELP)]
    Replay(ReplayArgs),
    /// List a platform's lifecycles and their event sequences
    Lifecycles(EventsArgs),
    /// Print the signature header for a body
    Sign(SignArgs),
    /// Check a signature header against a body (exit 0 valid, 1 not)
    Verify(VerifyArgs),
    /// Contract-test a webhook receiver: what the platform sends, and what it must reject
    #[command(after_help = CHECK_HELP)]
    Check(CheckArgs),
    /// Load a receiver: many fresh, signed deliveries over kept-alive connections, then a report
    #[command(after_help = LOAD_HELP)]
    Load(LoadArgs),
    /// Work with recorded traffic: `record redact` writes a copy safe to commit as a fixture
    Record(RecordArgs),
    /// Print a shell completion script (event, platform and lifecycle names included)
    #[command(after_help = COMPLETIONS_HELP)]
    Completions(CompletionsArgs),
    /// Play a custom-LLM server as the platform does (UponAI's LLM WebSocket, Vapi's and
    /// ElevenLabs' /chat/completions), or serve a scripted one
    #[command(after_help = LLM_HELP, args_conflicts_with_subcommands = true)]
    Llm(LlmArgs),
    /// Print the man page, or write one per subcommand into a folder
    Man(ManArgs),
}

#[derive(Debug, Args, Clone)]
pub struct PlatformArg {
    /// Platform to play (`hookcli platforms` lists them)
    #[arg(
        short = 'p',
        long = "platform",
        env = "HOOKCLI_PLATFORM",
        default_value = DEFAULT_PLATFORM,
        value_name = "PLATFORM"
    )]
    pub platform: String,
    /// The value came from HOOKCLI_PLATFORM, not -p: an error about it says so.
    #[arg(skip)]
    pub from_env: bool,
    /// Neither -p nor HOOKCLI_PLATFORM gave it: hookcli.toml's `platform` may.
    #[arg(skip)]
    pub from_default: bool,
}

/// The platform when neither -p nor HOOKCLI_PLATFORM names one.
pub const DEFAULT_PLATFORM: &str = crate::catalog::DEFAULT_PLATFORM;

/// Parses the command line (and the environment clap reads), noting where the platform came
/// from: a value from HOOKCLI_PLATFORM is named as such in errors, and an empty (or blank)
/// HOOKCLI_PLATFORM counts as not set.
pub fn parse() -> Result<Cli, clap::Error> {
    parse_from(std::env::args_os())
}

/// [`parse`] for given arguments.
pub fn parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::{CommandFactory, FromArgMatches, parser::ValueSource};
    let matches = Cli::command().try_get_matches_from(args)?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    // `record redact`'s -p is one level down.
    fn leaf(mut sub: &clap::ArgMatches) -> &clap::ArgMatches {
        while let Some((_, inner)) = sub.subcommand() {
            sub = inner;
        }
        sub
    }
    // `platforms` has no -p: asking its matches about one would be an error.
    let from_env = matches
        .subcommand()
        .map(|(_, sub)| leaf(sub))
        .is_some_and(|sub| {
            sub.try_get_raw("platform").is_ok()
                && sub.value_source("platform") == Some(ValueSource::EnvVariable)
        });
    if from_env {
        cli.command.platform_from_env();
    }
    let from_default = matches.subcommand().is_some_and(|(_, sub)| {
        sub.try_get_raw("platform").is_ok()
            && sub.value_source("platform") == Some(ValueSource::DefaultValue)
    });
    if from_default && let Some(arg) = cli.command.platform_arg() {
        arg.from_default = true;
    }
    Ok(cli)
}

impl Command {
    /// The `-p` of a command that has one with a default.
    fn platform_arg(&mut self) -> Option<&mut PlatformArg> {
        match self {
            Command::Send(a) => Some(&mut a.target.platform),
            Command::Replay(a) => Some(&mut a.target.platform),
            Command::Load(a) => Some(&mut a.target.platform),
            Command::Listen(a) => Some(&mut a.platform),
            _ => None,
        }
    }

    /// The platform value came from HOOKCLI_PLATFORM: mark it, or, when blank, drop it.
    fn platform_from_env(&mut self) {
        let arg = match self {
            Command::Send(a) => &mut a.target.platform,
            Command::Show(a) => &mut a.platform,
            Command::Events(a) | Command::Lifecycles(a) => &mut a.platform,
            Command::Listen(a) => &mut a.platform,
            Command::Replay(a) => &mut a.target.platform,
            Command::Sign(a) => &mut a.platform,
            Command::Verify(a) => &mut a.platform,
            Command::Load(a) => &mut a.target.platform,
            // An optional -p (no default): a blank variable is no platform.
            Command::Check(CheckArgs {
                platform,
                platform_from_env,
                ..
            })
            | Command::Llm(LlmArgs {
                platform,
                platform_from_env,
                ..
            }) => {
                if platform.as_deref().is_some_and(|p| p.trim().is_empty()) {
                    *platform = None;
                } else {
                    *platform_from_env = true;
                }
                return;
            }
            Command::Record(RecordArgs {
                command: RecordCommand::Redact(a),
            }) => &mut a.platform,
            Command::Platforms(_) | Command::Completions(_) | Command::Man(_) => return,
        };
        if arg.platform.trim().is_empty() {
            arg.platform = DEFAULT_PLATFORM.to_string();
        } else {
            arg.from_env = true;
        }
    }
}

#[derive(Debug, Args, Clone)]
pub struct KeyArg {
    /// Signing key (the platform API key). Also read from HOOKCLI_SECRET, and for uponai from
    /// UPONAI_API_KEY, then RETELL_API_KEY
    // HOOKCLI_SECRET is read by config::Env, not by clap: clap would pass an empty variable
    // to the parser, which refuses an empty --secret.
    #[arg(long = "secret", value_name = "KEY", value_parser = key)]
    pub secret: Option<String>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct DeliveryArgs {
    /// Deadline per attempt, covering connect, headers and body [default: the platform's]
    #[arg(long, value_parser = crate::duration::parse_deadline_flag, value_name = "DUR",
          allow_hyphen_values = true)]
    pub timeout: Option<Duration>,
    /// Retries after the first attempt [default: the platform's]
    #[arg(long, value_name = "N", value_parser = count::<u32>, allow_negative_numbers = true)]
    pub retries: Option<u32>,
    /// First wait between attempts, doubling after; 0 for none [default: the platform's]
    #[arg(long, value_parser = duration, value_name = "DUR", allow_hyphen_values = true)]
    pub backoff: Option<Duration>,
    /// Success rule: 2xx, 200, 204 or a list like 200,201 [default: the platform's]
    #[arg(long, value_name = "RULE")]
    pub expect: Option<SuccessRule>,
    /// Add a header to every request, 'Name: value' (repeatable)
    #[arg(short = 'H', long = "header", value_name = "'NAME: VALUE'")]
    pub headers: Vec<String>,
}

impl DeliveryArgs {
    pub fn overrides(&self) -> PolicyOverrides {
        PolicyOverrides {
            timeout: self.timeout,
            retries: self.retries,
            backoff: self.backoff,
            success: self.expect.clone(),
        }
    }
}

// Where and how a delivering command sends (send, replay, load): the receiver, the platform,
// the key and the delivery flags, declared once. check reads hookcli.toml too, so it has
// its own `--to` and `-p`.
#[derive(Debug, Args)]
pub struct DeliverTo {
    /// Receiver URL; without it, hookcli starts its own receiver and delivers there
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    #[command(flatten)]
    pub platform: PlatformArg,
    #[command(flatten)]
    pub key: KeyArg,
    #[command(flatten)]
    pub delivery: DeliveryArgs,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// The event to send (`hookcli events` lists them); optional with --data
    pub event: Option<String>,
    #[command(flatten)]
    pub target: DeliverTo,
    /// Change the body: PATH=STRING or PATH:=JSON, PATH like call.metadata.tier or a[0].b
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub sets: Vec<String>,
    /// Remove a field from the body (after the --set edits), PATH like call.metadata
    #[arg(long = "unset", value_name = "PATH")]
    pub unsets: Vec<String>,
    /// Send this file's bytes as the body instead (- for stdin); it must be JSON
    #[arg(long, value_name = "FILE", conflicts_with_all = ["sets", "unsets"])]
    pub data: Option<String>,
    /// Print one JSON object per delivery on stdout, nothing else there
    #[arg(long)]
    pub json: bool,
    /// Show each attempt's request and response, headers and bodies, on stderr
    #[arg(short, long)]
    pub verbose: bool,
    /// Print the signed request and send nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub function: FunctionArgs,
}

// A custom function call (`send function_call`): what the agent's LLM calls, and how.
#[derive(Debug, Args, Default, Clone)]
pub struct FunctionArgs {
    /// The function's name, as configured on the agent
    #[arg(long, value_name = "NAME", help_heading = "Function calls")]
    pub function: Option<String>,
    /// The arguments the LLM passes, a JSON object
    #[arg(long, value_name = "JSON", help_heading = "Function calls")]
    pub args: Option<String>,
    /// Send only the args object as the body ("Payload: args only" on the agent)
    #[arg(long, help_heading = "Function calls")]
    pub args_only: bool,
    /// The function's HTTP method; GET and DELETE send the args as query parameters
    #[arg(long, value_name = "METHOD", default_value = "POST", value_parser = ["GET", "POST", "PUT", "PATCH", "DELETE"], ignore_case = true, help_heading = "Function calls")]
    pub method: String,
    /// A query parameter configured on the function, KEY=VALUE (repeatable)
    #[arg(
        long = "query",
        value_name = "KEY=VALUE",
        help_heading = "Function calls"
    )]
    pub query: Vec<String>,
    /// Warn when the caller waits longer than this for an answer
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = duration, help_heading = "Function calls")]
    pub warn_after: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The event to render
    pub event: String,
    #[command(flatten)]
    pub platform: PlatformArg,
    /// Change the body: PATH=STRING or PATH:=JSON
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub sets: Vec<String>,
    /// Remove a field from the body (after the --set edits)
    #[arg(long = "unset", value_name = "PATH")]
    pub unsets: Vec<String>,
    /// One line, exactly the bytes send would put on the wire
    #[arg(long)]
    pub compact: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(flatten)]
    pub platform: PlatformArg,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Port to listen on; 0 picks a free one (the ready line shows it)
    #[arg(long, default_value_t = 8080, value_parser = port, allow_negative_numbers = true)]
    pub port: u16,
    /// Address to bind
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The webhook path; other paths get 404
    #[arg(long, default_value = "/webhook")]
    pub path: String,
    #[command(flatten)]
    pub platform: PlatformArg,
    #[command(flatten)]
    pub key: KeyArg,
    /// Signature tolerance either side of the clock [default: the platform's, 5m for uponai]
    #[arg(long, value_parser = duration, value_name = "DUR", allow_hyphen_values = true)]
    pub tolerance: Option<Duration>,
    /// Answer this status to requests that verify [default: 204, or 200 for platforms that
    /// require exactly 200]
    #[arg(long, value_parser = answer_status)]
    pub status: Option<u16>,
    /// Wait this long before every answer
    #[arg(long, value_parser = duration, value_name = "DUR", allow_hyphen_values = true)]
    pub delay: Option<Duration>,
    /// The first N requests fail: 500, or a dropped connection with --drop
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = count::<u64>,
          allow_negative_numbers = true)]
    pub fail_first: u64,
    /// Close the connection without answering (every request, or the first N with --fail-first)
    #[arg(long)]
    pub drop: bool,
    /// Largest body accepted; bigger ones get 413 [default: the platform's `max_body`, else
    /// 25MB]
    #[arg(long, value_parser = crate::text::parse_size, value_name = "SIZE",
          allow_hyphen_values = true)]
    pub max_body: Option<u64>,
    /// Longest a body may take to arrive after its headers; slower ones get 408 [default: the
    /// platform's delivery timeout, 10s for uponai]
    #[arg(long, value_parser = crate::duration::parse_deadline_flag, value_name = "DUR",
          allow_hyphen_values = true)]
    pub body_timeout: Option<Duration>,
    /// Most body bytes held at once across all requests; past it, 503 with Retry-After
    /// [default: 256MB, or 4 x --max-body when more]
    #[arg(long, value_parser = crate::text::parse_size, value_name = "SIZE",
          allow_hyphen_values = true)]
    pub body_memory: Option<u64>,
    /// Append every request (time, headers with credentials masked, exact body) to this NDJSON
    /// file; a request that cannot be written is answered 503
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Relay: pass every webhook on to this app (same bytes and end-to-end headers) and
    /// answer with the app's answer; 502 when it is down, 504 when too slow
    #[arg(long, value_name = "URL", conflicts_with_all = ["status", "fail_first", "drop"])]
    pub forward_to: Option<String>,
    /// How long the app has to answer a forwarded request [default: the platform's delivery
    /// timeout, 10s for uponai]
    #[arg(long, value_parser = crate::duration::parse_deadline_flag, value_name = "DUR",
          allow_hyphen_values = true, requires = "forward_to")]
    pub forward_timeout: Option<Duration>,
    /// The origin the platform posts to, behind a tunnel (https://abc.ngrok.app): schemes that
    /// sign the URL (twilio) are verified against it with the request's path and query
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Serve a web inspector on its own loopback port; its address, with a one-time token, is
    /// printed on stderr
    #[arg(long)]
    pub ui: bool,
    /// Answer with this file's body: FILE for every request, EVENT=FILE for one event
    /// (repeatable); without it, call_inbound and function calls get a valid example answer
    #[arg(long, value_name = "[EVENT=]FILE")]
    pub respond: Vec<String>,
    /// One JSON object per request on stdout
    #[arg(long)]
    pub json: bool,
    /// Also pretty-print each body
    #[arg(short, long, conflicts_with = "json")]
    pub verbose: bool,
    /// No line per request; only the summary when stopped
    #[arg(short, long, conflicts_with_all = ["json", "verbose"])]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    #[command(flatten)]
    pub platform: PlatformArg,
    #[command(flatten)]
    pub key: KeyArg,
    /// Sign at this Unix time in milliseconds [default: now]
    #[arg(long, value_name = "MS", value_parser = unix_ms, allow_negative_numbers = true)]
    pub timestamp: Option<u64>,
    /// The URL the request goes to, for schemes that sign it (twilio)
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// The body file; - or nothing for stdin
    pub file: Option<String>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub platform: PlatformArg,
    #[command(flatten)]
    pub key: KeyArg,
    /// The signature header value, e.g. v=1714608475945,d=16c3... (schemes with one header)
    #[arg(long, value_name = "VALUE", required_unless_present = "headers")]
    pub signature: Option<String>,
    /// A header of the request, 'Name: value' (repeatable): every header the scheme reads
    /// (standard-webhooks reads three)
    #[arg(short = 'H', long = "header", value_name = "'NAME: VALUE'")]
    pub headers: Vec<String>,
    /// The URL the request was sent to, for schemes that sign it (twilio)
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Judge staleness against this Unix time in milliseconds [default: now]
    #[arg(long, value_name = "MS", value_parser = unix_ms, allow_negative_numbers = true)]
    pub now: Option<u64>,
    /// How far the signature's time may be from now [default: the platform's, 5m for uponai]
    #[arg(long, value_parser = duration, value_name = "DUR", allow_hyphen_values = true)]
    pub tolerance: Option<Duration>,
    /// The body file; - or nothing for stdin
    pub file: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The lifecycle to play (`hookcli lifecycles` lists them) [default: the platform's first]
    #[arg(conflicts_with = "from")]
    pub lifecycle: Option<String>,
    #[command(flatten)]
    pub target: DeliverTo,
    /// Send the lifecycle's function calls to this URL (the function's); without it, to --to
    #[arg(long, value_name = "URL")]
    pub function_url: Option<String>,
    /// A function's response variable, NAME=JSONPATH (repeatable): its value in the answer
    /// becomes a dynamic variable of the later events [default: every top-level value]
    #[arg(long = "response-variable", value_name = "NAME=PATH")]
    pub response_variables: Vec<String>,
    /// Events the agent subscribes to: `default` (the platform's), `all`, or a comma list
    #[arg(long, value_name = "EVENTS")]
    pub events: Option<String>,
    /// Wait this long between a call's events
    #[arg(long, value_parser = duration, value_name = "DUR", allow_hyphen_values = true,
          conflicts_with_all = ["realtime", "speed"])]
    pub gap: Option<Duration>,
    /// Space a call's events by its own timestamps (recorded arrival times with --from)
    #[arg(long)]
    pub realtime: bool,
    /// With --realtime, play N times faster (implies --realtime); 0.5 plays at half speed
    #[arg(long, value_name = "N", value_parser = positive_speed, allow_negative_numbers = true)]
    pub speed: Option<f64>,
    /// How many independent calls to replay
    #[arg(long, default_value_t = 1, value_parser = whole_in::<u64, 1, 10_000_000>,
          allow_negative_numbers = true, conflicts_with = "from", value_name = "N")]
    pub calls: u64,
    /// How many calls run at once (each call's events stay in order)
    #[arg(long, default_value_t = 1, value_parser = whole_in::<u64, 1, 10_000>,
          allow_negative_numbers = true, conflicts_with = "from", value_name = "N")]
    pub concurrency: u64,
    /// Re-send the bodies of a `listen --record` file, or JSON bodies (one per line,
    /// pretty-printed as `hookcli show` prints them, or an array), re-signed; - reads stdin
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// With --from, re-send the deliveries listen rejected too (a bad signature, not JSON)
    #[arg(long, requires = "from")]
    pub include_rejected: bool,
    /// Replace phone numbers, names, emails and transcript text with stand-ins (shape kept)
    #[arg(long)]
    pub redact: bool,
    /// One JSON object per delivery, then one summary object, on stdout
    #[arg(long)]
    pub json: bool,
    /// Show each delivery's request and answer on stderr as it happens
    #[arg(short, long)]
    pub verbose: bool,
    /// Print the requests the calls would send, in order, and send nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// `--secret ''` is a key that was meant to be there (`--secret "$KEY"` with KEY unset):
/// refused, rather than running unsigned or not verifying. An empty HOOKCLI_SECRET still
/// counts as unset, as empty environment variables do.
fn key(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("the key is empty (an unset variable in `--secret \"$KEY\"`?): give the key, or leave --secret out".into());
    }
    Ok(text.to_string())
}

/// An unsigned type a whole-number flag parses into, with its largest value for the message.
pub trait Whole: TryFrom<u64> {
    const MAX: u64;
}

impl Whole for u16 {
    const MAX: u64 = u16::MAX as u64;
}

impl Whole for u32 {
    const MAX: u64 = u32::MAX as u64;
}

impl Whole for u64 {
    const MAX: u64 = u64::MAX;
}

/// A count such as `--retries 3`; clap's own error says only "invalid digit found in string".
/// Digits past the type's maximum are out of range, with the maximum in the fix, not "not a
/// whole number".
fn count<T: Whole>(text: &str) -> Result<T, String> {
    whole(text, 0, T::MAX, "write it like 0, 3 or 10")
}

/// A whole number from MIN to MAX, for flags whose range is part of the contract.
fn whole_in<T: Whole, const MIN: u64, const MAX: u64>(text: &str) -> Result<T, String> {
    let max = MAX.min(T::MAX);
    whole(
        text,
        MIN,
        max,
        &format!("write a whole number from {MIN} to {max}"),
    )
}

/// `text` as a whole number from `min` to `max`; `not_a_number` is the fix for text that is
/// not one at all.
fn whole<T: TryFrom<u64>>(text: &str, min: u64, max: u64, not_a_number: &str) -> Result<T, String> {
    let trimmed = text.trim();
    let range = format!("write a whole number from {min} to {max}");
    let digits = !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit());
    match trimmed.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => {
            T::try_from(n).map_err(|_| format!("`{text}` is out of range: {range}"))
        }
        Ok(_) => Err(format!("`{text}` is out of range: {range}")),
        // Digits that do not even fit 64 bits.
        Err(_) if digits => Err(format!("`{text}` is out of range: {range}")),
        Err(_) => Err(format!("`{text}` is not a whole number: {not_a_number}")),
    }
}

fn port(text: &str) -> Result<u16, String> {
    text.trim().parse().map_err(|_| {
        format!("`{text}` is not a port: write one from 1 to 65535, or 0 for a free one")
    })
}

fn unix_ms(text: &str) -> Result<u64, String> {
    text.trim().parse().map_err(|_| {
        format!("`{text}` is not a Unix time in milliseconds: write it like 1714608475945")
    })
}

/// A status `listen` can answer with: a final one. A 1xx is not an answer (for `--status 100`
/// hyper sent 500 while listen reported 100), so 100..=199 are refused here.
fn answer_status(text: &str) -> Result<u16, String> {
    match text.trim().parse::<u16>() {
        Ok(status @ 200..=599) => Ok(status),
        _ => Err(format!(
            "`{text}` is not a status listen can answer: write one from 200 to 599, like 503"
        )),
    }
}

/// The slowest `--speed`: a thousand times slower than the call itself. Below it a call's
/// spacing no longer fits a clock (`--speed 1e-300` panicked converting the wait).
pub const MIN_SPEED: f64 = 0.001;

fn positive_speed(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(n) if n >= MIN_SPEED && n.is_finite() => Ok(n),
        _ => Err(format!(
            "`{text}` is not a speed: give a number from {MIN_SPEED} up, like 10 or 0.5"
        )),
    }
}

/// `hookcli check --help` epilogue: the suite file and the exit codes.
pub const CHECK_HELP: &str =
    "Reads ./hookcli.toml when present (or --config FILE); flags override it.
`hookcli check --list` prints the cases.

Exit codes:
  0  no error-level case failed (warnings do not fail the run)
  1  an error-level case failed
  2  bad usage or config (nothing was sent)
  3  the receiver was unreachable: it did not accept connections, refused every
     request, or answered none (every request timed out or was closed unanswered)";

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Receiver URL; without it (and without `to` in hookcli.toml), hookcli checks its own
    /// built-in receiver
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    #[arg(
        help = format!("Platform to play (`hookcli platforms` lists them) [default: {DEFAULT_PLATFORM}]"),
        short = 'p',
        long = "platform",
        env = "HOOKCLI_PLATFORM",
        value_name = "PLATFORM"
    )]
    pub platform: Option<String>,
    /// The platform came from HOOKCLI_PLATFORM, not -p.
    #[arg(skip)]
    pub platform_from_env: bool,
    #[command(flatten)]
    pub key: KeyArg,
    #[command(flatten)]
    pub delivery: DeliveryArgs,
    /// The phone number's inbound call webhook URL, for answers/call_inbound (or
    /// inbound_url in hookcli.toml)
    #[arg(long, value_name = "URL")]
    pub inbound_url: Option<String>,
    /// Run only these cases: names or prefixes like signature/ (comma-separated, repeatable)
    #[arg(long, value_delimiter = ',', value_name = "CASES")]
    pub only: Vec<String>,
    /// Skip these cases: names or prefixes like signature/ (comma-separated, repeatable)
    #[arg(long, value_delimiter = ',', value_name = "CASES")]
    pub skip: Vec<String>,
    /// Print the cases and exit (nothing is sent, so no run flags like --to or --junit)
    #[arg(long, conflicts_with_all = ["to", "junit", "wait_for", "burst"])]
    pub list: bool,
    /// Wait up to this long for the receiver to accept connections (CI readiness)
    #[arg(long, value_parser = duration, value_name = "DUR", allow_hyphen_values = true)]
    pub wait_for: Option<Duration>,
    /// Calls whose events load/burst sends at once [default: 20]
    #[arg(long, value_name = "N", value_parser = whole_in::<u16, 1, 1000>, allow_negative_numbers = true)]
    pub burst: Option<u16>,
    /// Print one JSON object per case and a summary on stdout, nothing else there
    #[arg(long)]
    pub json: bool,
    /// Write a JUnit XML report to FILE
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Report format: text (the table), json (as --json), or github (the table, ::error and
    /// ::warning annotations, and a job summary in $GITHUB_STEP_SUMMARY)
    #[arg(long, value_enum, conflicts_with = "json", value_name = "FORMAT")]
    pub format: Option<CheckFormat>,
    /// Every request and its answer on stderr, case by case, after the run; under the table,
    /// each failed case's reproducing command and the start of its answer
    #[arg(short, long)]
    pub verbose: bool,
    /// Print the requests the cases would send, in order, and send nothing
    #[arg(long, conflicts_with_all = ["list", "junit", "wait_for", "format"])]
    pub dry_run: bool,
}

/// `check --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckFormat {
    Text,
    Json,
    Github,
}

const COMPLETIONS_HELP: &str = "Install, for example:
  bash:  hookcli completions bash > ~/.local/share/bash-completion/completions/hookcli
  zsh:   hookcli completions zsh > ~/.zfunc/_hookcli   (with fpath+=(~/.zfunc) before compinit)
  fish:  hookcli completions fish > ~/.config/fish/completions/hookcli.fish
The names come from the catalog when the script is made (with --payloads, its platforms too):
make it again after adding a platform.";

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write hookcli.1 and one page per subcommand (hookcli-send.1, ...) into this folder
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

const LOAD_HELP: &str = "Examples:
  hookcli load -c 64 -z 10s --to http://localhost:8080/webhook
  hookcli load call_analyzed -n 10000 --rate 500 --to http://localhost:8080/webhook
  hookcli load --lifecycle call -c 8 -n 1000 --retries 3 --to http://localhost:8080/webhook
  hookcli load -c 32 -z 5s            (no --to: a self-benchmark against the built-in receiver)

Exit codes:
  0  every delivery met the platform's success rule
  1  some deliveries failed (a status outside the rule, a timeout, a reset), or were
     left waiting for a retry when the load stopped
  2  bad usage or input (nothing was sent)
  3  the receiver was unreachable: every request failed to connect
After Ctrl-C (or SIGTERM) the exit code is that of the report so far.";

/// `--start-at`: RFC 3339 (a zone is required: `Z` or an offset) or Unix seconds.
fn start_at(text: &str) -> Result<std::time::SystemTime, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        if (0.0..1e11).contains(&seconds) {
            return Ok(std::time::UNIX_EPOCH + Duration::from_secs_f64(seconds));
        }
        return Err(format!(
            "`{text}` is not a Unix time in seconds (milliseconds? divide by 1000): give \
             one like 1796032800, or RFC 3339 like 2026-11-30T10:00:00Z"
        ));
    }
    let refuse = || {
        format!(
            "`{text}` is not a time: give RFC 3339 with its zone, like 2026-11-30T10:00:00Z, \
             or a Unix time in seconds, like 1796032800"
        )
    };
    // humantime reads UTC only: an offset is taken off here. No zone at all is refused: a
    // local time would mean different moments on machines in different zones.
    let (utc, east_s): (&str, i64) = if let Some(utc) = text.strip_suffix(['Z', 'z']) {
        (utc, 0)
    } else {
        let at = text
            .len()
            .checked_sub(6)
            .filter(|at| text.is_char_boundary(*at));
        let (utc, zone) = at.map(|at| text.split_at(at)).ok_or_else(refuse)?;
        let sign = match zone.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return Err(refuse()),
        };
        let (h, m) = zone[1..].split_once(':').ok_or_else(refuse)?;
        let (h, m) = (h.parse::<i64>(), m.parse::<i64>());
        let (Ok(h @ 0..=23), Ok(m @ 0..=59)) = (h, m) else {
            return Err(refuse());
        };
        (utc, sign * (h * 3600 + m * 60))
    };
    let local = humantime::parse_rfc3339_weak(utc).map_err(|_| refuse())?;
    let shift = Duration::from_secs(east_s.unsigned_abs());
    let time = match east_s >= 0 {
        true => local.checked_sub(shift),
        false => local.checked_add(shift),
    };
    time.ok_or_else(refuse)
}

/// `--rate`: deliveries per second, a number above 0.
fn load_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "`{text}` is not a rate: give deliveries per second above 0, like --rate 500"
        )),
    }
}

/// `-n`: a whole number of deliveries, at least 1.
fn load_count(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    match trimmed.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        Err(_) if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) => {
            Err(format!(
                "`{text}` is out of range: give a count from 1 to {}",
                u64::MAX
            ))
        }
        _ => Err(format!(
            "`{text}` is not a count: give the number of deliveries, 1 or more, like -n 1000"
        )),
    }
}

// -n or -z (exactly one) is checked in command/load.rs, for a one-line error with a hint.
#[derive(Debug, Args)]
#[command(mut_arg("retries", |arg| arg.help(
    "Retries after a failed attempt, on the platform's schedule while new deliveries go on; \
     they add to the load (the retry storm) [default: 0]"
)), args_conflicts_with_subcommands = true)]
pub struct LoadArgs {
    #[command(subcommand)]
    pub command: Option<LoadCommand>,
    /// The event each delivery carries [default: the platform's call-end event]
    #[arg(conflicts_with = "lifecycle")]
    pub event: Option<String>,
    /// Deliver whole calls: each call's events in order, every event one delivery
    #[arg(long, value_name = "NAME")]
    pub lifecycle: Option<String>,
    /// With --lifecycle, the events the agent subscribes to, as replay's: `default` (the
    /// platform's), `all`, or a comma list [default: default]
    #[arg(long, value_name = "EVENTS", requires = "lifecycle")]
    pub events: Option<String>,
    #[command(flatten)]
    pub target: DeliverTo,
    /// Connections, each kept alive and reused, one delivery in flight on each [default: 50,
    /// or `connections` in hookcli.toml's [load]]
    #[arg(short = 'c', long, value_name = "N",
          value_parser = whole_in::<u32, 1, 100_000>, allow_negative_numbers = true)]
    pub connections: Option<u32>,
    /// Stop after this many deliveries
    #[arg(short = 'n', long = "count", value_name = "COUNT", value_parser = load_count)]
    pub count: Option<u64>,
    /// Stop after this long, e.g. 10s or 2m
    #[arg(short = 'z', long = "duration", value_parser = duration, value_name = "DUR", allow_hyphen_values = true)]
    pub duration: Option<Duration>,
    /// Start at most this many deliveries per second, spread evenly [default: as fast as it goes]
    #[arg(long, value_name = "PER_SECOND", value_parser = load_rate, allow_negative_numbers = true)]
    pub rate: Option<f64>,
    /// Print one JSON report on stdout (schemas/load-report.schema.json), no live display
    #[arg(long)]
    pub json: bool,
    /// Wait until this moment to start, so loads on several machines start together: RFC
    /// 3339 (2026-11-30T10:00:00Z) or a Unix time in seconds. Already past: starts at once
    #[arg(long, value_name = "TIME", value_parser = start_at)]
    pub start_at: Option<std::time::SystemTime>,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    #[command(subcommand)]
    pub command: RecordCommand,
}

#[derive(Debug, Subcommand)]
pub enum RecordCommand {
    /// Write a redacted copy of a recording that replays as the original does: people and
    /// text replaced in every body, header values masked, torn lines left out
    Redact(RedactArgs),
}

#[derive(Debug, Args)]
pub struct RedactArgs {
    /// The recording: a `listen --record` file or JSON bodies; - reads stdin
    #[arg(value_name = "IN")]
    pub input: PathBuf,
    /// Where to write the redacted recording (replaced if it exists)
    #[arg(long, short = 'o', value_name = "OUT")]
    pub out: PathBuf,
    #[command(flatten)]
    pub platform: PlatformArg,
}

#[derive(Debug, Subcommand)]
pub enum LoadCommand {
    /// Combine `load --json` reports of several machines into one report (on stdout):
    /// histograms and counts added, percentiles recomputed, the earliest start, the latest end
    Merge(MergeArgs),
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The reports, each the output of `hookcli load --json` (or of an earlier merge)
    #[arg(value_name = "REPORT", required = true, num_args = 1..)]
    pub reports: Vec<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Commands' arguments are deferred (the `defer` on `Command`): a doc comment on an `Args`
    /// struct would then replace its command's about once the command is built.
    #[test]
    fn each_command_keeps_its_own_about_once_built() {
        use clap::CommandFactory;
        let unbuilt = Cli::command();
        let mut built = Cli::command();
        built.build();
        for command in unbuilt.get_subcommands() {
            let name = command.get_name();
            let about = |c: &clap::Command| c.get_about().map(ToString::to_string);
            let built_about = built.find_subcommand(name).and_then(about);
            assert_eq!(built_about, about(command), "hookcli {name}");
        }
    }

    #[test]
    fn start_at_reads_utc_offsets_and_unix_seconds_as_one_moment() {
        let moment = std::time::UNIX_EPOCH + Duration::from_secs(1_796_032_800);
        for text in [
            "2026-11-30T10:00:00Z",
            "2026-11-30T10:00:00.000z",
            "2026-11-30T11:00:00+01:00",
            "2026-11-30T05:00:00-05:00",
            "1796032800",
            "1796032800.0",
        ] {
            assert_eq!(start_at(text), Ok(moment), "{text}");
        }
        for text in [
            "2026-11-30T10:00:00",
            "2026-11-30T10:00:00+25:00",
            "now",
            "-5",
            "",
        ] {
            assert!(start_at(text).is_err(), "{text}");
        }
    }
}

const LLM_HELP: &str = "Examples:
  hookcli llm                       (no --to: plays hookcli's scripted server, in-process)
  hookcli llm --to ws://localhost:8080/llm-websocket
  hookcli llm --to ws://localhost:8080/llm-websocket --only llm/ping-pong,llm/interruption
  hookcli llm --calls 50 --concurrency 10 --to ws://localhost:8080/llm-websocket
  hookcli llm -p vapi --to http://localhost:8080/v1
  hookcli llm serve --port 8080

Exit codes:
  0  every protocol case passed (or was skipped)
  1  a case failed: a protocol violation, a response that never completed, a first chunk
     over --max-first-chunk
  2  bad usage or input (nothing was played)
  3  the server was unreachable: no WebSocket (or HTTP) connection opened";

#[derive(Debug, Args)]
pub struct LlmArgs {
    #[command(subcommand)]
    pub serve: Option<LlmCommand>,
    /// The server: ws[s]://HOST/PATH for uponai (the call id is appended), http[s]://HOST/PATH
    /// for vapi and elevenlabs (POST PATH/chat/completions); without it, hookcli's scripted
    /// server
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    #[arg(
        help = format!("Platform to play: uponai (retell), vapi or elevenlabs [default: {DEFAULT_PLATFORM}]"),
        short = 'p',
        long = "platform",
        env = "HOOKCLI_PLATFORM",
        value_name = "PLATFORM"
    )]
    pub platform: Option<String>,
    /// The platform came from HOOKCLI_PLATFORM, not -p.
    #[arg(skip)]
    pub platform_from_env: bool,
    /// The conversation to play, by topic (payloads/conversations.toml) [default: each call
    /// the next one]
    #[arg(long, value_name = "TOPIC")]
    pub conversation: Option<String>,
    /// Run only these cases: names or prefixes (comma-separated, repeatable)
    #[arg(long, value_delimiter = ',', value_name = "CASES")]
    pub only: Vec<String>,
    /// Skip these cases: names or prefixes (comma-separated, repeatable)
    #[arg(long, value_delimiter = ',', value_name = "CASES")]
    pub skip: Vec<String>,
    /// Print the cases and exit (nothing is played)
    #[arg(long, conflicts_with_all = ["to", "junit", "calls"])]
    pub list: bool,
    /// Conversation calls to play [default: 1]
    #[arg(long, value_name = "N", value_parser = whole_in::<u32, 1, 100_000>, allow_negative_numbers = true)]
    pub calls: Option<u32>,
    /// Calls at once [default: --calls, at most 10]
    #[arg(long, value_name = "N", value_parser = whole_in::<u32, 1, 10_000>, allow_negative_numbers = true)]
    pub concurrency: Option<u32>,
    /// Deadline for a response's first chunk, and again for its content_complete [default:
    /// 20s for vapi and elevenlabs (Vapi's timeoutSeconds), 10s for uponai]
    #[arg(long, value_parser = crate::duration::parse_deadline_flag, value_name = "DUR", allow_hyphen_values = true)]
    pub timeout: Option<Duration>,
    /// Fail (exit 1) when a response's first chunk takes longer
    #[arg(long, value_parser = crate::duration::parse_deadline_flag, value_name = "DUR", allow_hyphen_values = true)]
    pub max_first_chunk: Option<Duration>,
    /// The platform's ping_pong period, with auto_reconnect
    #[arg(long, value_parser = crate::duration::parse_deadline_flag, value_name = "DUR", default_value = "2s", allow_hyphen_values = true)]
    pub ping_interval: Duration,
    /// How long a ping_pong may go unechoed (the platform then closes and reconnects)
    #[arg(long, value_parser = crate::duration::parse_deadline_flag, value_name = "DUR", default_value = "5s", allow_hyphen_values = true)]
    pub ping_timeout: Duration,
    /// The user's silence before reminder_required [default: the server's update_agent
    /// reminder_trigger_ms, or 10s]
    #[arg(long, value_parser = duration, value_name = "DUR", allow_hyphen_values = true)]
    pub silence: Option<Duration>,
    /// Add a header to the WebSocket handshake or every /chat/completions request, 'Name:
    /// value' (repeatable; Vapi's custom-llm headers, an Authorization)
    #[arg(short = 'H', long = "header", value_name = "'NAME: VALUE'")]
    pub headers: Vec<String>,
    /// Print one JSON object per turn, per case, and a summary on stdout, nothing else there
    #[arg(long)]
    pub json: bool,
    /// Write a JUnit XML report to FILE
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum LlmCommand {
    /// A scripted custom-LLM server: Retell's LLM WebSocket and OpenAI-style
    /// /chat/completions (SSE) on one port, answering from payloads/llm.toml
    Serve(LlmServeArgs),
}

#[derive(Debug, Args)]
pub struct LlmServeArgs {
    /// Port to listen on; 0 picks a free one (the ready line says which)
    #[arg(long, default_value_t = 0, value_name = "PORT")]
    pub port: u16,
    /// Address to bind
    #[arg(long, default_value = "127.0.0.1", value_name = "HOST")]
    pub host: String,
}
