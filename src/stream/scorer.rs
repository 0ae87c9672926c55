//! One micro-batch through the model: decode every message, score all good rows in one pass of the
//! core (one BLAS call per layer for the whole batch), and build the output, alert and dead-letter
//! messages. Pure CPU work with no Kafka I/O: the pipeline runs it off the async runtime.

use ndarray::{Array2, ArrayView2, s};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};

use super::config::OutputFormat;
use super::decode::{BadInput, Decoded, Decoder};
use super::encode::{RowResults, encode};
use super::threshold::SlidingThreshold;
use crate::Autoencoder;

/// A message to produce, with the input's key and headers.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub key: Option<Vec<u8>>,
    pub headers: Option<OwnedHeaders>,
    pub payload: Vec<u8>,
    /// The input's partition, for keeping per-partition order in the output topic.
    pub input_partition: i32,
}

/// What one batch produced.
#[derive(Debug, Default)]
pub struct Processed {
    pub outputs: Vec<Outgoing>,
    /// Copies of the outputs flagged as anomalies (for the alerts topic).
    pub alerts: Vec<Outgoing>,
    /// Original messages that could not be scored, with the reason in their headers.
    pub dead_letters: Vec<(Outgoing, &'static str)>,
    pub rows: usize,
    pub anomalies: usize,
    /// The rows scored as normal (for continual learning), when asked for.
    pub normal_rows: Option<Array2<f32>>,
}

/// The model and everything derived from it that the batch needs.
pub struct BatchContext<'a> {
    pub model: &'a Autoencoder,
    pub decoder: &'a Decoder,
    pub model_version: &'a str,
    pub output_format: OutputFormat,
    pub window: Option<&'a mut SlidingThreshold>,
    pub collect_normal: bool,
}

impl BatchContext<'_> {
    /// The same context for a sub-batch (the sliding window is borrowed again, not copied).
    fn reborrow(&mut self) -> BatchContext<'_> {
        BatchContext {
            model: self.model,
            decoder: self.decoder,
            model_version: self.model_version,
            output_format: self.output_format,
            window: self.window.as_deref_mut(),
            collect_normal: self.collect_normal,
        }
    }
}

/// Headers of a dead letter: the input's own plus where it came from and why it was refused.
fn dead_letter(message: &OwnedMessage, reason: &str, code: &'static str) -> (Outgoing, &'static str) {
    let mut headers = OwnedHeaders::new();
    if let Some(original) = message.headers() {
        for header in original.iter() {
            headers = headers.insert(Header { key: header.key, value: header.value });
        }
    }
    let partition = message.partition().to_string();
    let offset = message.offset().to_string();
    headers = headers
        .insert(Header { key: "autoenc.error", value: Some(code) })
        .insert(Header { key: "autoenc.error.message", value: Some(reason) })
        .insert(Header { key: "autoenc.topic", value: Some(message.topic()) })
        .insert(Header { key: "autoenc.partition", value: Some(&partition) })
        .insert(Header { key: "autoenc.offset", value: Some(&offset) });
    let outgoing = Outgoing {
        key: message.key().map(<[u8]>::to_vec),
        headers: Some(headers),
        payload: message.payload().unwrap_or_default().to_vec(),
        input_partition: message.partition(),
    };
    (outgoing, code)
}

/// Scores one batch. Never fails on data: every message ends as an output or a dead letter.
pub fn process_batch(messages: &[OwnedMessage], mut context: BatchContext<'_>) -> Processed {
    let width = context.model.n_features();
    let mut processed = Processed::default();
    let mut good: Vec<(&OwnedMessage, Decoded)> = Vec::with_capacity(messages.len());
    for message in messages {
        let decoded = match message.payload() {
            None => Err(BadInput::Unparseable { format: "any", detail: "the message has no value".into() }),
            Some(payload) => context.decoder.decode(payload, width),
        };
        match decoded {
            Ok(decoded) if decoded.rows > 0 => good.push((message, decoded)),
            Ok(_) => {} // an Arrow message with no rows: nothing to score, nothing to say
            Err(bad) => processed.dead_letters.push(dead_letter(message, &bad.to_string(), bad.code())),
        }
    }
    if good.is_empty() {
        return processed;
    }
    let rows: usize = good.iter().map(|(_, d)| d.rows).sum();
    let mut values = Vec::with_capacity(rows * width);
    for (_, decoded) in &good {
        values.extend_from_slice(&decoded.values);
    }
    let matrix = Array2::from_shape_vec((rows, width), values).expect("decoders return rows × width values");
    let details = match context.model.score_details(matrix.view()) {
        Ok(details) => details,
        // The decoders check what the core checks, but a finite row can still overflow the network. One
        // bad message must not take its batch down: score the halves apart, down to the message that
        // still fails, which becomes a dead letter.
        Err(error) if messages.len() == 1 => {
            processed.dead_letters.push(dead_letter(&messages[0], &error.to_string(), "model_error"));
            return processed;
        }
        Err(error) => {
            tracing::warn!("batch scoring failed ({error}); scoring its halves apart");
            return process_halves(messages, context);
        }
    };
    let threshold = context.window.as_deref_mut().and_then(SlidingThreshold::current);
    let scores = details.scores.to_vec();
    let percentiles: Vec<f64> = scores.iter().map(|&s| context.model.percentile(s)).collect();
    let flags: Vec<bool> = scores
        .iter()
        .map(|&s| match threshold {
            Some(t) => s > t,
            None => context.model.is_anomaly(s),
        })
        .collect();
    if let Some(window) = context.window.as_deref_mut() {
        window.extend(&scores);
    }

    let mut first = 0;
    for (message, decoded) in &good {
        let range = first..first + decoded.rows;
        let results = RowResults {
            embedding: details.embedding.slice(s![range.clone(), ..]),
            scores: &scores[range.clone()],
            percentiles: &percentiles[range.clone()],
            flags: &flags[range.clone()],
            model_version: context.model_version,
        };
        let payload = message.payload().unwrap_or_default();
        match encode(context.output_format, payload, &decoded.record, context.decoder.csv_columns(), results) {
            Ok(bytes) => {
                let outgoing = Outgoing {
                    key: message.key().map(<[u8]>::to_vec),
                    headers: message.headers().cloned(),
                    payload: bytes,
                    input_partition: message.partition(),
                };
                let flagged = results.flags.iter().filter(|&&f| f).count();
                if flagged > 0 {
                    processed.alerts.push(outgoing.clone());
                }
                processed.anomalies += flagged;
                processed.rows += decoded.rows;
                processed.outputs.push(outgoing);
            }
            Err(reason) => processed.dead_letters.push(dead_letter(message, &reason, "unencodable")),
        }
        first = range.end;
    }
    if context.collect_normal {
        processed.normal_rows = Some(normal_rows(matrix.view(), &flags));
    }
    processed
}

