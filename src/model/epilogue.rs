//! The epilogue of a dense layer: `v = activation(v + bias)` over a block of rows the matrix product
//! has just written, plus a probe telling whether every `v + bias` was finite.
//!
//! The `gemm` kernel has no epilogue of its own, so this pass runs right after it, while the block is
//! still in cache. It is written with explicit vectors (`pulp`, dispatched at run time to AVX-512,
//! AVX2 or scalar code) because the compiler would not vectorise the combination of a per-column bias,
//! a branchy activation and a reduction by itself: left to it, this pass cost as much as the product.
//!
//! The block is treated as one flat slice. The bias is repeated into a *tile* whose length is a
//! multiple of both the row width and the vector width, so the value at flat index `i` takes
//! `tile[i % tile.len()]` and every vector step reads one aligned piece of the tile. The probe adds
//! `z * 0` per lane, which stays 0 unless `z` is NaN or infinite. ReLU and leaky ReLU are computed
//! as `z > 0 ? z : slope * z` — the same comparison [`Activation::apply`] makes, so a NaN gives the
//! same result on every path; ELU, tanh and sigmoid (never on a hot path) go through `apply` per value.

use pulp::{Simd, WithSimd};

use super::activation::{Activation, LEAKY_SLOPE};
use crate::linalg::{Real, as_f32, as_f32_mut};

/// `v = activation(v + bias)` for every row of `bias.len()` values in `values`; returns whether every
/// `v + bias` was finite.
pub fn add_bias_and_activate<F: Real>(values: &mut [F], bias: &[F], activation: Activation) -> bool {
    if bias.is_empty() {
        return true;
    }
    if let (Some(values), Some(bias)) = (as_f32_mut(values), as_f32(bias)) {
        // A row width that is a multiple of the vector width is its own tile; a short tile is built on
        // the stack (a call on a few hundred rows is short enough for an allocation to show).
        let tile_len = bias.len() / gcd(bias.len(), MAX_LANES) * MAX_LANES;
        let mut on_stack = [0.0f32; STACK_TILE];
        let on_heap: Vec<f32>;
        let tile = if bias.len() % MAX_LANES == 0 {
            bias
        } else if tile_len <= STACK_TILE {
            fill_tile(bias, &mut on_stack[..tile_len]);
            &on_stack[..tile_len]
        } else {
            on_heap = {
                let mut tile = vec![0.0f32; tile_len];
                fill_tile(bias, &mut tile);
                tile
            };
            &on_heap[..]
        };
        let clean = pulp::Arch::new().dispatch(Epilogue { values: &mut *values, tile, activation });
        apply_unvectorised(values, activation);
        return clean;
    }
    // f64: gradient checks only, where clarity beats speed.
    let mut finite = true;
    for row in values.chunks_exact_mut(bias.len()) {
        for (v, &b) in row.iter_mut().zip(bias) {
            let z = *v + b;
            finite &= z.is_finite();
            *v = activation.apply(z);
        }
    }
    finite
}

/// Widest vector the tile must line up with: sixteen f32 (AVX-512).
const MAX_LANES: usize = 16;

/// Longest bias tile kept on the stack (a width of up to 16 values, or any width with a common factor).
const STACK_TILE: usize = 256;

/// `tile` filled with the bias repeated; its length is the least common multiple of the bias length and
/// [`MAX_LANES`].
fn fill_tile(bias: &[f32], tile: &mut [f32]) {
    tile.iter_mut().zip(bias.iter().cycle()).for_each(|(t, &b)| *t = b);
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// ReLU and leaky ReLU of one vector as `z > 0 ? z : slope * z` — the comparison
/// [`Activation::apply`] makes, so a NaN ends up the same way on every path; any other activation is
/// left to the caller (the identity here). Shared by this pass and the tiled kernel.
#[inline(always)]
pub(super) fn activate_vector<S: Simd>(simd: S, activation: Activation, z: S::f32s) -> S::f32s {
    let zero = simd.splat_f32s(0.0);
    match activation {
        Activation::Relu => simd.select_f32s(simd.greater_than_f32s(z, zero), z, zero),
        Activation::LeakyRelu => {
            let slope = simd.splat_f32s(LEAKY_SLOPE as f32);
            simd.select_f32s(simd.greater_than_f32s(z, zero), z, simd.mul_f32s(z, slope))
        }
        _ => z,
    }
}

/// Applies, value by value, an activation that [`activate_vector`] leaves to its caller (ELU, tanh,
/// sigmoid) to values the vector pass has finished; does nothing for the others. Those activations
/// are never on a hot path, and this keeps them on `Activation::apply`'s exact definition.
pub(super) fn apply_unvectorised(values: &mut [f32], activation: Activation) {
    if !matches!(activation, Activation::Identity | Activation::Relu | Activation::LeakyRelu) {
        values.iter_mut().for_each(|v| *v = activation.apply(*v));
    }
}

/// The vector pass; ELU, tanh and sigmoid are run as identity here and applied afterwards.
struct Epilogue<'a> {
    values: &'a mut [f32],
    tile: &'a [f32],
    activation: Activation,
}

