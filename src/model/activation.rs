//! Element-wise activation functions and the derivatives that training needs.
//!
//! Derivatives are written in terms of the activation's *output* `a = f(z)`: every function we offer
//! allows it, so a layer only has to keep its output for the backward pass. The second derivative is
//! needed by the contractive penalty, whose gradient differentiates `f'(z)` once more.

use ndarray::{ArrayViewMut2, Zip};
use serde::{Deserialize, Serialize};

use crate::linalg::{Real, real};

/// Slope of `leaky_relu` for negative inputs.
pub const LEAKY_SLOPE: f64 = 0.01;

/// An element-wise activation. Serialised in lowercase (`"relu"`, `"leaky_relu"`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `max(z, 0)`.
    Relu,
    /// `z` for `z > 0`, `0.01 z` otherwise.
    LeakyRelu,
    /// `z` for `z > 0`, `exp(z) - 1` otherwise (alpha = 1).
    Elu,
    /// `tanh(z)`.
    Tanh,
    /// `1 / (1 + exp(-z))`.
    Sigmoid,
    /// `z`.
    Identity,
}

impl Activation {
    /// All activations, for parsers and exhaustive tests.
    pub const ALL: [Activation; 6] = [
        Activation::Relu,
        Activation::LeakyRelu,
        Activation::Elu,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Identity,
    ];

    /// The lowercase name used in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::LeakyRelu => "leaky_relu",
            Activation::Elu => "elu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::Identity => "identity",
        }
    }

    /// `f(z)` for one value.
    #[inline]
    pub fn apply<F: Real>(self, z: F) -> F {
        match self {
            Activation::Relu => {
                if z > F::zero() {
                    z
                } else {
                    F::zero()
                }
            }
            Activation::LeakyRelu => {
                if z > F::zero() {
                    z
                } else {
                    z * real(LEAKY_SLOPE)
                }
            }
            Activation::Elu => {
                if z > F::zero() {
                    z
                } else {
                    z.exp_m1()
                }
            }
            Activation::Tanh => z.tanh(),
            Activation::Sigmoid => F::one() / (F::one() + (-z).exp()),
            Activation::Identity => z,
        }
    }

    /// Applies `f` in place: the pre-activations become the outputs.
    pub fn apply_inplace<F: Real>(self, mut values: ArrayViewMut2<F>) {
        if self == Activation::Identity {
            return;
        }
        match values.as_slice_memory_order_mut() {
            Some(slice) => crate::linalg::vectorized(
                #[inline(always)]
                || self.apply_slice(slice),
            ),
            None => values.mapv_inplace(|z| self.apply(z)),
        }
    }

    /// Applies `f` to a contiguous slice, one tight loop per function so the compiler can vectorise it
    /// (the inference hot path).
    #[inline(always)]
    pub fn apply_slice<F: Real>(self, values: &mut [F]) {
        match self {
            Activation::Identity => {}
            Activation::Relu => values.iter_mut().for_each(|v| *v = v.max(F::zero())),
            Activation::LeakyRelu => {
                let slope: F = real(LEAKY_SLOPE);
                values.iter_mut().for_each(|v| *v = if *v > F::zero() { *v } else { *v * slope });
            }
            Activation::Elu | Activation::Tanh | Activation::Sigmoid => {
                values.iter_mut().for_each(|v| *v = self.apply(*v));
            }
        }
    }

    /// `f'(z)` expressed through the output `a = f(z)`.
    #[inline]
    pub fn derivative_from_output<F: Real>(self, a: F) -> F {
        match self {
            Activation::Relu => {
                if a > F::zero() {
                    F::one()
                } else {
                    F::zero()
                }
            }
            Activation::LeakyRelu => {
                if a > F::zero() {
                    F::one()
                } else {
                    real(LEAKY_SLOPE)
                }
            }
            Activation::Elu => {
                if a > F::zero() {
                    F::one()
                } else {
                    a + F::one()
                }
            }
            Activation::Tanh => F::one() - a * a,
            Activation::Sigmoid => a * (F::one() - a),
            Activation::Identity => F::one(),
        }
    }

    /// `f''(z)` expressed through the output `a = f(z)` (zero on the linear pieces).
    #[inline]
    pub fn second_derivative_from_output<F: Real>(self, a: F) -> F {
        match self {
            Activation::Relu | Activation::LeakyRelu | Activation::Identity => F::zero(),
            Activation::Elu => {
                if a > F::zero() {
                    F::zero()
                } else {
                    a + F::one()
                }
            }
            Activation::Tanh => real::<F>(-2.0) * a * (F::one() - a * a),
            Activation::Sigmoid => a * (F::one() - a) * (F::one() - real::<F>(2.0) * a),
        }
    }

    /// `grad *= f'(z)` over slices, one tight loop per function (the choice hoisted out of the loop, so
    /// the compiler vectorises it).
    #[inline(always)]
    fn backward_slice<F: Real>(self, grad: &mut [F], outputs: &[F]) {
        let n = grad.len().min(outputs.len());
        let (grad, outputs) = (&mut grad[..n], &outputs[..n]);
        match self {
            Activation::Identity => {}
            Activation::Relu => {
                for (g, &a) in grad.iter_mut().zip(outputs) {
                    *g = if a > F::zero() { *g } else { F::zero() };
                }
            }
            Activation::LeakyRelu => {
                let slope: F = real(LEAKY_SLOPE);
                for (g, &a) in grad.iter_mut().zip(outputs) {
                    *g = if a > F::zero() { *g } else { *g * slope };
                }
            }
            Activation::Elu => {
                for (g, &a) in grad.iter_mut().zip(outputs) {
                    *g = if a > F::zero() { *g } else { *g * (a + F::one()) };
                }
            }
            Activation::Tanh => {
                for (g, &a) in grad.iter_mut().zip(outputs) {
                    *g *= F::one() - a * a;
                }
            }
            Activation::Sigmoid => {
                for (g, &a) in grad.iter_mut().zip(outputs) {
                    *g *= a * (F::one() - a);
                }
            }
        }
    }

    /// Turns a gradient with respect to the outputs into one with respect to the pre-activations, in place.
    pub fn backward_inplace<F: Real>(self, outputs: ndarray::ArrayView2<F>, mut grad: ArrayViewMut2<F>) {
        if self == Activation::Identity {
            return;
        }
        if let (Some(g), Some(a)) = (grad.as_slice_mut(), outputs.as_slice()) {
            crate::linalg::vectorized(
                #[inline(always)]
                || self.backward_slice(g, a),
            );
            return;
        }
        Zip::from(&mut grad).and(&outputs).for_each(|g, &a| *g *= self.derivative_from_output(a));
    }
}

