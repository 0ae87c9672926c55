//! The command line against inputs a hostile or careless user sends: outputs over inputs, a disk that
//! fills up, repeated or empty column names, sizes without bounds, empty labels, numbers beyond `f32`,
//! inputs larger than the input limit. Each gets a clear message, a non-zero exit, no panic, and loses
//! nothing that was there before.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{fails, fails_with, ok, p};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// 300 rows of three correlated columns and a label.
fn table(dir: &Path) -> PathBuf {
    let mut text = String::from("a,b,c,label\n");
    for i in 0..300 {
        let t = i as f32 / 30.0;
        text.push_str(&format!("{},{},{},{}\n", t.sin(), t.cos(), t.sin() + t.cos(), u8::from(i % 50 == 0)));
    }
    write(dir, "rows.csv", &text)
}

fn trained(dir: &Path) -> (PathBuf, PathBuf) {
    let csv = table(dir);
    let model = dir.join("m.ae");
    ok(&["train", p(&csv), "--exclude", "label", "--out", p(&model), "--epochs", "2", "--latent", "1"]);
    (csv, model)
}

#[test]
fn output_over_an_input_is_refused_and_the_input_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, model) = trained(dir.path());
    let before = std::fs::read(&csv).unwrap();
    for command in ["score", "encode", "reconstruct"] {
        let message = fails(&[command, p(&model), p(&csv), "--out", p(&csv)]);
        assert!(message.contains("is the input file"), "{command}: {message}");
        let dotted = dir.path().join(".").join("rows.csv");
        let message = fails(&[command, p(&model), p(&csv), "--out", p(&dotted)]);
        assert!(message.contains("is the input file"), "{command}: {message}");
        let message = fails(&[command, p(&model), p(&csv), "--out", p(&model)]);
        assert!(message.contains("is the model file"), "{command}: {message}");
    }
    assert_eq!(std::fs::read(&csv).unwrap(), before);
    assert!(autoenc::Autoencoder::load(&model).is_ok());
}

/// A disk that fills up mid-write, simulated with the file-size limit (`ulimit -f`; the signal it
/// raises is ignored so the write fails with an error instead): the old output stays whole, no
/// temporary file is left, and the message names the path.
#[test]
fn a_failed_write_keeps_the_old_output_and_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, model) = trained(dir.path());
    for (command, name) in [("score", "out.csv"), ("encode", "out.parquet"), ("reconstruct", "out.arrow")] {
        let out = dir.path().join(name);
        std::fs::write(&out, b"the previous output").unwrap();
        let script = format!(
            "trap '' XFSZ; ulimit -f 4; exec '{}' {command} '{}' '{}' --out '{}' --quiet",
            env!("CARGO_BIN_EXE_autoenc"),
            p(&model),
            p(&csv),
            p(&out)
        );
        let result = Command::new("bash").arg("-c").arg(&script).output().unwrap();
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(!result.status.success(), "{command}: the write should have failed");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(stderr.contains(p(&out)), "{command}: the message names the path: {stderr}");
        assert_eq!(std::fs::read(&out).unwrap(), b"the previous output", "{command}");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{command}: temporary files left: {leftovers:?}");
    }
}

#[test]
fn write_errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, model) = trained(dir.path());
    let missing = dir.path().join("no-such-directory").join("out.csv");
    for command in ["score", "encode", "reconstruct"] {
        let message = fails(&[command, p(&model), p(&csv), "--out", p(&missing)]);
        assert!(message.contains(p(&missing)), "{command}: {message}");
    }
    let message = fails(&["train", p(&csv), "--out", p(&dir.path().join("no-such-directory").join("m.ae"))]);
    assert!(message.contains("no-such-directory"), "{message}");
}

#[test]
fn repeated_or_empty_column_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut repeated = String::from("a,a,b\n");
    let mut unnamed = String::from(",,b\n");
    for i in 0..50 {
        repeated.push_str(&format!("{i},{},{}\n", i * 2, i % 7));
        unnamed.push_str(&format!("{i},{},{}\n", i * 2, i % 7));
    }
    let repeated = write(dir.path(), "repeated.csv", &repeated);
    let unnamed = write(dir.path(), "unnamed.csv", &unnamed);
    let out = dir.path().join("m.ae");
    let message = fails(&["train", p(&repeated), "--out", p(&out), "--epochs", "1", "--latent", "1"]);
    assert!(message.contains("more than once"), "{message}");
    let message = fails(&["train", p(&unnamed), "--out", p(&out), "--epochs", "1", "--latent", "1"]);
    assert!(message.contains("empty name") || message.contains("more than once"), "{message}");
    assert!(!out.exists());
}

