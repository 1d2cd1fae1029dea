//! Sentiment throughput: messages per second through `sentiment()` (language detection included).

#![allow(missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const MESSAGES: &[&str] = &[
    "Thanks so much, that was really helpful!",
    "This is terrible, my order still hasn't arrived!",
    "Hi, I need to change my delivery address.",
    "I'm not happy at all, the package was damaged.",
    "Great service, I love the new app :)",
    "I'm sorry for the trouble. I have issued a refund.",
    "Kiitos paljon, tämä auttoi!",
    "Meine Bestellung ist immer noch nicht da, das ist schrecklich.",
    "¿Dónde está mi pedido?",
    "Your order is on its way and should arrive tomorrow. Let me know if there is anything else I can help with, and have a wonderful day! 😀",
];

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sentiment");
    g.throughput(Throughput::Elements(MESSAGES.len() as u64));
    g.bench_function("mixed_messages", |b| {
        b.iter(|| {
            for m in MESSAGES {
                std::hint::black_box(talkhouse_analytics::sentiment(std::hint::black_box(m)));
            }
        });
    });
    g.bench_function("detect_language_only", |b| {
        b.iter(|| {
            for m in MESSAGES {
                std::hint::black_box(talkhouse_analytics::detect_language(std::hint::black_box(
                    m,
                )));
            }
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
