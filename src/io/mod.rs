//! Reading and writing: the model file (`model_file`) and tables of rows (`table`).

pub mod model_file;
pub mod table;
