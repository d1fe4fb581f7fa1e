"""The page itself, in a real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .app_helpers import ROOT, LaunchedApp, scene_frames, write_video

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="Debian's chromium is not installed (apt-get install chromium)",
    ),
]
SCREENSHOTS = ROOT / "runs" / "screenshots"


def test_upload_run_and_see_results(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    clip = write_video(tmp_path / "scene.mp4", scene_frames(frames=24, size=96), fps=12)
    app = LaunchedApp()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                args=[
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                ],
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(app.url)
            expect(page.get_by_text("Slot decomposition studio").first).to_be_visible(
                timeout=30_000
            )
            page.locator("#video-input input[type=file]").set_input_files(str(clip))
            page.locator("#run-button").click()
            expect(page.locator("#overlay-video video")).to_have_count(1, timeout=120_000)
            expect(page.locator("#run-summary")).to_contain_text("frames", timeout=30_000)
            expect(page.locator("#slot-legend")).to_contain_text("slot 0")
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "results.png"), full_page=True)
            page.get_by_role("tab", name="Timelines").click()
            expect(page.locator("#timeline-plot .js-plotly-plot")).to_have_count(1, timeout=30_000)
            page.screenshot(path=str(SCREENSHOTS / "timelines.png"), full_page=True)
            browser.close()
    finally:
        app.stop()
