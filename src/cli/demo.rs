//! `autoenc demo`: the core's main job end to end, with nothing to configure.
//!
//! Generates a synthetic multi-sensor stream with injected anomalies, trains the default model on a
//! clean prefix, scores the rest in batches as a stream would, and reports throughput and the
//! precision and recall of the anomaly flags.

use std::time::Instant;

use autoenc::Autoencoder;
use autoenc::metrics::{average_precision, roc_auc};
use autoenc::synthetic::sensor_stream;
use ndarray::s;

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Rows in the synthetic stream.
    #[arg(long, default_value_t = 200_000)]
    pub rows: usize,
    /// Sensors (features) per row.
    #[arg(long, default_value_t = 32)]
    pub sensors: usize,
    /// Clean rows used for training.
    #[arg(long, default_value_t = 20_000)]
    pub train_rows: usize,
    /// Rows per scoring batch.
    #[arg(long, default_value_t = 8192)]
    pub batch: usize,
    /// Seed for the synthetic data and the model.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

pub fn run(args: DemoArgs, progress: bool) -> anyhow::Result<()> {
    anyhow::ensure!(args.train_rows > 10 && args.train_rows < args.rows, "--train-rows must be between 10 and --rows");
    anyhow::ensure!(args.batch > 0 && args.sensors > 1, "--batch must be positive and --sensors at least 2");
    println!(
        "autoenc demo: {} rows of {} sensors, anomalies injected after row {}",
        args.rows, args.sensors, args.train_rows
    );
    let data = sensor_stream(args.rows, args.sensors, args.train_rows, 0.01, args.seed);

    let started = Instant::now();
    let params = Autoencoder::params().contamination(0.001).seed(args.seed).check()?;
    let bar =
        if progress { indicatif::ProgressBar::new(params.epochs as u64) } else { indicatif::ProgressBar::hidden() };
    let mut on_epoch = |_: &autoenc::EpochRecord| bar.inc(1);
    let train = data.rows.slice(s![..args.train_rows, ..]);
    let model = params.fit_with(train, data.names.clone(), &mut on_epoch)?;
    bar.finish_and_clear();
    let train_secs = started.elapsed().as_secs_f64();
    println!(
        "trained {} ({}) on {} clean rows in {:.2} s ({:.0} rows/s over {} epochs)",
        model.params_used().variant.name(),
        model.architecture().describe(),
        args.train_rows,
        train_secs,
        (args.train_rows * model.report().epochs.len()) as f64 / train_secs,
        model.report().epochs.len()
    );

    let stream = data.rows.slice(s![args.train_rows.., ..]);
    let labels = &data.labels[args.train_rows..];
    let started = Instant::now();
    let mut scores = Vec::with_capacity(stream.nrows());
    let mut latencies = Vec::new();
    for start in (0..stream.nrows()).step_by(args.batch) {
        let end = (start + args.batch).min(stream.nrows());
        let t = Instant::now();
        scores.extend(model.score(stream.slice(s![start..end, ..]))?);
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let secs = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let flagged: Vec<bool> = scores.iter().map(|&s| model.is_anomaly(s)).collect();
    let tp = flagged.iter().zip(labels).filter(|(f, l)| **f && **l).count() as f64;
    let predicted = flagged.iter().filter(|f| **f).count() as f64;
    let actual = labels.iter().filter(|l| **l).count() as f64;
    println!(
        "scored {} rows in {:.3} s: {:.0} rows/s, batch of {} p50 {:.2} ms / p99 {:.2} ms (one thread)",
        stream.nrows(),
        secs,
        stream.nrows() as f64 / secs,
        args.batch,
        latencies[latencies.len() / 2],
        latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)]
    );
    println!("injected anomalies {actual}, flagged {predicted}");
    println!(
        "precision {:.3}  recall {:.3}  ROC-AUC {:.4}  average precision {:.4}",
        if predicted > 0.0 { tp / predicted } else { 0.0 },
        tp / actual.max(1.0),
        roc_auc(&scores, labels)?,
        average_precision(&scores, labels)?
    );
    Ok(())
}
