//! Property tests of everything a SQL user can hand to the functions: whatever the arguments — model
//! names, model files (valid, truncated, corrupted, random), feature columns of any type (NULL,
//! booleans, integers, floats with NaN and infinities, decimals, strings, dates, lists, structs), literal
//! or column, any count — planning and running a call gives a result or a clean DataFusion error, never
//! a panic, and a result has the planned type and one value per row. The same for `ae_train`'s options
//! and its row intake, and `ae_generate`'s arguments.
//!
//! CI runs a fixed budget: `PROPTEST_CASES` cases per test (default [`DEFAULT_CASES`]). For a longer
//! hunt, give it a time instead; each test then runs rounds of fresh random cases until the time is up
//! and prints how many it ran:
//!
//! ```text
//! AUTOENC_FUZZ_SECONDS=300 cargo test -p autoenc-datafusion --lib fuzz -- --nocapture --test-threads 1
//! ```

use std::cell::Cell;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use arrow::array::{
    Array, ArrayRef, BinaryArray, FixedSizeListArray, Float64Array, Int32Array, LargeListArray, ListArray, NullArray,
    StringArray, StructArray,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Fields};
use autoenc::Autoencoder;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl};
use datafusion::common::config::ConfigOptions;
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::logical_expr::{Accumulator, ColumnarValue, Expr, ReturnFieldArgs, ScalarFunctionArgs, col, lit};
use datafusion::prelude::SessionContext;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use crate::ModelRegistry;

/// Cases per test and round when `PROPTEST_CASES` is not set: the CI budget (a few seconds each).
const DEFAULT_CASES: u32 = 128;

/// Runs `test` on values of `strategy`: one round of `PROPTEST_CASES` cases, or rounds until
/// `AUTOENC_FUZZ_SECONDS` have passed. Each round's runner is seeded afresh, so rounds differ.
fn fuzz<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_CASES);
    let time = std::env::var("AUTOENC_FUZZ_SECONDS").ok().and_then(|v| v.parse().ok()).map(Duration::from_secs);
    let started = Instant::now();
    let ran = Cell::new(0u64);
    loop {
        // No persistence file: the runner is not the `proptest!` macro, which knows the source file.
        let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
        let result = runner.run(&strategy, |value| {
            ran.set(ran.get() + 1);
            test(value)
        });
        if let Err(failure) = result {
            panic!("{name}: {failure}");
        }
        if time.is_none_or(|t| started.elapsed() >= t) {
            break;
        }
    }
    eprintln!("fuzz {name}: {} cases in {:.0?}", ran.get(), started.elapsed());
}

/// A model with 3 features and one with 2, small and quick to train.
fn train(features: usize, variational: bool) -> Autoencoder {
    let data = autoenc::synthetic::sensor_stream(200, features, 200, 0.0, 7);
    let mut params = Autoencoder::params().seed(1).epochs(2).record_timings(false);
    if variational {
        params = params.variant(autoenc::Variant::Variational { beta: 1.0 });
    }
    params
        .check()
        .and_then(|p| p.fit_with(data.rows.view(), (0..features).map(|j| format!("c{j}")).collect(), &mut |_| {}))
        .expect("the fuzz models train")
}

struct Models {
    registry: Arc<ModelRegistry>,
    /// Model files: 3 features, 2 features, variational with 3 features.
    files: [Vec<u8>; 3],
}

static MODELS: LazyLock<Models> = LazyLock::new(|| {
    let (three, two, vae) = (train(3, false), train(2, false), train(3, true));
    let files = [
        three.to_bytes().expect("serialises"),
        two.to_bytes().expect("serialises"),
        vae.to_bytes().expect("serialises"),
    ];
    let registry = Arc::new(ModelRegistry::new());
    registry.register("m", three);
    registry.register("two", two);
    registry.register("vae", vae);
    registry.set_default("m");
    Models { registry, files }
});

/// Values that stress conversions to f32: NaN, infinities, values past f32's range, subnormals.
fn number() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![
        3 => (-100.0..100.0f64).prop_map(Some),
        1 => any::<f64>().prop_map(Some),
        1 => prop::sample::select(vec![
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN,
            1e39,
            -1e39,
            f64::MIN_POSITIVE,
            -0.0,
            0.0,
            2f64.powi(63),
        ])
        .prop_map(Some),
        1 => Just(None),
    ]
}

