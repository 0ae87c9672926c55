//! # autoenc-ballista
//!
//! A Ballista cluster that knows every autoenc SQL function. Ballista ships plans, not code: a plan
//! names its functions (`ae_score`, `ae_train`, ...) and each process that plans or runs it looks the
//! names up in its own function registry. So the same functions are registered in three places:
//!
//! - the client ([`cluster_context`]), which parses and plans the SQL and sends the logical plan;
//! - the scheduler ([`scheduler`]), which turns it into a distributed physical plan and so resolves the
//!   functions' return types (a named model is loaded there to know its width);
//! - every executor ([`executor`]), which decodes its tasks' plans and runs the functions on its rows.
//!
//! Each process loads models by name from its own `--models` directory, so the directory must hold the
//! same files on every node (a shared volume). Models passed as bytes (what `ae_train` returns) travel
//! inside the data and need no directory. The `autoenc-ballista` binary runs the scheduler and executor
//! roles with Ballista's own flags; the `autoenc-sql` shell connects with `--cluster`.
//!
//! `ae_generate` is the one function that stays local: a table function becomes a table provider at
//! planning time, and Ballista can only ship providers its codec knows (files on shared storage). On a
//! cluster it fails with a plan error saying so ([`functions::LocalOnlyGenerate`]).

#![forbid(unsafe_code)]

pub mod client;
pub mod executor;
pub mod functions;
pub mod job_guard;
pub mod scheduler;

pub use client::cluster_context;
pub use functions::{function_registry, session_state};
