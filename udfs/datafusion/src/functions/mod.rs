//! One file and one struct per SQL function, following DataFusion's own function crates.

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

pub(crate) use common::DOC_SECTION;
