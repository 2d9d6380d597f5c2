"""Top-1 accuracy of the embedding router on the hand-labelled sets (the real model, on
CPU, offline), with each set's confusion matrix printed (`pytest -s` shows it). Floors:
85 % over all cases (the issue's), and 80 % on each set, so neither hides behind the
other. The figures are in docs (routing section); the router's sentence templates were
chosen on these same sets, so the numbers are not from a held-out split."""
from __future__ import annotations

import asyncio
import collections

import pytest

from switchyard.router.routing.embedding import EmbeddingClassifier
from tests.routing_eval.cases import SETS, EvalSet, load

OVERALL_FLOOR = 0.85
SET_FLOOR = 0.80


@pytest.fixture(scope="module")
def encoder():
    from switchyard.router.routing.minilm import MiniLM
    return MiniLM()


def evaluate(encoder, s: EvalSet) -> tuple[int, collections.Counter]:
    async def run() -> tuple[int, collections.Counter]:
        clf = EmbeddingClassifier(encoder.embed, threshold=-1.0)   # top-1: no "none"
        await clf.start(s.routes)
        matrix: collections.Counter = collections.Counter()
        hits = 0
        for case in s.cases:
            choice = await clf.classify(case.messages, s.routes)
            got = choice.route or "none"
            matrix[(case.label, got)] += 1
            hits += got == case.label
        await clf.close()
        return hits, matrix
    return asyncio.run(run())


def confusion(s: EvalSet, matrix: collections.Counter) -> str:
    """Rows: the label; columns: what the router picked (route initials as headers)."""
    names = [r.name for r in s.routes] + (["none"] if any(g == "none" for _, g in matrix)
                                          else [])
    short = ["".join(w[0] for w in n.split()) for n in names]
    width = max(len(n) for n in names)
    lines = [" " * width + " | " + " ".join(f"{h:>4}" for h in short)]
    for n in names[:len(s.routes)]:
        lines.append(f"{n:<{width}} | " + " ".join(f"{matrix[(n, g)]:>4}" for g in names))
    return "\n".join(lines)


def test_embedding_router_top1_accuracy(encoder, capsys):
    total = hits_all = 0
    per_set = {}
    for name in SETS:
        s = load(name)
        hits, matrix = evaluate(encoder, s)
        per_set[name] = hits / len(s.cases)
        total += len(s.cases)
        hits_all += hits
        with capsys.disabled():
            print(f"\n{name}: top-1 {hits}/{len(s.cases)} = {per_set[name]:.1%}")
            print(confusion(s, matrix))
    overall = hits_all / total
    with capsys.disabled():
        print(f"\nall sets: top-1 {hits_all}/{total} = {overall:.1%}")
    assert total >= 150
    assert overall >= OVERALL_FLOOR, per_set
    assert all(v >= SET_FLOOR for v in per_set.values()), per_set


def test_the_sets_have_conversations_and_tool_turns():
    for name in SETS:
        s = load(name)
        multi = [c for c in s.cases if sum(m.role == 1 for m in c.messages) > 1]
        assert len(multi) >= 4, name   # conversations whose route changes
    assert len(load("assistant_routes").routes) >= 6
