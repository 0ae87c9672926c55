//! The report's HTML: a summary of the model, then the plots and the flagged-rows table. Everything is
//! inline; text from the model or the data (feature names, sources) is escaped.

use std::fmt::Write;

use html_escape::encode_text;

use super::analysis::DataAnalysis;
use super::{PLOT_IDS, ReportOptions};
use crate::Autoencoder;

/// The data section's analysis and its three plots (SVG).
pub struct DataSection {
    pub analysis: DataAnalysis,
    pub comparison: String,
    pub errors: String,
    pub latent: String,
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:760px;color:#222}\
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;font-size:.9rem}td,th{padding:.2rem .6rem;text-align:left;border-bottom:1px solid #eee}\
th{background:#f4f6f9}td.num{text-align:right;font-variant-numeric:tabular-nums}\
figure{margin:1rem 0}figcaption{font-size:.85rem;color:#555}.note{color:#555;font-size:.9rem}";

fn figure(out: &mut String, id: &str, svg: &str, caption: &str) {
    let _ = writeln!(out, "<figure id=\"{id}\">{svg}<figcaption>{}</figcaption></figure>", encode_text(caption));
}

fn row(out: &mut String, name: &str, value: &str) {
    let _ = writeln!(out, "<tr><th>{}</th><td>{}</td></tr>", encode_text(name), encode_text(value));
}

pub fn html(
    model: &Autoencoder,
    options: &ReportOptions,
    loss: &str,
    histogram: &str,
    data: Option<&DataSection>,
) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let title = encode_text(&options.title);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"generator\" content=\"autoenc {}\"><style>{STYLE}</style></head><body>\n<h1>{title}</h1>\n",
        env!("CARGO_PKG_VERSION")
    );

    let report = model.report();
    let threshold = model.threshold();
    out.push_str("<h2>Model</h2><table>\n");
    row(&mut out, "variant", model.params_used().variant().name());
    row(&mut out, "network", &model.architecture().describe());
    row(&mut out, "features", &format!("{} ({})", model.n_features(), model.feature_names().join(", ")));
    row(&mut out, "latent size", &model.latent_size().to_string());
    let rule = serde_json::to_string(&threshold.rule).unwrap_or_default();
    row(&mut out, "threshold", &format!("{:.6} {rule}", threshold.value));
    row(&mut out, "training rows", &format!("{} (+{} validation)", report.training_rows, report.validation_rows));
    let epochs = match (report.stopped_early, report.best_epoch) {
        (true, Some(best)) => format!("{} (stopped early; weights of epoch {best})", report.epochs.len()),
        _ => report.epochs.len().to_string(),
    };
    row(&mut out, "epochs", &epochs);
    out.push_str("</table>\n<h2>Training</h2>\n");
    figure(&mut out, PLOT_IDS[0], loss, "Mean loss per epoch; the reconstruction part excludes the variant's penalty.");
    figure(
        &mut out,
        PLOT_IDS[1],
        histogram,
        &format!(
            "Scores of the {} training rows (from the model's score sketch); rows above the red line are flagged.",
            model.sketch().count
        ),
    );

    match data {
        None => out.push_str(
            "<p class=\"note\">Give DATA (autoenc report MODEL DATA) to add its score distribution, the flagged \
             rows, the error per feature and the latent space.</p>\n",
        ),
        Some(section) => data_section(&mut out, model, options, section),
    }
    out.push_str("</body></html>\n");
    out
}

fn data_section(out: &mut String, model: &Autoencoder, options: &ReportOptions, section: &DataSection) {
    let a = &section.analysis;
    let source = options.data_source.as_deref().unwrap_or("data");
    let _ = writeln!(out, "<h2>Data: {}</h2>", encode_text(source));
    let share = a.flagged_count as f64 / a.rows.max(1) as f64;
    let mean = a.scores.iter().filter(|s| s.is_finite()).sum::<f64>() / a.rows.max(1) as f64;
    let _ = writeln!(
        out,
        "<p>{} rows, {} flagged ({:.2}%), mean score {mean:.4}.</p>",
        a.rows,
        a.flagged_count,
        share * 100.0
    );
    figure(out, PLOT_IDS[2], &section.comparison, "Share of rows per score bin: training vs this data.");

    let _ = writeln!(
        out,
        "<h3>Flagged rows</h3><p class=\"note\">The {} highest-scoring of {} flagged rows, with the features \
         that contribute most to each score (squared error in scaled units; for a categorical feature its \
         cross-entropy over that of a uniform guess, with the value seen and the one the model expected).</p>",
        a.flagged.len(),
        a.flagged_count
    );
    out.push_str(
        "<table id=\"flagged-rows\"><tr><th>row</th><th>score</th><th>percentile</th><th>top features</th></tr>\n",
    );
    for flagged in &a.flagged {
        let features: Vec<String> = flagged
            .top
            .iter()
            .map(|c| match &c.category {
                Some(m) => format!(
                    "{} ({:.3}; got {}, expected {}, p={:.2})",
                    encode_text(&c.feature),
                    c.error,
                    encode_text(&m.got),
                    encode_text(&m.expected),
                    m.probability
                ),
                None => format!("{} ({:.3})", encode_text(&c.feature), c.error),
            })
            .collect();
        let _ = writeln!(
            out,
            "<tr><td class=\"num\">{}</td><td class=\"num\">{:.5}</td><td class=\"num\">{:.4}</td><td>{}</td></tr>",
            flagged.row,
            flagged.score,
            flagged.percentile,
            features.join(", ")
        );
    }
    out.push_str("</table>\n");
    figure(
        out,
        PLOT_IDS[3],
        &section.errors,
        &format!(
            "Mean squared reconstruction error per feature (the {} largest of {}).",
            options.max_features_plotted.min(model.n_features()),
            model.n_features()
        ),
    );
    figure(
        out,
        PLOT_IDS[4],
        &section.latent,
        &format!(
            "Codes of {} rows projected on their first two principal components; flagged rows in red.",
            a.latent_points.len()
        ),
    );
}
