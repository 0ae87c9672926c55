#!/usr/bin/env python3
"""Mixed-table detection side by side: autoenc on the raw columns, autoenc on the same rows one-hot
encoded by hand, and scikit-learn's IsolationForest on those one-hot rows.

Runs `examples/mixed_detection.rs` (which trains both autoenc models and writes each one-hot table and
its results to a directory), then IsolationForest (200 trees, five seeds, mean) on every table, and
prints one table of ROC-AUC per draw and the means per data set.

    python benches/mixed_detection.py [--example-binary PATH]

Needs numpy and scikit-learn (.ci/requirements-bench.txt). Without --example-binary it builds and runs
the example with `cargo run --release`.
"""
import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parent.parent


def load(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    values = np.array([[float(v) if v else np.nan for v in row[:-1]] for row in body])
    labels = np.array([int(row[-1]) for row in body])
    # IsolationForest takes no missing values: fill with the column mean (only penguin measurements miss).
    means = np.nanmean(values, axis=0)
    values = np.where(np.isnan(values), means, values)
    return header[:-1], values, labels


def isolation_forest_auc(values, labels):
    aucs = []
    for seed in range(5):
        forest = IsolationForest(n_estimators=200, random_state=seed).fit(values)
        aucs.append(roc_auc_score(labels, -forest.score_samples(values)))
    return float(np.mean(aucs))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--example-binary", help="a built mixed_detection example (else cargo run --release)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        command = [args.example_binary] if args.example_binary else [
            "cargo", "run", "--release", "--quiet", "--example", "mixed_detection", "--"]
        subprocess.run(command + [out], check=True, cwd=ROOT, stdout=sys.stderr)
        results = json.loads((Path(out) / "results.json").read_text())
        rows = []
        for draw, scores in results.items():
            _, values, labels = load(Path(out) / f"{draw}.csv")
            rows.append((draw, scores["autoenc_mixed"], scores["autoenc_one_hot"], isolation_forest_auc(values, labels)))
    print("| draw | autoenc, raw mixed columns | autoenc, one-hot by hand | IsolationForest, one-hot |")
    print("|---|---|---|---|")
    for draw, mixed, one_hot, forest in rows:
        print(f"| {draw} | {mixed:.4f} | {one_hot:.4f} | {forest:.4f} |")
    for data_set in sorted({draw.rsplit("_", 1)[0] for draw, *_ in rows}):
        picked = [r for r in rows if r[0].rsplit("_", 1)[0] == data_set]
        means = [np.mean([r[k] for r in picked]) for k in (1, 2, 3)]
        print(f"| **{data_set} (mean of {len(picked)})** | **{means[0]:.4f}** | **{means[1]:.4f}** | **{means[2]:.4f}** |")


if __name__ == "__main__":
    main()
