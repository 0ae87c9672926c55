//! Dense layers whose output row fills one to four AVX-512 registers exactly (16, 32, 48 or 64 values,
//! such as the reference network's `64 -> 32`, `8 -> 32` and `32 -> 64` layers), with the layer's
//! epilogue done on the registers before anything is stored.
//!
//! With `gemm` a layer was three passes over memory: the product (which also packs its operands), the
//! epilogue adding bias and activation (`epilogue`), and for the output layer the scorer reading the
//! reconstruction back. At 8,192 rows each intermediate is 1–2 MB, more than this core's L2, so the
//! passes between products cost a third of a score call while the products ran near the core's peak.
//! Here a *tile* of `R` rows × `C` registers of outputs is accumulated in `R * C` registers (24 of
//! the 32), reading the rows in place and the weights row by row (they stay in L1), and is finished
//! before it leaves the registers: bias, finiteness probe and ReLU/leaky ReLU, or — for the output
//! layer of a score call — the comparison with the input row and the row's score, so the
//! reconstruction is never written at all.
//!
//! Each output is summed over the inner index in order `0..k` with one fused multiply-add per step
//! (as `gemm`'s own kernels do), so a row's result depends only on its own values, never on the batch
//! or on its place in a tile. A short last tile repeats its last row in the unused slots and stores
//! nothing for them. Other CPUs and shapes fall back to `gemm` plus `epilogue`.

use super::activation::Activation;
#[cfg(target_arch = "x86_64")]
use super::epilogue::apply_unvectorised;

/// Values in one AVX-512 register of f32.
pub const LANES: usize = 16;

/// What a tile's products become before they leave the registers.
pub enum Finish<'a> {
    /// `out = activation(product + bias)`, or the bare product when `bias` is `None` (then the
    /// activation is not applied either). `out` is row-major, `rows × n`.
    Store { bias: Option<&'a [f32]>, activation: Activation, out: &'a mut [f32] },
    /// For an output layer with identity activation: each row's score against its raw input row,
    /// exactly as `inference::row_score` defines it for a complete row — error
    /// `(product + bias) - (raw - offset) * inverse` in sixteen lanes per register, squares added
    /// register by register, lanes summed by pulp's reduction (the order `lane_total` writes out),
    /// divided by the row width.
    Score { bias: &'a [f32], raw: &'a [f32], offset: &'a [f32], inverse: &'a [f32], scores: &'a mut [f64] },
}

/// Runs the layer `x · w` (`x` row-major `rows × k`, `w` row-major `k × n`) through the tiled kernel
/// and `finish`. Returns `None`, touching nothing, when the CPU lacks AVX-512 or the shapes do not fit
/// (`n` not a multiple of 16 up to 64, or slices of the wrong length); the caller then uses the
/// general path. Otherwise returns whether every `product + bias` was finite (for `Score` and a bare
/// product, always `true`: the caller checks the scores, and a product has no probe).
pub fn tiled_layer(x: &[f32], w: &[f32], k: usize, n: usize, finish: Finish) -> Option<bool> {
    if k == 0 || n == 0 || n % LANES != 0 || n > 4 * LANES || w.len() != k * n || x.len() % k != 0 {
        return None;
    }
    let rows = x.len() / k;
    let fits = match &finish {
        Finish::Store { bias, out, .. } => bias.is_none_or(|b| b.len() == n) && out.len() == rows * n,
        Finish::Score { bias, raw, offset, inverse, scores } => {
            bias.len() == n && raw.len() == rows * n && offset.len() == n && inverse.len() == n && scores.len() == rows
        }
    };
    if !fits {
        return None;
    }
    run(x, w, k, n, finish)
}

/// Whether [`tiled_layer`] takes a layer of `n` outputs on this CPU.
pub fn takes(n: usize) -> bool {
    n > 0 && n % LANES == 0 && n <= 4 * LANES && has_avx512()
}

#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    pulp::x86::V4::try_new().is_some()
}

#[cfg(not(target_arch = "x86_64"))]
fn has_avx512() -> bool {
    false
}

#[cfg(not(target_arch = "x86_64"))]
fn run(_: &[f32], _: &[f32], _: usize, _: usize, _: Finish) -> Option<bool> {
    None
}

#[cfg(target_arch = "x86_64")]
fn run(x: &[f32], w: &[f32], k: usize, n: usize, finish: Finish) -> Option<bool> {
    let v4 = pulp::x86::V4::try_new()?;
    // Tiles of 24 accumulators: 24 rows of one register, 12 of two, 8 of three, 6 of four.
    let mut finish = finish;
    let clean = match n / LANES {
        1 => v4.vectorize(Tiles::<24, 1> { v4, x, w, k, finish: &mut finish }),
        2 => v4.vectorize(Tiles::<12, 2> { v4, x, w, k, finish: &mut finish }),
        3 => v4.vectorize(Tiles::<8, 3> { v4, x, w, k, finish: &mut finish }),
        _ => v4.vectorize(Tiles::<6, 4> { v4, x, w, k, finish: &mut finish }),
    };
    if let Finish::Store { bias: Some(_), activation, out } = finish {
        apply_unvectorised(out, activation);
    }
    Some(clean)
}

