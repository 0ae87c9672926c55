//! The per-epoch training report kept in the model, like BigQuery ML's `ML.TRAINING_INFO`.

use serde::{Deserialize, Serialize};

/// One epoch (or one `partial_fit` call) of training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based, continuing across warm starts and `partial_fit` calls.
    pub epoch: usize,
    /// Mean objective over the epoch's batches (reconstruction + penalty), weighted by batch size.
    pub loss: f64,
    /// The reconstruction part of `loss`.
    pub reconstruction_loss: f64,
    /// Reconstruction loss of the held-out rows (deterministic forward pass), when there are any.
    pub validation_loss: Option<f64>,
    pub learning_rate: f64,
    /// Rows the epoch trained on.
    pub rows: usize,
    /// Wall-clock milliseconds; `None` when timings are not recorded (byte-reproducible files).
    pub duration_ms: Option<f64>,
    /// `epoch` for full passes, `partial_fit` for incremental batches.
    pub kind: EpochKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EpochKind {
    Epoch,
    PartialFit,
}

/// The whole history of a model's training.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingReport {
    pub epochs: Vec<EpochRecord>,
    /// Set when early stopping ended training; the kept weights are those of `best_epoch`.
    pub stopped_early: bool,
    pub best_epoch: Option<usize>,
    pub training_rows: usize,
    pub validation_rows: usize,
}

impl TrainingReport {
    /// The number of the next epoch to record.
    pub fn next_epoch(&self) -> usize {
        self.epochs.last().map_or(1, |e| e.epoch + 1)
    }

    /// The report as aligned text, one epoch a line.
    pub fn to_table(&self) -> String {
        let mut out =
            String::from("epoch  kind         loss          recon         val_loss      lr         rows      ms\n");
        for e in &self.epochs {
            let kind = match e.kind {
                EpochKind::Epoch => "epoch",
                EpochKind::PartialFit => "partial_fit",
            };
            let val = e.validation_loss.map_or("-".to_string(), |v| format!("{v:.6}"));
            let ms = e.duration_ms.map_or("-".to_string(), |v| format!("{v:.1}"));
            out.push_str(&format!(
                "{:<6} {:<12} {:<13.6} {:<13.6} {:<13} {:<10.2e} {:<9} {}\n",
                e.epoch, kind, e.loss, e.reconstruction_loss, val, e.learning_rate, e.rows, ms
            ));
        }
        if self.stopped_early {
            out.push_str(&format!("stopped early; kept the weights of epoch {}\n", self.best_epoch.unwrap_or(0)));
        }
        out
    }
}
