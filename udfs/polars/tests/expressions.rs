//! The Rust `Expr` builders against the core: for every row, the numbers a frame gets are the ones
//! `Autoencoder` computes on the same matrix, in eager and lazy use, for both input forms; nulls, NaN
//! and bad inputs follow the SQL door's rules.

use std::sync::{Arc, LazyLock};

use autoenc::Autoencoder;
use autoenc_polars::{Operation, decode, encode, explain, fit_frame, is_anomaly, percentile, reconstruct, score};
use ndarray::{Array2, s};
use polars::prelude::*;

const D: usize = 5;

struct Fixture {
    model: Arc<Autoencoder>,
    rows: Array2<f32>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let data = autoenc::synthetic::sensor_stream(3000, D, 1500, 0.05, 21);
    let names: Vec<String> = (0..D).map(|j| format!("c{j}")).collect();
    let model = Autoencoder::params()
        .seed(5)
        .epochs(5)
        .check()
        .unwrap()
        .fit_with(data.rows.view(), names, &mut |_| {})
        .unwrap();
    Fixture { model: Arc::new(model), rows: data.rows }
});

fn names() -> Vec<String> {
    (0..D).map(|j| format!("c{j}")).collect()
}

fn cols() -> Vec<Expr> {
    names().iter().map(|n| col(n.as_str())).collect()
}

/// `c0..c4` as Float64 columns, plus the same rows as one `Array(Float32, 5)` column `x`.
fn frame(rows: &Array2<f32>) -> DataFrame {
    let mut columns: Vec<Column> = (0..D)
        .map(|j| Column::new(format!("c{j}").into(), rows.column(j).iter().map(|&v| v as f64).collect::<Vec<f64>>()))
        .collect();
    let flat = Series::new("x".into(), rows.iter().copied().collect::<Vec<f32>>());
    let array = flat.reshape_array(&[ReshapeDimension::Infer, ReshapeDimension::new(D as i64)]).unwrap();
    columns.push(array.into_column());
    DataFrame::new_infer_height(columns).unwrap()
}

fn f64s(df: &DataFrame, name: &str) -> Vec<Option<f64>> {
    df.column(name).unwrap().f64().unwrap().iter().collect()
}

fn close(a: f64, b: f64) -> bool {
    // Values pass through f32 like the CLI reads them; block boundaries may differ, so f32 precision.
    (a - b).abs() <= 1e-5 * b.abs().max(1e-6)
}

#[test]
fn lazy_scores_equal_core_scores_for_both_input_forms() {
    let f = &*FIXTURE;
    let expected = f.model.score(f.rows.view()).unwrap();
    let out = frame(&f.rows)
        .lazy()
        .select([score(&f.model, cols()).alias("by_columns"), score(&f.model, [col("x")]).alias("by_array")])
        .collect()
        .unwrap();
    for name in ["by_columns", "by_array"] {
        let got = f64s(&out, name);
        assert_eq!(got.len(), expected.len());
        for (i, (g, e)) in got.iter().zip(expected.iter()).enumerate() {
            assert!(close(g.unwrap(), *e), "{name} row {i}: {g:?} vs {e}");
        }
    }
}

