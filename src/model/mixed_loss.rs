//! The reconstruction loss of a model with categorical features: squared error on the numeric
//! features' outputs, scaled softmax cross-entropy on each categorical feature's block of logits.
//!
//! In the network's columns ([`NetworkLayout`]) a row's loss is
//! `Σ_numeric m_c (o_c - t_c)² + Σ_blocks m_b s_b (ln Σ_k exp o_k - Σ_k t_k o_k)`, where `t` is one-hot in
//! a block, `s_b` the block's [`error_scale`](super::features::Vocabulary::error_scale) and `m` the
//! mask (1 observed; a block's mask is its first column's, 0 only for a row that trimming leaves out).
//! The batch's loss is the sum over rows divided by the number of observed terms — numeric entries plus
//! blocks — so each feature counts once, as in the score. The gradient with respect to a block's logits
//! is `m_b s_b (softmax(o) - t) / observed`.

use ndarray::{Array2, ArrayView1, ArrayView2};

use super::features::NetworkLayout;
use crate::linalg::{Real, real};

/// The loss value and its gradient with respect to `output`.
pub fn mixed_loss<F: Real>(
    layout: &NetworkLayout,
    output: ArrayView2<F>,
    target: ArrayView2<F>,
    mask: Option<ArrayView2<F>>,
) -> (f64, Array2<F>) {
    let weight = |i: usize, c: usize| mask.map_or(F::one(), |m| m[(i, c)]);
    let mut observed = 0.0f64;
    for i in 0..output.nrows() {
        for &c in &layout.numeric {
            observed += weight(i, c).to_f64().unwrap_or(0.0);
        }
        for block in &layout.blocks {
            observed += weight(i, block.start).to_f64().unwrap_or(0.0);
        }
    }
    let norm = if observed > 0.0 { 1.0 / observed } else { 0.0 };
    let mut grad = Array2::zeros(output.raw_dim());
    let mut total = 0.0f64;
    let mut probabilities = Vec::new();
    for i in 0..output.nrows() {
        let (o, t) = (output.row(i), target.row(i));
        for &c in &layout.numeric {
            let m = weight(i, c);
            if m == F::zero() {
                continue;
            }
            let e = o[c] - t[c];
            total += (e * e * m).to_f64().unwrap_or(f64::NAN);
            grad[(i, c)] = real::<F>(2.0) * e * m * real(norm);
        }
        for block in &layout.blocks {
            let m = weight(i, block.start);
            if m == F::zero() {
                continue;
            }
            let range = block.start..block.start + block.width;
            let logits = o.slice(ndarray::s![range.clone()]);
            let targets = t.slice(ndarray::s![range]);
            let (entropy, log_sum) = block_cross_entropy(logits, targets);
            let m64 = m.to_f64().unwrap_or(0.0);
            total += m64 * block.error_scale * entropy;
            let factor = m64 * block.error_scale * norm;
            probabilities.clear();
            probabilities.extend(logits.iter().map(|&v| (v.to_f64().unwrap_or(f64::NAN) - log_sum).exp()));
            for (k, (&p, &target)) in probabilities.iter().zip(targets).enumerate() {
                grad[(i, block.start + k)] = real(factor * (p - target.to_f64().unwrap_or(0.0)));
            }
        }
    }
    (total * norm, grad)
}

/// `(Σ_k t_k (ln Σ_j exp o_j - o_k), ln Σ_j exp o_j)` for one block, from the largest logit.
fn block_cross_entropy<F: Real>(logits: ArrayView1<F>, targets: ArrayView1<F>) -> (f64, f64) {
    let values = || logits.iter().map(|v| v.to_f64().unwrap_or(f64::NAN));
    let max = values().fold(f64::NEG_INFINITY, f64::max);
    let log_sum = max + values().map(|v| (v - max).exp()).sum::<f64>().ln();
    let entropy = values().zip(targets).map(|(v, &t)| t.to_f64().unwrap_or(0.0) * (log_sum - v)).sum::<f64>();
    (entropy, log_sum)
}

