//! The fast inference path: encode and score without allocating per call.
//!
//! Fresh multi-megabyte buffers cost more than the arithmetic here: the allocator hands back new pages
//! and the first write to each page faults (measured: ~0.3 ms per MB, against ~0.15 ms for the whole
//! first-layer product of 8192 rows). So intermediate activations live in per-thread scratch buffers that
//! grow to the largest batch seen and are reused. Rows with missing values take the general path in
//! `autoencoder.rs`, which imputes them; everything else comes through here.

use std::cell::RefCell;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, Zip};

use super::autoencoder::Autoencoder;
use super::mlp::Mlp;
use super::params::{Sparsity, Variant};
use super::regularizer::top_k_mask;
use crate::error::Result;
use crate::preprocess::scale_value;

#[derive(Default)]
struct Scratch {
    scaled: Vec<f32>,
    encoder: Vec<Vec<f32>>,
    code: Vec<f32>,
    decoder: Vec<Vec<f32>>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

fn view_mut(buffer: &mut Vec<f32>, rows: usize, cols: usize) -> ArrayViewMut2<'_, f32> {
    if buffer.len() < rows * cols {
        buffer.resize(rows * cols, 0.0);
    }
    ArrayViewMut2::from_shape((rows, cols), &mut buffer[..rows * cols]).expect("buffer sized to the shape")
}

fn view(buffer: &[f32], rows: usize, cols: usize) -> ArrayView2<'_, f32> {
    ArrayView2::from_shape((rows, cols), &buffer[..rows * cols]).expect("buffer sized to the shape")
}

/// Runs `mlp` on `x`, each layer's output in its own buffer; returns the width of the last output
/// (the input's width when the MLP has no layers, in which case nothing is written).
fn forward(mlp: &Mlp<f32>, x: ArrayView2<f32>, buffers: &mut Vec<Vec<f32>>) -> usize {
    if buffers.len() < mlp.layers.len() {
        buffers.resize_with(mlp.layers.len(), Vec::new);
    }
    let rows = x.nrows();
    for (i, (layer, activation)) in mlp.layers.iter().zip(&mlp.activations).enumerate() {
        let (done, rest) = buffers.split_at_mut(i);
        let input = if i == 0 { x } else { view(&done[i - 1], rows, layer.inputs()) };
        let mut out = view_mut(&mut rest[0], rows, layer.outputs());
        layer.forward_into(input, out.view_mut());
        activation.apply_inplace(out);
    }
    mlp.layers.last().map_or(x.ncols(), |l| l.outputs())
}

/// A complete row's score: the mean of squared errors, summed in f32 in feature order. Both the fast
/// and the general path call this, so a row scores the same whichever path it takes.
pub(crate) fn mean_squared_error(reconstruction: ArrayView1<f32>, scaled: ArrayView1<f32>) -> f64 {
    let mut total = 0.0f32;
    for (a, b) in reconstruction.iter().zip(scaled.iter()) {
        let e = a - b;
        total += e * e;
    }
    total as f64 / reconstruction.len() as f64
}

/// Outcome of scaling a batch into scratch.
enum Scaling {
    Complete,
    HasMissing,
}

impl Autoencoder {
    /// Scales `rows` into `out`; reports missing values instead of handling them, fails on infinities.
    fn scale_into(&self, rows: ArrayView2<f32>, mut out: ArrayViewMut2<f32>) -> Result<Scaling> {
        let mut missing = false;
        let mut infinite = false;
        let offset = &self.scaler.offset;
        let inverse = self.scaler.inverse_scale();
        Zip::from(out.rows_mut()).and(rows.rows()).for_each(|mut o, r| {
            Zip::from(&mut o).and(&r).and(offset).and(&inverse).for_each(|o, &v, &off, &inv| {
                *o = scale_value(v, off, inv);
            });
        });
        // One pass to classify the non-finite values, only when some exist (rare on real data).
        if !out.iter().all(|v| v.is_finite()) {
            for &v in rows.iter() {
                missing |= v.is_nan();
                infinite |= v.is_infinite();
            }
        }
        if infinite {
            crate::preprocess::check_finite_or_missing(rows, &self.feature_names)?;
        }
        Ok(if missing { Scaling::HasMissing } else { Scaling::Complete })
    }

