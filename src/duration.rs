//! Durations as users write them (`10s`, `250ms`, `1m30s`, `0`) and as hookcli prints them.

use std::time::Duration;

/// Parses a duration flag value. Plain `0` means none; other values need a unit.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.starts_with('-') {
        return Err(format!(
            "`{text}`: a duration cannot be negative; write it like 10s or 500ms, or 0 for none"
        ));
    }
    humantime::parse_duration(text).map_err(|_| {
        format!("`{text}` is not a duration: write it with a unit, like 10s, 500ms or 1m30s")
    })
}

/// clap value parser for duration flags.
pub fn parse_flag(text: &str) -> Result<Duration, String> {
    parse(text)
}

/// clap value parser for deadlines: a zero deadline would fail every attempt unseen.
pub fn parse_deadline_flag(text: &str) -> Result<Duration, String> {
    match parse(text)? {
        d if d.is_zero() => Err(format!(
            "`{text}`: a timeout must be more than 0; write it like 10s or 500ms"
        )),
        d => Ok(d),
    }
}

/// Short human form: `850ms`, `1.2s`, `10s`, `7m12s`.
pub fn short(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        let rounded = (secs * 10.0).round() / 10.0;
        if rounded.fract() == 0.0 {
            return format!("{}s", rounded as u64);
        }
        return format!("{rounded:.1}s");
    }
    let total = d.as_secs();
    let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
    match (h, s) {
        (0, 0) => format!("{m}m"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// Milliseconds with one decimal below 100 ms: `3.2 ms`, `120 ms`.
pub fn latency(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_zero() {
        assert_eq!(parse("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
        assert_eq!(parse("1m30s").unwrap(), Duration::from_secs(90));
        assert!(parse("10").unwrap_err().contains("`10`"));
        assert!(parse("soon").is_err());
        assert!(parse("-1s").unwrap_err().contains("negative"));
    }

    #[test]
    fn prints_short_forms() {
        assert_eq!(short(Duration::from_millis(850)), "850ms");
        assert_eq!(short(Duration::from_secs(10)), "10s");
        assert_eq!(short(Duration::from_millis(8700)), "8.7s");
        assert_eq!(short(Duration::from_secs(432)), "7m12s");
        assert_eq!(short(Duration::from_secs(300)), "5m");
    }
}
