//! Id patterns from `[ids]` in platform.toml: literal text with generators in braces.

use rand::Rng;
use rand::distributions::Alphanumeric;
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Alnum(usize),
    Hex(usize),
    Digits(usize),
    Int(u64, u64),
    Uuid,
}

/// A parsed pattern such as `call_{alnum:12}` or `{int:1000-99999}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdPattern(Vec<Piece>);

impl IdPattern {
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut rest = pattern;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("`{pattern}`: a `{{` is not closed"))?
                + open;
            pieces.push(parse_generator(&rest[open + 1..close], pattern)?);
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(IdPattern(pieces))
    }

    pub fn generate(&self, rng: &mut impl Rng) -> Value {
        if let [Piece::Int(lo, hi)] = self.0.as_slice() {
            return Value::from(rng.gen_range(*lo..=*hi));
        }
        let mut out = String::new();
        self.write(rng, &mut out);
        Value::String(out)
    }

    /// Appends a fresh id as text (a number's digits for `{int:..}`): the draws of
    /// [`IdPattern::generate`], without a String of its own.
    pub fn write(&self, rng: &mut impl Rng, out: &mut String) {
        use std::fmt::Write;
        for piece in &self.0 {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Alnum(n) => push_ascii(out, *n, || rng.sample(Alphanumeric)),
                Piece::Hex(n) => push_ascii(out, *n, || hex_digit(rng.gen_range(0..16)) as u8),
                Piece::Digits(n) => push_ascii(out, *n, || b'0' + rng.gen_range(0..10)),
                Piece::Int(lo, hi) => {
                    let _ = write!(out, "{}", rng.gen_range(*lo..=*hi));
                }
                Piece::Uuid => write_uuid_v4(rng, out),
            }
        }
    }

    /// Appends a fresh id of this pattern's shape, as load wants one per delivery: the
    /// characters come several to a 64-bit draw (see [`push_chars`]; `write` draws one per
    /// character and was 3% of load's profile), so for a seed the ids differ from
    /// `generate`'s.
    pub fn write_quick(&self, rng: &mut impl Rng, out: &mut Vec<u8>) {
        for piece in &self.0 {
            match piece {
                Piece::Text(t) => out.extend_from_slice(t.as_bytes()),
                Piece::Alnum(n) => push_chars(rng, out, *n, ALPHANUMERIC),
                Piece::Hex(n) => push_chars(rng, out, *n, b"0123456789abcdef"),
                Piece::Digits(n) => push_chars(rng, out, *n, b"0123456789"),
                Piece::Int(lo, hi) => out.extend_from_slice(
                    itoa::Buffer::new()
                        .format(rng.gen_range(*lo..=*hi))
                        .as_bytes(),
                ),
                Piece::Uuid => {
                    let mut uuid = String::with_capacity(36);
                    write_uuid_v4(rng, &mut uuid);
                    out.extend_from_slice(uuid.as_bytes());
                }
            }
        }
    }
}

/// `rand`'s `Alphanumeric` characters.
const ALPHANUMERIC: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Appends `n` characters of `alphabet` drawn from 64-bit words: each character is the next
/// digit of the word read as a fraction in base `alphabet.len()`, a multiply with no
/// rejection (so no branch to mispredict). A word gives only as many characters as leave
/// 24 of its bits unspent, so each is uniform to within a few parts in a million.
fn push_chars(rng: &mut impl Rng, out: &mut Vec<u8>, n: usize, alphabet: &[u8]) {
    let radix = alphabet.len() as u128;
    let bits_each = u64::BITS - (alphabet.len() as u64 - 1).leading_zeros();
    let per_word = ((u64::BITS - 24) / bits_each) as usize;
    // Through a buffer on the stack: pushed to the Vec one by one, its length would go back
    // to memory after every character.
    let mut buf = [0u8; 256];
    let mut left = n;
    while left > 0 {
        let chunk = &mut buf[..left.min(256)];
        for group in chunk.chunks_mut(per_word) {
            let mut word = rng.next_u64();
            for slot in group {
                let wide = u128::from(word) * radix;
                *slot = alphabet[(wide >> 64) as usize];
                word = wide as u64;
            }
        }
        out.extend_from_slice(chunk);
        left -= chunk.len();
    }
}

/// Appends `n` ASCII characters drawn by `draw`, in order, through a buffer on the stack:
/// pushed to the String one by one, its length went back to memory after every character
/// (3.9% of `load`'s profile, most of it that).
fn push_ascii(out: &mut String, n: usize, mut draw: impl FnMut() -> u8) {
    let mut buf = [0u8; 256];
    let mut left = n;
    while left > 0 {
        let chunk = &mut buf[..left.min(256)];
        chunk.iter_mut().for_each(|b| *b = draw());
        // Every draw is ASCII (alphanumeric, hex or a digit), so this is never empty.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        left -= chunk.len();
    }
}

