"""`autoenc report` renders in a real browser: the page the CLI writes for an ODDS set is opened in headless
Chromium (Debian's `chromium`, driven by Playwright), screenshotted, and checked for a non-blank picture,
no script errors, every named plot drawn, and no network use. AUTOENC_UPDATE_SCREENSHOT=1 also writes
the screenshot to tests/report/report.png, the picture in docs/reports.md.
Needs the `autoenc` binary ($AUTOENC_BIN or target/{release,debug}/autoenc) and Chromium
($AUTOENC_CHROMIUM, default /usr/bin/chromium; .ci/setup installs it)."""
import io
import os
import pathlib
import re
import subprocess

import numpy as np
import pytest

from test_model_file import ROOT, binary

# A missing package fails the run: it does not skip these tests.
from PIL import Image as PIL  # noqa: E402
from playwright import sync_api as playwright  # noqa: E402

ODDS = ROOT / "tests" / "data" / "odds"
CHROMIUM = os.environ.get("AUTOENC_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
ALL_PLOTS = ["loss-curve", "score-histogram", "score-comparison", "feature-errors", "latent-space"]


def run(*args):
    done = subprocess.run([binary(), *args, "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    data = ODDS / "cardio.csv"
    assert data.exists(), f"{data} is missing (a copy of two ODDS sets lives in tests/data/odds)"
    model = tmp / "cardio.ae"
    run("train", str(data), "--exclude", "label", "--epochs", "15", "--validation-fraction", "0.2",
        "--seed", "1", "--out", str(model))
    with_data, model_only = tmp / "with_data.html", tmp / "model_only.html"
    run("report", str(model), str(data), "--out", str(with_data), "--max-flagged", "20")
    run("report", str(model), "--out", str(model_only))
    return with_data, model_only


@pytest.fixture(scope="module")
def browser():
    if not pathlib.Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's `chromium` (.ci/setup does)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield browser
        browser.close()


def open_page(browser, path):
    """Loads the report with every network request refused and recorded; returns page, errors, requests."""
    page = browser.new_page(viewport={"width": 900, "height": 1200})
    errors, requests = [], []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    def refuse(route):
        if not route.request.url.startswith("file://"):
            requests.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.route("**/*", refuse)
    page.goto(path.as_uri(), wait_until="load")
    return page, errors, requests


def drawn_elements(page, figure_id):
    return page.evaluate(
        """id => { const f = document.getElementById(id); if (!f) return -1;
                   const svg = f.querySelector('svg'); if (!svg) return -2;
                   const box = svg.getBoundingClientRect(); if (box.width < 100 || box.height < 100) return -3;
                   return svg.querySelectorAll('rect, circle, polyline, path, line, text').length; }""",
        figure_id,
    )


def test_the_report_with_data_renders_every_plot_without_errors(reports, browser):
    with_data, _ = reports
    page, errors, requests = open_page(browser, with_data)
    assert errors == [], f"script errors: {errors}"
    assert requests == [], f"the page fetched {requests}"
    for figure in ALL_PLOTS:
        # Axes, labels and the series: a drawn plot has far more than a handful of elements.
        assert drawn_elements(page, figure) > 20, figure
    shot = page.screenshot(full_page=True)
    if os.environ.get("AUTOENC_UPDATE_SCREENSHOT"):
        target = ROOT / "tests" / "report" / "report.png"
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(shot)
    image = np.asarray(PIL.open(io.BytesIO(shot)).convert("RGB")).astype(int)
    not_white = (image.sum(axis=2) < 3 * 245).mean()
    colours = len(np.unique(image.reshape(-1, 3)[::7], axis=0))
    assert image.shape[0] > 2000, "the whole page, five plots tall"
    assert not_white > 0.03, f"the screenshot is almost blank ({not_white:.3%} non-white)"
    assert colours > 50, f"only {colours} colours: the plots are not drawn"
    page.close()


def test_the_flagged_rows_table_lists_the_top_scores_with_features(reports, browser):
    with_data, _ = reports
    page, _, _ = open_page(browser, with_data)
    rows = page.evaluate(
        "() => [...document.querySelectorAll('#flagged-rows tr')].slice(1).map(r => [...r.cells].map(c => c.textContent))"
    )
    assert 0 < len(rows) <= 20
    scores = [float(r[1]) for r in rows]
    assert scores == sorted(scores, reverse=True), "highest scores first"
    header = ",".join(f"f{j}" for j in range(21))
    for row in rows:
        features = re.findall(r"(f\d+) \(([0-9.]+)\)", row[3])
        assert len(features) == 3, row
        assert all(name in header.split(",") for name, _ in features)
        errors = [float(e) for _, e in features]
        assert errors == sorted(errors, reverse=True), row
    page.close()


def test_the_report_without_data_shows_the_training_plots_only(reports, browser):
    _, model_only = reports
    page, errors, requests = open_page(browser, model_only)
    assert errors == [] and requests == []
    assert drawn_elements(page, "loss-curve") > 20
    assert drawn_elements(page, "score-histogram") > 20
    for figure in ALL_PLOTS[2:]:
        assert drawn_elements(page, figure) == -1, f"{figure} needs data"
    page.close()


def test_the_html_is_self_contained(reports):
    with_data, _ = reports
    html = with_data.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "no external resources"
    assert "<script" not in html
    for figure in ALL_PLOTS:
        assert f'<figure id="{figure}">' in html


def test_a_report_on_data_of_the_wrong_shape_fails_clearly(reports, tmp_path):
    model = reports[0].parent / "cardio.ae"
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    done = subprocess.run([binary(), "report", str(model), str(bad), "--out", str(tmp_path / "r.html")],
                          capture_output=True, text=True)
    assert done.returncode != 0
    assert "f0" in done.stderr or "not found" in done.stderr, done.stderr
    assert not (tmp_path / "r.html").exists()
