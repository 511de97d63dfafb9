"""The HTML reports in a real browser (headless Chromium through Selenium): study reports (one
seed and two) and a search report, English and Spanish, read as a reader sees them: no raw
Markdown left in the text, every image loaded, no console errors, a viewport that fits a
phone. A full-page screenshot of each is kept in test-artifacts/browser/
(MNISTLAB_TEST_ARTIFACTS moves it).

Chromium and its driver come from the system (Debian: apt install chromium chromium-driver;
.ci/run installs them); where there is none the tests skip and say so.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (the dev extra) is "
                                "not installed")

from mnistlab import StudyOptions, TuneOptions  # noqa: E402
from mnistlab.api import run_study, run_tune  # noqa: E402

ARTIFACTS = Path(os.environ.get("MNISTLAB_TEST_ARTIFACTS", "test-artifacts")) / "browser"
PHONE_WIDTH = 390  # CSS pixels, a common phone
RAW_MARKDOWN = re.compile(r"\*\*|(^|\s)\*\S|`|\]\(|^#+ ", re.MULTILINE)


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not (chromium and driver_path):
        pytest.skip("no headless browser here: install chromium and chromium-driver "
                    "(apt install chromium chromium-driver) to run the browser tests")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--hide-scrollbars", "--force-device-scale-factor=1"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def reports(quick_fashion_study, study_reference, tmp_path_factory, tiny_space):
    """{(kind, lang): report.html} for the quick Fashion-MNIST study (one seed), the tiny
    study (two seeds: intervals and noise marks) and a tiny search. The studies are finished
    already (session fixtures): here only their reports are written, once per language."""
    tiny = study_reference("2").parent
    pages = {}
    for lang in ("en", "es"):
        for kind, source, folder, options in (
                ("study", "fashion-hparams", quick_fashion_study,
                 StudyOptions(quick=True, seeds=1, workers=1, lang=lang)),
                ("seeds", str(tiny.parent / "tiny.toml"), tiny,
                 StudyOptions(workers=1, lang=lang))):
            study = tmp_path_factory.mktemp(f"{kind}-{lang}") / "study"
            shutil.copytree(folder, study)
            run_study(source, study, options=options)
            pages[kind, lang] = study / "report.html"
    tune = tmp_path_factory.mktemp("tune") / "tune"
    for lang in ("en", "es"):  # the second run finds the search finished: a report in es
        run_tune(str(tiny_space), tune, options=TuneOptions(trials=4, retrain_seeds=1,
                                                           lang=lang))
        page = tune.parent / f"report-{lang}.html"  # self-contained: it reads well anywhere
        shutil.copy(tune / "report.html", page)
        pages["tune", lang] = page
    return pages


@pytest.fixture(scope="module")
def tiny_space(tmp_path_factory) -> Path:
    from conftest import make_dataset_folder
    from test_tune import SPACE_TOML

    folder = tmp_path_factory.mktemp("tiny-space")
    data = make_dataset_folder(folder / "data", 400, 100)
    path = folder / "space.toml"
    path.write_text(SPACE_TOML.format(data=data))
    return path


def _open(driver, page: Path, width: int) -> None:
    driver.set_window_size(width, 900)
    driver.get(page.resolve().as_uri())
    driver.get_log("browser")  # drop anything logged before this page


PAGES = [(kind, lang) for kind in ("study", "seeds", "tune") for lang in ("en", "es")]


@pytest.mark.parametrize(("kind", "lang"), PAGES)
def test_report_reads_right_in_a_browser(browser, reports, kind, lang):
    page = reports[kind, lang]
    _open(browser, page, 1280)
    state = browser.execute_script("""
        const imgs = [...document.images];
        return {lang: document.documentElement.lang,
                viewport: document.querySelector('meta[name=viewport]')?.content ?? null,
                text: document.body.innerText,
                images: imgs.length,
                broken: imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt),
                height: document.documentElement.scrollHeight};""")
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert state["lang"] == lang
    assert state["viewport"] == "width=device-width, initial-scale=1"
    assert state["images"] >= 4 and state["broken"] == []
    assert errors == []
    leftover = [m.group(0) for m in RAW_MARKDOWN.finditer(state["text"])]
    assert leftover == [], f"raw Markdown in the rendered text: {leftover[:5]}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.set_window_size(1280, min(state["height"] + 200, 16000))
    assert browser.save_screenshot(str(ARTIFACTS / f"{kind}-{lang}.png"))


@pytest.mark.parametrize(("kind", "lang"), [("study", "es"), ("tune", "en")])
def test_report_fits_a_phone(browser, reports, kind, lang):
    # the viewport meta makes the page as wide as the phone; images shrink and wide tables
    # scroll inside their own box, so the page itself never scrolls sideways
    _open(browser, reports[kind, lang], PHONE_WIDTH)
    widths = browser.execute_script("""
        const widths = [...document.images].map(i => i.getBoundingClientRect().width);
        return {page: document.documentElement.scrollWidth, view: window.innerWidth,
                image: Math.max(...widths)};""")
    assert widths["page"] <= widths["view"] + 1
    assert widths["image"] <= widths["view"]
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(PHONE_WIDTH, min(height + 200, 16000))
    assert browser.save_screenshot(str(ARTIFACTS / f"{kind}-{lang}-phone.png"))


def test_long_settings_fit_a_phone_and_a_settings_column_keeps_room(browser, tmp_path):
    """Hunt: an augment text and a long --out path, unbroken, made a phone's page 555 px wide
    for its 375; a search's settings column shrank to a strip 20 lines tall while the table
    scrolled anyway; the page's title showed its Markdown raw."""
    from mnistlab.report.document import Bullets, Document, Paragraph, Table, to_html

    long = "rotate=10,scale=0.1,shift=0.1,erase=0.5,flip=0.5"
    doc = Document("A *study* of `augment`", origin=f"Made with `mnistlab study x.toml --out "
                                                    f"/home/alice/experiments/{'m' * 40}`")
    doc.add(Paragraph(f"Evidence (augment={long}, seed 0)."), Bullets([f"augment={long}"]),
            Table(["trial", "state", "val", "epochs", "seconds", "settings"],
                  [[str(n), "complete", "88.1", "3", "12.4",
                    f"optimizer=adam lr=0.00643 dropout=0.272 hidden=512-256 augment={long}"]
                   for n in range(3)], align="llrrrl"))
    page = tmp_path / "report.html"
    page.write_text(to_html(doc, tmp_path), encoding="utf-8")
    _open(browser, page, PHONE_WIDTH)
    seen = browser.execute_script("""
        const prose = document.querySelector('td.prose');
        return {page: document.documentElement.scrollWidth, view: window.innerWidth,
                column: prose.getBoundingClientRect().width,
                title: document.querySelector('h1').innerHTML};""")
    assert seen["page"] <= seen["view"] + 1
    assert seen["column"] >= 200  # 16rem: read across, the table scrolling in its box
    assert seen["title"] == "A <em>study</em> of <code>augment</code>"
