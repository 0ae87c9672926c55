//! The network and its parts: activations, dense layers, MLPs, losses, penalties, hyper-parameters and
//! the trained [`Autoencoder`](autoencoder::Autoencoder) with its training report. Training itself lives
//! in `train`, which depends on this module and not the other way round.

pub mod activation;
pub mod autoencoder;
pub mod dense;
mod epilogue;
pub mod features;
pub(crate) mod inference;
pub mod loss;
mod mixed_inference;
pub mod mixed_loss;
pub mod mlp;
mod narrow;
pub mod network;
pub mod params;
pub mod regularizer;
mod resume;
mod tiled;
pub mod training_report;
