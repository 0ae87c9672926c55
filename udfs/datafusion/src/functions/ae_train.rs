//! `ae_train(features... [, options_json])`: an aggregate that trains a model on the rows of each group
//! and returns the model file as binary.
//!
//! The state is a sample of the group's rows: every row until `max_rows` (option, default 1,000,000),
//! then a uniform reservoir sample (Algorithm R, seeded), so memory stays bounded. Partial states from
//! DataFusion's partitions merge by drawing from each side in proportion to how many rows it saw, which
//! keeps the sample uniform over the whole group. Training happens once, in `evaluate`, with the
//! options applied over the default params; the model's metadata records how many rows were seen and
//! whether it was trained on a sample.
//!
//! Text, boolean and dictionary arguments (columns or struct fields) are categorical features. The
//! sample keeps their values as text beside the numbers, and the vocabularies are learned from the
//! sample when the model is trained, by the same code as the command line's
//! (`autoenc::io::table::training_features`), so a group of all rows trains what `autoenc train` trains
//! on the same table.

use std::sync::{Arc, LazyLock};

use arrow::array::{Array, ArrayRef, AsArray, Float32Array, ListArray, RecordBatch, StringArray};
use arrow::buffer::OffsetBuffer;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Float32Type, Schema, UInt64Type};
use autoenc::Autoencoder;
use datafusion::common::{DataFusionError, Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, ColumnarValue, Documentation, Signature, Volatility};
use datafusion::physical_expr::expressions::Literal;
use ndarray::Array2;
use rand::{Rng, SeedableRng};

use autoenc::io::arrow_categories::is_categorical;
use autoenc::io::arrow_matrix::{columns_matrix, holds_no_value};
use autoenc::io::table::{FeatureSelection, training_features};

use crate::arguments::features;
use crate::functions::DOC_SECTION;

/// Rows kept per group before sampling starts.
pub const DEFAULT_MAX_ROWS: usize = 1_000_000;

/// `ae_train`: one model per group, as the bytes of a model file.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct AeTrainFunc {
    signature: Signature,
}

impl Default for AeTrainFunc {
    fn default() -> Self {
        AeTrainFunc { signature: Signature::variadic_any(Volatility::Immutable) }
    }
}

static DOCUMENTATION: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION,
        "Trains an autoencoder on the group's rows and returns the model file (binary), usable as the model \
         argument of the other functions. Past max_rows (default 1,000,000) a uniform sample is kept. The \
         model's features are named after the columns or struct fields (f0, f1, ... for a list column). Rows \
         with no observed feature (NULL, or every value NULL or NaN) are skipped; a group of only such rows \
         gives NULL.",
        "ae_train(features... [, options_json])",
    )
    .with_argument(
        "features",
        "One list column, one struct, or feature columns: numeric, or categorical (text, boolean, dictionary).",
    )
    .with_argument(
        "options_json",
        "Optional JSON object: any training param (e.g. {\"epochs\": 20, \"contamination\": 0.01}) plus max_rows.",
    )
    .with_sql_example("SELECT device, ae_train(features, '{\"epochs\": 20}') AS model FROM readings GROUP BY device;")
    .build()
});

/// Options split into the sampling bound and the params.
pub(crate) fn parse_options(text: Option<&str>) -> Result<(usize, serde_json::Value)> {
    let Some(text) = text else {
        return Ok((DEFAULT_MAX_ROWS, serde_json::json!({})));
    };
    let mut value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| DataFusionError::Plan(format!("ae_train: options are not JSON: {e}")))?;
    let Some(object) = value.as_object_mut() else {
        return plan_err!("ae_train: options must be a JSON object");
    };
    let max_rows = match object.remove("max_rows") {
        None => DEFAULT_MAX_ROWS,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 2 => n as usize,
            _ => return plan_err!("ae_train: max_rows must be an integer of at least 2"),
        },
    };
    // Validate now, so a typo is a planning error and not a failure after reading all the data.
    Autoencoder::params()
        .merge_json(&value)
        .and_then(|p| p.check())
        .map_err(|e| DataFusionError::Plan(format!("ae_train: {e}")))?;
    Ok((max_rows, value))
}

