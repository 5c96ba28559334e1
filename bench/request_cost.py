"""What one rating request costs the server, one at a time: Gradio's API against the rating page's routes.

Starts ``python app.py`` with the talk bench's campaign and, with a single
client and no concurrency, times ``--calls`` sequential requests of each kind:
a pair, one of its images, a vote, and Gradio's cheapest endpoint
(``/galleries``, which runs no app code) as the floor of Gradio's own cost.
With one client the latency is the server's time (plus a fraction of a
millisecond of client and loopback), so the sum for one pair + two images +
one vote bounds the votes a second one core can serve::

    python bench/request_cost.py --report docs/performance_load.md
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.talk import CAMPAIGN, campaign_app, publish, unqueued_endpoints, wait_until_scored  # noqa: E402
from space.services.config import AppConfig  # noqa: E402


async def measure(url: str, calls: int) -> dict[str, dict[str, float]]:
    """Mean milliseconds per request, by path and kind."""
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async def gradio(name: str, data: list, session: str):
            async with http.post(f"{url}gradio_api/run/{name}", json={"data": data, "session_hash": session}) as r:
                r.raise_for_status()
                return (await r.json())["data"]

        async def page(name: str, body: dict, session: str):
            async with http.post(f"{url}api/rate/{name}", json=body, headers={"x-rating-session": session}) as r:
                r.raise_for_status()
                return await r.json()

        async def fetch(address: str):
            async with http.get(address) as r:
                r.raise_for_status()
                await r.read()

        async def looked() -> None:
            """Wait as a person looks at a pair, untimed: the app refuses answers sooner (``min_answer_ms``)."""
            await asyncio.sleep(AppConfig().min_answer_ms / 1000 + 0.05)

        async def timed(step) -> float:
            started = time.perf_counter()
            for k in range(calls):
                await step(k)
            return (time.perf_counter() - started) / calls * 1000

        # one rater (and session) per pair and vote, issued before timing: a rater may vote 60 times a minute
        sessions = [uuid.uuid4().hex for _ in range(calls)]
        raters = [(await gradio("rater", [CAMPAIGN], session))[0] for session in sessions]
        results: dict[str, dict[str, float]] = {"Gradio's API": {}, "rating page routes": {}}
        pairs: list = []

        async def gradio_pair(k: int):
            pairs.append(await gradio("next_pair", [raters[k], CAMPAIGN], sessions[k]))

        async def gradio_vote(k: int):
            answer = await gradio("vote", [raters[k], pairs[k][0]["ticket"], "left", None], sessions[k])
            assert answer[0]["stored"] == "judgement", answer

        cost = results["Gradio's API"]
        cost["no app code (`/galleries`)"] = await timed(lambda k: gradio("galleries", [], sessions[k]))
        cost["pair"] = await timed(gradio_pair)
        cost["image"] = await timed(lambda k: fetch(pairs[k][1]["url"]))
        await looked()
        cost["vote"] = await timed(gradio_vote)

        shown: list = []

        async def page_pair(k: int):
            shown.append(await page("next_pair", {"rater_id": raters[k], "campaign": CAMPAIGN}, sessions[k]))

        async def page_vote(k: int):
            answer = await page("vote", {"rater_id": raters[k], "ticket": shown[k]["ticket"]["ticket"],
                                         "choice": "right", "campaign": CAMPAIGN}, sessions[k])
            assert answer["stored"] == "judgement", answer

        cost = results["rating page routes"]
        cost["pair"] = await timed(page_pair)
        cost["image"] = await timed(lambda k: fetch(url + shown[k]["left"]))
        await looked()
        cost["vote"] = await timed(page_vote)
        return results


def report(results: dict[str, dict[str, float]], calls: int) -> str:
    lines = ["## Cost of one rating request, one at a time", "",
             "```bash", f"python bench/request_cost.py --calls {calls} --report docs/performance_load.md", "```", "",
             f"One client, no concurrency, {calls} sequential requests of each kind against `python app.py` with the "
             "talk bench's campaign, after the background scoring covered it; mean milliseconds per request (server time plus well under a millisecond of "
             "client and loopback). A vote includes the fsync that makes it durable. *Cycle* = one pair, its two "
             "images and one vote, the work behind one judgement.", "",
             "| path | no app code | pair | image | vote | cycle | cycles a second on one core |", "|---|---|---|---|---|---|---|"]
    for path, cost in results.items():
        cycle = cost["pair"] + 2 * cost["image"] + cost["vote"]
        floor = f"{cost['no app code (`/galleries`)']:.1f}" if "no app code (`/galleries`)" in cost else "–"
        lines.append(f"| {path} | {floor} | {cost['pair']:.1f} | {cost['image']:.1f} | {cost['vote']:.1f} | "
                     f"{cycle:.1f} | {1000 / cycle:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="sequential requests of each kind")
    parser.add_argument("--model", type=Path, help="model bundle to serve (default: the installed one)")
    parser.add_argument("--report", type=Path, help="also write the table into this markdown file")
    args = parser.parse_args(argv)
    with campaign_app(args.model, "cvrkd-cost-") as url:
        asyncio.run(wait_until_scored(url, timeout_s=900, direct=unqueued_endpoints(url)))  # a quiet server
        results = asyncio.run(measure(url, args.calls))
    publish(report(results, args.calls), args.report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