fn hex_digit(n: u8) -> char {
    char::from_digit(n as u32, 16).unwrap_or('0')
}

fn write_uuid_v4(rng: &mut impl Rng, out: &mut String) {
    let mut b: [u8; 16] = rng.r#gen();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(hex_digit(byte >> 4));
        out.push(hex_digit(byte & 0x0f));
    }
}

fn parse_generator(spec: &str, pattern: &str) -> Result<Piece, String> {
    let bad = || {
        format!(
            "`{pattern}`: `{{{spec}}}` is not a generator (alnum:N, hex:N, digits:N, int:A-B, uuid)"
        )
    };
    if spec == "uuid" {
        return Ok(Piece::Uuid);
    }
    let (name, arg) = spec.split_once(':').ok_or_else(bad)?;
    let count = || {
        arg.parse::<usize>()
            .ok()
            .filter(|n| (1..=256).contains(n))
            .ok_or_else(bad)
    };
    match name {
        "alnum" => Ok(Piece::Alnum(count()?)),
        "hex" => Ok(Piece::Hex(count()?)),
        "digits" => Ok(Piece::Digits(count()?)),
        "int" => {
            let (lo, hi) = arg.split_once('-').ok_or_else(bad)?;
            let lo: u64 = lo.parse().map_err(|_| bad())?;
            let hi: u64 = hi.parse().map_err(|_| bad())?;
            if lo > hi {
                return Err(bad());
            }
            Ok(Piece::Int(lo, hi))
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn generates_each_kind() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let id = IdPattern::parse("{alnum:32}").unwrap().generate(&mut rng);
        let id = id.as_str().unwrap();
        assert_eq!(id.len(), 32);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric()));
        let hex = IdPattern::parse("{hex:24}").unwrap().generate(&mut rng);
        assert!(
            hex.as_str()
                .unwrap()
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        let n = IdPattern::parse("{int:5-9}").unwrap().generate(&mut rng);
        assert!((5..=9).contains(&n.as_u64().unwrap()));
        let call = IdPattern::parse("call_{alnum:12}")
            .unwrap()
            .generate(&mut rng);
        assert!(call.as_str().unwrap().starts_with("call_"));
        let phone = IdPattern::parse("+1{int:201-989}{digits:7}")
            .unwrap()
            .generate(&mut rng);
        assert_eq!(phone.as_str().unwrap().len(), 12);
        assert_eq!(
            IdPattern::parse("{uuid}")
                .unwrap()
                .generate(&mut rng)
                .as_str()
                .unwrap()
                .len(),
            36
        );
    }

    #[test]
    fn quick_ids_have_the_patterns_shape_and_even_characters() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let pattern = IdPattern::parse("call_{alnum:40}+1{int:201-989}{digits:7}-{hex:8}").unwrap();
        let mut counts = std::collections::BTreeMap::new();
        for _ in 0..1000 {
            let mut out = Vec::new();
            pattern.write_quick(&mut rng, &mut out);
            let id = String::from_utf8(out).unwrap();
            let (alnum, rest) = id.strip_prefix("call_").unwrap().split_at(40);
            assert!(alnum.bytes().all(|c| c.is_ascii_alphanumeric()), "{id}");
            for c in alnum.bytes() {
                *counts.entry(c).or_insert(0) += 1;
            }
            let (area, rest) = rest.strip_prefix("+1").unwrap().split_at(3);
            assert!((201..=989).contains(&area.parse::<u32>().unwrap()), "{id}");
            let (digits, hex) = rest.split_once('-').unwrap();
            assert!(
                digits.len() == 7 && digits.bytes().all(|c| c.is_ascii_digit()),
                "{id}"
            );
            assert!(
                hex.len() == 8 && hex.bytes().all(|c| c.is_ascii_hexdigit()),
                "{id}"
            );
        }
        // 40,000 characters of 62: each about 645 times (a standard deviation is 25).
        assert_eq!(counts.len(), 62);
        assert!(
            counts.values().all(|n| (545..=745).contains(n)),
            "{counts:?}"
        );
    }

    #[test]
    fn rejects_bad_patterns() {
        assert!(IdPattern::parse("{alnum}").is_err());
        assert!(IdPattern::parse("{int:9-1}").is_err());
        assert!(IdPattern::parse("{nope:3}").is_err());
        assert!(IdPattern::parse("abc{hex:3").is_err());
    }
}
