//! Webhook signatures as the platforms compute them, and their verification.
//!
//! The one scheme so far is `retell` (UponAI's `x-retell-signature`): the header value is
//! `v=<T>,d=<hex(HMAC-SHA256(key, body || T))>`, with T the send time in Unix milliseconds.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::secret::Secret;

type HmacSha256 = Hmac<Sha256>;

/// A signature algorithm a platform file can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Retell,
}

impl FromStr for Scheme {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "retell" => Ok(Scheme::Retell),
            other => Err(format!("unknown signing scheme `{other}` (known: retell)")),
        }
    }
}

/// What a receiver concludes about one request's signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    /// Well-formed, but the digest does not match this key and body.
    Invalid,
    /// Matches, but its time is further from the clock than the tolerance.
    /// Positive skew: the signature is older than now; negative: from the future.
    Stale {
        skew_ms: i64,
    },
    /// The header is absent.
    Missing,
    /// The header does not have the scheme's shape.
    Malformed(String),
    /// The platform does not sign, or no key was given.
    Unsigned,
    /// Not checked: the receiver refused the body for its size (`verify` never says this).
    TooLarge {
        bytes: u64,
        limit: u64,
    },
    /// Not checked: the body had not all arrived by the receiver's body deadline.
    TimedOut {
        bytes: u64,
    },
    /// Not checked: holding the body would have taken the receiver over its memory budget.
    Overloaded {
        bytes: u64,
    },
}

impl Verdict {
    /// The one-word name used in tables, JSON and counts.
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Stale { .. } => "stale",
            Verdict::Missing => "missing",
            Verdict::Malformed(_) => "malformed",
            Verdict::Unsigned => "unsigned",
            Verdict::TooLarge { .. } => "too_large",
            Verdict::TimedOut { .. } => "timed_out",
            Verdict::Overloaded { .. } => "overloaded",
        }
    }

    /// Whether a verifying receiver should accept the request.
    pub fn accepted(&self) -> bool {
        matches!(self, Verdict::Valid | Verdict::Unsigned)
    }

    pub const WORDS: [&'static str; 9] = [
        "valid",
        "invalid",
        "stale",
        "missing",
        "malformed",
        "unsigned",
        "too_large",
        "timed_out",
        "overloaded",
    ];
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Stale { skew_ms } => {
                let by = crate::duration::short(Duration::from_millis(skew_ms.unsigned_abs()));
                if *skew_ms >= 0 {
                    write!(f, "stale by {by}")
                } else {
                    write!(f, "stale: {by} in the future")
                }
            }
            Verdict::Malformed(why) => write!(f, "malformed: {why}"),
            Verdict::TooLarge { .. } => f.write_str("too large"),
            Verdict::TimedOut { .. } => f.write_str("timed out"),
            other => f.write_str(other.word()),
        }
    }
}

/// The HMAC over the body bytes followed by the decimal digits of `timestamp_ms`.
/// Fed in parts: the body need not be valid UTF-8.
fn retell_mac(key: &Secret, body: &[u8], timestamp_ms: u64) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key.expose().as_bytes())
        .expect("HMAC-SHA256 accepts keys of any length");
    mac.update(body);
    mac.update(timestamp_ms.to_string().as_bytes());
    mac
}

/// The header value for `body` signed at `timestamp_ms`.
pub fn sign(scheme: Scheme, key: &Secret, body: &[u8], timestamp_ms: u64) -> String {
    match scheme {
        Scheme::Retell => {
            let digest = retell_mac(key, body, timestamp_ms).finalize().into_bytes();
            format!("v={timestamp_ms},d={}", hex::encode(digest))
        }
    }
}

/// Splits `v=<digits>,d=<64 lowercase hex>`, strictly: the official Python SDK accepts only
/// lowercase hex, so anything looser would pass here and fail there.
fn parse_retell(header: &str) -> Result<(u64, [u8; 32]), String> {
    const LIMIT: usize = 200;
    if header.len() > LIMIT {
        return Err(format!(
            "{} bytes long; a signature is about 80",
            header.len()
        ));
    }
    let (v, d) = header
        .split_once(',')
        .ok_or_else(|| "expected v=<ms>,d=<hex>".to_string())?;
    let timestamp = v
        .strip_prefix("v=")
        .ok_or_else(|| "expected v=<ms>,d=<hex>".to_string())?;
    if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the v= timestamp is not Unix milliseconds".into());
    }
    if timestamp.len() > 1 && timestamp.starts_with('0') {
        // The SDK signs the digits as written; hookcli would sign them as a number, so
        // `v=01714…` would pass here and fail there.
        return Err("the v= timestamp has a leading zero".into());
    }
    let timestamp: u64 = timestamp
        .parse()
        .map_err(|_| "the v= timestamp is out of range".to_string())?;
    let digest = d
        .strip_prefix("d=")
        .ok_or_else(|| "expected d=<hex> after the comma".to_string())?;
    if digest.len() != 64
        || !digest
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err("the d= digest is not 64 lowercase hex digits".into());
    }
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(digest, &mut bytes).map_err(|_| "the d= digest is not hex".to_string())?;
    Ok((timestamp, bytes))
}

