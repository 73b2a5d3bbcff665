//! Watches a run's first requests for a receiver that no request can reach the same way every
//! time (an `https://` URL on a plain-HTTP port fails every TLS handshake at once): the run
//! stops early instead of waiting out every case's retries and then blaming the handler.

use std::sync::Mutex;

use tokio_util::sync::CancellationToken;

use crate::delivery::{Attempt, ErrorKind};

/// Requests that must all fail to connect in the same way before the run stops early. Cases
/// run at once, so these are the first attempts of as many cases.
const TRIP_AFTER: usize = 5;

/// What the watch has seen so far.
#[derive(Default)]
struct Seen {
    /// The one way every request so far failed to connect.
    detail: Option<String>,
    failures: usize,
    /// A request got an HTTP answer, or failed another way: the run is not hopeless.
    disarmed: bool,
}

#[derive(Default)]
pub(in crate::check) struct ConnectWatch {
    seen: Mutex<Seen>,
    tripped: CancellationToken,
}

impl ConnectWatch {
    pub(super) fn observe(&self, attempt: &Attempt) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.disarmed {
            return;
        }
        let detail = attempt.detail.as_deref().unwrap_or("no response");
        // A refusal is the receiver being down or stopping: the run's own receiver check
        // reports that, case by case.
        let same_failure = attempt.status.is_none()
            && attempt.error == Some(ErrorKind::Connect)
            && detail != "connection refused"
            && seen.detail.as_deref().is_none_or(|d| d == detail);
        if !same_failure {
            seen.disarmed = true;
            return;
        }
        seen.detail = Some(detail.to_string());
        seen.failures += 1;
        if seen.failures >= TRIP_AFTER {
            self.tripped.cancel();
        }
    }

    /// Cancelled once enough requests failed to connect the same way and none got through.
    pub(in crate::check) fn tripped(&self) -> CancellationToken {
        self.tripped.clone()
    }

    /// The one way every request so far failed to connect, when that is all that happened.
    pub(in crate::check) fn same_failure(&self) -> Option<String> {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        (!seen.disarmed && seen.failures > 0)
            .then(|| seen.detail.clone())
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn attempt(error: Option<ErrorKind>, status: Option<u16>, detail: &str) -> Attempt {
        Attempt {
            n: 1,
            status,
            latency: Duration::ZERO,
            error,
            detail: Some(detail.into()),
            location: None,
            wait: None,
            request_headers: Default::default(),
            response_headers: Default::default(),
            response_body: Default::default(),
            accepted: false,
            reconnected: false,
        }
    }

    #[test]
    fn trips_only_when_the_first_requests_all_fail_to_connect_the_same_way() {
        let tls = attempt(Some(ErrorKind::Connect), None, "received corrupt message");
        let watch = ConnectWatch::default();
        for _ in 0..TRIP_AFTER {
            assert!(!watch.tripped().is_cancelled());
            watch.observe(&tls);
        }
        assert!(watch.tripped().is_cancelled());
        assert_eq!(
            watch.same_failure().as_deref(),
            Some("received corrupt message")
        );

        // An answer, another failure, or a refusal (the receiver is down: reported elsewhere).
        for other in [
            attempt(None, Some(500), ""),
            attempt(Some(ErrorKind::Connect), None, "invalid peer certificate"),
            attempt(Some(ErrorKind::Timeout), None, "timed out after 10s"),
            attempt(Some(ErrorKind::Connect), None, "connection refused"),
        ] {
            let watch = ConnectWatch::default();
            watch.observe(&tls);
            watch.observe(&other);
            for _ in 0..TRIP_AFTER {
                watch.observe(&tls);
            }
            assert!(!watch.tripped().is_cancelled());
            assert_eq!(watch.same_failure(), None);
        }
    }
}
