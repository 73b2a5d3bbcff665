//! Webhook signatures as the platforms compute them, and their verification.
//!
//! A small closed set of schemes ([`Scheme`]); a platform.toml names one in `[signing]` with its
//! parameters ([`Rules`]). Each scheme signs (writing one or more headers), verifies strictly and
//! in constant time, has its own parse errors, and declares what it covers ([`Properties`]), so
//! that `check` derives its signature cases from the scheme instead of naming platforms.
//!
//! | scheme | headers | signed message |
//! |---|---|---|
//! | `retell` | `x-retell-signature: v=<ms>,d=<hex>` | body + ms (HMAC-SHA256) |
//! | `elevenlabs` | `elevenlabs-signature: t=<s>,v0=<hex>` | `"{t}.{body}"` (HMAC-SHA256) |
//! | `standard-webhooks` | `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<b64>` | `"{id}.{ts}.{body}"`, key `whsec_`+base64 |
//! | `twilio` | `x-twilio-signature: <b64>` | URL + sorted form params (HMAC-SHA1) |
//! | `hmac-hex` | one header, `<hex>` | the body |
//! | `token` | one header, `<prefix><key>` | nothing: a shared secret |
//! | `vapi-hmac` | `x-signature`, `x-timestamp` | `"{ts}.{body}"`, algorithm and encoding given |

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use crate::secret::Secret;

/// A signature algorithm a platform file can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Retell,
    ElevenLabs,
    StandardWebhooks,
    Twilio,
    HmacHex,
    Token,
    VapiHmac,
}

impl Scheme {
    pub const ALL: [Scheme; 7] = [
        Scheme::Retell,
        Scheme::ElevenLabs,
        Scheme::StandardWebhooks,
        Scheme::Twilio,
        Scheme::HmacHex,
        Scheme::Token,
        Scheme::VapiHmac,
    ];

    /// The platform must name the algorithm: Vapi's HMAC credential has no default.
    pub fn algorithm_required(self) -> bool {
        self == Scheme::VapiHmac
    }

    pub fn name(self) -> &'static str {
        match self {
            Scheme::Retell => "retell",
            Scheme::ElevenLabs => "elevenlabs",
            Scheme::StandardWebhooks => "standard-webhooks",
            Scheme::Twilio => "twilio",
            Scheme::HmacHex => "hmac-hex",
            Scheme::Token => "token",
            Scheme::VapiHmac => "vapi-hmac",
        }
    }
}

impl FromStr for Scheme {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Scheme::ALL
            .into_iter()
            .find(|scheme| scheme.name() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Scheme::ALL.iter().map(|s| s.name()).collect();
                format!("unknown signing scheme `{s}` (known: {})", known.join(", "))
            })
    }
}

/// The HMAC's hash, where a scheme lets the platform choose (vapi-hmac, hmac-hex).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sha1" => Ok(Algorithm::Sha1),
            "sha256" => Ok(Algorithm::Sha256),
            "sha512" => Ok(Algorithm::Sha512),
            other => Err(format!(
                "unknown algorithm `{other}` (known: sha1, sha256, sha512)"
            )),
        }
    }
}

impl Algorithm {
    fn digest_len(self) -> usize {
        match self {
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        }
    }
}

/// How a digest is written in a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Lowercase hex: what the SDKs compare against (`hexdigest()`).
    Hex,
    /// Standard base64 with padding.
    Base64,
}

impl FromStr for Encoding {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "hex" => Ok(Encoding::Hex),
            "base64" => Ok(Encoding::Base64),
            other => Err(format!("unknown encoding `{other}` (known: hex, base64)")),
        }
    }
}

/// How the key the user gives becomes the HMAC key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFormat {
    /// Its UTF-8 bytes, as given.
    Text,
    /// Base64, decoded.
    Base64,
    /// `whsec_` followed by base64 (Standard Webhooks): the prefix is stripped, the rest decoded.
    Whsec,
}

impl FromStr for KeyFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(KeyFormat::Text),
            "base64" => Ok(KeyFormat::Base64),
            "whsec" => Ok(KeyFormat::Whsec),
            other => Err(format!(
                "unknown key format `{other}` (known: text, base64, whsec)"
            )),
        }
    }
}

/// The unit of a timestamp written in a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeUnit {
    Seconds,
    Millis,
}

impl FromStr for TimeUnit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "s" => Ok(TimeUnit::Seconds),
            "ms" => Ok(TimeUnit::Millis),
            other => Err(format!("unknown time unit `{other}` (known: s, ms)")),
        }
    }
}

impl TimeUnit {
    fn write(self, at_ms: u64) -> u64 {
        match self {
            TimeUnit::Seconds => at_ms / 1000,
            TimeUnit::Millis => at_ms,
        }
    }

    fn to_ms(self, value: u64) -> u64 {
        match self {
            TimeUnit::Seconds => value.saturating_mul(1000),
            TimeUnit::Millis => value,
        }
    }
}

/// How far a signature's time may be from the receiver's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tolerance {
    pub past: Duration,
    /// `None`: a time in the future is not checked (the ElevenLabs SDKs do not).
    pub future: Option<Duration>,
}

impl Tolerance {
    /// The same bound either side of the clock.
    pub fn both(d: Duration) -> Self {
        Tolerance {
            past: d,
            future: Some(d),
        }
    }
}

/// What a scheme's signature covers, for check's cases and for `hookcli platforms`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Properties {
    /// The signature carries its time, bounded by `tolerance`.
    pub timestamp: bool,
    pub tolerance: Option<Tolerance>,
    /// A changed body fails verification.
    pub covers_body: bool,
    /// A request to another URL fails verification.
    pub covers_url: bool,
    /// Several keys may sign one request (key rotation).
    pub rotation: bool,
    /// The headers a signature writes, lowercase.
    pub headers: Vec<String>,
}

/// Why a key cannot be used with a scheme.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the key is empty")]
    Empty,
    #[error("the key is not base64{0}")]
    NotBase64(&'static str),
    /// A token goes into a header as given, and a header cannot carry a line break.
    #[error("the key has a control character (a line break?), which its header cannot carry")]
    NotHeaderText,
}

/// Whether `bytes` can be a header value as given: no control character but a tab. Asked of
/// the http crate, whose rule it is; only when a key or the catalog is read, never per request.
pub fn header_text(bytes: &[u8]) -> bool {
    hyper::header::HeaderValue::from_bytes(bytes).is_ok()
}

