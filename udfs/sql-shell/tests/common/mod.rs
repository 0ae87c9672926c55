//! What the shell's test files share: a model directory with a small trained model and rows to score,
//! and running the shell binary in it.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use arrow::array::{Float64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use autoenc::Autoencoder;

pub const SHELL: &str = env!("CARGO_BIN_EXE_autoenc-sql");

/// A model directory with `sensors.ae` (features s0..s3) and `rows.csv`, 300 rows to score.
pub fn fixture() -> tempfile::TempDir {
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

/// Runs `autoenc-sql --models <dir>/models ARGS` in `dir`, with `stdin` piped in, to its end.
pub fn shell<S: AsRef<std::ffi::OsStr>>(dir: &Path, args: &[S], stdin: Option<&str>) -> Output {
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