fn options_text(
    exprs: &[Arc<dyn datafusion::physical_expr::PhysicalExpr>],
    fields: &[FieldRef],
) -> Result<Option<String>> {
    match (exprs.last(), fields.last()) {
        (Some(expr), Some(field))
            if matches!(field.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) =>
        {
            match constant_value(expr.as_ref()) {
                Some(ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s))) => {
                    Ok(Some(s))
                }
                _ => plan_err!("ae_train: options must be a string literal"),
            }
        }
        _ => Ok(None),
    }
}

/// The value of a constant expression: a `Literal`, or an expression that evaluates to a scalar without
/// reading any column. The second form is how a literal arrives when the aggregate runs in another
/// engine's process (Python DataFusion through datafusion-ffi, which passes expressions as foreign
/// objects that no downcast recognises); a column reference fails to evaluate on a batch without
/// columns, so it is never taken for a constant.
fn constant_value(expr: &dyn datafusion::physical_expr::PhysicalExpr) -> Option<ScalarValue> {
    if let Some(literal) = expr.downcast_ref::<Literal>() {
        return Some(literal.value().clone());
    }
    let no_columns = RecordBatch::new_empty(Arc::new(Schema::empty()));
    match expr.evaluate(&no_columns) {
        Ok(ColumnarValue::Scalar(value)) => Some(value),
        _ => None,
    }
}

/// Feature names for the model, so that `ae_explain` and `ae_generate` speak of `s0`, not `f0`: the
/// columns' names, or a struct's field names. A list column has none (the model names them f0, f1, ...),
/// and neither do names that repeat.
fn feature_names(fields: &[FieldRef]) -> Option<Vec<String>> {
    let names: Vec<String> = match fields {
        [one] => match one.data_type() {
            DataType::Struct(inner) => inner.iter().map(|f| f.name().clone()).collect(),
            _ => return None,
        },
        many => many.iter().map(|f| f.name().clone()).collect(),
    };
    let unique: std::collections::HashSet<&String> = names.iter().collect();
    (unique.len() == names.len()).then_some(names)
}

impl AggregateUDFImpl for AeTrainFunc {
    fn name(&self) -> &str {
        "ae_train"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let features = match arg_types.last() {
            Some(DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) => &arg_types[..arg_types.len() - 1],
            _ => arg_types,
        };
        crate::arguments::check_feature_types("ae_train", features, true)?;
        Ok(DataType::Binary)
    }
    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let options = options_text(args.exprs, args.expr_fields)?;
        let (max_rows, params) = parse_options(options.as_deref())?;
        let seed = params.get("seed").and_then(|s| s.as_u64()).unwrap_or(0);
        let feature_args = args.exprs.len() - usize::from(options.is_some());
        let mut accumulator = TrainAccumulator::new(max_rows, params, seed, feature_args);
        accumulator.names = feature_names(&args.expr_fields[..feature_args]);
        accumulator.categorical = categorical_features(&args.expr_fields[..feature_args]);
        Ok(Box::new(accumulator))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let item = Arc::new(Field::new("item", DataType::Float32, true));
        Ok(vec![
            Arc::new(Field::new(format_state_name(args.name, "rows"), DataType::List(item), true)),
            Arc::new(Field::new(format_state_name(args.name, "width"), DataType::UInt64, true)),
            Arc::new(Field::new(format_state_name(args.name, "seen"), DataType::UInt64, true)),
            Arc::new(Field::new(format_state_name(args.name, "texts"), DataType::List(text_item()), true)),
        ])
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOCUMENTATION)
    }
}

/// Which features are categorical, when any is: the feature arguments' types, or a struct's fields'.
/// Empty for numeric features only (including the list form).
fn categorical_features(fields: &[FieldRef]) -> Vec<bool> {
    let kinds: Vec<bool> = match fields {
        [one] => match one.data_type() {
            DataType::Struct(inner) => inner.iter().map(|f| is_categorical(f.data_type())).collect(),
            _ => vec![is_categorical(one.data_type())],
        },
        many => many.iter().map(|f| is_categorical(f.data_type())).collect(),
    };
    if kinds.contains(&true) { kinds } else { Vec::new() }
}

fn text_item() -> FieldRef {
    Arc::new(Field::new("item", DataType::Utf8, true))
}