/// Numeric and non-numeric types a column may take (built by casting f64 values).
fn leaf_type() -> impl Strategy<Value = DataType> {
    prop::sample::select(vec![
        DataType::Float64,
        DataType::Float32,
        DataType::Float16,
        DataType::Int8,
        DataType::Int16,
        DataType::Int32,
        DataType::Int64,
        DataType::UInt8,
        DataType::UInt64,
        DataType::Decimal128(10, 2),
        DataType::Decimal128(38, 0),
        DataType::Decimal256(20, 5),
        DataType::Boolean,
        DataType::Utf8,
        DataType::LargeUtf8,
        DataType::Binary,
        DataType::Date32,
        DataType::Null,
    ])
}

#[derive(Debug, Clone)]
enum ListForm {
    List,
    Large,
    Fixed(i32),
}

/// How one argument column is built; values come per row.
#[derive(Debug, Clone)]
enum Column {
    Leaf(DataType, Vec<Option<f64>>),
    Text(Vec<Option<String>>),
    Bytes(Vec<Option<Vec<u8>>>),
    List(ListForm, DataType, Vec<Option<Vec<Option<f64>>>>),
    Struct(Vec<(DataType, Vec<Option<f64>>)>, Vec<bool>),
    /// Model files (valid, truncated, corrupted, random or NULL) as a binary column.
    Models(Vec<Option<Vec<u8>>>),
}

fn model_file() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        3 => (0..3usize).prop_map(|i| Some(MODELS.files[i].clone())),
        1 => ((0..3usize), any::<prop::sample::Index>()).prop_map(|(i, cut)| {
            let file = &MODELS.files[i];
            Some(file[..cut.index(file.len())].to_vec())
        }),
        2 => ((0..3usize), prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)).prop_map(
            |(i, flips)| {
                let mut file = MODELS.files[i].clone();
                for (at, bits) in flips {
                    let at = at.index(file.len());
                    file[at] ^= bits.max(1);
                }
                Some(file)
            }
        ),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Some),
        1 => Just(None),
    ]
}

fn column(rows: usize) -> impl Strategy<Value = Column> {
    let values = move || prop::collection::vec(number(), rows);
    prop_oneof![
        6 => (leaf_type(), values()).prop_map(|(t, v)| Column::Leaf(t, v)),
        1 => prop::collection::vec(prop::option::of(prop_oneof![".*", "[0-9.eE+-]{0,8}"]), rows).prop_map(Column::Text),
        1 => prop::collection::vec(prop::option::of(prop::collection::vec(any::<u8>(), 0..16)), rows)
            .prop_map(Column::Bytes),
        3 => (
            prop_oneof![Just(ListForm::List), Just(ListForm::Large), (0..6i32).prop_map(ListForm::Fixed)],
            leaf_type(),
            prop::collection::vec(prop::option::of(prop::collection::vec(number(), 0..6)), rows),
        )
            .prop_map(|(form, t, v)| Column::List(form, t, v)),
        2 => (prop::collection::vec((leaf_type(), values()), 0..5), prop::collection::vec(any::<bool>(), rows))
            .prop_map(|(f, v)| Column::Struct(f, v)),
        1 => prop::collection::vec(model_file(), rows).prop_map(Column::Models),
    ]
}

/// Casts f64 values to `to`; a cast arrow refuses leaves the f64 column (the type is what matters).
fn leaf(to: &DataType, values: &[Option<f64>]) -> ArrayRef {
    let floats: ArrayRef = Arc::new(Float64Array::from(values.to_vec()));
    let from = match to {
        DataType::Date32 => Arc::new(Int32Array::from_iter(values.iter().map(|v| v.map(|x| x as i32)))) as ArrayRef,
        DataType::Null => return Arc::new(NullArray::new(values.len())),
        _ => floats.clone(),
    };
    cast(&from, to).unwrap_or(floats)
}

