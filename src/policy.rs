//! What counts as a delivered webhook, and how long and how often a platform tries.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// One accepted status: a class such as `2xx`, or an exact code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Accepts {
    Class(u16),
    Code(u16),
}

/// The platform's success rule: `2xx`, `200`, `204`, or a list such as `200,201`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuccessRule(Vec<Accepts>);

impl SuccessRule {
    pub fn any_2xx() -> Self {
        SuccessRule(vec![Accepts::Class(2)])
    }

    /// Exactly these statuses, any class: a `[[cases]]` entry's `status`, which may expect a
    /// rejection.
    pub fn codes(codes: &[u16]) -> Self {
        SuccessRule(codes.iter().map(|c| Accepts::Code(*c)).collect())
    }

    /// This rule, also taking `code`: for check's body/large, where a 413 is a fine answer.
    /// Not reachable from the command line, whose rules take 2xx codes only.
    pub fn also(mut self, code: u16) -> Self {
        if !self.accepts(code) {
            self.0.push(Accepts::Code(code));
        }
        self
    }

    pub fn accepts(&self, status: u16) -> bool {
        self.0.iter().any(|a| match a {
            Accepts::Class(c) => status / 100 == *c,
            Accepts::Code(code) => status == *code,
        })
    }

    /// The status a well-behaved receiver answers: 204 where the rule takes it (the uponai
    /// docs' handler answers 204), else the rule's first code (salpre wants exactly 200).
    pub fn preferred_status(&self) -> u16 {
        if self.accepts(204) {
            return 204;
        }
        match self.0.first() {
            Some(Accepts::Code(code)) => *code,
            Some(Accepts::Class(c)) => c * 100,
            None => 204,
        }
    }

    /// How a verdict names the rule: `a 2xx`, `exactly 200`, `one of 200, 201`.
    pub fn requirement(&self) -> String {
        match self.0.as_slice() {
            [Accepts::Class(c)] => format!("a {c}xx"),
            [Accepts::Code(code)] => format!("exactly {code}"),
            _ => format!("one of {self}"),
        }
    }
}

impl fmt::Display for SuccessRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|a| match a {
                Accepts::Class(c) => format!("{c}xx"),
                Accepts::Code(code) => code.to_string(),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl FromStr for SuccessRule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        // Only 2xx statuses: hookcli never follows a redirect and no platform counts a 1xx,
        // 3xx, 4xx or 5xx as delivered, so a rule that accepts one could never be honest.
        let bad = || {
            format!(
                "`{text}` is not a success rule: use 2xx, or 2xx codes such as 200, 204 or 200,201"
            )
        };
        let mut accepts = Vec::new();
        for part in text.split(',').map(str::trim) {
            let item = match part.to_ascii_lowercase().as_str() {
                "2xx" => Accepts::Class(2),
                code => match code.parse::<u16>() {
                    Ok(code) if (200..=299).contains(&code) => Accepts::Code(code),
                    _ => return Err(bad()),
                },
            };
            accepts.push(item);
        }
        if accepts.is_empty() {
            return Err(bad());
        }
        Ok(SuccessRule(accepts))
    }
}

/// Which failed attempts a platform tries again.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum RetryOn {
    /// Every failure: a status outside the rule, a timeout, a connection error.
    #[default]
    AnyFailure,
    /// Only these statuses (`5xx`, `429`, `408`), and failures that got no status at all
    /// (a timeout or a connection error: hookcli assumes they are retried, as no document
    /// says otherwise). ElevenLabs retries this way.
    Statuses(Vec<u16>),
}

impl RetryOn {
    /// Parses a list such as `["5xx", "429", "408"]`.
    pub fn parse(items: &[String]) -> Result<RetryOn, String> {
        let mut statuses = Vec::new();
        for item in items {
            let item = item.trim().to_ascii_lowercase();
            match item.strip_suffix("xx").map(str::parse::<u16>) {
                Some(Ok(class @ 1..=5)) => statuses.push(class),
                Some(_) => return Err(format!("`{item}` is not a status class like 5xx")),
                None => match item.parse::<u16>() {
                    Ok(code @ 100..=599) => statuses.push(code),
                    _ => {
                        return Err(format!(
                            "`{item}` is not a status like 429 or a class like 5xx"
                        ));
                    }
                },
            }
        }
        Ok(RetryOn::Statuses(statuses))
    }

