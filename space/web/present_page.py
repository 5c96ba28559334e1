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
from space.services.live import HIDDEN_NOTE, LIVE_INTERVAL_S
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
                         "hidden_note": HIDDEN_NOTE}).replace("</", "<\\/")
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
#ranking {{ font-size: clamp(18px, 1.8vw, 34px); line-height: 1.5; }}
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
<p id="hidden" hidden></p><ol id="ranking"></ol></section>
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
    const list = document.getElementById("ranking");
    list.replaceChildren(...live.ranking.map(row => {{
      const item = document.createElement("li");
      item.textContent = row.title + (row.score == null ? "" : " \\u00b7 " + row.score.toFixed(2));
      return item;
    }}));
  }} catch (error) {{ /* the next poll tries again */ }}
}}
refresh();
setInterval(refresh, CONFIG.interval_ms);
</script></body></html>
"""
