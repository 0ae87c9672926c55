//! A synthetic multi-sensor stream with labelled anomalies, for demos, examples and tests.
//!
//! `sensors` readings are driven by three hidden factors (two slow oscillations and a random walk)
//! through fixed random loadings, plus small noise — so normal rows lie near a 3-dimensional manifold,
//! which is what an autoencoder learns. Anomalies break that structure in three ways seen in practice:
//! a spike on one sensor, a stuck sensor reading a constant, and a broken correlation (one sensor
//! follows the wrong factor).

use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use rand_pcg::Pcg64Mcg;

/// Rows and labels (true = injected anomaly).
pub struct SensorData {
    pub rows: Array2<f32>,
    pub labels: Vec<bool>,
    pub names: Vec<String>,
}

/// `rows` readings of `sensors` sensors; each row after `clean_prefix` is an anomaly with probability
/// `anomaly_rate`.
pub fn sensor_stream(rows: usize, sensors: usize, clean_prefix: usize, anomaly_rate: f64, seed: u64) -> SensorData {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let factors = 3;
    let loadings: Array2<f64> = Array2::from_shape_simple_fn((factors, sensors), || StandardNormal.sample(&mut rng));
    let offsets = Array1::from_shape_fn(sensors, |j| 10.0 * j as f64);
    let mut walk = 0.0f64;
    let mut data = Array2::zeros((rows, sensors));
    let mut labels = vec![false; rows];
    for i in 0..rows {
        let t = i as f64;
        walk = 0.995 * walk + 0.1 * Distribution::<f64>::sample(&StandardNormal, &mut rng);
        let hidden = [(t / 50.0).sin(), (t / 170.0).cos() * 1.5, walk];
        for j in 0..sensors {
            let noise: f64 = StandardNormal.sample(&mut rng);
            let value: f64 = (0..factors).map(|f| hidden[f] * loadings[(f, j)]).sum::<f64>() + 0.05 * noise;
            data[(i, j)] = (offsets[j] + value) as f32;
        }
        if i >= clean_prefix && rng.random::<f64>() < anomaly_rate {
            labels[i] = true;
            let j = rng.random_range(0..sensors);
            match rng.random_range(0..3) {
                0 => data[(i, j)] += (if rng.random() { 4.0 } else { -4.0 }) * (1.0 + rng.random::<f32>()),
                1 => data[(i, j)] = offsets[j] as f32 + 3.0,
                _ => {
                    let wrong: f64 = (0..factors).map(|f| hidden[(f + 1) % factors] * loadings[(f, j)]).sum();
                    data[(i, j)] = (offsets[j] + 2.0 * wrong + 1.5) as f32;
                }
            }
        }
    }
    let names = (0..sensors).map(|j| format!("sensor_{j}")).collect();
    SensorData { rows: data, labels, names }
}
