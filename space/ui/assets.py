"""Theme, CSS and the keyboard shortcuts of the Rate tab (passed to ``launch``)."""
from __future__ import annotations

import json

import gradio as gr

from space.ui import cards

SHORTCUTS = {"ArrowLeft": "rate-left", "a": "rate-left", "ArrowRight": "rate-right", "d": "rate-right",
             "ArrowDown": "rate-same", "s": "rate-same", "ArrowUp": "rate-skip", "w": "rate-skip"}
"""Key -> id of the Rate tab button it presses."""

SHORTCUT_HELP = "Keys: **←** or **A** left · **→** or **D** right · **↓** or **S** same · **↑** or **W** skip"

_KEYS_JS = ",".join(f'"{key}":"{target}"' for key, target in SHORTCUTS.items())

STACKED_MEDIA = cards.NARROW_MEDIA
"""Where the Rate tab stacks its two images and tables become cards (the phone rules of ``CSS``)."""

SIDES = (("#rate-left-image [data-testid=block-label]", "Left", "Top"),
         ("#rate-right-image [data-testid=block-label]", "Right", "Bottom"),
         ("#rate-left", "◀ Left is better", "▲ Top is better"),
         ("#rate-right", "Right is better ▶", "▼ Bottom is better"))
"""(element, its words side by side, its words stacked) of the Rate tab's labels."""

_SIDES_JS = json.dumps([list(side) for side in SIDES], ensure_ascii=False)

HEAD = f"""
<script>
// Rate tab shortcuts: press the matching button, but only while it is on screen
// and the user is not typing somewhere. Captured before other handlers (the tab
// bar also listens to arrow keys), and only then stopped.
window.addEventListener("keydown", (event) => {{
  if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
  const target = event.target;
  if (target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))) return;
  const id = {{{_KEYS_JS}}}[event.key];
  const button = id && document.getElementById(id);
  if (!button || button.disabled || button.offsetParent === null) return;
  event.preventDefault();
  event.stopPropagation();
  button.click();
}}, true);

// An upload the browser cannot draw (e.g. TIFF) would show a broken image: hide
// it and say why; the file is still sent and scored. A later image that loads
// removes the note.
const PREVIEWS = "#score-image, #score-original";
window.addEventListener("error", (event) => {{
  const image = event.target;
  if (!(image instanceof HTMLImageElement) || !image.closest(PREVIEWS)) return;
  image.style.display = "none";
  if (!image.parentElement.querySelector(".no-preview")) {{
    const note = document.createElement("p");
    note.className = "no-preview";
    note.textContent = "No preview: browsers cannot show this image format. It will still be scored.";
    image.parentElement.appendChild(note);
  }}
}}, true);
window.addEventListener("load", (event) => {{
  const image = event.target;
  if (!(image instanceof HTMLImageElement) || !image.closest(PREVIEWS)) return;
  image.parentElement.querySelectorAll(".no-preview").forEach((note) => note.remove());
}}, true);

// On a phone the Rate tab stacks the two images, so "left" and "right" become "top" and
// "bottom" (as on the rating page): the labels' own text changes, so screen readers say it too.
const STACKED = window.matchMedia("{STACKED_MEDIA}");
const SIDES = {_SIDES_JS};
function relabelSides() {{
  for (const [selector, wide, narrow] of SIDES) {{
    const [from, to] = STACKED.matches ? [wide, narrow] : [narrow, wide];
    const element = document.querySelector(selector);
    const text = element && [...element.childNodes].find((node) => node.nodeType === 3 && node.nodeValue.includes(from));
    if (text) text.nodeValue = text.nodeValue.replace(from, to);
  }}
}}
new MutationObserver(relabelSides).observe(document.documentElement, {{childList: true, subtree: true, characterData: true}});
STACKED.addEventListener("change", relabelSides);

// Tapping (or clicking) one of the two images chooses it, as its button would;
// the fullscreen control in the image's corner keeps its own meaning.
document.addEventListener("click", (event) => {{
  const target = event.target;
  if (!(target instanceof Element)) return;
  const image = target.closest("#rate-left-image, #rate-right-image");
  const wrapper = target.closest("button");
  if (!image || (target.tagName !== "IMG" && !(wrapper && wrapper.querySelector("img")))) return;
  const press = document.getElementById(image.id === "rate-left-image" ? "rate-left" : "rate-right");
  if (press && !press.disabled) press.click();
}}, true);
</script>
"""

CSS = """
#model-banner { border-radius: 8px; padding: 8px 14px; font-weight: 600; }
#model-banner.missing { background: #fef3c7; color: #78350f; border: 1px solid #f59e0b; }
#model-banner.untrained { background: #fee2e2; color: #7f1d1d; border: 2px solid #dc2626; }
#score-result .score-value { font-size: 2.6rem; font-weight: 700; line-height: 1.1; }
.refused { color: #b91c1c; font-weight: 600; }
#rate-status .done { color: #047857; font-weight: 600; }
.no-preview { padding: 2rem 1rem; text-align: center; color: #4b5563; }
.rate-button button, button.rate-button { min-height: 3rem; font-size: 1.05rem; }
.rate-image img { cursor: pointer; }
.link-message, .share-warning { border-radius: 8px; padding: 8px 14px; font-weight: 600; background: #fef3c7; color: #78350f;
                border: 1px solid #f59e0b; }
#live-header .live-title { font-size: 3rem; margin: 0 0 12px 0; }
#live-header .live-numbers { display: flex; gap: 48px; flex-wrap: wrap; }
#live-header .live-number { font-size: 4.5rem; font-weight: 800; line-height: 1; color: #4338ca; }
#live-header .live-label { font-size: 1.6rem; color: #374151; }
#live-note { font-size: 1.1rem; }
/* Phones: both images and the four answers on one screen, without scrolling. */
@media """ + STACKED_MEDIA + """ {
  #app-title, #rate-keys { display: none; }
  #rate-campaign h2 { font-size: 1.1rem; margin: 0; }
  #rate-images { flex-direction: column; flex-wrap: nowrap; gap: 6px; }
  #rate-images > * { min-width: 0 !important; width: 100%; }
  #rate-left-image, #rate-right-image { height: 33vh !important; }
  #rate-left-image img, #rate-right-image img { height: calc(33vh - 8px); max-height: none; object-fit: contain; }
  #rate-answers { display: grid; grid-template-columns: 1fr 1fr; gap: 6px; }
  #rate-answers > * { min-width: 0 !important; }
  .rate-button button, button.rate-button { min-height: 2.6rem; font-size: 1rem; padding: 4px; }
  #live-header .live-title { font-size: 1.8rem; }
  #live-header .live-number { font-size: 2.6rem; }
  #live-header .live-label { font-size: 1rem; }
  /* plotly's toolbar would cover a narrow plot's title; zoom and download are for wide screens */
  #leaderboard .modebar-container { display: none; }
  /* a closed accordion's arrow is a tall glyph turned on its side: keep its box inside the panel */
  #leaderboard .label-wrap .icon { flex: none; width: 1em; height: 1em; line-height: 1em; text-align: center; }
}
""" + cards.CSS

I18N = gr.I18n(en={"common.complete": "Complete"})
"""Words Gradio's own English locale lacks: its status tracker tells screen readers "common.complete" when
an event finishes."""

THEME = gr.themes.Soft(
    primary_hue="indigo",
    font=["ui-sans-serif", "system-ui", "sans-serif"],  # system fonts: no requests to font CDNs
    font_mono=["ui-monospace", "monospace"],
)
