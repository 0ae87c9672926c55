//! Input corruption for denoising autoencoders, drawn from the training RNG.
//!
//! Corruption happens in scaled space, where 0 is the feature mean: masking noise sets entries to the
//! mean, salt-and-pepper sets them to the feature's training minimum or maximum.
//!
//! A categorical feature (a one-hot block in the network's columns) is corrupted by swapping its value
//! for one drawn uniformly from its codes, with the noise's `fraction` as the probability (Gaussian
//! noise, which has none, swaps with probability `min(std, 0.5)`). Zeroing single entries of a block
//! would show the encoder inputs no real row has.

use ndarray::{Array1, Array2, ArrayView2, Zip};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::model::features::NetworkLayout;
use crate::model::params::Noise;

/// Per-feature extremes of the scaled training data, for salt-and-pepper noise.
#[derive(Debug, Clone)]
pub struct FeatureRange {
    pub min: Array1<f32>,
    pub max: Array1<f32>,
}

impl FeatureRange {
    /// Row by row over contiguous rows (a fold down each strided column cost a sixth of a training epoch).
    pub fn of(data: ArrayView2<f32>) -> Self {
        let mut min = Array1::from_elem(data.ncols(), f32::INFINITY);
        let mut max = Array1::from_elem(data.ncols(), f32::NEG_INFINITY);
        for row in data.rows() {
            Zip::from(&mut min).and(&mut max).and(&row).for_each(|lo, hi, &v| {
                *lo = lo.min(v);
                *hi = hi.max(v);
            });
        }
        let finite = |v: f32| if v.is_finite() { v } else { 0.0 };
        FeatureRange { min: min.mapv(finite), max: max.mapv(finite) }
    }
}

/// A corrupted copy of `clean`; `categories` says where a model's categorical blocks are.
pub fn corrupt<R: Rng + ?Sized>(
    clean: ArrayView2<f32>,
    noise: Noise,
    range: &FeatureRange,
    categories: Option<&NetworkLayout>,
    rng: &mut R,
) -> Array2<f32> {
    match categories {
        None => corrupt_numeric(clean, noise, range, rng),
        Some(layout) => corrupt_mixed(clean, noise, range, layout, rng),
    }
}

/// Numeric and categorical columns, row by row, each with the noise its kind takes.
fn corrupt_mixed<R: Rng + ?Sized>(
    clean: ArrayView2<f32>,
    noise: Noise,
    range: &FeatureRange,
    layout: &NetworkLayout,
    rng: &mut R,
) -> Array2<f32> {
    let mut out = clean.to_owned();
    let swap = match noise {
        Noise::Gaussian { std } => std.min(0.5) as f32,
        Noise::Masking { fraction } | Noise::SaltPepper { fraction } => fraction as f32,
    };
    for mut row in out.rows_mut() {
        for &c in &layout.numeric {
            let v = &mut row[c];
            match noise {
                Noise::Gaussian { std } => {
                    let z: f32 = StandardNormal.sample(rng);
                    *v += std as f32 * z;
                }
                Noise::Masking { .. } => {
                    if rng.random::<f32>() < swap {
                        *v = 0.0;
                    }
                }
                Noise::SaltPepper { .. } => {
                    if rng.random::<f32>() < swap {
                        *v = if rng.random::<bool>() { range.max[c] } else { range.min[c] };
                    }
                }
            }
        }
        for block in &layout.blocks {
            if rng.random::<f32>() < swap {
                let code = rng.random_range(0..block.width);
                for k in 0..block.width {
                    row[block.start + k] = if k == code { 1.0 } else { 0.0 };
                }
            }
        }
    }
    out
}

