"""The dataset card (README.md) that makes the store folder a Hub dataset.

Its YAML header names the shard files of each table (``configs``) and their
column types (``dataset_info``), so ``datasets.load_dataset(folder,
split="train")`` (or the Hub repo id) loads the judgements with the right
types, and ``name="images"`` / ``name="skips"`` the other two tables.
"""

from __future__ import annotations

from annotations.schema import IMAGE_DTYPES, JUDGEMENT_DTYPES, SCHEMA_VERSION, SKIP_DTYPES

#: (config name, folder, file prefix, column types) of each table in the store.
TABLES: tuple[tuple[str, str, str, dict[str, str]], ...] = (
    ("default", "data", "train", JUDGEMENT_DTYPES),
    ("images", "images", "images", IMAGE_DTYPES),
    ("skips", "skips", "skips", SKIP_DTYPES),
)

_BODY = """
# CVRKD-IQA pairwise image-quality judgements

Each row of the default config is one answer to "which of these two images
looks better?" (`choice`: `left`, `right` or `tie`), with the rater's id, the
two image ids as shown, the response time, whether the pair was a gold check
(pristine vs strongly distorted) or a repeat (same pair, sides swapped), and
the app and model versions with the model's scores at that moment.
`name="images"` lists every image (content-hash id, source, licence) and
`name="skips"` the pairs that raters declined to judge.

Rows are appended to one JSON Lines file per writer process, so several
app replicas can write (and push) at the same time without conflicts.

```python
import datasets
judgements = datasets.load_dataset("<this repo or folder>", split="train")
images = datasets.load_dataset("<this repo or folder>", name="images", split="train")
```

Schema version: {version}. Licences of the images are listed per image;
uploaded images are only listed when their uploader consented.
"""


def render_card() -> str:
    """The README.md text for a store folder."""
    lines = ["---", "configs:"]
    for name, folder, prefix, _ in TABLES:
        lines += [
            f"- config_name: {name}",
            "  data_files:",
            "  - split: train",
            f"    path: {folder}/{prefix}-*.jsonl",
        ]
    lines.append("dataset_info:")
    for name, _, _, dtypes in TABLES:
        lines += [f"- config_name: {name}", "  features:"]
        for column, dtype in dtypes.items():
            lines += [f"  - name: {column}", f"    dtype: {dtype}"]
    lines.append("---")
    return "\n".join(lines) + "\n" + _BODY.format(version=SCHEMA_VERSION)
