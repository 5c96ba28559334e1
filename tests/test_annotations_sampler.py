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
