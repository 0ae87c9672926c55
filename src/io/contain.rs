//! Containing panics of third-party readers. The Arrow and Parquet readers return errors for most
//! damaged input, but on some they panic instead: `tests/fuzz_inputs.rs` found an Arrow IPC file with
//! a validity buffer shorter than its length declares, which trips an assertion in arrow-buffer
//! (`BooleanBuffer::new`) before the reader's own validation runs. Autoenc reads untrusted bytes (table
//! files, stream messages) through [`contain`], which turns such a panic into an error naming the
//! input, so one damaged file or message cannot abort the command or stop the stream.

use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs `read`, turning a panic inside it into `on_panic(message)`.
///
/// Only reading code that owns its state goes through here (a fresh reader over borrowed bytes): a
/// panic leaves nothing half-updated behind, which is what makes catching it sound.
pub fn contain<T, E>(read: impl FnOnce() -> Result<T, E>, on_panic: impl FnOnce(String) -> E) -> Result<T, E> {
    match catch_unwind(AssertUnwindSafe(read)) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "the reader failed".to_string());
            Err(on_panic(message))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_and_a_result_passes_through() {
        let caught: Result<(), String> = contain(|| panic!("buffer not large enough"), |m| format!("damaged: {m}"));
        assert_eq!(caught, Err("damaged: buffer not large enough".to_string()));
        assert_eq!(contain(|| Ok::<_, String>(3), |m| m), Ok(3));
        assert_eq!(contain(|| Err::<i32, _>("plain error".to_string()), |m| m), Err("plain error".to_string()));
    }
}
