"""The `fakescope serve` page in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`, driven by Selenium) uploads a real DFDC face (file chooser) and drops a real DFDC
video on the drop zone, waits for the
results and checks that the score and label a user reads are the API's; a run trained on stand-in
data gets its warning on the label. Screenshots go to $FAKESCOPE_SCREENSHOTS (docs/images/ for the
docs) or the test's temporary folder. Skips with the reason when Chromium or its driver is absent."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from serve_support import running, tiny_run

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def _standin_copy(run: Path, tmp: Path) -> Path:
    """A copy of ``run`` whose config says it was trained on a stand-in set (a STANDIN.txt beside the
    manifest, as `fakescope demo` writes it)."""
    data = tmp / "standin_data"
    data.mkdir()
    (data / "STANDIN.txt").write_text("STAND-IN DATA, NOT A BENCHMARK: test notice.\n\nsettings: {}\n")
    copy = tmp / "standin_run"
    shutil.copytree(run, copy)
    meta_path = copy / "checkpoints" / "best.json"
    meta = json.loads(meta_path.read_text())
    meta["config"]["data"]["manifest"] = str(data / "manifest.csv")
    meta_path.write_text(json.dumps(meta))
    return copy


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
    standin = _standin_copy(run, tmp_path)
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
        browser.switch_to.frame(browser.find_element(By.ID, "report"))
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
        _shot(browser, tmp_path, "serve_standin.png")