fn build(column: &Column) -> ArrayRef {
    match column {
        Column::Leaf(t, v) => leaf(t, v),
        Column::Text(v) => Arc::new(StringArray::from(v.clone())),
        Column::Bytes(v) | Column::Models(v) => Arc::new(BinaryArray::from_iter(v.iter().map(|b| b.as_deref()))),
        Column::List(form, t, rows) => {
            let item = |dt: &DataType| Arc::new(Field::new("item", dt.clone(), true));
            let nulls = NullBuffer::from(rows.iter().map(Option::is_some).collect::<Vec<bool>>());
            match form {
                ListForm::Fixed(w) => {
                    let w = *w as usize;
                    let values: Vec<Option<f64>> = rows
                        .iter()
                        .flat_map(|r| {
                            let r = r.clone().unwrap_or_default();
                            (0..w).map(move |k| r.get(k).copied().flatten())
                        })
                        .collect();
                    let values = leaf(t, &values);
                    let dt = values.data_type().clone();
                    Arc::new(FixedSizeListArray::new(item(&dt), w as i32, values, Some(nulls)))
                }
                ListForm::List | ListForm::Large => {
                    let lengths = rows.iter().map(|r| r.as_ref().map_or(0, Vec::len));
                    let values: Vec<Option<f64>> = rows.iter().flatten().flatten().copied().collect();
                    let values = leaf(t, &values);
                    let dt = values.data_type().clone();
                    if matches!(form, ListForm::List) {
                        Arc::new(ListArray::new(item(&dt), OffsetBuffer::from_lengths(lengths), values, Some(nulls)))
                    } else {
                        Arc::new(LargeListArray::new(
                            item(&dt),
                            OffsetBuffer::from_lengths(lengths),
                            values,
                            Some(nulls),
                        ))
                    }
                }
            }
        }
        Column::Struct(fields, valid) => {
            let nulls = NullBuffer::from(valid.clone());
            if fields.is_empty() {
                return Arc::new(StructArray::new_empty_fields(valid.len(), Some(nulls)));
            }
            let arrays: Vec<ArrayRef> = fields.iter().map(|(t, v)| leaf(t, v)).collect();
            let fields: Fields = arrays
                .iter()
                .enumerate()
                .map(|(i, a)| Field::new(format!("f{i}"), a.data_type().clone(), true))
                .collect();
            Arc::new(StructArray::new(fields, arrays, Some(nulls)))
        }
    }
}

/// The first argument when it names the model: a name (literal or not), NULL, or a model file.
#[derive(Debug, Clone)]
enum ModelArg {
    None,
    Name(Option<String>),
    NameColumn(Vec<Option<String>>),
    File(Option<Vec<u8>>),
}

fn model_arg(rows: usize) -> impl Strategy<Value = ModelArg> {
    prop_oneof![
        2 => Just(ModelArg::None),
        4 => prop::option::weighted(
            0.9,
            prop_oneof![prop::sample::select(vec!["m", "two", "vae", "nope", "", "M", " m"]).prop_map(String::from), ".*"]
        )
        .prop_map(ModelArg::Name),
        1 => prop::collection::vec(prop::option::of(prop::sample::select(vec!["m".to_string(), "two".into()])), rows)
            .prop_map(ModelArg::NameColumn),
        2 => model_file().prop_map(ModelArg::File),
    ]
}

/// One call: the row count, the model argument, the other arguments and which of them are literals.
#[derive(Debug, Clone)]
struct Call {
    rows: usize,
    model: ModelArg,
    args: Vec<(Column, bool)>,
}

