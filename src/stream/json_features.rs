//! The features of a well-formed JSON message in one walk of the object: every field but
//! the features is only checked (borrowed as raw text), and the feature text is parsed into f32 by a
//! correctly rounding number parser.
//!
//! `Decoder::decode_json` used to borrow every top-level field as raw text first and parse the feature
//! text again afterwards with serde_json; on the benchmark's messages (64 floats of 17 digits) reading
//! them twice was most of the pipeline's own CPU time per message. This reader handles the messages a
//! healthy stream carries. Anything else — a syntax error, a key with escapes, a feature that is not a
//! number or null, a wrong count, an infinity, a feature field given twice, no feature at all — makes it
//! give up (`None`), and the full reader reads the message again to name what is wrong. So bad input is
//! judged in one place only, and for a message both accept the two give the same bits (tested number by
//! number in `decode.rs`).

use std::collections::HashMap;
use std::fmt;

use serde::Deserializer;
use serde::de::{MapAccess, Visitor};
use serde_json::value::RawValue;

use super::encode::OUTPUT_FIELDS;

/// Where a message keeps its features.
#[derive(Debug, Clone)]
pub enum Layout {
    /// All of them in one array field.
    Array { field: String },
    /// One field per feature: each name's position in the row.
    Fields { positions: HashMap<String, usize> },
}

/// A message's feature row, and whether the output may append its fields to the message's text (no
/// output field is there already).
#[derive(Debug, Clone, PartialEq)]
pub struct FastRead {
    pub values: Vec<f32>,
    pub splice: bool,
}

/// Reads the `width` features of `payload`, or `None` when the message needs the full reader.
pub fn read_features(payload: &[u8], layout: &Layout, width: usize) -> Option<FastRead> {
    let mut reader = serde_json::Deserializer::from_slice(payload);
    let read = reader.deserialize_map(Message { layout, width }).ok()??;
    reader.end().ok()?;
    Some(read)
}

/// The top-level object.
struct Message<'l> {
    layout: &'l Layout,
    width: usize,
}

impl<'de> Visitor<'de> for Message<'_> {
    type Value = Option<FastRead>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut splice = true;
        let mut values: Vec<f32> = Vec::new();
        let mut seen: Vec<bool> = Vec::new();
        if let Layout::Fields { .. } = self.layout {
            values = vec![f32::NAN; self.width];
            seen = vec![false; self.width];
        }
        let mut found = false;
        // A key with escapes is not borrowable as `&str`: the read fails and the full reader takes over.
        while let Some(key) = map.next_key::<&str>()? {
            splice &= !OUTPUT_FIELDS.contains(&key);
            match self.layout {
                Layout::Array { field } if key == field => {
                    if found {
                        return Ok(None);
                    }
                    found = true;
                    match parse_array(map.next_value::<&RawValue>()?.get(), self.width) {
                        Some(numbers) => values = numbers,
                        None => return Ok(None),
                    }
                }
                Layout::Fields { positions } if positions.contains_key(key) => {
                    let j = positions[key];
                    if seen[j] {
                        return Ok(None);
                    }
                    seen[j] = true;
                    found = true;
                    match parse_single(map.next_value::<&RawValue>()?.get()) {
                        Some(value) => values[j] = value,
                        None => return Ok(None),
                    }
                }
                _ => {
                    // Borrowed as raw text, as the full reader does, rather than skipped as
                    // `IgnoredAny`: that also checks the field's strings are UTF-8, which skipping
                    // does not, and a message the full reader refuses must not get through here.
                    map.next_value::<&RawValue>()?;
                }
            }
        }
        Ok(found.then_some(FastRead { values, splice }))
    }
}

/// The features array's text: exactly `width` numbers or nulls, or `None`.
///
/// The text was checked to be valid JSON as it was borrowed, so a token that starts like a number is
/// a JSON number and one that starts with `n` is `null`; anything else (a string, an object, `true`)
/// gives up. Numbers are parsed to f64 with `fast-float2` and then narrowed, exactly as the full reader
/// does with serde_json: both round correctly (serde_json has `float_roundtrip`), so the bits agree.
/// serde_json only scans the text when it borrows it, and scanning plus fast-float2 costs less than
/// serde_json's own float parsing: the `stream_batch` bench (64 floats of 17 digits per message) went
/// from 321 k to 365 k messages/s.
fn parse_array(text: &str, width: usize) -> Option<Vec<f32>> {
    let bytes = text.as_bytes();
    let mut at = skip_whitespace(bytes, 0);
    if bytes.get(at) != Some(&b'[') {
        return None;
    }
    at = skip_whitespace(bytes, at + 1);
    let mut values = Vec::with_capacity(width);
    loop {
        let (value, used) = parse_element(&bytes[at..])?;
        if values.len() == width {
            return None;
        }
        values.push(value);
        at = skip_whitespace(bytes, at + used);
        match bytes.get(at)? {
            b',' => at = skip_whitespace(bytes, at + 1),
            b']' => break,
            _ => return None,
        }
    }
    (values.len() == width).then_some(values)
}

