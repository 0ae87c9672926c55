//! The `autoenc` command line: train, encode, reconstruct, score, generate, inspect and evaluate
//! autoencoder models on Parquet, CSV and Arrow IPC files. See `autoenc --help`.

#![deny(unsafe_code)] // deny, not forbid: ndarray's `s!` macro allows unsafe code inside its expansion

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    cli::init_logging(args.verbose, args.quiet);
    match cli::run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
