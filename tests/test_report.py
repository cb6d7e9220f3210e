"""The HTML report and the Markdown summary, rendered from real results; checked in Chromium."""

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lossfuzz.harness import campaign
from lossfuzz.harness.results import Results
from lossfuzz.reports import browser as chromium
from lossfuzz.reports.markdown import markdown
from lossfuzz.reports.render import html

ROOT = Path(__file__).resolve().parent.parent
EVIL = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


@pytest.fixture(scope="module")
def results():
    sel = campaign.select(
        impls=(
            "naive:sigmoid_then_log",
            "torch:binary_cross_entropy",
            "keras:binary_crossentropy",
            "tf:softmax_cross_entropy_with_logits",
        ),
        dtypes=("float16", "float32"),
    )
    return campaign.run(sel, budget=3, seed=0).to_json()


@pytest.fixture(scope="module")
def evil_results(results):
    """The same results with markup in every string an impl, input or exception can supply."""
    data = copy.deepcopy(results)
    f = data["findings"][0]
    f["message"] = EVIL + f["message"]
    f["error"] = EVIL
    f["reproducer"] = EVIL + "\n" + f["reproducer"]
    f["documented"] = EVIL
    data["skipped"] = [{"impl": "evil:" + EVIL, "reason": EVIL}]
    return data


def test_html_is_self_contained(results):
    page = html(Results.from_json(results))
    assert page.startswith("<!DOCTYPE html>")
    # documentation addresses appear as text; nothing is loaded or linked from a network
    assert "<link" not in page and "@import" not in page
    # SVG clip paths use url(#id); anything else in url() would be fetched
    assert not re.findall(r"url\(\s*['\"]?(?!#)", page)
    fetched = re.findall(r"""(?:src|href|action|srcset)\s*=\s*["']?\s*(?:https?:)?//""", page)
    assert not fetched
    assert "<svg" in page and "<style>" in page and "<script>" in page


def test_every_string_from_an_impl_or_input_is_escaped(evil_results):
    page = html(Results.from_json(evil_results), plots=False)
    assert EVIL not in page
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in page


def test_markdown_summary_is_short_and_names_the_worst_cells(results):
    text = markdown(Results.from_json(results))
    assert text.startswith("## lossfuzz")
    assert "naive:sigmoid_then_log" in text
    assert "| cell | finite inputs | max ULP | special values | example |" in text
    assert len(text.splitlines()) < 40


def test_markdown_of_a_clean_run_says_so(results):
    clean = copy.deepcopy(results)
    clean["findings"] = []
    for c in clean["cells"]:
        c["counts"], c["worst_class"] = {"exact": c["cases"]}, "exact"
        for tally in ("finite", "special"):
            c[tally]["counts"] = {"exact": c[tally]["cases"]} if c[tally]["cases"] else {}
    assert "Every cell is within its ULP tolerance." in markdown(Results.from_json(clean))


