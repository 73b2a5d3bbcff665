//! Render-and-sign of one uponai call_ended event: the per-delivery work of `hookcli load`.
//! `cargo bench --bench render_sign`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use hookcli::call::{Call, CallPlan};
use hookcli::catalog::Catalog;
use hookcli::load::{Bodies, Script};
use hookcli::secret::Secret;
use hookcli::signing::{self, Rules, Scheme};

fn render_sign(c: &mut Criterion) {
    let catalog = std::sync::Arc::new(Catalog::load(None).expect("the built-in catalog loads"));
    let platform = catalog.platform("uponai").expect("uponai is built in");
    let event = platform.event("call_ended").expect("uponai has call_ended");
    let key = Secret::new("key_bench_hookcli");
    let mut rng = hookcli::call::rng_from(Some(7));

    c.bench_function("value_render_sign_call_ended", |b| {
        b.iter(|| {
            let now = signing::now_ms();
            let plan = CallPlan::for_event(event, now);
            let call = Call::generate(&catalog, platform, &plan, &mut rng).unwrap();
            let body = serde_json::to_vec(&call.render(event, None).unwrap()).unwrap();
            let signature = Rules::new(Scheme::Retell).sign(&key, "", &body, now);
            black_box((body, signature))
        })
    });

    // What `hookcli load` does per delivery: fill a compiled template, then sign with the key
    // made ready once, writing the header into the request.
    let script = Script::Event(event.clone());
    let (bodies, slow) = Bodies::new(catalog.clone(), platform, script, &mut rng).unwrap();
    assert!(slow.is_none(), "call_ended compiles");
    let keyed = Rules::new(Scheme::Retell).keyed(&key).unwrap();
    let mut request = Vec::with_capacity(8 * 1024);
    c.bench_function("compiled_render_sign_call_ended", |b| {
        b.iter(|| {
            let now = signing::now_ms();
            let body = bodies.call(&mut rng, now).pop().unwrap();
            request.clear();
            keyed.sign_each("", &body, now, &mut |name, value| {
                request.extend_from_slice(name.as_bytes());
                request.extend_from_slice(b": ");
                value
                    .iter()
                    .for_each(|piece| request.extend_from_slice(piece));
                request.extend_from_slice(b"\r\n");
            });
            black_box((body, request.len()))
        })
    });
}

criterion_group!(benches, render_sign);
criterion_main!(benches);
