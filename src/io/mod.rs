//! Reading and writing: the model file and tables.