def test_report_command_writes_html_and_prints_the_path(results, tmp_path):
    src, out = tmp_path / "r.json", tmp_path / "report.html"
    src.write_text(json.dumps(results))
    r = subprocess.run(
        [sys.executable, "-m", "lossfuzz", "report", str(src), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(out) and out.read_text().startswith("<!DOCTYPE html>")
    md = subprocess.run(
        [sys.executable, "-m", "lossfuzz", "report", str(src), "--format", "markdown"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert md.returncode == 0 and md.stdout.startswith("## lossfuzz")


@pytest.mark.parametrize(
    "content,message", [("{", "not valid JSON"), ('{"schema": "x"}', "schema 'x'")]
)
def test_report_of_a_bad_file_is_one_line_and_exit_2(content, message, tmp_path):
    src = tmp_path / "r.json"
    src.write_text(content)
    r = subprocess.run(
        [sys.executable, "-m", "lossfuzz", "report", str(src), "-o", str(tmp_path / "o.html")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o.html").exists()


# ------------------------------------------------------------------ in a real browser


def _browser():
    if not chromium.available():
        if os.environ.get("CI"):
            pytest.fail("CI must have chromium and chromedriver: .ci/run installs them")
        pytest.skip("chromium and chromedriver not installed (make browser installs them)")
    return chromium.start()


@pytest.fixture(scope="module")
def browser():
    b = _browser()
    yield b
    b.quit()


def _open(browser, page: str, path: Path):
    path.write_text(page)
    browser.get(path.as_uri())
    return browser


@pytest.mark.browser
def test_report_renders_in_chromium_without_console_errors(browser, results, tmp_path):
    from selenium.webdriver.common.by import By

    b = _open(browser, html(Results.from_json(results)), tmp_path / "report.html")
    errors = [e for e in b.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    cells = b.find_elements(By.CSS_SELECTOR, "#matrix td.cell:not(.none)")
    assert len(cells) == len(results["cells"])
    assert b.find_elements(By.CSS_SELECTOR, ".plot svg") == []  # inert until opened
    cells[0].find_element(By.TAG_NAME, "a").click()  # a matrix cell opens its details
    assert len(b.find_elements(By.CSS_SELECTOR, ".plot svg")) == 1
    b.find_element(By.ID, "open-findings").click()
    unexpected = b.find_elements(By.CSS_SELECTOR, "details.cell-detail.unexpected")
    assert unexpected and all(d.get_attribute("open") is not None for d in unexpected)
    assert len(b.find_elements(By.CSS_SELECTOR, ".plot svg")) >= len(unexpected)
    out = ROOT / "out"
    out.mkdir(exist_ok=True)
    b.save_screenshot(str(out / "report-screenshot.png"))


@pytest.mark.browser
def test_filters_hide_other_frameworks_dtypes_and_classes(browser, results, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    b = _open(browser, html(Results.from_json(results), plots=False), tmp_path / "report.html")
    visible = lambda sel: [e for e in b.find_elements(By.CSS_SELECTOR, sel) if e.is_displayed()]  # noqa: E731
    Select(b.find_element(By.ID, "f-backend")).select_by_visible_text("torch")
    rows = visible("#matrix tbody tr")
    assert rows and all(r.get_attribute("data-backend") == "torch" for r in rows)
    # torch:binary_cross_entropy: its values, its gradient with respect to the
    # probabilities, and its mean and sum over two batch sizes
    assert "6 of 22 rows shown" in b.find_element(By.ID, "shown").text
    Select(b.find_element(By.ID, "f-quantity")).select_by_visible_text("reductions")
    # the matrix is sorted worst first, so compare the set of rows shown
    assert sorted(r.get_attribute("data-of") for r in visible("#matrix tbody tr")) == [
        "mean of 1000",
        "mean of 1000000",
        "sum of 1000",
        "sum of 1000000",
    ]
    Select(b.find_element(By.ID, "f-quantity")).select_by_visible_text("gradients")
    rows = visible("#matrix tbody tr")
    assert [r.get_attribute("data-of") for r in rows] == ["d/dprobs"]
    assert all(d.get_attribute("data-quantity") == "grad" for d in visible("details.cell-detail"))
    Select(b.find_element(By.ID, "f-quantity")).select_by_visible_text("values")
    assert [r.get_attribute("data-of") for r in visible("#matrix tbody tr")] == ["value"]
    Select(b.find_element(By.ID, "f-quantity")).select_by_visible_text("all")
    Select(b.find_element(By.ID, "f-backend")).select_by_visible_text("all")
    Select(b.find_element(By.ID, "f-dtype")).select_by_visible_text("float16")
    assert {e.get_attribute("data-dtype") for e in visible("#matrix td.cell")} == {"float16"}
    Select(b.find_element(By.ID, "f-dtype")).select_by_visible_text("all")
    Select(b.find_element(By.ID, "f-class")).select_by_visible_text("nan")
    for r in visible("#matrix tbody tr"):
        assert "nan" in [
            td.get_attribute("data-class") for td in r.find_elements(By.CSS_SELECTOR, "td.cell")
        ]
    assert all(d.get_attribute("data-class") == "nan" for d in visible("details.cell-detail"))


@pytest.mark.browser
def test_clicking_a_dtype_header_sorts_by_its_max_ulp(browser, results, tmp_path):
    from selenium.webdriver.common.by import By

    b = _open(browser, html(Results.from_json(results), plots=False), tmp_path / "report.html")
    b.find_element(By.CSS_SELECTOR, 'th[data-sort="float32"]').click()
    values = [
        float(td.get_attribute("data-ulp"))
        for td in b.find_elements(By.CSS_SELECTOR, '#matrix tbody td.cell[data-dtype="float32"]')
    ]
    assert values == sorted(values, reverse=True)


@pytest.mark.browser
def test_injected_markup_never_runs(browser, evil_results, tmp_path):
    b = _open(browser, html(Results.from_json(evil_results), plots=False), tmp_path / "report.html")
    from selenium.webdriver.support.ui import WebDriverWait

    b.execute_script("document.querySelectorAll('details').forEach(d => { d.open = true; })")
    WebDriverWait(b, 10).until(
        lambda d: d.execute_script("return !document.querySelector('details > template')")
    )
    assert b.execute_script("return window.__pwned === undefined")
    assert EVIL in b.page_source.replace("&lt;", "<").replace("&gt;", ">").replace(
        "&amp;", "&"
    ).replace("&quot;", '"')


@pytest.mark.browser
def test_matrix_is_worst_first_and_the_plots_are_legible(browser, results, tmp_path):
    """Unsorted, the matrix lists rows by their worst cell (finite-input class, then its
    ULP error); an opened plot is at least 600 px wide with text of 11 px or more, its
    legend beside the data and its threshold labels apart."""
    from selenium.webdriver.common.by import By

    from lossfuzz.reports.model import SEVERITY

    b = _open(browser, html(Results.from_json(results)), tmp_path / "report.html")
    keys = []
    for row in b.find_elements(By.CSS_SELECTOR, "#matrix tbody tr"):
        tds = row.find_elements(By.CSS_SELECTOR, "td.cell:not(.none)")
        keys.append(
            max(
                (SEVERITY[td.get_attribute("data-class")], float(td.get_attribute("data-ulp")))
                for td in tds
            )
        )
    assert len(keys) > 5
    assert keys == sorted(keys, reverse=True)
    assert keys[0][0] > keys[-1][0]  # the order is visible, not a tie
    b.find_elements(By.CSS_SELECTOR, "#matrix td.cell:not(.none)")[0].find_element(
        By.TAG_NAME, "a"
    ).click()
    geometry = b.execute_script(
        """
        const svg = document.querySelector('.plot svg');
        const box = e => { const r = e.getBoundingClientRect();
          return [r.left, r.top, r.right, r.bottom]; };
        return {
          svg: box(svg),
          fonts: [...svg.querySelectorAll('text')].map(t =>
            parseFloat(getComputedStyle(t).fontSize) * svg.getScreenCTM().a),
          area: box(svg.querySelector('.plot-area')),
          legend: box(svg.querySelector('.legend')),
          thresholds: [...svg.querySelectorAll('text.threshold')].map(box),
        };
        """
    )
    left, top, right, bottom = geometry["svg"]
    assert right - left >= 600
    assert geometry["fonts"] and min(geometry["fonts"]) >= 11
    area, legend = geometry["area"], geometry["legend"]
    assert legend[0] >= area[2] or legend[1] >= area[3]  # beside or below, never over

    def overlap(a, b):
        return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]

    labels = geometry["thresholds"]
    assert not any(overlap(a, c) for i, a in enumerate(labels) for c in labels[i + 1 :])
    out = ROOT / "out"
    out.mkdir(exist_ok=True)
    b.save_screenshot(str(out / "report-plot-screenshot.png"))
