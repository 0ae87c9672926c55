//! Every SQL function, one file each, following DataFusion's own function crates: the eight scalar
//! functions share one implementation (`scalar.rs`, a struct generic over what each function computes)
//! and keep their own user documentation in their file; `ae_train` is the training aggregate and
//! `ae_generate` the table function that samples a variational model.

pub mod ae_decode;
pub mod ae_encode;
pub mod ae_explain;
pub mod ae_generate;
pub mod ae_is_anomaly;
pub mod ae_model_info;
pub mod ae_percentile;
pub mod ae_reconstruct;
pub mod ae_score;
pub mod ae_train;
mod common;
pub mod scalar;

pub(crate) use common::DOC_SECTION;
