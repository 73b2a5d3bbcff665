//! listen's per-request work on one signed uponai call_ended body: name the event and call id,
//! verify the signature, decide the answer; the same from the request's bytes, parsed as
//! listen's own HTTP/1 path parses them; then, as in the default mode, also look for an
//! earlier request with the same body and write the line and the record line.
//! `cargo bench --bench judge`.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use hookcli::catalog::Catalog;
use hookcli::receiver::{Judge, ReceiverConfig, record_line};
use hookcli::secret::Secret;
use hookcli::signing::{self, Scheme};
use hyper::header::{CONTENT_TYPE, HOST, HeaderMap, HeaderName, HeaderValue};

fn judge(c: &mut Criterion) {
    let catalog = Catalog::load(None).expect("the built-in catalog loads");
    let platform = catalog.platform("uponai").expect("uponai is built in");
    let event = platform.event("call_ended").expect("uponai has call_ended");
    let key = "key_bench_hookcli";
    let body = Bytes::from(serde_json::to_vec(event.template.value()).expect("a template"));
    let config = ReceiverConfig::local(platform.clone(), Some(Secret::new(key)));
    let judge = Judge::new(config);
    let uri: hyper::Uri = "/webhook".parse().expect("a path");
    // Signed once: the bench runs well inside the 5-minute tolerance.
    let signature = signing::sign(Scheme::Retell, &Secret::new(key), &body, signing::now_ms());
    let mut headers = HeaderMap::new();
    headers.insert(HOST, HeaderValue::from_static("127.0.0.1:8080"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        HeaderName::from_static("x-retell-signature"),
        HeaderValue::from_str(&signature).expect("ASCII"),
    );
    let received = judge.judge(hyper::Method::POST, &uri, headers.clone(), body.clone());
    assert_eq!(received.answered, Some(204), "{:?}", received.verdict);
    assert_eq!(received.event.as_deref(), Some("call_ended"));

    c.bench_function("listen_judge_call_ended", |b| {
        b.iter(|| black_box(judge.judge(hyper::Method::POST, &uri, headers.clone(), body.clone())))
    });
    // The request as oha sends it, in one read.
    let mut raw = format!(
        "POST /webhook HTTP/1.1\r\nhost: 127.0.0.1:8080\r\ncontent-type: application/json\r\n\
         x-retell-signature: {signature}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    let raw = Bytes::from(raw);
    let received = judge
        .judge_raw(raw.clone())
        .expect("a request listen's own path serves");
    assert_eq!(received.answered, Some(204), "{:?}", received.verdict);
    c.bench_function("listen_parse_judge_call_ended", |b| {
        b.iter(|| black_box(judge.judge_raw(raw.clone())))
    });
    // With someone told of each request, as in listen's default mode: the body is hashed
    // to spot a retry too.
    let mut told = ReceiverConfig::local(platform.clone(), Some(Secret::new(key)));
    told.taps.observe = Some(std::sync::Arc::new(|_| {}));
    let judge = Judge::new(told);
    c.bench_function("listen_judge_line_record_call_ended", |b| {
        b.iter(|| {
            let received = judge.judge(hyper::Method::POST, &uri, headers.clone(), body.clone());
            let line = hookcli::output::received::line(&received);
            black_box((line, record_line(&received, "/webhook")))
        })
    });
}

criterion_group!(benches, judge);
criterion_main!(benches);
