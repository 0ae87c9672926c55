//! One micro-batch through the model: decode every message, score all good rows in one pass of the
//! core (one BLAS call per layer for the whole batch), and build the output, alert and dead-letter
//! messages. Pure CPU work with no Kafka I/O: the pipeline runs it off the async runtime.
//!
//! Every message built here fits the producer's record limit (`message.max.bytes` less framing): the
//! producer refuses a larger one, and a refusal that stopped the pipeline would stop it for good (a
//! restart replays the same message). A message whose output would be too large becomes a `too_large`
//! dead letter, and a dead letter too large to send has its payload cut, with the original size in its
//! headers.

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
    /// Per categorical feature with values outside its vocabulary (scored as other): its name and how
    /// many, over the scored messages.
    pub unknown_categories: Vec<(String, u64)>,
}

/// The model and everything derived from it that the batch needs.
pub struct BatchContext<'a> {
    pub model: &'a Autoencoder,
    pub decoder: &'a Decoder,
    pub model_version: &'a str,
    pub output_format: OutputFormat,
    pub window: Option<&'a mut SlidingThreshold>,
    pub collect_normal: bool,
    /// The largest record (payload, key and headers) the producer takes.
    pub max_record_bytes: usize,
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
            max_record_bytes: self.max_record_bytes,
        }
    }
}

/// The size librdkafka gives a header list: per header its key and value and two length varints (at
/// most 5 bytes each), plus the count.
fn headers_size(headers: Option<&OwnedHeaders>) -> usize {
    headers.map_or(0, |h| 5 + h.iter().map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len) + 10).sum::<usize>())
}

/// What a record counts against `message.max.bytes`, framing aside (the limit keeps room for that).
pub fn record_size(outgoing: &Outgoing) -> usize {
    outgoing.payload.len() + outgoing.key.as_ref().map_or(0, Vec::len) + headers_size(outgoing.headers.as_ref())
}

