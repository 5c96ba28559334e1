"""What a phone downloads to rate one pair: the rating page (``/rate/NAME``) against the full app
(``/?campaign=NAME``), in headless Chromium at phone size with an empty cache.

Starts ``python app.py`` with a fresh data folder and the talk bench's campaign
(24 JPEGs), opens each page until the first pair is on screen (plus 3 s: the app
keeps a stream open, so the network never goes idle), and counts the responses
and their bytes (headers and bodies as received, after compression) by kind::

    python bench/page_weight.py --report docs/performance_load.md
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.talk import CAMPAIGN, campaign_app, publish  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
PHONE = {"width": 390, "height": 844}
SETTLE_MS = 3000
PAGES = {
    "rating page `/rate/talk`": ("rate/talk", "() => document.body.dataset.ready"),
    "full app `/?campaign=talk`": (f"?campaign={CAMPAIGN}",
                                   "() => document.querySelectorAll('#rate-left-image img, #rate-right-image img')"
                                   ".length == 2"),
}


def kind(url: str, content_type: str) -> str:
    if content_type.startswith("image/"):
        return "images"
    if "javascript" in content_type or url.endswith((".js", ".mjs")):
        return "scripts"
    if "css" in content_type:
        return "styles"
    if "font" in content_type or url.endswith((".woff", ".woff2", ".ttf")):
        return "fonts"
    return "HTML, JSON and other"


def weigh(browser, url: str, ready: str) -> tuple[Counter, Counter]:
    """(bytes, requests) per kind for one cold page load at phone size."""
    context = browser.new_context(viewport=PHONE, device_scale_factor=3, is_mobile=True, has_touch=True)
    page = context.new_page()
    sizes, counts = Counter(), Counter()

    def finished(request) -> None:
        response = request.response()
        sizes_of = request.sizes()
        what = kind(request.url, (response.headers.get("content-type", "") if response else ""))
        sizes[what] += sizes_of["responseBodySize"] + sizes_of["responseHeadersSize"]
        counts[what] += 1

    page.on("requestfinished", finished)
    page.goto(url, timeout=120_000)
    page.wait_for_function(ready, timeout=120_000)
    page.wait_for_timeout(SETTLE_MS)  # the app keeps a heartbeat stream open: "network idle" never comes
    context.close()
    return sizes, counts


def report(results: dict[str, tuple[Counter, Counter]]) -> str:
    kinds = ["HTML, JSON and other", "scripts", "styles", "fonts", "images"]
    lines = ["## Page weight on a phone: the rating page and the full app", "",
             "```bash", "python bench/page_weight.py --report docs/performance_load.md", "```", "",
             f"Headless Chromium at {PHONE['width']}×{PHONE['height']} (device pixel ratio 3), empty cache, each page "
             f"opened on the talk bench's campaign until the first pair is on screen, plus {SETTLE_MS / 1000:g} s. Bytes "
             "as transferred (headers and bodies, after compression), in kB; requests in brackets.", "",
             "| page | " + " | ".join(kinds) + " | total |", "|---|" + "---|" * (len(kinds) + 1)]
    for name, (sizes, counts) in results.items():
        cells = [f"{sizes[k] / 1000:.0f} ({counts[k]})" for k in kinds]
        total = f"**{sum(sizes.values()) / 1000:.0f}** ({sum(counts.values())})"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {total} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model bundle to serve (default: the installed one)")
    parser.add_argument("--report", type=Path, help="also write the table into this markdown file")
    args = parser.parse_args(argv)
    with campaign_app(args.model, "cvrkd-weight-") as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        results = {name: weigh(browser, url + path, ready) for name, (path, ready) in PAGES.items()}
        browser.close()
    publish(report(results), args.report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
