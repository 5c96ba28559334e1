"""Serving pairs and taking votes: the Rate tab's and the API's one path to the store.

A pair is handed out as a ticket (which rater, which images in which order,
when); a vote names its ticket, so a client can only judge pairs the sampler
chose for it, each once, and the response time is measured here, from
serving the pair to its vote (a client's own figure is kept only as a hint,
``client_response_ms``). A vote is refused unless a human could have made
it: ``min_answer_ms`` must have passed since its pair was served and since
the rater's previous vote (so fetching many tickets first does not help),
and each rater id votes at most ``votes_per_minute`` times a minute. A rater
may undo their last answer for ``UNDO_WINDOW_S`` seconds: the store records
a retraction and the same pair is served again. Each judgement carries the
model's scores of both images (from ``PoolScores``) so agreement can be
measured later.

A ticket shows nothing of its kind: gold and repeat checks look exactly like
other pairs (same fields, same shapes), so the checks stay blind; the server
keeps the kind with the ticket and stores it with the vote. No rater is served
the same pair twice in a round except as a repeat check (``ServedPairs``); once
the campaign has nothing new for them, or they reached its ``pair_cap``,
``next_pair`` says they are done (``Finished``) instead of serving a pair.

Each campaign has its own sampler, fitted on the judgements of its current
round (``annotations.rounds``: a reset starts a new one, and a pair served
before it takes no vote); the built-in pool is the campaign ``default``. A
ticket records its campaign, and the judgement is stored under the ticket's
campaign, so a ticket issued for one campaign can never add a judgement to
another.
"""
from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Callable, NamedTuple

from annotations.campaigns import Campaign, UnknownCampaign
from annotations.quality import RateLimiter, rater_stats
from annotations.rounds import current_judgements, in_current_round
from annotations.sampler import ActiveSampler
from annotations.schema import DEFAULT_CAMPAIGN, InvalidJudgement, InvalidRecord, Retraction, check_id
from annotations.store import AnnotationStore
from space.services.catalogue import ImageCatalogue
from space.services.pool_scores import PoolScores
from space.services.served import ServedPairs

logger = logging.getLogger(__name__)

JUDGEMENTS_MAX_AGE_S = 1.0
"""How stale the judgements the sampler sees may be. Reading them is the costliest step of a pair when
votes arrive many times a second (a talk); a second's delay only postpones a refit or a repeat."""

CHOICES = {"left": "left", "right": "right", "same": "tie", "skip": None}
"""What a rater may answer, and how it is stored (a skip is not a judgement)."""
UNDO_WINDOW_S = 10.0
"""How long after an answer its rater may take it back."""


class RatingError(ValueError):
    """A request the rating service refuses; the message is meant for the rater."""


class RateLimited(RatingError):
    """Refused because a rater or client is over its limit: the same request may succeed later."""


class TooFast(RateLimited):
    """Refused because the answer came sooner than a person can look at two images; the pair stays valid."""


class CampaignNotFound(RatingError):
    """Refused because no campaign has that name."""


@dataclass(frozen=True)
class Ticket:
    """A pair shown to one rater, waiting for their answer."""

    ticket_id: str
    rater_id: str
    left: str
    right: str
    kind: str
    issued_at: float
    campaign: str = DEFAULT_CAMPAIGN
    round: int = 1
    """The campaign's round when the pair was served: after a reset its vote is refused."""

    def to_dict(self) -> dict:
        """What a client sees: the same fields for every kind of pair (its kind stays on the server)."""
        return {"ticket": self.ticket_id, "left_image_id": self.left,
                "right_image_id": self.right, "campaign": self.campaign}


ALL_SEEN = "All done, thank you! You have compared every pair of images this campaign needs from you."
ENOUGH = "All done, thank you! That is the {cap} pairs this campaign asks of each person."


class Finished(NamedTuple):
    """No pair for this rater: the campaign has nothing new for them, or they reached its limit per person."""

    message: str
    count: int

    def to_dict(self) -> dict:
        """What every door answers in place of a pair: the thanks, and how many pairs the rater judged."""
        return {"done": True, **self._asdict()}


@dataclass(frozen=True)
class Receipt:
    """What was stored for a vote: a judgement or a skip, and the rater's new count."""

    stored: str
    record_id: str
    count: int

    def to_dict(self) -> dict:
        return {"stored": self.stored, "id": self.record_id, "count": self.count}


@dataclass(frozen=True)
class Answer:
    """A rater's last stored answer, kept for ``UNDO_WINDOW_S`` so they can take it back."""

    record_id: str
    stored: str
    ticket: Ticket
    at: float


