//! Throughput of the reference network 64 -> 32 -> 8 -> 32 -> 64 (ReLU hidden, linear code and output,
//! f32), the shape `../shared/bench/ae_throughput.py` measures for ONNX Runtime, numpy and PyTorch.
//!
//! Groups: `encode` and `score` at batches of 256 and 8192 rows, `train` (one epoch of 16384 rows,
//! batch 256, Adam, MSE), and `matmul` (the first layer's product through the `gemm` crate, which the
//! network uses, beside ndarray's `dot`, which goes to the system OpenBLAS) so the report says which
//! kernel ran. Every number is rows (or products) per second on one thread.
//!
//! ```text
//! cargo bench --bench throughput
//! ```

use autoenc::{Activation, Autoencoder, LatentSize, Scaling, Variant};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ndarray::Array2;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use std::hint::black_box;

fn normal_rows(rows: usize, seed: u64) -> Array2<f32> {
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
    Array2::from_shape_simple_fn((rows, 64), || StandardNormal.sample(&mut rng))
}

fn reference_params() -> autoenc::AutoencoderParams {
    Autoencoder::params()
        .variant(Variant::Plain)
        .latent(LatentSize::Fixed(8))
        .hidden(Some(vec![32]))
        .activation(Activation::Relu)
        .scaling(Scaling::Standard)
        .batch_size(256)
        // The references train the plain squared loss on every row; robust trimming is extra work.
        .trim_fraction(0.0)
        .record_timings(false)
}

fn inference(c: &mut Criterion) {
    let model = reference_params().epochs(1).fit(normal_rows(4096, 1).view()).expect("reference model trains");
    for batch in [256usize, 8192] {
        let rows = normal_rows(batch, 2);
        let mut group = c.benchmark_group("encode");
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &rows, |b, rows| {
            b.iter(|| black_box(model.encode(rows.view()).expect("encode")))
        });
        group.finish();
        let mut group = c.benchmark_group("score");
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &rows, |b, rows| {
            b.iter(|| black_box(model.score(rows.view()).expect("score")))
        });
        group.finish();
    }
}

fn training(c: &mut Criterion) {
    let rows = normal_rows(16_384, 3);
    let mut group = c.benchmark_group("train");
    group.sample_size(10);
    group.throughput(Throughput::Elements(rows.nrows() as u64));
    let params = reference_params().epochs(1).latent(LatentSize::Fixed(8)).check().expect("valid params");
    group.bench_function("epoch_batch256_adam", |b| b.iter(|| black_box(params.fit(rows.view()).expect("fit"))));
    group.finish();
}

fn matmul(c: &mut Criterion) {
    let x = normal_rows(8192, 4);
    let w = Array2::from_shape_fn((64, 32), |(i, j)| ((i * 31 + j * 17) % 13) as f32 * 0.01);
    let mut group = c.benchmark_group("matmul_8192x64x32");
    group.throughput(Throughput::Elements(8192));
    group.bench_function("gemm_crate", |b| b.iter(|| black_box(autoenc::linalg::matmul(x.view(), w.view()))));
    group.bench_function("ndarray_dot_openblas", |b| b.iter(|| black_box(x.dot(&w))));
    group.finish();
}

criterion_group!(benches, inference, training, matmul);
criterion_main!(benches);
