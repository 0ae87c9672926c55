//! Models with categorical features through SQL: text and boolean columns (or struct fields) code in
//! the model's vocabularies, a value never seen is scored as other and NULL is a category, and every
//! function gives the core's numbers for the same rows; a numeric model refuses a text argument.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{Float64Type, Int32Type};
use autoenc::io::table::{FeatureSelection, model_features, training_features};
use autoenc::synthetic_devices::{DeviceEvents, device_events};
use autoenc::{Autoencoder, LatentSize};
use autoenc_datafusion::{ModelRegistry, register};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

const FEATURES: &str = "device, protocol, encrypted, log_bytes, log_packets, duration";

fn mixed_model() -> Autoencoder {
    let events = device_events(2000, 0.0, 1);
    let vocabularies = events.vocabularies(64).unwrap();
    let (x, kinds) = events.coded(&vocabularies);
    let names = DeviceEvents::NAMES.iter().map(|n| n.to_string()).collect();
    let params = Autoencoder::params().latent(LatentSize::Fixed(3)).epochs(5).record_timings(false).check().unwrap();
    params.fit_with_kinds(x.view(), names, kinds, &mut |_| {}).unwrap()
}

/// A table of device events with a never-seen device and a NULL protocol among them.
fn table() -> RecordBatch {
    let mut events = device_events(300, 0.1, 2).record_batch().unwrap();
    let mut devices: Vec<Option<String>> =
        events.column(0).as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect();
    devices[3] = Some("toaster".into());
    let mut protocols: Vec<Option<String>> =
        events.column(1).as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect();
    protocols[4] = None;
    let mut columns: Vec<ArrayRef> = events.columns().to_vec();
    columns[0] = Arc::new(StringArray::from(devices));
    columns[1] = Arc::new(StringArray::from(protocols));
    let schema = events.schema();
    let names = schema.fields().iter().map(|f| f.name().clone());
    events = RecordBatch::try_from_iter(names.zip(columns)).unwrap();
    events
}

async fn context(model: &Autoencoder, batch: &RecordBatch) -> SessionContext {
    let registry = Arc::new(ModelRegistry::new());
    registry.register("devices", model.clone());
    let ctx = SessionContext::new();
    register(&ctx, registry);
    ctx.register_table("events", Arc::new(MemTable::try_new(batch.schema(), vec![vec![batch.clone()]]).unwrap()))
        .unwrap();
    ctx
}

async fn batches(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
    ctx.sql(sql).await.unwrap().collect().await.unwrap()
}

async fn floats(ctx: &SessionContext, sql: &str) -> Vec<f64> {
    let out = batches(ctx, sql).await;
    out.iter().flat_map(|b| b.column(0).as_primitive::<Float64Type>().values().to_vec()).collect()
}

#[tokio::test]
async fn text_and_boolean_arguments_score_as_the_core_does() {
    let model = mixed_model();
    let batch = table();
    let ctx = context(&model, &batch).await;
    let (rows, unknown) = model_features(&batch, model.feature_names(), model.feature_kinds()).unwrap();
    assert_eq!(&unknown[..2], &[1, 0], "the toaster is the one value never seen; NULL is not counted");
    let core = model.score(rows.view()).unwrap();

    let columns = floats(&ctx, &format!("SELECT ae_score('devices', {FEATURES}) FROM events")).await;
    let by_name: Vec<u64> = columns.iter().map(|s| s.to_bits()).collect();
    assert_eq!(by_name, core.iter().map(|s| s.to_bits()).collect::<Vec<_>>(), "same bits as the core");
    // The same features as one struct with text fields.
    let structured = floats(
        &ctx,
        "SELECT ae_score('devices', named_struct('device', device, 'protocol', protocol, 'encrypted', encrypted, \
         'log_bytes', log_bytes, 'log_packets', log_packets, 'duration', duration)) FROM events",
    )
    .await;
    assert!(structured.iter().zip(&columns).all(|(a, b)| a.to_bits() == b.to_bits()));

    // Reconstructions give a categorical feature's most likely code, as the core's do.
    let out = batches(&ctx, &format!("SELECT ae_reconstruct('devices', {FEATURES}) FROM events")).await;
    let list = out[0].column(0).as_fixed_size_list();
    let first = list.value(0);
    let values = first.as_primitive::<arrow::datatypes::Float32Type>();
    assert_eq!(values.value(0), model.reconstruct(rows.view()).unwrap()[(0, 0)]);

    // Flags with a threshold after the features: six features then a number.
    let out =
        batches(&ctx, &format!("SELECT CAST(ae_is_anomaly('devices', {FEATURES}, 0.0) AS INT) FROM events")).await;
    let flagged: i64 = out
        .iter()
        .map(|b| b.column(0).as_primitive::<Int32Type>().values().iter().map(|&v| v as i64).sum::<i64>())
        .sum();
    assert_eq!(flagged, 300, "every score is above a threshold of 0");
}

