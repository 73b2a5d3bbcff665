//! Reads the catalog files (embedded, then the --payloads overlay), merges them and validates.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use hyper::header::HeaderName;
use include_dir::{Dir, include_dir};
use serde::Deserialize;
use serde_json::Value;

use super::*;
use crate::signing::{Scheme, Tolerance};
use crate::text::io_reason;

static BUILTIN: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/payloads");

/// The built-in TOML files as JSON, by path under payloads/: build.rs converts them, since
/// JSON reads several times faster and every command reads some of them at start-up.
static BUILTIN_JSON: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/builtin_json.rs"));

/// One file's text and where it came from.
#[derive(Clone)]
struct Text {
    origin: String,
    /// Borrowed from the binary for a built-in file, read for an overlay's.
    text: Cow<'static, str>,
    /// A built-in TOML file's tables as JSON, made by build.rs (`text` is then that JSON).
    json: bool,
}

impl Text {
    /// The file's tables as `T`.
    fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, CatalogError> {
        if self.json {
            return serde_json::from_str(&self.text)
                .map_err(|e| CatalogError::file(&self.origin, e.to_string()));
        }
        toml::from_str(&self.text).map_err(|e| {
            CatalogError::file(&self.origin, toml_message(&e, Some(self.text.as_ref())))
        })
    }
}

/// A platform.toml or lifecycles.toml: one built-in file as build.rs wrote it, or tables
/// merged across the built-in catalog and the overlay.
enum Layered {
    /// Read straight into the type that holds it: going through a `toml::Table` first cost
    /// 8% of `replay`'s start-up instructions.
    Json(Text),
    Tables(toml::Table),
}

impl Layered {
    fn of(text: &Text) -> Result<Layered, CatalogError> {
        Ok(if text.json {
            Layered::Json(text.clone())
        } else {
            Layered::Tables(text.parse()?)
        })
    }

    /// These tables with `overlay`'s on top.
    fn merge(self, overlay: &Text) -> Result<Layered, CatalogError> {
        let mut base = match self {
            Layered::Json(text) => text.parse()?,
            Layered::Tables(table) => table,
        };
        merge(&mut base, overlay.parse()?);
        Ok(Layered::Tables(base))
    }

    /// The file as `T`; an error names `origin`.
    fn read<T: serde::de::DeserializeOwned>(self, origin: &str) -> Result<T, CatalogError> {
        match self {
            Layered::Json(text) => text.parse(),
            Layered::Tables(table) => T::deserialize(toml::Value::Table(table))
                .map_err(|e| CatalogError::file(origin, toml_message(&e, None))),
        }
    }
}

/// A platform's files, merged across the built-in catalog and the overlay.
#[derive(Default)]
struct PlatformFiles {
    platform: Option<(Layered, String)>,
    lifecycles: Option<(Layered, String)>,
    templates: BTreeMap<String, Text>,
    /// JSON Schemas of the answers the platform reads, by file stem (`answers/NAME.json`).
    answers: BTreeMap<String, Text>,
    /// The --payloads folder and this platform's folder in it, when the overlay has one.
    overlay: Option<(String, String)>,
    /// The built-in catalog has a folder of this name.
    builtin: bool,
}

impl PlatformFiles {
    /// The folder (or folders, when the overlay changes a built-in platform) this platform
    /// comes from, for an error that names it.
    fn folder(&self, dir: &str) -> String {
        let builtin = format!("built-in payloads/{dir}");
        match (&self.overlay, self.builtin) {
            (Some((_, folder)), true) => format!("{builtin} (with {folder})"),
            (Some((_, folder)), false) => folder.clone(),
            (None, _) => builtin,
        }
    }
}

#[derive(Default)]
struct Files {
    platforms: BTreeMap<String, PlatformFiles>,
    people: Option<Text>,
    conversations: Option<Text>,
}

pub(super) fn assemble(overlay: Option<&Path>) -> Result<Catalog, CatalogError> {
    let mut files = Files::default();
    read_builtin(&mut files)?;
    if let Some(dir) = overlay {
        read_overlay(&mut files, dir)?;
    }
    build(files)
}

/// The built-in platforms' aliases and the folder each names. A built-in folder is named
/// by its platform's id, so with these one platform's folder is found without reading every
/// platform.toml; a unit test holds this list to the files.
const BUILTIN_ALIASES: &[(&str, &str)] = &[("retell", "uponai"), ("11labs", "elevenlabs")];

