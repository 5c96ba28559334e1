"""The named endpoints for ``gradio_client`` (documented in docs/app.md).

They sit on hidden components, apart from the tabs, so clients get plain
JSON (and image files) instead of the UI's HTML and plots. They call the
same services as the tabs; a refused request, including an argument of the
wrong type, raises ``gr.Error`` with the same message the UI shows, logs one
line and stores nothing.
"""
from __future__ import annotations

import gradio as gr

from space.services import contributions, model_card, moderating, scoring, voting
from space.services.container import Services
from space.services.rating import Finished, Ticket
from space.ui.components import checked_argument, file_argument
from space.ui.errors import refused_as_error

def register(services: Services) -> None:
    """Add the endpoints to the Blocks being built (call inside its context)."""
    config = services.config
    model_jobs = dict(concurrency_id="model", concurrency_limit=config.score_concurrency)
    rating_jobs = dict(concurrency_id="rating", concurrency_limit=config.rating_concurrency)
    direct = dict(queue=False)  # short, thread-safe and frequent: no queue (docs/app.md, "Queueing")

    def score(image: str | None, gallery: str | None, original: str | None) -> dict:
        """Score an image (0–100, higher = better) against a gallery; with `original`, also the FR teacher."""
        with refused_as_error("API score"):
            return scoring.score(services, image, gallery, original).required().to_dict()

    def contribute(image: str | None, consent: bool) -> dict:
        """Offer an image to the rating pool (only with the uploader's consent); it is paired once moderation
        clears it."""
        with refused_as_error("API contribute"):
            contributions.require_consent(consent)  # before the file is decoded
            return contributions.contribute(services, scoring.decode(image, "image"), consent).to_dict()

    def new_rater(campaign: str | None, request: gr.Request) -> str:
        """A new signed rater id for /next_pair and /vote (counted within the campaign's per-address limits;
        "" = the default one); keep it private (only its part before the dot is public)."""
        with refused_as_error("API rater"):
            return voting.new_rater(services, services.proxies.client(request), campaign or None)

    def galleries() -> list[str]:
        """Names of the installed reference galleries (the first is the default)."""
        return services.galleries.names()

    def shown(ticket: Ticket | Finished) -> tuple[dict, str | None, str | None]:
        if isinstance(ticket, Finished):
            return ticket.to_dict(), None, None
        return ticket.to_dict(), str(services.images.path(ticket.left)), str(services.images.path(ticket.right))

    def next_pair(rater_id: str, campaign: str | None) -> tuple[dict, str | None, str | None]:
        """The next pair for this rater in a campaign ("" = the default one): ticket info, then the left and
        right images; or, once the rater has judged all the campaign asks of them, {"done": true, "message"}
        and no images."""
        with refused_as_error("API next_pair"):
            return shown(voting.next_pair(services, rater_id, campaign))

    def vote(rater_id: str, ticket: str, choice: str, response_ms: float | None, request: gr.Request) -> dict:
        """Answer a ticket: left, right, same or skip. The server measures the response time; a client's
        response_ms (optional) is stored only as a hint."""
        with refused_as_error("API vote"):
            return voting.vote(services, services.proxies.client(request), rater_id, ticket, choice,
                               response_ms).to_dict()

    def undo(rater_id: str) -> tuple[dict, str, str]:
        """Take back your last answer (within a few seconds of it): its pair again, as /next_pair returns."""
        with refused_as_error("API undo"):
            return shown(voting.undo(services, rater_id))

    def review_next(rater_id: str) -> dict:
        """Opt-in moderation, for proven raters only: a contributed photo waiting for review (as a data: URL)
        or none, to answer with /review."""
        with refused_as_error("API review_next"):
            return moderating.review_next(services, rater_id)

    def review(rater_id: str, image_id: str, verdict: str, request: gr.Request) -> dict:
        """Say whether a contributed photo is fine to show raters ("ok") or not ("flag")."""
        with refused_as_error("API review"):
            return moderating.review(services, services.proxies.client(request), rater_id, image_id, verdict)

    def moderate(admin_token: str, image_id: str, decision: str, request: gr.Request) -> dict:
        """Admin: approve or reject a contributed photo; with an empty image id, list pending and flagged ones."""
        with refused_as_error("admin moderate"):
            return moderating.moderate(services, admin_token, services.proxies.client(request), image_id, decision)

    def leaderboard(campaign: str | None) -> dict:
        """A campaign's ("" = the default one) scaled scores with 95% CIs, model agreement, activity and
        anonymous rater statistics."""
        with refused_as_error("API leaderboard"):
            return services.insights.current(campaign or None).to_dict()

    def live(campaign: str | None) -> dict:
        """A campaign's live numbers (votes, raters, model agreement, top of the ranking), shared by every
        poller and refreshed at most every few seconds."""
        with refused_as_error("API live"):
            return services.live_numbers(campaign)

    def model_info() -> dict:
        """The model in service, the re-distillation runs and the trainer status."""
        runs = model_card.runs(services.data_dir / "registry")
        return {**model_card.summary(services.model), "trainer": services.trainer.status(),
                "runs": runs.astype(object).where(runs.notna(), None).to_dict(orient="records")}

    with gr.Column(visible=False):
        image = file_argument("image")
        original = file_argument("original")
        gallery = checked_argument(gr.Textbox(label="gallery"), "gallery")
        consent = checked_argument(gr.Checkbox(label="consent"), "consent")
        rater = checked_argument(gr.Textbox(label="rater_id"), "rater_id")
        campaign = checked_argument(gr.Textbox("", label="campaign"), "campaign")
        ticket = checked_argument(gr.Textbox(label="ticket"), "ticket")
        choice = checked_argument(gr.Textbox(label="choice"), "choice")
        response_ms = gr.Number(None, label="response_ms")  # checked by the rating service
        image_id = checked_argument(gr.Textbox(label="image_id"), "image_id")
        verdict = checked_argument(gr.Textbox(label="verdict"), "verdict")
        admin_token = checked_argument(gr.Textbox(label="admin_token"), "admin_token")
        decision = checked_argument(gr.Textbox(label="decision"), "decision")
        issued = gr.Textbox(label="rater_id")
        result = gr.JSON(label="result")
        left = gr.Image(label="left", type="filepath", format="png")
        right = gr.Image(label="right", type="filepath", format="png")
        trigger = gr.Button()
    trigger.click(score, [image, gallery, original], result, api_name="score", **model_jobs)
    trigger.click(contribute, [image, consent], result, api_name="contribute", **rating_jobs)
    trigger.click(galleries, None, result, api_name="galleries", queue=False)
    trigger.click(new_rater, campaign, issued, api_name="rater", **direct)
    trigger.click(next_pair, [rater, campaign], [result, left, right], api_name="next_pair", **direct)
    trigger.click(vote, [rater, ticket, choice, response_ms], result, api_name="vote", **direct)
    trigger.click(undo, rater, [result, left, right], api_name="undo", **direct)
    trigger.click(leaderboard, campaign, result, api_name="leaderboard", concurrency_id="insights",
                  concurrency_limit=1)
    trigger.click(live, campaign, result, api_name="live", **direct)
    trigger.click(model_info, None, result, api_name="model_info", queue=False)
    trigger.click(review_next, rater, result, api_name="review_next", **rating_jobs)
    trigger.click(review, [rater, image_id, verdict], result, api_name="review", **rating_jobs)
    trigger.click(moderate, [admin_token, image_id, decision], result, api_name="moderate",
                  concurrency_id="admin")