/// Calls of every shape: half of them well formed (a model with 3 features and 3 features in one of the
/// forms, then maybe a threshold or k) so that many reach the model, the others anything at all.
fn call() -> impl Strategy<Value = Call> {
    (0..6usize).prop_flat_map(|rows| {
        let anything = (model_arg(rows), prop::collection::vec((column(rows), any::<bool>()), 0..6));
        let three_model = prop_oneof![
            Just(ModelArg::None),
            Just(ModelArg::Name(Some("m".into()))),
            Just(ModelArg::File(Some(MODELS.files[0].clone()))),
            model_arg(rows),
        ];
        let numeric = || {
            prop::sample::select(vec![
                DataType::Float64,
                DataType::Float32,
                DataType::Int32,
                DataType::Decimal128(12, 3),
            ])
        };
        let rows_of = move |n: usize| prop::collection::vec(prop::collection::vec(number(), n), rows);
        let features = prop_oneof![
            prop::collection::vec(
                (numeric(), prop::collection::vec(number(), rows), any::<bool>())
                    .prop_map(|(t, v, literal)| (Column::Leaf(t, v), literal)),
                3..=3
            ),
            (numeric(), rows_of(3), prop_oneof![Just(ListForm::List), Just(ListForm::Large), Just(ListForm::Fixed(3))])
                .prop_map(|(t, v, form)| vec![(Column::List(form, t, v.into_iter().map(Some).collect()), false)]),
            (
                prop::collection::vec((numeric(), prop::collection::vec(number(), rows)), 3..=3),
                prop::collection::vec(any::<bool>(), rows)
            )
                .prop_map(|(f, valid)| vec![(Column::Struct(f, valid), false)]),
        ];
        let tail = prop::option::of(
            (1..5i64).prop_map(move |k| (Column::Leaf(DataType::Int64, vec![Some(k as f64); rows.max(1)]), true)),
        );
        let well_formed = (three_model, features, tail).prop_map(|(model, mut args, tail)| {
            args.extend(tail);
            (model, args)
        });
        (Just(rows), prop_oneof![anything, well_formed]).prop_map(|(rows, (model, args))| Call { rows, model, args })
    })
}

/// An argument as DataFusion hands it over: a literal is a scalar (its first value), else an array. A
/// literal needs a value to take, so with no rows the column stands in.
fn argument(array: ArrayRef, literal: bool) -> Result<ColumnarValue, DataFusionError> {
    if literal && !array.is_empty() {
        return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?));
    }
    Ok(ColumnarValue::Array(array))
}

fn arguments(call: &Call) -> Result<Vec<ColumnarValue>, DataFusionError> {
    let mut out = Vec::new();
    match &call.model {
        ModelArg::None => {}
        ModelArg::Name(name) => out.push(ColumnarValue::Scalar(ScalarValue::Utf8(name.clone()))),
        ModelArg::NameColumn(names) => out.push(ColumnarValue::Array(Arc::new(StringArray::from(names.clone())))),
        ModelArg::File(bytes) => out.push(ColumnarValue::Scalar(ScalarValue::Binary(bytes.clone()))),
    }
    for (column, literal) in &call.args {
        out.push(argument(build(column), *literal)?);
    }
    Ok(out)
}

/// A clean error is one DataFusion reports as the user's mistake, not as a bug of ours.
fn clean(error: &DataFusionError) -> bool {
    !matches!(error.find_root(), DataFusionError::Internal(_))
}

#[test]
fn scalar_functions_take_any_arguments_without_panicking() {
    let udfs = crate::scalar_functions(MODELS.registry.clone());
    let config = Arc::new(ConfigOptions::default());
    // How the calls ended (planned, ran, refused at planning, failed running): a run where nothing
    // plans would prove little, so the counts are printed and the planned ones must be a good share.
    let outcomes = Cell::new([0u64; 4]);
    let count = |k: usize| {
        let mut o = outcomes.get();
        o[k] += 1;
        outcomes.set(o);
    };
    fuzz("scalar functions", call(), |call| {
        let Ok(args) = arguments(&call) else {
            return Ok(()); // a value arrow cannot make a scalar of: not an input DataFusion would send
        };
        let fields: Vec<FieldRef> =
            args.iter().enumerate().map(|(i, a)| Arc::new(Field::new(format!("a{i}"), a.data_type(), true))).collect();
        let scalars: Vec<Option<&ScalarValue>> = args
            .iter()
            .map(|a| match a {
                ColumnarValue::Scalar(s) => Some(s),
                ColumnarValue::Array(_) => None,
            })
            .collect();
        for udf in &udfs {
            let planned =
                udf.return_field_from_args(ReturnFieldArgs { arg_fields: &fields, scalar_arguments: &scalars });
            let return_field = match planned {
                Ok(field) => field,
                Err(e) => {
                    prop_assert!(clean(&e), "{} at planning: {e:?}", udf.name());
                    count(2);
                    continue;
                }
            };
            count(0);
            let result = udf.invoke_with_args(ScalarFunctionArgs {
                args: args.clone(),
                arg_fields: fields.clone(),
                number_rows: call.rows,
                return_field: return_field.clone(),
                config_options: config.clone(),
            });
            count(if result.is_ok() { 1 } else { 3 });
            match result {
                Ok(ColumnarValue::Array(array)) => {
                    prop_assert_eq!(array.len(), call.rows, "{}", udf.name());
                    prop_assert_eq!(array.data_type(), return_field.data_type(), "{}", udf.name());
                }
                Ok(ColumnarValue::Scalar(value)) => {
                    prop_assert_eq!(&value.data_type(), return_field.data_type(), "{}", udf.name());
                }
                Err(e) => prop_assert!(clean(&e), "{} at execution: {e:?}", udf.name()),
            }
        }
        Ok(())
    });
    let [planned, ran, refused, failed] = outcomes.get();
    eprintln!("fuzz scalar functions: {planned} calls planned ({ran} ran, {failed} failed running), {refused} refused");
    assert!(ran * 10 >= planned + refused, "too few calls ran: the inputs are too often wrong");
}