fn corrupt_numeric<R: Rng + ?Sized>(
    clean: ArrayView2<f32>,
    noise: Noise,
    range: &FeatureRange,
    rng: &mut R,
) -> Array2<f32> {
    let mut out = clean.to_owned();
    match noise {
        Noise::Gaussian { std } => {
            let std = std as f32;
            out.mapv_inplace(|v| {
                let z: f32 = StandardNormal.sample(rng);
                v + std * z
            });
        }
        Noise::Masking { fraction } => {
            let fraction = fraction as f32;
            out.mapv_inplace(|v| if rng.random::<f32>() < fraction { 0.0 } else { v });
        }
        Noise::SaltPepper { fraction } => {
            let fraction = fraction as f32;
            for mut row in out.rows_mut() {
                for (j, v) in row.iter_mut().enumerate() {
                    if rng.random::<f32>() < fraction {
                        *v = if rng.random::<bool>() { range.max[j] } else { range.min[j] };
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn each_noise_corrupts_about_its_fraction() {
        let clean = Array2::from_shape_fn((200, 50), |(i, j)| ((i + j) % 7) as f32 * 0.1 + 0.05);
        let range = FeatureRange::of(clean.view());
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(5);
        let changed = |noisy: &Array2<f32>| noisy.iter().zip(&clean).filter(|(a, b)| a != b).count() as f64 / 10_000.0;

        let masked = corrupt(clean.view(), Noise::Masking { fraction: 0.3 }, &range, None, &mut rng);
        assert!((changed(&masked) - 0.3).abs() < 0.03);
        assert!(masked.iter().zip(&clean).all(|(a, b)| a == b || *a == 0.0));

        let salted = corrupt(clean.view(), Noise::SaltPepper { fraction: 0.2 }, &range, None, &mut rng);
        let extremes =
            salted.iter().zip(&clean).filter(|(a, b)| a != b).all(|(a, _)| *a == 0.05 || (*a - 0.65).abs() < 1e-6);
        assert!(extremes && (changed(&salted) - 0.2 * 6.0 / 7.0).abs() < 0.04);

        let gaussian = corrupt(clean.view(), Noise::Gaussian { std: 0.5 }, &range, None, &mut rng);
        let diff = &gaussian - &clean;
        let std = diff.mapv(|d| d * d).mean().unwrap().sqrt();
        assert!((std - 0.5).abs() < 0.02, "{std}");
    }

    #[test]
    fn a_category_is_swapped_whole_never_blanked() {
        use crate::model::features::{FeatureKind, FeatureLayout, Vocabulary};
        let vocabulary = Vocabulary::new(vec!["a".into(), "b".into(), "c".into()]).unwrap();
        let layout = FeatureLayout::new(vec![FeatureKind::Numeric, FeatureKind::Categorical { vocabulary }]);
        let network = layout.network().unwrap();
        let rows =
            Array2::from_shape_fn((2000, 2), |(i, j)| if j == 0 { 1.0 + i as f32 * 1e-3 } else { (i % 3) as f32 });
        let clean = layout.expand(rows.view());
        let range = FeatureRange::of(clean.view());
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(9);
        let noisy = corrupt(clean.view(), Noise::Masking { fraction: 0.4 }, &range, Some(network), &mut rng);
        let block = |row: ndarray::ArrayView1<f32>| row.slice(ndarray::s![1..6]).to_vec();
        let mut swapped = 0;
        for (before, after) in clean.outer_iter().zip(noisy.outer_iter()) {
            let after_block = block(after);
            assert_eq!(after_block.iter().filter(|&&v| v == 1.0).count(), 1, "one-hot after corruption");
            assert_eq!(after_block.iter().filter(|&&v| v == 0.0).count(), 4);
            swapped += usize::from(after_block != block(before));
            assert!(after[0] == before[0] || after[0] == 0.0, "numeric entries are masked as before");
        }
        // Swapped with probability 0.4 to a code drawn from five, so changed 0.4 * 4/5 of the time.
        let share = swapped as f64 / 2000.0;
        assert!((share - 0.32).abs() < 0.04, "{share}");
    }
}
