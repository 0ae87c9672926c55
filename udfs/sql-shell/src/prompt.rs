//! The interactive prompt: a line editor (rustyline) with persistent history. A statement ends with a
//! `;` at the end of a line, so multi-line statements can be typed as they are written in files. When
//! standard input is not a terminal, rustyline reads plain lines, which makes the prompt scriptable
//! (`echo "SELECT 1;" | autoenc-sql`).
//!
//! Ctrl-C is the user's way to take back the prompt: at the prompt it drops the line being typed (the
//! line editor reads it as a key), while a query runs it cancels that query and the prompt returns, as
//! in psql and datafusion-cli. Ctrl-D at an empty prompt ends the session.

use std::path::Path;

use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

use crate::session::Session;

/// Runs one statement (or several on a line), reporting an error or a cancellation; returns 1 for an
/// error. A query cancelled with Ctrl-C is what the user asked for, not a failure, so it does not count
/// towards the exit status of piped input.
async fn run_statement(session: &Session, text: &str) -> usize {
    match session.run_script_interruptible(text).await {
        Ok(true) => 0,
        Ok(false) => {
            eprintln!("query cancelled");
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// Runs the prompt until end of input or `\q`; returns how many statements failed.
pub async fn run(session: &Session, history: Option<&Path>) -> Result<usize, ReadlineError> {
    let mut editor = DefaultEditor::new()?;
    if let Some(path) = history {
        // A missing history file is the normal first run.
        let _ = editor.load_history(path);
    }
    let mut failures = 0;
    let mut pending = String::new();
    loop {
        let prompt = if pending.is_empty() { "autoenc> " } else { "    ...> " };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            // Ctrl-C drops the statement being typed, like psql.
            Err(ReadlineError::Interrupted) => {
                pending.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e),
        };
        let trimmed = line.trim();
        if pending.is_empty() && matches!(trimmed, "\\q" | "quit" | "exit") {
            break;
        }
        if trimmed.is_empty() && pending.is_empty() {
            continue;
        }
        if !pending.is_empty() {
            pending.push('\n');
        }
        pending.push_str(&line);
        if trimmed.ends_with(';') {
            let statement = std::mem::take(&mut pending);
            let _ = editor.add_history_entry(statement.as_str());
            failures += run_statement(session, &statement).await;
        }
    }
    if !pending.trim().is_empty() {
        // Input ended without a ';': run what was typed rather than drop it silently.
        let _ = editor.add_history_entry(pending.as_str());
        failures += run_statement(session, &pending).await;
    }
    if let Some(path) = history {
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        if let Err(e) = editor.save_history(path) {
            eprintln!("warning: history not saved to {}: {e}", path.display());
        }
    }
    Ok(failures)
}