/// JSON values of every kind, nested a little.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        (0..100u64).prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        prop_oneof![
            ".*",
            prop::sample::select(vec!["relu", "sigmoid", "tanh", "adam", "sgd", "auto", "mse", "standard"])
                .prop_map(String::from)
        ]
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(option_key(), inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Option names ae_train knows (and a few it does not).
fn option_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "max_rows", "epochs", "seed", "latent", "hidden", "decoder_hidden", "activation", "code_activation",
            "output_activation", "init", "variant", "loss", "scaling", "optimizer", "learning_rate", "momentum",
            "weight_decay", "trim_fraction", "batch_size", "contamination", "noise", "early_stopping",
            "validation_fraction", "fixed", "auto", "explained_variance", "kind", "beta", "k",
        ])
        .prop_map(String::from),
        1 => ".{0,12}",
    ]
}

#[test]
fn train_options_are_a_value_or_a_plan_error() {
    let options = prop_oneof![
        1 => ".*",
        3 => json().prop_map(|v| v.to_string()),
        4 => prop::collection::btree_map(option_key(), json(), 0..5)
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect()).to_string()),
    ];
    fuzz("ae_train options", prop::option::of(options), |text| {
        match crate::functions::ae_train::parse_options(text.as_deref()) {
            Ok((max_rows, params)) => {
                prop_assert!(max_rows >= 2);
                prop_assert!(params.is_object());
            }
            Err(e) => prop_assert!(matches!(e, DataFusionError::Plan(_)), "{e:?}"),
        }
        Ok(())
    });
}

#[test]
fn train_intake_takes_any_rows_without_panicking() {
    let batches = (1..5usize).prop_flat_map(|columns| {
        prop::collection::vec(
            (0..6usize).prop_flat_map(move |rows| prop::collection::vec(column(rows), columns..=columns)),
            1..4,
        )
    });
    fuzz("ae_train intake", batches, |batches| {
        let width = batches[0].len();
        let mut accumulator = crate::functions::ae_train::TrainAccumulator::new(3, serde_json::json!({}), 0, width);
        for columns in &batches {
            let arrays: Vec<ArrayRef> = columns.iter().map(build).collect();
            if let Err(e) = accumulator.update_batch(&arrays) {
                prop_assert!(clean(&e), "update: {e:?}");
            }
        }
        // Partial states merge into another accumulator as DataFusion would do between partitions.
        let state = accumulator.state().map_err(|e| TestCaseError::fail(format!("state: {e:?}")))?;
        let state: Vec<ArrayRef> = state
            .iter()
            .map(|s| s.to_array())
            .collect::<Result<_, _>>()
            .map_err(|e| TestCaseError::fail(format!("state arrays: {e:?}")))?;
        let mut merged = crate::functions::ae_train::TrainAccumulator::new(3, serde_json::json!({}), 1, width);
        if let Err(e) = merged.merge_batch(&state).and_then(|()| merged.merge_batch(&state)) {
            prop_assert!(clean(&e), "merge: {e:?}");
        }
        prop_assert!(merged.size() >= std::mem::size_of_val(&merged));
        Ok(())
    });
}