#[test]
fn chunked_columns_over_several_blocks_give_the_cores_numbers_bit_for_bit() {
    // More rows than two of the core's blocks, and every column split into chunks at different rows
    // (as concatenated or streamed frames are): the block-by-block path must read across chunk
    // boundaries and cut blocks where the core does.
    let f = &*FIXTURE;
    let n = 2 * autoenc::CHUNK_ROWS + 123;
    let rows = Array2::from_shape_fn((n, D), |(i, j)| f.rows[(i % f.rows.nrows(), j)] + (i / 3000) as f32 * 0.01);
    let columns: Vec<Column> = (0..D)
        .map(|j| {
            let values: Vec<f32> = rows.column(j).to_vec();
            let cuts = [0, 100 + 997 * j, 9000 + 31 * j, n];
            let mut series = Series::new(format!("c{j}").into(), &values[cuts[0]..cuts[1]]);
            for w in cuts[1..].windows(2) {
                series.append(&Series::new(format!("c{j}").into(), &values[w[0]..w[1]])).unwrap();
            }
            assert_eq!(series.n_chunks(), 3);
            series.into_column()
        })
        .collect();
    let df = DataFrame::new_infer_height(columns).unwrap();
    let out = df
        .lazy()
        .select([score(&f.model, cols()).alias("score"), encode(&f.model, cols()).alias("code")])
        .collect()
        .unwrap();
    let expected = f.model.score(rows.view()).unwrap();
    let got = f64s(&out, "score");
    assert_eq!(got.len(), n);
    for (i, (g, e)) in got.iter().zip(expected.iter()).enumerate() {
        assert_eq!(g.unwrap().to_bits(), e.to_bits(), "row {i}: {g:?} vs {e}");
    }
    let codes = f.model.encode(rows.view()).unwrap();
    let inner = out.column("code").unwrap().array().unwrap().get_inner();
    let got: Vec<f32> = inner.f32().unwrap().into_no_null_iter().collect();
    assert_eq!(got, codes.iter().copied().collect::<Vec<f32>>());
}

#[test]
fn eager_evaluation_on_series_equals_the_lazy_expression() {
    let f = &*FIXTURE;
    let df = frame(&f.rows);
    let inputs: Vec<Series> = names().iter().map(|n| df.column(n).unwrap().as_materialized_series().clone()).collect();
    let eager = Operation::Score.evaluate(&f.model, &inputs).unwrap();
    let lazy = df.lazy().select([score(&f.model, cols())]).collect().unwrap();
    assert!(eager.equals_missing(lazy.column("c0").unwrap().as_materialized_series()));
}

#[test]
fn percentile_and_flags_follow_the_score() {
    let f = &*FIXTURE;
    let scores = f.model.score(f.rows.view()).unwrap();
    let out = frame(&f.rows)
        .lazy()
        .select([
            percentile(&f.model, [col("x")]).alias("p"),
            is_anomaly(&f.model, [col("x")], None).alias("flag"),
            is_anomaly(&f.model, [col("x")], Some(0.5)).alias("above_half"),
        ])
        .collect()
        .unwrap();
    let p = f64s(&out, "p");
    let flags: Vec<Option<bool>> = out.column("flag").unwrap().bool().unwrap().iter().collect();
    let half: Vec<Option<bool>> = out.column("above_half").unwrap().bool().unwrap().iter().collect();
    for (i, &s) in scores.iter().enumerate() {
        assert!(close(p[i].unwrap(), f.model.percentile(s)), "row {i}");
        assert_eq!(flags[i], Some(f.model.is_anomaly(s)), "row {i}");
        assert_eq!(half[i], Some(s > 0.5), "row {i}");
    }
    assert!(flags.contains(&Some(true)) && flags.contains(&Some(false)));
}

#[test]
fn encode_decode_and_reconstruct_are_arrays_equal_to_the_core() {
    let f = &*FIXTURE;
    let rows = f.rows.slice(s![..100, ..]).to_owned();
    let out = frame(&rows)
        .lazy()
        .select([
            encode(&f.model, [col("x")]).alias("code"),
            reconstruct(&f.model, cols()).alias("recon"),
            decode(&f.model, [encode(&f.model, [col("x")])]).alias("decoded"),
        ])
        .collect()
        .unwrap();
    let latent = f.model.latent_size();
    assert_eq!(out.column("code").unwrap().dtype(), &DataType::Array(Box::new(DataType::Float32), latent));
    assert_eq!(out.column("recon").unwrap().dtype(), &DataType::Array(Box::new(DataType::Float32), D));
    let flat = |name: &str| -> Vec<f32> {
        let inner = out.column(name).unwrap().array().unwrap().get_inner();
        inner.f32().unwrap().into_no_null_iter().collect()
    };
    let codes = f.model.encode(rows.view()).unwrap();
    let recon = f.model.reconstruct(rows.view()).unwrap();
    let decoded = f.model.decode(codes.view()).unwrap();
    for (name, expected) in [("code", codes.iter()), ("recon", recon.iter()), ("decoded", decoded.iter())] {
        let got = flat(name);
        assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter().zip(expected) {
            assert!((g - e).abs() <= 1e-4 * e.abs().max(1.0), "{name}: {g} vs {e}");
        }
    }
}

