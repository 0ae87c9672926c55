//! The SQL door's integration tests, gathered into one test binary: each binary links all of
//! DataFusion, so one binary instead of five saves minutes of linking and gigabytes of disk.
//! The golden `.slt` files run from their own binary (`tests/sqllogictests.rs`, a custom harness).

mod functions_reference;
mod hostile_models;
mod properties;
mod shell;
mod sql_equals_cli;
mod sql_equals_core;
