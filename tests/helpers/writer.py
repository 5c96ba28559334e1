"""A writer in its own process: appends judgements and prints each acknowledged id.

Usage (from the repository root): python -m tests.helpers.writer STORE_ROOT COUNT RATER [IMAGE_ID ...]
COUNT < 0 appends until killed. An id is printed (and flushed) only after
``append`` returned, i.e. after the row was fsynced.
"""

from __future__ import annotations

import itertools
import sys

from annotations.store import AnnotationStore


def main() -> None:
    root, count, rater, *images = sys.argv[1:]
    store = AnnotationStore(root)
    steps = itertools.count() if int(count) < 0 else range(int(count))
    print("ready", flush=True)
    for k in steps:
        left, right = images[k % len(images)], images[(k + 1) % len(images)]
        judgement_id = store.append(
            {"rater_id": rater, "left_image_id": left, "right_image_id": right, "choice": "left", "response_ms": k}
        )
        print(judgement_id, flush=True)


if __name__ == "__main__":
    main()
