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

pub fn sign(args: SignArgs, overlay: Option<&Path>) -> Result<u8> {
    let catalog = load_catalog(overlay)?;
    let platform = platform_of(&catalog, &args.platform)?;
    let signing = signing_of(&catalog, platform)?;
    let key = key_of(&args.key, platform)?;
    let body = read_input(args.file.as_deref(), "body")?;
    let at = args.timestamp.unwrap_or_else(signing::now_ms);
    outln!(
        "{}: {}",
        signing.header,
        signing::sign(signing.scheme, &key, &body, at)
    );
    Ok(exit::OK)
}

pub fn verify(args: VerifyArgs, overlay: Option<&Path>) -> Result<u8> {
    let catalog = load_catalog(overlay)?;
    let platform = platform_of(&catalog, &args.platform)?;
    let signing = signing_of(&catalog, platform)?;
    let key = key_of(&args.key, platform)?;
    let body = read_input(args.file.as_deref(), "body")?;
    let now = args.now.unwrap_or_else(signing::now_ms);
    let tolerance = args.tolerance.unwrap_or(signing.tolerance);
    // Accept the whole header line as printed by `hookcli sign`, too.
    let value = args.signature.trim();
    let prefix = format!("{}:", signing.header);
    let value = if value.to_ascii_lowercase().starts_with(&prefix) {
        value[prefix.len()..].trim()
    } else {
        value
    };
    // An empty value is no signature at all (`--signature "$HEADER"` with the header absent):
    // `missing`, as the receiver says of a request without the header.
    let value = Some(value).filter(|v| !v.is_empty());
    let verdict = signing::verify(signing.scheme, &key, &body, value, now, tolerance);
    outln!("{verdict}");
    Ok(if verdict == Verdict::Valid {
        exit::OK
    } else {
        exit::FAILED
    })
}
