//! End-to-end tests of the `autoenc-sql` binary: `-c`, `-f`, piped input with history, `COPY ... TO`,
//! files queried by path, and errors (clear message, non-zero exit, no panic).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use arrow::array::{AsArray, Float64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Float64Type, Schema};
use autoenc::Autoencoder;

const SHELL: &str = env!("CARGO_BIN_EXE_autoenc-sql");

/// A model directory with `sensors.ae` (features s0..s3) and a CSV of rows to score.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = autoenc::synthetic::sensor_stream(300, 4, 300, 0.0, 5);
    let names: Vec<String> = (0..4).map(|j| format!("s{j}")).collect();
    let model = Autoencoder::params()
        .seed(1)
        .epochs(3)
        .record_timings(false)
        .check()
        .and_then(|p| p.fit_with(data.rows.view(), names.clone(), &mut |_| {}))
        .expect("model trains");
    std::fs::create_dir(dir.path().join("models")).expect("models directory");
    model.save(dir.path().join("models/sensors.ae")).expect("save model");
    let columns = (0..4)
        .map(|j| Arc::new(Float64Array::from_iter_values(data.rows.column(j).iter().map(|&v| f64::from(v)))) as _)
        .collect();
    let fields: Vec<Field> = names.iter().map(|n| Field::new(n, DataType::Float64, false)).collect();
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("batch");
    let file = std::fs::File::create(dir.path().join("rows.csv")).expect("csv");
    let mut writer = arrow::csv::WriterBuilder::new().with_header(true).build(file);
    writer.write(&batch).expect("write csv");
    dir
}

fn shell(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(SHELL)
        .current_dir(dir)
        .arg("--models")
        .arg(dir.join("models"))
        .args(args)
        .env("AUTOENC_SQL_HISTORY", dir.join("history"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("autoenc-sql starts");
    if let Some(text) = stdin {
        child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("autoenc-sql ends")
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