/// A bounded uniform sample of a group's rows.
#[derive(Debug)]
pub(crate) struct TrainAccumulator {
    max_rows: usize,
    params: serde_json::Value,
    feature_args: usize,
    /// The features' names, when the arguments give them (see `feature_names`).
    names: Option<Vec<String>>,
    width: Option<usize>,
    /// Per feature, whether it is categorical; empty when none is. With categories, `width` counts the
    /// numeric features and `rows` holds them alone.
    categorical: Vec<bool>,
    /// Kept rows, flattened (`kept * width` values).
    rows: Vec<f32>,
    /// The kept rows' categorical values, flattened (`kept * categories` values, NULL as `None`).
    texts: Vec<Option<String>>,
    kept: usize,
    /// Rows offered to the sample (non-NULL rows of the group).
    seen: u64,
    rng: rand_pcg::Pcg64Mcg,
}

impl TrainAccumulator {
    pub(crate) fn new(max_rows: usize, params: serde_json::Value, seed: u64, feature_args: usize) -> Self {
        TrainAccumulator {
            max_rows,
            params,
            feature_args,
            names: None,
            width: None,
            categorical: Vec::new(),
            rows: Vec::new(),
            texts: Vec::new(),
            kept: 0,
            seen: 0,
            rng: rand_pcg::Pcg64Mcg::seed_from_u64(seed ^ 0x5eed_5a3b),
        }
    }

    fn categories(&self) -> usize {
        self.categorical.iter().filter(|&&c| c).count()
    }

    fn set_width(&mut self, width: usize) -> Result<()> {
        match self.width {
            None => {
                self.width = Some(width);
                Ok(())
            }
            Some(w) if w == width => Ok(()),
            Some(w) => exec_err!("ae_train: wrong dimension: expected {w} features, got {width}"),
        }
    }

    /// Algorithm R: the n-th row offered replaces a random kept row with probability max_rows / n.
    fn offer(&mut self, row: &[f32], texts: &[Option<String>]) {
        self.seen += 1;
        if self.kept < self.max_rows {
            self.rows.extend_from_slice(row);
            self.texts.extend_from_slice(texts);
            self.kept += 1;
            return;
        }
        let slot = self.rng.random_range(0..self.seen) as usize;
        if slot < self.max_rows {
            let (w, c) = (row.len(), texts.len());
            self.rows[slot * w..(slot + 1) * w].copy_from_slice(row);
            self.texts[slot * c..(slot + 1) * c].clone_from_slice(texts);
        }
    }

    /// `update_batch` for features with categories: columns (or a struct's fields) of numbers and of
    /// categorical values, every row kept but a NULL struct's.
    fn update_mixed(&mut self, arrays: &[ArrayRef]) -> Result<()> {
        let (columns, nulls): (Vec<ArrayRef>, _) = match arrays {
            [one] if matches!(one.data_type(), DataType::Struct(_)) => {
                (one.as_struct().columns().to_vec(), one.logical_nulls())
            }
            many => (many.to_vec(), None),
        };
        if columns.len() != self.categorical.len() {
            return exec_err!(
                "ae_train: wrong dimension: expected {} features, got {}",
                self.categorical.len(),
                columns.len()
            );
        }
        let rows = columns.first().map_or(0, |c| c.len());
        let names = self.feature_names();
        let in_train = |e: autoenc::AutoencError| DataFusionError::Execution(format!("ae_train: {e}"));
        let (mut numeric, mut texts) = (Vec::new(), Vec::new());
        for ((column, name), &categorical) in columns.iter().zip(&names).zip(&self.categorical) {
            if categorical {
                texts.push(cast(column, &DataType::Utf8)?.as_string::<i32>().clone());
            } else {
                numeric.push((name.as_str(), column));
            }
        }
        self.width = Some(numeric.len());
        let numbers = if numeric.is_empty() || numeric.iter().all(|(_, c)| holds_no_value(c.data_type())) {
            Array2::from_elem((rows, numeric.len()), f32::NAN)
        } else {
            columns_matrix(&numeric).map_err(in_train)?
        };
        let mut values = Vec::with_capacity(texts.len());
        for i in (0..rows).filter(|&i| nulls.as_ref().is_none_or(|n| n.is_valid(i))) {
            values.clear();
            values.extend(texts.iter().map(|t| t.is_valid(i).then(|| t.value(i).to_string())));
            let row = numbers.row(i);
            self.offer(row.as_slice().unwrap_or(&row.to_vec()), &values);
        }
        Ok(())
    }

    /// The features' names: the arguments', or f0, f1, ... where they give none.
    fn feature_names(&self) -> Vec<String> {
        match &self.names {
            Some(names) if names.len() == self.categorical.len() => names.clone(),
            _ => (0..self.categorical.len()).map(|j| format!("f{j}")).collect(),
        }
    }

