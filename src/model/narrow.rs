//! Matrix products with few output columns — at most one vector register wide (16 f32 with AVX-512,
//! 8 with AVX2) — such as the code layer `32 -> 8` of the reference network.
//!
//! `gemm` vectorises along the output row, so an 8-wide output fills half of each AVX-512 register
//! and its kernel spends more time loading and storing accumulators than multiplying: in the
//! throughput bench, the `8192 x 32 · 32 x 8` product ran at a quarter of the speed per flop of the
//! `64 -> 32` one and took a quarter of an encode call. This kernel keeps each output row in one register and walks the
//! inner dimension once: for every input value, one broadcast and one fused multiply-add against the
//! matching (zero-padded) weight row, eight rows in flight so the adds do not wait on each other.
//! On AVX-512 an output of at most 8 values takes two inner indices per multiply-add instead (see
//! [`Pairs`]), so no lane idles. Each output is summed in a fixed order that depends only on the
//! shapes, never on the number of rows, so a row's result does not depend on the batch it came in.

use ndarray::{ArrayView2, ArrayViewMut2};
use pulp::{Simd, WithSimd};

use crate::linalg::{Real, as_f32, as_f32_mut};

/// Rows computed together: eight independent accumulators hide the multiply-add latency.
const ROWS_IN_FLIGHT: usize = 8;

/// `out = x · w` through [`narrow_matmul`] when the arrays are f32, contiguous and row-major and the
/// output is narrow enough; returns `false`, touching nothing, otherwise.
pub fn try_narrow_product<F: Real>(x: ArrayView2<F>, w: ArrayView2<F>, mut out: ArrayViewMut2<F>) -> bool {
    let (k, n) = w.dim();
    let x = x.as_slice().and_then(as_f32);
    let w = w.as_slice().and_then(as_f32);
    match (x, w, out.as_slice_mut().and_then(as_f32_mut)) {
        (Some(x), Some(w), Some(out)) => narrow_matmul(x, w, k, n, out),
        _ => false,
    }
}

/// `out = x · w` for row-major `x` (`rows × k`), `w` (`k × n`) and `out` (`rows × n`), when `n` fits in
/// one vector register of this CPU. Returns `false`, touching nothing, when it does not (or when `n`
/// is 0); the caller then uses the general product.
pub fn narrow_matmul(x: &[f32], w: &[f32], k: usize, n: usize, out: &mut [f32]) -> bool {
    if n == 0 || k == 0 || w.len() != k * n || x.len() % k != 0 || out.len() != x.len() / k * n {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    if 2 * n <= PAIR_LANES
        && let Some(v4) = pulp::x86::V4::try_new()
    {
        v4.vectorize(Pairs { v4, x, w, k, n, out });
        return true;
    }
    pulp::Arch::new().dispatch(Narrow { x, w, k, n, out })
}

/// Lanes of an AVX-512 register of f32.
#[cfg(target_arch = "x86_64")]
const PAIR_LANES: usize = 16;

/// Interleaved weight pairs kept on the stack: inner sizes up to 64.
#[cfg(target_arch = "x86_64")]
const STACK_PAIRS: usize = 32;

/// Outputs at most half an AVX-512 register wide (the reference code layer's 8): two inner indices per
/// multiply-add, so no lane idles. The register holds `[x_p, x_p+1]` repeated — one 64-bit broadcast
/// from memory — against weight rows `p` and `p+1` interleaved, `[w_p,0, w_p+1,0, w_p,1, w_p+1,1, ...]`;
/// output `j` is then lane `2j` plus lane `2j+1`. Two rows' accumulators are folded together by two
/// permutes and one add into the sixteen values that are those rows' outputs, stored in one go.
/// Measured on `256 x 32 · 32 x 8`: about half the time of one index per multiply-add. Plain AVX-512
/// intrinsics: the portable `pulp` interface has no two-register permute.
#[cfg(target_arch = "x86_64")]
struct Pairs<'a> {
    v4: pulp::x86::V4,
    x: &'a [f32],
    w: &'a [f32],
    k: usize,
    n: usize,
    out: &'a mut [f32],
}

