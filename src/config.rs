//! Arguments in, one delivery configuration out (as `just` turns Arguments into a Config).
//!
//! send, replay, check and load all deliver the same way, so one place turns the platform,
//! the key, the delivery flags, the environment and (where a command reads it) hookcli.toml
//! into a [`DeliveryConfig`]: platform, headers, policy and who owns its rule, signer, seed and
//! [`Target`]. Precedence, for every setting: the flag, then the environment, then
//! hookcli.toml, then the platform's default.
//!
//! This is also the one place that reads the environment: domain modules get values.

use anyhow::Result;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::mpsc::UnboundedSender;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::catalog::{Catalog, Platform};
use crate::check::suite::{DEFAULT_FILE, Suite};
use crate::cli::{DeliverTo, DeliveryArgs, KeyArg, PlatformArg};
use crate::command::{find_platform, platform_of};
use crate::delivery::{Request, Signer};
use crate::error::UserError;
use crate::policy::{DeliveryPolicy, EventPolicies, PolicyOverrides};
use crate::receiver::{Received, Receiver, ReceiverConfig};
use crate::secret::Secret;

/// The process environment, read only through here. Empty values count as unset.
pub struct Env;

impl Env {
    pub fn process() -> Env {
        Env
    }

    /// The variable's value, unless it is unset or empty.
    pub fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }

    /// HOOKCLI_SEED, when set: a whole number that fits 64 bits. Unset or blank is no seed;
    /// anything else (`abc`, `-1`, a number past u64) is refused, since silently ignoring it
    /// would make renders differ run to run while the user believes them reproducible.
    pub fn seed(&self) -> Result<Option<u64>, UserError> {
        let Some(text) = self.var("HOOKCLI_SEED") else {
            return Ok(None);
        };
        if text.trim().is_empty() {
            return Ok(None);
        }
        text.trim().parse::<u64>().map(Some).map_err(|_| {
            UserError::new(format!("HOOKCLI_SEED `{text}` is not a seed")).hint(format!(
                "set it to a whole number from 0 to {}, like HOOKCLI_SEED=42, or unset it",
                u64::MAX
            ))
        })
    }

    /// The key from --secret, else from HOOKCLI_SECRET.
    pub fn given_key(&self, flag: &KeyArg) -> Option<String> {
        flag.secret.clone().or_else(|| self.var("HOOKCLI_SECRET"))
    }

    /// The key the user gave: --secret or HOOKCLI_SECRET, then the file's `secret_env`
    /// variable, then the platform's own variables (UPONAI_API_KEY...).
    pub fn user_key(
        &self,
        flag: &KeyArg,
        file_var: Option<&str>,
        platform: &Platform,
    ) -> Option<Secret> {
        if let Some(key) = self.given_key(flag) {
            return Some(Secret::new(key));
        }
        if let Some(name) = file_var {
            return self.var(name).map(Secret::new);
        }
        platform
            .signing
            .as_ref()
            .into_iter()
            .flat_map(|s| s.key_env.iter())
            .find_map(|name| self.var(name))
            .map(Secret::new)
    }
}

/// What hookcli.toml says about delivery, for the commands that read it. Every field is
/// optional; a flag or the environment wins over it.
#[derive(Clone, Debug, Default)]
pub struct FileSettings {
    /// The file's name, for "expect in hookcli.toml".
    pub file: String,
    pub to: Option<reqwest::Url>,
    pub secret_env: Option<String>,
    pub policy: PolicyOverrides,
    pub headers: Vec<String>,
}

/// Where deliveries go: the user's URL, or hookcli's own receiver started for the run.
#[derive(Clone, Debug)]
pub enum Target {
    Url(reqwest::Url),
    /// `why` says where a URL was looked for: "no --to given (and no `to` in ci.toml)".
    BuiltIn {
        why: String,
    },
}

impl Target {
    pub fn is_built_in(&self) -> bool {
        matches!(self, Target::BuiltIn { .. })
    }

    /// The URL a user gave, if any.
    pub fn url(&self) -> Option<&reqwest::Url> {
        match self {
            Target::Url(url) => Some(url),
            Target::BuiltIn { .. } => None,
        }
    }
}

/// How the signing key came to be, for notes and skip reasons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyOrigin {
    /// The user gave it (flag, environment or the file's variable).
    Given,
    /// Made up for the built-in receiver, which verifies with it.
    Made,
    /// There is none; `unset_var` names the file's `secret_env` variable when that was the
    /// place it should have come from.
    Missing { unset_var: Option<String> },
    /// The platform does not sign; `key_given` when the user gave a key all the same.
    NotSigned { key_given: bool },
}