impl std::fmt::Display for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Activation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Activation::ALL.into_iter().find(|a| a.name() == s).ok_or_else(|| {
            let names: Vec<_> = Activation::ALL.iter().map(|a| a.name()).collect();
            format!("unknown activation '{s}', expected one of {}", names.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central differences in f64 at points away from the kinks of the piecewise functions.
    #[test]
    fn derivatives_match_finite_differences() {
        let h = 1e-6;
        for act in Activation::ALL {
            for &z in &[-2.3f64, -0.7, -0.05, 0.04, 0.6, 1.9] {
                let a = act.apply(z);
                let numeric = (act.apply(z + h) - act.apply(z - h)) / (2.0 * h);
                let analytic = act.derivative_from_output(a);
                assert!((numeric - analytic).abs() < 1e-6, "{act} f'({z}): {numeric} vs {analytic}");
                let d = |x: f64| act.derivative_from_output(act.apply(x));
                let numeric2 = (d(z + h) - d(z - h)) / (2.0 * h);
                let analytic2 = act.second_derivative_from_output(a);
                assert!((numeric2 - analytic2).abs() < 1e-5, "{act} f''({z}): {numeric2} vs {analytic2}");
            }
        }
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_rejected() {
        for act in Activation::ALL {
            assert_eq!(act.name().parse::<Activation>(), Ok(act));
            let json = serde_json::to_string(&act).unwrap();
            assert_eq!(json, format!("\"{}\"", act.name()));
        }
        assert!("swish".parse::<Activation>().unwrap_err().contains("leaky_relu"));
    }
}