#[tokio::test]
async fn wrong_arguments_for_a_mixed_or_a_numeric_model_are_errors() {
    let model = mixed_model();
    let batch = table();
    let ctx = context(&model, &batch).await;
    let numeric = Autoencoder::params()
        .latent(LatentSize::Fixed(1))
        .epochs(2)
        .fit(ndarray::Array2::from_shape_fn((50, 2), |(i, j)| ((i + j) % 5) as f32).view())
        .unwrap();
    let registry = Arc::new(ModelRegistry::new());
    registry.register("numeric", numeric);
    registry.register("devices", model);
    let ctx2 = SessionContext::new();
    register(&ctx2, registry);
    ctx2.register_table("events", Arc::new(MemTable::try_new(batch.schema(), vec![vec![batch.clone()]]).unwrap()))
        .unwrap();
    let error = |ctx: SessionContext, sql: String| async move {
        match ctx.sql(&sql).await {
            Err(e) => e.to_string(),
            Ok(frame) => frame.collect().await.expect_err(&sql).to_string(),
        }
    };
    let message = error(ctx2.clone(), "SELECT ae_score('numeric', device, log_bytes) FROM events".into()).await;
    // Known at planning to be numeric, the model refuses text there.
    assert!(message.contains("feature argument 1 has type Utf8; features must be numeric"), "{message}");
    let message =
        error(ctx2.clone(), "SELECT ae_score('devices', log_bytes, log_packets, duration) FROM events".into()).await;
    assert!(message.contains("wrong dimension"), "{message}");
    // A number where a category's text belongs is refused, not read as a code.
    let message = error(
        ctx,
        "SELECT ae_score('devices', log_bytes, protocol, encrypted, log_bytes, log_packets, duration) FROM events"
            .into(),
    )
    .await;
    assert!(message.contains("column 'log_bytes' is Float32, but its feature is categorical"), "{message}");
}

const TRAIN_OPTIONS: &str = r#"{"latent": {"fixed": 3}, "epochs": 4, "seed": 5, "record_timings": false}"#;

/// Trains with `ae_train` over `sql_features` of the events table; the model file.
async fn trained_in_sql(ctx: &SessionContext, sql_features: &str) -> Autoencoder {
    let out = batches(ctx, &format!("SELECT ae_train({sql_features}, '{TRAIN_OPTIONS}') FROM events")).await;
    let bytes = out.iter().find(|b| b.num_rows() == 1).expect("one model").column(0).as_binary::<i32>().value(0);
    Autoencoder::from_bytes(bytes).expect("a model file")
}

#[tokio::test]
async fn ae_train_learns_vocabularies_from_text_and_boolean_columns_as_the_core_does() {
    let batch = table();
    let ctx = context(&mixed_model(), &batch).await;
    let in_sql = trained_in_sql(&ctx, FEATURES).await;

    // The core's table training on the same rows and params: the command line's path.
    let names: Vec<String> = DeviceEvents::NAMES.iter().map(|n| n.to_string()).collect();
    let params = Autoencoder::params().merge_json(&serde_json::from_str(TRAIN_OPTIONS).unwrap()).unwrap();
    let params = params.check().unwrap();
    let features =
        training_features(&batch, &FeatureSelection::Columns(names.clone()), params.max_categories()).unwrap();
    let core = params.fit_with_kinds(features.matrix.view(), names, features.kinds, &mut |_| {}).unwrap();

    assert_eq!(in_sql.feature_kinds(), core.feature_kinds(), "the same vocabularies, in the same order");
    let toaster_seen = in_sql.feature_kinds()[0].vocabulary().unwrap().values().iter().any(|v| v == "toaster");
    assert!(toaster_seen, "a value seen once in training is in the vocabulary (under max_categories)");
    let (rows, _) = model_features(&batch, core.feature_names(), core.feature_kinds()).unwrap();
    let bits = |m: &Autoencoder| m.score(rows.view()).unwrap().iter().map(|s| s.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&in_sql), bits(&core), "the same model, bit for bit");

    // A struct of the same fields trains the same model; its fields name the features.
    let structured = trained_in_sql(
        &ctx,
        "named_struct('device', device, 'protocol', protocol, 'encrypted', encrypted, 'log_bytes', log_bytes, \
         'log_packets', log_packets, 'duration', duration)",
    )
    .await;
    assert_eq!(structured.feature_names(), core.feature_names());
    assert_eq!(bits(&structured), bits(&core));

    // The model trained in SQL scores its table in SQL, by value.
    let sql = format!(
        "WITH m AS (SELECT ae_train({FEATURES}, '{TRAIN_OPTIONS}') AS model FROM events) \
         SELECT ae_score(m.model, {FEATURES}) FROM events, m"
    );
    let scores: Vec<u64> = floats(&ctx, &sql).await.iter().map(|s| s.to_bits()).collect();
    assert_eq!(scores, bits(&core));
}