impl WithSimd for Epilogue<'_> {
    type Output = bool;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> bool {
        // One closure per activation, so the choice is made once per call, not once per vector.
        match self.activation {
            Activation::Relu => self.run(simd, |z| activate_vector(simd, Activation::Relu, z)),
            Activation::LeakyRelu => self.run(simd, |z| activate_vector(simd, Activation::LeakyRelu, z)),
            _ => self.run(simd, |z| z),
        }
    }
}

impl Epilogue<'_> {
    #[inline(always)]
    fn run<S: Simd>(self, simd: S, activate: impl Fn(S::f32s) -> S::f32s) -> bool {
        let lanes = std::mem::size_of::<S::f32s>() / std::mem::size_of::<f32>();
        let (head, tail) = S::as_mut_simd_f32s(self.values);
        let (tile, _) = S::as_simd_f32s(self.tile);
        let zero = simd.splat_f32s(0.0);
        let mut probe = zero;
        let mut at = 0;
        for v in head.iter_mut() {
            let z = simd.add_f32s(*v, tile[at]);
            probe = simd.add_f32s(probe, simd.mul_f32s(z, zero));
            *v = activate(z);
            at = if at + 1 == tile.len() { 0 } else { at + 1 };
        }
        let mut clean = simd.reduce_sum_f32s(probe) == 0.0;
        let scalar_activation = match self.activation {
            Activation::Relu | Activation::LeakyRelu => self.activation,
            _ => Activation::Identity,
        };
        for (v, &b) in tail.iter_mut().zip(&self.tile[at * lanes..]) {
            let z = *v + b;
            clean &= z.is_finite();
            *v = scalar_activation.apply(z);
        }
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector pass against the plain definition, for widths that do and do not line up with the
    /// vector width, every activation, and blocks whose length leaves a scalar tail.
    #[test]
    fn matches_the_plain_definition() {
        for width in [1usize, 3, 8, 16, 24, 32, 33, 64] {
            for rows in [1usize, 2, 7, 64] {
                let bias: Vec<f32> = (0..width).map(|j| j as f32 * 0.37 - 2.0).collect();
                let values: Vec<f32> = (0..rows * width).map(|i| ((i * 7919) % 23) as f32 * 0.21 - 2.3).collect();
                for activation in Activation::ALL {
                    let mut fast = values.clone();
                    assert!(add_bias_and_activate(&mut fast, &bias, activation));
                    let expected: Vec<f32> =
                        values.iter().enumerate().map(|(i, &v)| activation.apply(v + bias[i % width])).collect();
                    assert_eq!(fast, expected, "width {width}, rows {rows}, {activation:?}");
                }
            }
        }
    }

    /// A NaN or an infinity anywhere — vector part or scalar tail — is reported, whatever the activation
    /// turns it into.
    #[test]
    fn probe_reports_non_finite_values() {
        for width in [8usize, 32, 33] {
            let rows = 5;
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                for at in [0, width + 3, rows * width - 1] {
                    let bias = vec![0.5f32; width];
                    let mut values = vec![1.0f32; rows * width];
                    values[at] = bad;
                    assert!(!add_bias_and_activate(&mut values, &bias, Activation::Relu), "{bad} at {at}");
                }
            }
            // An overflow of v + bias counts as well.
            let mut values = vec![f32::MAX; width];
            assert!(!add_bias_and_activate(&mut values, &vec![f32::MAX; width], Activation::Identity));
        }
    }

    #[test]
    fn f64_path_matches_the_definition() {
        let bias = [0.5f64, -1.0, 2.0];
        let mut values = vec![1.0f64, 1.0, -3.0, -1.0, 0.5, f64::NAN];
        assert!(!add_bias_and_activate(&mut values, &bias, Activation::Relu));
        assert_eq!(&values[..5], &[1.5, 0.0, 0.0, 0.0, 0.0]);
    }
}