/// `ae_generate`'s argument values: model names and files, integers of every width and sign, and
/// the wrong kinds.
fn generate_args() -> impl Strategy<Value = Vec<Expr>> {
    let well_formed = (
        prop::option::of(prop_oneof![Just(lit("vae")), Just(lit(ScalarValue::Binary(Some(MODELS.files[2].clone()))))]),
        prop_oneof![(0..20_000i64).prop_map(lit), generate_arg()],
        prop::option::of(prop_oneof![any::<u32>().prop_map(|s| lit(i64::from(s))), generate_arg()]),
    )
        .prop_map(|(model, n, seed)| model.into_iter().chain([n]).chain(seed).collect());
    prop_oneof![well_formed, prop::collection::vec(generate_arg(), 0..5)]
}

fn generate_arg() -> impl Strategy<Value = Expr> {
    prop_oneof![
        2 => prop::sample::select(vec!["vae", "m", "nope", ""]).prop_map(lit),
        1 => model_file().prop_map(|b| lit(ScalarValue::Binary(b))),
        3 => prop_oneof![0..100i64, any::<i64>(), Just(i64::MIN), Just(1 << 32), Just((1 << 32) + 1)].prop_map(lit),
        1 => any::<u64>().prop_map(lit),
        1 => any::<i8>().prop_map(lit),
        1 => any::<f64>().prop_map(lit),
        1 => Just(lit(ScalarValue::Null)),
        1 => Just(lit(ScalarValue::Int64(None))),
        1 => Just(lit(ScalarValue::Utf8(None))),
        1 => any::<bool>().prop_map(lit),
        1 => Just(lit(ScalarValue::Decimal128(Some(12345), 10, 2))),
        1 => Just(col("x")),
        1 => (0..100i64).prop_map(|n| lit(n) * lit(-1i64)),
    ]
}

#[test]
fn generate_takes_any_arguments_without_panicking() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let ctx = SessionContext::new();
    let state = ctx.state();
    let function = crate::functions::ae_generate::AeGenerateFunc::new(MODELS.registry.clone());
    let read = Cell::new(0u64);
    fuzz("ae_generate arguments", generate_args(), |exprs| {
        match function.call_with_args(TableFunctionArgs::new(&exprs, &state)) {
            Ok(table) => {
                // The table is lazy: reading its first rows must work whatever n was.
                let rows = runtime.block_on(async {
                    let frame = ctx.read_table(table)?.limit(0, Some(3))?;
                    frame.collect().await
                });
                match rows {
                    Ok(batches) => {
                        read.set(read.get() + 1);
                        prop_assert!(batches.iter().map(|b| b.num_rows()).sum::<usize>() <= 3);
                    }
                    Err(e) => prop_assert!(clean(&e), "reading: {e:?}"),
                }
            }
            Err(e) => prop_assert!(matches!(e, DataFusionError::Plan(_)), "{e:?}"),
        }
        Ok(())
    });
    eprintln!("fuzz ae_generate arguments: {} tables read", read.get());
    assert!(read.get() > 0, "no call made a table");
}

#[test]
fn unobserved_rows_are_not_valid_and_others_are() {
    // The rule of arguments.rs, checked directly on the feature matrix for every input form.
    fuzz(
        "feature rows",
        (1..4usize).prop_flat_map(|d| (Just(d), prop::collection::vec(prop::collection::vec(number(), d), 0..8))),
        |(d, rows)| {
            let columns: Vec<ArrayRef> = (0..d)
                .map(|j| Arc::new(Float64Array::from(rows.iter().map(|r| r[j]).collect::<Vec<_>>())) as ArrayRef)
                .collect();
            // A finite value beyond f32 is refused by the core's Arrow bridge, as in every door, rather
            // than becoming an infinity the user never wrote.
            let beyond_f32 = rows.iter().flatten().flatten().any(|x| x.is_finite() && (*x as f32).is_infinite());
            let result = crate::arguments::features("fuzz", &[], &columns, d);
            if beyond_f32 {
                let error = result.err().map(|e| e.to_string()).unwrap_or_default();
                prop_assert!(error.contains("beyond the range of 32-bit floats"), "{}", error);
                return Ok(());
            }
            let features = result.map_err(|e| TestCaseError::fail(format!("{e}")))?;
            for (i, row) in rows.iter().enumerate() {
                let observed = row.iter().any(|v| v.is_some_and(|x| !(x as f32).is_nan()));
                prop_assert_eq!(features.valid[i], observed, "row {:?}", row);
            }
            Ok(())
        },
    );
}
