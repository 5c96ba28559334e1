"""The moderation queue for contributed photos: none is paired for rating until it is cleared.

A photo contributed after this queue existed starts ``pending``. It is
cleared (``approved``) by an admin with the admin token, or when
``quorum`` different proven raters (``space.services.reviewers``: fresh ids never
count) reviewed it and found it fine while none flagged it. One flag hides it
(``flagged``) until an admin decides; an admin may also ``reject`` it for
good, which deletes its file. Reviewing is an explicit, opt-in step
(``/review_next``, ``/review``): a photo is shown to a reviewer as a photo to
check, never inside a rating pair. Until it is approved its file lies in the
pool's held folder, which nothing serves; reviewers and admins see it as a
``data:`` URL in their answer, never as a file link. Uploads from before the
queue existed stay as they were (approved). The state lives in
``<pool>/moderation.json``, rewritten atomically on each change.
"""
from __future__ import annotations

import base64
import io
import json
import threading

from PIL import Image

from space.services.files import write_atomic
from space.services.pool import RatingPool
from space.services.reviewers import Reviewers

STATE_FILE = "moderation.json"
VERDICTS = ("ok", "flag")
DECISIONS = {"approve": "approved", "reject": "rejected"}


class ModerationError(ValueError):
    """A review or decision that cannot be applied; the message says why."""


class Moderation:
    """Status of each contributed photo, and the reviews that clear it."""

    def __init__(self, pool: RatingPool, quorum: int = 3, reviewers: Reviewers | None = None) -> None:
        """``reviewers`` decides whose reviews count; without it only an admin clears a photo."""
        if quorum < 1:
            raise ValueError("the review quorum must be at least 1")
        self.pool, self.quorum, self.reviewers = pool, quorum, reviewers
        self._path = pool.root / STATE_FILE
        self._lock = threading.Lock()
        if self._path.is_file():
            self._state: dict[str, dict] = json.loads(self._path.read_text())["images"]
        else:  # first start with a queue: earlier uploads keep being shown
            self._state = {image_id: {"status": "approved", "ok_by": [], "flagged_by": []}
                           for image_id in pool.ids if pool.get(image_id).origin == "upload"}
            self._save()
        self._place_files()

    def _place_files(self) -> None:
        """Files where their status says (after a crash between a move and a save, or data from before
        files were held): only approved uploads in the served folder, rejected ones deleted."""
        for image_id, entry in self._state.items():
            if image_id not in self.pool:
                continue
            if entry["status"] == "rejected":
                self.pool.remove(image_id)
            elif entry["status"] != "approved":
                self.pool.hold(image_id)

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
            status = self._state[image_id]["status"]
        if status == "rejected":  # the same pixels sent again: their file goes again
            self.pool.remove(image_id)
        return status

    def pending(self) -> list[str]:
        """Photos waiting for reviews, oldest first."""
        return [i for i, entry in self._state.items() if entry["status"] == "pending"]

    def flagged(self) -> list[str]:
        """Photos a rater flagged, waiting for an admin."""
        return [i for i, entry in self._state.items() if entry["status"] == "flagged"]

    def next_for(self, rater: str) -> str | None:
        """A pending photo this rater has not reviewed yet, or None; ``ModerationError`` for an unproven rater."""
        self._check_reviewer(rater)
        with self._lock:
            for image_id, entry in self._state.items():
                if entry["status"] == "pending" and rater not in entry["ok_by"] + entry["flagged_by"]:
                    return image_id
        return None

    def review(self, rater: str, image_id: str, verdict: str) -> str:
        """Record a rater's ``ok`` or ``flag`` for a pending photo; returns its new status."""
        if verdict not in VERDICTS:
            raise ModerationError(f"verdict must be one of {', '.join(VERDICTS)}; got {verdict!r}")
        self._check_reviewer(rater)
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
                    self.pool.release(str(image_id))  # the file first: a crash leaves it held again
                    entry["status"] = "approved"
            self._save()
            status = entry["status"]
        if status == "approved":
            self._pool_changed()
        return status

    def _check_reviewer(self, rater: str) -> None:
        if self.reviewers is None:
            raise ModerationError("Photos are reviewed by the admin only on this server.")
        shortfall = self.reviewers.shortfall(rater)
        if shortfall:
            raise ModerationError(shortfall)

    def decide(self, image_id: str, decision: str) -> str:
        """An admin's ``approve`` or ``reject`` of a contributed photo; returns its new status."""
        if decision not in DECISIONS:
            raise ModerationError(f"decision must be one of {', '.join(DECISIONS)}; got {decision!r}")
        image_id = str(image_id)
        with self._lock:
            entry = self._state.get(image_id)
            if entry is None:
                raise ModerationError(f"No contributed photo {image_id[:80]!r}.")
            if entry["status"] == "rejected":
                raise ModerationError("This photo was rejected and its file deleted; it cannot be decided again.")
            if decision == "approve":
                self.pool.release(image_id)  # the file first: a crash leaves it held again
            entry["status"] = DECISIONS[decision]
            self._save()
        if decision == "reject":  # the status first: a crash leaves a rejected file, deleted at the next start
            self.pool.remove(image_id)
        self._pool_changed()
        return DECISIONS[decision]

    def photo(self, image_id: str, max_side: int | None = None) -> str:
        """The photo as a ``data:`` URL (reduced to ``max_side`` as JPEG for a thumbnail): a held photo is
        never given a file link that could be passed around."""
        data = self.pool.path(image_id).read_bytes()
        if max_side is None:
            return "data:image/png;base64," + base64.b64encode(data).decode()
        with Image.open(io.BytesIO(data)) as image:
            small = image.convert("RGB")
            small.thumbnail((max_side, max_side))
        buffer = io.BytesIO()
        small.save(buffer, format="JPEG", quality=85)
        return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()

    def _pool_changed(self) -> None:
        """Samplers rebuild when the pool's version moves: the set of photos they may pair changed."""
        self.pool.version += 1
