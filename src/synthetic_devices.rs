//! A synthetic table of network events from devices, with anomalies visible only through the
//! categories — for tests, examples and the mixed-type benchmark.
//!
//! Each event has a device type, a protocol, an `encrypted` flag and three numbers (log bytes, log
//! packets, duration). Normal events follow the device: a sensor talks MQTT in small messages, a camera
//! streams UDP in large ones, a gateway relays TCP or UDP, a phone browses HTTP or TCP; encryption
//! depends on the protocol. Anomalies come in two kinds, half each:
//! - **wrong device**: an event generated for one device type, labelled with another — every number
//!   is normal for the device that made it;
//! - **impossible combination**: a normal event whose protocol is one its device never uses (a camera
//!   speaking MQTT).
//!
//! A model that sees only the numbers cannot tell either kind from normal events; one that reads the
//! categories, and how they go with the numbers, can.

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use rand_pcg::Pcg64Mcg;

use crate::error::Result;
use crate::model::features::{FeatureKind, Vocabulary};

/// Device types with their share of events and the mean log-size of their messages.
const DEVICES: [(&str, f64, f64); 4] =
    [("sensor", 0.4, 2.0), ("camera", 0.25, 7.0), ("gateway", 0.2, 5.0), ("phone", 0.15, 4.0)];
/// Each device's protocols with their probabilities (in `PROTOCOLS` order: mqtt, udp, tcp, http).
const PROTOCOL_MIX: [[f64; 4]; 4] =
    [[0.9, 0.0, 0.1, 0.0], [0.0, 0.85, 0.15, 0.0], [0.0, 0.4, 0.6, 0.0], [0.0, 0.0, 0.3, 0.7]];
const PROTOCOLS: [&str; 4] = ["mqtt", "udp", "tcp", "http"];
/// Probability of encryption per protocol, and the mean duration (seconds) per protocol.
const ENCRYPTED: [f64; 4] = [0.2, 0.05, 0.9, 0.6];
const DURATION: [f64; 4] = [0.5, 8.0, 3.0, 1.5];

/// The events, column by column, and which are anomalies.
#[derive(Debug, Clone)]
pub struct DeviceEvents {
    pub device: Vec<String>,
    pub protocol: Vec<String>,
    pub encrypted: Vec<bool>,
    pub log_bytes: Vec<f32>,
    pub log_packets: Vec<f32>,
    pub duration: Vec<f32>,
    pub labels: Vec<bool>,
}

/// `rows` events; each is an anomaly with probability `anomaly_rate`.
pub fn device_events(rows: usize, anomaly_rate: f64, seed: u64) -> DeviceEvents {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let noise = Normal::new(0.0, 0.3).expect("a positive deviation");
    let mut events = DeviceEvents {
        device: Vec::with_capacity(rows),
        protocol: Vec::with_capacity(rows),
        encrypted: Vec::with_capacity(rows),
        log_bytes: Vec::with_capacity(rows),
        log_packets: Vec::with_capacity(rows),
        duration: Vec::with_capacity(rows),
        labels: Vec::with_capacity(rows),
    };
    for _ in 0..rows {
        let device = pick(&mut rng, &DEVICES.map(|d| d.1));
        let protocol = pick(&mut rng, &PROTOCOL_MIX[device]);
        let encrypted = rng.random::<f64>() < ENCRYPTED[protocol];
        let log_bytes = DEVICES[device].2 + noise.sample(&mut rng);
        let log_packets = 0.8 * log_bytes - 1.0 + noise.sample(&mut rng);
        let duration = DURATION[protocol] * (1.0 + 0.2 * noise.sample(&mut rng));
        let (mut shown_device, mut shown_protocol) = (device, protocol);
        let anomaly = rng.random::<f64>() < anomaly_rate;
        if anomaly {
            if rng.random::<bool>() {
                // Wrong device: another type's label on this device's numbers.
                shown_device = (device + 1 + rng.random_range(0..DEVICES.len() - 1)) % DEVICES.len();
            } else {
                // Impossible combination: a protocol this device never uses.
                let never: Vec<usize> = (0..PROTOCOLS.len()).filter(|&p| PROTOCOL_MIX[device][p] == 0.0).collect();
                shown_protocol = never[rng.random_range(0..never.len())];
            }
        }
        events.device.push(DEVICES[shown_device].0.to_string());
        events.protocol.push(PROTOCOLS[shown_protocol].to_string());
        events.encrypted.push(encrypted);
        events.log_bytes.push(log_bytes as f32);
        events.log_packets.push(log_packets as f32);
        events.duration.push(duration as f32);
        events.labels.push(anomaly);
    }
    events
}

/// An index drawn with the given probabilities.
fn pick(rng: &mut Pcg64Mcg, weights: &[f64]) -> usize {
    let mut u = rng.random::<f64>() * weights.iter().sum::<f64>();
    for (i, &w) in weights.iter().enumerate() {
        if u < w {
            return i;
        }
        u -= w;
    }
    weights.iter().rposition(|&w| w > 0.0).unwrap_or(0)
}

