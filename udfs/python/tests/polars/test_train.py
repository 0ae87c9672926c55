"""`train` from eager and lazy frames, `Model` save/load/info/report, and that the GIL is released."""

import pickle
import threading
import time

import polars as pl
import pytest

import autoenc.polars as pae
from frames import D, FEATURES, frame, rows


def test_eager_lazy_columns_and_array_train_the_same_model(df):
    settings = dict(epochs=3, latent=2, seed=7, record_timings=False)
    eager = pae.train(df, features=FEATURES, **settings)
    lazy = pae.train(df.lazy(), features=FEATURES, **settings)
    array = pae.train(df, features="x", **settings)
    assert eager.to_bytes() == lazy.to_bytes()
    assert array.feature_names == [f"x[{j}]" for j in range(D)]
    scores = df.select(e=pae.score(eager, "x"), a=pae.score(array, "x"))
    assert scores["e"].to_list() == scores["a"].to_list()


def test_default_features_are_the_numeric_and_categorical_columns(df):
    # As the CLI picks them: numbers, and text or booleans as categorical features; nothing else.
    labelled = df.select(FEATURES).with_columns(name=pl.lit("a"), when=pl.lit(None, dtype=pl.Date))
    model = pae.train(labelled, epochs=2, seed=0)
    assert model.feature_names == [*FEATURES, "name"]
    assert model.info()["feature_kinds"][-1]["kind"] == "categorical"


def test_params_reach_the_model(df):
    model = pae.train(
        df, features=FEATURES, epochs=4, latent=3, hidden=[8], variant="plain", contamination=0.05, seed=2
    )
    info = model.info()
    assert info["params"]["epochs"] == 4
    assert info["params"]["variant"] == {"kind": "plain"}
    assert info["params"]["contamination"] == 0.05
    assert model.latent_size == 3 and info["architecture"]["latent"] == 3
    assert info["feature_names"] == FEATURES
    flags = df.select(pae.is_anomaly(model, "x")).to_series()
    assert 0.01 < flags.mean() < 0.12


def test_report_is_a_dataframe_with_one_row_per_epoch(df):
    model = pae.train(df, features=FEATURES, epochs=6, seed=3)
    report = model.report
    assert isinstance(report, pl.DataFrame)
    assert report["epoch"].to_list() == [1, 2, 3, 4, 5, 6]
    assert all(0 < r <= df.height for r in report["rows"].to_list())
    assert report["loss"].min() > 0 and report["loss"][-1] < report["loss"][0]
    assert report["duration_ms"].null_count() == 0


def test_save_load_and_bytes_round_trip(model, tmp_path, df):
    path = tmp_path / "saved.ae"
    model.save(path)
    again = pae.Model.load(path)
    assert again.to_bytes() == model.to_bytes() == path.read_bytes()
    assert pickle.loads(pickle.dumps(model)).to_bytes() == model.to_bytes()
    assert "features" in repr(again) and str(model.latent_size) in repr(again)
    out = df.select(a=pae.score(again, "x"), b=pae.score(path, "x"))
    assert out["a"].to_list() == out["b"].to_list()
    with pytest.raises(FileNotFoundError):
        pae.Model.load(tmp_path / "missing.ae")
    (tmp_path / "bad.ae").write_bytes(b"not a model")
    with pytest.raises(pl.exceptions.ComputeError):
        pae.Model.load(tmp_path / "bad.ae")


def test_training_errors(df):
    with pytest.raises(pl.exceptions.ComputeError, match="'day' has type Date"):
        pae.train(df.with_columns(day=pl.lit(None, dtype=pl.Date)), features=["f0", "day"])
    with pytest.raises(pl.exceptions.ColumnNotFoundError):
        pae.train(df, features=["f0", "nope"])
    with pytest.raises(pl.exceptions.ComputeError, match="unknown option 'epoch'"):
        pae.train(df, features=FEATURES, epoch=3)
    with pytest.raises(pl.exceptions.ComputeError, match="contamination"):
        pae.train(df, features=FEATURES, contamination=0.9)
    with pytest.raises(pl.exceptions.ComputeError, match="empty input"):
        pae.train(df.head(0), features=FEATURES)
    with pytest.raises(TypeError):
        pae.train({"f0": [1.0]}, features=["f0"])


def test_nulls_in_training_data_are_missing_values(df):
    holes = df.with_columns(f1=pl.when(pl.int_range(pl.len()) % 10 == 0).then(None).otherwise(pl.col("f1")))
    model = pae.train(holes, features=FEATURES, epochs=2, seed=0)
    scores = holes.select(pae.score(model, *FEATURES)).to_series()
    assert scores.null_count() == 0 and scores.is_finite().all()


def test_training_and_scoring_release_the_gil():
    big = frame(rows(20000, 5))
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    thread = threading.Thread(target=ticker)
    thread.start()
    try:
        start = time.perf_counter()
        model = pae.train(big, features=FEATURES, epochs=100, seed=0)
        big.select(pae.score(model, "x"))
        end = time.perf_counter()
    finally:
        stop.set()
        thread.join()
    during = [t for t in ticks if start < t < end]
    # With the GIL held through the fit, the ticker would stall for the whole call.
    assert end - start > 0.05
    assert len(during) > 10, (len(during), end - start)
