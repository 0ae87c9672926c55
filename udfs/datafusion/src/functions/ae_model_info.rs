//! `ae_model_info([model])`: a model's metadata as JSON text.

use std::sync::{Arc, LazyLock};

use arrow::array::{Array, AsArray, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use autoenc::Autoencoder;
use datafusion::common::{DataFusionError, Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, Signature, TypeSignature, Volatility,
};

use super::common::{DOC_SECTION, MODEL_ARGUMENT};
use super::scalar::{AeFunction, AeScalarFunc};
use crate::arguments::literal_argument;
use crate::registry::ModelRegistry;

fn is_binary(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Binary | DataType::LargeBinary | DataType::BinaryView)
}

/// `ae_model_info`: params, architecture, feature names, threshold, score sketch size and training report
/// of a model, as the JSON the model file holds.
pub type AeModelInfoFunc = AeScalarFunc<ModelInfo>;

/// What [`AeModelInfoFunc`] computes: the metadata of the model each row names, without features.
#[derive(Debug)]
pub struct ModelInfo;

static DOCUMENTATION: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION,
        "The model's metadata as JSON text: format version, params, architecture, feature names, threshold, \
         training report.",
        "ae_model_info([model])",
    )
    .with_argument("model", MODEL_ARGUMENT)
    .with_sql_example("SELECT ae_model_info('sensors')::json->>'threshold';")
    .build()
});

/// The metadata JSON of a loaded model.
fn info(model: &Autoencoder) -> Result<String> {
    let bytes = model.to_bytes().map_err(|e| DataFusionError::Execution(format!("ae_model_info: {e}")))?;
    let metadata = autoenc::io::model_file::read_metadata(&bytes)
        .map_err(|e| DataFusionError::Execution(format!("ae_model_info: {e}")))?;
    serde_json::to_string(&metadata).map_err(|e| DataFusionError::Execution(format!("ae_model_info: {e}")))
}

impl AeFunction for ModelInfo {
    const NAME: &'static str = "ae_model_info";
    fn documentation() -> &'static Documentation {
        &DOCUMENTATION
    }
    fn signature() -> Signature {
        // No argument means the default model.
        Signature::one_of(vec![TypeSignature::Nullary, TypeSignature::VariadicAny], Volatility::Immutable)
    }
    fn return_type() -> DataType {
        DataType::Utf8
    }
    fn plan(registry: &ModelRegistry, args: ReturnFieldArgs) -> Result<DataType> {
        match args.arg_fields {
            [] => {
                registry.default_model().map_err(|e| DataFusionError::Plan(e.to_string()))?;
            }
            [one] => match one.data_type() {
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                    let name = match args.scalar_arguments.first().copied().flatten() {
                        Some(
                            ScalarValue::Utf8(Some(s))
                            | ScalarValue::LargeUtf8(Some(s))
                            | ScalarValue::Utf8View(Some(s)),
                        ) => s,
                        _ => return plan_err!("ae_model_info: the model name must be a string literal"),
                    };
                    registry.get(name).map_err(|e| DataFusionError::Plan(e.to_string()))?;
                }
                DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {}
                other => return plan_err!("ae_model_info: expected a model name or model bytes, got {other}"),
            },
            more => return plan_err!("ae_model_info: expected at most one argument (the model), got {}", more.len()),
        }
        Ok(DataType::Utf8)
    }
    fn invoke(registry: &ModelRegistry, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        if rows == 0 {
            return Ok(ColumnarValue::Array(Arc::new(StringArray::new_null(0))));
        }
        // A name arrives as a scalar, or (through datafusion-ffi) as an array repeating it.
        let name = match args.args.first() {
            Some(value) if !is_binary(&value.data_type()) => literal_argument(value)?,
            _ => None,
        };
        let text: StringArray = match (args.args.first(), name) {
            (None, _) => {
                let model = registry.default_model().map_err(|e| DataFusionError::Execution(e.to_string()))?;
                let json = info(&model)?;
                (0..rows).map(|_| Some(json.clone())).collect()
            }
            (
                _,
                Some(
                    ScalarValue::Utf8(Some(name))
                    | ScalarValue::LargeUtf8(Some(name))
                    | ScalarValue::Utf8View(Some(name)),
                ),
            ) => {
                let model = registry.get(&name).map_err(|e| DataFusionError::Execution(e.to_string()))?;
                let json = info(&model)?;
                (0..rows).map(|_| Some(json.clone())).collect()
            }
            (Some(value), _) if is_binary(&value.data_type()) => {
                let column = cast(&value.to_array(rows)?, &DataType::LargeBinary)?;
                let column = column.as_binary::<i64>();
                let mut out = Vec::with_capacity(rows);
                for i in 0..rows {
                    out.push(if column.is_null(i) {
                        None
                    } else {
                        let model = Autoencoder::from_bytes(column.value(i))
                            .map_err(|e| DataFusionError::Execution(format!("ae_model_info: {e}")))?;
                        Some(info(&model)?)
                    });
                }
                out.into_iter().collect()
            }
            (Some(_), _) => return exec_err!("ae_model_info: the model name must be a non-NULL literal"),
        };
        Ok(ColumnarValue::Array(Arc::new(text)))
    }
}
