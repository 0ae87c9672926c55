//! End-to-end tests of the `autoenc-sql` binary: `-c`, `-f`, piped input with history, `COPY ... TO`,
//! files queried by path, and errors (clear message, non-zero exit, no panic).

use std::io::Write;

use std::process::{Command, Stdio};

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Float64Type;

mod common;

use common::{SHELL, fixture, shell};

/// Ends a shell that a test gave up on, and reaps it.
fn stop(child: &mut std::process::Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn command_mode_scores_a_csv_file_by_path() {
    let dir = fixture();
    let out = shell(
        dir.path(),
        &[
            "--format",
            "csv",
            "-c",
            "SELECT count(*) AS n, bool_and(ae_score('sensors', s0, s1, s2, s3) >= 0) AS ok FROM 'rows.csv'",
        ],
        None,
    );
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "n,ok\n300,true\n");
}

#[test]
fn table_output_shows_rows_and_a_count() {
    let dir = fixture();
    let out = shell(dir.path(), &["-c", "SELECT 1 AS one; SELECT 'a' AS x UNION ALL SELECT 'b'"], None);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("| one |") && stdout.contains("(1 row)") && stdout.contains("(2 rows)"), "{stdout}");
}

#[test]
fn file_mode_runs_a_script_and_copy_writes_parquet() {
    let dir = fixture();
    std::fs::write(
        dir.path().join("session.sql"),
        "-- a script\nCREATE TABLE scored AS\n  SELECT s0, ae_score('sensors', s0, s1, s2, s3) AS score FROM 'rows.csv';\n\
         COPY (SELECT * FROM scored ORDER BY s0) TO 'scored.parquet';\n\
         SELECT count(*) AS n FROM 'scored.parquet';\n",
    )
    .expect("script");
    let out = shell(dir.path(), &["--format", "csv", "-f", "session.sql"], None);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    // COPY reports how many rows it wrote; the last query reads the file back.
    assert_eq!(text(&out.stdout), "count\n300\nn\n300\n");
    let file = std::fs::File::open(dir.path().join("scored.parquet")).expect("COPY wrote the file");
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(file, 1024).expect("parquet");
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().expect("read back");
    let scores: Vec<f64> =
        batches.iter().flat_map(|b| b.column(1).as_primitive::<Float64Type>().values().to_vec()).collect();
    assert_eq!(scores.len(), 300);
    assert!(scores.iter().all(|s| s.is_finite() && *s >= 0.0));
}

