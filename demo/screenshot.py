"""Drive a running demo in headless Chromium and save the screenshots in docs/ (docs/demo.md says how they were made).

    bash scripts/demo.sh --model runs/quickstart/grpo/final --compare runs/quickstart/sft/final --runs runs/quickstart &
    .venv/bin/python demo/screenshot.py http://127.0.0.1:7860/ docs/images

It picks the bundled counting clip, answers it greedily (demo.png), then samples a group of 8 at temperature 1
(demo-sample-g.png). Chromium is Debian's /usr/bin/chromium; Playwright's browser download is not used.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync"]  # fmt: skip


def _set_number(page, elem_id: str, value: str) -> None:
    field = page.locator(f"#{elem_id} input[type=number]")
    field.fill(value)
    field.press("Enter")


def main(url: str, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        page.goto(url)
        page.get_by_text("count.mp4: How many triangles are in the video?").click()
        page.locator("#upload").get_by_text("count").first.wait_for()
        _set_number(page, "temperature", "0")
        page.click("#answer-btn")
        page.wait_for_function("(document.querySelector('#stats')?.innerText || '').includes('tokens in')")
        page.screenshot(path=str(out_dir / "demo.png"))
        _set_number(page, "temperature", "1")
        page.get_by_role("tab", name="Sample G").click()
        page.click("#sample-btn")
        page.locator("#group .vr-card").first.wait_for()
        page.screenshot(path=str(out_dir / "demo-sample-g.png"))
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
