"""The dataset card (README.md) that makes the store folder a Hub dataset.

Its YAML header declares the judgements' column types (``dataset_info``) and
deliberately no ``configs``/``data_files``: ``datasets`` fingerprints a local
folder's cache by the card's file patterns when they are given (so rows
appended later were never read again) but by the files' modification times
when it finds the files itself. Found by ``datasets``' own rules, the
``train`` split is ``data/train-*.jsonl``; the store keeps every other file
name free of split words (see ``annotations.store``). The card records no
split sizes, which would go stale with the next row. ``annotations.load_table``
reads the ``images`` and ``skips`` tables.
"""

from __future__ import annotations

from annotations.schema import IMAGE_DTYPES, JUDGEMENT_DTYPES, RETRACTION_DTYPES, SCHEMA_VERSION, SKIP_DTYPES

#: Words ``datasets`` reads as split names in a file path (``data_files.SPLIT_KEYWORDS``).
SPLIT_WORDS = ("train", "training", "validation", "valid", "dev", "val", "test", "testing", "eval", "evaluation")

#: (config name, folder, file prefix, column types) of each table in the store.
TABLES: tuple[tuple[str, str, str, dict[str, str]], ...] = (
    ("default", "data", "train", JUDGEMENT_DTYPES),
    ("images", "images", "images", IMAGE_DTYPES),
    ("skips", "skips", "skips", SKIP_DTYPES),
    ("retractions", "retractions", "retractions", RETRACTION_DTYPES),
)

_BODY = """
# CVRKD-IQA pairwise image-quality judgements

Each row of the default config is one answer to "which of these two images
looks better?" (`choice`: `left`, `right` or `tie`), with the rater's id, the
two image ids as shown, the response time, whether the pair was a gold check
(pristine vs strongly distorted) or a repeat (same pair, sides swapped), and
the app and model versions with the model's scores at that moment.
The `images` table lists every image (content-hash id, source, licence) and
`skips` the pairs that raters declined to judge. `response_ms` is measured by
the server (from serving the pair to its vote); `client_response_ms` is what
the rater's page claimed, kept only as a hint. A rater may undo an answer a
few seconds after giving it: the `retractions` table names the judgement or
skip undone, and `annotations.load_judgements` leaves those rows out (a plain
`datasets.load_dataset` does not; drop the ids listed in `retractions`).

Rows are appended to one JSON Lines file per writer process, so several
app replicas can write (and push) at the same time without conflicts.

```python
import datasets
judgements = datasets.load_dataset("<this repo or folder>", split="train")

import annotations  # from the CVRKD-IQA project; reads only complete rows
judgements = annotations.load_judgements("<this repo or folder>")
images = annotations.load_table("<this repo or folder>", "images")
```

Schema version: {version}. Licences of the images are listed per image;
uploaded images are only listed when their uploader consented.
"""


def render_card() -> str:
    """The README.md text for a store folder (the same for every writer, so replicas never conflict)."""
    lines = ["---", "dataset_info:", "  features:"]
    for column, dtype in JUDGEMENT_DTYPES.items():
        lines += [f"  - name: {column}", f"    dtype: {dtype}"]
    lines.append("---")
    return "\n".join(lines) + "\n" + _BODY.format(version=SCHEMA_VERSION)