/// A scheme with the parameters a platform gives it (`[signing]` in platform.toml).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    pub scheme: Scheme,
    /// The signature (or token) header, lowercase.
    pub header: String,
    /// standard-webhooks: the message id header.
    pub id_header: String,
    /// standard-webhooks and vapi-hmac: the timestamp header.
    pub timestamp_header: String,
    /// token: written before the key (`Bearer `).
    pub prefix: String,
    pub algorithm: Algorithm,
    pub encoding: Encoding,
    pub key_format: KeyFormat,
    /// The unit of the written timestamp (vapi-hmac; fixed for the others).
    pub unit: TimeUnit,
    pub tolerance: Tolerance,
}

impl Rules {
    /// The scheme with its documented defaults: header names, algorithm, tolerance.
    pub fn new(scheme: Scheme) -> Rules {
        let five_min = Tolerance::both(Duration::from_secs(300));
        let base = Rules {
            scheme,
            header: String::new(),
            id_header: String::new(),
            timestamp_header: String::new(),
            prefix: String::new(),
            algorithm: Algorithm::Sha256,
            encoding: Encoding::Hex,
            key_format: KeyFormat::Text,
            unit: TimeUnit::Seconds,
            tolerance: five_min,
        };
        match scheme {
            Scheme::Retell => Rules {
                header: "x-retell-signature".into(),
                unit: TimeUnit::Millis,
                ..base
            },
            Scheme::ElevenLabs => Rules {
                header: "elevenlabs-signature".into(),
                tolerance: Tolerance {
                    past: Duration::from_secs(30 * 60),
                    future: None,
                },
                ..base
            },
            Scheme::StandardWebhooks => Rules {
                header: "webhook-signature".into(),
                id_header: "webhook-id".into(),
                timestamp_header: "webhook-timestamp".into(),
                encoding: Encoding::Base64,
                key_format: KeyFormat::Whsec,
                ..base
            },
            Scheme::Twilio => Rules {
                header: "x-twilio-signature".into(),
                algorithm: Algorithm::Sha1,
                encoding: Encoding::Base64,
                ..base
            },
            Scheme::HmacHex => Rules {
                header: "x-webhook-signature".into(),
                ..base
            },
            Scheme::Token => Rules {
                header: "authorization".into(),
                prefix: "Bearer ".into(),
                ..base
            },
            Scheme::VapiHmac => Rules {
                header: "x-signature".into(),
                timestamp_header: "x-timestamp".into(),
                unit: TimeUnit::Millis,
                ..base
            },
        }
    }

    /// The headers a signature is read from, as [`Rules::properties`] lists them (without
    /// making Strings: verify runs per request).
    fn signed_headers(&self) -> Vec<&str> {
        match self.scheme {
            Scheme::StandardWebhooks => vec![
                self.id_header.as_str(),
                self.timestamp_header.as_str(),
                self.header.as_str(),
            ],
            Scheme::VapiHmac => vec![self.header.as_str(), self.timestamp_header.as_str()],
            _ => vec![self.header.as_str()],
        }
    }

    pub fn properties(&self) -> Properties {
        let timed = matches!(
            self.scheme,
            Scheme::Retell | Scheme::ElevenLabs | Scheme::StandardWebhooks | Scheme::VapiHmac
        );
        let headers = self
            .signed_headers()
            .into_iter()
            .map(String::from)
            .collect();
        Properties {
            timestamp: timed,
            tolerance: timed.then_some(self.tolerance),
            covers_body: self.scheme != Scheme::Token,
            covers_url: self.scheme == Scheme::Twilio,
            rotation: self.scheme == Scheme::StandardWebhooks,
            headers,
        }
    }

    /// The HMAC key the user's key stands for.
    pub fn key_bytes(&self, key: &Secret) -> Result<Vec<u8>, KeyError> {
        let text = key.expose();
        let bytes = match self.key_format {
            KeyFormat::Text => text.as_bytes().to_vec(),
            KeyFormat::Base64 => decode_base64(text).ok_or(KeyError::NotBase64(""))?,
            KeyFormat::Whsec => decode_base64(text.strip_prefix("whsec_").unwrap_or(text))
                .ok_or(KeyError::NotBase64(" after its whsec_ prefix"))?,
        };
        if bytes.is_empty() {
            return Err(KeyError::Empty);
        }
        if self.scheme == Scheme::Token && !header_text(text.as_bytes()) {
            return Err(KeyError::NotHeaderText);
        }
        Ok(bytes)
    }

    /// A fresh random key in this scheme's format (`whsec_...` for Standard Webhooks).
    pub fn generate_key(&self) -> Secret {
        use rand::Rng;
        let bytes: [u8; 24] = rand::thread_rng().r#gen();
        match self.key_format {
            KeyFormat::Text => Secret::generate(),
            KeyFormat::Base64 => Secret::new(B64.encode(bytes)),
            KeyFormat::Whsec => Secret::new(format!("whsec_{}", B64.encode(bytes))),
        }
    }

    /// The headers that sign `body`, sent to `url`, at `at_ms`: (lowercase name, value).
    pub fn sign(
        &self,
        key: &Secret,
        url: &str,
        body: &[u8],
        at_ms: u64,
    ) -> Result<Vec<(String, String)>, KeyError> {
        let mac = self.keyed_mac(key)?;
        let mut headers = Vec::with_capacity(3);
        self.sign_with(&mac, key, url, body, at_ms, &mut |name, value| {
            // Every piece is text: ASCII, or the key and prefix as given.
            let value = value.iter().map(|piece| String::from_utf8_lossy(piece));
            headers.push((name.to_string(), value.collect()))
        });
        Ok(headers)
    }

    /// This scheme with `key` made ready for many signatures (see [`Keyed`]).
    pub fn keyed(&self, key: &Secret) -> Result<Keyed, KeyError> {
        Ok(Keyed {
            mac: self.keyed_mac(key)?,
            rules: self.clone(),
            key: key.clone(),
        })
    }

    fn keyed_mac(&self, key: &Secret) -> Result<KeyedMac, KeyError> {
        Ok(KeyedMac::new(self.mac_algorithm(), &self.key_bytes(key)?))
    }

    /// The HMAC's hash: fixed by the scheme for three of them, the platform's for the rest.
    fn mac_algorithm(&self) -> Algorithm {
        match self.scheme {
            Scheme::Retell | Scheme::ElevenLabs | Scheme::StandardWebhooks => Algorithm::Sha256,
            _ => self.algorithm,
        }
    }

