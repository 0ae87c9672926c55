//! The SQL door's integration tests, gathered into one test binary: each binary links all of
//! DataFusion, so one binary instead of one per file saves minutes of linking and gigabytes of disk.
//! The shell tests live with the shell, in `udfs/sql-shell/tests/shell.rs`.
//! The golden `.slt` files run from their own binary (`tests/sqllogictests.rs`, a custom harness).

mod functions_reference;
mod hostile_models;
mod mixed_tables;
mod properties;
mod sql_equals_cli;
mod sql_equals_core;
