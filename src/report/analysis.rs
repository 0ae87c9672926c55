//! The numbers behind the report's data section: scores, flagged rows with their top contributing
//! features, mean error per feature, and the codes projected onto their first two principal components.

use ndarray::{ArrayView2, Axis, s};

use super::ReportOptions;
use crate::error::Result;
use crate::pca::Pca;
use crate::{Autoencoder, Contribution};

/// One flagged row as the report lists it.
#[derive(Debug, Clone)]
pub struct FlaggedRow {
    /// 0-based row number in DATA.
    pub row: usize,
    pub score: f64,
    /// Share of training rows that scored lower.
    pub percentile: f64,
    pub top: Vec<Contribution>,
}

#[derive(Debug, Clone)]
pub struct DataAnalysis {
    pub rows: usize,
    pub scores: Vec<f64>,
    /// Rows above the threshold (all of them, not only those listed).
    pub flagged_count: usize,
    /// The highest-scoring flagged rows, at most `max_flagged_rows`.
    pub flagged: Vec<FlaggedRow>,
    /// Mean squared error per feature (scaled units) over the rows where it was observed.
    pub feature_mean_errors: Vec<f64>,
    /// The plotted sample of codes on PC1/PC2 and whether each was flagged.
    pub latent_points: Vec<(f64, f64)>,
    pub latent_flagged: Vec<bool>,
    /// Share of the codes' variance along PC1 and PC2.
    pub latent_explained: (f64, f64),
}

pub fn analyse(model: &Autoencoder, rows: ArrayView2<f32>, options: &ReportOptions) -> Result<DataAnalysis> {
    let details = model.score_details(rows)?;
    let scores = details.scores.to_vec();
    let is_flagged: Vec<bool> = scores.iter().map(|&s| model.is_anomaly(s)).collect();

    let mut order: Vec<usize> = (0..scores.len()).filter(|&i| is_flagged[i]).collect();
    let flagged_count = order.len();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    // The listed rows' explanations: a categorical feature's names the value seen and the one expected.
    let listed: Vec<usize> = order.iter().take(options.max_flagged_rows).copied().collect();
    let listed_rows = rows.select(Axis(0), &listed);
    let listed_details = model.score_details(listed_rows.view())?;
    let explained = model.explain_details(listed_rows.view(), &listed_details, options.top_features.max(1));
    let flagged = listed
        .iter()
        .zip(explained)
        .map(|(&row, top)| FlaggedRow { row, score: scores[row], percentile: model.percentile(scores[row]), top })
        .collect();

    let feature_mean_errors = details
        .feature_errors
        .axis_iter(Axis(1))
        .map(|column| {
            let (sum, count) =
                column.iter().filter(|v| !v.is_nan()).fold((0.0f64, 0usize), |(s, c), &v| (s + v as f64, c + 1));
            if count == 0 { f64::NAN } else { sum / count as f64 }
        })
        .collect();

    // An even sample of the rows, plus the highest-scoring flagged rows (at most half as many), keeps the
    // scatter readable and the file small whatever the input size.
    let step = rows.nrows().div_ceil(options.max_scatter_points.max(1)).max(1);
    let mut shown = vec![false; rows.nrows()];
    (0..rows.nrows()).step_by(step).for_each(|i| shown[i] = true);
    order.iter().take(options.max_scatter_points / 2).for_each(|&i| shown[i] = true);
    let plotted: Vec<usize> = (0..rows.nrows()).filter(|&i| shown[i]).collect();
    let codes = details.embedding.select(Axis(0), &plotted);
    let (latent_points, latent_explained) = if codes.nrows() >= 2 {
        let pca = Pca::fit(codes.view())?;
        let ratios = pca.explained_variance_ratio();
        let width = pca.components.ncols().min(2);
        let centred = codes.mapv(|v| v as f64) - &pca.mean;
        let projected = centred.dot(&pca.components.slice(s![.., ..width]));
        let points = projected.outer_iter().map(|p| (p[0], if width > 1 { p[1] } else { 0.0 })).collect();
        (points, (ratios.first().copied().unwrap_or(0.0), ratios.get(1).copied().unwrap_or(0.0)))
    } else {
        (codes.outer_iter().map(|c| (c[0] as f64, 0.0)).collect(), (1.0, 0.0))
    };
    let latent_flagged = plotted.iter().map(|&i| is_flagged[i]).collect();

    Ok(DataAnalysis {
        rows: rows.nrows(),
        scores,
        flagged_count,
        flagged,
        feature_mean_errors,
        latent_points,
        latent_flagged,
        latent_explained,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LatentSize, synthetic};

    #[test]
    fn flagged_rows_are_the_highest_scores_above_the_threshold() {
        let data = synthetic::sensor_stream(600, 5, 300, 0.05, 7);
        let model = Autoencoder::params().latent(LatentSize::Fixed(2)).epochs(5).seed(2).fit(data.rows.view()).unwrap();
        let options = ReportOptions { max_flagged_rows: 5, max_scatter_points: 100, ..Default::default() };
        let analysis = analyse(&model, data.rows.view(), &options).unwrap();
        let scores = model.score(data.rows.view()).unwrap();
        let expected = scores.iter().filter(|&&s| model.is_anomaly(s)).count();
        assert_eq!(analysis.flagged_count, expected);
        assert!(expected > 5, "the synthetic anomalies are flagged");
        assert_eq!(analysis.flagged.len(), 5);
        let mut sorted = scores.to_vec();
        sorted.sort_by(|a, b| b.total_cmp(a));
        for (listed, top) in analysis.flagged.iter().zip(&sorted) {
            assert_eq!(listed.score, *top);
            assert_eq!(listed.top.len(), 3);
        }
        // An even sample of about 100 rows plus the 50 highest-scoring flagged rows.
        assert!(analysis.latent_points.len() <= 100 + 50);
        let shown = analysis.latent_flagged.iter().filter(|f| **f).count();
        assert!(shown >= expected.min(50) && shown <= expected, "{shown} of {expected} flagged rows shown");
        assert_eq!(analysis.feature_mean_errors.len(), 5);
        let total = analysis.latent_explained.0 + analysis.latent_explained.1;
        assert!((total - 1.0).abs() < 1e-9, "two components of a 2-D code explain all of it: {total}");
    }
}
