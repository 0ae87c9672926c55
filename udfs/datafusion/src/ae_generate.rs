//! `ae_generate([model,] n [, seed])`: a table function returning `n` rows sampled from a variational
//! model — codes drawn from the prior N(0, I), decoded to the original units — with one `FLOAT` column
//! per model feature, named like the feature. The same call as `autoenc generate`, so the same model,
//! n and seed give the same rows.
//!
//! Table functions run at planning, so every argument must be a constant: a model name or a binary model
//! literal, then integers. Arguments are constant-folded first, which lets users write `-1` or `10 * 1000`.

use std::sync::{Arc, LazyLock};

use arrow::array::{ArrayRef, Float32Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use autoenc::Autoencoder;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{DataFusionError, Result, ScalarValue, plan_err};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{Documentation, Expr};
use datafusion::optimizer::simplify_expressions::{ExprSimplifier, SimplifyContext};

use crate::functions::DOC_SECTION;
use crate::registry::ModelRegistry;

/// The most rows one call may ask for: the rows are generated eagerly, so this bounds the memory a
/// single query can take (10 M rows of 100 features is 4 GB).
pub const MAX_GENERATED_ROWS: u64 = 10_000_000;

/// The SQL name.
pub const NAME: &str = "ae_generate";

/// `ae_generate`: samples from a variational model as a table.
#[derive(Debug)]
pub struct AeGenerateFunc {
    registry: Arc<ModelRegistry>,
}

impl AeGenerateFunc {
    pub fn new(registry: Arc<ModelRegistry>) -> Self {
        AeGenerateFunc { registry }
    }

    /// The SQL name, as registered by [`crate::register`].
    pub fn name(&self) -> &str {
        NAME
    }

    /// User documentation (table functions have no `documentation()` hook in DataFusion, so the reference
    /// page asks here).
    pub fn documentation(&self) -> &Documentation {
        &DOCUMENTATION
    }
}

static DOCUMENTATION: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION,
        "Table function: n rows sampled from a variational model (codes drawn from the prior N(0, I), decoded \
         to the original units), one FLOAT column per model feature, named like the feature. The same model, \
         n and seed give the same rows as `autoenc generate`. Other variants are refused.",
        "ae_generate([model,] n [, seed])",
    )
    .with_argument(
        "model",
        "Model name (string literal), model file (binary literal), or omitted for the default model.",
    )
    .with_argument("n", "How many rows: an integer from 0 to 10,000,000.")
    .with_argument("seed", "Seed of the prior samples: a non-negative integer, default 0.")
    .with_sql_example(
        "SELECT * FROM ae_generate('vae', 1000, 7);\nCOPY (SELECT * FROM ae_generate('vae', 100000)) TO 'synthetic.parquet';",
    )
    .build()
});

/// An argument after constant folding; `position` counts from 1 for messages.
fn constant(expr: &Expr, position: usize) -> Result<ScalarValue> {
    if !expr.column_refs().is_empty() {
        return plan_err!("ae_generate: argument {position} must be a constant, got {expr}");
    }
    let simplified = ExprSimplifier::new(SimplifyContext::default()).simplify(expr.clone())?;
    match simplified {
        Expr::Literal(value, _) => Ok(value),
        other => plan_err!("ae_generate: argument {position} must be a constant, got {other}"),
    }
}

/// A non-negative integer argument (`what` names it in messages).
fn count(value: &ScalarValue, what: &str) -> Result<u64> {
    if value.is_null() {
        return plan_err!("ae_generate: {what} is NULL");
    }
    if !value.data_type().is_integer() {
        return plan_err!("ae_generate: {what} must be an integer, got {value} ({})", value.data_type());
    }
    match value.cast_to(&DataType::Int64)? {
        ScalarValue::Int64(Some(n)) if n >= 0 => Ok(n as u64),
        ScalarValue::Int64(Some(n)) => plan_err!("ae_generate: {what} must not be negative, got {n}"),
        _ => plan_err!("ae_generate: {what} must be an integer, got {value}"),
    }
}

impl AeGenerateFunc {
    fn model(&self, value: Option<&ScalarValue>) -> Result<Arc<Autoencoder>> {
        let plan = |e: crate::RegistryError| DataFusionError::Plan(format!("ae_generate: {e}"));
        match value {
            None => self.registry.default_model().map_err(plan),
            Some(
                ScalarValue::Utf8(Some(name)) | ScalarValue::LargeUtf8(Some(name)) | ScalarValue::Utf8View(Some(name)),
            ) => self.registry.get(name).map_err(plan),
            Some(
                ScalarValue::Binary(Some(bytes))
                | ScalarValue::LargeBinary(Some(bytes))
                | ScalarValue::BinaryView(Some(bytes)),
            ) => Autoencoder::from_bytes(bytes)
                .map(Arc::new)
                .map_err(|e| DataFusionError::Plan(format!("ae_generate: {e}"))),
            Some(other) => plan_err!("ae_generate: the model must be a name or a model file, got {other}"),
        }
    }
}

impl TableFunctionImpl for AeGenerateFunc {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let values: Vec<ScalarValue> =
            args.exprs().iter().enumerate().map(|(i, e)| constant(e, i + 1)).collect::<Result<_>>()?;
        // The first argument's type decides whether a model is named, as for the scalar functions.
        let names_model = values.first().is_some_and(|v| {
            let dt = v.data_type();
            !(dt.is_integer() || dt.is_floating() || dt == DataType::Null)
        });
        let (model_arg, rest) = if names_model { (values.first(), &values[1..]) } else { (None, &values[..]) };
        let (n, seed) = match rest {
            [n] => (count(n, "n")?, 0),
            [n, seed] => (count(n, "n")?, count(seed, "seed")?),
            _ => {
                return plan_err!(
                    "ae_generate: expected (model, n [, seed]) or (n [, seed]) for the default model, got {} arguments",
                    values.len()
                );
            }
        };
        if n > MAX_GENERATED_ROWS {
            return plan_err!("ae_generate: n = {n} is more than the {MAX_GENERATED_ROWS} rows one call may generate");
        }
        let model = self.model(model_arg)?;
        if !model.is_variational() {
            return plan_err!(
                "ae_generate: the model is {}, not variational; only variational models generate rows",
                model.params_used().variant.name()
            );
        }
        let rows =
            model.generate(n as usize, seed).map_err(|e| DataFusionError::Execution(format!("ae_generate: {e}")))?;
        let fields: Vec<Field> =
            model.feature_names().iter().map(|n| Field::new(n, DataType::Float32, false)).collect();
        let schema = Arc::new(Schema::new(fields));
        let columns: Vec<ArrayRef> = rows
            .columns()
            .into_iter()
            .map(|c| Arc::new(c.iter().copied().collect::<Float32Array>()) as ArrayRef)
            .collect();
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}
