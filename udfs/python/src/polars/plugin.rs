//! The `#[polars_expr]` functions Python registers with `register_plugin_function`. Each resolves the
//! model from its keyword arguments and hands the columns to [`Operation`]; the output-type functions
//! run at planning, so dtype and dimension errors surface before any data is read.
//!
//! Polars calls these from its own threads without the GIL.

use std::sync::Arc;

use autoenc::Autoencoder;
use polars::prelude::*;
use pyo3_polars::derive::polars_expr;
use serde::Deserialize;

use super::model_cache;
use autoenc_polars::Operation;

/// The keyword arguments every function takes: the model as a path or as model-file bytes (from a
/// `Model`), and the options of `is_anomaly` and `explain`.
#[derive(Deserialize)]
struct Kwargs {
    path: Option<String>,
    bytes: Option<ModelBytes>,
    #[serde(default)]
    threshold: Option<f64>,
    #[serde(default)]
    k: Option<usize>,
}

/// Python `bytes`. Pickle hands them over as a byte buffer, which `Vec<u8>`'s own `Deserialize`
/// (a sequence of numbers) does not accept.
struct ModelBytes(Vec<u8>);

impl<'de> Deserialize<'de> for ModelBytes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ModelBytes;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("the bytes of a model file")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<ModelBytes, E> {
                Ok(ModelBytes(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<ModelBytes, E> {
                Ok(ModelBytes(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<ModelBytes, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(ModelBytes(out))
            }
        }
        deserializer.deserialize_byte_buf(Visitor)
    }
}

impl Kwargs {
    fn model(&self, function: &str) -> PolarsResult<Arc<Autoencoder>> {
        match (&self.path, &self.bytes) {
            (_, Some(bytes)) => model_cache::by_bytes(function, &bytes.0),
            (Some(path), None) => model_cache::by_path(function, path),
            (None, None) => polars_bail!(ComputeError: "{function}: no model given"),
        }
    }
}

fn run(operation: Operation, inputs: &[Series], kwargs: &Kwargs) -> PolarsResult<Series> {
    let model = kwargs.model(operation.name())?;
    operation.evaluate(&model, inputs)
}

fn field(operation: Operation, fields: &[Field], kwargs: &Kwargs) -> PolarsResult<Field> {
    let model = kwargs.model(operation.name())?;
    operation.output_field(&model, fields)
}

fn explain_k(kwargs: &Kwargs) -> usize {
    kwargs.k.unwrap_or(3)
}

fn encode_field(fields: &[Field], kwargs: Kwargs) -> PolarsResult<Field> {
    field(Operation::Encode, fields, &kwargs)
}
#[polars_expr(output_type_func_with_kwargs = encode_field)]
fn ae_encode(inputs: &[Series], kwargs: Kwargs) -> PolarsResult<Series> {
    run(Operation::Encode, inputs, &kwargs)
}

fn decode_field(fields: &[Field], kwargs: Kwargs) -> PolarsResult<Field> {
    field(Operation::Decode, fields, &kwargs)
}
#[polars_expr(output_type_func_with_kwargs = decode_field)]
fn ae_decode(inputs: &[Series], kwargs: Kwargs) -> PolarsResult<Series> {
    run(Operation::Decode, inputs, &kwargs)
}

fn reconstruct_field(fields: &[Field], kwargs: Kwargs) -> PolarsResult<Field> {
    field(Operation::Reconstruct, fields, &kwargs)
}
#[polars_expr(output_type_func_with_kwargs = reconstruct_field)]
fn ae_reconstruct(inputs: &[Series], kwargs: Kwargs) -> PolarsResult<Series> {
    run(Operation::Reconstruct, inputs, &kwargs)
}

fn score_field(fields: &[Field], kwargs: Kwargs) -> PolarsResult<Field> {
    field(Operation::Score, fields, &kwargs)
}
#[polars_expr(output_type_func_with_kwargs = score_field)]
fn ae_score(inputs: &[Series], kwargs: Kwargs) -> PolarsResult<Series> {
    run(Operation::Score, inputs, &kwargs)
}

fn percentile_field(fields: &[Field], kwargs: Kwargs) -> PolarsResult<Field> {
    field(Operation::Percentile, fields, &kwargs)
}
#[polars_expr(output_type_func_with_kwargs = percentile_field)]
fn ae_percentile(inputs: &[Series], kwargs: Kwargs) -> PolarsResult<Series> {
    run(Operation::Percentile, inputs, &kwargs)
}

fn is_anomaly_field(fields: &[Field], kwargs: Kwargs) -> PolarsResult<Field> {
    field(Operation::IsAnomaly { threshold: kwargs.threshold }, fields, &kwargs)
}
#[polars_expr(output_type_func_with_kwargs = is_anomaly_field)]
fn ae_is_anomaly(inputs: &[Series], kwargs: Kwargs) -> PolarsResult<Series> {
    run(Operation::IsAnomaly { threshold: kwargs.threshold }, inputs, &kwargs)
}

fn explain_field(fields: &[Field], kwargs: Kwargs) -> PolarsResult<Field> {
    field(Operation::Explain { k: explain_k(&kwargs) }, fields, &kwargs)
}
#[polars_expr(output_type_func_with_kwargs = explain_field)]
fn ae_explain(inputs: &[Series], kwargs: Kwargs) -> PolarsResult<Series> {
    run(Operation::Explain { k: explain_k(&kwargs) }, inputs, &kwargs)
}