pub(super) fn assemble_one(name: &str) -> Result<Option<Catalog>, CatalogError> {
    let name = name.to_ascii_lowercase();
    let folder = BUILTIN_ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name.as_str(), |(_, folder)| folder);
    let Some(dir) = BUILTIN.dirs().find(|d| d.path() == Path::new(folder)) else {
        return Ok(None);
    };
    let mut files = Files::default();
    read_builtin_shared(&mut files);
    read_builtin_platform(&mut files, dir)?;
    let mut catalog = build(files)?;
    catalog.partial = true;
    Ok(Some(catalog))
}

fn builtin_text(file: &'static include_dir::File<'static>) -> Text {
    let path = file.path().display().to_string();
    // build.rs names files with `/`; include_dir keeps the OS's separator (`\` on Windows).
    // Compared as strings: comparing Paths parses both for every entry of the list.
    let name = path.replace('\\', "/");
    let json = BUILTIN_JSON
        .iter()
        .find(|(json_name, _)| *json_name == name);
    Text {
        origin: format!("built-in payloads/{path}"),
        text: Cow::Borrowed(match json {
            Some((_, json)) => *json,
            None => std::str::from_utf8(file.contents()).unwrap_or_default(),
        }),
        json: json.is_some(),
    }
}

fn read_builtin(files: &mut Files) -> Result<(), CatalogError> {
    read_builtin_shared(files);
    for dir in BUILTIN.dirs() {
        read_builtin_platform(files, dir)?;
    }
    Ok(())
}

/// The files every platform draws on: people and conversations.
fn read_builtin_shared(files: &mut Files) {
    files.people = BUILTIN.get_file("people.toml").map(builtin_text);
    files.conversations = BUILTIN.get_file("conversations.toml").map(builtin_text);
}

fn read_builtin_platform(
    files: &mut Files,
    dir: &'static Dir<'static>,
) -> Result<(), CatalogError> {
    let id = dir.path().display().to_string();
    let mut found: Vec<(String, Text)> = Vec::new();
    for file in dir.files() {
        found.push((file_name(file.path()), builtin_text(file)));
    }
    for sub in ["events", "answers"] {
        if let Some(files) = dir.get_dir(dir.path().join(sub)) {
            for file in files.files() {
                found.push((
                    format!("{sub}/{}", file_name(file.path())),
                    builtin_text(file),
                ));
            }
        }
    }
    add_platform_files(files, &id, found)?;
    if let Some(platform) = files.platforms.get_mut(&id) {
        platform.builtin = true;
    }
    Ok(())
}

fn read_overlay(files: &mut Files, dir: &Path) -> Result<(), CatalogError> {
    let overlay_error = |message: String| CatalogError::Overlay {
        path: dir.display().to_string(),
        message,
    };
    let entries = std::fs::read_dir(dir).map_err(|e| {
        let reason = if dir.is_file() {
            "it is a file, not a folder".to_string()
        } else {
            io_reason(&e)
        };
        overlay_error(format!("cannot read the folder ({reason})"))
    })?;
    let read = |path: &Path| -> Result<Text, CatalogError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CatalogError::file(path.display().to_string(), io_reason(&e)))?;
        Ok(Text {
            origin: path.display().to_string(),
            text: Cow::Owned(text),
            json: false,
        })
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let name = file_name(&path);
        if path.is_dir() {
            let mut found = Vec::new();
            for file in ["platform.toml", "lifecycles.toml"] {
                if path.join(file).is_file() {
                    found.push((file.to_string(), read(&path.join(file))?));
                }
            }
            for sub in ["events", "answers"] {
                let Ok(listing) = std::fs::read_dir(path.join(sub)) else {
                    continue;
                };
                let mut listing: Vec<_> =
                    listing.filter_map(Result::ok).map(|e| e.path()).collect();
                listing.sort();
                for file in listing
                    .iter()
                    .filter(|p| p.extension().is_some_and(|e| e == "json"))
                {
                    found.push((format!("{sub}/{}", file_name(file)), read(file)?));
                }
            }
            add_platform_files(files, &name, found)?;
            if let Some(platform) = files.platforms.get_mut(&name) {
                platform.overlay = Some((dir.display().to_string(), path.display().to_string()));
            }
        } else if name == "people.toml" {
            files.people = Some(read(&path)?);
        } else if name == "conversations.toml" {
            files.conversations = Some(read(&path)?);
        }
    }
    Ok(())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Merges one folder's files into the platform of that id.
