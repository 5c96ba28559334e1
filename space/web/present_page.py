"""The presenter view (``/present/NAME``): one full-screen page for the projector, outside Gradio.

The campaign's title, the QR code that joins it (the rating page's link,
``space.services.share.page_link``), and its live numbers and ranking, polled from the
same ``/api/rate/live/NAME`` route every viewer shares (``LiveBoard``), so a
hidden ranking stays hidden here too. No tabs, no Gradio scripts: a speaker
opens it on the projector and presses "Full screen".
"""
from __future__ import annotations

import html
import json
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from annotations.campaigns import UnknownCampaign
from space.services.insights import HIDDEN_NOTE
from space.services.live import LIVE_INTERVAL_S, SCALE_NOTE
from space.services.share import local_warning, page_link, qr_files
from space.services.container import Services


def routes(services: Services) -> list:
    """The routes, mounted beside the rating page's (``launch(app_kwargs=...)``)."""
    router = APIRouter()

    @router.get("/present/{campaign}", response_class=HTMLResponse, include_in_schema=False)
    def page(request: Request, campaign: str) -> HTMLResponse:
        try:
            found = services.images.campaign(campaign)
        except UnknownCampaign as exc:
            return HTMLResponse(f"<!doctype html><title>Unknown campaign</title><p>{html.escape(str(exc))}</p>",
                                status_code=404)
        return HTMLResponse(render(found.name, found.title, page_link(request, found.name)))

    @router.get("/present/{campaign}/qr.png", include_in_schema=False)
    def qr(request: Request, campaign: str) -> Response:
        try:
            found = services.images.campaign(campaign)
        except UnknownCampaign as exc:
            return Response(str(exc), status_code=404, media_type="text/plain")
        link = page_link(request, found.name)
        return FileResponse(qr_files(link, services.data_dir / "share").png, media_type="image/png")

    return list(router.routes)


def render(campaign: str, title: str, link: str) -> str:
    """The page: the QR code and link on the left (with a warning when the link only works on this machine),
    the live numbers and ranking on the right."""
    warning = local_warning(link)
    config = json.dumps({"campaign": campaign, "interval_ms": int(LIVE_INTERVAL_S * 1000),
                         "hidden_note": HIDDEN_NOTE, "scale_note": SCALE_NOTE}).replace("</", "<\\/")
    return PAGE.format(title=html.escape(title), link=html.escape(link), config=config,
                       qr=html.escape(f"{quote(campaign)}/qr.png"),
                       warning=f'<p id="local-warning" role="alert">⚠ {html.escape(warning)}</p>' if warning else "")


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
html, body {{ margin: 0; height: 100%; background: #0f172a; color: #f8fafc; font-family: system-ui, sans-serif; }}
main {{ display: grid; grid-template-columns: minmax(280px, 38vw) 1fr; gap: 3vw; height: 100vh; box-sizing: border-box;
        padding: 3vh 3vw; }}
#join {{ display: flex; flex-direction: column; align-items: center; justify-content: center; gap: 2vh; }}
#qr {{ width: 100%; max-width: 36vw; max-height: 70vh; aspect-ratio: 1; object-fit: contain; background: #fff;
       border-radius: 12px; }}
#link {{ font-size: clamp(16px, 1.6vw, 32px); word-break: break-all; text-align: center; }}
h1 {{ font-size: clamp(28px, 3.4vw, 64px); margin: 0 0 2vh; }}
#numbers {{ display: flex; gap: 4vw; font-size: clamp(18px, 1.6vw, 30px); }}
.number {{ font-size: clamp(40px, 5vw, 96px); font-weight: 700; }}
/* Rows of 5.3vh: the top 12 and the scale fit under the numbers on a 16:9 or 4:3 projector. */
#ranking {{ list-style: none; margin: 2vh 0 0; padding: 0; font-size: clamp(14px, 1.4vw, 30px); }}
#ranking li {{ display: grid; grid-template-columns: 5.6vh minmax(0, 1fr) 14vw 13ch; align-items: center; gap: 1vw;
               height: 5.3vh; }}
