#!/usr/bin/env python3
"""Rebuilds penguins.csv from the PyPI wheel it ships in (standard library only).

    pip download --no-deps -d /tmp/wheels palmerpenguins==0.1.6
    python3 tests/data/mixed/make_penguins.py /tmp/wheels > tests/data/mixed/penguins.csv

The wheel's `palmerpenguins/data/penguins.csv` with its class column `species` renamed `label` and moved
last, and R's `NA` written as an empty field (a missing value); nothing else changes.
"""
import csv
import glob
import io
import os
import sys
import zipfile

wheel = sorted(glob.glob(os.path.join(sys.argv[1] if len(sys.argv) > 1 else "/tmp/wheels", "palmerpenguins-*.whl")))[-1]
with zipfile.ZipFile(wheel) as archive:
    rows = list(csv.reader(io.StringIO(archive.read("palmerpenguins/data/penguins.csv").decode("utf-8"))))
header, body = rows[0], [row for row in rows[1:] if row]
label = header.index("species")
out = csv.writer(sys.stdout, lineterminator="\n")
out.writerow(header[:label] + header[label + 1:] + ["label"])
for row in body:
    row = ["" if value == "NA" else value for value in row]
    out.writerow(row[:label] + row[label + 1:] + [row[label]])
