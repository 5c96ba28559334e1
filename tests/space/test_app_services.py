"""The app's services without a server: pool, rating tickets, insights, bad uploads, no model."""
from __future__ import annotations

import hashlib
import json
import os
import pandas as pd
import pytest
from PIL import Image

from tests.helpers.app import model_options
from tests.helpers.images import photo

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")



@pytest.fixture(scope="module")
def services(untrained_bundle, tmp_path_factory):
    from space.services.config import AppConfig
    from space.services.container import build_services

    options = model_options(untrained_bundle)
    config = AppConfig(data_dir=tmp_path_factory.getbasetemp() / "app-data", score_pool=False, **options,
                       min_answer_ms=0)  # answers as fast as a script: the human floor is tested in test_vote_rules.py
    built = build_services(config)
    yield built
    built.close()


@pytest.fixture(scope="module")
def no_model_app(services, tmp_path_factory):
    """The whole app, built on the same data as ``services`` but with no model installed."""
    from space.app import create_app

    app = create_app(tmp_path_factory.mktemp("no-model"), services.data_dir, score_pool=False)
    yield app
    app.close()


def test_pool_is_built_from_the_gallery_with_gold_pairs_and_registered(services):
    from space.services.pool import RatingPool

    pool, spec = services.pool, services.config.pool
    photos = len(services.galleries.default)
    assert len(pool) >= photos * (1 + len(spec.distortions) * len(spec.levels))
    gold = pool.gold_pairs()
    assert len(gold) == photos * len(spec.distortions)
    for better, worse in gold:
        assert pool.get(worse).level == 5 and pool.get(worse).reference_id == better
        assert pool.get(better).origin == "gallery" and pool.get(better).content == pool.get(worse).content
    some = pool.get(gold[0][1])
    assert some.image_id == "sha256-" + hashlib.sha256(pool.path(some.image_id).read_bytes()).hexdigest()
    assert some.origin == f"distortion:{some.distortion}:5"
    registered = services.store.images().set_index("image_id")
    assert set(pool.ids) <= set(registered.index)
    assert registered.loc[some.image_id, "source"] == "distortion"
    assert registered.loc[some.image_id, "licence"] == some.licence != ""
    again = RatingPool.open(pool.root, services.store, services.galleries.default, spec)
    assert again.ids == pool.ids


def test_bad_uploads_show_a_message_and_store_nothing(services, bad_inputs):
    from space.ui.score_tab import score_view

    images_before, pool_before = len(services.store.images()), len(services.pool)
    for case, path in bad_inputs.items():
        view = score_view(services, str(path), None, None, True, None)
        assert 'class="refused"' in view.html and view.scored is None and not view.references, case
    assert "not an image" in score_view(services, str(bad_inputs["not_an_image"]), None, None, True, None).html
    assert "megapixels" in score_view(services, str(bad_inputs["huge_pixel_count"]), None, None, True, None).html
    assert "animated" in score_view(services, str(bad_inputs["animated"]), None, None, True, None).html
    assert len(services.store.images()) == images_before and len(services.pool) == pool_before


def test_a_converted_upload_is_scored_and_its_conversion_shown(services, good_inputs):
    from space.ui.score_tab import score_view

    view = score_view(services, str(good_inputs["cmyk"]), None, None, False, None)
    assert 'class="score-value"' in view.html and "converted from CMYK" in view.html
    assert view.scored is not None and len(view.references) == len(services.galleries.default)


def test_consented_upload_joins_the_pool_once_and_only_with_consent(no_model_app, tmp_path):
    from space.ui.score_tab import score_view

    services = no_model_app.services
    path = tmp_path / "mine.png"
    Image.fromarray(photo(300, 240)[::-1].copy()).save(path)
    before = len(services.pool)
    score_view(services, str(path), None, None, False, None)
    assert len(services.pool) == before
    for _ in range(2):
        view = score_view(services, str(path), None, None, True, None)
        assert "Added to the rating pool" in view.html
    assert len(services.pool) == before + 1
    added = services.store.images().set_index("image_id").loc[services.pool.ids[-1]]
    assert added["source"] == "upload" and bool(added["consent"]) is True