    /// The sample as a table, one column per feature (numbers as `Float32`, categories as text), for
    /// the core's table training.
    fn mixed_table(&self) -> Result<RecordBatch> {
        let (width, categories) = (self.width.unwrap_or(0), self.categories());
        let (mut numeric, mut categorical) = (0, 0);
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.categorical.len());
        for &is_category in &self.categorical {
            if is_category {
                let values = (0..self.kept).map(|i| self.texts[i * categories + categorical].as_deref());
                columns.push(Arc::new(values.collect::<StringArray>()));
                categorical += 1;
            } else {
                let values = (0..self.kept).map(|i| self.rows[i * width + numeric]);
                columns.push(Arc::new(values.collect::<Float32Array>()));
                numeric += 1;
            }
        }
        let names = self.feature_names();
        let fields: Vec<Field> =
            names.iter().zip(&columns).map(|(name, c)| Field::new(name, c.data_type().clone(), true)).collect();
        Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
    }

    fn width_of(arrays: &[ArrayRef]) -> Option<usize> {
        match arrays {
            [one] => match one.data_type() {
                DataType::FixedSizeList(_, w) => Some(*w as usize),
                DataType::List(_) | DataType::LargeList(_) => {
                    (0..one.len()).find(|&i| one.is_valid(i)).map(|i| match one.data_type() {
                        DataType::List(_) => one.as_list::<i32>().value_length(i) as usize,
                        _ => one.as_list::<i64>().value_length(i) as usize,
                    })
                }
                DataType::Struct(fields) => Some(fields.len()),
                _ => Some(1),
            },
            many => Some(many.len()),
        }
    }
}