fn add_platform_files(
    files: &mut Files,
    id: &str,
    found: Vec<(String, Text)>,
) -> Result<(), CatalogError> {
    let platform = files.platforms.entry(id.to_string()).or_default();
    for (name, text) in found {
        if let Some(event) = name
            .strip_prefix("events/")
            .and_then(|n| n.strip_suffix(".json"))
        {
            platform.templates.insert(event.to_string(), text);
            continue;
        }
        if let Some(answer) = name
            .strip_prefix("answers/")
            .and_then(|n| n.strip_suffix(".json"))
        {
            platform.answers.insert(answer.to_string(), text);
            continue;
        }
        let slot = match name.as_str() {
            "platform.toml" => &mut platform.platform,
            "lifecycles.toml" => &mut platform.lifecycles,
            _ => continue,
        };
        *slot = Some(match slot.take() {
            Some((base, origin)) => (base.merge(&text)?, format!("{origin} + {}", text.origin)),
            None => (Layered::of(&text)?, text.origin),
        });
    }
    Ok(())
}

/// toml's messages span several lines with a source excerpt; keep them on one line, with
/// the line and column when the error points into `text`.
fn toml_message(e: &toml::de::Error, text: Option<&str>) -> String {
    let message = e.message().trim().to_string();
    match (e.span(), text) {
        (Some(span), Some(text)) => {
            let (line, column) = line_column(text, span.start);
            format!("line {line}, column {column}: {message}")
        }
        _ => message,
    }
}

