//! The network and its parts: activations, dense layers, MLPs, losses, penalties, hyper-parameters and
//! the trained [`Autoencoder`](autoencoder::Autoencoder).

pub mod activation;
pub mod autoencoder;
pub mod dense;
mod epilogue;
pub(crate) mod inference;
pub mod loss;
pub mod mlp;
mod narrow;
pub mod network;
pub mod params;
pub mod regularizer;
mod tiled;