    /// Whether a failed attempt that got `status` (`None`: no answer) is tried again.
    pub fn retries(&self, status: Option<u16>) -> bool {
        match (self, status) {
            (RetryOn::AnyFailure, _) | (RetryOn::Statuses(_), None) => true,
            (RetryOn::Statuses(list), Some(status)) => list
                .iter()
                .any(|&s| s == status || (s < 10 && status / 100 == s)),
        }
    }
}

/// How one webhook is delivered: deadlines, retries and their schedule, success rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// Covers connect, response headers and body of one attempt.
    pub timeout: Duration,
    /// A shorter deadline for the connection alone, where a platform has one (Twilio: 5 s
    /// to connect, 15 s in all); `None`: the whole `timeout`.
    pub connect_timeout: Option<Duration>,
    /// Retries after the first attempt.
    pub retries: u32,
    /// The wait before the first retry; each later wait doubles. Unused with a `schedule`.
    pub backoff: Duration,
    /// The waits before each retry, as a platform documents them (ElevenLabs: 30s, 2m, 8m,
    /// 30m); the last one repeats. Empty: doubling from `backoff`.
    pub schedule: Vec<Duration>,
    /// Up to this much is added at random to each wait, as platforms spread their retries.
    pub jitter: Duration,
    pub retry_on: RetryOn,
    pub success: SuccessRule,
}

impl DeliveryPolicy {
    /// A policy with the fields most platforms leave out at their defaults: no connect
    /// deadline of its own, doubling waits without jitter, every failure retried.
    pub fn simple(
        timeout: Duration,
        retries: u32,
        backoff: Duration,
        success: SuccessRule,
    ) -> Self {
        DeliveryPolicy {
            timeout,
            connect_timeout: None,
            retries,
            backoff,
            schedule: Vec::new(),
            jitter: Duration::ZERO,
            retry_on: RetryOn::AnyFailure,
            success,
        }
    }

    pub fn max_attempts(&self) -> u32 {
        // Saturating: `--retries 4294967295` must not wrap to zero attempts.
        self.retries.saturating_add(1)
    }

    /// The wait after failed attempt `n` (1-based), before attempt `n + 1`, without jitter.
    pub fn wait_after(&self, n: u32) -> Duration {
        if let Some(last) = self.schedule.last() {
            let at = (n.saturating_sub(1) as usize).min(self.schedule.len() - 1);
            return self.schedule.get(at).copied().unwrap_or(*last);
        }
        let doublings = n.saturating_sub(1).min(16);
        self.backoff.saturating_mul(1 << doublings)
    }

    /// Whether a failed attempt that got `status` (`None`: no answer) is tried again, if
    /// attempts remain.
    pub fn retries_after(&self, status: Option<u16>) -> bool {
        self.retry_on.retries(status)
    }

    /// Applies the user's flags over the platform's defaults.
    pub fn with_overrides(mut self, overrides: &PolicyOverrides) -> Self {
        if let Some(t) = overrides.timeout {
            self.timeout = t;
        }
        if let Some(r) = overrides.retries {
            self.retries = r;
        }
        if let Some(b) = overrides.backoff {
            // A first wait given by the user replaces a platform's schedule: doubling from it.
            self.backoff = b;
            self.schedule.clear();
        }
        if let Some(s) = &overrides.success {
            self.success = s.clone();
        }
        self
    }
}

/// The delivery flags a user gave, each optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyOverrides {
    pub timeout: Option<Duration>,
    pub retries: Option<u32>,
    pub backoff: Option<Duration>,
    pub success: Option<SuccessRule>,
}

impl PolicyOverrides {
    /// These overrides, with `under`'s filling the ones not set here.
    pub fn or(&self, under: &PolicyOverrides) -> PolicyOverrides {
        PolicyOverrides {
            timeout: self.timeout.or(under.timeout),
            retries: self.retries.or(under.retries),
            backoff: self.backoff.or(under.backoff),
            success: self.success.clone().or_else(|| under.success.clone()),
        }
    }
}

