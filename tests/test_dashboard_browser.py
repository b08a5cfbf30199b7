"""The dashboard in a real headless Chromium (Debian's `chromium` and `chromium-driver`, which
`.ci/run` installs): against the ledger of an organization started with `vsm up`, the page loads
with no console errors and no request to anywhere but the dashboard, shows the champion's node
count, and a directive sent meanwhile (`vsm send`) appears without a reload. A screenshot is
saved as a test artifact (its path is printed)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from test_live_cli import live_dir, organization_pids, vsm  # noqa: F401  (live_dir is a fixture)

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
    pytest.skip(f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}); .ci/run installs them",
                allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

GENOMES = Path(__file__).resolve().parent.parent / "genomes"
WAIT = 60  # seconds: a shared 2-core machine can be slow, and each wait ends as soon as it holds


def start_dashboard(ledger: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "vsm_actors", "dashboard", "--ledger", str(ledger), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    url = proc.stdout.readline().strip()  # printed once the ledger is read and the port bound
    if not re.fullmatch(r"http://127\.0\.0\.1:\d+/", url):
        proc.kill()
        raise AssertionError(f"no URL from vsm dashboard: {url!r} {proc.communicate(timeout=30)[1]}")
    return proc, url


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def chromium() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1400", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def requested_urls(driver: webdriver.Chrome) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def test_the_page_follows_a_running_organization(live_dir, tmp_path_factory):  # noqa: F811
    up = vsm(live_dir, "up", str(GENOMES / "two_level.yaml"))
    assert "5 nodes" in up.stdout, up.stdout
    assert len(organization_pids(live_dir)) >= 2
    vsm(live_dir, "send", "Add a health check")
    artifacts = tmp_path_factory.mktemp("artifacts")
    dashboard, url = start_dashboard(live_dir / "vsm-ledger.sqlite")
    driver = None
    try:
        driver = chromium()
        driver.get(url)
        wait = WebDriverWait(driver, WAIT)
        wait.until(lambda d: d.execute_script("return document.body.dataset.nodes") == "5")
        assert len(driver.find_elements(By.CSS_SELECTOR, "#tree tbody tr.node")) == 5
        wait.until(lambda d: "Add a health check" in d.find_element(By.ID, "directive-table").text)
        driver.execute_script("window.vsmNoReload = 'still here'")  # gone if the page reloads

        title = "Dashboard live check: add a readiness probe"
        vsm(live_dir, "send", title)
        wait.until(lambda d: title in d.find_element(By.ID, "directive-table").text)
        assert driver.execute_script("return window.vsmNoReload") == "still here"
        row = next(r for r in driver.find_elements(By.CSS_SELECTOR, "tr.directive") if title in r.text)
        wait.until(lambda d: "Completed" in row.text)
        row.click()
        wait.until(lambda d: d.find_element(By.ID, "timeline").is_displayed()
                   and d.find_elements(By.CSS_SELECTOR, "#timeline svg rect.bar"))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#plot svg polyline"))
        cards = {c.get_attribute("data-card"): c.text for c in driver.find_elements(By.CSS_SELECTOR, ".card")}
        assert cards["directives"].startswith("2"), cards

        driver.execute_script("window.scrollTo(0, 0)")
        shot = artifacts / "dashboard.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        print(f"\ndashboard screenshot: {shot}")

        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
        elsewhere = [u for u in requested_urls(driver) if not u.startswith((url, "data:"))]
        assert not elsewhere, elsewhere
    finally:
        if driver is not None:
            driver.quit()
        stop(dashboard)  # before live_dir's teardown, which fails on processes left under it
