//! Optimisers share one small trait: given the parameters and their gradients as flat tensors in the
//! network's canonical order, take one step. State (moments, velocities) is kept per tensor and
//! created lazily on the first step, so one optimiser serves any network shape.

use crate::model::params::OptimizerKind;

/// One update rule.
pub trait Optimizer: Send + Sync {
    /// Updates every tensor in `params` from the matching tensor in `grads`. The flag next to each
    /// parameter tensor is true for weights (which get weight decay) and false for biases.
    fn step(&mut self, params: Vec<(&mut [f32], bool)>, grads: Vec<&[f32]>);
    /// The learning rate in force.
    fn learning_rate(&self) -> f64;
}

/// Adam (Kingma & Ba 2015) with decoupled weight decay (AdamW, Loshchilov & Hutter 2019).
pub struct Adam {
    pub learning_rate: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    pub weight_decay: f64,
    steps: i32,
    first: Vec<Vec<f32>>,
    second: Vec<Vec<f32>>,
}

impl Adam {
    pub fn new(learning_rate: f64, weight_decay: f64) -> Self {
        Adam {
            learning_rate,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay,
            steps: 0,
            first: Vec::new(),
            second: Vec::new(),
        }
    }
}

impl Optimizer for Adam {
    fn step(&mut self, params: Vec<(&mut [f32], bool)>, grads: Vec<&[f32]>) {
        if self.first.len() != params.len() {
            self.first = params.iter().map(|(p, _)| vec![0.0; p.len()]).collect();
            self.second = params.iter().map(|(p, _)| vec![0.0; p.len()]).collect();
        }
        self.steps = self.steps.saturating_add(1);
        let (b1, b2) = (self.beta1 as f32, self.beta2 as f32);
        // Bias corrections folded into the step size, as in the paper's efficient form.
        let correction1 = 1.0 - self.beta1.powi(self.steps);
        let correction2 = 1.0 - self.beta2.powi(self.steps);
        let step_size = (self.learning_rate * correction2.sqrt() / correction1) as f32;
        let eps = (self.epsilon * correction2.sqrt()) as f32;
        let decay = (self.learning_rate * self.weight_decay) as f32;
        for (((param, is_weight), grad), (m, v)) in
            params.into_iter().zip(grads).zip(self.first.iter_mut().zip(self.second.iter_mut()))
        {
            let decay = if is_weight { decay } else { 0.0 };
            for (((p, &g), m), v) in param.iter_mut().zip(grad).zip(m.iter_mut()).zip(v.iter_mut()) {
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                *p -= step_size * *m / (v.sqrt() + eps) + decay * *p;
            }
        }
    }

    fn learning_rate(&self) -> f64 {
        self.learning_rate
    }
}

/// Stochastic gradient descent with heavy-ball momentum: `v = mu v + g; p -= lr (v + wd p)`.
pub struct Sgd {
    pub learning_rate: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    velocity: Vec<Vec<f32>>,
}

impl Sgd {
    pub fn new(learning_rate: f64, momentum: f64, weight_decay: f64) -> Self {
        Sgd { learning_rate, momentum, weight_decay, velocity: Vec::new() }
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, params: Vec<(&mut [f32], bool)>, grads: Vec<&[f32]>) {
        if self.velocity.len() != params.len() {
            self.velocity = params.iter().map(|(p, _)| vec![0.0; p.len()]).collect();
        }
        let (lr, mu) = (self.learning_rate as f32, self.momentum as f32);
        for (((param, is_weight), grad), velocity) in params.into_iter().zip(grads).zip(self.velocity.iter_mut()) {
            let wd = if is_weight { self.weight_decay as f32 } else { 0.0 };
            for ((p, &g), v) in param.iter_mut().zip(grad).zip(velocity.iter_mut()) {
                *v = mu * *v + g;
                *p -= lr * (*v + wd * *p);
            }
        }
    }

    fn learning_rate(&self) -> f64 {
        self.learning_rate
    }
}

/// The optimiser the params ask for.
pub fn build(kind: OptimizerKind, learning_rate: f64, momentum: f64, weight_decay: f64) -> Box<dyn Optimizer> {
    match kind {
        OptimizerKind::Adam => Box::new(Adam::new(learning_rate, weight_decay)),
        OptimizerKind::Sgd => Box::new(Sgd::new(learning_rate, momentum, weight_decay)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both optimisers must drive a convex quadratic `sum (p - 3)^2` to its minimum.
    #[test]
    fn optimisers_minimise_a_quadratic() {
        for mut opt in [build(OptimizerKind::Adam, 0.05, 0.9, 0.0), build(OptimizerKind::Sgd, 0.05, 0.9, 0.0)] {
            let mut p = vec![0.0f32, 10.0, -4.0];
            for _ in 0..2000 {
                let g: Vec<f32> = p.iter().map(|x| 2.0 * (x - 3.0)).collect();
                opt.step(vec![(&mut p[..], true)], vec![&g[..]]);
            }
            assert!(p.iter().all(|x| (x - 3.0).abs() < 1e-2), "{p:?}");
        }
    }

    /// The first Adam step moves every parameter by about the learning rate, whatever the gradient scale.
    #[test]
    fn first_adam_step_has_the_learning_rate_as_size() {
        let mut opt = Adam::new(0.01, 0.0);
        let mut p = vec![1.0f32, 1.0];
        opt.step(vec![(&mut p[..], true)], vec![&[1000.0, -0.001][..]]);
        assert!((p[0] - 0.99).abs() < 1e-5 && (p[1] - 1.01).abs() < 1e-4, "{p:?}");
    }

    #[test]
    fn weight_decay_skips_biases() {
        let mut opt = Sgd::new(0.1, 0.0, 0.5);
        let (mut w, mut b) = (vec![1.0f32], vec![1.0f32]);
        opt.step(vec![(&mut w[..], true), (&mut b[..], false)], vec![&[0.0][..], &[0.0][..]]);
        assert_eq!((w[0], b[0]), (0.95, 1.0));
    }
}
