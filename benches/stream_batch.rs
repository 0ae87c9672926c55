//! The CPU side of one Kafka micro-batch without a broker: 1000 JSON messages of 64 floats decoded,
//! scored in one pass and encoded back (`stream::scorer::process_batch`), in messages/s. With the
//! end-to-end benchmark (benches/kafka/compare_kafka.sh) it tells how much of a message's cost is ours
//! and how much is the Kafka client's and the broker's.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rdkafka::Timestamp;
use rdkafka::message::OwnedMessage;

use autoenc::Autoencoder;
use autoenc::stream::StreamConfig;
use autoenc::stream::decode::Decoder;
use autoenc::stream::scorer::{BatchContext, process_batch};

fn messages(n: usize) -> Vec<OwnedMessage> {
    (0..n)
        .map(|i| {
            // Full-precision doubles, as the benchmark's producer writes them (Python's json.dumps of a
            // float64: 16-17 significant digits), so the parsing cost is the real one.
            let features: Vec<String> = (0..64)
                .map(|j| format!("{:?}", (((i * 31 + j * 17) % 97) as f64 / 13.0 - 3.5) * std::f64::consts::E))
                .collect();
            let payload = format!("{{\"id\":{i},\"ts\":1764190000.123,\"features\":[{}]}}", features.join(","));
            OwnedMessage::new(
                Some(payload.into_bytes()),
                Some(i.to_string().into_bytes()),
                "in".into(),
                Timestamp::NotAvailable,
                (i % 4) as i32,
                i as i64,
                None,
            )
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let data = ndarray::Array2::from_shape_fn((2048, 64), |(i, j)| ((i * 7 + j * 3) % 23) as f32 / 5.0);
    let model = Autoencoder::params()
        .variant(autoenc::Variant::Plain)
        .hidden(Some(vec![32]))
        .latent(autoenc::LatentSize::Fixed(8))
        .scaling(autoenc::Scaling::None)
        .epochs(1)
        .fit(data.view())
        .unwrap();
    let config = StreamConfig { features_field: Some("features".into()), ..Default::default() };
    let decoder = Decoder::new(&config, model.feature_names(), model.feature_kinds()).unwrap();
    let batch = messages(1000);
    let mut group = c.benchmark_group("stream_batch");
    group.throughput(Throughput::Elements(batch.len() as u64));
    group.bench_function("json_1000x64", |b| {
        b.iter(|| {
            process_batch(
                &batch,
                BatchContext {
                    model: &model,
                    decoder: &decoder,
                    model_version: "b3f0769c",
                    output_format: autoenc::stream::OutputFormat::Json,
                    window: None,
                    collect_normal: false,
                    max_record_bytes: config.max_record_bytes(),
                },
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
