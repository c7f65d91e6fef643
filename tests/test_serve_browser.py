"""The `fakescope serve` page in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`, driven by Selenium) uploads a real DFDC face (file chooser) and drops a real DFDC
video on the drop zone, waits for the
results and checks that the score and label a user reads are the API's; a run trained on stand-in
data gets its warning on the label. Screenshots go to $FAKESCOPE_SCREENSHOTS (docs/images/ for the
docs) or the test's temporary folder. Skips with the reason when Chromium or its driver is absent."""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from fakescope.serve.store import JobStore
from serve_support import copy_run, running, tiny_run

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


UNFAMILIAR = "unfamiliar input: images like this were not in training; treat the score with caution"

# How far the verdict's outline reaches above the line over it (negative: it covers that line).
_OUTLINE_CLEARANCE = """
const v = document.getElementById('verdict-label'), s = getComputedStyle(v);
const reach = parseFloat(s.outlineWidth) + parseFloat(s.outlineOffset);
const above = Math.max(document.querySelector('.progress').getBoundingClientRect().bottom,
                       document.getElementById('progress-text').getBoundingClientRect().bottom);
return v.getBoundingClientRect().top - reach - above;
"""

# The report frame holds its report whole: no scroll bar inside it and no empty band under it.
_REPORT_FITS = """
const f = arguments[0], d = f.contentDocument;
if (!d || d.readyState !== 'complete' || !d.body || !d.body.lastElementChild) return false;
const view = d.documentElement.clientHeight, bottom = d.body.lastElementChild.getBoundingClientRect().bottom;
return d.documentElement.scrollHeight <= view + 1 && view - bottom < 40;
"""


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM or not CHROMEDRIVER:
        pytest.skip(
            "Chromium or chromedriver not found (Debian: apt-get install -y chromium chromium-driver)"
        )
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')"
    )
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1500", "--force-device-scale-factor=1"):  # fmt: skip
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _shot(driver, tmp_path: Path, name: str) -> Path:
    folder = Path(os.environ.get("FAKESCOPE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    assert driver.save_screenshot(str(path)) and path.stat().st_size > 10_000
    return path


# Drops the file held by a scratch <input type=file> on the drop zone, as a drag from the desktop does.
_DROP = """
const input = arguments[0], zone = document.getElementById('drop'), dt = new DataTransfer();
dt.items.add(input.files[0]);
for (const type of ['dragenter', 'dragover', 'drop'])
  zone.dispatchEvent(new DragEvent(type, {dataTransfer: dt, bubbles: true, cancelable: true}));
input.remove();
"""


def _upload_and_wait(driver, path: Path, timeout: float = 120, drop: bool = False) -> dict:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    before = driver.find_element(By.ID, "report").get_attribute("data-job")
    if drop:
        scratch = driver.execute_script(
            "const i = document.createElement('input'); i.type = 'file'; document.body.append(i); return i;"
        )
        scratch.send_keys(str(path))
        driver.execute_script(_DROP, scratch)
    else:
        driver.find_element(By.ID, "file").send_keys(str(path))
    wait = WebDriverWait(driver, timeout, poll_frequency=0.2)
    wait.until(
        lambda d: (
            d.find_element(By.ID, "report").get_attribute("data-job") not in (None, "", before)
            and d.find_element(By.ID, "current-name").text == path.name + " — done"
        )
    )
    label = driver.find_element(By.ID, "verdict-label")
    job_id = driver.find_element(By.ID, "report").get_attribute("data-job")
    assert job_id and job_id != before
    wait.until(lambda d: d.find_element(By.ID, "report").get_attribute("src"))
    return {"text": label.text, "classes": label.get_attribute("class"), "job": job_id}


def test_upload_a_face_and_a_video_and_read_score_and_label(browser, shared_data, tmp_path_factory, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    base = tmp_path_factory.getbasetemp()
    run = tiny_run(base, shared_data / "dfdc-faces" / "manifest.csv")
    standin = copy_run(run, tmp_path / "standin_run", standin="STAND-IN DATA, NOT A BENCHMARK: test notice.")
    face = sorted((shared_data / "dfdc-faces" / "fake").glob("*.jpg"))[1]
    video = sorted((shared_data / "dfdc-videos").glob("*.mp4"))[1]
    with running(run, tmp_path / "data", "--run", str(standin)) as server:
        browser.get(server.url + "/")
        WebDriverWait(browser, 30).until(lambda d: len(Select(d.find_element(By.ID, "model")).options) == 2)

        browser.find_element(By.ID, "aligned").click()  # a DFDC face crop is already aligned
        shown = _upload_and_wait(browser, face)
        job = server.get(f"/v1/jobs/{shown['job']}").json()
        res = job["result"]["results"][0]
        assert job["aligned"] and res["faces"][0]["box"] is None
        assert shown["text"] == f"{res['label'].upper()} · P(fake) = {res['score']:.3f}"
        assert res["label"] in shown["classes"] and "standin-label" not in shown["classes"]
        _shot(browser, tmp_path, "serve_image.png")

        browser.find_element(By.ID, "aligned").click()  # a video's frames are not
        shown = _upload_and_wait(browser, video, drop=True)  # dragged onto the drop zone
        res = server.get(f"/v1/jobs/{shown['job']}").json()["result"]["results"][0]
        assert res["kind"] == "video"
        assert shown["text"] == f"{res['label'].upper()} · P(fake) = {res['score']:.3f}"
        assert browser.find_element(By.ID, "progress-text").text == "frames 4 / 4"
        frame = browser.find_element(By.ID, "report")
        WebDriverWait(browser, 15).until(lambda d: d.execute_script(_REPORT_FITS, frame))
        browser.switch_to.frame(frame)
        assert "Score over time" in browser.find_element(By.TAG_NAME, "body").text
        browser.switch_to.default_content()
        _shot(browser, tmp_path, "serve_video.png")

        def two_done_rows(d):
            rows = [r.text for r in d.find_elements(By.CSS_SELECTOR, "#jobs tr")]
            return rows if len(rows) == 2 and all(" done " in r for r in rows) else None

        rows = WebDriverWait(browser, 15).until(two_done_rows)
        assert len(rows) == 2 and video.name in rows[0] and face.name in rows[1]
        history = Path(os.environ.get("FAKESCOPE_SCREENSHOTS") or tmp_path) / "serve_history.png"
        panel = browser.find_element(By.ID, "history")
        browser.execute_script("arguments[0].scrollIntoView()", panel)
        assert panel.screenshot(str(history)) and history.stat().st_size > 5_000

        Select(browser.find_element(By.ID, "model")).select_by_value("standin_run")
        browser.find_element(By.ID, "aligned").click()
        assert "STAND-IN DATA" in browser.find_element(By.ID, "standin").text
        shown = _upload_and_wait(browser, face)
        assert "standin-label" in shown["classes"]
        assert "stand-in model" in browser.find_element(By.ID, "verdict").text
        assert browser.execute_script(_OUTLINE_CLEARANCE) >= 0
        _shot(browser, tmp_path, "serve_standin.png")


def _wait_current(driver, text: str, timeout: float = 120):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout, poll_frequency=0.2).until(
        lambda d: d.find_element(By.ID, "current-name").text == text
    )


def test_the_page_on_a_narrow_screen_names_its_own_controls_and_says_what_it_knows(
    browser, shared_data, tmp_path_factory, tmp_path
):
    """A real run with a model card, on a 420-px-wide screen: no stand-in badge and a card link, an
    empty history that says so, an upload error naming the file once, a failed job whose advice names
    the page's checkbox (and no dangling separator), and a job whose face carries a calibrated
    probability and an unfamiliar-input flag shows both beside its score; the page never scrolls sideways."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    run = tiny_run(tmp_path_factory.getbasetemp(), shared_data / "dfdc-faces" / "manifest.csv")
    card = "# Model card\n\nA tiny test run; its scores mean nothing.\n"
    carded = copy_run(run, tmp_path / "carded_run", card=card)
    face = sorted((shared_data / "dfdc-faces" / "fake").glob("*.jpg"))[2]
    text = tmp_path / "text.jpg"
    text.write_text("this is not an image")
    grey = tmp_path / "grey.png"
    Image.fromarray(np.full((160, 160, 3), 128, np.uint8)).save(grey)  # no face in it
    overflow = "return document.documentElement.scrollWidth - window.innerWidth"
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 420, "height": 900, "deviceScaleFactor": 1, "mobile": False},
    )
    try:
        with running(carded, tmp_path / "data") as server:
            browser.get(server.url + "/")
            wait = WebDriverWait(browser, 30, poll_frequency=0.2)
            wait.until(lambda d: len(Select(d.find_element(By.ID, "model")).options) == 1)
            assert browser.execute_script("return window.innerWidth") == 420
            jobs = wait.until(lambda d: d.find_element(By.ID, "jobs").text)
            assert jobs == "No jobs yet: drop an image or a video above."
            assert browser.execute_script(overflow) <= 0

            assert "STAND-IN" not in Select(browser.find_element(By.ID, "model")).options[0].text
            assert not browser.find_element(By.ID, "standin").is_displayed()
            link = browser.find_element(By.ID, "card-link")
            assert link.is_displayed() and link.text == "model card"
            assert requests.get(link.get_attribute("href"), timeout=10).text == card

            browser.find_element(By.ID, "file").send_keys(str(text))
            said = wait.until(
                lambda d: [p.text for p in d.find_elements(By.CSS_SELECTOR, "#messages p.error")]
            )
            assert said == ["text.jpg: not a recognised image or video (judged by its content)"]

            browser.find_element(By.ID, "file").send_keys(str(grey))
            _wait_current(browser, "grey.png — failed")
            error = browser.find_element(By.ID, "current-error").text
            assert error.startswith("grey.png: no face found") and "--aligned" not in error
            assert "tick \u201calready an aligned face crop\u201d" in error
            assert browser.find_element(By.ID, "current-links").text == "Download the JSON result"

            browser.find_element(By.ID, "aligned").click()
            browser.find_element(By.ID, "file").send_keys(str(face))
            _wait_current(browser, face.name + " — done")
            assert "stand-in" not in browser.find_element(By.ID, "verdict").text
            done = server.get("/v1/jobs").json()["jobs"][0]
            assert done["standin"] is False and done["card"] is True

            # A job as a run with calibration.json and familiarity.safetensors scores it: its face carries
            # a calibrated probability and the familiarity check.
            result = copy.deepcopy(done["result"])
            res = result["results"][0]
            res["faces"][0].update(
                probability=0.873, familiarity={"score": 3.2, "threshold": 2.5, "unfamiliar": True}
            )
            store = JobStore(tmp_path / "data")
            job_id = store.new_id()
            store.add(job_id, "carded_run", "calibrated.jpg", str(tmp_path / "calibrated.jpg"), "image", True)
            store.finish(job_id, result, None, False)
            store.close()
            browser.refresh()
            row = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, f"#jobs tr[data-job='{job_id}']"))
            row.click()
            _wait_current(browser, "calibrated.jpg — done")
            label = browser.find_element(By.ID, "verdict-label").text
            assert label == f"{res['label'].upper()} · P(fake) = 0.873 (calibrated)"
            assert browser.find_element(By.ID, "familiarity").text == UNFAMILIAR
            assert f"score {res['score']:.3f}" in browser.find_element(By.ID, "verdict").text

            rows = browser.find_elements(By.CSS_SELECTOR, "#jobs tr")
            assert len(rows) == 3 and all(r.is_displayed() for r in rows)
            assert browser.execute_script(overflow) <= 0
            _shot(browser, tmp_path, "serve_narrow.png")
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
