//! Reconstruction losses, with a mask for missing values.
//!
//! Missing inputs (NaN in the data) are excluded from the loss: the mask holds 1 for observed and 0 for
//! missing entries, and the loss is averaged over observed entries only. Without a mask every entry counts.

use ndarray::{Array2, ArrayView2, Zip};

use super::params::Loss;
use crate::linalg::{Real, real};

/// Outputs are clamped this far inside (0, 1) before taking logarithms in the cross-entropy.
const BCE_EPS: f64 = 1e-7;

/// The loss value and its gradient with respect to `output`.
pub fn reconstruction_loss<F: Real>(
    loss: Loss,
    output: ArrayView2<F>,
    target: ArrayView2<F>,
    mask: Option<ArrayView2<F>>,
) -> (f64, Array2<F>) {
    let observed = match mask {
        Some(m) => m.sum().to_f64().unwrap_or(0.0),
        None => output.len() as f64,
    };
    let norm = if observed > 0.0 { 1.0 / observed } else { 0.0 };
    let norm_f: F = real(norm);
    let mut grad = Array2::zeros(output.raw_dim());
    // The common case — squared error, nothing missing, contiguous rows — as one tight loop the
    // compiler vectorises (the per-element closure below is several times slower).
    if let (Loss::Mse, None, Some(o), Some(t), Some(g)) =
        (loss, mask, output.as_slice(), target.as_slice(), grad.as_slice_mut())
    {
        let total = crate::linalg::vectorized(
            #[inline(always)]
            || mse_dense(o, t, g, real::<F>(2.0) * norm_f),
        );
        return (total * norm, grad);
    }
    let mut total = 0.0f64;
    let (lo, hi) = (real::<F>(BCE_EPS), real::<F>(1.0 - BCE_EPS));
    let mut visit = |g: &mut F, &o: &F, &t: &F, m: F| {
        if m == F::zero() {
            return;
        }
        match loss {
            Loss::Mse => {
                let e = o - t;
                total += (e * e * m).to_f64().unwrap_or(f64::NAN);
                *g = real::<F>(2.0) * e * m * norm_f;
            }
            Loss::Bce => {
                let p = o.max(lo).min(hi);
                let value = -(t * p.ln() + (F::one() - t) * (F::one() - p).ln());
                total += (value * m).to_f64().unwrap_or(f64::NAN);
                *g = (p - t) / (p * (F::one() - p)) * m * norm_f;
            }
        }
    };
    match mask {
        Some(mask) => {
            Zip::from(&mut grad).and(&output).and(&target).and(&mask).for_each(|g, o, t, &m| visit(g, o, t, m))
        }
        None => Zip::from(&mut grad).and(&output).and(&target).for_each(|g, o, t| visit(g, o, t, F::one())),
    }
    (total * norm, grad)
}

/// Sum of squared errors and `grad = scale * (o - t)`. The sum runs in sixteen independent lanes per
/// block of 256 values (so it vectorises), each block added into an f64 total.
#[inline(always)]
fn mse_dense<F: Real>(output: &[F], target: &[F], grad: &mut [F], scale: F) -> f64 {
    const LANES: usize = 16;
    let mut total = 0.0f64;
    for ((o, t), g) in output.chunks(256).zip(target.chunks(256)).zip(grad.chunks_mut(256)) {
        let mut lanes = [F::zero(); LANES];
        let mut tail = F::zero();
        let (mut oc, mut tc, mut gc) = (o.chunks_exact(LANES), t.chunks_exact(LANES), g.chunks_exact_mut(LANES));
        for ((o, t), g) in (&mut oc).zip(&mut tc).zip(&mut gc) {
            for lane in 0..LANES {
                let e = o[lane] - t[lane];
                lanes[lane] += e * e;
                g[lane] = scale * e;
            }
        }
        for ((o, t), g) in oc.remainder().iter().zip(tc.remainder()).zip(gc.into_remainder()) {
            let e = *o - *t;
            tail += e * e;
            *g = scale * e;
        }
        total += lanes.iter().chain(std::iter::once(&tail)).map(|v| v.to_f64().unwrap_or(f64::NAN)).sum::<f64>();
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn check_gradient(loss: Loss, output: Array2<f64>, target: Array2<f64>, mask: Option<Array2<f64>>) {
        let (_, grad) = reconstruction_loss(loss, output.view(), target.view(), mask.as_ref().map(|m| m.view()));
        let h = 1e-6;
        for idx in [(0, 0), (0, 2), (1, 1), (1, 2)] {
            let (mut plus, mut minus) = (output.clone(), output.clone());
            plus[idx] += h;
            minus[idx] -= h;
            let f =
                |o: &Array2<f64>| reconstruction_loss(loss, o.view(), target.view(), mask.as_ref().map(|m| m.view())).0;
            let numeric = (f(&plus) - f(&minus)) / (2.0 * h);
            assert!((numeric - grad[idx]).abs() < 1e-6, "{loss:?} {idx:?}: {numeric} vs {}", grad[idx]);
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let output = array![[0.2, 0.7, 0.4], [0.9, 0.1, 0.55]];
        let target = array![[0.0, 1.0, 0.3], [1.0, 0.5, 0.5]];
        let mask = array![[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]];
        for loss in [Loss::Mse, Loss::Bce] {
            check_gradient(loss, output.clone(), target.clone(), None);
            check_gradient(loss, output.clone(), target.clone(), Some(mask.clone()));
        }
    }

    #[test]
    fn masked_entries_do_not_count() {
        let output = array![[1.0f64, 100.0], [2.0, 2.0]];
        let target = array![[0.0f64, 0.0], [2.0, 0.0]];
        let mask = array![[1.0f64, 0.0], [1.0, 1.0]];
        let (value, grad) = reconstruction_loss(Loss::Mse, output.view(), target.view(), Some(mask.view()));
        assert!((value - (1.0 + 0.0 + 4.0) / 3.0).abs() < 1e-12);
        assert_eq!(grad[(0, 1)], 0.0);
        let (plain, _) = reconstruction_loss(Loss::Mse, output.view(), target.view(), None);
        assert!((plain - (1.0 + 10000.0 + 0.0 + 4.0) / 4.0).abs() < 1e-9);
    }
}