def test_a_ticket_is_answered_once_and_only_by_its_rater(services):
    from space.services.rating import RatingError

    rating = services.rating
    ticket = rating.next_pair("anon-ticket-a")
    assert ticket.left != ticket.right and {ticket.left, ticket.right} <= set(services.pool.ids)
    with pytest.raises(RatingError, match="unknown"):
        rating.vote("anon-ticket-b", ticket.ticket_id, "left")
    with pytest.raises(RatingError, match="choice"):
        rating.vote("anon-ticket-a", ticket.ticket_id, "maybe")
    before = rating.count("anon-ticket-a")
    assert rating.vote("anon-ticket-a", ticket.ticket_id, "same").stored == "judgement"
    with pytest.raises(RatingError, match="already judged"):
        rating.vote("anon-ticket-a", ticket.ticket_id, "left")
    skip = rating.vote("anon-ticket-a", rating.next_pair("anon-ticket-a").ticket_id, "skip")
    assert skip.stored == "skip" and skip.count == before + 1
    assert skip.record_id in set(services.store.skips()["skip_id"])
    stored = services.store.judgements().set_index("rater_id").loc["anon-ticket-a"]
    assert stored["choice"] == "tie" and stored["response_ms"] >= 0
    with pytest.raises(RatingError, match="rater_id"):
        rating.next_pair("not a valid id!")


def test_votes_are_rate_limited_and_carry_the_model_scores(services):
    from space.services.rating import RatingError, RatingService

    class FixedScores:
        def version(self):
            return "test-model"

        def current(self):
            return {image_id: float(k) for k, image_id in enumerate(services.pool.ids)}

        def of(self, image_ids):  # what a vote asks for (PoolScores.of)
            return {image_id: self.current()[image_id] for image_id in image_ids}

    now = [1000.0]
    rating = RatingService(services.images, services.store, FixedScores(), "test", votes_per_minute=2,
                           clock=lambda: now[0])
    for _ in range(2):
        ticket = rating.next_pair("anon-limited")
        receipt = rating.vote("anon-limited", ticket.ticket_id, "left")
    row = services.store.judgements().set_index("judgement_id").loc[receipt.record_id]
    assert row["model_version"] == "test-model"
    assert row["model_score_left"] == services.pool.ids.index(ticket.left)
    assert row["model_score_right"] == services.pool.ids.index(ticket.right)
    ticket = rating.next_pair("anon-limited")
    with pytest.raises(RatingError, match="Too many votes"):
        rating.vote("anon-limited", ticket.ticket_id, "left")
    now[0] += 61
    assert rating.vote("anon-limited", ticket.ticket_id, "left").count == 3


def test_agreement_counts_majority_pairs_and_leaves_out_split_votes():
    from space.services.insights import model_agreement

    rows = [("a", "b", "left"), ("b", "a", "right"), ("a", "b", "right"),  # a beats b 2:1
            ("c", "b", "left"), ("b", "c", "left"),                        # split: left out
            ("a", "c", "tie")]
    judgements = pd.DataFrame(rows, columns=["left_image_id", "right_image_id", "choice"])
    scaled = pd.DataFrame({"image_id": ["a", "b", "c"], "score": [1.0, 0.0, 0.5]})
    agreement = model_agreement(judgements, {"a": 60.0, "b": 40.0, "c": 50.0}, scaled)
    assert (agreement.pairs, agreement.agreed, agreement.share) == (1, 1, 1.0)
    assert agreement.srcc == pytest.approx(1.0) and agreement.images == 3
    assert model_agreement(judgements, {"a": 10.0, "b": 40.0, "c": 50.0}, scaled).agreed == 0


