//! Penalties and code transforms that turn a plain autoencoder into the other family members.
//!
//! Each function returns the penalty's value and its gradient, so the objective can add them to the
//! reconstruction gradient. All are checked against finite differences in the tests below.

use ndarray::{Array1, Array2, ArrayView2, Axis, Zip};

use super::activation::Activation;
use super::dense::Dense;
use crate::linalg::{Real, matmul_into, real};

/// Log-variances of a variational code are clamped to ±this before `exp`, so one bad batch cannot
/// overflow to infinity and poison the weights with NaN (`exp(10)` ≈ 2.2e4 is already a huge variance).
pub const LOG_VAR_LIMIT: f64 = 10.0;

/// A 0/1 mask keeping the `k` entries of largest magnitude in each row (ties go to the lower index).
pub fn top_k_mask<F: Real>(code: ArrayView2<F>, k: usize) -> Array2<F> {
    let mut mask = Array2::zeros(code.raw_dim());
    let width = code.ncols();
    if k >= width {
        mask.fill(F::one());
        return mask;
    }
    let mut order: Vec<usize> = Vec::with_capacity(width);
    for (row, mut mask_row) in code.outer_iter().zip(mask.outer_iter_mut()) {
        order.clear();
        order.extend(0..width);
        // Largest magnitude first; NaN never reaches here (inputs are checked), but compare totally anyway.
        order.select_nth_unstable_by(k - 1, |&a, &b| {
            row[b].abs().partial_cmp(&row[a].abs()).unwrap_or(std::cmp::Ordering::Equal).then(a.cmp(&b))
        });
        for &j in &order[..k] {
            mask_row[j] = F::one();
        }
    }
    mask
}

/// `lambda * mean_rows(sum_j |h_j|)`.
pub fn l1_activity<F: Real>(code: ArrayView2<F>, lambda: f64) -> (f64, Array2<F>) {
    let rows = code.nrows().max(1) as f64;
    let value = lambda * code.iter().map(|v| v.abs().to_f64().unwrap_or(f64::NAN)).sum::<f64>() / rows;
    let scale: F = real(lambda / rows);
    let grad = code.mapv(|v| {
        if v > F::zero() {
            scale
        } else if v < F::zero() {
            -scale
        } else {
            F::zero()
        }
    });
    (value, grad)
}

/// Average activations are clamped into (0, 1) by this margin so the KL stays finite.
const KL_CLAMP: f64 = 1e-6;

/// `beta * sum_j KL(rho || rho_hat_j)` with `rho_hat_j` the mean activation of code unit `j` over the batch.
pub fn kl_sparsity<F: Real>(code: ArrayView2<F>, rho: f64, beta: f64) -> (f64, Array2<F>) {
    let rows = code.nrows().max(1) as f64;
    let mean = code.mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(code.ncols()));
    let mut value = 0.0;
    let mut dmean = Array1::<F>::zeros(code.ncols());
    for (j, &m) in mean.iter().enumerate() {
        let r = m.to_f64().unwrap_or(f64::NAN).clamp(KL_CLAMP, 1.0 - KL_CLAMP);
        value += rho * (rho / r).ln() + (1.0 - rho) * ((1.0 - rho) / (1.0 - r)).ln();
        dmean[j] = real(beta * (-rho / r + (1.0 - rho) / (1.0 - r)) / rows);
    }
    let grad = dmean.broadcast(code.raw_dim()).expect("row vector broadcasts").to_owned();
    (beta * value, grad)
}