    /// [`Keyed::sign_each`], with `mac` keyed with `key` for this scheme.
    fn sign_with(
        &self,
        mac: &KeyedMac,
        key: &Secret,
        url: &str,
        body: &[u8],
        at_ms: u64,
        write: &mut dyn FnMut(&str, &[&[u8]]),
    ) {
        let mut digits = itoa::Buffer::new();
        match self.scheme {
            Scheme::Retell => {
                // Retell signs the body bytes followed by the decimal digits of the time in ms.
                let at = digits.format(at_ms).as_bytes();
                let digest = DigestText::new(Encoding::Hex, &mac.of(&[body, at]));
                write(&self.header, &[b"v=", at, b",d=", digest.as_bytes()]);
            }
            Scheme::ElevenLabs => {
                let t = digits.format(at_ms / 1000).as_bytes();
                let digest = DigestText::new(Encoding::Hex, &mac.of(&[t, b".", body]));
                write(&self.header, &[b"t=", t, b",v0=", digest.as_bytes()]);
            }
            Scheme::StandardWebhooks => {
                let id = message_id(body);
                let ts = digits.format(at_ms / 1000).as_bytes();
                let message = [id.as_bytes(), b".", ts, b".", body];
                let digest = DigestText::new(Encoding::Base64, &mac.of(&message));
                write(&self.id_header, &[id.as_bytes()]);
                write(&self.timestamp_header, &[ts]);
                write(&self.header, &[b"v1,", digest.as_bytes()]);
            }
            Scheme::Twilio => {
                let message = twilio_message(url, body);
                let digest = DigestText::new(Encoding::Base64, &mac.of(&[message.as_bytes()]));
                write(&self.header, &[digest.as_bytes()]);
            }
            Scheme::HmacHex => {
                let digest = DigestText::new(self.encoding, &mac.of(&[body]));
                write(&self.header, &[digest.as_bytes()]);
            }
            Scheme::Token => {
                let key = key.expose().as_bytes();
                write(&self.header, &[self.prefix.as_bytes(), key]);
            }
            Scheme::VapiHmac => {
                let ts = digits.format(self.unit.write(at_ms)).as_bytes();
                let digest = DigestText::new(self.encoding, &mac.of(&[ts, b".", body]));
                write(&self.header, &[digest.as_bytes()]);
                write(&self.timestamp_header, &[ts]);
            }
        }
    }

    /// Values of the signature header a strict verifier refuses, with how a report shows
    /// them: garbage, the scheme's shape around a digest that is not one, and 16 KB.
    pub fn malformed_samples(&self, now_ms: u64) -> Vec<(String, String)> {
        let long = "a".repeat(16 * 1024);
        let shaped = match self.scheme {
            Scheme::Retell => format!("v={now_ms},d=zz"),
            Scheme::ElevenLabs => format!("t={},v0=zz", now_ms / 1000),
            Scheme::StandardWebhooks => "v1,zz".to_string(),
            Scheme::Token => self.prefix.trim().to_string(),
            Scheme::Twilio | Scheme::HmacHex | Scheme::VapiHmac => "zz".to_string(),
        };
        vec![
            ("garbage".to_string(), "`garbage`".to_string()),
            (shaped.clone(), format!("`{}`", shaped.trim())),
            (
                format!("{}{long}", self.prefix),
                "a 16 KB value".to_string(),
            ),
        ]
    }

    /// Checks a request's signature headers (lowercase names) against its body and, for a
    /// scheme that covers it, the URL it was sent to. Constant time in the digest; the digest
    /// is checked before the time, so `stale` always means "right key, wrong time".
    pub fn verify(&self, key: &Secret, request: &Signed<'_>, now_ms: u64) -> Verdict {
        let k = match self.key_bytes(key) {
            Ok(k) => k,
            Err(e) => return Verdict::Malformed(format!("unusable key: {e}")),
        };
        let mut values = Vec::with_capacity(3);
        for name in self.signed_headers() {
            let mut given = request
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name));
            let Some((_, value)) = given.next() else {
                return Verdict::Missing;
            };
            // Two of one header: which one counts would depend on their order, so neither does.
            if given.next().is_some() {
                return Verdict::Malformed(format!("{name} is given more than once"));
            }
            values.push(value.trim());
        }
        let checked = match self.scheme {
            Scheme::Retell => verify_retell(&k, request.body, values[0]),
            Scheme::ElevenLabs => verify_elevenlabs(&k, request.body, values[0]),
            Scheme::StandardWebhooks => {
                verify_standard(&k, request.body, values[0], values[1], values[2])
            }
            Scheme::Twilio => match request.url {
                Some(url) => verify_twilio(self, &k, url, request.body, values[0]),
                None => Err(Verdict::Malformed(
                    "the URL the request was sent to is not known".into(),
                )),
            },
            Scheme::HmacHex => self
                .decode(values[0])
                .and_then(|digest| mac_matches(self.algorithm, &k, request.body, &digest))
                .map(|()| None),
            Scheme::Token => verify_token(self, key, values[0]),
            Scheme::VapiHmac => verify_vapi(self, &k, request.body, values[0], values[1]),
        };
        match checked {
            Err(verdict) => verdict,
            Ok(None) => Verdict::Valid,
            Ok(Some(at_ms)) => self.judge_time(at_ms, now_ms),
        }
    }

    fn decode(&self, value: &str) -> Result<Vec<u8>, Verdict> {
        let len = self.algorithm.digest_len();
        let bytes = match self.encoding {
            Encoding::Hex => strict_hex(value, len),
            Encoding::Base64 => strict_base64(value, len),
        };
        bytes.map_err(Verdict::Malformed)
    }

    /// `Valid`, or `Stale` when `at_ms` is further from `now_ms` than the tolerance.
    fn judge_time(&self, at_ms: u64, now_ms: u64) -> Verdict {
        // In i128: both are any u64 a header or --now can carry, and their difference
        // must neither overflow nor wrap (u64::MAX as i64 is -1, a "valid" 1 ms skew).
        let skew_ms = i128::from(now_ms) - i128::from(at_ms);
        let limit = if skew_ms >= 0 {
            Some(self.tolerance.past)
        } else {
            self.tolerance.future
        };
        match limit {
            Some(limit) if skew_ms.unsigned_abs() > limit.as_millis() => {
                let skew_ms = skew_ms.clamp(i64::MIN.into(), i64::MAX.into()) as i64;
                Verdict::Stale { skew_ms }
            }
            _ => Verdict::Valid,
        }
    }
}

/// A request as a verifier sees it.
#[derive(Clone, Copy, Debug)]
pub struct Signed<'a> {
    /// The full URL it was sent to, where known (twilio needs it).
    pub url: Option<&'a str>,
    pub body: &'a [u8],
    /// Its headers, any case.
    pub headers: &'a [(&'a str, &'a str)],
}

/// A scheme and a key made ready for many signatures: the key decoded and the HMAC keyed
/// once, so that each signature costs the MAC of its message and the writing of its headers.
/// `hookcli load` signs one per delivery; [`Rules::sign`] is this, collected.
#[derive(Clone)]
pub struct Keyed {
    rules: Rules,
    mac: KeyedMac,
    /// The token scheme's header carries the key itself.
    key: Secret,
}