def test_leaderboard_ranks_judged_images_with_intervals_and_no_rater_ids(services):
    rating = services.rating
    for k in range(4):
        ticket = rating.next_pair(f"anon-board-{k}")
        rating.vote(f"anon-board-{k}", ticket.ticket_id, "left")
    insights = services.insights.current()
    ranking = insights.ranking
    assert insights.n_judgements >= 4 and len(ranking) >= 2
    # an image in fewer than MIN_INTERVAL_JUDGEMENTS judgements gets no interval (the sampler may show one
    # image more often, and the module's other tests vote too: the rule is checked per image)
    from annotations.scaling import MIN_INTERVAL_JUDGEMENTS

    few = ranking["n_judgements"] < MIN_INTERVAL_JUDGEMENTS
    assert few.any() and ranking.loc[few, "ci_low"].isna().all() and ranking.loc[few, "ci_high"].isna().all()
    shown = ranking.dropna(subset=["ci_low"])
    assert (shown["ci_low"] < shown["ci_high"]).all()
    assert list(ranking["score"]) == sorted(ranking["score"], reverse=True)
    dumped = json.dumps(insights.to_dict())
    assert "anon-board" not in dumped and "rater 1" in dumped
    assert services.insights.current() is insights  # cached until judgements change


def test_session_gallery_is_refused_whole_when_one_photo_is_bad(services, bad_inputs, good_inputs):
    from space.ui.score_tab import build_gallery

    message, session, name = build_gallery(
        services, [str(good_inputs["non_square"]), str(bad_inputs["truncated"])], "mixed", {})
    assert "Gallery not created" in message and "truncated" in message
    assert session == {} and name is None
    sessions = services.data_dir / "sessions"
    assert not sessions.exists() or not any(sessions.iterdir())


def test_model_tab_lists_registry_runs_newest_first(tmp_path):
    from cvrkd.train.registry import ModelRegistry
    from space.services.model_card import RUN_COLUMNS, runs

    assert runs(tmp_path).empty and list(runs(tmp_path).columns) == RUN_COLUMNS
    registry = ModelRegistry(tmp_path)
    registry.record_run({"run_id": "r1", "started_at": 1.7e9, "decision": "rejected", "config": {"lr": 1}})
    registry.record_run({"run_id": "r2", "started_at": 1.7e9, "decision": "promoted", "candidate_version": "abc"})
    table = runs(tmp_path)
    assert list(table["run_id"]) == ["r2", "r1"] and "config" not in table
    assert list(table.columns[:3]) == ["recorded_at", "run_id", "decision"]
    assert table["started_at"].iloc[0].startswith("2023-11-14")


def test_model_tab_shows_each_rounds_candidate_and_gate_figures(tmp_path):
    from cvrkd.train.registry import ModelRegistry
    from space.services.model_card import GATE_COLUMNS, gate_table

    assert gate_table(tmp_path).empty and list(gate_table(tmp_path).columns) == GATE_COLUMNS
    registry = ModelRegistry(tmp_path)
    registry.record_run({"run_id": "r1", "started_at": 1.7e9, "decision": "rejected", "design": "readout",
                         "reason": "only 3 usable judgements (< 50)", "candidate_version": None,
                         "base_agreement": float("nan"), "candidate_agreement": float("nan"),
                         "agreement_gain_ci": [float("nan"), float("nan")], "n_known_order": 0})
    registry.record_run({"run_id": "r2", "started_at": 1.7e9, "decision": "promoted", "design": "readout",
                         "candidate_version": "abc123", "reason": "agreement +0.017 (95% CI +0.007..+0.028)",
                         "base_agreement": 0.653, "candidate_agreement": 0.67, "agreement_gain_ci": [0.007, 0.028],
                         "likelihood_gain": 0.0085, "likelihood_gain_ci": [0.0055, 0.0113],
                         "base_synthetic_srcc": 0.7591, "candidate_synthetic_srcc": 0.7612,
                         "base_known_order": 1.0, "candidate_known_order": 23 / 24, "n_known_order": 24,
                         "fitted_on": "every judgement", "n_judgements": 4000, "n_train": 2400, "n_validation": 1600,
                         "seconds": 126.0})
    promoted, refused = gate_table(tmp_path).to_dict(orient="records")
    assert promoted["run"] == "r2" and promoted["candidate"] == "abc123" and promoted["decision"] == "promoted"
    assert promoted["agreement with people: served → candidate"] == "65.3% → 67.0%"
    assert promoted["agreement gain [95% interval]"] == "+1.7 points [+0.7, +2.8]"
    assert promoted["likelihood gain per judgement [95% interval]"] == "+0.0085 [+0.0055, +0.0113]"
    assert promoted["synthetic check SRCC: served → candidate"] == "0.759 → 0.761"
    assert promoted["known-order pairs kept: served → candidate"] == "100% → 96% of 24"
    assert promoted["judgements fitted / held out"] == "4000 / 1600" and promoted["minutes"] == "2.1"
    assert promoted["started"].startswith("2023-11-14")
    # a refused round measured nothing: its figures read as missing, never as numbers
    assert refused["candidate"] == "—" and refused["agreement gain [95% interval]"] == "—"
    assert refused["likelihood gain per judgement [95% interval]"] == "—"
    assert refused["agreement with people: served → candidate"] == "—" and "usable judgements" in refused["reason"]