/// The contractive penalty `lambda * mean_rows ||∂h/∂x||_F²` for a one-layer encoder `h = f(x·W + b)`.
///
/// For one layer the Jacobian is `diag(f'(z)) Wᵀ`, so its squared Frobenius norm is
/// `sum_j f'(z_j)² ||W_{:,j}||²` — exact and cheap. The gradient is added to `grads`.
pub fn contractive<F: Real>(
    x: ArrayView2<F>,
    layer: &Dense<F>,
    activation: Activation,
    code: ArrayView2<F>,
    lambda: f64,
    grads: &mut Dense<F>,
) -> f64 {
    let rows = code.nrows().max(1) as f64;
    let column_norms = layer.weight.map_axis(Axis(0), |col| col.dot(&col));
    let first = code.mapv(|a| activation.derivative_from_output(a));
    let second = code.mapv(|a| activation.second_derivative_from_output(a));
    let squared = first.mapv(|d| d * d);
    let value = lambda * (&squared * &column_norms).sum().to_f64().unwrap_or(f64::NAN) / rows;

    // ∂/∂z_ij of f'(z_ij)² c_j = 2 f'(z_ij) f''(z_ij) c_j; chain to W and b through z = x·W + b.
    let scale: F = real(lambda / rows);
    let mut through_z = Array2::zeros(code.raw_dim());
    Zip::from(&mut through_z).and(&first).and(&second).for_each(|g, &d1, &d2| {
        *g = real::<F>(2.0) * d1 * d2 * scale;
    });
    through_z *= &column_norms;
    matmul_into(x.t(), through_z.view(), grads.weight.view_mut(), true);
    grads.bias += &through_z.sum_axis(Axis(0));
    // ∂/∂W_kj of c_j = 2 W_kj, weighted by sum_i f'(z_ij)².
    let weight_factor = squared.sum_axis(Axis(0)).mapv(|s| s * real::<F>(2.0) * scale);
    grads.weight.zip_mut_with(&(&layer.weight * &weight_factor), |g, &d| *g += d);
    value
}