#[test]
fn errors_are_reported_with_a_non_zero_exit() {
    let dir = fixture();
    let out = shell(dir.path(), &["-c", "SELECT ae_score('nope', 1.0, 2.0, 3.0, 4.0)"], None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("error:") && stderr.contains("unknown model 'nope'; registered: sensors"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // The first failing statement of a script stops it.
    std::fs::write(dir.path().join("bad.sql"), "SELECT 1 AS a;\nSELECT ae_model_info('nope');\nSELECT 3 AS c;\n")
        .expect("script");
    let out = shell(dir.path(), &["--format", "csv", "-f", "bad.sql"], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "a\n1\n");
    assert!(text(&out.stderr).contains("bad.sql: "), "{}", text(&out.stderr));

    // A script is parsed whole before it runs: a syntax error anywhere runs nothing.
    std::fs::write(dir.path().join("typo.sql"), "SELECT 1 AS a;\nSELEC 2;\n").expect("script");
    let out = shell(dir.path(), &["--format", "csv", "-f", "typo.sql"], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    assert!(text(&out.stderr).contains("SELEC"), "{}", text(&out.stderr));

    let out = shell(dir.path(), &["-f", "missing.sql"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot read missing.sql"), "{}", text(&out.stderr));

    let out = shell(dir.path(), &["-c", "SELECT * FROM 'no_such_file.parquet'"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("error:"), "{}", text(&out.stderr));

    let out = Command::new(SHELL).args(["--models", "/no/such/dir", "-c", "SELECT 1"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not a directory"), "{}", text(&out.stderr));
}

#[test]
fn piped_input_runs_statements_and_keeps_history() {
    let dir = fixture();
    let input = "SELECT 40 + 2\n  AS answer;\nSELECT ae_model_info('nope');\n\nSELECT 'after the error' AS still;\n\\q\nSELECT 'not run';\n";
    let out = shell(dir.path(), &["--format", "csv"], Some(input));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("answer\n42\n"), "{stdout}");
    assert!(stdout.contains("still\nafter the error\n"), "{stdout}");
    assert!(!stdout.contains("not run"), "{stdout}");
    assert!(text(&out.stderr).contains("unknown model 'nope'"), "{}", text(&out.stderr));
    // Piped input goes on after an error but says so in the exit status.
    assert_eq!(out.status.code(), Some(1));
    let history = std::fs::read_to_string(dir.path().join("history")).expect("history file written");
    assert!(history.contains("SELECT 'after the error' AS still;"), "{history}");

    let out = shell(dir.path(), &["--format", "csv"], Some("SELECT 7 AS seven;\n"));
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("seven\n7\n"));
    let history = std::fs::read_to_string(dir.path().join("history")).expect("history file");
    assert!(history.contains("AS still;") && history.contains("SELECT 7 AS seven;"), "history is kept: {history}");
}

#[test]
fn generate_in_the_shell_refuses_a_plain_model() {
    let dir = fixture();
    let out = shell(dir.path(), &["-c", "SELECT * FROM ae_generate('sensors', 3)"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not variational"), "{}", text(&out.stderr));
}

#[test]
fn ctrl_c_cancels_the_running_query_and_the_prompt_carries_on() {
    use std::io::{BufRead, BufReader};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    let dir = fixture();
    let mut child = Command::new(SHELL)
        .current_dir(dir.path())
        .args(["--format", "csv", "--models"])
        .arg(dir.path().join("models"))
        .env("AUTOENC_SQL_HISTORY", dir.path().join("history"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("autoenc-sql starts");
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let (lines_tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line.clone()).is_err() {
                break;
            }
        }
    });
    // The marker is printed by the same line's first statement, so the shell is already listening for
    // Ctrl-C when it shows; the second statement scores 10^12 rows, far more than the test waits for.
    stdin
        .write_all(
            b"SELECT 'started' AS marker; SELECT sum(ae_score('sensors', v, v, v, v)) AS total \
              FROM (SELECT CAST(value AS DOUBLE) AS v FROM generate_series(1, 1000000000000));\n",
        )
        .expect("write stdin");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line == "started" => break,
            Ok(_) => {}
            Err(e) => {
                stop(&mut child);
                panic!("the first statement did not print its marker: {e}");
            }
        }
    }
    // Let the slow query get going, then interrupt it as a terminal's Ctrl-C would.
    std::thread::sleep(Duration::from_millis(500));
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill runs");
    assert!(kill.success());
    stdin.write_all(b"SELECT 'after' AS marker;\n").expect("the shell still reads its input");
    drop(stdin);

    let mut status = None;
    while Instant::now() < deadline {
        if let Some(done) = child.try_wait().expect("wait") {
            status = Some(done);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let Some(status) = status else {
        stop(&mut child);
        panic!("the shell did not finish: the query was not cancelled");
    };
    reader.join().expect("reader thread");
    let rest: Vec<String> = lines.try_iter().collect();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr).expect("stderr");
    assert!(status.success(), "status {status:?}; stderr: {stderr}; stdout after the marker: {rest:?}");
    assert!(stderr.contains("query cancelled"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // The cancelled query printed nothing; the next one answered.
    assert_eq!(rest, ["marker", "after"], "stderr: {stderr}");
}

/// A pseudo-terminal for the shell, so that it runs as in a terminal: the line editor in raw mode at the
/// prompt, and Ctrl-C (byte 3) turned into SIGINT by the terminal while a query runs.
#[cfg(unix)]
mod terminal {
    use std::ffi::CStr;
    use std::fs::File;
    use std::io::{Read, Write};
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    use std::path::Path;
    use std::process::{Child, Command};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    pub struct Terminal {
        pub child: Child,
        master: File,
        output: Arc<Mutex<String>>,
    }

    impl Terminal {
        pub fn spawn(dir: &Path) -> Terminal {
            // SAFETY: plain libc calls on a descriptor this function owns; results are checked.
            let (master, slave) = unsafe {
                let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
                assert!(fd >= 0, "posix_openpt");
                assert_eq!(libc::grantpt(fd), 0, "grantpt");
                assert_eq!(libc::unlockpt(fd), 0, "unlockpt");
                let mut name = [0 as libc::c_char; 128];
                assert_eq!(libc::ptsname_r(fd, name.as_mut_ptr(), name.len()), 0, "ptsname_r");
                let path = CStr::from_ptr(name.as_ptr()).to_str().expect("pty path").to_owned();
                // A new pty is 0 x 0; give it the size of a usual window so that lines do not wrap.
                let size = libc::winsize { ws_row: 40, ws_col: 200, ws_xpixel: 0, ws_ypixel: 0 };
                assert_eq!(libc::ioctl(fd, libc::TIOCSWINSZ, &size), 0, "TIOCSWINSZ");
                (File::from(OwnedFd::from_raw_fd(fd)), path)
            };
            let open = || std::fs::OpenOptions::new().read(true).write(true).open(&slave).expect("open pty");
            let mut command = Command::new(super::SHELL);
            command
                .current_dir(dir)
                .args(["--format", "csv", "--models"])
                .arg(dir.join("models"))
                .env("AUTOENC_SQL_HISTORY", dir.join("history"))
                // The line editor treats a "dumb" terminal as no terminal (no raw mode); be a real one.
                .env("TERM", "xterm")
                .stdin(open())
                .stdout(open())
                .stderr(open());
            // SAFETY: only async-signal-safe calls between fork and exec. A new session whose
            // controlling terminal is the pty, as a terminal emulator starts a shell.
            unsafe {
                command.pre_exec(|| {
                    if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let child = command.spawn().expect("autoenc-sql starts");
            let output = Arc::new(Mutex::new(String::new()));
            let (mut reader, sink) = (master.try_clone().expect("clone pty"), output.clone());
            std::thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                // Reading fails with EIO once the shell has exited and closed its side.
                while let Ok(n) = reader.read(&mut buffer) {
                    if n == 0 {
                        break;
                    }
                    sink.lock().expect("output").push_str(&String::from_utf8_lossy(&buffer[..n]));
                }
            });
            Terminal { child, master, output }
        }

        pub fn type_in(&mut self, keys: &str) {
            self.master.write_all(keys.as_bytes()).expect("write to the terminal");
        }

        /// Everything the shell wrote so far.
        pub fn screen(&self) -> String {
            self.output.lock().expect("output").clone()
        }

        /// Waits until the screen has `count` occurrences of `text`; panics with the screen after 120 s.
        pub fn wait_for(&mut self, text: &str, count: usize) {
            let deadline = Instant::now() + Duration::from_secs(120);
            while self.screen().matches(text).count() < count {
                if let Ok(Some(status)) = self.child.try_wait() {
                    std::thread::sleep(Duration::from_millis(100)); // the rest of its output
                    panic!("the shell ended ({status:?}) before {text:?} (x{count}):\n{}", self.screen());
                }
                if Instant::now() > deadline {
                    super::stop(&mut self.child);
                    panic!("no {text:?} (x{count}) on the screen:\n{}", self.screen());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

#[cfg(unix)]
#[test]
fn in_a_terminal_ctrl_c_clears_the_line_or_cancels_the_query_and_ctrl_d_exits() {
    use std::time::{Duration, Instant};

    let dir = fixture();
    let mut term = terminal::Terminal::spawn(dir.path());
    term.wait_for("autoenc> ", 1);

    // Ctrl-C at the prompt drops the statement being typed: the next one runs alone (were the first
    // line kept, the two would make one statement and a syntax error).
    term.type_in("SELECT 1 AS unfinished\r");
    term.wait_for("...> ", 1);
    term.type_in("\x03");
    term.wait_for("autoenc> ", 2);
    term.type_in("SELECT 6 * 7 AS answer;\r");
    term.wait_for("\n42\r", 1);

    // Ctrl-C while a query runs cancels it and gives the prompt back.
    term.type_in(
        "SELECT sum(ae_score('sensors', v, v, v, v)) AS total \
         FROM (SELECT CAST(value AS DOUBLE) AS v FROM generate_series(1, 1000000000000));\r",
    );
    std::thread::sleep(Duration::from_millis(1500));
    term.type_in("\x03");
    term.wait_for("query cancelled", 1);
    term.type_in("SELECT 600 + 66 AS after;\r");
    term.wait_for("\n666\r", 1);

    // Ctrl-D at an empty prompt ends the session normally.
    term.type_in("\x04");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = term.child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            stop(&mut term.child);
            panic!("the shell did not exit on Ctrl-D:\n{}", term.screen());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let screen = term.screen();
    assert!(status.success(), "{status:?}\n{screen}");
    assert!(!screen.contains("error") && !screen.contains("panicked"), "{screen}");
}
