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

/// How one webhook is delivered: per-attempt deadline, retries, backoff, success rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// Covers connect, response headers and body of one attempt.
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub retries: u32,
    /// The wait before the first retry; each later wait doubles.
    pub backoff: Duration,
    pub success: SuccessRule,
}

impl DeliveryPolicy {
    pub fn max_attempts(&self) -> u32 {
        // Saturating: `--retries 4294967295` must not wrap to zero attempts.
        self.retries.saturating_add(1)
    }

    /// The wait after failed attempt `n` (1-based), before attempt `n + 1`.
    pub fn wait_after(&self, n: u32) -> Duration {
        let doublings = n.saturating_sub(1).min(16);
        self.backoff.saturating_mul(1 << doublings)
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
            self.backoff = b;
        }
        if let Some(s) = &overrides.success {
            self.success = s.clone();
        }
        self
    }
}

/// The delivery flags a user gave, each optional.
#[derive(Clone, Debug, Default)]
pub struct PolicyOverrides {
    pub timeout: Option<Duration>,
    pub retries: Option<u32>,
    pub backoff: Option<Duration>,
    pub success: Option<SuccessRule>,
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
        let policy = DeliveryPolicy {
            timeout: Duration::from_secs(10),
            retries: 3,
            backoff: Duration::from_secs(1),
            success: SuccessRule::any_2xx(),
        };
        assert_eq!(policy.wait_after(1), Duration::from_secs(1));
        assert_eq!(policy.wait_after(3), Duration::from_secs(4));
        assert_eq!(policy.max_attempts(), 4);
        let most = DeliveryPolicy {
            retries: u32::MAX,
            ..policy
        };
        assert_eq!(most.max_attempts(), u32::MAX);
    }
}