/// Each row's loss per observed term, for trimming the worst rows of a batch (see `objective`).
pub fn mixed_row_errors<F: Real>(
    layout: &NetworkLayout,
    output: ArrayView2<F>,
    target: ArrayView2<F>,
    mask: ArrayView2<F>,
) -> Vec<f64> {
    (0..output.nrows())
        .map(|i| {
            let (o, t, m) = (output.row(i), target.row(i), mask.row(i));
            let (mut sum, mut count) = (0.0f64, 0.0f64);
            for &c in &layout.numeric {
                let w = m[c].to_f64().unwrap_or(0.0);
                let e = (o[c] - t[c]).to_f64().unwrap_or(f64::NAN);
                sum += w * e * e;
                count += w;
            }
            for block in &layout.blocks {
                let w = m[block.start].to_f64().unwrap_or(0.0);
                let range = block.start..block.start + block.width;
                let (entropy, _) =
                    block_cross_entropy(o.slice(ndarray::s![range.clone()]), t.slice(ndarray::s![range]));
                sum += w * block.error_scale * entropy;
                count += w;
            }
            if count > 0.0 { sum / count } else { 0.0 }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::features::{FeatureKind, FeatureLayout, Vocabulary};
    use ndarray::array;

    fn layout() -> FeatureLayout {
        let vocabulary = |n: usize| Vocabulary::new((0..n).map(|k| format!("v{k}")).collect()).unwrap();
        FeatureLayout::new(vec![
            FeatureKind::Categorical { vocabulary: vocabulary(1) },
            FeatureKind::Numeric,
            FeatureKind::Categorical { vocabulary: vocabulary(3) },
        ])
    }

    fn batch() -> (Array2<f64>, Array2<f64>, Array2<f64>) {
        // Network columns: block 0..3, numeric 3, block 4..9.
        let output =
            array![[0.3, -1.2, 0.8, 0.5, 2.0, -0.4, 0.1, 0.0, 1.3], [-0.7, 0.2, 0.05, -1.5, 0.6, 0.9, -2.0, 0.3, 0.4]];
        let target =
            array![[0.0, 1.0, 0.0, 0.25, 0.0, 0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 3.0, 1.0, 0.0, 0.0, 0.0, 0.0]];
        let mut mask = Array2::ones(output.raw_dim());
        mask[(1, 3)] = 0.0;
        (output, target, mask)
    }

    #[test]
    fn gradients_match_finite_differences() {
        let layout = layout();
        let network = layout.network().unwrap();
        let (output, target, mask) = batch();
        for mask in [None, Some(mask.view())] {
            let (_, grad) = mixed_loss(network, output.view(), target.view(), mask);
            let h = 1e-6;
            for idx in ndarray::indices(output.raw_dim()) {
                let (mut plus, mut minus) = (output.clone(), output.clone());
                plus[idx] += h;
                minus[idx] -= h;
                let f = |o: &Array2<f64>| mixed_loss(network, o.view(), target.view(), mask).0;
                let numeric = (f(&plus) - f(&minus)) / (2.0 * h);
                assert!((numeric - grad[idx]).abs() < 1e-7, "{idx:?}: {numeric} vs {}", grad[idx]);
            }
        }
    }

    #[test]
    fn each_feature_counts_once_whatever_its_width() {
        let layout = layout();
        let network = layout.network().unwrap();
        let (output, target, mask) = batch();
        let (value, _) = mixed_loss(network, output.view(), target.view(), Some(mask.view()));
        // Row 0: three terms; row 1: two (its numeric value is missing).
        let ce = |logits: &[f64], k: usize| logits.iter().map(|v| v.exp()).sum::<f64>().ln() - logits[k];
        let s1 = 1.0 / 2f64.ln();
        let s3 = 1.0 / 3f64.ln();
        let row0 = s1 * ce(&[0.3, -1.2, 0.8], 1) + 0.25f64.powi(2) + s3 * ce(&[2.0, -0.4, 0.1, 0.0, 1.3], 2);
        let row1 = s1 * ce(&[-0.7, 0.2, 0.05], 2) + s3 * ce(&[0.6, 0.9, -2.0, 0.3, 0.4], 0);
        assert!((value - (row0 + row1) / 5.0).abs() < 1e-12, "{value}");
        let rows = mixed_row_errors(network, output.view(), target.view(), mask.view());
        assert!((rows[0] - row0 / 3.0).abs() < 1e-12 && (rows[1] - row1 / 2.0).abs() < 1e-12);
    }
}
