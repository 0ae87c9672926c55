//! Training: the objective of each variant, optimisers, input corruption and the trainer. The training
//! report the trainer fills lives with the model (`model::training_report`): it is part of what a model
//! is. This module depends on `model`, never the other way round.

pub mod corruption;
pub mod objective;
pub mod optimizer;
pub mod trainer;