#[tokio::test]
async fn ae_train_merges_text_samples_from_several_partitions() {
    let batch = table();
    let (first, second) = (batch.slice(0, 120), batch.slice(120, 180));
    let registry = Arc::new(ModelRegistry::new());
    let ctx = SessionContext::new();
    register(&ctx, registry);
    let partitions = vec![vec![first], vec![second]];
    ctx.register_table("events", Arc::new(MemTable::try_new(batch.schema(), partitions).unwrap())).unwrap();
    // A sample smaller than the rows, so the merge draws from each partition's texts.
    for max_rows in [1000, 100] {
        let options = format!(r#"{{"latent": {{"fixed": 2}}, "epochs": 2, "seed": 1, "max_rows": {max_rows}}}"#);
        let out = batches(&ctx, &format!("SELECT ae_train({FEATURES}, '{options}') FROM events")).await;
        let bytes = out.iter().find(|b| b.num_rows() == 1).unwrap().column(0).as_binary::<i32>().value(0);
        let model = Autoencoder::from_bytes(bytes).unwrap();
        let info = model.extra();
        assert_eq!(info["rows_seen"], serde_json::json!(300));
        assert_eq!(info["rows_used"], serde_json::json!(max_rows.min(300)));
        let devices = model.feature_kinds()[0].vocabulary().unwrap();
        assert!(devices.len() >= 3, "{:?}", devices.values());
        let protocols = model.feature_kinds()[1].vocabulary().unwrap().values().to_vec();
        let in_data: std::collections::BTreeSet<&str> = batch.column(1).as_string::<i32>().iter().flatten().collect();
        assert!(protocols.iter().all(|p| in_data.contains(p.as_str())), "only the data's own values: {protocols:?}");
    }
}

#[tokio::test]
async fn ae_train_refuses_a_text_column_of_identifiers_and_a_number_column_with_stray_words() {
    let ctx = SessionContext::new();
    register(&ctx, Arc::new(ModelRegistry::new()));
    let error = |sql: &'static str| {
        let ctx = ctx.clone();
        async move { ctx.sql(sql).await.unwrap().collect().await.expect_err(sql).to_string() }
    };
    // 100,001 distinct values: an identifier, not a category.
    let message = error(
        "SELECT ae_train(concat('id-', CAST(value AS VARCHAR)), CAST(value AS DOUBLE)) FROM generate_series(1, 100001)",
    )
    .await;
    assert!(message.contains("ae_train") && message.contains("100000"), "{message}");
    // Numbers as text with one stray word: a typo, not a category.
    let message = error(
        "SELECT ae_train(CASE WHEN value = 7 THEN 'oops' ELSE CAST(value AS VARCHAR) END, CAST(value AS DOUBLE)) \
         FROM generate_series(1, 50)",
    )
    .await;
    assert!(message.contains("'oops' among numbers"), "{message}");
}

#[tokio::test]
async fn ae_explain_names_the_value_seen_and_the_value_expected() {
    let model = mixed_model();
    let batch = table();
    let ctx = context(&model, &batch).await;
    let (rows, _) = model_features(&batch, model.feature_names(), model.feature_kinds()).unwrap();
    let core = model.explain(rows.view(), 6).unwrap();
    let out = batches(&ctx, &format!("SELECT ae_explain('devices', {FEATURES}, 6) FROM events")).await;
    let mut i = 0;
    for batch in &out {
        let lists = batch.column(0).as_list::<i32>();
        for r in 0..lists.len() {
            let entries = lists.value(r);
            let entries = entries.as_struct();
            let (feature, got, expected) = (
                entries.column(0).as_string::<i32>(),
                entries.column(2).as_string::<i32>(),
                entries.column(3).as_string::<i32>(),
            );
            let probability = entries.column(4).as_primitive::<Float64Type>();
            assert_eq!(entries.len(), core[i].len());
            for (e, contribution) in core[i].iter().enumerate() {
                assert_eq!(feature.value(e), contribution.feature);
                match &contribution.category {
                    Some(m) => {
                        assert_eq!((got.value(e), expected.value(e)), (m.got.as_str(), m.expected.as_str()));
                        assert_eq!(probability.value(e), m.probability);
                    }
                    None => assert!(got.is_null(e) && expected.is_null(e) && probability.is_null(e)),
                }
            }
            i += 1;
        }
    }
    assert_eq!(i, 300);
    // The toaster row names what it saw as "other".
    let toaster = &core[3].iter().find(|c| c.feature == "device").unwrap().category;
    assert_eq!(toaster.as_ref().unwrap().got, "(other)");
}