#[cfg(target_arch = "x86_64")]
impl pulp::NullaryFnOnce for Pairs<'_> {
    type Output = ();

    #[inline(always)]
    fn call(self) {
        use std::arch::x86_64::{__m512, __m512i};
        let Pairs { v4, x, w, k, n, out } = self;
        let f = v4.avx512f;
        let pairs = k.div_ceil(2);
        let full_pairs = k / 2;
        let mut lanes_buffer = [0.0f32; PAIR_LANES];
        let interleave = |q: usize, lanes_buffer: &mut [f32; PAIR_LANES]| -> __m512 {
            for j in 0..n {
                lanes_buffer[2 * j] = w[2 * q * n + j];
                lanes_buffer[2 * j + 1] = if 2 * q + 1 < k { w[(2 * q + 1) * n + j] } else { 0.0 };
            }
            // SAFETY: `lanes_buffer` holds sixteen f32, exactly one register.
            unsafe { f._mm512_loadu_ps(lanes_buffer.as_ptr()) }
        };
        // The interleaved weights on the stack for up to 64 inputs (a call on a few hundred rows is
        // short enough for an allocation to show), on the heap beyond.
        let mut on_stack = [f._mm512_setzero_ps(); STACK_PAIRS];
        let on_heap: Vec<__m512>;
        let interleaved: &[__m512] = if pairs <= STACK_PAIRS {
            for (q, slot) in on_stack[..pairs].iter_mut().enumerate() {
                *slot = interleave(q, &mut lanes_buffer);
            }
            &on_stack[..pairs]
        } else {
            on_heap = (0..pairs).map(|q| interleave(q, &mut lanes_buffer)).collect();
            &on_heap
        };
        // The two permutes that fold rows a and b: lanes 0..n take a's even (odd) lanes 2j (2j+1),
        // lanes n..2n take b's; lanes past 2n are never stored.
        let fold_index = |odd: i32| -> __m512i {
            let index: [i32; PAIR_LANES] = std::array::from_fn(|l| {
                let l = l as i32;
                let n = n as i32;
                if l < n {
                    2 * l + odd
                } else if l < 2 * n {
                    16 + 2 * (l - n) + odd
                } else {
                    0
                }
            });
            // SAFETY: `index` holds sixteen i32, exactly one register.
            unsafe { f._mm512_loadu_epi32(index.as_ptr()) }
        };
        let (even, odd) = (fold_index(0), fold_index(1));
        let fold = |a: __m512, b: __m512| -> __m512 {
            f._mm512_add_ps(f._mm512_permutex2var_ps(a, even, b), f._mm512_permutex2var_ps(a, odd, b))
        };
        let broadcast = |bits: u64| -> __m512 { f._mm512_castpd_ps(f._mm512_set1_pd(f64::from_bits(bits))) };
        // One row's accumulator: the full pairs as 64-bit words, then an odd last value with 0 as its
        // partner — never the next row's first value (an infinity there would turn `0 * inf` into NaN).
        let accumulate = |row: &[f32], mut acc: __m512| -> __m512 {
            for (pair, &weights) in row.chunks_exact(2).zip(interleaved) {
                let bits = u64::from(pair[0].to_bits()) | (u64::from(pair[1].to_bits()) << 32);
                acc = f._mm512_fmadd_ps(broadcast(bits), weights, acc);
            }
            if full_pairs < pairs {
                let bits = u64::from(row[k - 1].to_bits());
                acc = f._mm512_fmadd_ps(broadcast(bits), interleaved[full_pairs], acc);
            }
            acc
        };
        let rows = x.len() / k;
        let two_rows_mask: u16 = if 2 * n == PAIR_LANES { u16::MAX } else { (1u16 << (2 * n)) - 1 };
        let one_row_mask: u16 = (1u16 << n) - 1;
        let zero = f._mm512_setzero_ps();
        let mut r = 0;
        while r + ROWS_IN_FLIGHT <= rows {
            // Eight rows advance together so that eight multiply-adds are in flight at once.
            let mut acc = [zero; ROWS_IN_FLIGHT];
            let block = &x[r * k..(r + ROWS_IN_FLIGHT) * k];
            for (q, &weights) in interleaved[..full_pairs].iter().enumerate() {
                for (i, a) in acc.iter_mut().enumerate() {
                    // SAFETY: `block` holds ROWS_IN_FLIGHT rows of `k` values and `2q + 1 < k` (q is
                    // below `full_pairs = k / 2`), so both values of the pair are inside row `i`.
                    let bits = unsafe { (block.as_ptr().add(i * k + 2 * q) as *const u64).read_unaligned() };
                    *a = f._mm512_fmadd_ps(broadcast(u64::from_le(bits)), weights, *a);
                }
            }
            if full_pairs < pairs {
                for (i, a) in acc.iter_mut().enumerate() {
                    let bits = u64::from(block[i * k + k - 1].to_bits());
                    *a = f._mm512_fmadd_ps(broadcast(bits), interleaved[full_pairs], *a);
                }
            }
            for i in (0..ROWS_IN_FLIGHT).step_by(2) {
                let target = &mut out[(r + i) * n..(r + i + 2) * n];
                // SAFETY: `target` holds 2n values and the mask enables exactly the first 2n lanes.
                unsafe { f._mm512_mask_storeu_ps(target.as_mut_ptr(), two_rows_mask, fold(acc[i], acc[i + 1])) };
            }
            r += ROWS_IN_FLIGHT;
        }
        for r in r..rows {
            let acc = accumulate(&x[r * k..(r + 1) * k], zero);
            let target = &mut out[r * n..(r + 1) * n];
            // SAFETY: `target` holds n values and the mask enables exactly the first n lanes.
            unsafe { f._mm512_mask_storeu_ps(target.as_mut_ptr(), one_row_mask, fold(acc, zero)) };
        }
    }
}

