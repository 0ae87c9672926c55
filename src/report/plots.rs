//! The report's plots, each drawn by plotters into an SVG string that the page embeds inline (so the
//! HTML file needs nothing else to be viewed).

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::anomaly::quantile_unsorted;
use crate::error::{AutoencError, Result};
use crate::model::training_report::TrainingReport;

const SIZE: (u32, u32) = (720, 360);
const TRAINING: RGBColor = RGBColor(0x3b, 0x6e, 0xa8);
const DATA: RGBColor = RGBColor(0xe0, 0x8a, 0x1e);
const ANOMALY: RGBColor = RGBColor(0xc8, 0x2d, 0x2d);

/// Plotters reports drawing errors with a backend-specific type; the report only needs the message.
fn drawing<E: std::fmt::Display>(error: E) -> AutoencError {
    AutoencError::InvalidInput(format!("cannot draw the report's plot: {error}"))
}

/// Runs `draw` on a fresh SVG canvas and returns the SVG text.
fn svg(
    size: (u32, u32),
    draw: impl FnOnce(DrawingArea<SVGBackend, plotters::coord::Shift>) -> Result<()>,
) -> Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        draw(root.clone())?;
        root.present().map_err(drawing)?;
    }
    Ok(out)
}

/// Every plot's axes: f64 by f64.
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The legend every plot uses: top right, on a translucent white box.
fn draw_legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>) -> Result<()> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(drawing)
}

/// A range that plotters can draw even when all values are equal.
fn padded(lo: f64, hi: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    let span = (hi - lo).abs().max(hi.abs() * 1e-3).max(1e-9);
    (lo - 0.05 * span, hi + 0.05 * span)
}

/// Training loss, its reconstruction part and the validation loss, per epoch.
pub fn loss_curve(report: &TrainingReport) -> Result<String> {
    svg(SIZE, |root| {
        let epochs = &report.epochs;
        let values =
            epochs.iter().flat_map(|e| [Some(e.loss), Some(e.reconstruction_loss), e.validation_loss]).flatten();
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let (lo, hi) = padded(lo.min(0.0), hi);
        let last = epochs.last().map_or(1, |e| e.epoch).max(1) as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption("Loss per epoch", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0.5..last + 0.5, lo..hi)
            .map_err(drawing)?;
        chart.configure_mesh().x_desc("epoch").y_desc("loss").draw().map_err(drawing)?;
        type Value = fn(&crate::EpochRecord) -> Option<f64>;
        let series: [(&str, RGBColor, Value); 3] = [
            ("training loss", TRAINING, |e| Some(e.loss)),
            ("reconstruction part", RGBColor(0x7f, 0xa6, 0xd1), |e| Some(e.reconstruction_loss)),
            ("validation loss", DATA, |e| e.validation_loss),
        ];
        for (label, colour, value) in series {
            let points: Vec<(f64, f64)> = epochs.iter().filter_map(|e| value(e).map(|v| (e.epoch as f64, v))).collect();
            if points.is_empty() {
                continue;
            }
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
                .map_err(drawing)?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
            chart.draw_series(points.into_iter().map(|p| Circle::new(p, 2, colour.filled()))).map_err(drawing)?;
        }
        draw_legend(&mut chart)
    })
}

/// Share of `values` in each of `bins` equal bins over `[0, top)`; values at or above `top` go to the
/// last bin (so a long tail stays visible without squashing the rest).
fn shares(values: &[f64], top: f64, bins: usize) -> Vec<f64> {
    let mut counts = vec![0.0; bins];
    let width = top / bins as f64;
    for &v in values.iter().filter(|v| v.is_finite()) {
        let bin = ((v.max(0.0) / width) as usize).min(bins - 1);
        counts[bin] += 1.0;
    }
    let total = counts.iter().sum::<f64>().max(1.0);
    counts.iter().map(|c| c / total).collect()
}

