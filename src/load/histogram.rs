//! The latency histogram as text: HdrHistogram's standard V2 encoding, DEFLATE-compressed,
//! in base64 (`HISTFAAA...`), as HdrHistogram's own libraries (Java, Go, Python, JavaScript,
//! the Rust crate) write and read it, so a report's histogram can be merged here or plotted
//! there. The values are microseconds.

use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

/// The histogram every tally starts with: 1 µs to an hour, three significant figures.
pub fn empty() -> Histogram<u64> {
    let mut histogram =
        Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static histogram bounds are valid");
    // A merged histogram may hold slower answers than one machine's bounds: it grows.
    histogram.auto(true);
    histogram
}

#[derive(Debug, thiserror::Error)]
pub enum HistogramError {
    #[error("not base64")]
    Base64,
    #[error("not an HdrHistogram V2 encoding ({0})")]
    Decode(String),
    #[error("cannot be encoded ({0})")]
    Encode(String),
}

/// `HISTFAAA...`: V2 + DEFLATE, base64.
pub fn encode(histogram: &Histogram<u64>) -> Result<String, HistogramError> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(histogram, &mut bytes)
        .map_err(|e| HistogramError::Encode(format!("{e:?}")))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The histogram of an [`encode`]d text (or any V2 encoding, compressed or not).
pub fn decode(text: &str) -> Result<Histogram<u64>, HistogramError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| HistogramError::Base64)?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| HistogramError::Decode(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_round_trips_through_the_standard_text() {
        let mut histogram = empty();
        for micros in [1, 250, 1_000, 1_250, 9_999, 2_000_000] {
            histogram.record_n(micros, micros % 7 + 1).unwrap();
        }
        let text = encode(&histogram).unwrap();
        assert!(text.starts_with("HISTF"), "{text}");
        let back = decode(&text).unwrap();
        assert_eq!(back, histogram);
        assert_eq!(back.len(), histogram.len());
        assert!(matches!(decode("HIST!"), Err(HistogramError::Base64)));
        assert!(matches!(decode("aGVsbG8="), Err(HistogramError::Decode(_))));
    }
}