/// The first `n` bytes of `text`, cut back to a character boundary.
fn prefix(text: &str, n: usize) -> &str {
    let mut end = n.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The longest reason message a dead letter carries (a reason quoting a huge field must not be what
/// makes its dead letter too large).
const MAX_REASON: usize = 1000;

/// A dead letter of `message`: its key, headers and payload plus headers saying where it came from and
/// why it was refused. If that is larger than `limit`, the original headers go first (replaced by their
/// size) when they take over an eighth of the limit, then the key is cut to an eighth of it, and the
/// payload is cut to what is left; `autoenc.original.size` gives the payload's full size and
/// `autoenc.truncated` says what was cut.
fn dead_letter(message: &OwnedMessage, reason: &str, code: &'static str, limit: usize) -> (Outgoing, &'static str) {
    let payload = message.payload().unwrap_or_default();
    let key = message.key();
    let original_headers = message.headers().cloned();
    let partition = message.partition().to_string();
    let offset = message.offset().to_string();
    let reason = prefix(reason, MAX_REASON);
    let ours = |headers: OwnedHeaders| {
        headers
            .insert(Header { key: "autoenc.error", value: Some(code) })
            .insert(Header { key: "autoenc.error.message", value: Some(reason) })
            .insert(Header { key: "autoenc.topic", value: Some(message.topic()) })
            .insert(Header { key: "autoenc.partition", value: Some(&partition) })
            .insert(Header { key: "autoenc.offset", value: Some(&offset) })
    };
    let full = Outgoing {
        key: key.map(<[u8]>::to_vec),
        headers: Some(ours(original_headers.clone().unwrap_or_default())),
        payload: payload.to_vec(),
        input_partition: message.partition(),
    };
    if record_size(&full) <= limit {
        return (full, code);
    }
    let eighth = limit / 8;
    let mut cut = Vec::new();
    let original_headers_size = headers_size(original_headers.as_ref());
    let mut dropped_headers = String::new();
    let mut headers = if original_headers_size > eighth {
        cut.push("headers");
        dropped_headers = original_headers_size.to_string();
        OwnedHeaders::new()
    } else {
        original_headers.unwrap_or_default()
    };
    let mut key = key.map(<[u8]>::to_vec);
    let key_size = key.as_ref().map_or(0, Vec::len).to_string();
    let key_cut = key.as_ref().is_some_and(|k| k.len() > eighth);
    if key_cut {
        key.iter_mut().for_each(|k| k.truncate(eighth));
        cut.push("key");
    }
    cut.push("payload");
    let payload_size = payload.len().to_string();
    let what = cut.join(",");
    headers = ours(headers)
        .insert(Header { key: "autoenc.original.size", value: Some(&payload_size) })
        .insert(Header { key: "autoenc.truncated", value: Some(&what) });
    if !dropped_headers.is_empty() {
        headers = headers.insert(Header { key: "autoenc.original.headers.size", value: Some(&dropped_headers) });
    }
    if key_cut {
        headers = headers.insert(Header { key: "autoenc.original.key.size", value: Some(&key_size) });
    }
    let mut letter =
        Outgoing { key, headers: Some(headers), payload: Vec::new(), input_partition: message.partition() };
    let room = limit.saturating_sub(record_size(&letter));
    letter.payload = payload[..room.min(payload.len())].to_vec();
    (letter, code)
}

/// A copy of a record the broker refused as too large, for the dead-letter topic: its key and headers
/// (those only while small), the first `keep` bytes of its payload, and headers with the reason, the
/// topic that refused it and the original size. The broker refuses a whole producer batch at once, so
/// records of normal size refused with a large one arrive here too; they keep their whole payload.
pub fn refused_copy(refused: &OwnedMessage, detail: &str, keep: usize) -> Outgoing {
    let payload = refused.payload().unwrap_or_default();
    let original_size = payload.len().to_string();
    let headers = refused.headers().filter(|h| headers_size(Some(h)) <= keep / 4).cloned().unwrap_or_default();
    let reason = format!(
        "the broker refused this {}-byte record for topic {} as too large: {detail}",
        payload.len(),
        refused.topic()
    );
    let headers = headers
        .insert(Header { key: "autoenc.error", value: Some("too_large") })
        .insert(Header { key: "autoenc.error.message", value: Some(prefix(&reason, MAX_REASON)) })
        .insert(Header { key: "autoenc.refused.topic", value: Some(refused.topic()) })
        .insert(Header { key: "autoenc.original.size", value: Some(&original_size) });
    Outgoing {
        key: refused.key().map(|k| k[..k.len().min(keep / 4)].to_vec()),
        headers: Some(headers),
        payload: payload[..payload.len().min(keep)].to_vec(),
        input_partition: refused.partition(),
    }
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
            Err(bad) => processed.dead_letters.push(dead_letter(
                message,
                &bad.to_string(),
                bad.code(),
                context.max_record_bytes,
            )),
        }
    }
    if good.is_empty() {
        return processed;
    }
    let mut unknown = vec![0u64; context.decoder.feature_fields().len()];
    for (_, decoded) in &good {
        unknown.iter_mut().zip(&decoded.unknown).for_each(|(total, n)| *total += n);
    }
    let names = context.decoder.feature_fields().iter();
    processed.unknown_categories =
        names.zip(unknown).filter(|&(_, n)| n > 0).map(|(name, n)| (name.clone(), n)).collect();
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
            let limit = context.max_record_bytes;
            processed.dead_letters.push(dead_letter(&messages[0], &error.to_string(), "model_error", limit));
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
                let size = record_size(&outgoing);
                if size > context.max_record_bytes {
                    // Checked before sending: the producer would refuse it, and with it the batch.
                    let reason = format!(
                        "the output record would be {size} bytes, over the {}-byte limit (the producer's \
                         message.max.bytes less room for framing)",
                        context.max_record_bytes
                    );
                    processed.dead_letters.push(dead_letter(message, &reason, "too_large", context.max_record_bytes));
                    first = range.end;
                    continue;
                }
                let flagged = results.flags.iter().filter(|&&f| f).count();
                if flagged > 0 {
                    processed.alerts.push(outgoing.clone());
                }
                processed.anomalies += flagged;
                processed.rows += decoded.rows;
                processed.outputs.push(outgoing);
            }
            Err(reason) => {
                processed.dead_letters.push(dead_letter(message, &reason, "unencodable", context.max_record_bytes))
            }
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

    /// A small model of three sensors `s0..s2` and its JSON decoder.
    fn three_sensor_model() -> (Autoencoder, Decoder) {
        let data = synthetic::sensor_stream(300, 3, 300, 0.0, 4);
        let names: Vec<String> = (0..3).map(|j| format!("s{j}")).collect();
        let model = Autoencoder::params()
            .latent(LatentSize::Fixed(2))
            .epochs(2)
            .check()
            .unwrap()
            .fit_with(data.rows.view(), names.clone(), &mut |_| {})
            .unwrap();
        let decoder = Decoder::new(&StreamConfig::default(), &names, &[]).unwrap();
        (model, decoder)
    }

    fn message(offset: i64, payload: &str) -> OwnedMessage {
        let key = Some(format!("k{offset}").into_bytes());
        OwnedMessage::new(Some(payload.as_bytes().to_vec()), key, "in".into(), Timestamp::NotAvailable, 0, offset, None)
    }

    #[test]
    fn a_row_the_core_refuses_is_a_dead_letter_and_its_batch_still_scores() {
        let (model, decoder) = three_sensor_model();
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
            max_record_bytes: 1 << 20,
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

    fn header<'a>(outgoing: &'a Outgoing, key: &str) -> Option<&'a str> {
        let headers = outgoing.headers.as_ref()?;
        headers.iter().filter(|h| h.key == key).last().and_then(|h| std::str::from_utf8(h.value?).ok())
    }

    #[test]
    fn an_oversized_dead_letter_is_cut_to_the_limit() {
        let limit = 100_000;
        let payload = vec![b'p'; 300_000];
        let big_headers = OwnedHeaders::new().insert(Header { key: "trace", value: Some(&vec![b'h'; 20_000][..]) });
        let message = OwnedMessage::new(
            Some(payload.clone()),
            Some(vec![b'k'; 30_000]),
            "in".into(),
            Timestamp::NotAvailable,
            3,
            42,
            Some(big_headers),
        );
        let (letter, code) = dead_letter(&message, &"why ".repeat(1000), "too_large", limit);
        assert_eq!(code, "too_large");
        assert!(record_size(&letter) <= limit, "{} bytes", record_size(&letter));
        assert!(letter.payload.len() > limit / 2, "the payload gets the room left: {}", letter.payload.len());
        assert_eq!(letter.key.as_ref().map(Vec::len), Some(limit / 8), "the key is cut to an eighth");
        assert_eq!(header(&letter, "autoenc.truncated"), Some("headers,key,payload"));
        assert_eq!(header(&letter, "autoenc.original.size"), Some("300000"));
        assert_eq!(header(&letter, "autoenc.original.key.size"), Some("30000"));
        assert!(header(&letter, "autoenc.original.headers.size").is_some());
        assert_eq!(header(&letter, "trace"), None, "headers over an eighth of the limit are dropped");
        assert_eq!(header(&letter, "autoenc.offset"), Some("42"));
        assert!(header(&letter, "autoenc.error.message").unwrap().len() <= MAX_REASON);

        // Within the limit nothing is cut and no truncation header is added.
        let small = message_with(b"{}", None);
        let (letter, _) = dead_letter(&small, "bad", "unparseable", limit);
        assert_eq!(letter.payload, b"{}");
        assert_eq!(header(&letter, "autoenc.truncated"), None);

        // A record the broker refused keeps its start, its key and small headers, and says why.
        let refused = message_with(&payload, Some(header_list("trace", "t1")));
        let copy = refused_copy(&refused, "Broker: Message size too large", 16 << 10);
        assert_eq!(copy.payload.len(), 16 << 10);
        assert_eq!(header(&copy, "autoenc.error"), Some("too_large"));
        assert_eq!(header(&copy, "autoenc.original.size"), Some("300000"));
        assert_eq!(header(&copy, "autoenc.refused.topic"), Some("in"));
        assert_eq!(header(&copy, "trace"), Some("t1"));
        assert_eq!(copy.key.as_deref(), Some(&b"k0"[..]));
    }

    fn header_list(key: &str, value: &str) -> OwnedHeaders {
        OwnedHeaders::new().insert(Header { key, value: Some(value) })
    }

    fn message_with(payload: &[u8], headers: Option<OwnedHeaders>) -> OwnedMessage {
        OwnedMessage::new(
            Some(payload.to_vec()),
            Some(b"k0".to_vec()),
            "in".into(),
            Timestamp::NotAvailable,
            0,
            0,
            headers,
        )
    }

    /// What docs/stream.md says of unusual JSON input: a repeated feature field counts with its last
    /// value and both copies stay in the output text; a field named like a result is replaced by it
    /// (the object is then rebuilt, so repeated fields collapse to the last).
    #[test]
    fn repeated_fields_and_fields_named_like_results() {
        let (model, decoder) = three_sensor_model();
        let messages = [
            message(0, r#"{"s0": 1.0, "s1": 2.0, "s2": 3.0}"#),
            message(1, r#"{"s0": 9.0, "s1": 2.0, "s2": 3.0, "s0": 1.0}"#),
            message(
                2,
                r#"{"note": 0, "s0": 1.0, "s1": 2.0, "s2": 3.0, "score": "mine", "is_anomaly": 7, "note": 1.10}"#,
            ),
        ];
        let context = BatchContext {
            model: &model,
            decoder: &decoder,
            model_version: "v",
            output_format: OutputFormat::Json,
            window: None,
            collect_normal: false,
            max_record_bytes: 1 << 20,
        };
        let processed = process_batch(&messages, context);
        assert!(processed.dead_letters.is_empty());
        let text: Vec<String> =
            processed.outputs.iter().map(|o| String::from_utf8(o.payload.clone()).unwrap()).collect();
        let values: Vec<serde_json::Value> = text.iter().map(|t| serde_json::from_str(t).unwrap()).collect();
        let score = |i: usize| values[i]["score"].as_f64().unwrap();
        assert!((score(1) - score(0)).abs() <= 1e-9 * score(0).abs().max(1.0), "the last s0 (1.0) is the one scored");
        assert!(text[1].contains(r#""s0": 9.0"#) && text[1].contains(r#""s0": 1.0"#), "both copies kept: {}", text[1]);
        assert!((score(2) - score(0)).abs() <= 1e-9 * score(0).abs().max(1.0), "the input's score is replaced");
        assert!(!text[2].contains("mine"), "{}", text[2]);
        assert_eq!(values[2]["is_anomaly"], serde_json::Value::Bool(model.is_anomaly(score(2))));
        assert_eq!(values[2]["note"], 1.1, "other fields kept, a repeated one with its last value");
        assert!(
            text[2].contains(r#""note":1.1,"#) && !text[2].contains("1.10"),
            "rebuilt, numbers rewritten: {}",
            text[2]
        );
    }
}
