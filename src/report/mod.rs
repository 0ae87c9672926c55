//! The HTML model report (`autoenc report MODEL [DATA] --out report.html`): one self-contained page —
//! inline SVG plots drawn by plotters, inline CSS, no script and nothing fetched — that shows how a
//! model trained and what it makes of data.
//!
//! Always: the training and validation loss per epoch, and the histogram of the training scores (from
//! the score sketch stored in the model) with the threshold marked. With DATA: its score distribution
//! over the training one, the flagged rows with their top contributing features, the mean
//! reconstruction error per feature, and a 2-D view of the latent space (the first two principal
//! components of the codes) with flagged rows highlighted.
//!
//! [`analysis`] computes the numbers, [`plots`] draws them, [`page`] lays out the HTML. Every plot sits
//! in a `<figure id="...">` named in [`PLOT_IDS`] (the browser test, tests/python/test_report.py, looks
//! for the same ids).

mod analysis;
mod page;
mod plots;

use ndarray::ArrayView2;

pub use analysis::{DataAnalysis, FlaggedRow, analyse};

use crate::Autoencoder;
use crate::error::Result;

/// The `id` of each plot's `<figure>`: the first two are always present, the rest only with data.
pub const PLOT_IDS: [&str; 5] = ["loss-curve", "score-histogram", "score-comparison", "feature-errors", "latent-space"];

/// What to put in the report besides the model.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Shown in the page title and header (e.g. the model file's name).
    pub title: String,
    /// Where DATA came from, shown beside its section.
    pub data_source: Option<String>,
    /// Most flagged rows listed (highest scores first).
    pub max_flagged_rows: usize,
    /// Contributing features shown per flagged row.
    pub top_features: usize,
    /// Most features in the per-feature error plot (largest errors first).
    pub max_features_plotted: usize,
    /// Most rows drawn in the latent scatter: an even sample of the rows, plus up to half as many flagged
    /// rows (the highest scores), so a report on millions of rows stays a few MB.
    pub max_scatter_points: usize,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            title: "autoenc model".into(),
            data_source: None,
            max_flagged_rows: 50,
            top_features: 3,
            max_features_plotted: 40,
            max_scatter_points: 5000,
        }
    }
}

/// The report as one HTML document. `data` holds rows in the model's feature order (NaN = missing).
pub fn render(model: &Autoencoder, data: Option<ArrayView2<f32>>, options: &ReportOptions) -> Result<String> {
    let loss = plots::loss_curve(model.report())?;
    let training_scores = &model.sketch().points;
    let threshold = model.threshold().value;
    let histogram = plots::score_histogram(training_scores, None, threshold)?;
    let data_section = match data {
        None => None,
        Some(rows) => {
            let analysis = analyse(model, rows, options)?;
            let comparison = plots::score_histogram(training_scores, Some(&analysis.scores), threshold)?;
            let errors = plots::feature_errors(
                model.feature_names(),
                &analysis.feature_mean_errors,
                options.max_features_plotted,
            )?;
            let latent =
                plots::latent_scatter(&analysis.latent_points, &analysis.latent_flagged, analysis.latent_explained)?;
            Some(page::DataSection { analysis, comparison, errors, latent })
        }
    };
    Ok(page::html(model, options, &loss, &histogram, data_section.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic;

    #[test]
    fn feature_names_and_titles_are_escaped_in_the_page_and_its_plots() {
        let data = synthetic::sensor_stream(400, 3, 400, 0.0, 9);
        let names = vec!["a<b".to_string(), "c&d".to_string(), "<script>x</script>".to_string()];
        let model =
            Autoencoder::params().epochs(2).check().unwrap().fit_with(data.rows.view(), names, &mut |_| {}).unwrap();
        let options =
            ReportOptions { title: "<i>m</i>".into(), data_source: Some("x<y.csv".into()), ..Default::default() };
        let html = render(&model, Some(data.rows.view()), &options).unwrap();
        for raw in ["a<b", "c&d", "<script>", "<i>m</i>", "x<y.csv"] {
            assert!(!html.contains(raw), "{raw} reached the page unescaped");
        }
        assert!(html.contains("a&lt;b") && html.contains("&lt;script&gt;"));
        for id in PLOT_IDS {
            assert!(html.contains(&format!("<figure id=\"{id}\">")), "{id}");
        }
    }
}