/// The variational KL term `scale * sum_rows KL(N(mu, exp(log_var)) || N(0, I))` and its gradients
/// with respect to `mu` and `log_var`.
pub fn gaussian_kl<F: Real>(mu: ArrayView2<F>, log_var: ArrayView2<F>, scale: f64) -> (f64, Array2<F>, Array2<F>) {
    let mut value = 0.0;
    let s: F = real(scale);
    let half: F = real(0.5);
    Zip::from(&mu).and(&log_var).for_each(|&m, &lv| {
        let term = -0.5 * (1.0 + lv.to_f64().unwrap_or(f64::NAN) - (m * m + lv.exp()).to_f64().unwrap_or(f64::NAN));
        value += term;
    });
    let dmu = mu.mapv(|m| m * s);
    let dlv = log_var.mapv(|lv| half * (lv.exp() - F::one()) * s);
    (value * scale, dmu, dlv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn numeric_gradient(f: impl Fn(&Array2<f64>) -> f64, at: &Array2<f64>) -> Array2<f64> {
        let h = 1e-6;
        Array2::from_shape_fn(at.raw_dim(), |idx| {
            let (mut plus, mut minus) = (at.clone(), at.clone());
            plus[idx] += h;
            minus[idx] -= h;
            (f(&plus) - f(&minus)) / (2.0 * h)
        })
    }

    fn assert_close(a: &Array2<f64>, b: &Array2<f64>, tol: f64) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < tol, "{a:?}\n vs\n{b:?}");
        }
    }

    #[test]
    fn top_k_keeps_largest_magnitudes() {
        let code = array![[0.1, -3.0, 2.0, 0.5], [1.0, 1.0, -1.0, 0.0]];
        let mask = top_k_mask(code.view(), 2);
        assert_eq!(mask, array![[0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]]);
        assert_eq!(top_k_mask(code.view(), 9), Array2::<f64>::ones((2, 4)));
    }

    #[test]
    fn l1_gradient_matches_finite_differences() {
        let code = array![[0.3, -0.2, 1.1], [-0.7, 0.4, 0.05]];
        let (_, grad) = l1_activity(code.view(), 0.3);
        assert_close(&grad, &numeric_gradient(|c| l1_activity(c.view(), 0.3).0, &code), 1e-6);
    }

    #[test]
    fn kl_gradient_matches_finite_differences() {
        let code = array![[0.3, 0.2, 0.9], [0.7, 0.4, 0.05], [0.5, 0.1, 0.6]];
        let (value, grad) = kl_sparsity(code.view(), 0.1, 2.0);
        assert!(value > 0.0);
        assert_close(&grad, &numeric_gradient(|c| kl_sparsity(c.view(), 0.1, 2.0).0, &code), 1e-6);
        let at_target = Array2::from_elem((4, 3), 0.1);
        assert!(kl_sparsity(at_target.view(), 0.1, 2.0).0.abs() < 1e-12);
    }

    #[test]
    fn gaussian_kl_gradients_match_finite_differences() {
        let mu = array![[0.3, -1.2], [0.0, 0.8]];
        let lv = array![[-0.5, 0.4], [1.3, -2.0]];
        let (_, dmu, dlv) = gaussian_kl(mu.view(), lv.view(), 0.25);
        assert_close(&dmu, &numeric_gradient(|m| gaussian_kl(m.view(), lv.view(), 0.25).0, &mu), 1e-6);
        assert_close(&dlv, &numeric_gradient(|l| gaussian_kl(mu.view(), l.view(), 0.25).0, &lv), 1e-6);
        let zero = Array2::<f64>::zeros((2, 2));
        assert!(gaussian_kl(zero.view(), zero.view(), 1.0).0.abs() < 1e-12, "KL of N(0,1) to itself");
    }

    /// The closed form must equal the Frobenius norm of an explicitly built Jacobian, and its
    /// gradient must match finite differences, for every activation with a second derivative.
    #[test]
    fn contractive_penalty_is_exact_and_its_gradient_matches() {
        use crate::model::dense::Init;
        use rand::SeedableRng;
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(3);
        let x = array![[0.5, -1.0, 0.3], [1.2, 0.1, -0.4]];
        for act in [Activation::Tanh, Activation::Sigmoid, Activation::Elu, Activation::Identity] {
            let layer = Dense::<f64>::init(3, 2, Init::Xavier, &mut rng);
            let penalty = |l: &Dense<f64>| {
                let mut code = l.forward(x.view());
                act.apply_inplace(code.view_mut());
                let mut scratch = Dense::zeros(3, 2);
                contractive(x.view(), l, act, code.view(), 0.7, &mut scratch)
            };
            // Explicit Jacobian by finite differences of the encoder itself.
            let h = 1e-6;
            let mut explicit = 0.0;
            for row in x.outer_iter() {
                for i in 0..3 {
                    let (mut plus, mut minus) = (row.to_owned(), row.to_owned());
                    plus[i] += h;
                    minus[i] -= h;
                    let enc = |v: &ndarray::Array1<f64>| {
                        let mut z = l_forward(&layer, v);
                        z.mapv_inplace(|t| act.apply(t));
                        z
                    };
                    let column = (enc(&plus) - enc(&minus)) / (2.0 * h);
                    explicit += column.dot(&column);
                }
            }
            let closed = penalty(&layer);
            assert!((closed - 0.7 * explicit / 2.0).abs() < 1e-6, "{act}: {closed} vs {}", 0.7 * explicit / 2.0);

            let mut code = layer.forward(x.view());
            act.apply_inplace(code.view_mut());
            let mut grads = Dense::zeros(3, 2);
            contractive(x.view(), &layer, act, code.view(), 0.7, &mut grads);
            for idx in [(0, 0), (1, 1), (2, 0)] {
                let (mut plus, mut minus) = (layer.clone(), layer.clone());
                plus.weight[idx] += h;
                minus.weight[idx] -= h;
                let numeric = (penalty(&plus) - penalty(&minus)) / (2.0 * h);
                assert!((numeric - grads.weight[idx]).abs() < 1e-6, "{act} W{idx:?}");
            }
            for j in 0..2 {
                let (mut plus, mut minus) = (layer.clone(), layer.clone());
                plus.bias[j] += h;
                minus.bias[j] -= h;
                let numeric = (penalty(&plus) - penalty(&minus)) / (2.0 * h);
                assert!((numeric - grads.bias[j]).abs() < 1e-6, "{act} b{j}");
            }
        }
    }

    fn l_forward(layer: &Dense<f64>, v: &ndarray::Array1<f64>) -> ndarray::Array1<f64> {
        v.dot(&layer.weight) + &layer.bias
    }
}