    /// Runs the encoder on complete rows in scratch and hands the code (in scratch) to `then`.
    /// Returns `None` when a row has missing values (the caller falls back to the imputing path).
    fn with_code<R>(
        &self,
        rows: ArrayView2<f32>,
        then: impl FnOnce(&Self, ArrayView2<f32>, ArrayView2<f32>, &mut Vec<Vec<f32>>) -> R,
    ) -> Result<Option<R>> {
        self.check_width(rows.ncols())?;
        let n = rows.nrows();
        SCRATCH.with(|cell| {
            let mut guard = cell.borrow_mut();
            let scratch = &mut *guard;
            let d = self.n_features();
            if let Scaling::HasMissing = self.scale_into(rows, view_mut(&mut scratch.scaled, n, d))? {
                return Ok(None);
            }
            let scaled = view(&scratch.scaled, n, d);
            let width = forward(&self.network.encoder, scaled, &mut scratch.encoder);
            let hidden = match self.network.encoder.layers.len() {
                0 => scaled,
                count => view(&scratch.encoder[count - 1], n, width),
            };
            let latent = self.latent_size();
            let mut code = view_mut(&mut scratch.code, n, latent);
            match &self.network.heads {
                Some(heads) => heads.mean.forward_into(hidden, code.view_mut()),
                None => code.assign(&hidden),
            }
            if let Variant::Sparse { sparsity: Sparsity::TopK { k } } = self.params.variant {
                let keep = top_k_mask(code.view(), k);
                code *= &keep;
            }
            let code = view(&scratch.code, n, latent);
            Ok(Some(then(self, scaled, code, &mut scratch.decoder)))
        })
    }

    /// Codes of complete rows, or `None` when some value is missing.
    pub(crate) fn encode_fast(&self, rows: ArrayView2<f32>) -> Result<Option<Array2<f32>>> {
        self.with_code(rows, |_, _, code, _| code.to_owned())
    }

    /// Scores of complete rows, or `None` when some value is missing.
    pub(crate) fn score_fast(&self, rows: ArrayView2<f32>) -> Result<Option<Array1<f64>>> {
        self.with_code(rows, |model, scaled, code, buffers| {
            let width = forward(&model.network.decoder, code, buffers);
            let count = model.network.decoder.layers.len();
            let reconstruction = view(&buffers[count - 1], code.nrows(), width);
            let mut scores = Array1::zeros(code.nrows());
            Zip::from(&mut scores)
                .and(reconstruction.rows())
                .and(scaled.rows())
                .for_each(|s, r, x| *s = mean_squared_error(r, x));
            scores
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{Autoencoder, LatentSize, Sparsity, Variant};
    use ndarray::Array2;

    /// The fast path and the general path must agree on every variant.
    #[test]
    fn fast_path_matches_general_path() {
        let x = Array2::from_shape_fn((300, 6), |(i, j)| ((i * 7 + j * 3) % 11) as f32 * 0.3 + (j as f32).sin());
        for variant in
            [Variant::Plain, Variant::Sparse { sparsity: Sparsity::TopK { k: 2 } }, Variant::Variational { beta: 1.0 }]
        {
            let model =
                Autoencoder::params().variant(variant).latent(LatentSize::Fixed(3)).epochs(3).fit(x.view()).unwrap();
            let fast = model.score_fast(x.view()).unwrap().unwrap();
            let general = model.score_details(x.view()).unwrap().scores;
            assert_eq!(fast, general, "{variant:?}: the two paths must agree to the bit");
            let code_fast = model.encode_fast(x.view()).unwrap().unwrap();
            assert_eq!(code_fast, model.score_details(x.view()).unwrap().embedding);
        }
    }
}