/// Checks a signature header against `body`, in constant time, with `tolerance` either side of
/// `now_ms`. The digest is checked before the time, so `stale` always means "right key, old".
pub fn verify(
    scheme: Scheme,
    key: &Secret,
    body: &[u8],
    header: Option<&str>,
    now_ms: u64,
    tolerance: Duration,
) -> Verdict {
    let Some(header) = header else {
        return Verdict::Missing;
    };
    match scheme {
        Scheme::Retell => {
            let (timestamp, digest) = match parse_retell(header.trim()) {
                Ok(parts) => parts,
                Err(why) => return Verdict::Malformed(why),
            };
            if retell_mac(key, body, timestamp)
                .verify_slice(&digest)
                .is_err()
            {
                return Verdict::Invalid;
            }
            // In i128: both are any u64 a header or --now can carry, and their difference
            // must neither overflow nor wrap (u64::MAX as i64 is -1, a "valid" 1 ms skew).
            let skew_ms = i128::from(now_ms) - i128::from(timestamp);
            if skew_ms.unsigned_abs() > tolerance.as_millis() {
                let skew_ms = skew_ms.clamp(i64::MIN.into(), i64::MAX.into()) as i64;
                return Verdict::Stale { skew_ms };
            }
            Verdict::Valid
        }
    }
}

/// The current Unix time in milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "key_test_hookcli";
    const T: u64 = 1714608475945;
    const FIVE_MIN: Duration = Duration::from_secs(300);

    fn key() -> Secret {
        Secret::new(KEY)
    }

    #[test]
    fn reproduces_the_sdk_vectors() {
        let body = br#"{"event":"call_started","call":{"call_id":"call_0001"}}"#;
        assert_eq!(
            sign(Scheme::Retell, &key(), body, T),
            "v=1714608475945,d=16c3115b3e1b12e7df79c663476918f535042d3c1d82ddd725aeaaf0878d883e"
        );
        let body = r#"{"event":"call_ended","call":{"call_id":"Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6","transcript":"Agent: Merhaba! 👋 Café?"}}"#;
        assert_eq!(
            sign(Scheme::Retell, &key(), body.as_bytes(), T),
            "v=1714608475945,d=99385dae52a3ab95a3b04ae38bccebc903345a40a12d5daf3a68d01fcc46e039"
        );
    }

    #[test]
    fn verifies_and_rejects() {
        let body = b"{\"a\":1}";
        let header = sign(Scheme::Retell, &key(), body, T);
        let check = |body: &[u8], header: Option<&str>, now: u64| {
            verify(Scheme::Retell, &key(), body, header, now, FIVE_MIN)
        };
        assert_eq!(check(body, Some(&header), T + 1000), Verdict::Valid);
        assert_eq!(check(b"{\"a\":2}", Some(&header), T), Verdict::Invalid);
        assert_eq!(check(body, None, T), Verdict::Missing);
        assert_eq!(
            check(body, Some(&header), T + 432_000),
            Verdict::Stale { skew_ms: 432_000 }
        );
        assert_eq!(
            check(body, Some(&header), T + 432_000).to_string(),
            "stale by 7m12s"
        );
        assert!(
            matches!(check(body, Some(&header), T - 600_000), Verdict::Stale { skew_ms } if skew_ms < 0)
        );
        let wrong_key = verify(
            Scheme::Retell,
            &Secret::new("other"),
            body,
            Some(&header),
            T,
            FIVE_MIN,
        );
        assert_eq!(wrong_key, Verdict::Invalid);
    }

    #[test]
    fn malformed_headers_never_panic() {
        let upper = sign(Scheme::Retell, &key(), b"x", T)
            .to_uppercase()
            .replace("V=", "v=")
            .replace(",D=", ",d=");
        let long = "v=1,d=".to_string() + &"a".repeat(16 * 1024);
        for header in [
            "garbage",
            "v=",
            "v=1,d=zz",
            "v=,d=",
            ",",
            "d=abc,v=1",
            "v=99999999999999999999999,d=00",
            upper.as_str(),
            long.as_str(),
            "",
        ] {
            let verdict = verify(Scheme::Retell, &key(), b"x", Some(header), T, FIVE_MIN);
            assert!(
                matches!(verdict, Verdict::Malformed(_)),
                "{header:.40}: {verdict:?}"
            );
        }
    }

    #[test]
    fn a_leading_zero_in_the_timestamp_is_refused_with_its_own_reason() {
        // The digest is right for T: only the written digits differ, which the SDK signs.
        let zero = sign(Scheme::Retell, &key(), b"x", T).replacen("v=", "v=0", 1);
        let verdict = verify(Scheme::Retell, &key(), b"x", Some(&zero), T, FIVE_MIN);
        assert_eq!(
            verdict,
            Verdict::Malformed("the v= timestamp has a leading zero".into())
        );
        let at_zero = sign(Scheme::Retell, &key(), b"x", 0);
        let verdict = verify(Scheme::Retell, &key(), b"x", Some(&at_zero), 0, FIVE_MIN);
        assert_eq!(verdict, Verdict::Valid, "v=0 itself is a number as written");
    }
}
