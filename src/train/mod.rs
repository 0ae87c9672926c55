//! Training: the objective of each variant, optimisers, input corruption, the trainer and its report.

pub mod corruption;
pub mod objective;
pub mod optimizer;
pub mod report;
pub mod trainer;
