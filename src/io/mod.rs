//! Reading and writing: the model file (`model_file`), tables of rows (`table`), and the all-or-nothing
//! file writes both use (`atomic`). The Arrow bridge (`table`, `ipc`, `contain`) is compiled with the
//! default-on `arrow` feature.

pub mod atomic;
#[cfg(feature = "arrow")]
pub mod contain;
pub mod file_stamp;
#[cfg(feature = "arrow")]
pub mod ipc;
pub mod model_file;
#[cfg(feature = "arrow")]
pub mod table;