impl Keyed {
    /// The headers that sign `body`, sent to `url`, at `at_ms`, handed to `write` one by one
    /// as (lowercase name, the value's pieces in order), in the order a request carries them.
    pub fn sign_each(
        &self,
        url: &str,
        body: &[u8],
        at_ms: u64,
        write: &mut dyn FnMut(&str, &[&[u8]]),
    ) {
        let (mac, key) = (&self.mac, &self.key);
        self.rules.sign_with(mac, key, url, body, at_ms, write);
    }

    /// Whether a signature writes the header `name` (lowercase).
    pub fn writes_header(&self, name: &str) -> bool {
        self.rules.signed_headers().contains(&name)
    }
}

/// An HMAC with its key absorbed: each MAC starts from a copy of it.
#[derive(Clone)]
enum KeyedMac {
    Sha1(Hmac<Sha1>),
    Sha256(Hmac<Sha256>),
    Sha512(Hmac<Sha512>),
}

impl KeyedMac {
    fn new(algorithm: Algorithm, key: &[u8]) -> Self {
        const ANY_LENGTH: &str = "HMAC accepts keys of any length";
        match algorithm {
            Algorithm::Sha1 => KeyedMac::Sha1(KeyInit::new_from_slice(key).expect(ANY_LENGTH)),
            Algorithm::Sha256 => KeyedMac::Sha256(KeyInit::new_from_slice(key).expect(ANY_LENGTH)),
            Algorithm::Sha512 => KeyedMac::Sha512(KeyInit::new_from_slice(key).expect(ANY_LENGTH)),
        }
    }

    /// The MAC of the parts one after the other, without copying them into one message.
    fn of(&self, parts: &[&[u8]]) -> DigestBytes {
        fn run<M: Mac + Clone>(keyed: &M, parts: &[&[u8]]) -> DigestBytes {
            let mut mac = keyed.clone();
            for part in parts {
                mac.update(part);
            }
            DigestBytes::new(&mac.finalize().into_bytes())
        }
        match self {
            KeyedMac::Sha1(keyed) => run(keyed, parts),
            KeyedMac::Sha256(keyed) => run(keyed, parts),
            KeyedMac::Sha512(keyed) => run(keyed, parts),
        }
    }
}

/// A digest on the stack: SHA-512's 64 bytes at most.
struct DigestBytes {
    bytes: [u8; 64],
    len: usize,
}

impl DigestBytes {
    fn new(digest: &[u8]) -> Self {
        let mut bytes = [0; 64];
        bytes[..digest.len()].copy_from_slice(digest);
        DigestBytes {
            bytes,
            len: digest.len(),
        }
    }
}

impl std::ops::Deref for DigestBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// A digest written as hex or base64 on the stack: 128 characters at most.
struct DigestText {
    text: [u8; 128],
    len: usize,
}

impl DigestText {
    fn new(encoding: Encoding, digest: &[u8]) -> Self {
        let mut text = [0; 128];
        let len = match encoding {
            Encoding::Hex => {
                let len = digest.len() * 2;
                hex::encode_to_slice(digest, &mut text[..len]).expect("twice the digest's length");
                len
            }
            Encoding::Base64 => B64
                .encode_slice(digest, &mut text)
                .expect("64 bytes take 88 in base64"),
        };
        DigestText { text, len }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.text[..self.len]
    }
}

/// Standard base64, padding optional when decoding (the Python SDK adds `==` and ignores excess).
const B64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    B64.decode(text).ok()
}

/// Constant time: `Mac::verify_slice`.
fn mac_matches(
    algorithm: Algorithm,
    key: &[u8],
    message: &[u8],
    digest: &[u8],
) -> Result<(), Verdict> {
    mac_parts_match(algorithm, key, &[message], digest)
}

/// [`mac_matches`] over parts one after the other, without copying them into one message (a
/// body is most of it: listen verifies one per request).
fn mac_parts_match(
    algorithm: Algorithm,
    key: &[u8],
    parts: &[&[u8]],
    digest: &[u8],
) -> Result<(), Verdict> {
    fn run<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]], digest: &[u8]) -> bool {
        let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
        for part in parts {
            mac.update(part);
        }
        mac.verify_slice(digest).is_ok()
    }
    let ok = match algorithm {
        Algorithm::Sha1 => run::<Hmac<Sha1>>(key, parts, digest),
        Algorithm::Sha256 => run::<Hmac<Sha256>>(key, parts, digest),
        Algorithm::Sha512 => run::<Hmac<Sha512>>(key, parts, digest),
    };
    if ok { Ok(()) } else { Err(Verdict::Invalid) }
}

/// `"{a}.{b}.{body}"`: the body is appended as bytes, so it need not be UTF-8.
fn dotted(parts: &[&str], body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(body.len() + 64);
    for part in parts {
        message.extend_from_slice(part.as_bytes());
        message.push(b'.');
    }
    message.extend_from_slice(body);
    message
}

/// A Standard Webhooks message id that stays the same for every attempt of one body (the spec
/// asks the id to be the same on retries, and receivers deduplicate by it).
fn message_id(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!("msg_{}", &hex::encode(digest)[..24])
}

/// Twilio: the URL, then each form parameter's name and value, sorted by name and then by
/// value, with repeated identical pairs once: twilio-python's `compute_signature`
/// (`sorted(set(params))`, `sorted(set(values))`).
pub fn twilio_message(url: &str, body: &[u8]) -> String {
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    pairs.sort();
    pairs.dedup();
    let mut message = url.to_string();
    for (name, value) in pairs {
        message.push_str(&name);
        message.push_str(&value);
    }
    message
}

fn strict_hex(value: &str, len: usize) -> Result<Vec<u8>, String> {
    let not_hex = || format!("the digest is not {} lowercase hex digits", len * 2);
    let digits = value.as_bytes();
    if digits.len() != len * 2 {
        return Err(not_hex());
    }
    // One pass that checks and decodes: checking every digit first and then decoding with
    // the hex crate cost twice as much, on listen's per-request path.
    let mut bytes = Vec::with_capacity(len);
    for pair in digits.chunks_exact(2) {
        match (lower_hex_digit(pair[0]), lower_hex_digit(pair[1])) {
            (Some(high), Some(low)) => bytes.push(high << 4 | low),
            _ => return Err(not_hex()),
        }
    }
    Ok(bytes)
}

