//! A signing key that cannot leak through `Debug` or `Display`.

use std::fmt;

/// A platform API key or webhook secret. Its `Debug` prints `(redacted)`, so no log line or
/// error message can carry it by accident; only [`Secret::expose`] gives the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// A fresh random key, for the built-in receiver when the user gave none.
    pub fn generate() -> Self {
        use rand::Rng;
        let bytes: [u8; 16] = rand::thread_rng().r#gen();
        Secret(format!("key_hookcli_{}", hex::encode(bytes)))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key() {
        let secret = Secret::new("key_live_very_secret");
        assert_eq!(format!("{secret:?}"), "(redacted)");
        assert!(!format!("{:?}", Some(secret)).contains("very_secret"));
    }
}
