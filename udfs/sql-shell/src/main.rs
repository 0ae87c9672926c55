//! `autoenc-sql`: a SQL shell over Apache DataFusion with every autoenc function registered.
//!
//! ```text
//! autoenc-sql --models models/                      # interactive prompt, history in the cache directory
//! autoenc-sql --models models/ -c "SELECT ae_score('sensors', features) FROM 'readings.parquet'"
//! autoenc-sql --models models/ -f session.sql       # a script, statements separated by ';'
//! autoenc-sql --cluster df://localhost:50050 --models models/   # queries run on a Ballista cluster
//! ```
//!
//! Files are tables by path (`SELECT * FROM 'data.parquet'`, `.csv` with a header row), and `COPY (...) TO
//! 'out.parquet'` writes results. In `-c` and `-f` modes the first failing statement stops the run with a
//! message on standard error and exit status 1 (a script is parsed whole first, so a syntax error anywhere
//! runs none of it); the prompt reports the error and carries on.

#![forbid(unsafe_code)]

mod prompt;
mod session;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use session::{OutputFormat, Session};

#[derive(Parser, Debug)]
#[command(name = "autoenc-sql", version, about = "SQL shell with the autoenc functions (DataFusion)")]
struct Args {
    /// Directory of model files: `<DIR>/<name>.ae` is the model `name` in SQL.
    #[arg(long, value_name = "DIR")]
    models: Option<PathBuf>,
    /// Run queries on the Ballista cluster whose scheduler is at this URL (`df://HOST:50050`), started
    /// with `autoenc-ballista`; `--models` should name the same model files the nodes read.
    #[arg(long, value_name = "URL")]
    cluster: Option<String>,
    /// Model used by calls that name none (`ae_score(features)`).
    #[arg(long, value_name = "NAME")]
    default_model: Option<String>,
    /// Run these SQL statements and exit (repeatable; after any -f files).
    #[arg(short = 'c', long = "command", value_name = "SQL")]
    commands: Vec<String>,
    /// Run the statements in this file and exit (repeatable).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    files: Vec<PathBuf>,
    /// How results are printed.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
    /// History file of the interactive prompt (default: `autoenc/sql_history` in the user's cache
    /// directory; also `AUTOENC_SQL_HISTORY`).
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let session = match &args.cluster {
        Some(url) => Session::cluster(url, args.models.as_deref(), args.default_model.as_deref(), args.format).await,
        None => Session::new(args.models.as_deref(), args.default_model.as_deref(), args.format),
    };
    let session = match session {
        Ok(session) => session,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !args.files.is_empty() || !args.commands.is_empty() {
        for file in &args.files {
            let text = match std::fs::read_to_string(file) {
                Ok(text) => text,
                Err(e) => {
                    eprintln!("error: cannot read {}: {e}", file.display());
                    return ExitCode::FAILURE;
                }
            };
            if let Err(e) = session.run_script(&text).await {
                eprintln!("error: {}: {e}", file.display());
                return ExitCode::FAILURE;
            }
        }
        for command in &args.commands {
            if let Err(e) = session.run_script(command).await {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
        return ExitCode::SUCCESS;
    }
    let history = args
        .history
        .or_else(|| std::env::var_os("AUTOENC_SQL_HISTORY").map(PathBuf::from))
        .or_else(|| dirs::cache_dir().map(|d| d.join("autoenc").join("sql_history")));
    // Piped input is a script read line by line: it goes on after an error like the prompt does, but
    // the exit status tells a caller that something failed.
    let interactive = std::io::stdin().is_terminal();
    match prompt::run(&session, history.as_deref()).await {
        Ok(failures) if failures > 0 && !interactive => ExitCode::FAILURE,
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