/// A single feature field's text: a number or null.
fn parse_single(text: &str) -> Option<f32> {
    let bytes = text.as_bytes();
    let start = skip_whitespace(bytes, 0);
    let (value, used) = parse_element(&bytes[start..])?;
    (skip_whitespace(bytes, start + used) == bytes.len()).then_some(value)
}

/// The number or null at the start of `bytes`, and how many bytes it took. null is a missing value
/// (NaN); a number beyond f32's range is an infinity the full reader refuses, so this gives up on it.
fn parse_element(bytes: &[u8]) -> Option<(f32, usize)> {
    match bytes.first()? {
        b'n' if bytes.starts_with(b"null") => Some((f32::NAN, 4)),
        b'-' | b'0'..=b'9' => {
            let (value, used) = fast_float2::parse_partial::<f64, _>(bytes).ok()?;
            let value = value as f32;
            (!value.is_infinite() && used <= MAX_NUMBER_LEN).then_some((value, used))
        }
        _ => None,
    }
}

/// The longest number token this reader parses; longer ones go to the full reader. fast-float2 stops
/// counting an exponent past 65,536, so a number written with tens of thousands of leading zeros and
/// an exponent to match (`0.000…15e655360`, 1.5) would come out as 0 here; serde_json counts it
/// exactly. No feature value a producer writes is anywhere near this long (a double needs 24 bytes).
pub(super) const MAX_NUMBER_LEN: usize = 100;

/// The index of the first byte from `at` on that is not JSON whitespace.
fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while matches!(bytes.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn array() -> Layout {
        Layout::Array { field: "f".into() }
    }

    fn fields() -> Layout {
        Layout::Fields { positions: [("a".to_string(), 0), ("b".to_string(), 1)].into_iter().collect() }
    }

    fn read(payload: &str, layout: &Layout) -> Option<FastRead> {
        read_features(payload.as_bytes(), layout, 2)
    }

    #[test]
    fn reads_healthy_messages() {
        let got = read(r#"{"id": 7, "f": [1, -2.5e-1], "tags": {"x": [1, "y"]}, "s": "a\"b"}"#, &array()).unwrap();
        assert_eq!(got, FastRead { values: vec![1.0, -0.25], splice: true });
        let got = read(r#"{"f": [null, 3], "score": 1}"#, &array()).unwrap();
        assert!(got.values[0].is_nan() && got.values[1] == 3.0 && !got.splice, "null is missing; score present");
        let got = read(r#"{"b": 2, "x": null, "a": 1}"#, &fields()).unwrap();
        assert_eq!(got, FastRead { values: vec![1.0, 2.0], splice: true });
        let got = read(r#"{"b": null}"#, &fields()).unwrap();
        assert!(got.values.iter().all(|v| v.is_nan()), "absent and null are missing values");
    }

    /// Every kind of bad or unusual message is left to the full reader.
    #[test]
    fn gives_up_on_anything_unusual() {
        for payload in [
            r#"{"f": [1, 2]"#,               // truncated
            r#"{"f": [1, 2]} x"#,            // trailing text
            r#"[1, 2]"#,                     // not an object
            r#"{"f": [1, 2, 3]}"#,           // too many
            r#"{"f": [1]}"#,                 // too few
            r#"{"f": []}"#,                  // none
            r#"{"f": [1, "2"]}"#,            // not a number
            r#"{"f": [1, 1e39]}"#,           // beyond f32
            r#"{"f": "1,2"}"#,               // not an array
            r#"{"f": [1, 2], "f": [3, 4]}"#, // given twice
            r#"{"g": [1, 2]}"#,              // absent
            r#"{"\u0066": [1, 2]}"#,         // escaped key
        ] {
            assert_eq!(read(payload, &array()), None, "{payload}");
        }
        for payload in [r#"{"a": "high", "b": 1}"#, r#"{"a": 1e39}"#, r#"{"a": 1, "a": 2}"#, r#"{"x": 1}"#, "{"] {
            assert_eq!(read(payload, &fields()), None, "{payload}");
        }
        // Bytes that are not UTF-8 inside another field's string, at the top or nested.
        for payload in [&b"{\"f\": [1, 2], \"note\": \"\xff\xfe\"}"[..], b"{\"f\": [1, 2], \"n\": [\"\xc3\"]}"] {
            assert_eq!(read_features(payload, &array(), 2), None, "{}", String::from_utf8_lossy(payload));
        }
    }
}