/// The kernel for tiles of `R` rows × `C` registers.
#[cfg(target_arch = "x86_64")]
struct Tiles<'a, 'f, const R: usize, const C: usize> {
    v4: pulp::x86::V4,
    x: &'a [f32],
    w: &'a [f32],
    k: usize,
    finish: &'a mut Finish<'f>,
}

#[cfg(target_arch = "x86_64")]
impl<const R: usize, const C: usize> pulp::NullaryFnOnce for Tiles<'_, '_, R, C> {
    type Output = bool;

    #[inline(always)]
    fn call(self) -> bool {
        use super::epilogue::activate_vector;
        use super::inference::add_squared_error;
        use pulp::{Simd, f32x16, x86::V4};
        let Tiles { v4: simd, x, w, k, finish } = self;
        let n = C * LANES;
        let rows = x.len() / k;
        let (weights, _) = V4::as_simd_f32s(w);
        let zero = simd.splat_f32s(0.0);
        let load = |values: &[f32], c: usize| -> f32x16 { V4::as_simd_f32s(values).0[c] };
        let mut probe = zero;
        let mut first = 0;
        while first < rows {
            let here = R.min(rows - first);
            // Where each slot's row starts; slots past the last row repeat it (their sums are dropped).
            let starts: [usize; R] = std::array::from_fn(|i| (first + i.min(here - 1)) * k);
            // SAFETY: every start is `row * k` for a row below `rows = x.len() / k`, so each row's `k`
            // values lie inside `x`.
            let acc = unsafe { accumulate::<R, C>(simd, x, weights, k, &starts) };
            match &mut *finish {
                Finish::Store { bias: None, out, .. } => {
                    for (i, slot) in acc.iter().enumerate().take(here) {
                        let (target, _) = V4::as_mut_simd_f32s(&mut out[(first + i) * n..(first + i + 1) * n]);
                        target.copy_from_slice(slot);
                    }
                }
                Finish::Store { bias: Some(bias), activation, out } => {
                    let bias: [f32x16; C] = std::array::from_fn(|c| load(bias, c));
                    for (i, slot) in acc.iter().enumerate().take(here) {
                        let (target, _) = V4::as_mut_simd_f32s(&mut out[(first + i) * n..(first + i + 1) * n]);
                        for ((t, &a), &b) in target.iter_mut().zip(slot).zip(&bias) {
                            let z = simd.add_f32s(a, b);
                            // `z * 0` is 0 unless z is NaN or infinite; the probe sums them.
                            probe = simd.add_f32s(probe, simd.mul_f32s(z, zero));
                            *t = activate_vector(simd, *activation, z);
                        }
                    }
                }
                Finish::Score { bias, raw, offset, inverse, scores } => {
                    let bias: [f32x16; C] = std::array::from_fn(|c| load(bias, c));
                    let offset: [f32x16; C] = std::array::from_fn(|c| load(offset, c));
                    let inverse: [f32x16; C] = std::array::from_fn(|c| load(inverse, c));
                    for (i, slot) in acc.iter().enumerate().take(here) {
                        let (input, _) = V4::as_simd_f32s(&raw[(first + i) * n..(first + i + 1) * n]);
                        let mut sum = zero;
                        for c in 0..C {
                            sum = add_squared_error(simd, sum, slot[c], bias[c], input[c], offset[c], inverse[c]);
                        }
                        scores[first + i] = simd.reduce_sum_f32s(sum) as f64 / n as f64;
                    }
                }
            }
            first += here;
        }
        simd.reduce_sum_f32s(probe) == 0.0
    }
}

