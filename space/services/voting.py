"""A rater's actions (a new id, the next pair, a vote, an undo) and every rule they must pass, in one place.

The Rate tab, the ``gradio_client`` API (``space.ui.api``) and the rating
page's JSON routes (``space.web.rate_page``) all call these functions and only
translate their results and ``RatingError``s, so no entry point can skip a
check: the rater id must be one the server signed; the ticket must be the
rater's, unanswered and of the campaign on screen (which must be open); the
answer must come at a human pace (``min_answer_ms`` measured by the server,
the per-rater limit); and the client's address must be within the limits of
the ticket's campaign, sized by its audience.
"""
from __future__ import annotations

from space.services.clients import Client
from space.services.rating import Finished, Receipt, Ticket
from space.services.container import Services


def new_rater(services: Services, client: Client, campaign: str | None = None) -> str:
    """A fresh signed rater id, counted against the client's address within ``campaign``'s limits."""
    services.limits.new_rater(client, services.rating.campaign(campaign))
    return services.raters.issue()


def next_pair(services: Services, signed_rater: object, campaign: str | None = None) -> Ticket | Finished:
    """The pair this rater should judge now in ``campaign`` (``""``/None: the default one), or ``Finished``: they
    are done there, and every door thanks them."""
    return services.rating.next_pair(services.raters.verify(signed_rater), campaign or None)


def vote(services: Services, client: Client, signed_rater: object, ticket: str, choice: str,
         client_ms: float | None = None, campaign: str | None = None) -> Receipt:
    """Store an answer if every rule allows it; ``RatingError`` (nothing stored, ticket kept) otherwise."""
    public = services.raters.verify(signed_rater)
    return services.rating.vote(public, ticket, choice, client_ms, campaign=campaign,
                                client_check=lambda found: services.limits.vote(client, found))


def undo(services: Services, signed_rater: object, campaign: str | None = None) -> Ticket:
    """Take back the rater's last answer (a few seconds at most after it) and serve its pair again."""
    return services.rating.undo(services.raters.verify(signed_rater), campaign)