struct Narrow<'a> {
    x: &'a [f32],
    w: &'a [f32],
    k: usize,
    n: usize,
    out: &'a mut [f32],
}

impl WithSimd for Narrow<'_> {
    type Output = bool;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> bool {
        let lanes = std::mem::size_of::<S::f32s>() / std::mem::size_of::<f32>();
        if self.n > lanes {
            return false;
        }
        self.one_per_lane(simd);
        true
    }
}

impl Narrow<'_> {
    /// Outputs up to a full register wide: one inner index per multiply-add.
    #[inline(always)]
    fn one_per_lane<S: Simd>(self, simd: S) {
        let Narrow { x, w, k, n, out } = self;
        // Weight rows padded to a full register: lanes past `n` are zero and never stored.
        let padded: Vec<S::f32s> = w.chunks_exact(n).map(|row| simd.partial_load_f32s(row)).collect();
        let rows = x.len() / k;
        let zero = simd.splat_f32s(0.0);
        let mut r = 0;
        while r + ROWS_IN_FLIGHT <= rows {
            let mut acc = [zero; ROWS_IN_FLIGHT];
            let block = &x[r * k..(r + ROWS_IN_FLIGHT) * k];
            for (p, &weights) in padded.iter().enumerate() {
                for (i, a) in acc.iter_mut().enumerate() {
                    // SAFETY: `block` holds ROWS_IN_FLIGHT rows of `k` values (sliced just above, so
                    // `i * k + p < ROWS_IN_FLIGHT * k`), and `p < padded.len() == k` (one padded weight
                    // row per row of `w`, whose length was checked to be `k * n`). Checked indexing
                    // here cost eight compare-and-branch pairs per multiply-add.
                    let value = unsafe { *block.get_unchecked(i * k + p) };
                    *a = simd.mul_add_f32s(simd.splat_f32s(value), weights, *a);
                }
            }
            for (i, a) in acc.iter().enumerate() {
                simd.partial_store_f32s(&mut out[(r + i) * n..(r + i + 1) * n], *a);
            }
            r += ROWS_IN_FLIGHT;
        }
        for r in r..rows {
            let row = &x[r * k..(r + 1) * k];
            let mut acc = zero;
            for (&value, &weights) in row.iter().zip(&padded) {
                acc = simd.mul_add_f32s(simd.splat_f32s(value), weights, acc);
            }
            simd.partial_store_f32s(&mut out[r * n..(r + 1) * n], acc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The portable path alone (no AVX-512 pair kernel), so both are tested on any machine.
    fn portable(x: &[f32], w: &[f32], k: usize, n: usize, out: &mut [f32]) -> bool {
        pulp::Arch::new().dispatch(Narrow { x, w, k, n, out })
    }

    /// Against a product summed in f64, for widths up to the register width, odd and even inner sizes,
    /// row counts with and without a remainder of the eight-row blocks; and a row's result does not
    /// depend on the batch it came in.
    #[test]
    fn matches_a_reference_product_and_is_batch_independent() {
        for product in [narrow_matmul, portable] {
            for (k, n) in [(32usize, 8usize), (5, 1), (64, 16), (3, 7), (1, 4), (33, 8)] {
                for rows in [1usize, 2, 8, 13, 64] {
                    let x: Vec<f32> = (0..rows * k).map(|i| ((i * 7919) % 31) as f32 * 0.11 - 1.6).collect();
                    let w: Vec<f32> = (0..k * n).map(|i| ((i * 104729) % 17) as f32 * 0.07 - 0.5).collect();
                    let mut out = vec![f32::NAN; rows * n];
                    if !product(&x, &w, k, n, &mut out) {
                        // Only an output wider than this CPU's register is refused.
                        assert!(n > 8, "refused {k}x{n}");
                        continue;
                    }
                    for r in 0..rows {
                        for j in 0..n {
                            let exact: f64 = (0..k).map(|p| x[r * k + p] as f64 * w[p * n + j] as f64).sum();
                            let got = out[r * n + j] as f64;
                            assert!(
                                (got - exact).abs() <= 1e-5 * (1.0 + exact.abs()),
                                "{k}x{n} row {r}: {got} vs {exact}"
                            );
                        }
                    }
                    let mut single = vec![0.0f32; n];
                    assert!(product(&x[(rows - 1) * k..], &w, k, n, &mut single));
                    assert_eq!(&single[..], &out[(rows - 1) * n..], "last row alone");
                }
            }
        }
    }

    /// With an odd inner size the last value of a row is paired with 0, not with the next row's first
    /// value: an infinity there must not leak into the row before it.
    #[test]
    fn a_row_never_reads_the_next_one() {
        let (k, n, rows) = (3usize, 8usize, 16usize);
        let mut x = vec![0.5f32; rows * k];
        for r in (1..rows).step_by(2) {
            x[r * k] = f32::INFINITY;
        }
        let w = vec![0.25f32; k * n];
        let mut out = vec![0.0f32; rows * n];
        assert!(narrow_matmul(&x, &w, k, n, &mut out));
        for r in (0..rows).step_by(2) {
            assert!(out[r * n..(r + 1) * n].iter().all(|&v| v == 0.375), "row {r}: {:?}", &out[r * n..(r + 1) * n]);
        }
    }

    #[test]
    fn refuses_shapes_that_do_not_fit() {
        let mut out = vec![0.0f32; 4];
        assert!(!narrow_matmul(&[1.0; 6], &[1.0; 4], 3, 2, &mut out), "6 values are not rows of 3 with 2 weights");
        assert!(!narrow_matmul(&[1.0; 4], &[1.0; 64], 1, 64, &mut vec![0.0; 256]), "64 outputs exceed a register");
        assert!(!narrow_matmul(&[1.0; 4], &[], 2, 0, &mut out));
    }
}
