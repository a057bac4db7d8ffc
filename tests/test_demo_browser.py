"""The web demo in a real browser: headless Chromium (Debian's package) driven by Playwright.

A person's path through the page: upload a content and a style picture, move the alpha slider, press
Stylize, wait for the result, check it is the content's size, download it. A screenshot of the page is
taken; with ``ADAIN_DEMO_SCREENSHOT=path.png`` it is also saved there (``docs/demo.png`` comes from this).
Also in the page: Gatys's live progress bar, and a corrupt upload's one-line message.

Skipped, with the reason, when Chromium (``apt-get install -y chromium``) or Playwright is missing.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from demo_server import picture
from PIL import Image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TIMEOUT_MS = 120_000  # a busy 2-core machine: page load and the first stylization take a while

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium not installed (apt-get update && apt-get install -y chromium)"
)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright not installed: pip install -e '.[dev]'")
    with sync_api.sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


def _page_with_pictures(browser, url: str, folder: Path):
    """A new page of the demo with a generated 200x150 photo and a style picture uploaded."""
    content = picture(folder / "photo.png", 150, 200, "content")
    style = picture(folder / "stripes.png", 96, 96, "style")
    page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.locator("#run").wait_for()  # the app is mounted
    page.locator("#content input[type=file]").set_input_files(str(content))
    page.locator("#content img").wait_for()  # one upload at a time: each re-renders its component
    page.locator("#styles input[type=file]").set_input_files(str(style))
    page.locator('#styles [aria-label="stripes.png"]').wait_for()  # the file list (name in spans)
    return page


@pytest.mark.slow
def test_stylize_in_the_browser_and_download_the_png(browser, demo_server, tmp_path):
    page = _page_with_pictures(browser, demo_server.url, tmp_path)

    slider = page.locator("#alpha input[type=range]")
    slider.focus()
    for _ in range(6):  # step 0.05: 1.0 -> 0.7, as a keyboard user moves it
        slider.press("ArrowLeft")
    assert float(page.locator("#alpha input[type=number]").input_value()) == pytest.approx(0.7)

    page.locator("#run").click()
    page.locator("#summary").get_by_text("AdaIN: 200x150, alpha 0.70").wait_for()
    result = page.locator("#output img")
    result.wait_for()
    size = result.evaluate("img => img.complete ? [img.naturalWidth, img.naturalHeight] : null")
    assert size == [200, 150]

    shot = tmp_path / "demo.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("ADAIN_DEMO_SCREENSHOT"):
        target = Path(os.environ["ADAIN_DEMO_SCREENSHOT"])
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)

    with page.expect_download() as pending:
        page.locator("#download").click()
    download = pending.value
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert saved.suffix == ".png"
    with Image.open(saved) as png:
        assert png.format == "PNG" and png.size == (200, 150)
    page.close()


@pytest.mark.slow
def test_gatys_shows_live_progress_in_the_browser(browser, demo_server, tmp_path):
    page = _page_with_pictures(browser, demo_server.url, tmp_path)
    page.locator("#backend").get_by_text("Gatys").click()
    page.locator("#iterations").wait_for()
    assert not page.locator("#alpha").is_visible()  # Gatys has no alpha
    for control, value in (("#iterations", "8"), ("#max-size", "96")):  # 8 steps on a 128x96 picture
        box = page.locator(f"{control} input[type=number]")
        box.fill(value)
        box.press("Enter")
    page.locator("#run").click()
    page.get_by_text(re.compile(r"Gatys: scale 1/1, step \d+/8")).first.wait_for()  # the bar, while it runs
    page.locator("#summary").get_by_text("Gatys: 128x96, 8 iterations").wait_for()
    assert page.locator("#output img").evaluate("img => [img.naturalWidth, img.naturalHeight]") == [128, 96]
    page.close()


@pytest.mark.slow
def test_a_corrupt_upload_shows_the_one_line_message_in_the_page(browser, demo_server, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a picture at all")
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(demo_server.url)
    page.locator("#run").wait_for()
    page.locator("#content input[type=file]").set_input_files(str(broken))
    page.locator("#styles input[type=file]").set_input_files(str(picture(tmp_path / "stripes.png", 32, 32, "style")))
    page.locator('#styles [aria-label="stripes.png"]').wait_for()  # the file list (name in spans)
    page.locator("#run").click()
    page.get_by_text("content (broken.png): not an image file Pillow can read").wait_for()
    assert "Traceback" not in page.locator("body").inner_text()
    page.close()