/// The products of one tile: slot `i` holds row `starts[i] / k` times `weights`, register by register.
/// A function of its own so that the accumulators are only ever indexed by constants once the loops
/// are unrolled, which lets the compiler keep all of them in registers (inlined into the finishing
/// code, the array stayed in memory and every multiply-add was followed by a store).
///
/// # Safety
///
/// For every `i`, `starts[i] + k <= x.len()`: each slot's row of `k` values lies inside `x`. The
/// values are read without bounds checks (checked indexing cost a compare-and-branch per multiply-add).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn accumulate<const R: usize, const C: usize>(
    simd: pulp::x86::V4,
    x: &[f32],
    weights: &[pulp::f32x16],
    k: usize,
    starts: &[usize; R],
) -> [[pulp::f32x16; C]; R] {
    use pulp::Simd;
    let mut acc = [[simd.splat_f32s(0.0); C]; R];
    for p in 0..k {
        let row_weights: [pulp::f32x16; C] = std::array::from_fn(|c| weights[p * C + c]);
        for i in 0..R {
            // SAFETY: the caller guarantees `starts[i] + k <= x.len()`, and `p < k`.
            let value = simd.splat_f32s(unsafe { *x.get_unchecked(starts[i] + p) });
            for c in 0..C {
                acc[i][c] = simd.mul_add_e_f32s(value, row_weights[c], acc[i][c]);
            }
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::inference::row_score;
    use ndarray::ArrayView1;

    /// Deterministic values in about [-2, 2], with no two neighbours alike.
    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len).map(|i| (((i + seed) * 7919 + seed * 104_729) % 401) as f32 / 100.0 - 2.0).collect()
    }

    /// The kernel's definition, one value at a time: fused multiply-adds over the inner index in order.
    fn reference_product(x: &[f32], w: &[f32], k: usize, n: usize) -> Vec<f32> {
        let rows = x.len() / k;
        let mut out = vec![0.0f32; rows * n];
        for r in 0..rows {
            for j in 0..n {
                out[r * n + j] = (0..k).fold(0.0f32, |acc, p| x[r * k + p].mul_add(w[p * n + j], acc));
            }
        }
        out
    }

    const WIDTHS: [usize; 4] = [16, 32, 48, 64];
    const INNER: [usize; 6] = [1, 3, 8, 32, 64, 70];
    const ROWS: [usize; 7] = [1, 5, 6, 12, 13, 25, 30];

    /// Without AVX-512 the kernel declines everything; the rest of this module's tests need it.
    fn avx512() -> bool {
        let available = takes(16);
        if !available {
            let mut out = vec![0.0f32; 16];
            let finish = Finish::Store { bias: None, activation: Activation::Identity, out: &mut out };
            assert_eq!(tiled_layer(&[1.0], &[0.5; 16], 1, 16, finish), None);
            eprintln!("no AVX-512 on this CPU: the tiled kernel is not used and not tested further");
        }
        available
    }

    /// The bare product is exactly the in-order fused sum for every width, inner size and row count
    /// (full tiles, short tiles, a single row), so its rounding is known and batch-independent.
    #[test]
    fn product_is_the_in_order_fused_sum() {
        if !avx512() {
            return;
        }
        for n in WIDTHS {
            for k in INNER {
                for rows in ROWS {
                    let (x, w) = (values(rows * k, k), values(k * n, n + 1));
                    let mut out = vec![f32::NAN; rows * n];
                    let finish = Finish::Store { bias: None, activation: Activation::Relu, out: &mut out };
                    assert_eq!(tiled_layer(&x, &w, k, n, finish), Some(true), "n {n}, k {k}, rows {rows}");
                    assert_eq!(out, reference_product(&x, &w, k, n), "n {n}, k {k}, rows {rows}");
                }
            }
        }
    }

    /// The product is also right, not just reproducible: against an f64 sum.
    #[test]
    fn product_agrees_with_f64() {
        if !avx512() {
            return;
        }
        let (n, k, rows) = (32, 64, 13);
        let (x, w) = (values(rows * k, 3), values(k * n, 4));
        let mut out = vec![0.0f32; rows * n];
        tiled_layer(&x, &w, k, n, Finish::Store { bias: None, activation: Activation::Identity, out: &mut out });
        for r in 0..rows {
            for j in 0..n {
                let exact: f64 = (0..k).map(|p| x[r * k + p] as f64 * w[p * n + j] as f64).sum();
                assert!((out[r * n + j] as f64 - exact).abs() < 1e-4, "row {r}, output {j}");
            }
        }
    }

    /// Bias and every activation, finished in registers (or deferred), equal the plain definition
    /// applied to the bare product, bit for bit.
    #[test]
    fn finished_layer_is_activation_of_product_plus_bias() {
        if !avx512() {
            return;
        }
        for n in WIDTHS {
            for rows in [1usize, 7, 25] {
                let k = 9;
                let (x, w, bias) = (values(rows * k, n), values(k * n, 2), values(n, 5));
                let product = reference_product(&x, &w, k, n);
                for activation in Activation::ALL {
                    let mut out = vec![f32::NAN; rows * n];
                    let finish = Finish::Store { bias: Some(&bias), activation, out: &mut out };
                    assert_eq!(tiled_layer(&x, &w, k, n, finish), Some(true));
                    let expected: Vec<f32> =
                        product.iter().enumerate().map(|(i, &v)| activation.apply(v + bias[i % n])).collect();
                    assert_eq!(out, expected, "n {n}, rows {rows}, {activation:?}");
                }
            }
        }
    }

    /// A NaN or infinity in any row — first, inside a tile, the last row of a short tile — or a sum that
    /// overflows turns the probe off; the other rows are still computed.
    #[test]
    fn probe_reports_non_finite_sums() {
        if !avx512() {
            return;
        }
        let (n, k, rows) = (32, 8, 15);
        let (w, bias) = (values(k * n, 1), values(n, 2));
        let clean_x = values(rows * k, 3);
        let mut expected = vec![0.0f32; rows * n];
        let finish = Finish::Store { bias: Some(&bias), activation: Activation::Relu, out: &mut expected };
        assert_eq!(tiled_layer(&clean_x, &w, k, n, finish), Some(true));
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::MAX] {
            for row in [0usize, 5, 14] {
                let mut x = clean_x.clone();
                x[row * k + 2] = bad;
                let mut out = vec![0.0f32; rows * n];
                let finish = Finish::Store { bias: Some(&bias), activation: Activation::Relu, out: &mut out };
                assert_eq!(tiled_layer(&x, &w, k, n, finish), Some(false), "{bad} in row {row}");
                for other in (0..rows).filter(|&r| r != row) {
                    assert_eq!(out[other * n..(other + 1) * n], expected[other * n..(other + 1) * n]);
                }
            }
        }
    }

    /// The fused score is `row_score` of the finished reconstruction, bit for bit, for every width and
    /// for full and short tiles.
    #[test]
    fn fused_score_equals_row_score() {
        if !avx512() {
            return;
        }
        for (n, k) in WIDTHS.into_iter().flat_map(|n| [(n, 8), (n, 33)]) {
            for rows in [1usize, 6, 7, 25] {
                let (h, w, bias) = (values(rows * k, 7), values(k * n, 8), values(n, 9));
                let raw = values(rows * n, 10);
                let offset = values(n, 11);
                let inverse: Vec<f32> = values(n, 12).iter().map(|v| v.abs() + 0.25).collect();
                let mut scores = vec![f64::NAN; rows];
                let finish =
                    Finish::Score { bias: &bias, raw: &raw, offset: &offset, inverse: &inverse, scores: &mut scores };
                assert_eq!(tiled_layer(&h, &w, k, n, finish), Some(true));
                let product = reference_product(&h, &w, k, n);
                for r in 0..rows {
                    let finished: Vec<f32> = (0..n).map(|j| product[r * n + j] + bias[j]).collect();
                    let raw_row = ArrayView1::from(&raw[r * n..(r + 1) * n]);
                    let expected = row_score(ArrayView1::from(&finished[..]), raw_row, &offset, &inverse);
                    assert_eq!(scores[r].to_bits(), expected.to_bits(), "n {n}, rows {rows}, row {r}");
                }
            }
        }
    }

    /// Widths it does not take and inconsistent slices are declined without writing anything.
    #[test]
    fn declines_what_it_does_not_take() {
        let mut out = vec![7.0f32; 64];
        for (n, k, x_len, w_len) in
            [(8, 2, 16, 16), (24, 1, 1, 24), (80, 1, 1, 80), (16, 0, 0, 0), (16, 2, 3, 32), (16, 2, 4, 30)]
        {
            let finish = Finish::Store { bias: None, activation: Activation::Identity, out: &mut out[..] };
            assert_eq!(tiled_layer(&vec![1.0; x_len], &vec![1.0; w_len], k, n, finish), None, "n {n}, k {k}");
        }
        // An output or bias of the wrong length.
        let finish = Finish::Store { bias: None, activation: Activation::Identity, out: &mut out[..20] };
        assert_eq!(tiled_layer(&[1.0; 2], &[1.0; 32], 2, 16, finish), None);
        let finish = Finish::Store { bias: Some(&[0.0; 15]), activation: Activation::Identity, out: &mut out[..16] };
        assert_eq!(tiled_layer(&[1.0; 2], &[1.0; 32], 2, 16, finish), None);
        assert!(out.iter().all(|&v| v == 7.0));
        // A score whose input rows, scaler or score slots do not match the shapes.
        let (bias, raw, offset, inverse) = ([0.0f32; 16], [1.0f32; 32], [0.0f32; 16], [1.0f32; 16]);
        for (raw_len, offset_len, scores_len) in [(31, 16, 2), (32, 15, 2), (32, 16, 3)] {
            let mut scores = vec![7.0f64; scores_len];
            let finish = Finish::Score {
                bias: &bias,
                raw: &raw[..raw_len],
                offset: &offset[..offset_len],
                inverse: &inverse[..offset_len],
                scores: &mut scores,
            };
            assert_eq!(tiled_layer(&[1.0; 4], &[1.0; 32], 2, 16, finish), None);
            assert!(scores.iter().all(|&v| v == 7.0));
        }
        assert!(!takes(8) && !takes(80) && !takes(0));
    }
}