def test_without_a_trained_model_the_app_starts_refuses_to_score_and_keeps_queues_apart(no_model_app, services):
    from space.services.model_service import NO_MODEL
    from space.ui.score_tab import score_view

    app = no_model_app
    assert app.services.model.banner() == NO_MODEL
    assert NO_MODEL.startswith("No trained model is installed")
    view = score_view(app.services, str(services.pool.path(services.pool.ids[0])), None, None, False, None)
    assert "No trained model is installed" in view.html and view.scored is None
    assert app.services.rating.next_pair("anon-no-model").left in app.services.pool
    fns = {fn.api_name: fn for fn in app.blocks.fns.values() if fn.api_name}
    assert (fns["score"].concurrency_id, fns["score"].concurrency_limit) == ("model",
                                                                            app.services.config.score_concurrency)
    assert fns["score"].queue is not False
    # pairs and votes never wait behind scoring: they skip the queue (one plain request each)
    assert all(fns[name].queue is False for name in ("rater", "next_pair", "vote", "live"))


def test_an_untrained_model_is_served_only_with_a_loud_warning(services, untrained_bundle):
    from space.services.model_service import UNTRAINED, ModelService

    model = ModelService(untrained_bundle, True, services.data_dir / "cache" / "features",
                         services.galleries.default)
    assert model.available and not model.trained and model.banner() == UNTRAINED
    refused = ModelService(untrained_bundle, False, services.data_dir / "cache" / "features",
                           services.galleries.default)
    assert not refused.available and refused.banner().startswith("No trained model is installed")



def test_image_uploads_reach_the_app_undecoded_so_it_can_explain_bad_files(bad_inputs):
    from gradio.components.image import ImageData

    from space.ui.components import raw_image

    path = str(bad_inputs["not_an_image"])
    assert raw_image().preprocess(ImageData(path=path, orig_name="notes.txt")) == path


def test_the_trainer_hears_of_each_judgement_and_cannot_break_a_vote(services):
    from space.services.rating import RatingService

    calls = []

    def hook():
        calls.append(1)
        raise RuntimeError("trainer down")

    rating = RatingService(services.images, services.store, services.scores, "test", after_judgement=hook)
    stored = rating.vote("anon-hook", rating.next_pair("anon-hook").ticket_id, "left")
    rating.vote("anon-hook", rating.next_pair("anon-hook").ticket_id, "skip")
    assert stored.stored == "judgement" and len(calls) == 1
    assert stored.record_id in set(services.store.judgements()["judgement_id"])


def test_the_pool_is_the_campaign_default_and_serves_the_pairs_it_always_did(services):
    from annotations.sampler import ActiveSampler
    from space.services.rating import RatingService

    pool, images = services.pool, services.images
    found = images.campaign(None)
    assert found is images.campaign("") is images.campaign("default") is services.campaigns.get("default")
    assert images.names()[0] == "default" and "default" not in services.campaigns.names()
    visible = [i for i in pool.ids if services.moderation.visible(i)]
    assert found.ids == visible and found.gold_pairs() == pool.gold_pairs() and found.round == 1
    assert {i: found.content_of()[i] for i in visible} == {i: pool.content_of()[i] for i in visible}
    # the sampler as the pool's was built before it was a campaign, and the campaign's: same seed, same pairs
    before = ActiveSampler(visible, content_of=pool.content_of(), gold_pairs=pool.gold_pairs(), seed=3)
    rating = RatingService(services.images, services.store, services.scores, "test", seed=3, model_prior=False)
    none = services.store.judgements("no-such-campaign")
    now = rating._current_sampler(found, none, found.gold_pairs())
    assert (now.ids, now.gold_pairs, now.gold_share, now.same_content_share) == (
        before.ids, before.gold_pairs, before.gold_share, before.same_content_share)
    assert (now._content == before._content).all()
    for k in range(40):
        rater = f"anon-same-{k % 3}"
        assert now.next_pair(rater, none) == before.next_pair(rater, none), k


