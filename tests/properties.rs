//! Property tests for every parser of outside input: signature headers, durations, sizes,
//! `--set` paths, templates and record lines. None may panic on any input, and where a value
//! is written and read back (sign → verify, duration → text → duration, size text → bytes)
//! it must come back the same. The case count is kept low so CI stays fast.

use std::str::FromStr;
use std::time::Duration;

use hookcli::catalog::{Catalog, Platform};
use hookcli::duration;
use hookcli::overrides::Override;
use hookcli::replay::{EventFilter, plan_recording};
use hookcli::secret::Secret;
use hookcli::signing::{Scheme, Verdict, sign, verify};
use hookcli::template::{interpolate, render};
use hookcli::text::parse_size;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const FIVE_MIN: Duration = Duration::from_secs(300);

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    }
}

fn uponai() -> Platform {
    Catalog::load(None)
        .expect("the built-in catalog loads")
        .platform("uponai")
        .map(|platform| Platform::clone(platform))
        .expect("uponai exists")
}

/// Strings that look like signature headers more often than random text would.
fn header_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "v=[0-9]{0,22},d=[0-9a-fA-F]{0,70}",
        "[vd ]=[-+0-9]{0,5}[,;]{0,2}[dv]?=?[0-9a-z]{0,64}",
    ]
}

/// JSON values a few levels deep, for template variables and record bodies.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_{}]{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_signature_header_gets_a_verdict(header in header_like(), body in any::<Vec<u8>>()) {
        let key = Secret::new("key_prop");
        let now = 1_714_608_475_945;
        // Only the verdict matters: no panic, and random text is never valid.
        let verdict = verify(Scheme::Retell, &key, &body, Some(&header), now, FIVE_MIN);
        prop_assert_ne!(verdict, Verdict::Valid);
    }

    #[test]
    fn sign_then_verify_is_valid(
        body in any::<Vec<u8>>(),
        key in "[ -~]{1,40}",
        at in 0u64..=i64::MAX as u64,
    ) {
        let key = Secret::new(key);
        let header = sign(Scheme::Retell, &key, &body, at);
        prop_assert_eq!(
            verify(Scheme::Retell, &key, &body, Some(&header), at, FIVE_MIN),
            Verdict::Valid
        );
        let mut other = body.clone();
        other.push(b'x');
        prop_assert_eq!(
            verify(Scheme::Retell, &key, &other, Some(&header), at, FIVE_MIN),
            Verdict::Invalid
        );
    }

    #[test]
    fn any_duration_text_parses_or_is_refused(text in any::<String>()) {
        let _ = duration::parse(&text);
        let _ = duration::parse_deadline_flag(&text);
    }

    #[test]
    fn printed_durations_read_back(ms in 0u64..1000, secs in 1u64..400_000) {
        // `short` rounds to a tenth of a second between 1 s and 1 min; whole values are exact.
        for d in [Duration::from_millis(ms), Duration::from_secs(secs)] {
            let text = duration::short(d);
            prop_assert_eq!(duration::parse(&text), Ok(d), "{}", text);
        }
    }

    #[test]
    fn any_size_text_parses_or_is_refused(text in any::<String>()) {
        let _ = parse_size(&text);
    }

    #[test]
    fn sizes_read_as_written(n in any::<u64>(), unit in 0usize..4, spaced in any::<bool>()) {
        let (word, factor) = [("", 1u64), ("KB", 1 << 10), ("mb", 1 << 20), ("GiB", 1 << 30)][unit];
        let gap = if spaced && !word.is_empty() { " " } else { "" };
        let text = format!("{n}{gap}{word}");
        match n.checked_mul(factor) {
            Some(bytes) => prop_assert_eq!(parse_size(&text), Ok(bytes), "{}", text),
            None => prop_assert!(parse_size(&text).is_err(), "{}", text),
        }
    }

    #[test]
    fn any_set_argument_parses_or_is_refused_and_applies_without_panic(arg in any::<String>()) {
        let forms = [
            arg.clone(),
            format!("call.{arg}"),
            format!("{arg}=x"),
            format!("a[{arg}]:={arg}"),
        ];
        for text in forms {
            if let Ok(set) = Override::from_str(&text) {
                let mut body = json!({"call": {"metadata": {}, "list": [1, 2]}, "a": [{"b": 1}]});
                let _ = set.apply(&mut body, &["metadata".to_string()]);
            }
        }
    }

    #[test]
    fn a_set_value_lands_where_its_path_points(key in "[a-z][a-z0-9_]{0,10}", value in ".*") {
        let set = Override::from_str(&format!("call.metadata.{key}={value}"))
            .expect("a plain path parses");
        let mut body = json!({"call": {"metadata": {}}});
        set.apply(&mut body, &["metadata".to_string()]).expect("metadata takes new keys");
        prop_assert_eq!(&body["call"]["metadata"][&key], &Value::String(value));
    }

    #[test]
    fn any_template_renders_or_names_a_variable(template in json_value(), text in ".{0,40}") {
        let mut vars = Map::new();
        vars.insert("name".into(), json!("Ana"));
        vars.insert("n".into(), json!(3));
        let layers = [&vars];
        let _ = render(&template, &layers);
        let _ = render(&Value::String(text.clone()), &layers);
        let _ = interpolate(&text, &layers);
    }

    #[test]
    fn placeholders_take_their_variables_value(value in json_value(), plain in "[^{}]{0,30}") {
        let mut vars = Map::new();
        vars.insert("v".into(), value.clone());
        let layers = [&vars];
        // A whole-string placeholder keeps the variable's type; text without one is as it was.
        prop_assert_eq!(render(&json!("{{v}}"), &layers), Ok(value));
        prop_assert_eq!(render(&json!(plain.clone()), &layers), Ok(json!(plain)));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn any_record_text_is_planned_or_refused(
        text in any::<String>(),
        bodies in prop::collection::vec(json_value(), 0..4),
        times in prop::collection::vec(any::<u64>(), 4),
    ) {
        let platform = uponai();
        let _ = plan_recording(&text, "rec.jsonl", &platform, &EventFilter::All, Default::default());
        // Lines shaped like listen's record, around arbitrary bodies.
        let lines: Vec<String> = bodies
            .iter()
            .zip(&times)
            .enumerate()
            .map(|(i, (b, t))| {
                let mut line = json!({"method": "POST", "path": "/webhook", "headers": {},
                                      "time_ms": t, "webhook": i % 3 != 2});
                line[if i % 2 == 0 { "body" } else { "body_base64" }] = json!(b.to_string());
                line.to_string()
            })
            .collect();
        let _ = plan_recording(&lines.join("\n"), "rec.jsonl", &platform, &EventFilter::All, Default::default());
        let bare: Vec<String> = bodies.iter().map(Value::to_string).collect();
        let _ = plan_recording(&bare.join("\n"), "rec.jsonl", &platform, &EventFilter::All, Default::default());
    }
}