fn normal_rows(matrix: ArrayView2<f32>, flags: &[bool]) -> Array2<f32> {
    let keep: Vec<usize> = (0..matrix.nrows()).filter(|&i| !flags[i]).collect();
    matrix.select(ndarray::Axis(0), &keep)
}

/// Scores the two halves of a batch the core refused, each as a batch of its own: a bad message costs
/// about log2(batch) extra passes, and only it ends as a dead letter.
fn process_halves(messages: &[OwnedMessage], mut context: BatchContext<'_>) -> Processed {
    let (left, right) = messages.split_at(messages.len() / 2);
    let mut all = process_batch(left, context.reborrow());
    let right = process_batch(right, context.reborrow());
    all.outputs.extend(right.outputs);
    all.alerts.extend(right.alerts);
    all.dead_letters.extend(right.dead_letters);
    all.rows += right.rows;
    all.anomalies += right.anomalies;
    all.normal_rows = match (all.normal_rows.take(), right.normal_rows) {
        (Some(a), Some(b)) => ndarray::concatenate(ndarray::Axis(0), &[a.view(), b.view()]).ok(),
        (a, b) => a.or(b),
    };
    all
}

#[cfg(test)]
mod tests {
    use rdkafka::Timestamp;

    use super::*;
    use crate::stream::StreamConfig;
    use crate::{LatentSize, synthetic};

    fn message(offset: i64, payload: &str) -> OwnedMessage {
        let key = Some(format!("k{offset}").into_bytes());
        OwnedMessage::new(Some(payload.as_bytes().to_vec()), key, "in".into(), Timestamp::NotAvailable, 0, offset, None)
    }

    #[test]
    fn a_row_the_core_refuses_is_a_dead_letter_and_its_batch_still_scores() {
        let data = synthetic::sensor_stream(300, 3, 300, 0.0, 4);
        let names: Vec<String> = (0..3).map(|j| format!("s{j}")).collect();
        let model = Autoencoder::params()
            .latent(LatentSize::Fixed(2))
            .epochs(2)
            .check()
            .unwrap()
            .fit_with(data.rows.view(), names.clone(), &mut |_| {})
            .unwrap();
        let decoder = Decoder::new(&StreamConfig::default(), &names).unwrap();
        // Finite, so the decoder lets it through, but far outside the training range: its squared error
        // overflows to infinity and the core refuses the row.
        let messages = [
            message(0, r#"{"s0": 1.0, "s1": 2.0, "s2": 3.0}"#),
            message(1, r#"{"s0": 3e38, "s1": -3e38, "s2": 3e38}"#),
            message(2, r#"{"s0": 1.5, "s1": 2.5, "s2": 3.5}"#),
        ];
        let context = |collect_normal| BatchContext {
            model: &model,
            decoder: &decoder,
            model_version: "v",
            output_format: OutputFormat::Json,
            window: None,
            collect_normal,
        };
        let processed = process_batch(&messages, context(false));
        let keys: Vec<_> = processed.outputs.iter().map(|o| o.key.clone().unwrap()).collect();
        assert_eq!(keys, [b"k0".to_vec(), b"k2".to_vec()], "the good rows are scored, in order");
        assert_eq!(processed.dead_letters.len(), 1);
        let (letter, code) = &processed.dead_letters[0];
        assert_eq!(*code, "model_error");
        assert_eq!(letter.key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(processed.rows, 2);

        // Two refused rows in a batch of ten: the halves are scored apart down to them, in order.
        let messages: Vec<OwnedMessage> = (0..10)
            .map(|i| match i {
                3 | 8 => message(i, r#"{"s0": 3e38, "s1": -3e38, "s2": 3e38}"#),
                _ => message(i, &format!(r#"{{"s0": {}, "s1": 2.0, "s2": 3.0}}"#, 1.0 + i as f64 / 10.0)),
            })
            .collect();
        let processed = process_batch(&messages, context(true));
        let keys: Vec<String> =
            processed.outputs.iter().map(|o| String::from_utf8(o.key.clone().unwrap()).unwrap()).collect();
        assert_eq!(keys, ["k0", "k1", "k2", "k4", "k5", "k6", "k7", "k9"]);
        let dead: Vec<_> = processed.dead_letters.iter().map(|(o, code)| (o.key.clone().unwrap(), *code)).collect();
        assert_eq!(dead, [(b"k3".to_vec(), "model_error"), (b"k8".to_vec(), "model_error")]);
        let normal = processed.normal_rows.expect("asked for").nrows();
        assert_eq!(normal + processed.anomalies, 8, "every scored row is normal or flagged");
    }
}
