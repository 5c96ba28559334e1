"""Tables that read on any screen: rows and columns on a wide one, one card per row on a phone.

Gradio's data frame lays a table out at its natural width (883–1,655 px for the
Leaderboard's) and scrolls it sideways inside a 326 px box on a phone, so only
the first two columns showed. These tables are plain HTML: ``CSS`` (in
``space.ui.assets``) turns each row into a card of label–value lines below
``NARROW_MEDIA``, and every value wraps.
"""
from __future__ import annotations

import html
from numbers import Number

import numpy as np
import pandas as pd

NARROW_MEDIA = "(max-width: 640px)"
"""Where a table becomes cards (the width below which the Rate tab stacks its images too)."""

CSS = """
.cards-caption { font-weight: 600; margin: 8px 0 4px; }
.cards { max-height: 420px; overflow: auto; border: 1px solid var(--border-color-primary); border-radius: 8px; }
.cards table { width: 100%; border-collapse: collapse; font-size: .9rem; }
.cards th { position: sticky; top: 0; background: var(--background-fill-secondary); text-align: left;
            font-weight: 600; }
.cards th, .cards td { padding: 4px 8px; border-bottom: 1px solid var(--border-color-primary); }
.cards td.number { text-align: right; font-variant-numeric: tabular-nums; }
.cards-empty { color: var(--body-text-color-subdued); margin: 0 0 8px; }
@media """ + NARROW_MEDIA + """ {
  .cards { overflow-x: hidden; }
  .cards thead { display: none; }
  .cards table, .cards tbody, .cards td { display: block; width: 100%; }
  .cards tr { display: flex; flex-direction: column; padding: 6px 0; border-bottom: 2px solid var(--border-color-primary); }
  .cards td { display: flex; justify-content: space-between; gap: 12px; padding: 1px 10px; border: 0;
              overflow-wrap: anywhere; text-align: right; }
  .cards td.number { text-align: right; }
  .cards td::before { content: attr(data-label); color: var(--body-text-color-subdued); text-align: left; }
  .cards td.heading { order: -1; font-weight: 600; text-align: left; }
  .cards td.heading::before { content: none; }
}
"""


def table(frame: pd.DataFrame, caption: str, heading: str | None = None, empty: str = "Nothing yet.") -> str:
    """``frame`` as a captioned HTML table; ``heading`` names the column that titles each card on a phone.

    Numbers show with two decimals, a missing value as "–", a flag as yes or no; column names with spaces."""
    title = f'<p class="cards-caption">{html.escape(caption)}</p>'
    if frame.empty:
        return f'{title}<p class="cards-empty">{html.escape(empty)}</p>'
    labels = [str(column).replace("_", " ") for column in frame.columns]
    head = "".join(f"<th scope=\"col\">{html.escape(label)}</th>" for label in labels)
    rows = []
    for values in frame.itertuples(index=False):
        cells = []
        for column, label, value in zip(frame.columns, labels, values):
            kind = "heading" if column == heading else "number" if _is_number(value) else "text"
            cells.append(f'<td class="{kind}" data-label="{html.escape(label)}">{html.escape(_shown(value))}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (f'{title}<div class="cards" tabindex="0"><table><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _is_number(value: object) -> bool:
    return isinstance(value, Number) and not isinstance(value, (bool, np.bool_))


def _shown(value: object) -> str:
    if value is None or (isinstance(value, (float, np.floating)) and np.isnan(value)):
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.2f}"
    return str(value)
