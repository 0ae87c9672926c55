//! `autoenc-ballista`: the scheduler and executor of a Ballista cluster that knows every autoenc SQL
//! function. Each subcommand takes Ballista's own flags (its binaries' option structs, flattened) plus
//! where models live:
//!
//! ```text
//! autoenc-ballista scheduler --models models/ --bind-port 50050
//! autoenc-ballista executor  --models models/ --scheduler-host localhost --scheduler-port 50050 \
//!     --bind-port 50051 --bind-grpc-port 50052 --bind-health-port 50053
//! autoenc-sql --cluster df://localhost:50050 --models models/ -c "SELECT ae_score('m', f0, f1) FROM '/data/t.parquet'"
//! ```

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use autoenc_ballista::functions::model_registry;
use autoenc_ballista::{executor, scheduler};
use ballista_executor::executor_process::ExecutorProcessConfig;
use ballista_scheduler::config::SchedulerConfig;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser, Debug)]
#[command(name = "autoenc-ballista", version, about = "Ballista scheduler and executor with the autoenc SQL functions")]
struct Cli {
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand, Debug)]
enum Role {
    /// Plans queries and hands their tasks to executors (Ballista's scheduler flags).
    Scheduler {
        #[command(flatten)]
        models: Models,
        #[command(flatten)]
        ballista: ballista_scheduler::config::Config,
    },
    /// Runs tasks (Ballista's executor flags).
    Executor {
        #[command(flatten)]
        models: Models,
        #[command(flatten)]
        ballista: ballista_executor::config::Config,
    },
}

#[derive(Args, Debug)]
struct Models {
    /// Directory of model files, the same on every node: `<DIR>/<name>.ae` is the model `name` in SQL.
    #[arg(long, value_name = "DIR")]
    models: Option<PathBuf>,
    /// Model used by calls that name none; give every node and the client the same one.
    #[arg(long, value_name = "NAME")]
    default_model: Option<String>,
}

/// The task scheduling policy both roles default to, in place of Ballista's push-staged. With the
/// scheduler pushing tasks, Ballista 55 loses the task slots of an executor's tasks that were running
/// when another executor died and their stage was rolled back, and the job, then every later one,
/// waits for ever; with executors pulling, nothing is counted on the scheduler to lose (docs/cluster.md,
/// "Failures"). `--scheduler-policy` / `--task-scheduling-policy` still choose, and must agree.
const SCHEDULING_POLICY: &str = "pull-staged";

fn parse_cli() -> Cli {
    let command = Cli::command()
        .mut_subcommand("scheduler", |c| c.mut_arg("scheduler_policy", |a| a.default_value(SCHEDULING_POLICY)))
        .mut_subcommand("executor", |c| c.mut_arg("task_scheduling_policy", |a| a.default_value(SCHEDULING_POLICY)));
    let matches = command.get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn main() -> ExitCode {
    let cli = parse_cli();
    // Ballista's scheduler plans deep expression trees recursively; its own binary runs on 32 MB stacks.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().thread_stack_size(32 * 1024 * 1024).build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.role)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(role: Role) -> Result<(), String> {
    match role {
        Role::Scheduler { models, ballista } => {
            init_logging(&ballista.log_level_setting);
            let registry = model_registry(models.models.as_deref(), models.default_model.as_deref())?;
            let config = SchedulerConfig::try_from(ballista).map_err(|e| e.to_string())?;
            scheduler::run(config, registry).await.map_err(|e| e.to_string())
        }
        Role::Executor { models, ballista } => {
            init_logging(&ballista.log_level_setting);
            let registry = model_registry(models.models.as_deref(), models.default_model.as_deref())?;
            let health_addr = format!("{}:{}", ballista.bind_host, ballista.bind_health_port);
            let config = ExecutorProcessConfig::try_from(ballista).map_err(|e| e.to_string())?;
            executor::run(config, &health_addr, registry).await.map_err(|e| e.to_string())
        }
    }
}

/// Logs to standard error with Ballista's `--log-level-setting` filter, `RUST_LOG` taking precedence as
/// in Ballista's binaries. (Their `--log-dir` file logs are not wired: a service manager or Docker
/// collects standard error.)
fn init_logging(default_filter: &str) {
    let filter = std::env::var(EnvFilter::DEFAULT_ENV).unwrap_or_else(|_| default_filter.to_string());
    let _ = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .with_env_filter(EnvFilter::new(filter))
        .try_init();
}