/// Histogram of the training scores (from the model's score sketch) with the threshold marked, and
/// optionally the scores of new data over it.
pub fn score_histogram(training: &[f64], data: Option<&[f64]>, threshold: f64) -> Result<String> {
    const BINS: usize = 60;
    let mut all: Vec<f64> = training.iter().chain(data.unwrap_or(&[])).copied().filter(|v| v.is_finite()).collect();
    // The x range ends past the threshold and at the 99.5th percentile (the one quantile rule, see
    // `anomaly`): the far tail piles into the last bin.
    let p995 = if all.is_empty() { 1.0 } else { quantile_unsorted(&mut all, 0.995) };
    let top = p995.max(threshold * 1.25).max(1e-9);
    let train_shares = shares(training, top, BINS);
    let data_shares = data.map(|d| shares(d, top, BINS));
    let peak = train_shares.iter().chain(data_shares.iter().flatten()).fold(0.0f64, |a, &b| a.max(b)).max(1e-9);
    svg(SIZE, |root| {
        let caption = if data.is_some() { "Scores: training vs data" } else { "Training scores" };
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..top, 0.0..peak * 1.1)
            .map_err(drawing)?;
        chart
            .configure_mesh()
            .x_desc("score (last bar: everything beyond)")
            .y_desc("share of rows")
            .draw()
            .map_err(drawing)?;
        let width = top / BINS as f64;
        let mut bars = vec![("training", TRAINING, train_shares)];
        if let Some(d) = data_shares {
            bars.push(("data", DATA, d));
        }
        for (label, colour, values) in bars {
            chart
                .draw_series(values.iter().enumerate().map(|(i, &share)| {
                    let x0 = i as f64 * width;
                    Rectangle::new([(x0, 0.0), (x0 + width, share)], colour.mix(0.55).filled())
                }))
                .map_err(drawing)?
                .label(label)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], colour.mix(0.55).filled()));
        }
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(threshold, 0.0), (threshold, peak * 1.1)],
                ANOMALY.stroke_width(2),
            )))
            .map_err(drawing)?
            .label(format!("threshold {threshold:.4}"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], ANOMALY.stroke_width(2)));
        draw_legend(&mut chart)
    })
}

/// Mean reconstruction error per feature as horizontal bars, largest first (at most `limit` features).
pub fn feature_errors(names: &[String], errors: &[f64], limit: usize) -> Result<String> {
    let mut order: Vec<usize> = (0..errors.len()).filter(|&j| errors[j].is_finite()).collect();
    order.sort_by(|&a, &b| errors[b].total_cmp(&errors[a]));
    order.truncate(limit);
    let n = order.len().max(1);
    let height = (60 + 18 * n as u32).max(200);
    let largest = order.first().map_or(1.0, |&j| errors[j]).max(1e-9);
    svg((SIZE.0, height), |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption("Mean reconstruction error per feature", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(140)
            .build_cartesian_2d(0.0..largest * 1.05, -0.5..n as f64 - 0.5)
            .map_err(drawing)?;
        let label = |y: &f64| {
            let i = y.round();
            if (y - i).abs() > 1e-6 || i < 0.0 {
                return String::new();
            }
            // Bars are drawn largest at the top, so height `i` shows `order[n - 1 - i]`.
            let Some(rank) = (n - 1).checked_sub(i as usize) else { return String::new() };
            order.get(rank).map(|&j| names.get(j).cloned().unwrap_or_else(|| format!("#{j}"))).unwrap_or_default()
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .y_label_formatter(&label)
            .x_desc("mean squared error (scaled units)")
            .draw()
            .map_err(drawing)?;
        chart
            .draw_series(order.iter().enumerate().map(|(i, &j)| {
                // Largest at the top: `order[0]` is drawn highest.
                let y = (n - 1 - i) as f64;
                Rectangle::new([(0.0, y - 0.35), (errors[j], y + 0.35)], TRAINING.filled())
            }))
            .map_err(drawing)?;
        Ok(())
    })
}

/// The codes' first two principal components, flagged rows highlighted.
pub fn latent_scatter(points: &[(f64, f64)], flagged: &[bool], explained: (f64, f64)) -> Result<String> {
    let (xlo, xhi) = points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
    let (ylo, yhi) = points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    let (xlo, xhi) = padded(xlo, xhi);
    let (ylo, yhi) = padded(ylo, yhi);
    svg((SIZE.0, 480), |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption("Latent space (first two principal components of the codes)", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(xlo..xhi, ylo..yhi)
            .map_err(drawing)?;
        chart
            .configure_mesh()
            .x_desc(format!("PC1 ({:.0}% of code variance)", explained.0 * 100.0))
            .y_desc(format!("PC2 ({:.0}%)", explained.1 * 100.0))
            .draw()
            .map_err(drawing)?;
        let normal = points.iter().zip(flagged).filter(|(_, f)| !**f).map(|(p, _)| *p);
        chart
            .draw_series(normal.map(|p| Circle::new(p, 2, TRAINING.mix(0.45).filled())))
            .map_err(drawing)?
            .label("normal")
            .legend(|(x, y)| Circle::new((x + 7, y), 3, TRAINING.filled()));
        let anomalies = points.iter().zip(flagged).filter(|(_, f)| **f).map(|(p, _)| *p);
        chart
            .draw_series(anomalies.map(|p| Circle::new(p, 3, ANOMALY.filled())))
            .map_err(drawing)?
            .label("flagged")
            .legend(|(x, y)| Circle::new((x + 7, y), 3, ANOMALY.filled()));
        draw_legend(&mut chart)
    })
}