impl DeviceEvents {
    /// The column names, categorical ones first.
    pub const NAMES: [&'static str; 6] = ["device", "protocol", "encrypted", "log_bytes", "log_packets", "duration"];

    pub fn rows(&self) -> usize {
        self.labels.len()
    }

    /// The three categorical columns as text (booleans as `true`/`false`, as every door reads them).
    pub fn texts(&self) -> [Vec<String>; 3] {
        [self.device.clone(), self.protocol.clone(), self.encrypted.iter().map(|b| b.to_string()).collect()]
    }

    /// The feature matrix with the categorical columns coded in `vocabularies` (one per categorical
    /// column, in [`Self::NAMES`] order), and the feature kinds.
    pub fn coded(&self, vocabularies: &[Vocabulary; 3]) -> (Array2<f32>, Vec<FeatureKind>) {
        let texts = self.texts();
        let mut matrix = Array2::zeros((self.rows(), 6));
        for (j, (column, vocabulary)) in texts.iter().zip(vocabularies).enumerate() {
            for (i, value) in column.iter().enumerate() {
                matrix[(i, j)] = vocabulary.code(Some(value)) as f32;
            }
        }
        for (j, column) in [&self.log_bytes, &self.log_packets, &self.duration].into_iter().enumerate() {
            for (i, &v) in column.iter().enumerate() {
                matrix[(i, 3 + j)] = v;
            }
        }
        let mut kinds: Vec<FeatureKind> =
            vocabularies.iter().map(|v| FeatureKind::Categorical { vocabulary: v.clone() }).collect();
        kinds.extend([FeatureKind::Numeric, FeatureKind::Numeric, FeatureKind::Numeric]);
        (matrix, kinds)
    }

    /// Vocabularies learned from these events' categorical columns.
    pub fn vocabularies(&self, max_categories: usize) -> Result<[Vocabulary; 3]> {
        let [device, protocol, encrypted] = self.texts();
        let fit = |name: &str, values: &[String]| {
            Vocabulary::fit(name, values.iter().map(|v| Some(v.as_str())), max_categories)
        };
        Ok([fit("device", &device)?, fit("protocol", &protocol)?, fit("encrypted", &encrypted)?])
    }

    /// The events one-hot encoded by hand — one 0/1 column per value of each categorical column in
    /// `vocabularies`, then the numbers — for comparing with models that take numbers only.
    pub fn one_hot(&self, vocabularies: &[Vocabulary; 3]) -> (Array2<f32>, Vec<String>) {
        let texts = self.texts();
        let mut names = Vec::new();
        for (name, vocabulary) in Self::NAMES.iter().zip(vocabularies) {
            names.extend(vocabulary.values().iter().map(|v| format!("{name}={v}")));
        }
        names.extend(Self::NAMES[3..].iter().map(|n| n.to_string()));
        let mut matrix = Array2::zeros((self.rows(), names.len()));
        let mut start = 0;
        for (column, vocabulary) in texts.iter().zip(vocabularies) {
            for (i, value) in column.iter().enumerate() {
                if let Some(k) = vocabulary.values().iter().position(|v| v == value) {
                    matrix[(i, start + k)] = 1.0;
                }
            }
            start += vocabulary.len();
        }
        for (j, column) in [&self.log_bytes, &self.log_packets, &self.duration].into_iter().enumerate() {
            for (i, &v) in column.iter().enumerate() {
                matrix[(i, start + j)] = v;
            }
        }
        (matrix, names)
    }

    /// The events as an Arrow record batch: `device` and `protocol` as text, `encrypted` boolean, the
    /// numbers `Float32`, and `label` (`Boolean`, true for an anomaly).
    #[cfg(feature = "arrow")]
    pub fn record_batch(&self) -> Result<arrow::array::RecordBatch> {
        use arrow::array::{ArrayRef, BooleanArray, Float32Array, StringArray};
        use std::sync::Arc;
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("device", Arc::new(StringArray::from(self.device.clone()))),
            ("protocol", Arc::new(StringArray::from(self.protocol.clone()))),
            ("encrypted", Arc::new(BooleanArray::from(self.encrypted.clone()))),
            ("log_bytes", Arc::new(Float32Array::from(self.log_bytes.clone()))),
            ("log_packets", Arc::new(Float32Array::from(self.log_packets.clone()))),
            ("duration", Arc::new(Float32Array::from(self.duration.clone()))),
            ("label", Arc::new(BooleanArray::from(self.labels.clone()))),
        ];
        Ok(arrow::array::RecordBatch::try_from_iter(columns)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anomalies_are_invisible_in_the_numbers_alone() {
        let events = device_events(20_000, 0.1, 1);
        let share = events.labels.iter().filter(|&&a| a).count() as f64 / 20_000.0;
        assert!((share - 0.1).abs() < 0.01, "{share}");
        // Wrong-device anomalies carry the numbers of a real device: their byte sizes fall in the normal
        // range of some device, so no number alone marks them.
        let normal_sizes: Vec<f32> =
            events.labels.iter().zip(&events.log_bytes).filter(|(a, _)| !**a).map(|(_, &b)| b).collect();
        let (lo, hi) = normal_sizes.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        assert!(events.log_bytes.iter().all(|&b| b > lo - 1.0 && b < hi + 1.0));
        // Impossible combinations do occur among anomalies and never among normal events.
        let pairs = |anomaly: bool| {
            events
                .labels
                .iter()
                .enumerate()
                .filter(|(_, a)| **a == anomaly)
                .any(|(i, _)| events.device[i] == "camera" && events.protocol[i] == "mqtt")
        };
        assert!(pairs(true) && !pairs(false));
    }

    #[test]
    fn the_same_seed_gives_the_same_events() {
        let (a, b) = (device_events(500, 0.1, 7), device_events(500, 0.1, 7));
        assert_eq!(a.device, b.device);
        assert_eq!(a.log_bytes, b.log_bytes);
        assert_ne!(a.log_bytes, device_events(500, 0.1, 8).log_bytes);
    }
}