/// Everything a delivering command needs, decided before anything is sent.
#[derive(Clone, Debug)]
pub struct DeliveryConfig {
    pub platform: Arc<Platform>,
    /// The platform's headers, then the user's (-H or the file's), which replace same names.
    pub headers: HeaderMap,
    /// The platform's policy under the user's overrides: what events without rules of their
    /// own get (see [`DeliveryConfig::policy_for`]).
    pub policy: DeliveryPolicy,
    /// What the user set (flags over the file), kept to lay over each event's own rules.
    pub overrides: PolicyOverrides,
    /// Whose success rule it is, for verdicts: `--expect`, `expect in hookcli.toml`, or the
    /// platform's id.
    pub rule_owner: String,
    pub key: Option<Secret>,
    pub key_origin: KeyOrigin,
    pub seed: Option<u64>,
    pub target: Target,
}

/// The flags every delivering command shares, borrowed from its clap args.
pub struct Flags<'a> {
    pub to: Option<&'a str>,
    pub key: &'a KeyArg,
    pub delivery: &'a DeliveryArgs,
}

impl<'a> Flags<'a> {
    pub fn of(target: &'a DeliverTo) -> Self {
        Flags {
            to: target.to.as_deref(),
            key: &target.key,
            delivery: &target.delivery,
        }
    }
}

impl DeliveryConfig {
    /// Builds the configuration: flags over the environment over the file over the platform.
    pub fn resolve(
        platform: &Arc<Platform>,
        flags: &Flags,
        file: Option<&FileSettings>,
        env: &Env,
    ) -> Result<DeliveryConfig> {
        let target = match (flags.to, file.and_then(|f| f.to.as_ref())) {
            (Some(to), _) => Target::Url(parse_url(to)?),
            (None, Some(url)) => Target::Url(url.clone()),
            (None, None) => Target::BuiltIn {
                why: match file {
                    Some(file) => format!("no --to given (and no `to` in {})", file.file),
                    None => "no --to given".into(),
                },
            },
        };
        let file_policy = file.map(|f| f.policy.clone()).unwrap_or_default();
        let flag_policy = flags.delivery.overrides();
        let overrides = PolicyOverrides {
            timeout: flag_policy.timeout.or(file_policy.timeout),
            retries: flag_policy.retries.or(file_policy.retries),
            backoff: flag_policy.backoff.or(file_policy.backoff),
            success: flag_policy.success.clone().or(file_policy.success.clone()),
        };
        let rule_owner = match (&flag_policy.success, &file_policy.success, file) {
            (Some(_), _, _) => "--expect".to_string(),
            (None, Some(_), Some(file)) => format!("expect in {}", file.file),
            _ => platform.id.clone(),
        };
        let user_headers = if flags.delivery.headers.is_empty() {
            file.map(|f| f.headers.as_slice()).unwrap_or_default()
        } else {
            flags.delivery.headers.as_slice()
        };
        let headers = platform_headers(platform, user_headers)?;
        let (key, key_origin) = choose_key(
            env.user_key(
                flags.key,
                file.and_then(|f| f.secret_env.as_deref()),
                platform,
            ),
            platform,
            &target,
            file.and_then(|f| f.secret_env.as_deref()),
        );
        if let Some(key) = &key {
            usable_key(platform, key)?;
        }
        Ok(DeliveryConfig {
            platform: Arc::clone(platform),
            headers,
            policy: platform.policy.clone().with_overrides(&overrides),
            overrides,
            rule_owner,
            key,
            key_origin,
            seed: env.seed()?,
            target,
        })
    }

    /// Each event's policy: the platform's, under the event's own rules (an inbound call's
    /// timeout), under the user's flags and file.
    pub fn event_policies(&self) -> EventPolicies {
        let events = self
            .platform
            .events
            .iter()
            .map(|e| (e.name.as_str(), &e.rules));
        EventPolicies::new(&self.platform.policy, events, &self.overrides)
    }

    /// [`DeliveryConfig::event_policies`] for one event.
    pub fn policy_for(&self, event: &str) -> DeliveryPolicy {
        self.event_policies().for_event(event).clone()
    }

    /// Sets the retries as if the user had given them (load: 0 unless asked for).
    pub fn set_retries(&mut self, retries: u32) {
        self.overrides.retries = Some(retries);
        self.policy.retries = retries;
    }

    /// The signer for this platform and key: `None` when the platform does not sign or there
    /// is no key.
    pub fn signer(&self) -> Option<Signer> {
        Signer::for_platform(&self.platform, self.key.as_ref())
    }

    /// A request to `url` with this configuration's headers and signer.
    pub fn request(&self, url: reqwest::Url, body: bytes::Bytes) -> Request {
        Request {
            method: reqwest::Method::POST,
            url,
            headers: self.headers.clone(),
            body,
            signer: self.signer(),
        }
    }

