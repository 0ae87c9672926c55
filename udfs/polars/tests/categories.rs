//! Models with categorical features in frames: `String` and `Boolean` columns are coded in the model's
//! vocabularies and give the core's bits, unseen values and nulls included; `fit_frame` learns the
//! vocabularies as the core does; a column of the wrong kind is an error naming it.

use std::sync::Arc;

use autoenc::synthetic_devices::{DeviceEvents, device_events};
use autoenc::{Autoencoder, AutoencoderValidParams, LatentSize};
use autoenc_polars::{encode, explain, fit_frame, reconstruct, score};
use polars::prelude::*;

const NAMES: [&str; 6] = DeviceEvents::NAMES;

fn params() -> AutoencoderValidParams {
    Autoencoder::params().latent(LatentSize::Fixed(3)).epochs(4).seed(9).record_timings(false).check().unwrap()
}

fn frame(events: &DeviceEvents) -> DataFrame {
    df!(
        "device" => events.device.clone(),
        "protocol" => events.protocol.clone(),
        "encrypted" => events.encrypted.clone(),
        "log_bytes" => events.log_bytes.clone(),
        "log_packets" => events.log_packets.clone(),
        "duration" => events.duration.clone(),
    )
    .unwrap()
}

/// The core's model on the same events: vocabularies learned from their text, then `fit_with_kinds`.
fn core_model(events: &DeviceEvents) -> Autoencoder {
    let vocabularies = events.vocabularies(params().max_categories()).unwrap();
    let (x, kinds) = events.coded(&vocabularies);
    let names = NAMES.iter().map(|n| n.to_string()).collect();
    params().fit_with_kinds(x.view(), names, kinds, &mut |_| {}).unwrap()
}

fn columns() -> Vec<Expr> {
    NAMES.iter().map(|n| col(*n)).collect()
}

fn floats(df: &DataFrame) -> Vec<u64> {
    df.column("s").unwrap().f64().unwrap().into_no_null_iter().map(f64::to_bits).collect()
}

#[test]
fn fit_frame_learns_the_vocabularies_and_trains_the_cores_model() {
    let events = device_events(600, 0.0, 4);
    let ours = fit_frame(&frame(&events), &NAMES, &params(), &mut |_| {}).unwrap();
    let core = core_model(&events);
    assert_eq!(ours.feature_kinds(), core.feature_kinds(), "booleans are the texts true and false");
    let (x, _) = events.coded(&events.vocabularies(64).unwrap());
    assert_eq!(ours.score(x.view()).unwrap(), core.score(x.view()).unwrap());
}

#[test]
fn text_and_boolean_columns_score_as_the_core_does_with_unseen_values_and_nulls() {
    let events = device_events(200, 0.1, 5);
    let model = Arc::new(core_model(&device_events(600, 0.0, 4)));
    let mut df = frame(&events);
    // A device never seen and a null protocol: "other" and the null category, never an error.
    let mut devices: Vec<Option<String>> = events.device.iter().cloned().map(Some).collect();
    devices[0] = Some("toaster".into());
    let mut protocols: Vec<Option<String>> = events.protocol.iter().cloned().map(Some).collect();
    protocols[1] = None;
    df.replace("device", Series::new("device".into(), devices.clone()).into()).unwrap();
    df.replace("protocol", Series::new("protocol".into(), protocols.clone()).into()).unwrap();

    let out = df.clone().lazy().select([score(&model, columns()).alias("s")]).collect().unwrap();
    let vocabularies: Vec<_> = model.feature_kinds().iter().take(3).map(|k| k.vocabulary().unwrap()).collect();
    let mut x = ndarray::Array2::<f32>::zeros((200, 6));
    for i in 0..200 {
        x[(i, 0)] = vocabularies[0].code(devices[i].as_deref()) as f32;
        x[(i, 1)] = vocabularies[1].code(protocols[i].as_deref()) as f32;
        x[(i, 2)] = vocabularies[2].code(Some(&events.encrypted[i].to_string())) as f32;
        x[(i, 3)] = events.log_bytes[i];
        x[(i, 4)] = events.log_packets[i];
        x[(i, 5)] = events.duration[i];
    }
    assert_eq!(x[(0, 0)], vocabularies[0].other_code() as f32);
    assert_eq!(x[(1, 1)], vocabularies[1].null_code() as f32);
    let want: Vec<u64> = model.score(x.view()).unwrap().iter().map(|s| s.to_bits()).collect();
    assert_eq!(floats(&out), want, "the core's bits");

    // Encode and reconstruct match the core too; explain names the categorical features.
    let out = df
        .lazy()
        .select([
            encode(&model, columns()).alias("e"),
            reconstruct(&model, columns()).alias("r"),
            explain(&model, columns(), 2).alias("x"),
        ])
        .collect()
        .unwrap();
    let codes = out.column("e").unwrap().array().unwrap().get_inner();
    let codes: Vec<f32> = codes.f32().unwrap().into_no_null_iter().collect();
    assert_eq!(codes, model.encode(x.view()).unwrap().iter().copied().collect::<Vec<_>>());
    let rebuilt = out.column("r").unwrap().array().unwrap().get_inner();
    let rebuilt: Vec<f32> = rebuilt.f32().unwrap().into_no_null_iter().collect();
    assert_eq!(rebuilt, model.reconstruct(x.view()).unwrap().iter().copied().collect::<Vec<_>>());
    // Explanations name a categorical feature's value seen and the one expected, as the core's do.
    let core = model.explain(x.view(), 2).unwrap();
    let lists = out.column("x").unwrap().list().unwrap().clone();
    for (i, row) in lists.amortized_iter().enumerate() {
        let row = row.expect("every row is explained");
        let entries = row.as_ref().struct_().unwrap().clone();
        let fields = entries.fields_as_series();
        let (features, got, expected) = (fields[0].str().unwrap(), fields[2].str().unwrap(), fields[3].str().unwrap());
        for (e, contribution) in core[i].iter().enumerate() {
            assert_eq!(features.get(e), Some(contribution.feature.as_str()));
            let mismatch = contribution.category.as_ref();
            assert_eq!(got.get(e), mismatch.map(|m| m.got.as_str()));
            assert_eq!(expected.get(e), mismatch.map(|m| m.expected.as_str()));
        }
    }
}

#[test]
fn a_column_of_the_wrong_kind_or_count_is_an_error_naming_it() {
    let model = Arc::new(core_model(&device_events(300, 0.0, 6)));
    let df = frame(&device_events(20, 0.0, 7));
    let error = |exprs: Vec<Expr>| df.clone().lazy().select([score(&model, exprs)]).collect().unwrap_err().to_string();
    let mut swapped = columns();
    swapped.swap(0, 3);
    let message = error(swapped);
    assert!(message.contains("column 'log_bytes' is f32, but its feature is categorical"), "{message}");
    assert!(error(columns()[..5].to_vec()).contains("expected 6 feature columns, got 5"));
    // Numbers as text with a stray word are a typo, not categories (the core's rule).
    let typo = df!("n" => ["1", "2", "x", "4", "5"], "m" => [1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
    let message = fit_frame(&typo, &["n", "m"], &params(), &mut |_| {}).unwrap_err().to_string();
    assert!(message.contains("'x' among numbers"), "{message}");
}