impl Accumulator for TrainAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let arrays = &values[..self.feature_args.min(values.len())];
        if !self.categorical.is_empty() {
            return self.update_mixed(arrays);
        }
        let Some(width) = Self::width_of(arrays) else {
            return Ok(()); // only NULL rows
        };
        self.set_width(width)?;
        let rows = features("ae_train", &[], arrays, width)?;
        for (row, valid) in rows.matrix.outer_iter().zip(&rows.valid) {
            if *valid {
                self.offer(row.as_slice().unwrap_or(&row.to_vec()), &[]);
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let values = Float32Array::from(self.rows.clone());
        let item = Arc::new(Field::new("item", DataType::Float32, true));
        let list = ListArray::try_new(item, OffsetBuffer::from_lengths([self.rows.len()]), Arc::new(values), None)?;
        let texts: StringArray = self.texts.iter().map(Option::as_deref).collect();
        let texts = ListArray::try_new(text_item(), OffsetBuffer::from_lengths([texts.len()]), Arc::new(texts), None)?;
        Ok(vec![
            ScalarValue::List(Arc::new(list)),
            ScalarValue::UInt64(self.width.map(|w| w as u64)),
            ScalarValue::UInt64(Some(self.seen)),
            ScalarValue::List(Arc::new(texts)),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (rows, widths, seen, texts) = (
            states[0].as_list::<i32>(),
            states[1].as_primitive::<UInt64Type>(),
            states[2].as_primitive::<UInt64Type>(),
            states[3].as_list::<i32>(),
        );
        let categories = self.categories();
        for i in 0..rows.len() {
            if widths.is_null(i) || seen.value(i) == 0 {
                continue;
            }
            let width = widths.value(i) as usize;
            self.set_width(width)?;
            let other = rows.value(i);
            let other = other.as_primitive::<Float32Type>().values().to_vec();
            let other_texts: Vec<Option<String>> =
                texts.value(i).as_string::<i32>().iter().map(|t| t.map(str::to_string)).collect();
            let other_rows = other_texts.len().checked_div(categories).unwrap_or(other.len() / width.max(1));
            let other_seen = seen.value(i);
            let total_seen = self.seen + other_seen;
            let (mine, mine_texts) = (std::mem::take(&mut self.rows), std::mem::take(&mut self.texts));
            let mine_rows = self.kept;
            let (mut combined, mut combined_texts, mut kept) = (Vec::new(), Vec::new(), 0);
            let mut keep = |source: &[f32], source_texts: &[Option<String>], row: usize| {
                combined.extend_from_slice(&source[row * width..(row + 1) * width]);
                combined_texts.extend_from_slice(&source_texts[row * categories..(row + 1) * categories]);
                kept += 1;
            };
            if mine_rows + other_rows <= self.max_rows {
                (0..mine_rows).for_each(|row| keep(&mine, &mine_texts, row));
                (0..other_rows).for_each(|row| keep(&other, &other_texts, row));
            } else {
                // Each kept row stands for seen/kept rows of its side: draw from each side in proportion.
                let take_mine = ((self.max_rows as f64) * self.seen as f64 / total_seen as f64).round() as usize;
                let take_mine = take_mine.min(mine_rows).max(self.max_rows.saturating_sub(other_rows));
                let take_other = (self.max_rows - take_mine).min(other_rows);
                let sides =
                    [(&mine, &mine_texts, mine_rows, take_mine), (&other, &other_texts, other_rows, take_other)];
                for (source, source_texts, count, take) in sides {
                    let mut order: Vec<usize> = (0..count).collect();
                    for k in 0..take {
                        let j = self.rng.random_range(k..count);
                        order.swap(k, j);
                        keep(source, source_texts, order[k]);
                    }
                }
            }
            (self.rows, self.texts, self.kept) = (combined, combined_texts, kept);
            self.seen = total_seen;
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let Some(width) = self.width else {
            return Ok(ScalarValue::Binary(None));
        };
        let kept = self.kept;
        // A group whose rows were all NULL or had no observed feature has nothing to learn from: NULL,
        // as other aggregates give over only NULLs, rather than failing the query for every group.
        if kept == 0 {
            return Ok(ScalarValue::Binary(None));
        }
        let params = Autoencoder::params()
            .merge_json(&self.params)
            .map_err(|e| DataFusionError::Execution(format!("ae_train: {e}")))?;
        let trained = if !self.categorical.is_empty() {
            let table = self.mixed_table()?;
            let names = self.feature_names();
            params.check().and_then(|p| {
                let features = training_features(&table, &FeatureSelection::Columns(names), p.max_categories())?;
                p.fit_with_kinds(features.matrix.view(), features.names, features.kinds, &mut |_| {})
            })
        } else {
            let matrix = Array2::from_shape_vec((kept, width), self.rows.clone())
                .map_err(|e| DataFusionError::Internal(e.to_string()))?;
            match &self.names {
                Some(names) if names.len() == width => {
                    params.check().and_then(|p| p.fit_with(matrix.view(), names.clone(), &mut |_| {}))
                }
                _ => params.fit(matrix.view()),
            }
        };
        let mut model = trained.map_err(|e| DataFusionError::Execution(format!("ae_train: {e}")))?;
        let extra = model.extra_mut();
        extra.insert("trained_by".into(), "ae_train".into());
        extra.insert("rows_seen".into(), self.seen.into());
        extra.insert("rows_used".into(), (kept as u64).into());
        extra.insert("sampled".into(), (self.seen > kept as u64).into());
        extra.insert("max_rows".into(), (self.max_rows as u64).into());
        let bytes = model.to_bytes().map_err(|e| DataFusionError::Execution(format!("ae_train: {e}")))?;
        Ok(ScalarValue::Binary(Some(bytes)))
    }

    fn size(&self) -> usize {
        let texts: usize = self.texts.iter().flatten().map(String::capacity).sum();
        std::mem::size_of_val(self)
            + self.rows.capacity() * std::mem::size_of::<f32>()
            + self.texts.capacity() * std::mem::size_of::<Option<String>>()
            + texts
    }
}

#[cfg(test)]
mod tests {
    use datafusion::physical_expr::expressions::{CastExpr, Column};

    use super::*;

    #[test]
    fn a_constant_is_recognised_with_or_without_a_literal_node() {
        let text = ScalarValue::Utf8(Some(r#"{"epochs": 3}"#.into()));
        let literal = Literal::new(text.clone());
        assert_eq!(constant_value(&literal), Some(text.clone()));
        // Not a `Literal` node, as a literal arrives from another engine, but constant all the same.
        let wrapped = CastExpr::new(Arc::new(Literal::new(text.clone())), DataType::Utf8, None);
        assert!((&wrapped as &dyn datafusion::physical_expr::PhysicalExpr).downcast_ref::<Literal>().is_none());
        assert_eq!(constant_value(&wrapped), Some(text));
        // A column is never a constant.
        assert_eq!(constant_value(&Column::new("options", 0)), None);
    }
}
