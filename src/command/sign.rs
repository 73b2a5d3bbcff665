//! `hookcli sign` and `hookcli verify`: the signature scheme on its own.

use std::path::Path;

use anyhow::Result;

use super::{load_catalog, platform_of, read_input};
use crate::catalog::{Catalog, Platform, Signing};
use crate::cli::{SignArgs, VerifyArgs};
use crate::config::{Env, key_sources};
use crate::error::{UserError, exit};
use crate::secret::Secret;
use crate::signing::{self, Verdict};

fn signing_of<'a>(catalog: &Catalog, platform: &'a Platform) -> Result<&'a Signing> {
    platform.signing.as_ref().ok_or_else(|| {
        let signers: Vec<String> = catalog
            .platforms
            .iter()
            .filter_map(|p| {
                Some(format!(
                    "-p {} signs with {}",
                    p.label(),
                    p.signing.as_ref()?.header
                ))
            })
            .collect();
        let hint = if signers.is_empty() {
            "no platform of the catalog signs its webhooks".to_string()
        } else {
            signers.join("; ")
        };
        UserError::new(format!("{} does not sign its webhooks", platform.id))
            .hint(hint)
            .into()
    })
}

fn key_of(flag: &crate::cli::KeyArg, platform: &Platform) -> Result<Secret> {
    Env::process()
        .user_key(flag, None, platform)
        .ok_or_else(|| {
            UserError::new("no key given")
                .hint(format!("pass it with {}", key_sources(platform)))
                .into()
        })
}

/// The URL a scheme that signs it needs, or the user error asking for it.
fn url_for(flag: Option<&str>, signing: &Signing, platform: &Platform) -> Result<String> {
    match flag {
        Some(url) => Ok(reqwest::Url::parse(url)
            .map(|_| url.to_string())
            .map_err(|e| {
                UserError::new(format!("--url `{url}` is not a URL: {e}"))
                    .hint("give the full URL the platform posts to, like https://example.com/twilio/status?x=1")
            })?),
        None if signing.rules.properties().covers_url => Err(UserError::new(format!(
            "{} signs the URL as well as the body, and no --url was given",
            platform.id
        ))
        .hint("give --url with the exact URL the request goes to, query string included")
        .into()),
        None => Ok(String::new()),
    }
}

pub fn sign(args: SignArgs, overlay: Option<&Path>) -> Result<u8> {
    let catalog = load_catalog(overlay)?;
    let platform = platform_of(&catalog, &args.platform)?;
    let signing = signing_of(&catalog, platform)?;
    let key = key_of(&args.key, platform)?;
    crate::config::usable_key(platform, &key)?;
    let url = url_for(args.url.as_deref(), signing, platform)?;
    let body = read_input(args.file.as_deref(), "body")?;
    let at = args.timestamp.unwrap_or_else(signing::now_ms);
    let headers = signing.rules.sign(&key, &url, &body, at)?;
    for (name, value) in headers {
        outln!("{name}: {value}");
    }
    Ok(exit::OK)
}

/// `Name: value` from --header.
fn header_line(line: &str) -> Result<(String, String)> {
    match line.split_once(':') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_ascii_lowercase(), value.trim().to_string()))
        }
        _ => Err(
            UserError::new(format!("--header `{line}` is not 'Name: value'"))
                .hint("write it like --header 'webhook-id: msg_123'")
                .into(),
        ),
    }
}

pub fn verify(args: VerifyArgs, overlay: Option<&Path>) -> Result<u8> {
    let catalog = load_catalog(overlay)?;
    let platform = platform_of(&catalog, &args.platform)?;
    let signing = signing_of(&catalog, platform)?;
    let key = key_of(&args.key, platform)?;
    crate::config::usable_key(platform, &key)?;
    let url = url_for(args.url.as_deref(), signing, platform)?;
    let body = read_input(args.file.as_deref(), "body")?;
    let now = args.now.unwrap_or_else(signing::now_ms);
    let mut rules = signing.rules.clone();
    if let Some(tolerance) = args.tolerance {
        rules.tolerance.past = tolerance;
        if rules.tolerance.future.is_some() {
            rules.tolerance.future = Some(tolerance);
        }
    }
    let mut headers = args
        .headers
        .iter()
        .map(|line| header_line(line))
        .collect::<Result<Vec<_>>>()?;
    if let Some(signature) = &args.signature {
        // Accept the whole header line as printed by `hookcli sign`, too.
        let value = signature.trim();
        let prefix = format!("{}:", signing.header);
        let value = if value.to_ascii_lowercase().starts_with(&prefix) {
            value[prefix.len()..].trim()
        } else {
            value
        };
        // An empty value is no signature at all (`--signature "$HEADER"` with the header
        // absent): `missing`, as the receiver says of a request without the header.
        if !value.is_empty() {
            headers.push((signing.header.clone(), value.to_string()));
        }
    }
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let signed = signing::Signed {
        url: (!url.is_empty()).then_some(url.as_str()),
        body: &body,
        headers: &pairs,
    };
    let verdict = rules.verify(&key, &signed, now);
    outln!("{verdict}");
    Ok(if verdict == Verdict::Valid {
        exit::OK
    } else {
        exit::FAILED
    })
}