    /// The note for a signing platform sent without a key, ending with what happens instead
    /// (`sending unsigned`; a dry run sends nothing). `None` when there is nothing to say.
    pub fn no_key_note(&self, instead: &str) -> Option<String> {
        match &self.key_origin {
            KeyOrigin::Missing { .. } => {
                let signing = self.platform.signing.as_ref()?;
                Some(format!(
                    "note: {} signs webhooks with {}, but no key was given ({}): {instead}",
                    self.platform.id,
                    signing.header,
                    key_sources(&self.platform)
                ))
            }
            KeyOrigin::NotSigned { key_given: true } => Some(format!(
                "note: {} does not sign its webhooks; the key is not used",
                self.platform.id
            )),
            _ => None,
        }
    }

    /// Why there is no key, for check's skipped signature cases.
    pub fn no_key_reason(&self) -> String {
        match &self.key_origin {
            KeyOrigin::Missing {
                unset_var: Some(name),
            } => format!(
                "{name} (secret_env in the suite file) is not set: the receiver's verification \
                 cannot be tested"
            ),
            _ => format!(
                "no key given ({}): the receiver's verification cannot be tested",
                key_sources(&self.platform)
            ),
        }
    }

    /// Starts the built-in receiver if the target is one, verifying with this key and
    /// answering what the success rule wants (204 where it takes it; salpre's exactly 200, or
    /// `--expect 200`, get a 200). `seen` gets every request the receiver answered. `doing`
    /// and `after` complete "no --to given: ... hookcli's built-in receiver at URL..." on
    /// stderr, e.g. "delivering to".
    pub async fn start_target(
        &self,
        seen: Option<UnboundedSender<Received>>,
        doing: &str,
        after: &str,
    ) -> Result<Endpoint> {
        match &self.target {
            Target::Url(url) => Ok(Endpoint {
                url: url.clone(),
                receiver: None,
            }),
            Target::BuiltIn { why } => {
                let mut config = ReceiverConfig::local(self.platform.clone(), self.key.clone());
                config.faults.status = self.policy.success.preferred_status();
                let receiver = Receiver::start(config, seen).await?;
                errln!(
                    "{why}: {doing} hookcli's built-in receiver at {}{after}",
                    receiver.url
                );
                Ok(Endpoint {
                    url: reqwest::Url::parse(&receiver.url)?,
                    receiver: Some(receiver),
                })
            }
        }
    }
}

/// Where deliveries go once the target is up.
pub struct Endpoint {
    pub url: reqwest::Url,
    receiver: Option<Receiver>,
}

impl Endpoint {
    pub fn is_built_in(&self) -> bool {
        self.receiver.is_some()
    }

    /// Stops the built-in receiver, if there is one; every request it answered has been
    /// reported on its channel by then.
    pub async fn stop(self) {
        if let Some(receiver) = self.receiver {
            receiver.stop().await;
        }
    }
}

/// The key to sign with and how it came to be. With the built-in receiver and no key, one is
/// made for it; a signing platform sent to a real receiver without a key goes unsigned, and
/// the origin says why (with where a key could come from).
fn choose_key(
    given: Option<Secret>,
    platform: &Platform,
    target: &Target,
    file_var: Option<&str>,
) -> (Option<Secret>, KeyOrigin) {
    if platform.signing.is_none() {
        let key_given = given.is_some();
        return (None, KeyOrigin::NotSigned { key_given });
    }
    match (given, target) {
        (Some(key), _) => (Some(key), KeyOrigin::Given),
        (None, Target::BuiltIn { .. }) => {
            let key = platform.signing.as_ref().map(|s| s.rules.generate_key());
            (key, KeyOrigin::Made)
        }
        (None, Target::Url(_)) => (
            None,
            KeyOrigin::Missing {
                unset_var: file_var.map(str::to_string),
            },
        ),
    }
}

/// A key the platform's scheme can use (a Standard Webhooks key must be whsec_ + base64), or
/// the user error saying why not.
pub fn usable_key(platform: &Platform, key: &Secret) -> Result<()> {
    let Some(signing) = &platform.signing else {
        return Ok(());
    };
    signing.rules.key_bytes(key).map(drop).map_err(|e| {
        UserError::new(format!("the key for {} cannot be used: {e}", platform.id))
            .hint(format!(
                "{} signs with the {} scheme; give its key as the platform shows it{}",
                platform.id,
                signing.rules.scheme.name(),
                match signing.rules.key_format {
                    crate::signing::KeyFormat::Whsec => " (whsec_ followed by base64)",
                    crate::signing::KeyFormat::Base64 => " (base64)",
                    crate::signing::KeyFormat::Text => "",
                }
            ))
            .into()
    })
}