class RatingService:
    """Thread-safe front of the sampler and the store for all raters."""

    def __init__(self, images: ImageCatalogue, store: AnnotationStore, scores: PoolScores,
                 app_version: str, votes_per_minute: int = 60, seed: int = 0, min_answer_ms: float = 0.0,
                 ticket_ttl_s: float = 3600.0, max_tickets: int = 50_000,
                 clock: Callable[[], float] = time.monotonic,
                 after_judgement: Callable[[], object] = lambda: None, model_prior: bool = True) -> None:
        """``images``: the app's one catalogue of campaigns and their images (the pool's included)."""
        self.images, self.store, self.scores = images, store, scores
        self.app_version = app_version
        self.limiter = RateLimiter(votes_per_minute, clock=clock)
        self.min_answer_ms = min_answer_ms
        self.seed = seed
        self.ticket_ttl_s, self.max_tickets = ticket_ttl_s, max_tickets
        self._clock = clock
        self.after_judgement = after_judgement
        self._lock = threading.Lock()
        self._tickets: OrderedDict[str, Ticket] = OrderedDict()
        self._answers: dict[str, Answer] = {}  # rater -> their last stored answer (the floor's start, undo)
        self._served = ServedPairs(max_tickets)
        self.model_prior = model_prior  # the model's scores as the sampler's prior
        self._samplers: dict[str, tuple[object, ActiveSampler]] = {}  # campaign -> (sampler key, sampler)
        self._judgements: dict[str, tuple[float, int, object]] = {}  # campaign -> (read at, round, judgements)
        self._counts: Counter[tuple[str, int, str]] = Counter()  # (campaign, round, rater) -> judgements
        for name, rows in store.judgements().groupby("campaign"):
            found = self._known(str(name))
            self._counts.update((str(name), _round(found), str(rater))
                                for rater in in_current_round(rows, found)["rater_id"])

    # ------------------------------------------------------------------ pairs
    def campaign(self, name: str | None) -> Campaign:
        """The campaign called ``name`` (``""``/None: the default pool); ``CampaignNotFound`` for an unknown one."""
        try:
            return self.images.campaign(name)
        except UnknownCampaign as exc:
            raise CampaignNotFound(f"{exc}; check the link") from None

    def open_campaign(self, name: str | None) -> Campaign:
        """The campaign to rate (``""``/None: the default pool); refuses unknown and closed ones."""
        campaign = self.campaign(name)
        if not campaign.is_open:
            raise RatingError(f"The campaign {campaign.name!r} is closed and takes no more votes. Thank you!")
        return campaign

    def next_pair(self, rater_id: str, campaign: str | None = None) -> Ticket | Finished:
        """The pair this rater should judge now in ``campaign`` (``""``/None: the default one), or ``Finished``
        when they have seen every pair it serves or reached its ``pair_cap`` in this round."""
        rater_id = _rater(rater_id)
        found = self.open_campaign(campaign)
        name = found.name
        judgements = self._recent_judgements(found)
        gold = found.gold_pairs()
        key = (name, found.round, rater_id)
        with self._lock:
            known = self._served.get(key) is not None
        answered = [] if known else self._answered(found, rater_id, judgements)  # outside the lock: a store read
        with self._lock:
            record = self._served.get(key) or self._served.remember(key, answered)
            if record.answered.total() >= found.pair_cap:
                return Finished(ENOUGH.format(cap=found.pair_cap), self._counts[name, found.round, rater_id])
            sampler = self._current_sampler(found, judgements, gold)
            weights = None
            if sampler.needs_update(len(judgements)):
                weights = rater_stats(judgements, gold)["weight"]
            pair = sampler.next_pair(rater_id, judgements, weights, served=record.served, answered=record.answered)
            if pair is None:
                return Finished(ALL_SEEN, self._counts[name, found.round, rater_id])
            record.served[frozenset((pair.left, pair.right))] += 1
            ticket = Ticket(uuid.uuid4().hex, rater_id, pair.left, pair.right, pair.kind, self._clock(), name,
                            found.round)
            self._tickets[ticket.ticket_id] = ticket
            self._expire()
        return ticket

    def _answered(self, found: Campaign, rater_id: str, judgements) -> list[tuple[str, str]]:
        """The pairs the rater judged or skipped in the campaign's current round, as the store has them."""
        skips = in_current_round(self.store.skips(found.name), found)
        rows = [frame[frame["rater_id"] == rater_id] for frame in (judgements, skips)]
        return [pair for frame in rows for pair in zip(frame["left_image_id"], frame["right_image_id"])]

    def _recent_judgements(self, found: Campaign):
        """The judgements of the campaign's current round, re-read at most every ``JUDGEMENTS_MAX_AGE_S``."""
        with self._lock:
            cached = self._judgements.get(found.name)
            if (cached is not None and cached[1] == found.round
                    and time.monotonic() - cached[0] < JUDGEMENTS_MAX_AGE_S):
                return cached[2]
        judgements = current_judgements(self.store, found, found.name)
        with self._lock:
            self._judgements[found.name] = (time.monotonic(), found.round, judgements)
        return judgements

    def _known(self, name: str) -> Campaign | None:
        """The campaign called ``name``; None for a campaign no longer there."""
        try:
            return self.images.campaign(name)
        except UnknownCampaign:
            return None

    def _current_sampler(self, campaign: Campaign, judgements, gold) -> ActiveSampler:
        """The campaign's sampler, rebuilt when its images (the pool's change as photos are cleared or
        removed), its round or the model scores for its prior changed."""
        ids = campaign.ids
        scores = self.scores.current() if self.model_prior else {}
        prior = {i: scores[i] for i in ids if i in scores}
        key = (campaign.created_at, campaign.round, tuple(ids), self.scores.version() if prior else None, len(prior))
        cached = self._samplers.get(campaign.name)
        if cached is not None and cached[0] == key:
            return cached[1]
        sampler = ActiveSampler(ids, content_of=campaign.content_of(), gold_pairs=gold,
                                gold_share=campaign.gold_share,
                                same_content_share=1.0 if campaign.pairs == "same-content" else 0.5,
                                seed=self.seed, model_scores=prior or None,
                                model_version=self.scores.version() or None)
        if len(judgements):
            sampler.update(judgements, rater_stats(judgements, gold)["weight"])
        self._samplers[campaign.name] = (key, sampler)
        return sampler

    def _expire(self) -> None:
        now = self._clock()
        while self._tickets:
            oldest = next(iter(self._tickets.values()))
            if len(self._tickets) <= self.max_tickets and now - oldest.issued_at < self.ticket_ttl_s:
                break
            self._tickets.popitem(last=False)
        if len(self._answers) > self.max_tickets:  # forget answers too old to undo or to pace the next vote
            self._answers = {r: a for r, a in self._answers.items() if now - a.at < UNDO_WINDOW_S}

    # ------------------------------------------------------------------ votes
    def vote(self, rater_id: str, ticket_id: str, choice: str, response_ms: float | None = None,
             campaign: str | None = None,
             client_check: Callable[[Campaign], object] = lambda campaign: None) -> Receipt:
        """Store the rater's answer to the ticket's pair, in the ticket's campaign; each ticket counts once.

        ``campaign``, when given (the Rate tab passes the one on screen), must
        be the ticket's: a mismatch is refused and stores nothing.
        ``response_ms`` is the client's own figure, stored only as a hint.
        ``client_check`` counts the vote against the client's limits for the
        ticket's campaign (``space.services.voting`` passes them) and raises to refuse it.
        A refused vote stores nothing and leaves its ticket valid.
        """
        rater_id = _rater(rater_id)
        if choice not in CHOICES:
            raise RatingError(f"choice must be one of {', '.join(CHOICES)}; got {choice!r}")
        client_ms = _response_ms(response_ms)
        ticket = self._take(rater_id, ticket_id)
        try:
            expected = campaign or DEFAULT_CAMPAIGN
            if campaign is not None and expected != ticket.campaign:
                raise RatingError(f"This pair belongs to the campaign {ticket.campaign!r}, not {expected!r}; "
                                  "nothing was stored.")
            found = self.open_campaign(ticket.campaign)
            if found.round != ticket.round:
                raise RatingError(f"The campaign {ticket.campaign!r} was restarted after this pair was shown; "
                                  "nothing was stored. Fetch a new pair.")
            now = self._clock()
            self._check_pace(rater_id, ticket, now)
            if not self.limiter.allow(rater_id):
                wait = self.limiter.retry_after(rater_id)
                raise RateLimited(f"Too many votes in a minute; please wait {wait:.0f} s.")
            client_check(found)
            served_ms = (now - ticket.issued_at) * 1000.0
            if CHOICES[choice] is None:
                record_id = self.store.log_skip(
                    rater_id=rater_id, left_image_id=ticket.left, right_image_id=ticket.right,
                    pair_kind=ticket.kind, response_ms=served_ms, client_response_ms=client_ms,
                    app_version=self.app_version, campaign=ticket.campaign)
            else:
                scores = self.scores.of([ticket.left, ticket.right])  # scored now if the pool scorer has not
                record_id = self.store.append({
                    "rater_id": rater_id, "left_image_id": ticket.left, "right_image_id": ticket.right,
                    "choice": CHOICES[choice], "response_ms": served_ms, "client_response_ms": client_ms,
                    "pair_kind": ticket.kind, "app_version": self.app_version,
                    "model_version": self.scores.version(), "model_score_left": scores.get(ticket.left),
                    "model_score_right": scores.get(ticket.right), "campaign": ticket.campaign,
                })
        except InvalidJudgement as exc:
            self._give_back(ticket)
            raise RatingError(f"This vote was not stored: {exc}") from exc
        except RatingError:
            self._give_back(ticket)
            raise
        stored = "skip" if CHOICES[choice] is None else "judgement"
        with self._lock:
            self._answers[rater_id] = Answer(record_id, stored, ticket, self._clock())
            self._served.answer((ticket.campaign, ticket.round, rater_id), ticket.left, ticket.right)
            if stored == "skip":
                return Receipt("skip", record_id, self._counts[ticket.campaign, ticket.round, rater_id])
            self._counts[ticket.campaign, ticket.round, rater_id] += 1
            count = self._counts[ticket.campaign, ticket.round, rater_id]
        try:
            self.after_judgement()
        except Exception:  # the vote is stored: a failing hook must not turn it into an error
            logger.exception("after-judgement hook failed")
        return Receipt("judgement", record_id, count)

    def _check_pace(self, rater_id: str, ticket: Ticket, now: float) -> None:
        """Refuse an answer sooner than ``min_answer_ms`` after its pair was served or the rater's last answer."""
        with self._lock:
            last = self._answers.get(rater_id)
        start = max(ticket.issued_at, last.at if last is not None else -math.inf)
        if (now - start) * 1000.0 < self.min_answer_ms:
            raise TooFast(f"That answer came {max(0.0, now - start) * 1000:.0f} ms after the pair was shown, sooner "
                          f"than anyone can compare two images (at least {self.min_answer_ms:.0f} ms); nothing was "
                          "stored. Look at both images and answer again.")

    def undo(self, rater_id: str, campaign: str | None = None) -> Ticket:
        """Take back the rater's last answer (within ``UNDO_WINDOW_S``) and serve its pair again.

        The answer's row stays in the store; a retraction row names it, and
        every reader leaves it out (``annotations.store.standing``).
        """
        rater_id = _rater(rater_id)
        with self._lock:
            last = self._answers.get(rater_id)
            if last is None or self._clock() - last.at > UNDO_WINDOW_S:
                raise RatingError(f"There is no answer of yours from the last {UNDO_WINDOW_S:.0f} s to undo.")
            if campaign is not None and (campaign or DEFAULT_CAMPAIGN) != last.ticket.campaign:
                raise RatingError(f"Your last answer belongs to the campaign {last.ticket.campaign!r}; "
                                  "nothing was undone.")
            del self._answers[rater_id]  # one undo per answer, even when two requests race
        try:
            self.store.retract(Retraction(rater_id=rater_id, record_id=last.record_id, campaign=last.ticket.campaign))
        except Exception:
            with self._lock:
                self._answers.setdefault(rater_id, last)
            raise
        old = last.ticket
        again = Ticket(uuid.uuid4().hex, rater_id, old.left, old.right, old.kind, self._clock(), old.campaign,
                       old.round)
        with self._lock:
            self._served.answer((old.campaign, old.round, rater_id), old.left, old.right, change=-1)
            if last.stored == "judgement":
                self._counts[old.campaign, old.round, rater_id] -= 1
            self._judgements.pop(old.campaign, None)  # the sampler's next read leaves the answer out
            self._tickets[again.ticket_id] = again
            self._expire()
        return again

    def _take(self, rater_id: str, ticket_id: str) -> Ticket:
        with self._lock:
            ticket = self._tickets.get(str(ticket_id))
            if ticket is None or ticket.rater_id != rater_id:
                raise RatingError("This pair is unknown, expired or already judged; fetch a new pair.")
            del self._tickets[ticket.ticket_id]
            return ticket

    def _give_back(self, ticket: Ticket) -> None:
        with self._lock:
            self._tickets[ticket.ticket_id] = ticket

    def count(self, rater_id: str, campaign: str | None = None) -> int:
        """Judgements stored for this rater in a campaign's current round (the default campaign unless
        named; skips not counted)."""
        name = campaign or DEFAULT_CAMPAIGN
        with self._lock:
            return self._counts[name, _round(self._known(name)), rater_id]


def _round(campaign: Campaign | None) -> int:
    """The current round of a campaign; 1 for one no longer there (its judgements count in no round now)."""
    return 1 if campaign is None else campaign.round


def _rater(rater_id: str) -> str:
    try:
        return check_id(rater_id, "rater_id", InvalidRecord)
    except InvalidRecord as exc:
        raise RatingError(str(exc)) from exc


def _response_ms(value: object) -> float | None:
    """A client's response time: empty, or a finite number of milliseconds >= 0."""
    if value is None or value == "":
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number < 0:
        raise RatingError(f"response_ms must be empty or a number of milliseconds >= 0; got {str(value)[:40]!r}")
    return number
