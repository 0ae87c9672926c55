//! Matrix products for the network, behind one safe function.
//!
//! Every dense layer reduces to `C = A·B` (or `C += A·B`) on row-major blocks. We call the `gemm` crate
//! (the kernel library under candle and faer) rather than going through ndarray's BLAS hook, because the
//! OpenBLAS that Linux distributions ship does not recognise recent CPUs and falls back to its slowest
//! kernels (about 4x slower here on AVX-512 parts, see `../shared/GUIDE.md`), while `gemm` detects the CPU
//! at run time and needs no environment variable. LAPACK-level work (the PCA decomposition) still goes
//! through ndarray-linalg and OpenBLAS, where it is not on a hot path.
//!
//! Products always run on one thread: a network batch is small, two threads hurt small products on a
//! busy machine, and one thread makes the floating-point summation order — and so every trained weight —
//! independent of the machine's core count. Callers parallelise across batches instead.

use std::any::TypeId;

use ndarray::{ArrayView2, ArrayViewMut2, NdFloat};
use num_traits::FromPrimitive;

/// The floating-point types the network runs in: `f32` in production, `f64` in gradient checks.
pub trait Real: NdFloat + FromPrimitive + Default {}
impl Real for f32 {}
impl Real for f64 {}

/// Converts an `f64` constant into the working type (all our constants are representable).
#[inline]
pub fn real<F: Real>(value: f64) -> F {
    F::from_f64(value).unwrap_or_else(F::nan)
}

/// `c = beta_c * c + a · b`, with `beta_c` either 0 (overwrite) or 1 (accumulate).
///
/// Shapes must agree (`a` is m×k, `b` is k×n, `c` is m×n); any strides are accepted, so transposed views
/// (`x.t()`) cost nothing. Panics only on a shape mismatch, which is a bug in the caller, never data.
pub fn matmul_into<F: Real>(a: ArrayView2<F>, b: ArrayView2<F>, mut c: ArrayViewMut2<F>, accumulate: bool) {
    let (m, k) = a.dim();
    let (k2, n) = b.dim();
    assert_eq!(k, k2, "matmul: inner dimensions differ ({k} vs {k2})");
    assert_eq!(c.dim(), (m, n), "matmul: output has the wrong shape");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c.fill(F::zero());
        }
        return;
    }
    let (a_rs, a_cs) = (a.strides()[0], a.strides()[1]);
    let (b_rs, b_cs) = (b.strides()[0], b.strides()[1]);
    let (c_rs, c_cs) = (c.strides()[0], c.strides()[1]);
    // SAFETY: the pointers and strides come from live ndarray views whose shapes were checked above, so
    // every index gemm touches (row < m, col < n, inner < k) is inside its view; `c` is borrowed mutably
    // and cannot alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c_cs,
            c_rs,
            accumulate,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            F::one(),
            F::one(),
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Runs `work` compiled for the best vector instructions this CPU has (AVX-512, AVX2+FMA, or baseline),
/// chosen at run time by `pulp` — the dispatcher `gemm` itself uses. The element-wise loops of the
/// inference path (bias, activation, finiteness check, per-row error) go through here; built for
/// baseline x86-64 they would run at SSE2 width. `work` and what it calls should be `#[inline(always)]`.
#[inline(always)]
pub fn vectorized<R>(work: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(work)
}

/// `values` seen as f32 when the working type is f32, for the hand-vectorised kernels (which exist for
/// f32 only; the f64 network of the gradient checks takes the plain paths). `None` for f64.
pub fn as_f32<F: Real>(values: &[F]) -> Option<&[f32]> {
    // SAFETY: the cast happens only when `F` is `f32`, so it restates the type the slice already has,
    // keeping its length and lifetime.
    (TypeId::of::<F>() == TypeId::of::<f32>()).then(|| unsafe { &*(values as *const [F] as *const [f32]) })
}

/// [`as_f32`] for a mutable slice.
pub fn as_f32_mut<F: Real>(values: &mut [F]) -> Option<&mut [f32]> {
    if TypeId::of::<F>() != TypeId::of::<f32>() {
        return None;
    }
    // SAFETY: `F` is `f32` (checked above), so the cast restates the slice's own type, keeping its length
    // and its unique borrow.
    Some(unsafe { &mut *(values as *mut [F] as *mut [f32]) })
}

/// `a · b` into a new array.
pub fn matmul<F: Real>(a: ArrayView2<F>, b: ArrayView2<F>) -> ndarray::Array2<F> {
    let mut c = ndarray::Array2::zeros((a.nrows(), b.ncols()));
    matmul_into(a, b, c.view_mut(), false);
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn naive(a: &Array2<f64>, b: &Array2<f64>) -> Array2<f64> {
        let mut c = Array2::zeros((a.nrows(), b.ncols()));
        for i in 0..a.nrows() {
            for j in 0..b.ncols() {
                c[[i, j]] = (0..a.ncols()).map(|p| a[[i, p]] * b[[p, j]]).sum();
            }
        }
        c
    }

    #[test]
    fn matches_naive_product_for_plain_and_transposed_views() {
        let a = Array2::from_shape_fn((37, 19), |(i, j)| ((i * 7 + j * 3) % 11) as f64 - 5.0);
        let b = Array2::from_shape_fn((19, 23), |(i, j)| ((i * 5 + j) % 13) as f64 * 0.5 - 3.0);
        assert_eq!(matmul(a.view(), b.view()), naive(&a, &b));
        let at = a.t().to_owned();
        assert_eq!(matmul(at.t(), b.view()), naive(&a, &b));
        let mut c = naive(&a, &b);
        matmul_into(a.view(), b.view(), c.view_mut(), true);
        assert_eq!(c, naive(&a, &b) * 2.0);
    }

    #[test]
    fn empty_inner_dimension_gives_zeros() {
        let a = Array2::<f32>::zeros((3, 0));
        let b = Array2::<f32>::zeros((0, 4));
        assert_eq!(matmul(a.view(), b.view()), Array2::<f32>::zeros((3, 4)));
    }
}
