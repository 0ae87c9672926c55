//! Reading and writing: the model file (`model_file`), tables of rows (`table`), and the all-or-nothing
//! file writes both use (`atomic`). The Arrow bridge (`arrow_matrix`, the conversions between Arrow
//! columns and matrices that every door shares; `table`, `ipc`, `contain`) is compiled with the
//! default-on `arrow` feature.

#[cfg(feature = "arrow")]
pub mod arrow_categories;
#[cfg(feature = "arrow")]
pub mod arrow_matrix;
pub mod atomic;
#[cfg(feature = "arrow")]
pub mod contain;
pub mod file_stamp;
#[cfg(feature = "arrow")]
pub mod ipc;
pub mod model_file;
#[cfg(feature = "arrow")]
pub mod table;