def test_leaderboard_shows_both_estimates_the_calibration_and_disagreements(services, tmp_path):
    """People agree with the model's order except on one image the model rates worst: it is flagged."""
    import numpy as np

    from annotations.store import AnnotationStore
    from space.ui import leaderboard_tab, plots
    from space.services.insights import InsightsService
    from space.services.rating import RatingService

    ids = services.pool.ids
    loved = ids[0]  # the model's worst image, which people prefer to everything

    class FixedScores:
        def version(self):
            return "test-model"

        def current(self):
            return {image_id: float(k) for k, image_id in enumerate(ids)}

    store = AnnotationStore(tmp_path / "annotations")
    for image_id in ids:
        store.register_image(image_id, "gallery", "CC-BY-4.0")
    rng = np.random.default_rng(0)
    for _ in range(400):
        a, b = rng.choice(len(ids), 2, replace=False)
        a_wins = a == 0 or (b != 0 and a > b)
        store.append({"rater_id": f"anon-{rng.integers(5)}", "left_image_id": ids[a], "right_image_id": ids[b],
                      "choice": "left" if a_wins else "right"})
    insights = InsightsService(store, services.images, FixedScores(), n_boot=10).current()
    estimates = insights.estimates
    assert estimates.use_prior and estimates.model_version == "test-model"
    assert estimates.calibration.slope > 0.5 and estimates.calibration.n_judgements == 400
    assert loved in set(estimates.flagged()["image_id"])
    title = services.pool.get(loved).title
    flagged = leaderboard_tab.disagreement_table(services, insights).set_index("image")
    assert flagged.loc[title, "people_say"] == "better than the model"
    assert flagged.loc[title, "human_only"] > flagged.loc[title, "prior_high"]  # both values shown
    table = leaderboard_tab.estimates_table(services, insights)
    assert {"human_only", "human_only_low", "model_assisted", "model_assisted_high", "prior"} <= set(table.columns)
    assert len(table) == len(ids)
    markdown, figure, shown_flags, shown_table = leaderboard_tab.assisted_section(services, insights)
    assert [trace.name for trace in figure.data] == ["human-only estimate", "prior, 95%", "calibration (prior mean)"]
    assert title in set(figure.data[0].text) and title in set(shown_flags["image"]) and len(shown_table) == len(ids)
    assert plots.calibration(estimates).data[0].text[0] in ids  # without titles: image ids
    dumped = json.loads(json.dumps(insights.to_dict()))
    assert dumped["calibration"]["model_version"] == "test-model"
    assert loved in {row["image_id"] for row in dumped["disagreements"]}
    assert "explain" in leaderboard_tab.assisted_markdown(insights)

    # the setting that turns the prior off: human-only alone, and a sampler without a prior
    off = InsightsService(store, services.images, FixedScores(), n_boot=0, model_prior=False).current()
    assert not off.estimates.use_prior and off.estimates.table["assisted_score"].isna().all()
    assert "prior off" in leaderboard_tab.assisted_markdown(off, prior_enabled=False)
    assert "No model scores" in leaderboard_tab.assisted_markdown(off)
    assert leaderboard_tab.assisted_section(services, off)[1] is None  # no calibration plot without a prior
    with_prior = RatingService(services.images, store, FixedScores(), "test")
    without = RatingService(services.images, store, FixedScores(), "test", model_prior=False)
    for rating in (with_prior, without):
        rating.next_pair("anon-sampler")
    sampler_with, sampler_without = (r._current_sampler(r.open_campaign(None), store.judgements(), [])
                                     for r in (with_prior, without))
    assert sampler_with.calibration.model_version == "test-model"
    assert sampler_with.calibration.slope > 0  # refitted on the stored judgements
    assert sampler_without.calibration is None
    store.close()
