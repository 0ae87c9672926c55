//! Running the `autoenc` binary from the command-line tests (`cli`, `cli_hostile`, `cli_mixed`): a
//! run, a run that must succeed (its standard output) and one that must fail without a panic (its
//! standard error). Every run adds `--quiet`.
// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs `autoenc ARGS --quiet` with extra environment variables.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_autoenc"))
        .args(args)
        .arg("--quiet")
        .envs(env.iter().copied())
        .output()
        .expect("binary runs")
}

/// Runs `autoenc ARGS --quiet`.
pub fn autoenc(args: &[&str]) -> Output {
    run(args, &[])
}

/// Runs a command that must succeed; returns its standard output.
pub fn ok(args: &[&str]) -> String {
    let out = autoenc(args);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "autoenc {args:?} failed:\n{stdout}\n{stderr}");
    stdout.into_owned()
}

/// Runs a command that must fail, and not by a panic; returns its error message.
pub fn fails_with(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = run(args, env);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "autoenc {args:?} should have failed");
    assert!(!stderr.contains("panicked"), "autoenc {args:?} panicked: {stderr}");
    stderr
}

/// [`fails_with`] without extra environment variables.
pub fn fails(args: &[&str]) -> String {
    fails_with(args, &[])
}

pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}
