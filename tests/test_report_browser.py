"""report.html opened in a real headless browser (Debian's chromium, driven by Selenium).

Checks what a reader would notice: every image decoded, no console errors, the main tables there.
Saves a full-page screenshot to ``test-artifacts/report.png`` (or ``$CTDISTILL_ARTIFACTS``). Needs
``chromium`` and ``chromedriver`` (Debian packages ``chromium chromium-driver``; ``.ci/run``
installs them). Without them the test is skipped with a loud reason, unless
``CTDISTILL_REQUIRE_BROWSER=1`` (set by CI), which turns the skip into a failure.
"""

import json
import os
import shutil
from pathlib import Path

import pytest

from ctdistill.report.tables import verdict_text

ARTIFACTS = Path(os.environ.get("CTDISTILL_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))


def _browser():
    chromium, driver = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    if not (chromium and driver):
        reason = ("BROWSER TEST NOT RUN: chromium/chromedriver not installed "
                  "(apt-get install chromium chromium-driver)")
        if os.environ.get("CTDISTILL_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1300,2000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(driver))


@pytest.mark.slow
def test_report_renders_in_a_headless_browser(finished_run):
    browser = _browser()  # before any training: without a browser, the skip (or CI's failure) comes at once
    out = finished_run[1]  # the shared tiny run (conftest)
    try:
        browser.get((out / "report.html").as_uri())
        widths = browser.execute_script("return Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)")
        tables = browser.execute_script("return Array.from(document.querySelectorAll('table[id]')).map(t => t.id)")
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(1300, height)  # the whole page, not the first screen
        browser.save_screenshot(str(ARTIFACTS / "report.png"))
        verdict = browser.execute_script("return document.getElementById('verdict').innerText")
    finally:
        browser.quit()
    assert len(widths) >= 5 and all(w > 0 for w in widths), widths
    assert not errors, errors
    assert {"run", "metrics", "per_class", "quantization_impact", "distillation_gain"} <= set(tables)
    first = verdict_text(json.loads((out / "verdict.json").read_text()))[0]
    assert first in verdict  # the verdict's first line (a deployment, or the refusal of a chance-level run)
