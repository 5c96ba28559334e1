"""The Leaderboard's HTML tables (``space.ui.cards``): values shown plainly, and a title is text, never markup
(campaign owners name the images)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from space.ui import cards
from space.ui.leaderboard_tab import NOT_ENOUGH, with_intervals


def test_a_table_escapes_titles_and_shows_missing_values_and_flags_in_words():
    frame = pd.DataFrame({"title": ['<img src=x onerror="alert(1)">', "plain"], "score": [1.234, np.nan],
                          "flagged": [np.bool_(True), np.bool_(False)], "n_judgements": [np.int64(3), np.int64(0)]})
    shown = cards.table(frame, "A <caption>", heading="title")
    assert "<img" not in shown and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in shown
    assert "A &lt;caption&gt;" in shown
    assert '<td class="heading" data-label="title">plain</td>' in shown
    assert '<td class="number" data-label="score">1.23</td>' in shown and 'data-label="score">–</td>' in shown
    assert 'data-label="flagged">yes</td>' in shown and 'data-label="n judgements">3</td>' in shown
    assert cards.table(frame.iloc[0:0], "Empty", empty="None yet.").endswith('<p class="cards-empty">None yet.</p>')


def test_an_estimate_and_its_interval_share_one_column():
    frame = pd.DataFrame({"image": ["a", "b", "c"], "human": [0.5, 0.25, np.nan],
                          "human_low": [0.0, np.nan, np.nan], "human_high": [1.0, np.nan, np.nan]})
    shown = with_intervals(frame, {"human": ("human_low", "human_high")})
    assert list(shown.columns) == ["image", "human"]
    assert list(shown["human"]) == ["0.50 [0.00, 1.00]", "0.25", "–"]
    assert NOT_ENOUGH not in shown.to_string()
