"""The moderation queue for contributed photos: none is paired for rating until it is cleared.

A photo contributed after this queue existed starts ``pending``. It is
cleared (``approved``) by an admin with the admin token, or when
``quorum`` different signed raters reviewed it and found it fine while none
flagged it. One flag hides it (``flagged``) until an admin decides; an admin
may also ``reject`` it for good. Reviewing is an explicit, opt-in step
(``/review_next``, ``/review``): a photo is shown to a reviewer as a photo to
check, never inside a rating pair. Uploads from before the queue existed stay
as they were (approved). The state lives in ``<pool>/moderation.json``,
rewritten atomically on each change.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path

from space.files import write_atomic
from space.pool import RatingPool

STATE_FILE = "moderation.json"
VERDICTS = ("ok", "flag")
DECISIONS = {"approve": "approved", "reject": "rejected"}


class ModerationError(ValueError):
    """A review or decision that cannot be applied; the message says why."""


class Moderation:
    """Status of each contributed photo, and the reviews that clear it."""

    def __init__(self, pool: RatingPool, quorum: int = 3) -> None:
        if quorum < 1:
            raise ValueError("the review quorum must be at least 1")
        self.pool, self.quorum = pool, quorum
        self._path = pool.root / STATE_FILE
        self._lock = threading.Lock()
        if self._path.is_file():
            self._state: dict[str, dict] = json.loads(self._path.read_text())["images"]
        else:  # first start with a queue: earlier uploads keep being shown
            self._state = {image_id: {"status": "approved", "ok_by": [], "flagged_by": []}
                           for image_id in pool.ids if pool.get(image_id).origin == "upload"}
            self._save()

    def _save(self) -> None:
        write_atomic(self._path, json.dumps({"images": self._state}, indent=1).encode())

    def status(self, image_id: str) -> str:
        """``approved`` for every non-upload; an upload's moderation status (``pending`` if unseen)."""
        if image_id in self.pool and self.pool.get(image_id).origin != "upload":
            return "approved"
        return self._state.get(image_id, {}).get("status", "pending")

    def visible(self, image_id: str) -> bool:
        """May this image appear in rating pairs?"""
        return self.status(image_id) == "approved"

    def submit(self, image_id: str) -> str:
        """Queue a new contribution (a photo already known keeps its status); returns the status."""
        with self._lock:
            if image_id not in self._state:
                self._state[image_id] = {"status": "pending", "ok_by": [], "flagged_by": []}
                self._save()
            return self._state[image_id]["status"]

    def pending(self) -> list[str]:
        """Photos waiting for reviews, oldest first."""
        return [i for i, entry in self._state.items() if entry["status"] == "pending"]

    def flagged(self) -> list[str]:
        """Photos a rater flagged, waiting for an admin."""
        return [i for i, entry in self._state.items() if entry["status"] == "flagged"]

    def next_for(self, rater: str) -> str | None:
        """A pending photo this rater has not reviewed yet, or None."""
        with self._lock:
            for image_id, entry in self._state.items():
                if entry["status"] == "pending" and rater not in entry["ok_by"] + entry["flagged_by"]:
                    return image_id
        return None

    def review(self, rater: str, image_id: str, verdict: str) -> str:
        """Record a rater's ``ok`` or ``flag`` for a pending photo; returns its new status."""
        if verdict not in VERDICTS:
            raise ModerationError(f"verdict must be one of {', '.join(VERDICTS)}; got {verdict!r}")
        with self._lock:
            entry = self._state.get(str(image_id))
            if entry is None or entry["status"] != "pending":
                raise ModerationError("This photo is not waiting for review.")
            if rater in entry["ok_by"] + entry["flagged_by"]:
                raise ModerationError("You have already reviewed this photo.")
            if verdict == "flag":
                entry["flagged_by"].append(rater)
                entry["status"] = "flagged"
            else:
                entry["ok_by"].append(rater)
                if len(entry["ok_by"]) >= self.quorum:
                    entry["status"] = "approved"
            self._save()
            status = entry["status"]
        if status == "approved":
            self._pool_changed()
        return status

    def decide(self, image_id: str, decision: str) -> str:
        """An admin's ``approve`` or ``reject`` of a contributed photo; returns its new status."""
        if decision not in DECISIONS:
            raise ModerationError(f"decision must be one of {', '.join(DECISIONS)}; got {decision!r}")
        with self._lock:
            entry = self._state.get(str(image_id))
            if entry is None:
                raise ModerationError(f"No contributed photo {str(image_id)[:80]!r}.")
            entry["status"] = DECISIONS[decision]
            self._save()
        self._pool_changed()
        return DECISIONS[decision]

    def path(self, image_id: str) -> Path:
        return self.pool.path(image_id)

    def _pool_changed(self) -> None:
        """Samplers rebuild when the pool's version moves: the set of photos they may pair changed."""
        self.pool.version += 1