/// Where a key may come from, for messages.
pub fn key_sources(platform: &Platform) -> String {
    let mut sources = vec!["--secret".to_string(), "HOOKCLI_SECRET".to_string()];
    if let Some(signing) = &platform.signing {
        sources.extend(signing.key_env.iter().cloned());
    }
    sources.join(", ")
}

/// The platform's headers, then the user's `Name: value` list (which replaces same names).
pub fn platform_headers(platform: &Platform, user: &[String]) -> Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    for (name, value) in &platform.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
    for (name, value) in &crate::command::parse_headers(user)? {
        headers.insert(name.clone(), value.clone());
    }
    Ok(headers)
}

use crate::command::parse_url;

/// The settings file every command reads: `--config FILE` (env HOOKCLI_CONFIG), else
/// ./hookcli.toml when it exists. Each command says on stderr which file it read.
pub fn read_file(flag: Option<&Path>) -> Result<Option<Suite>> {
    let path = match flag {
        Some(path) => path.to_path_buf(),
        None if Path::new(DEFAULT_FILE).is_file() => PathBuf::from(DEFAULT_FILE),
        None => return Ok(None),
    };
    let suite = Suite::load(&path).map_err(|e| {
        let hint = if path.is_file() {
            "README \"hookcli.toml\" lists every key"
        } else {
            "give --config the path of a settings file, or leave it out to read ./hookcli.toml"
        };
        UserError::new(e.to_string()).hint(hint)
    })?;
    errln!("reading {}", path.display());
    Ok(Some(suite))
}

/// The file's `platform`, when it is the one to play: -p and HOOKCLI_PLATFORM win over it.
fn file_platform<'a>(
    arg: &PlatformArg,
    file: Option<&'a Suite>,
) -> Option<(&'a Suite, &'a toml::Spanned<String>)> {
    let (suite, name) = file.and_then(|s| s.platform.as_ref().map(|p| (s, p)))?;
    arg.from_default.then_some((suite, name))
}

/// The name [`platform`] looks up, for reading only that platform's part of the catalog.
pub fn platform_name<'a>(arg: &'a PlatformArg, file: Option<&'a Suite>) -> &'a str {
    match file_platform(arg, file) {
        Some((_, name)) => name.get_ref(),
        None => &arg.platform,
    }
}

/// The platform: `-p` (or HOOKCLI_PLATFORM), else the file's `platform`, else the default.
pub fn platform<'a>(
    catalog: &'a Catalog,
    arg: &PlatformArg,
    file: Option<&Suite>,
) -> Result<&'a Arc<Platform>> {
    let Some((suite, name)) = file_platform(arg, file) else {
        return platform_of(catalog, arg);
    };
    find_platform(catalog, name.get_ref()).map_err(|_| {
        let ids = catalog.platform_list();
        UserError::new(
            suite
                .error(
                    name.span(),
                    "platform",
                    format!("unknown platform `{}`", name.get_ref()),
                )
                .to_string(),
        )
        .hint(format!("platforms: {ids}"))
        .into()
    })
}

impl FileSettings {
    /// What the suite file says about delivery, checked: a bad `to` or header names its line.
    pub fn of(suite: &Suite) -> Result<FileSettings> {
        let to = suite
            .to
            .as_ref()
            .map(|to| {
                parse_url(to.get_ref()).map_err(|e| {
                    // parse_url speaks of the flag; the file's line and key say more here.
                    let text = e.to_string();
                    let shown = crate::redact::shown_text(to.get_ref());
                    let why = text
                        .strip_prefix(&format!("--to `{shown}`"))
                        .unwrap_or(&text)
                        .trim_start_matches([':', ' ']);
                    let joint = if why.starts_with("is ") { " " } else { ": " };
                    let message = format!("`{shown}`{joint}{why}");
                    UserError::new(suite.error(to.span(), "to", message).to_string())
                        .hint("write it like to = \"http://127.0.0.1:3000/webhook\"")
                })
            })
            .transpose()?;
        for header in &suite.headers {
            crate::command::parse_headers(std::slice::from_ref(header.get_ref())).map_err(|e| {
                UserError::new(
                    suite
                        .error(header.span(), "headers", e.to_string().replace("-H ", ""))
                        .to_string(),
                )
                .hint("write a header as \"Name: value\"")
            })?;
        }
        Ok(FileSettings {
            file: suite.file().display().to_string(),
            to,
            secret_env: suite.secret_env.as_ref().map(|v| v.get_ref().clone()),
            policy: PolicyOverrides {
                timeout: suite.timeout,
                retries: suite.retries,
                backoff: suite.backoff,
                success: suite.expect.clone(),
            },
            headers: suite.headers.iter().map(|h| h.get_ref().clone()).collect(),
        })
    }

    /// These settings without the target: a load never aims where a file says.
    pub fn without_target(mut self) -> Self {
        self.to = None;
        self
    }
}
