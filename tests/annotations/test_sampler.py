"""The pair sampler: information-driven choice, check shares, sides, no immediate repeats."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from annotations.sampler import ActiveSampler, Pair

IDS = [f"im{k:02d}" for k in range(12)]
GOLD = [("im00", "im11"), ("im01", "im10")]


def rows_for(pairs: list[tuple[str, str, str]], rater: str = "r") -> pd.DataFrame:
    return pd.DataFrame(
        [{"rater_id": rater, "left_image_id": a, "right_image_id": b, "choice": c, "pair_kind": "active"} for a, b, c in pairs]
    )


def test_shares_of_gold_repeat_and_active_pairs():
    sampler = ActiveSampler(IDS, gold_pairs=GOLD, gold_share=0.2, repeat_share=0.1, seed=1)
    pairs = [sampler.next_pair(f"rater-{k % 5}") for k in range(1500)]
    kinds = Counter(p.kind for p in pairs)
    assert kinds["gold"] / 1500 == pytest.approx(0.2, abs=0.04)
    assert kinds["repeat"] / 1500 == pytest.approx(0.1, abs=0.03)
    for p in pairs:
        assert isinstance(p, Pair) and p.left != p.right
        if p.kind == "gold":
            assert frozenset((p.left, p.right)) in {frozenset(g) for g in GOLD}


def test_never_the_same_pair_twice_in_a_row_and_sides_are_randomised():
    sampler = ActiveSampler(["a", "b", "c"], gold_pairs=[("a", "c")], gold_share=0.3, repeat_share=0.3, seed=2)
    previous: dict[str, frozenset] = {}
    left_of_ab = Counter()
    for k in range(600):
        rater = f"r{k % 2}"
        p = sampler.next_pair(rater)
        pair = frozenset((p.left, p.right))
        assert pair != previous.get(rater)
        previous[rater] = pair
        if pair == frozenset("ab"):
            left_of_ab[p.left] += 1
    assert min(left_of_ab.values()) > 0.3 * sum(left_of_ab.values())


def test_repeats_swap_sides_of_a_pair_the_rater_judged():
    sampler = ActiveSampler(IDS, gold_share=0.0, repeat_share=1.0, seed=3)
    judged = rows_for([("im03", "im04", "left"), ("im05", "im06", "right")], rater="r")
    others = rows_for([("im07", "im08", "left")], rater="someone-else")
    df = pd.concat([judged, others], ignore_index=True)
    seen = {sampler.next_pair("r", df) for _ in range(20)}
    assert seen <= {Pair("im04", "im03", "repeat"), Pair("im06", "im05", "repeat")}
    assert len(seen) == 2
    # no history yet: a repeat cannot be made, an active pair is served instead
    assert sampler.next_pair("newcomer").kind == "active"


def test_same_content_share():
    content = {x: f"photo-{k // 3}" for k, x in enumerate(IDS)}  # four photos, three versions each
    sampler = ActiveSampler(IDS, content_of=content, gold_share=0, repeat_share=0, same_content_share=0.7, seed=4)
    same = [content[p.left] == content[p.right] for p in (sampler.next_pair(f"r{k}") for k in range(400))]
    assert np.mean(same) == pytest.approx(0.7, abs=0.07)
    only_cross = ActiveSampler(IDS, content_of=content, gold_share=0, repeat_share=0, same_content_share=0.0, seed=4)
    assert all(content[p.left] != content[p.right] for p in (only_cross.next_pair("r") for _ in range(50)))


def test_information_goes_to_the_image_nobody_has_judged():
    # im00 > im01 > ... > im10 firmly established; im11 never judged
    chain = [(IDS[k], IDS[k + 1], "left") for k in range(10) for _ in range(8)]
    sampler = ActiveSampler(IDS, gold_share=0, repeat_share=0, seed=5)
    sampler.update(rows_for(chain))
    assert sampler.posterior.cov[11, 11] > 3 * sampler.posterior.cov[5, 5]
    first = sampler.next_pair("r")
    assert "im11" in (first.left, first.right)
    # between refits, pretend updates spread the next picks to other pairs
    picks = {frozenset((p.left, p.right)) for p in (sampler.next_pair(f"x{k}") for k in range(10))}
    assert len(picks) > 5


def test_refits_when_enough_new_judgements_arrive():
    sampler = ActiveSampler(IDS, refit_every=10, refit_fraction=0.5, gold_share=0, repeat_share=0, seed=6)
    df = rows_for([(IDS[k % 11], IDS[k % 11 + 1], "left") for k in range(30)])
    assert sampler.needs_update(10)
    sampler.next_pair("r", df)
    assert sampler.fitted_on == 30 and not sampler.needs_update(44) and sampler.needs_update(45)
    assert sampler.posterior.mean[0] > sampler.posterior.mean[11]


def test_random_strategy_and_validation():
    sampler = ActiveSampler(IDS, strategy="random", gold_share=0, repeat_share=0, seed=7)
    counts = Counter(x for _ in range(600) for x in (lambda p: (p.left, p.right))(sampler.next_pair("r")))
    assert min(counts.values()) > 50
    assert ActiveSampler(["a", "b"], seed=0).next_pair("r").kind == "active"  # only one pair exists
    with pytest.raises(ValueError, match="strategy"):
        ActiveSampler(IDS, strategy="greedy")
    with pytest.raises(ValueError, match="gold_share"):
        ActiveSampler(IDS, gold_share=1.5)
    with pytest.raises(ValueError, match="exceed"):
        ActiveSampler(IDS, gold_share=0.6, repeat_share=0.6)
    with pytest.raises(ValueError, match="two images"):
        ActiveSampler(["only"])


def test_concurrent_requests_are_served_safely():
    import threading

    sampler = ActiveSampler(IDS, gold_pairs=GOLD, seed=8)
    df = rows_for([(IDS[k % 11], IDS[k % 11 + 1], "left") for k in range(40)])
    served: list[Pair] = []
    errors: list[BaseException] = []

    def ask(t: int) -> None:
        try:
            for _ in range(100):
                served.append(sampler.next_pair(f"r{t}", df))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=ask, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(served) == 400
    assert np.all(np.isfinite(sampler.posterior.cov))


def checked_history(raters: list[str], n_active: int = 24, n_gold: int = 6) -> pd.DataFrame:
    """Each rater judged ``n_active`` ordinary pairs and ``n_gold`` gold pairs."""
    rows = []
    for rater in raters:
        for k in range(n_active):
            rows.append({"rater_id": rater, "left_image_id": IDS[k % 11], "right_image_id": IDS[k % 11 + 1],
                         "choice": "left", "pair_kind": "active"})
        for k in range(n_gold):
            good, bad = GOLD[k % len(GOLD)]
            rows.append({"rater_id": rater, "left_image_id": good, "right_image_id": bad, "choice": "left",
                         "pair_kind": "gold"})
    return pd.DataFrame(rows)


def test_checks_go_to_doubtful_raters_and_the_overall_share_holds():
    raters = [f"r{k}" for k in range(10)]
    weights = {r: (0.1 if r in ("r0", "r1") else 1.0) for r in raters}  # two raters look careless
    sampler = ActiveSampler(IDS, gold_pairs=GOLD, gold_share=0.1, repeat_share=0.1, seed=9, strategy="random")
    sampler.update(checked_history(raters), weights)
    assert sampler.doubt("r0") > 5 * sampler.doubt("r5")
    assert sampler.check_probability("newcomer") > sampler.check_probability("r5")
    rng = np.random.default_rng(9)
    served = [(r, sampler.next_pair(r).kind) for r in (raters[rng.integers(10)] for _ in range(3000))]
    is_check = pd.Series([kind != "active" for _, kind in served])
    doubtful = pd.Series([r in ("r0", "r1") for r, _ in served])
    assert is_check.mean() == pytest.approx(0.2, abs=0.02)
    assert is_check[doubtful].mean() > 2.5 * is_check[~doubtful].mean()
    kinds = Counter(kind for _, kind in served)
    assert kinds["gold"] == pytest.approx(kinds["repeat"], rel=0.25)  # checks split as gold_share : repeat_share


def test_check_share_stays_on_target_while_new_raters_keep_arriving():
    sampler = ActiveSampler(IDS, gold_pairs=GOLD, gold_share=0.15, repeat_share=0.05, seed=10, strategy="random")
    kinds = [sampler.next_pair(f"r{k // 4}").kind for k in range(2000)]  # a new rater every fourth request
    assert np.mean([kind != "active" for kind in kinds]) == pytest.approx(0.2, abs=0.02)


def test_a_careless_raters_pair_shrinks_the_belief_less():
    sampler = ActiveSampler(IDS, gold_share=0.0, repeat_share=0.0, seed=12)
    sampler.update(checked_history(["careless", "attentive"]), {"careless": 0.0, "attentive": 1.0})
    before = sampler.posterior.cov.copy()
    sampler.next_pair("careless")
    assert np.allclose(sampler.posterior.cov, before)
    sampler.next_pair("attentive")
    assert np.trace(sampler.posterior.cov) < np.trace(before) - 1e-6


def test_design_draws_active_pairs_in_proportion():
    design = np.zeros((len(IDS), len(IDS)))
    design[0, 1], design[2, 3] = 3.0, 1.0
    sampler = ActiveSampler(IDS, gold_share=0, repeat_share=0, seed=13, strategy="random", design=design)
    pairs = Counter(frozenset((p.left, p.right)) for p in (sampler.next_pair(f"r{k}") for k in range(800)))
    assert set(pairs) == {frozenset(("im00", "im01")), frozenset(("im02", "im03"))}
    assert pairs[frozenset(("im00", "im01"))] / 800 == pytest.approx(0.75, abs=0.05)
    with pytest.raises(ValueError, match="design"):
        ActiveSampler(IDS, design=np.ones((3, 3)))


def batch_of(sampler: ActiveSampler, size: int) -> list[frozenset]:
    """The next ``size`` active pairs, each to a new rater (so the no-repeat rule never interferes)."""
    pairs = [sampler.next_pair(f"batch-{k}") for k in range(size)]
    assert all(p.kind == "active" for p in pairs)
    return [frozenset((p.left, p.right)) for p in pairs]


def is_spanning_tree(pairs: list[frozenset], images: list[str]) -> bool:
    """len(images) - 1 distinct pairs that connect all the images."""
    reached, frontier = {images[0]}, [images[0]]
    while frontier:
        here = frontier.pop()
        for pair in pairs:
            if here in pair and not pair <= reached:
                (other,) = pair - {here}
                reached.add(other)
                frontier.append(other)
    return len(set(pairs)) == len(pairs) == len(images) - 1 and reached == set(images)


def test_mst_batches_cover_every_image_once_per_batch_without_repeated_pairs():
    sampler = ActiveSampler(IDS, gold_share=0, repeat_share=0, seed=14, strategy="mst")
    first, second = batch_of(sampler, len(IDS) - 1), batch_of(sampler, len(IDS) - 1)
    assert is_spanning_tree(first, IDS) and is_spanning_tree(second, IDS)
    assert first != second  # pretend updates between picks change which tree is most informative


def test_mst_batch_prefers_informative_pairs():
    chain = [(IDS[k], IDS[k + 1], "left") for k in range(10) for _ in range(8)]  # im11 never judged
    sampler = ActiveSampler(IDS, gold_share=0, repeat_share=0, seed=15, strategy="mst")
    sampler.update(rows_for(chain))
    gain = sampler.posterior.information_gain()
    tree = sampler._tree(sampler._cross)
    rng = np.random.default_rng(15)
    for _ in range(20):  # random spanning trees (random chains) carry less information
        order = rng.permutation(len(IDS))
        chain_gain = sum(gain[a, b] for a, b in zip(order[:-1], order[1:]))
        assert sum(gain.flat[k] for k in tree) > chain_gain


def test_mst_keeps_the_same_content_share_and_trees_per_content():
    content = {x: f"photo-{k // 3}" for k, x in enumerate(IDS)}  # four photos, three versions each
    sampler = ActiveSampler(IDS, content_of=content, gold_share=0, repeat_share=0, same_content_share=0.7,
                            seed=16, strategy="mst")
    pairs = batch_of(sampler, 400)
    same = [content[a] == content[b] for a, b in map(tuple, pairs)]
    assert np.mean(same) == pytest.approx(0.7, abs=0.07)
    first_same = [p for p, s in zip(pairs, same) if s][:8]  # one same-content batch: a tree within each photo
    for photo in range(4):
        versions = [x for x in IDS if content[x] == f"photo-{photo}"]
        assert is_spanning_tree([p for p in first_same if p <= set(versions)], versions)


def test_mst_keeps_the_check_share_and_never_repeats_a_pair_in_a_row():
    sampler = ActiveSampler(IDS, gold_pairs=GOLD, gold_share=0.1, repeat_share=0.1, seed=17, strategy="mst")
    previous: dict[str, frozenset] = {}
    kinds = Counter()
    for k in range(2000):
        rater = f"r{k % 3}"
        p = sampler.next_pair(rater)
        pair = frozenset((p.left, p.right))
        assert pair != previous.get(rater)
        previous[rater] = pair
        kinds[p.kind] += 1
    assert (kinds["gold"] + kinds["repeat"]) / 2000 == pytest.approx(0.2, abs=0.02)
    tiny = ActiveSampler(["a", "b", "c"], gold_share=0, repeat_share=0, seed=18, strategy="mst")
    last = None
    for _ in range(200):  # a batch of two pairs for one rater: the batch order must give way
        pair = frozenset((lambda p: (p.left, p.right))(tiny.next_pair("r")))
        assert pair != last
        last = pair


def test_with_what_a_rater_was_served_no_pair_comes_twice_except_one_repeat_each_then_none():
    """Issue 29: one rater on four images (six pairs) was served 24 pairs, each three to five times."""
    four = IDS[:4]
    sampler = ActiveSampler(four, gold_pairs=[(four[0], four[3])], gold_share=0.3, repeat_share=0.3, seed=16)
    served: Counter = Counter()
    judged: list[dict] = []
    columns = ["rater_id", "left_image_id", "right_image_id", "choice", "pair_kind"]
    while (pair := sampler.next_pair("r", pd.DataFrame(judged, columns=columns), served=served,
                                     answered=served)) is not None:  # each pair answered as it is served
        key = frozenset((pair.left, pair.right))
        assert served[key] == 0 or (pair.kind == "repeat" and served[key] == 1)
        served[key] += 1
        judged.append({"rater_id": "r", "left_image_id": pair.left, "right_image_id": pair.right, "choice": "left",
                       "pair_kind": pair.kind})
        assert len(judged) <= 12
    assert len(served) == 6 and set(served.values()) <= {1, 2}
    assert sampler.next_pair("r", served=served, answered=served) is None
    assert sampler.next_pair("someone-else", served=Counter()) is not None


def test_a_pair_served_and_never_answered_comes_back_only_once_every_other_was_served():
    sampler = ActiveSampler(IDS[:4], gold_share=0, repeat_share=0, seed=18)
    served, answered = Counter(), Counter()
    abandoned = sampler.next_pair("r", served=served)  # the page was reloaded: never answered
    served[frozenset((abandoned.left, abandoned.right))] += 1
    for _ in range(5):
        pair = sampler.next_pair("r", served=served, answered=answered)
        key = frozenset((pair.left, pair.right))
        assert served[key] == 0
        served[key] += 1
        answered[key] += 1
    again = sampler.next_pair("r", served=served, answered=answered)
    assert frozenset((again.left, again.right)) == frozenset((abandoned.left, abandoned.right))
    answered[frozenset((again.left, again.right))] += 1
    assert sampler.next_pair("r", served=served, answered=answered) is None


def test_with_what_a_rater_was_served_same_content_pairs_never_fall_back_to_other_photos():
    content = {i: i[:3] for i in ["catA", "catB", "dogA", "dogB"]}
    sampler = ActiveSampler(list(content), content_of=content, gold_share=0, repeat_share=0,
                            same_content_share=1.0, seed=17)
    served: Counter = Counter()
    while (pair := sampler.next_pair("r", served=served, answered=served)) is not None:
        assert content[pair.left] == content[pair.right]
        served[frozenset((pair.left, pair.right))] += 1
    assert len(served) == 2