#ranking .thumb {{ width: 5.6vh; height: 4.8vh; object-fit: cover; border-radius: 4px; background: #1e293b; }}
#ranking .name {{ overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }}
#ranking .bar {{ position: relative; height: 1.2vh; background: #1e293b; border-radius: 1vh; }}
#ranking .range {{ position: absolute; top: 0; bottom: 0; background: #a5b4fc; border-radius: 1vh; }}
#ranking .dot {{ position: absolute; top: 50%; width: 2vh; height: 2vh; margin: -1vh 0 0 -1vh; border-radius: 50%;
                background: #818cf8; border: 2px solid #f8fafc; }}
#ranking .score {{ text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }}
#ranking .score b {{ font-size: 1.2em; }}
#ranking .interval {{ display: inline-block; min-width: 6.5em; margin-left: .4em; font-size: .7em; color: #cbd5e1; }}
#scale {{ font-size: clamp(12px, 1vw, 20px); color: #cbd5e1; }}
#hidden {{ font-size: clamp(20px, 2vw, 38px); color: #fbbf24; }}
#local-warning {{ font-size: clamp(14px, 1.2vw, 22px); color: #fbbf24; margin: 0; }}
#fullscreen {{ position: fixed; right: 1vw; bottom: 1vh; font-size: 16px; opacity: .6; }}
</style></head>
<body><main>
<section id="join"><img id="qr" src="{qr}" alt="QR code of the rating page"><div>Scan to rate, or open</div>
<div id="link">{link}</div>{warning}</section>
<section id="results"><h1 id="title">{title}</h1>
<div id="numbers"><div><div class="number" id="votes">0</div>votes</div>
<div><div class="number" id="raters">0</div>raters</div></div>
<p id="hidden" hidden></p><ol id="ranking"></ol><p id="scale" hidden></p></section>
</main>
<button id="fullscreen" type="button">Full screen</button>
<script>
const CONFIG = {config};
document.getElementById("fullscreen").onclick = () => document.documentElement.requestFullscreen();
async function refresh() {{
  try {{
    const answer = await fetch("../api/rate/live/" + encodeURIComponent(CONFIG.campaign), {{cache: "no-store"}});
    if (!answer.ok) return;
    const live = await answer.json();
    document.getElementById("votes").textContent = live.n_judgements;
    document.getElementById("raters").textContent = live.n_raters;
    const note = document.getElementById("hidden");
    note.hidden = !live.results_hidden;
    note.textContent = live.results_hidden ? CONFIG.hidden_note : "";
    document.getElementById("ranking").replaceChildren(...live.ranking.map(row));
    const scale = document.getElementById("scale");
    scale.hidden = !live.ranking.length;
    scale.textContent = CONFIG.scale_note;
  }} catch (error) {{ /* the next poll tries again */ }}
}}
// One image of the ranking as /live gives it (space.services.live.live_ranking): thumbnail, title, the score on
// 0-100 and its 95% interval as a bar and in numbers.
function row(image) {{
  const item = document.createElement("li");
  const part = (tag, className, text) => {{
    const element = document.createElement(tag);
    element.className = className;
    if (text !== undefined) element.textContent = text;
    return element;
  }};
  const thumb = part("img", "thumb");
  thumb.src = "../api/rate/image/" + encodeURIComponent(image.image_id);
  thumb.alt = "";
  const bar = part("span", "bar");
  const known = image.ci_low_100 != null && image.ci_high_100 != null;
  if (known) {{
    const range = part("span", "range");
    range.style.left = image.ci_low_100 + "%";
    range.style.width = (image.ci_high_100 - image.ci_low_100) + "%";
    bar.append(range);
  }}
  const dot = part("span", "dot");
  dot.style.left = image.score_100 + "%";
  bar.append(dot);
  const score = part("span", "score");
  score.append(part("b", "", Math.round(image.score_100)),
               part("span", "interval", known ? Math.round(image.ci_low_100) + "\\u2013" + Math.round(image.ci_high_100)
                                              : "few votes"));
  item.append(thumb, part("span", "name", image.rank + ". " + image.title), bar, score);
  return item;
}}
refresh();
setInterval(refresh, CONFIG.interval_ms);
</script></body></html>
"""
