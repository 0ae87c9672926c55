//! `ae_generate([model,] n [, seed])`: a table function returning `n` rows sampled from a variational
//! model — codes drawn from the prior N(0, I), decoded to the original units — with one `FLOAT` column
//! per model feature, named like the feature. The same call as `autoenc generate`, so the same model,
//! n and seed give the same rows.
//!
//! Table functions run at planning, so every argument must be a constant: a model name or a binary model
//! literal, then integers. Arguments are constant-folded first, which lets users write `-1` or `10 * 1000`.
//!
//! The rows are streamed: a blocking task draws and decodes one record batch at a time (the session's
//! batch size, capped by [`MAX_BATCH_VALUES`]) and hands it to the query through a channel of two
//! batches, so memory does not grow with `n`, and a query that stops early (`LIMIT`, an error, a
//! cancelled query) stops the generation at the next batch. The prior samples are drawn in the core's
//! order (row by row from one seeded generator), so the rows do not depend on the batch size.

use std::sync::{Arc, LazyLock};

use arrow::array::{ArrayRef, Float32Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use autoenc::Autoencoder;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{DataFusionError, Result, ScalarValue, plan_err};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Documentation, Expr};
use datafusion::optimizer::simplify_expressions::{ExprSimplifier, SimplifyContext};
use datafusion::physical_plan::stream::RecordBatchReceiverStream;
use datafusion::physical_plan::streaming::PartitionStream;
use ndarray::Array2;

use crate::functions::DOC_SECTION;
use crate::registry::ModelRegistry;

/// The most rows one call may ask for: the core's bound for every door (2^32). Memory does not grow
/// with `n` (the rows stream in batches), so the bound is about intent: a request beyond it is almost
/// surely a typo (a few zeros too many) that would otherwise run until someone cancels it.
pub use autoenc::limits::MAX_GENERATED_ROWS;

/// The most values (rows x features) one generated batch holds: 8 M floats, 32 MB. The session's batch
/// size (8192 rows by default) is lowered for models wide enough to exceed it, so a 100,000-feature
/// model streams 83-row batches instead of 3 GB ones.
pub const MAX_BATCH_VALUES: usize = 8 << 20;

/// Batches generated ahead of the consumer: enough to overlap decoding with the query's own work,
/// few enough that a slow consumer does not let generated rows pile up.
const BATCHES_AHEAD: usize = 2;

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
    .with_argument(
        "n",
        "How many rows: an integer from 0 to 4,294,967,296 (2^32); 0 gives an empty table. The rows stream in \
         batches, so memory does not grow with n and `LIMIT` stops the generation early.",
    )
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
    // Unsigned values above i64::MAX would fail the cast below with a message about casting.
    if let ScalarValue::UInt64(Some(n)) = value {
        return Ok(*n);
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
                model.params_used().variant().name()
            );
        }
        let fields: Vec<Field> =
            model.feature_names().iter().map(|n| Field::new(n, DataType::Float32, false)).collect();
        let schema = Arc::new(Schema::new(fields));
        let rows = GeneratedRows { schema: schema.clone(), model, n, seed };
        Ok(Arc::new(StreamingTable::try_new(schema, vec![Arc::new(rows)])?))
    }
}

/// The one partition of an `ae_generate` table: `n` rows from `model` with `seed`, generated when the
/// query runs. Each execution starts from the seed, so a table scanned twice gives the same rows twice.
#[derive(Debug)]
struct GeneratedRows {
    schema: SchemaRef,
    model: Arc<Autoencoder>,
    n: u64,
    seed: u64,
}

impl PartitionStream for GeneratedRows {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let per_batch = ctx.session_config().batch_size().min(MAX_BATCH_VALUES / self.model.n_features().max(1)).max(1);
        let mut builder = RecordBatchReceiverStream::builder(self.schema.clone(), BATCHES_AHEAD);
        let tx = builder.tx();
        let (schema, model, n, seed) = (self.schema.clone(), self.model.clone(), self.n, self.seed);
        // Decoding is CPU work: a blocking thread keeps it off the async runtime's workers.
        builder.spawn_blocking(move || {
            // The core's generator draws the codes row by row from one random stream, so batch by
            // batch gives the rows of the core's `generate` with the same seed.
            let mut generator =
                model.generator(seed).map_err(|e| DataFusionError::Execution(format!("ae_generate: {e}")))?;
            let mut remaining = n;
            while remaining > 0 {
                let take = remaining.min(per_batch as u64) as usize;
                remaining -= take as u64;
                let batch = generator
                    .next_block(take)
                    .map_err(|e| DataFusionError::Execution(format!("ae_generate: {e}")))
                    .and_then(|rows| to_batch(&schema, &rows));
                let failed = batch.is_err();
                // A closed channel means the query no longer wants rows (LIMIT reached, cancelled).
                if tx.blocking_send(batch).is_err() || failed {
                    break;
                }
            }
            Ok(())
        });
        builder.build()
    }
}

/// One record batch of generated rows, a column per feature.
fn to_batch(schema: &SchemaRef, rows: &Array2<f32>) -> Result<RecordBatch> {
    let columns: Vec<ArrayRef> =
        rows.columns().into_iter().map(|c| Arc::new(c.iter().copied().collect::<Float32Array>()) as ArrayRef).collect();
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}