/// The policy of each event: the platform's, under each event's own rules, under the user's
/// flags and file. Events without rules of their own share the default.
#[derive(Clone, Debug)]
pub struct EventPolicies {
    pub default: DeliveryPolicy,
    by_event: Vec<(String, DeliveryPolicy)>,
}

impl EventPolicies {
    /// `platform` under each event's `rules`, then under `user` (flags and file win).
    pub fn new<'a>(
        platform: &DeliveryPolicy,
        events: impl IntoIterator<Item = (&'a str, &'a PolicyOverrides)>,
        user: &PolicyOverrides,
    ) -> Self {
        let by_event = events
            .into_iter()
            .filter(|(_, rules)| **rules != PolicyOverrides::default())
            .map(|(name, rules)| {
                let policy = platform.clone().with_overrides(&user.or(rules));
                (name.to_string(), policy)
            })
            .collect();
        EventPolicies {
            default: platform.clone().with_overrides(user),
            by_event,
        }
    }

    pub fn for_event(&self, event: &str) -> &DeliveryPolicy {
        self.by_event
            .iter()
            .find(|(name, _)| name == event)
            .map_or(&self.default, |(_, policy)| policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_judge() {
        let two = SuccessRule::from_str("2xx").unwrap();
        assert!(two.accepts(204) && two.accepts(200) && !two.accepts(301));
        let exact: SuccessRule = "200".parse().unwrap();
        assert!(exact.accepts(200) && !exact.accepts(204));
        assert_eq!(exact.requirement(), "exactly 200");
        let list: SuccessRule = "200, 202".parse().unwrap();
        assert_eq!(list.to_string(), "200,202");
        assert!(list.accepts(202) && !list.accepts(201));
        assert_eq!(two.preferred_status(), 204);
        assert_eq!(exact.preferred_status(), 200);
        assert!("abc".parse::<SuccessRule>().unwrap_err().contains("`abc`"));
        assert!("700".parse::<SuccessRule>().is_err());
        assert!("9xx".parse::<SuccessRule>().is_err());
        // A redirect is never followed and an error is never a delivery.
        for not_a_delivery in ["3xx", "302", "4xx", "404", "1xx", "500", "200,301"] {
            assert!(
                not_a_delivery.parse::<SuccessRule>().is_err(),
                "{not_a_delivery}"
            );
        }
    }

    #[test]
    fn backoff_doubles() {
        let policy = DeliveryPolicy::simple(
            Duration::from_secs(10),
            3,
            Duration::from_secs(1),
            SuccessRule::any_2xx(),
        );
        assert_eq!(policy.wait_after(1), Duration::from_secs(1));
        assert_eq!(policy.wait_after(3), Duration::from_secs(4));
        assert_eq!(policy.max_attempts(), 4);
        let most = DeliveryPolicy {
            retries: u32::MAX,
            ..policy
        };
        assert_eq!(most.max_attempts(), u32::MAX);
    }

    #[test]
    fn a_schedule_gives_each_wait_and_repeats_its_last() {
        let minutes = |m: u64| Duration::from_secs(60 * m);
        let policy = DeliveryPolicy {
            schedule: vec![Duration::from_secs(30), minutes(2), minutes(8), minutes(30)],
            ..DeliveryPolicy::simple(minutes(1), 4, Duration::ZERO, SuccessRule::any_2xx())
        };
        assert_eq!(policy.wait_after(1), Duration::from_secs(30));
        assert_eq!(policy.wait_after(4), minutes(30));
        assert_eq!(policy.wait_after(9), minutes(30));
    }

    #[test]
    fn retries_only_on_the_listed_statuses_and_on_no_answer() {
        let on = RetryOn::parse(&["5xx".into(), "429".into(), "408".into()]).unwrap();
        for status in [500, 503, 429, 408] {
            assert!(on.retries(Some(status)), "{status}");
        }
        for status in [400, 401, 404, 410, 200] {
            assert!(!on.retries(Some(status)), "{status}");
        }
        assert!(on.retries(None), "a timeout is retried");
        assert!(RetryOn::AnyFailure.retries(Some(404)));
        assert!(RetryOn::parse(&["9xx".into()]).is_err());
        assert!(RetryOn::parse(&["abc".into()]).is_err());
    }
}
