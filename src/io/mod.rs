//! Reading and writing: the model file (`model_file`), tables of rows (`table`), and the all-or-nothing
//! file writes both use (`atomic`).

pub mod atomic;
pub mod contain;
pub mod ipc;
pub mod model_file;
pub mod table;
