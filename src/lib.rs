//! # autoenc
//!
//! Autoencoders for tabular and streaming data. Train one of the family — plain, denoising, sparse
//! (top-k, L1, KL), contractive or variational — on a matrix of rows, save it as one safetensors file,
//! and use it to encode rows into embeddings, reconstruct them, score them and flag anomalies.
//!
//! ```no_run
//! use autoenc::{Autoencoder, LatentSize};
//! # fn main() -> autoenc::Result<()> {
//! let data = ndarray::Array2::<f32>::zeros((100, 8));
//! let model = Autoencoder::params().latent(LatentSize::Fixed(3)).epochs(20).fit(data.view())?;
//! let scores = model.score(data.view())?;
//! let flagged: Vec<bool> = scores.iter().map(|&s| model.is_anomaly(s)).collect();
//! model.save("model.ae")?;
//! # Ok(()) }
//! ```
//!
//! Start with [`model::params`] for the hyper-parameters, [`model::autoencoder`] for what a trained
//! model does, and [`train::trainer`] for how training works. The SQL, DataFrame and Kafka doors are
//! thin adapters over this API.

pub mod anomaly;
pub mod blocks;
pub mod error;
pub mod io;
pub mod limits;
pub mod linalg;
pub mod metrics;
pub mod model;
#[cfg(feature = "onnx")]
pub mod onnx;
pub mod pca;
pub mod preprocess;
#[cfg(feature = "report")]
pub mod report;
#[cfg(feature = "stream")]
pub mod stream;
pub mod synthetic;
pub mod synthetic_devices;
pub mod train;

pub use anomaly::{ScoreSketch, Threshold, ThresholdRule};
pub use blocks::CHUNK_ROWS;
pub use error::{AutoencError, Result};
pub use model::activation::Activation;
pub use model::autoencoder::{Autoencoder, CategoryMismatch, Contribution, ScoreDetails};
pub use model::dense::Init;
pub use model::features::{Category, CategoryCounts, FeatureKind, FeatureLayout, Vocabulary};
pub use model::params::{
    AutoencoderParams, AutoencoderValidParams, EarlyStopping, LatentSize, Loss, Noise, OptimizerKind, Scaling,
    Sparsity, Variant,
};
pub use model::training_report::{EpochRecord, TrainingReport};
