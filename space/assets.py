"""Theme, CSS and the keyboard shortcuts of the Rate tab (passed to ``launch``)."""
from __future__ import annotations

import gradio as gr

SHORTCUTS = {"ArrowLeft": "rate-left", "a": "rate-left", "ArrowRight": "rate-right", "d": "rate-right",
             "ArrowDown": "rate-same", "s": "rate-same", "ArrowUp": "rate-skip", "w": "rate-skip"}
"""Key -> id of the Rate tab button it presses."""

SHORTCUT_HELP = "Keys: **←** or **A** left · **→** or **D** right · **↓** or **S** same · **↑** or **W** skip"

_KEYS_JS = ",".join(f'"{key}":"{target}"' for key, target in SHORTCUTS.items())

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
</script>
"""

CSS = """
#model-banner { border-radius: 8px; padding: 8px 14px; font-weight: 600; }
#model-banner.missing { background: #fef3c7; color: #78350f; border: 1px solid #f59e0b; }
#model-banner.untrained { background: #fee2e2; color: #7f1d1d; border: 2px solid #dc2626; }
#score-result .score-value { font-size: 2.6rem; font-weight: 700; line-height: 1.1; }
.refused { color: #b91c1c; font-weight: 600; }
.no-preview { padding: 2rem 1rem; text-align: center; color: #4b5563; }
.rate-button button, button.rate-button { min-height: 3rem; font-size: 1.05rem; }
"""

THEME = gr.themes.Soft(
    primary_hue="indigo",
    font=["ui-sans-serif", "system-ui", "sans-serif"],  # system fonts: no requests to font CDNs
    font_mono=["ui-monospace", "monospace"],
)
