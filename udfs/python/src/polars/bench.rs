//! `_time_core_score`: the core's scoring time on the rows of a column, measured in the same process
//! as the plugin so `benches/score_1m.py` can put the two side by side. Building the matrix is left
//! out of the timing: this is the cost a Rust program holding an `Array2` pays.

use std::time::Instant;

use pyo3::prelude::*;
use pyo3_polars::PySeries;

use crate::errors::compute_error;
use crate::model::PyModel;
use autoenc_polars::features::prepare;

/// Seconds per call of `Autoencoder::score_parallel` over the rows of `column`, `repeats` times, with
/// the thread count the plugin uses.
#[pyfunction]
pub(crate) fn _time_core_score(
    py: Python<'_>,
    model: &PyModel,
    column: PySeries,
    repeats: usize,
) -> PyResult<Vec<f64>> {
    let model = &model.inner;
    py.detach(|| {
        let inputs = [column.0];
        let prepared = prepare("bench", &inputs, Some(model.n_features())).map_err(compute_error)?;
        let matrix = prepared.matrix("bench", Some(model.n_features())).map_err(compute_error)?.with_nan_rows();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut times = Vec::with_capacity(repeats);
        for _ in 0..repeats {
            let start = Instant::now();
            let scores = model.score_parallel(matrix.view(), threads).map_err(compute_error)?;
            times.push(start.elapsed().as_secs_f64());
            std::hint::black_box(scores);
        }
        Ok(times)
    })
}