#[test]
fn explain_lists_the_largest_errors_first() {
    let f = &*FIXTURE;
    let rows = f.rows.slice(s![..50, ..]).to_owned();
    let out = frame(&rows).lazy().select([explain(&f.model, [col("x")], 2).alias("why")]).collect().unwrap();
    let expected = f.model.explain(rows.view(), 2).unwrap();
    let lists = out.column("why").unwrap().list().unwrap().clone();
    assert_eq!(lists.len(), expected.len());
    for (i, want) in expected.iter().enumerate() {
        let entries = lists.get_as_series(i).unwrap();
        let entries = entries.struct_().unwrap();
        let features: Vec<String> =
            entries.field_by_name("feature").unwrap().str().unwrap().iter().map(|v| v.unwrap().to_string()).collect();
        let errors: Vec<f64> = entries.field_by_name("error").unwrap().f64().unwrap().into_no_null_iter().collect();
        let names: Vec<String> = want.iter().map(|c| c.feature.clone()).collect();
        assert_eq!(features, names, "row {i}");
        assert!(errors[0] >= errors[1]);
        assert!(close(errors[0], want[0].error));
    }
}

#[test]
fn null_rows_give_null_and_nan_is_a_missing_value() {
    let f = &*FIXTURE;
    let rows = f.rows.slice(s![..4, ..]).to_owned();
    let mut with_nan = rows.clone();
    with_nan[(1, 2)] = f32::NAN;
    let expected = f.model.score(with_nan.view()).unwrap();
    // Row 0: every column null (a null row); row 1: c2 null (missing value); rows 2-3 complete.
    let column = |j: usize| -> Column {
        let values: Vec<Option<f64>> =
            (0..4).map(|i| if i == 0 || (i == 1 && j == 2) { None } else { Some(rows[(i, j)] as f64) }).collect();
        Column::new(format!("c{j}").into(), values)
    };
    let df = DataFrame::new_infer_height((0..D).map(column).collect()).unwrap();
    let out = df.lazy().select([score(&f.model, cols()).alias("s")]).collect().unwrap();
    let got = f64s(&out, "s");
    assert_eq!(got[0], None);
    for i in 1..4 {
        assert!(close(got[i].unwrap(), expected[i]), "row {i}: {:?} vs {}", got[i], expected[i]);
    }
    // The same with NaN instead of a null inside the row, and a null array row.
    let mut arr = frame(&with_nan);
    let x = arr.column("x").unwrap().as_materialized_series().clone();
    let mask = BooleanChunked::new("m".into(), [false, true, true, true]);
    let nulled = x.zip_with(&mask, &Series::full_null("x".into(), 4, x.dtype())).unwrap();
    arr.replace("x", nulled.into_column()).unwrap();
    let out = arr.lazy().select([score(&f.model, [col("x")]).alias("s")]).collect().unwrap();
    let got = f64s(&out, "s");
    assert_eq!(got[0], None);
    assert!(close(got[1].unwrap(), expected[1]));
}

#[test]
fn group_by_agg_gives_the_share_of_anomalies_per_group() {
    let f = &*FIXTURE;
    let mut df = frame(&f.rows);
    let groups: Vec<i32> = (0..f.rows.nrows() as i32).map(|i| i % 3).collect();
    df.with_column(Column::new("device".into(), groups.clone())).unwrap();
    let out = df
        .lazy()
        .group_by([col("device")])
        .agg([is_anomaly(&f.model, [col("x")], None).cast(DataType::Float64).mean().alias("share")])
        .sort(["device"], Default::default())
        .collect()
        .unwrap();
    let scores = f.model.score(f.rows.view()).unwrap();
    for g in 0..3 {
        let members: Vec<bool> =
            scores.iter().zip(&groups).filter(|(_, d)| **d == g).map(|(&s, _)| f.model.is_anomaly(s)).collect();
        let want = members.iter().filter(|&&b| b).count() as f64 / members.len() as f64;
        assert!((f64s(&out, "share")[g as usize].unwrap() - want).abs() < 1e-12, "group {g}");
    }
}