#[test]
fn sizes_without_bounds_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, _) = trained(dir.path());
    let out = dir.path().join("big.ae");
    let message = fails(&["train", p(&csv), "--exclude", "label", "--out", p(&out), "--hidden", "100000000"]);
    assert!(message.contains("hidden layer size 100000000 is too large"), "{message}");
    let message =
        fails(&["train", p(&csv), "--exclude", "label", "--out", p(&out), "--latent", "18446744073709551615"]);
    assert!(message.contains("too large"), "{message}");

    let vae = dir.path().join("vae.ae");
    ok(&["train", p(&csv), "--exclude", "label", "--out", p(&vae), "--epochs", "1", "--variant", "variational"]);
    let message = fails(&["generate", p(&vae), "-n", "18446744073709551615"]);
    assert!(message.contains("rows to generate 18446744073709551615 is too large"), "{message}");
    let message = fails(&["generate", p(&vae), "-n", "-1"]);
    assert!(!message.is_empty());
}

/// Generation is written in blocks: a run larger than one block gives the rows the library gives in
/// one call.
#[test]
fn generation_streams_blocks_with_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, _) = trained(dir.path());
    let vae = dir.path().join("vae.ae");
    ok(&["train", p(&csv), "--exclude", "label", "--out", p(&vae), "--epochs", "1", "--variant", "variational"]);
    let rows = autoenc::limits::GENERATE_BLOCK_ROWS * 2 + 17;
    let out = dir.path().join("gen.parquet");
    ok(&["generate", p(&vae), "-n", &rows.to_string(), "--seed", "5", "--out", p(&out)]);
    let batch = autoenc::io::table::read_table(&out).unwrap();
    let (written, _) =
        autoenc::io::table::feature_matrix(&batch, &autoenc::io::table::FeatureSelection::AllNumericExcept(vec![]))
            .unwrap();
    let expected = autoenc::Autoencoder::load(&vae).unwrap().generate(rows, 5).unwrap();
    assert_eq!(written, expected);
    let stdout = ok(&["generate", p(&vae), "-n", "0"]);
    assert_eq!(stdout.trim(), "a,b,c", "zero rows still name the columns");
}

#[test]
fn empty_labels_are_refused_or_left_out_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, model) = trained(dir.path());
    let text = std::fs::read_to_string(&csv).unwrap();
    // Empty the label of rows 10 and 20.
    let gaps: String = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            if i == 11 || i == 21 {
                format!("{}\n", &line[..line.rfind(',').unwrap() + 1])
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    let gaps = write(dir.path(), "gaps.csv", &gaps);
    let message = fails(&["eval", p(&model), p(&gaps), "--label-column", "label"]);
    assert!(message.contains("empty in 2 of 300 rows (first at row 10)"), "{message}");
    let printed = ok(&["eval", p(&model), p(&gaps), "--label-column", "label", "--skip-unlabelled"]);
    assert!(printed.contains("rows              298"), "{printed}");
    assert!(printed.contains("left out          2 rows with an empty label"), "{printed}");
}

#[test]
fn numbers_beyond_f32_are_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("a,b\n");
    for i in 0..40 {
        text.push_str(&format!("{i},{}\n", if i == 7 { "1e308".to_string() } else { i.to_string() }));
    }
    let csv = write(dir.path(), "wide.csv", &text);
    let message = fails(&["train", p(&csv), "--out", p(&dir.path().join("m.ae")), "--latent", "1"]);
    assert!(message.contains("value 1e308 at row 7, feature 'b' is beyond the range of 32-bit floats"), "{message}");
    assert!(!message.contains("infinite value"), "{message}");
}

#[test]
fn inputs_beyond_the_input_limit_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, model) = trained(dir.path());
    let out = dir.path().join("out.csv");
    let message = fails_with(&["score", p(&model), p(&csv), "--out", p(&out)], &[("AUTOENC_MAX_INPUT_BYTES", "1000")]);
    assert!(message.contains("the input limit"), "{message}");
    let message = fails(&["score", "/dev/zero", p(&csv), "--out", p(&out)]);
    assert!(message.contains("not a safetensors container"), "{message}");
    assert!(!out.exists());
}