fn lower_hex_digit(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

fn strict_base64(value: &str, len: usize) -> Result<Vec<u8>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|_| "the digest is not base64".to_string())?;
    if bytes.len() != len {
        return Err(format!(
            "the digest is {} bytes, not the {len} of the algorithm",
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// Decimal digits without a leading zero: the SDKs sign the digits as written, hookcli as a
/// number, so `01714…` would pass one and fail the other.
fn strict_time(digits: &str, what: &str) -> Result<u64, String> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the {what} timestamp is not a whole number"));
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return Err(format!("the {what} timestamp has a leading zero"));
    }
    digits
        .parse()
        .map_err(|_| format!("the {what} timestamp is out of range"))
}

/// A header value longer than any signature: refused before parsing.
fn too_long(value: &str, limit: usize) -> Result<(), Verdict> {
    if value.len() > limit {
        return Err(Verdict::Malformed(format!(
            "{} bytes long; a signature is under {limit}",
            value.len()
        )));
    }
    Ok(())
}

/// The checked signature's time in ms (`Some`) for the caller to bound, or `None` when the
/// scheme has no time.
type Checked = Result<Option<u64>, Verdict>;

fn verify_retell(key: &[u8], body: &[u8], header: &str) -> Checked {
    let (digits, timestamp, digest) = parse_retell(header).map_err(Verdict::Malformed)?;
    // The digits as sent, which is what the SDKs MAC; strict_time took only canonical
    // digits, so they are also the number's own.
    mac_parts_match(Algorithm::Sha256, key, &[body, digits.as_bytes()], &digest)?;
    Ok(Some(timestamp))
}

/// Splits `v=<digits>,d=<64 lowercase hex>`, strictly: the official Python SDK accepts only
/// lowercase hex, so anything looser would pass here and fail there.
/// Returns the timestamp's digits, their value and the digest.
fn parse_retell(header: &str) -> Result<(&str, u64, Vec<u8>), String> {
    if header.len() > 200 {
        return Err(format!(
            "{} bytes long; a signature is about 80",
            header.len()
        ));
    }
    let (v, d) = header
        .split_once(',')
        .ok_or_else(|| "expected v=<ms>,d=<hex>".to_string())?;
    let digits = v
        .strip_prefix("v=")
        .ok_or_else(|| "expected v=<ms>,d=<hex>".to_string())?;
    let timestamp = strict_time(digits, "v=")?;
    let digest = d
        .strip_prefix("d=")
        .ok_or_else(|| "expected d=<hex> after the comma".to_string())?;
    let digest = strict_hex(digest, 32)
        .map_err(|_| "the d= digest is not 64 lowercase hex digits".to_string())?;
    Ok((digits, timestamp, digest))
}

/// `t=<unix s>,v0=<hex>` in either order. The SDKs split on `,` without trimming and disagree
/// on a repeated `v0=` (JS keeps the first, Python the last), so a repeat, a space or any
/// other part is malformed here rather than valid for one SDK only.
fn verify_elevenlabs(key: &[u8], body: &[u8], header: &str) -> Checked {
    too_long(header, 200)?;
    let (mut t, mut v0) = (None, None);
    for part in header.split(',') {
        let slot = if let Some(value) = part.strip_prefix("t=") {
            (&mut t, value)
        } else if let Some(value) = part.strip_prefix("v0=") {
            (&mut v0, value)
        } else {
            return Err(Verdict::Malformed(format!(
                "expected t=<unix s>,v0=<hex>, found the part `{part:.20}`"
            )));
        };
        if slot.0.replace(slot.1).is_some() {
            return Err(Verdict::Malformed("a part is given twice".into()));
        }
    }
    let (Some(t), Some(v0)) = (t, v0) else {
        return Err(Verdict::Malformed("expected both t= and v0=".into()));
    };
    let seconds = strict_time(t, "t=").map_err(Verdict::Malformed)?;
    let digest = strict_hex(v0, 32)
        .map_err(|_| Verdict::Malformed("the v0= digest is not 64 lowercase hex digits".into()))?;
    mac_matches(Algorithm::Sha256, key, &dotted(&[t], body), &digest)?;
    Ok(Some(TimeUnit::Seconds.to_ms(seconds)))
}

/// `webhook-signature` is a space-separated list of `<version>,<base64>`; versions other than
/// v1 are skipped (as the SDKs do), and one matching v1 entry is enough (key rotation).
fn verify_standard(key: &[u8], body: &[u8], id: &str, timestamp: &str, list: &str) -> Checked {
    too_long(list, 4096)?;
    if id.is_empty() || id.len() > 256 {
        return Err(Verdict::Malformed(
            "the message id is empty or too long".into(),
        ));
    }
    let seconds = strict_time(timestamp, "webhook").map_err(Verdict::Malformed)?;
    let mut v1 = Vec::new();
    for entry in list.split(' ') {
        let Some((version, signature)) = entry.split_once(',') else {
            return Err(Verdict::Malformed(format!(
                "expected v1,<base64>, found `{entry:.20}`"
            )));
        };
        if version == "v1" {
            v1.push(strict_base64(signature, 32).map_err(Verdict::Malformed)?);
        }
    }
    if v1.is_empty() {
        return Err(Verdict::Malformed("no v1 signature in the list".into()));
    }
    let message = dotted(&[id, timestamp], body);
    // Every entry is checked, matching or not, so the time taken does not say which one did.
    let matched = v1
        .iter()
        .filter(|digest| mac_matches(Algorithm::Sha256, key, &message, digest).is_ok())
        .count();
    if matched == 0 {
        return Err(Verdict::Invalid);
    }
    Ok(Some(TimeUnit::Seconds.to_ms(seconds)))
}

/// The URL as given, and with its port written or left out: the validators accept both,
/// since Twilio has signed both ways. Done on the text, as twilio-python does, because a
/// parsed URL drops a default port.
fn twilio_urls(url: &str) -> Vec<String> {
    let mut urls = vec![url.to_string()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return urls;
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host_at = authority.rfind('@').map_or(0, |at| at + 1);
    let (userinfo, host) = authority.split_at(host_at);
    // An IPv6 literal has colons of its own: a port follows the closing bracket.
    let port_at = match host.rfind(']') {
        Some(bracket) => host[bracket..].find(':').map(|c| bracket + c),
        None => host.rfind(':'),
    };
    let other = match port_at {
        Some(colon) => format!("{scheme}://{userinfo}{}{tail}", &host[..colon]),
        None => {
            let port = if scheme.eq_ignore_ascii_case("https") {
                443
            } else {
                80
            };
            format!("{scheme}://{userinfo}{host}:{port}{tail}")
        }
    };
    urls.push(other);
    urls
}

fn verify_twilio(rules: &Rules, key: &[u8], url: &str, body: &[u8], header: &str) -> Checked {
    too_long(header, 200)?;
    let digest = strict_base64(header, rules.algorithm.digest_len()).map_err(Verdict::Malformed)?;
    let matched = twilio_urls(url)
        .iter()
        .filter(|url| {
            mac_matches(
                rules.algorithm,
                key,
                twilio_message(url, body).as_bytes(),
                &digest,
            )
            .is_ok()
        })
        .count();
    if matched == 0 {
        return Err(Verdict::Invalid);
    }
    Ok(None)
}

fn verify_token(rules: &Rules, key: &Secret, header: &str) -> Checked {
    use subtle::ConstantTimeEq;
    let Some(token) = header.strip_prefix(rules.prefix.as_str()) else {
        return Err(Verdict::Malformed(format!(
            "expected `{}<token>`",
            rules.prefix
        )));
    };
    if token.is_empty() {
        return Err(Verdict::Malformed("the token is empty".into()));
    }
    // ct_eq is constant time for equal lengths; a length differs only for a wrong token.
    if bool::from(token.as_bytes().ct_eq(key.expose().as_bytes())) {
        Ok(None)
    } else {
        Err(Verdict::Invalid)
    }
}

fn verify_vapi(
    rules: &Rules,
    key: &[u8],
    body: &[u8],
    signature: &str,
    timestamp: &str,
) -> Checked {
    too_long(signature, 400)?;
    let at = strict_time(timestamp, rules.timestamp_header.as_str()).map_err(Verdict::Malformed)?;
    let digest = rules.decode(signature)?;
    mac_matches(rules.algorithm, key, &dotted(&[timestamp], body), &digest)?;
    Ok(Some(rules.unit.to_ms(at)))
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

/// The one header value a single-header scheme writes for `body` at `at_ms`, with its default
/// parameters and no URL (a shorthand for tests and benches; [`Rules::sign`] is the general
/// form). Empty for a key the scheme cannot use.
pub fn sign(scheme: Scheme, key: &Secret, body: &[u8], at_ms: u64) -> String {
    let rules = Rules::new(scheme);
    rules
        .sign(key, "", body, at_ms)
        .ok()
        .and_then(|headers| headers.into_iter().find(|(name, _)| *name == rules.header))
        .map(|(_, value)| value)
        .unwrap_or_default()
}

/// Checks one signature header value with the scheme's defaults and `tolerance` either side of
/// `now_ms` (the shorthand of [`Rules::verify`] for single-header schemes).
pub fn verify(
    scheme: Scheme,
    key: &Secret,
    body: &[u8],
    header: Option<&str>,
    now_ms: u64,
    tolerance: Duration,
) -> Verdict {
    let mut rules = Rules::new(scheme);
    rules.tolerance = Tolerance::both(tolerance);
    let headers: Vec<(&str, &str)> = header
        .map(|value| (rules.header.as_str(), value))
        .into_iter()
        .collect();
    let signed = Signed {
        url: None,
        body,
        headers: &headers,
    };
    rules.verify(key, &signed, now_ms)
}

/// The current Unix time in milliseconds.
pub fn now_ms() -> u64 {
    unix_ms(std::time::SystemTime::now())
}

/// `at` as Unix milliseconds (0 before 1970).
pub fn unix_ms(at: std::time::SystemTime) -> u64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "key_test_hookcli";
    const T: u64 = 1714608475945;

    fn key() -> Secret {
        Secret::new(KEY)
    }

    fn retell() -> Rules {
        Rules::new(Scheme::Retell)
    }

    /// The one header a single-header scheme writes.
    fn sign_one(rules: &Rules, key: &Secret, url: &str, body: &[u8], at: u64) -> String {
        let headers = rules.sign(key, url, body, at).unwrap();
        assert_eq!(headers.len(), 1, "{headers:?}");
        headers[0].1.clone()
    }

    fn check(
        rules: &Rules,
        key: &Secret,
        url: Option<&str>,
        body: &[u8],
        headers: &[(String, String)],
        now: u64,
    ) -> Verdict {
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        rules.verify(
            key,
            &Signed {
                url,
                body,
                headers: &headers,
            },
            now,
        )
    }

    fn retell_check(body: &[u8], header: Option<&str>, now: u64) -> Verdict {
        let headers: Vec<(String, String)> = header
            .map(|h| ("x-retell-signature".to_string(), h.to_string()))
            .into_iter()
            .collect();
        check(&retell(), &key(), None, body, &headers, now)
    }

    #[test]
    fn every_scheme_has_a_name_it_parses_back() {
        for scheme in Scheme::ALL {
            assert_eq!(scheme.name().parse::<Scheme>(), Ok(scheme));
        }
        assert!("hmac".parse::<Scheme>().unwrap_err().contains("vapi-hmac"));
    }

    #[test]
    fn reproduces_the_retell_sdk_vectors() {
        let body = br#"{"event":"call_started","call":{"call_id":"call_0001"}}"#;
        assert_eq!(
            sign_one(&retell(), &key(), "", body, T),
            "v=1714608475945,d=16c3115b3e1b12e7df79c663476918f535042d3c1d82ddd725aeaaf0878d883e"
        );
        let body = r#"{"event":"call_ended","call":{"call_id":"Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6","transcript":"Agent: Merhaba! 👋 Café?"}}"#;
        assert_eq!(
            sign_one(&retell(), &key(), "", body.as_bytes(), T),
            "v=1714608475945,d=99385dae52a3ab95a3b04ae38bccebc903345a40a12d5daf3a68d01fcc46e039"
        );
    }

    #[test]
    fn retell_verifies_and_rejects() {
        let body = b"{\"a\":1}";
        let header = sign_one(&retell(), &key(), "", body, T);
        assert_eq!(retell_check(body, Some(&header), T + 1000), Verdict::Valid);
        assert_eq!(
            retell_check(b"{\"a\":2}", Some(&header), T),
            Verdict::Invalid
        );
        assert_eq!(retell_check(body, None, T), Verdict::Missing);
        assert_eq!(
            retell_check(body, Some(&header), T + 432_000),
            Verdict::Stale { skew_ms: 432_000 }
        );
        assert_eq!(
            retell_check(body, Some(&header), T + 432_000).to_string(),
            "stale by 7m12s"
        );
        assert!(
            matches!(retell_check(body, Some(&header), T - 600_000), Verdict::Stale { skew_ms } if skew_ms < 0)
        );
        let headers = vec![("x-retell-signature".to_string(), header)];
        let wrong_key = check(&retell(), &Secret::new("other"), None, body, &headers, T);
        assert_eq!(wrong_key, Verdict::Invalid);
    }

    #[test]
    fn retell_malformed_headers_never_panic() {
        let upper = sign_one(&retell(), &key(), "", b"x", T)
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
            let verdict = retell_check(b"x", Some(header), T);
            assert!(
                matches!(verdict, Verdict::Malformed(_)),
                "{header:.40}: {verdict:?}"
            );
        }
    }

    #[test]
    fn a_leading_zero_in_the_timestamp_is_refused_with_its_own_reason() {
        // The digest is right for T: only the written digits differ, which the SDK signs.
        let zero = sign_one(&retell(), &key(), "", b"x", T).replacen("v=", "v=0", 1);
        assert_eq!(
            retell_check(b"x", Some(&zero), T),
            Verdict::Malformed("the v= timestamp has a leading zero".into())
        );
        let at_zero = sign_one(&retell(), &key(), "", b"x", 0);
        assert_eq!(
            retell_check(b"x", Some(&at_zero), 0),
            Verdict::Valid,
            "v=0 itself is a number as written"
        );
    }

    #[test]
    fn standard_webhooks_reproduces_the_spec_vector() {
        let rules = Rules::new(Scheme::StandardWebhooks);
        let key = Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let body = br#"{"test": 2432232314}"#;
        let k = rules.key_bytes(&key).unwrap();
        let digest = KeyedMac::new(Algorithm::Sha256, &k).of(&[&dotted(
            &["msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330"],
            body,
        )]);
        assert_eq!(
            format!("v1,{}", B64.encode(&*digest)),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let headers = vec![
            (
                "Webhook-Id".to_string(),
                "msg_p5jXN8AQM9LWM0D4loKWxJek".to_string(),
            ),
            ("webhook-timestamp".to_string(), "1614265330".to_string()),
            (
                "webhook-signature".to_string(),
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".to_string(),
            ),
        ];
        let now = 1_614_265_330_000;
        assert_eq!(
            check(&rules, &key, None, body, &headers, now + 299_000),
            Verdict::Valid
        );
        assert!(matches!(
            check(&rules, &key, None, body, &headers, now + 301_000),
            Verdict::Stale { .. }
        ));
        assert!(matches!(
            check(&rules, &key, None, body, &headers, now - 301_000),
            Verdict::Stale { .. }
        ));
        // Key rotation: an old signature first, then the valid one, then an unknown version.
        let mut rotated = headers.clone();
        rotated[2].1 = format!("v1,{} {} v2,abc", B64.encode([7u8; 32]), headers[2].1);
        assert_eq!(
            check(&rules, &key, None, body, &rotated, now),
            Verdict::Valid
        );
        // The whsec_ string used raw as the key signs something else.
        let raw = Rules {
            key_format: KeyFormat::Text,
            ..rules.clone()
        };
        let signed_raw = raw.sign(&key, "", body, now).unwrap();
        assert_eq!(
            check(&rules, &key, None, body, &signed_raw, now),
            Verdict::Invalid
        );
        // Its own round trip writes the three headers.
        let signed = rules.sign(&key, "", body, now).unwrap();
        let names: Vec<&str> = signed.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["webhook-id", "webhook-timestamp", "webhook-signature"]
        );
        assert_eq!(
            check(&rules, &key, None, body, &signed, now),
            Verdict::Valid
        );
        assert_eq!(
            check(&rules, &key, None, b"{}", &signed, now),
            Verdict::Invalid
        );
        for bad in ["v1", "v1,zz", "v2,abc", "", "v1,AAAA"] {
            let mut h = signed.clone();
            h[2].1 = bad.to_string();
            assert!(
                matches!(
                    check(&rules, &key, None, body, &h, now),
                    Verdict::Malformed(_)
                ),
                "{bad}"
            );
        }
        assert_eq!(
            check(&rules, &key, None, body, &signed[..2], now),
            Verdict::Missing
        );
        assert_eq!(
            rules.key_bytes(&Secret::new("whsec_!!")),
            Err(KeyError::NotBase64(" after its whsec_ prefix"))
        );
        assert!(rules.generate_key().expose().starts_with("whsec_"));
    }

    #[test]
    fn twilio_reproduces_the_sdk_vectors() {
        let rules = Rules::new(Scheme::Twilio);
        let token = Secret::new("12345");
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let body = b"To=%2B18005551212&From=%2B14158675309&Digits=1234&Caller=%2B14158675309&CallSid=CA1234567890ABCDE";
        // twilio-python RequestValidator("12345").compute_signature(url, params)
        assert_eq!(
            sign_one(&rules, &token, url, body, T),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        // Repeated keys: values sorted, identical pairs once, as twilio-python.
        let repeated = "B=2&A=%C3%A9&B=1&B=1".as_bytes();
        assert_eq!(
            sign_one(&rules, &token, "http://127.0.0.1:8080/cb", repeated, T),
            "NoUk9L9oL5DI5WXPR2JhNWGGrJI="
        );
        let headers = vec![(
            "X-Twilio-Signature".to_string(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8=".to_string(),
        )];
        assert_eq!(
            check(&rules, &token, Some(url), body, &headers, T),
            Verdict::Valid
        );
        assert_eq!(
            check(
                &rules,
                &token,
                Some("https://mycompany.com:443/myapp.php?foo=1&bar=2"),
                body,
                &headers,
                T
            ),
            Verdict::Valid,
            "the validators accept the URL with its default port"
        );
        assert_eq!(
            check(
                &rules,
                &token,
                Some("https://other.example/myapp.php?foo=1&bar=2"),
                body,
                &headers,
                T
            ),
            Verdict::Invalid
        );
        assert_eq!(
            check(&rules, &token, Some(url), b"To=1", &headers, T),
            Verdict::Invalid
        );
        assert!(matches!(
            check(&rules, &token, None, body, &headers, T),
            Verdict::Malformed(_)
        ));
        let props = rules.properties();
        assert!(props.covers_url && props.covers_body && !props.timestamp);
    }

    #[test]
    fn elevenlabs_matches_construct_event() {
        let rules = Rules::new(Scheme::ElevenLabs);
        let secret = Secret::new("wsec_test_hookcli");
        let body = r#"{"type":"post_call_transcription","event_timestamp":1739537297,"data":{"agent_id":"xyz","note":"Café 👋"}}"#.as_bytes();
        let at = 1_739_537_297_000;
        let header = sign_one(&rules, &secret, "", body, at + 999);
        assert_eq!(
            header,
            "t=1739537297,v0=4c0a562b0848f08ee343a4ea682e69e305c12a727521f201963883002db6fd49"
        );
        let h = |v: &str| vec![("elevenlabs-signature".to_string(), v.to_string())];
        assert_eq!(
            check(&rules, &secret, None, body, &h(&header), at + 29 * 60_000),
            Verdict::Valid
        );
        assert!(matches!(
            check(&rules, &secret, None, body, &h(&header), at + 31 * 60_000),
            Verdict::Stale { .. }
        ));
        assert_eq!(
            check(&rules, &secret, None, body, &h(&header), at - 3_600_000),
            Verdict::Valid,
            "the SDKs do not bound the future"
        );
        let swapped =
            "v0=4c0a562b0848f08ee343a4ea682e69e305c12a727521f201963883002db6fd49,t=1739537297";
        assert_eq!(
            check(&rules, &secret, None, body, &h(swapped), at),
            Verdict::Valid
        );
        for bad in [
            "t=1",
            "v0=ab",
            "t=1739537297, v0=4c0a",
            &format!("{header},v0=00"),
            "t=x,v0=1",
            "garbage",
        ] {
            assert!(
                matches!(
                    check(&rules, &secret, None, body, &h(bad), at),
                    Verdict::Malformed(_)
                ),
                "{bad}"
            );
        }
        assert_eq!(rules.properties().tolerance.unwrap().future, None);
    }

    #[test]
    fn hmac_hex_signs_the_body() {
        let rules = Rules::new(Scheme::HmacHex);
        let secret = Secret::new("bland_secret");
        let body = r#"{"call_id":"c1","note":"Café"}"#.as_bytes();
        let header = sign_one(&rules, &secret, "", body, T);
        assert_eq!(
            header,
            "2271c0788e3b093b1f9bd35649bddfedb92dd3b06ceb0d4a1b5812689e263ee8"
        );
        let h = vec![("x-webhook-signature".to_string(), header.clone())];
        assert_eq!(check(&rules, &secret, None, body, &h, 0), Verdict::Valid);
        assert_eq!(check(&rules, &secret, None, b"{}", &h, 0), Verdict::Invalid);
        let upper = vec![("x-webhook-signature".to_string(), header.to_uppercase())];
        assert!(matches!(
            check(&rules, &secret, None, body, &upper, 0),
            Verdict::Malformed(_)
        ));
        assert!(!rules.properties().timestamp);
    }

    #[test]
    fn a_token_key_a_header_cannot_carry_is_refused() {
        let bearer = Rules::new(Scheme::Token);
        for key in ["tok\r\nx-evil: 1", "tok\u{1}", "tok\u{7f}"] {
            let secret = Secret::new(key);
            assert_eq!(
                bearer.key_bytes(&secret),
                Err(KeyError::NotHeaderText),
                "{key:?}"
            );
            assert!(bearer.sign(&secret, "", b"x", T).is_err());
            assert!(bearer.keyed(&secret).is_err());
        }
        // A tab, spaces and text beyond ASCII are header text; an HMAC key may be anything.
        assert!(bearer.key_bytes(&Secret::new("tok\t1 é")).is_ok());
        assert!(
            Rules::new(Scheme::Retell)
                .key_bytes(&Secret::new("a\r\nb"))
                .is_ok()
        );
    }

    #[test]
    fn token_compares_the_whole_value() {
        let bearer = Rules::new(Scheme::Token);
        let secret = Secret::new("tok_123");
        let signed = bearer.sign(&secret, "", b"x", T).unwrap();
        assert_eq!(
            signed,
            vec![("authorization".to_string(), "Bearer tok_123".to_string())]
        );
        assert_eq!(
            check(&bearer, &secret, None, b"anything", &signed, 0),
            Verdict::Valid
        );
        let h = |v: &str| vec![("authorization".to_string(), v.to_string())];
        assert_eq!(
            check(&bearer, &secret, None, b"x", &h("Bearer tok_124"), 0),
            Verdict::Invalid
        );
        assert!(matches!(
            check(&bearer, &secret, None, b"x", &h("tok_123"), 0),
            Verdict::Malformed(_)
        ));
        let legacy = Rules {
            header: "x-vapi-secret".into(),
            prefix: String::new(),
            ..bearer
        };
        let signed = legacy.sign(&secret, "", b"x", T).unwrap();
        assert_eq!(
            signed,
            vec![("x-vapi-secret".to_string(), "tok_123".to_string())]
        );
        let props = legacy.properties();
        assert!(!props.covers_body && !props.timestamp && !props.covers_url);
    }

    #[test]
    fn vapi_hmac_follows_its_algorithm_and_encoding() {
        let secret = Secret::new("vapi_secret");
        let body = br#"{"message":{"type":"hang"}}"#;
        let mut rules = Rules::new(Scheme::VapiHmac);
        for (algorithm, want) in [
            (
                Algorithm::Sha256,
                "63cfe77256cb4f45d636d6ee662f53303426c213074727cca2840a9728373676",
            ),
            (Algorithm::Sha1, "1fe14d8fb65100d98e38ea83d8e6a049675b22e0"),
            (
                Algorithm::Sha512,
                "9ff1226071dd161b035da0edd291a109b2f57c67eb5835f31628e213475f16b7eb15580546905294a4b5d1b821c021459883ae3d882f45c231b7efcf4a18133b",
            ),
        ] {
            rules.algorithm = algorithm;
            let signed = rules.sign(&secret, "", body, T).unwrap();
            assert_eq!(signed[0], ("x-signature".to_string(), want.to_string()));
            assert_eq!(signed[1], ("x-timestamp".to_string(), T.to_string()));
            assert_eq!(
                check(&rules, &secret, None, body, &signed, T),
                Verdict::Valid
            );
        }
        rules.algorithm = Algorithm::Sha256;
        rules.encoding = Encoding::Base64;
        let signed = rules.sign(&secret, "", body, T).unwrap();
        assert_eq!(signed[0].1, "Y8/nclbLT0XWNtbuZi9TMDQmwhMHRyfMooQKlyg3NnY=");
        assert!(matches!(
            check(&rules, &secret, None, body, &signed, T + 600_000),
            Verdict::Stale { .. }
        ));
    }

    #[test]
    fn a_header_given_twice_is_malformed_for_every_scheme() {
        for scheme in Scheme::ALL {
            let rules = Rules::new(scheme);
            let key = rules.generate_key();
            let mut signed = rules.sign(&key, "http://127.0.0.1:1/", b"A=1", T).unwrap();
            assert_eq!(
                check(
                    &rules,
                    &key,
                    Some("http://127.0.0.1:1/"),
                    b"A=1",
                    &signed,
                    T
                ),
                Verdict::Valid,
                "{scheme:?}"
            );
            let last = signed.last().unwrap().clone();
            signed.push(last);
            assert!(
                matches!(
                    check(
                        &rules,
                        &key,
                        Some("http://127.0.0.1:1/"),
                        b"A=1",
                        &signed,
                        T
                    ),
                    Verdict::Malformed(_)
                ),
                "{scheme:?}"
            );
        }
    }
}
