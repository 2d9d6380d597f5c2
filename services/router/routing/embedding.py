"""The local router: the latest user intent and each route's name and description as
MiniLM sentence embeddings (routing/minilm.py), compared by cosine similarity. Below the
threshold no route matches and the request keeps its model. Route texts are embedded once
at start (routes sent per request: on first use, then kept)."""
from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from switchyard.common.config.model import RoutePreference
from switchyard.common.proto import chat_pb2, router_pb2
from switchyard.router.routing.base import Choice
from switchyard.router.routing.batch import Batcher, Embed

# A latest user turn this short ("now in Rust", "why?") is read with the one before it.
SHORT_WORDS = 6
MAX_CACHED_ROUTES = 1024   # embeddings of routes sent per request
# A route is several sentences: its name with its description, each alone, and each facet
# of the description ("deep analysis, mathematical problem solving, and logical
# reasoning" has three), each phrased as a request, since what they are compared with is
# a user's request. Its score is the mean of its TOP_K closest sentences. (Chosen on the
# evaluation set in tests/routing_eval/: 62 % top-1 for the bare "name: description",
# 88 % for this; docs/architecture.md, "Routing".)
TEMPLATES = ("I need {}", "help me with {}")
TOP_K = 3
# Greetings and thanks match every route a little and none well: a request closer to these
# than to its best route keeps its model (reason small_talk).
SMALL_TALK = ("hi", "hello", "hey there", "good morning", "how are you?", "thanks",
              "thank you very much", "ok", "great, thanks", "bye", "nice to meet you",
              "what's up?")
SMALL_TALK_WORDS = 4   # only a turn this short can be small talk
_FACETS = re.compile(r",|;|\band\b|\bor\b")


def route_sentences(route: RoutePreference) -> list[str]:
    """The sentences a route is compared as."""
    name = route.name.replace("_", " ").replace("-", " ").strip()
    base = [f"{name}: {route.description}", name, route.description]
    base += [f for f in (p.strip() for p in _FACETS.split(route.description)) if f]
    return [t.format(b) for t in TEMPLATES for b in base]


def intent_text(messages: Sequence[router_pb2.RouteMessage]) -> str:
    """The latest user turn's text, with the previous user turn when the latest is short;
    "" when the conversation has no user text."""
    users = [m.text for m in messages if m.role == chat_pb2.ROLE_USER and m.text.strip()]
    if not users:
        return ""
    latest = users[-1]
    if len(latest.split()) < SHORT_WORDS and len(users) > 1:
        return f"{users[-2]}\n{latest}"
    return latest


class EmbeddingClassifier:
    """Cosine similarity of the intent to each route; the best one at or above `threshold`."""

    name = "embedding"

    def __init__(self, embed: Embed, threshold: float) -> None:
        self.threshold = threshold
        self._batcher = Batcher(embed)
        self._vectors: dict[str, np.ndarray] = {}    # sentence → unit vector
        # A route list's sentence matrix and where each route's rows end (routes given
        # per request are kept too, bounded).
        self._sets: dict[tuple[RoutePreference, ...], tuple[np.ndarray, list[int]]] = {}
        self._small_talk: tuple[np.ndarray, list[int]] | None = None

    async def start(self, routes: Sequence[RoutePreference]) -> None:
        self._small_talk = (await self._batcher.embed(list(SMALL_TALK)), [len(SMALL_TALK)])
        await self._matrix_of(routes)

    async def _matrix_of(self, routes: Sequence[RoutePreference]
                         ) -> tuple[np.ndarray, list[int]]:
        """The routes' sentence vectors as rows of one matrix, and each route's end row."""
        key = tuple(routes)
        found = self._sets.get(key)
        if found is not None:
            return found
        sentences = [route_sentences(r) for r in routes]
        missing = list(dict.fromkeys(t for ts in sentences for t in ts
                                     if t not in self._vectors))
        if len(self._sets) >= MAX_CACHED_ROUTES:
            self._sets.clear()
            self._vectors.clear()
            missing = list(dict.fromkeys(t for ts in sentences for t in ts))
        if missing:
            for text, vec in zip(missing, await self._batcher.embed(missing)):
                self._vectors[text] = vec
        ends = list(np.cumsum([len(ts) for ts in sentences]))
        matrix = np.stack([self._vectors[t] for ts in sentences for t in ts])
        self._sets[key] = (matrix, ends)
        return matrix, ends

    @staticmethod
    def scores(matrix: tuple[np.ndarray, list[int]], query: np.ndarray) -> np.ndarray:
        """Each route's score: the mean similarity of its TOP_K closest sentences."""
        rows, ends = matrix
        sims = rows @ query
        out = np.empty(len(ends), np.float32)
        start = 0
        for i, end in enumerate(ends):
            part = sims[start:end]
            k = min(TOP_K, len(part))
            out[i] = np.partition(part, len(part) - k)[len(part) - k:].mean()
            start = end
        return out

    async def classify(self, messages: Sequence[router_pb2.RouteMessage],
                       routes: Sequence[RoutePreference], request_id: str = "",
                       traceparent: str = "") -> Choice:
        text = intent_text(messages)
        if not text:
            return Choice(None, "no_user_text")
        if not routes:
            return Choice(None, "no_routes")
        matrix = await self._matrix_of(routes)
        (query,) = await self._batcher.embed([text])
        scores = self.scores(matrix, query)
        best = int(np.argmax(scores))
        score = float(scores[best])
        if score < self.threshold:
            return Choice(None, "below_threshold", score)
        if self._small_talk is not None and len(text.split()) <= SMALL_TALK_WORDS and \
                float(self.scores(self._small_talk, query)[0]) > score:
            return Choice(None, "small_talk", score)
        return Choice(routes[best].name, "matched", score)

    async def close(self) -> None:
        self._batcher.close()