/// 1-based line and column of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Tables merge key by key; arrays of named tables merge by `name`; anything else replaces.
fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (Some(toml::Value::Array(b)), toml::Value::Array(o))
                if all_named(b) && all_named(&o) =>
            {
                for item in o {
                    let name = item.get("name").cloned();
                    match b.iter_mut().find(|x| x.get("name") == name.as_ref()) {
                        Some(toml::Value::Table(existing)) => {
                            if let toml::Value::Table(t) = item {
                                merge(existing, t);
                            }
                        }
                        _ => b.push(item),
                    }
                }
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn all_named(items: &[toml::Value]) -> bool {
    items
        .iter()
        .all(|i| i.get("name").is_some_and(toml::Value::is_str))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlatformFile {
    id: String,
    name: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    documents: String,
    event_field: Option<String>,
    #[serde(default)]
    call_id_fields: Vec<String>,
    #[serde(default)]
    assumed: Vec<String>,
    delivery: DeliveryFile,
    signing: Option<SigningFile>,
    /// The body format: json (default) or form.
    #[serde(default)]
    format: BodyFormat,
    /// listen's default --max-body for this platform, in MB (1024 x 1024 bytes, as --max-body).
    max_body_mb: Option<u64>,
    #[serde(default)]
    headers: toml::Table,
    #[serde(default)]
    ids: toml::Table,
    transcript: TranscriptFile,
    #[serde(default)]
    free_form: Vec<String>,
    #[serde(default)]
    events: Vec<EventFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveryFile {
    timeout: String,
    retries: u32,
    backoff: String,
    success: String,
    /// A deadline for the connection alone, shorter than `timeout`.
    connect_timeout: Option<String>,
    /// The waits before each retry, instead of doubling from `backoff`.
    #[serde(default)]
    schedule: Vec<String>,
    /// Up to this much added at random to each wait.
    jitter: Option<String>,
    /// Retry only these statuses (`5xx`, `429`); absent: every failure.
    retry_on: Option<Vec<String>>,
}

/// An event's own delivery rules, over the platform's (every key optional).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EventDeliveryFile {
    timeout: Option<String>,
    retries: Option<u32>,
    backoff: Option<String>,
}

/// The answer a platform reads from the receiver for this event.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerFile {
    /// `answers/<schema>.json`, a JSON Schema of the answer's body.
    schema: String,
    /// The platform cuts an answer past this many characters (Unicode scalar values).
    max_chars: Option<usize>,
    /// A body that is not JSON is taken as text (a function's answer), not refused.
    #[serde(default)]
    text_ok: bool,
    /// What the platform does with a valid answer, for reports.
    #[serde(default)]
    effect: String,
    /// Phrases about what a valid answer makes the platform do, each said when its pointer
    /// is in the answer.
    #[serde(default)]
    says: Vec<SayFile>,
    /// Where values of the answer show up in the events that follow.
    #[serde(default)]
    carry: Vec<CarryFile>,
    /// A valid answer, which hookcli's own receiver gives.
    example: Option<toml::Value>,
    /// What the platform is taken to do with a 2xx whose answer it cannot use.
    #[serde(default)]
    unusable: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SayFile {
    at: String,
    text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CarryFile {
    from: String,
    to: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SigningFile {
    /// One of signing::Scheme's names; every other key defaults to the scheme's own value.
    scheme: String,
    header: Option<String>,
    /// standard-webhooks: the message id header (`svix-id` for Svix).
    id_header: Option<String>,
    /// standard-webhooks and vapi-hmac: the timestamp header.
    timestamp_header: Option<String>,
    /// token: written before the key (`Bearer `, or "" for a bare secret).
    prefix: Option<String>,
    /// sha1, sha256 or sha512, for schemes that let the platform choose (required by some).
    algorithm: Option<String>,
    /// hex or base64.
    encoding: Option<String>,
    /// text, base64 or whsec.
    key_format: Option<String>,
    /// s or ms: the unit of a written timestamp (vapi-hmac).
    timestamp_unit: Option<String>,
    /// Either side of the clock, unless `future_tolerance` says otherwise.
    tolerance: Option<String>,
    /// A bound for the future, or "none" where the platform's verifiers do not check it.
    future_tolerance: Option<String>,
    #[serde(default)]
    key_env: Vec<String>,
}

/// `[signing]` as the scheme's rules: the scheme's defaults, with what the file gives.
fn signing_rules(file: &SigningFile) -> Result<Rules, String> {
    let scheme: Scheme = file
        .scheme
        .parse()
        .map_err(|e| format!("signing.scheme: {e}"))?;
    let mut rules = Rules::new(scheme);
    let text = |field: &Option<String>, into: &mut String| {
        if let Some(value) = field {
            *into = value.clone();
        }
    };
    text(&file.header, &mut rules.header);
    text(&file.id_header, &mut rules.id_header);
    text(&file.timestamp_header, &mut rules.timestamp_header);
    text(&file.prefix, &mut rules.prefix);
    for name in [
        &mut rules.header,
        &mut rules.id_header,
        &mut rules.timestamp_header,
    ] {
        *name = name.to_ascii_lowercase();
    }
    fn parsed<T: std::str::FromStr<Err = String>>(
        field: &str,
        value: &Option<String>,
    ) -> Result<Option<T>, String> {
        value
            .as_deref()
            .map(|v| v.parse().map_err(|e| format!("signing.{field}: {e}")))
            .transpose()
    }
    match parsed("algorithm", &file.algorithm)? {
        Some(algorithm) => rules.algorithm = algorithm,
        None if scheme.algorithm_required() => {
            return Err(format!(
                "signing.algorithm: the {} scheme needs one (sha256, sha512 or sha1): it has \
                 no default",
                scheme.name()
            ));
        }
        None => {}
    }
    if let Some(encoding) = parsed("encoding", &file.encoding)? {
        rules.encoding = encoding;
    }
    if let Some(format) = parsed("key_format", &file.key_format)? {
        rules.key_format = format;
    }
    if let Some(unit) = parsed("timestamp_unit", &file.timestamp_unit)? {
        rules.unit = unit;
    }
    let duration = |field: &str, t: &str| {
        crate::duration::parse(t).map_err(|e| format!("signing.{field}: {e}"))
    };
    if let Some(tolerance) = &file.tolerance {
        rules.tolerance = Tolerance::both(duration("tolerance", tolerance)?);
    }
    match file.future_tolerance.as_deref() {
        Some("none") => rules.tolerance.future = None,
        Some(t) => rules.tolerance.future = Some(duration("future_tolerance", t)?),
        None => {}
    }
    if rules.header.is_empty() {
        return Err("signing.header: empty".into());
    }
    // Checked here, once, so that no request can carry a broken or smuggled header: load
    // writes these names and the prefix into its requests as they are.
    let names = [
        ("header", &rules.header),
        ("id_header", &rules.id_header),
        ("timestamp_header", &rules.timestamp_header),
    ];
    for (field, name) in names {
        if !name.is_empty() && HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(format!("signing.{field}: `{name}` is not a header name"));
        }
    }
    if !crate::signing::header_text(rules.prefix.as_bytes()) {
        return Err("signing.prefix: a control character, which a header cannot carry".into());
    }
    Ok(rules)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TranscriptFile {
    roles: RolePair,
    labels: RolePair,
    line: String,
    turn: toml::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RolePair {
    agent: String,
    user: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventFile {
    name: String,
    #[serde(default)]
    description: String,
    at: Moment,
    #[serde(default = "yes")]
    default: bool,
    /// This event's own timeout and retries (a request the platform waits on).
    delivery: Option<EventDeliveryFile>,
    answer: Option<AnswerFile>,
    /// Where a custom function's request holds its name and args; the args pointer also
    /// names the event in a body without the event field.
    function: Option<FunctionFile>,
    /// What listen's line shows of such a request: `{/pointer}` placeholders in text.
    line: Option<String>,
    /// Fields the platform's documents say may be absent (check's body/missing-optional).
    #[serde(default)]
    optional: Vec<OptionalFile>,
}

/// One optional field: where it is, which document says so, and whether that is hookcli's
/// reading rather than the document's words.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OptionalFile {
    at: String,
    source: String,
    #[serde(default)]
    assumed: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FunctionFile {
    name: String,
    args: String,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LifecyclesFile {
    #[serde(default)]
    lifecycles: Vec<LifecycleFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LifecycleFile {
    name: String,
    #[serde(default)]
    description: String,
    steps: Vec<String>,
    #[serde(default = "yes")]
    connected: bool,
    #[serde(default)]
    vars: toml::Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConversationsFile {
    conversations: Vec<Conversation>,
}

fn build(files: Files) -> Result<Catalog, CatalogError> {
    let people: People = parse_toml(files.people.as_ref(), "people.toml")?;
    let conversations: ConversationsFile =
        parse_toml(files.conversations.as_ref(), "conversations.toml")?;
    if people.first_names.is_empty() || people.last_names.is_empty() || people.places.is_empty() {
        return Err(CatalogError::file(
            "people.toml",
            "first_names, last_names and places must each list at least one",
        ));
    }
    if conversations
        .conversations
        .iter()
        .any(|c| c.turns.is_empty())
        || conversations.conversations.is_empty()
    {
        return Err(CatalogError::file(
            "conversations.toml",
            "needs at least one conversation, each with turns",
        ));
    }
    let mut platforms = Vec::new();
    let mut claimed = BTreeMap::new();
    // Built-in folders claim their names first: an error then says which overlay folder
    // collides with which built-in one, not the other way round.
    let mut folders: Vec<_> = files.platforms.into_iter().collect();
    folders.sort_by_key(|(dir, parts)| (!parts.builtin, dir.clone()));
    for (dir, parts) in folders {
        let folder = parts.folder(&dir);
        let platform = build_platform(&dir, parts)?;
        claim_names(&mut claimed, &platform, folder)?;
        platforms.push(Arc::new(platform));
    }
    // The documented order: the default platform first, then as the catalog folders sort.
    platforms.sort_by_key(|p| (p.id != DEFAULT_PLATFORM, p.id.clone()));
    Ok(Catalog {
        platforms,
        people,
        conversations: conversations.conversations,
        partial: false,
    })
}

/// Records the id and aliases of `platform`, from `folder`, in `claimed`: `-p` finds a platform
/// by either, so a name claimed by two folders would list a platform twice or send the alias
/// to whichever came first. Only a folder of the same name replaces a built-in platform.
fn claim_names(
    claimed: &mut BTreeMap<String, String>,
    platform: &Platform,
    folder: String,
) -> Result<(), CatalogError> {
    let mut names: Vec<&String> = std::iter::once(&platform.id)
        .chain(&platform.aliases)
        .collect();
    // An alias that repeats the platform's own id takes nothing from another folder.
    names.sort();
    names.dedup();
    for name in names {
        if let Some(first) = claimed.get(name) {
            return Err(CatalogError::Claimed {
                name: name.clone(),
                first: first.clone(),
                second: folder,
            });
        }
        claimed.insert(name.clone(), folder.clone());
    }
    Ok(())
}

fn parse_toml<T: serde::de::DeserializeOwned>(
    text: Option<&Text>,
    name: &str,
) -> Result<T, CatalogError> {
    let text = text.ok_or_else(|| CatalogError::file(name, "missing from the catalog"))?;
    text.parse()
}

fn build_platform(dir: &str, parts: PlatformFiles) -> Result<Platform, CatalogError> {
    let (layered, origin) = parts.platform.ok_or_else(|| match &parts.overlay {
        Some((root, folder)) => CatalogError::NotAPlatform {
            root: root.clone(),
            folder: folder.clone(),
        },
        None => CatalogError::file(format!("{dir}/"), "has no platform.toml"),
    })?;
    let err = |message: String| CatalogError::file(&origin, message);
    let file: PlatformFile = layered.read(&origin)?;
    let duration = |field: &str, text: &str| {
        crate::duration::parse(text).map_err(|e| err(format!("{field}: {e}")))
    };
    let delivery = &file.delivery;
    let optional = |field: &str, text: &Option<String>| {
        text.as_deref().map(|t| duration(field, t)).transpose()
    };
    let policy = DeliveryPolicy {
        connect_timeout: optional("delivery.connect_timeout", &delivery.connect_timeout)?,
        schedule: delivery
            .schedule
            .iter()
            .map(|wait| duration("delivery.schedule", wait))
            .collect::<Result<_, _>>()?,
        jitter: optional("delivery.jitter", &delivery.jitter)?.unwrap_or_default(),
        retry_on: match &delivery.retry_on {
            Some(list) => {
                RetryOn::parse(list).map_err(|e| err(format!("delivery.retry_on: {e}")))?
            }
            None => RetryOn::AnyFailure,
        },
        ..DeliveryPolicy::simple(
            duration("delivery.timeout", &delivery.timeout)?,
            delivery.retries,
            duration("delivery.backoff", &delivery.backoff)?,
            parse_success(&delivery.success).map_err(|e| err(format!("delivery.success: {e}")))?,
        )
    };
    let signing = match file.signing {
        Some(s) => {
            let rules = signing_rules(&s).map_err(err)?;
            Some(Signing {
                header: rules.header.clone(),
                tolerance: rules.tolerance.past,
                rules,
                key_env: s.key_env,
            })
        }
        None => None,
    };
    let mut ids = Vec::new();
    for (name, pattern) in file.ids {
        let pattern = pattern
            .as_str()
            .ok_or_else(|| err(format!("ids.{name}: must be a string pattern")))?;
        ids.push((
            name.clone(),
            IdPattern::parse(pattern).map_err(|e| err(format!("ids.{name}: {e}")))?,
        ));
    }
    let headers = file
        .headers
        .into_iter()
        .map(|(k, v)| {
            Ok((
                k.to_ascii_lowercase(),
                v.as_str()
                    .ok_or_else(|| err(format!("headers.{k}: must be a string")))?
                    .to_string(),
            ))
        })
        .collect::<Result<Vec<_>, CatalogError>>()?;
    let transcript = TranscriptStyle {
        agent_role: file.transcript.roles.agent,
        user_role: file.transcript.roles.user,
        agent_label: file.transcript.labels.agent,
        user_label: file.transcript.labels.user,
        line: file.transcript.line,
        turn: to_json(file.transcript.turn),
    };
    check_free_form(&file.free_form).map_err(err)?;
    let events = build_events(file.events, parts.templates, parts.answers, &origin)?;
    let lifecycles = match parts.lifecycles {
        Some((layered, origin)) => build_lifecycles(layered.read(&origin)?, &origin, &events)?,
        None => Vec::new(),
    };
    Ok(Platform {
        id: file.id.to_ascii_lowercase(),
        name: file.name,
        aliases: file
            .aliases
            .iter()
            .map(|a| a.to_ascii_lowercase())
            .collect(),
        documents: file.documents,
        event_field: file.event_field,
        call_id_fields: file.call_id_fields,
        assumed: file.assumed,
        policy,
        signing,
        format: file.format,
        max_body: file.max_body_mb.map(|mb| mb.saturating_mul(1024 * 1024)),
        headers,
        ids,
        transcript,
        free_form: file.free_form,
        events,
        lifecycles,
    })
}

/// `free_form` names keys, not paths: `call.metadata` would match no key and quietly let
/// nothing be added.
fn check_free_form(names: &[String]) -> Result<(), String> {
    match names
        .iter()
        .find(|name| name.is_empty() || name.contains(['.', '[']))
    {
        Some(name) => Err(format!(
            "free_form: `{name}` is not a key name; list keys such as \"metadata\", without a path"
        )),
        None => Ok(()),
    }
}

fn build_events(
    listed: Vec<EventFile>,
    mut templates: BTreeMap<String, Text>,
    answers: BTreeMap<String, Text>,
    origin: &str,
) -> Result<Vec<EventSpec>, CatalogError> {
    let err = |message: String| CatalogError::file(origin, message);
    let mut events = Vec::new();
    let parse = |text: Text| -> Result<(Value, String), CatalogError> {
        let value = serde_json::from_str(&text.text).map_err(|e| {
            CatalogError::file(
                &text.origin,
                format!("not JSON at line {}, column {}: {e}", e.line(), e.column()),
            )
        })?;
        Ok((value, text.origin))
    };
    // A built-in template is parsed when first rendered; an overlay's now, to refuse it here.
    let template_of = |text: Text| -> Result<(Template, String), CatalogError> {
        match text.text {
            Cow::Borrowed(built_in) => Ok((Template::built_in(built_in), text.origin)),
            Cow::Owned(_) => parse(text).map(|(value, origin)| (Template::new(value), origin)),
        }
    };
    for entry in listed {
        let text = templates.remove(&entry.name).ok_or_else(|| {
            CatalogError::file(
                format!("events/{}.json", entry.name),
                format!(
                    "event `{}` is listed in platform.toml but has no template",
                    entry.name
                ),
            )
        })?;
        let (template, template_origin) = template_of(text)?;
        let rules = event_rules(&entry).map_err(err)?;
        let optional = optional_fields(&entry, &template).map_err(err)?;
        let answer = match entry.answer {
            Some(answer) => {
                let text = answers.get(&answer.schema).ok_or_else(|| {
                    err(format!(
                        "event `{}`: answer schema `answers/{}.json` is missing",
                        entry.name, answer.schema
                    ))
                })?;
                let (schema, _) = parse(text.clone())?;
                Some(Box::new(AnswerSpec {
                    schema,
                    max_chars: answer.max_chars,
                    text_ok: answer.text_ok,
                    effect: answer.effect,
                    says: answer.says.into_iter().map(|s| (s.at, s.text)).collect(),
                    carry: answer.carry.into_iter().map(|c| (c.from, c.to)).collect(),
                    example: answer.example.map(to_json),
                    unusable: answer.unusable,
                }))
            }
            None => None,
        };
        events.push(EventSpec {
            optional,
            name: entry.name,
            description: entry.description,
            at: entry.at,
            default: entry.default,
            template,
            origin: template_origin,
            rules,
            answer,
            line: entry.line,
            function: entry.function.map(|f| FunctionSpec {
                name_at: f.name,
                args_at: f.args,
            }),
        });
    }
    // A template with no entry in platform.toml adds a custom event.
    for (name, text) in templates {
        let (template, origin) = template_of(text)?;
        events.push(EventSpec {
            name,
            description: "custom event".into(),
            at: Moment::End,
            default: true,
            template,
            origin,
            rules: PolicyOverrides::default(),
            answer: None,
            function: None,
            line: None,
            optional: Vec::new(),
        });
    }
    Ok(events)
}

/// An event's `optional` fields that its template has. One it lacks is left out rather than
/// refused: a `--payloads` overlay may replace the template and keep the built-in list. A
/// built-in template, not parsed yet, keeps them all (tests/catalog.rs checks that every
/// built-in pointer is in its template).
fn optional_fields(entry: &EventFile, template: &Template) -> Result<Vec<OptionalField>, String> {
    entry
        .optional
        .iter()
        .filter(|field| {
            template
                .parsed()
                .is_none_or(|t| t.pointer(&field.at).is_some())
        })
        .map(|field| {
            if !field.at.starts_with('/') {
                return Err(format!(
                    "event `{}`: optional `{}` is not a JSON pointer (like /call/metadata)",
                    entry.name, field.at
                ));
            }
            Ok(OptionalField {
                at: field.at.clone(),
                source: field.source.clone(),
                assumed: field.assumed,
            })
        })
        .collect()
}

/// An event's `delivery` table as overrides of the platform's policy.
fn event_rules(entry: &EventFile) -> Result<PolicyOverrides, String> {
    let Some(delivery) = &entry.delivery else {
        return Ok(PolicyOverrides::default());
    };
    let duration = |field: &str, text: &Option<String>| {
        text.as_deref()
            .map(|t| {
                crate::duration::parse(t)
                    .map_err(|e| format!("event `{}`: delivery.{field}: {e}", entry.name))
            })
            .transpose()
    };
    Ok(PolicyOverrides {
        timeout: duration("timeout", &delivery.timeout)?,
        retries: delivery.retries,
        backoff: duration("backoff", &delivery.backoff)?,
        ..PolicyOverrides::default()
    })
}

fn build_lifecycles(
    file: LifecyclesFile,
    origin: &str,
    events: &[EventSpec],
) -> Result<Vec<Lifecycle>, CatalogError> {
    let mut lifecycles = Vec::new();
    for l in file.lifecycles {
        let mut steps = Vec::new();
        for step in &l.steps {
            let (event, per_turn) = match step.strip_suffix('*') {
                Some(e) => (e, true),
                None => (step.as_str(), false),
            };
            if !events.iter().any(|e| e.name == event) {
                return Err(CatalogError::file(
                    origin,
                    format!("lifecycle `{}`: unknown event `{event}`", l.name),
                ));
            }
            steps.push(Step {
                event: event.to_string(),
                per_turn,
            });
        }
        let vars = match to_json(toml::Value::Table(l.vars)) {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        lifecycles.push(Lifecycle {
            name: l.name,
            description: l.description,
            steps,
            connected: l.connected,
            vars,
        });
    }
    Ok(lifecycles)
}

fn to_json(value: toml::Value) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Built-in templates are parsed when first rendered, and `Template::value` counts on
    /// them being JSON.
    #[test]
    fn every_built_in_template_is_json_and_waits_to_be_parsed() {
        let catalog = Catalog::load(None).expect("the built-in catalog loads");
        for platform in &catalog.platforms {
            for event in &platform.events {
                assert!(
                    event.template.parsed().is_none(),
                    "{} {}",
                    platform.id,
                    event.name
                );
                let parsed = serde_json::from_str::<Value>(event.template.text);
                assert!(parsed.is_ok(), "{} {}: {parsed:?}", platform.id, event.name);
            }
        }
    }

    #[test]
    fn signing_header_names_and_the_prefix_must_be_header_text() {
        let rules = |text: &str| signing_rules(&toml::from_str::<SigningFile>(text).unwrap());
        assert!(rules("scheme = \"token\"\nprefix = \"Bearer \"").is_ok());
        let err = rules("scheme = \"token\"\nprefix = \"Bearer\\r\\nx: 1\"").unwrap_err();
        assert!(
            err.starts_with("signing.prefix: a control character"),
            "{err}"
        );
        let err = rules("scheme = \"hmac-hex\"\nheader = \"x sig\"").unwrap_err();
        assert_eq!(err, "signing.header: `x sig` is not a header name");
        let err =
            rules("scheme = \"vapi-hmac\"\nalgorithm = \"sha256\"\ntimestamp_header = \"t:\"")
                .unwrap_err();
        assert_eq!(err, "signing.timestamp_header: `t:` is not a header name");
    }

    /// `load_one` finds each built-in platform by its id or any alias, in any case, and builds
    /// it exactly as the whole catalog does; no other name is a built-in platform.
    #[test]
    fn one_platform_is_built_as_in_the_whole_catalog_by_id_or_alias() {
        let whole = Catalog::load(None).unwrap();
        assert!(!whole.partial);
        let mut aliases = Vec::new();
        for platform in &whole.platforms {
            for name in std::iter::once(&platform.id).chain(&platform.aliases) {
                let one = Catalog::load_one(&name.to_ascii_uppercase())
                    .unwrap()
                    .unwrap_or_else(|| panic!("`{name}` finds no built-in platform"));
                assert!(one.partial);
                assert_eq!(one.platforms.len(), 1, "{name}");
                assert_eq!(format!("{:?}", one.platforms[0]), format!("{platform:?}"));
                assert_eq!(one.conversations.len(), whole.conversations.len());
            }
            aliases.extend(
                platform
                    .aliases
                    .iter()
                    .map(|a| (a.clone(), platform.id.clone())),
            );
        }
        let mut listed: Vec<_> = BUILTIN_ALIASES
            .iter()
            .map(|(alias, folder)| (alias.to_string(), folder.to_string()))
            .collect();
        listed.sort();
        aliases.sort();
        assert_eq!(listed, aliases, "BUILTIN_ALIASES is every built-in alias");
        for name in [
            "nope",
            "",
            "events",
            "uponai/events",
            "people.toml",
            "../uponai",
        ] {
            assert!(Catalog::load_one(name).unwrap().is_none(), "`{name}`");
        }
    }
}