#[test]
fn filter_keeps_the_flagged_rows() {
    let f = &*FIXTURE;
    let scores = f.model.score(f.rows.view()).unwrap();
    let flagged = scores.iter().filter(|&&s| f.model.is_anomaly(s)).count();
    let out = frame(&f.rows).lazy().filter(is_anomaly(&f.model, cols(), None)).collect().unwrap();
    assert_eq!(out.height(), flagged);
}

fn error_of(df: DataFrame, expr: Expr) -> String {
    match df.lazy().select([expr]).collect() {
        Ok(out) => panic!("expected an error, got {out}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn wrong_dimension_and_non_numeric_inputs_are_errors() {
    let f = &*FIXTURE;
    let df = frame(&f.rows.slice(s![..10, ..]).to_owned());
    let msg = error_of(df.clone(), score(&f.model, [col("c0"), col("c1")]));
    assert!(msg.contains("expected 5 features, got 2"), "{msg}");
    let mut with_text = df.clone();
    with_text.with_column(Column::new("t".into(), vec!["a"; 10])).unwrap();
    let msg = error_of(with_text, score(&f.model, [col("c0"), col("c1"), col("c2"), col("c3"), col("t")]));
    assert!(msg.contains("'t' has type str") && msg.contains("numeric"), "{msg}");
    // A list row of the wrong length: known only at execution, named by row.
    let lists = Series::new("l".into(), [Series::new("".into(), [1.0f32; 5]), Series::new("".into(), [1.0f32; 4])]);
    let msg = error_of(DataFrame::new_infer_height(vec![lists.into_column()]).unwrap(), score(&f.model, [col("l")]));
    assert!(msg.contains("row 1") && msg.contains("expected 5 features, got 4"), "{msg}");
    let msg = error_of(df, explain(&f.model, [col("x")], 0));
    assert!(msg.contains("k must be at least 1"), "{msg}");
    // An infinite value past the first block of numeric columns: named by its row in the frame.
    let n = autoenc::CHUNK_ROWS + 100;
    let mut rows = Array2::from_shape_fn((n, D), |(i, j)| f.rows[(i % f.rows.nrows(), j)]);
    rows[(autoenc::CHUNK_ROWS + 5, 2)] = f32::INFINITY;
    let msg = error_of(frame(&rows), score(&f.model, cols()));
    assert!(msg.contains(&format!("row {}", autoenc::CHUNK_ROWS + 5)) && msg.contains("c2"), "{msg}");
}

#[test]
fn training_from_a_frame_equals_training_on_the_matrix() {
    let f = &*FIXTURE;
    let rows = f.rows.slice(s![..500, ..]).to_owned();
    let params = Autoencoder::params().seed(3).epochs(3).record_timings(false).check().unwrap();
    let df = frame(&rows);
    let names = names();
    let by_columns =
        fit_frame(&df, &names.iter().map(String::as_str).collect::<Vec<_>>(), &params, &mut |_| {}).unwrap();
    let by_array = fit_frame(&df, &["x"], &params, &mut |_| {}).unwrap();
    // The frame holds f64 columns; the core reads f32 like the CLI.
    let core = params.fit_with(rows.view(), names.clone(), &mut |_| {}).unwrap();
    assert_eq!(by_columns.feature_names(), names.as_slice());
    assert_eq!(by_array.feature_names()[0], "x[0]");
    let want = core.score(rows.view()).unwrap();
    assert_eq!(by_columns.score(rows.view()).unwrap(), want);
    assert_eq!(by_array.score(rows.view()).unwrap(), want);
}
