"""The `llm` router: the model named by `overrides.llm_routing_model` (Arch-Router or
Plano-Orchestrator served by Ollama or vLLM, or any configured chat model) asked in Plano's
protocol (routing/plano_prompt.py) through the providers service, like any request. A
timeout, an upstream error or an answer outside the protocol is no route: the request
keeps its model."""
from __future__ import annotations

import logging
from collections.abc import Sequence

import grpc

from switchyard.common.canonical.aggregate import Turn, TurnBuilder, turn_message
from switchyard.common.config.model import Config, RoutePreference
from switchyard.common.proto import chat_pb2, providers_pb2, providers_pb2_grpc, router_pb2
from switchyard.edge.clients.channel import open_channel  # the one channel factory
from switchyard.router.resolution import resolve
from switchyard.router.routing.base import Choice
from switchyard.router.routing.plano_prompt import BadAnswer, build_prompt, parse_answer

log = logging.getLogger(__name__)
MAX_ANSWER_TOKENS = 128   # `{"route": [...]}` needs a few dozen
TEMPERATURE = 0.01        # as Plano asks its routing model


class LlmClassifier:
    """Asks the routing model; its first known route wins."""

    name = "llm"

    def __init__(self, config: Config) -> None:
        routing = config.routing
        assert routing.llm_model is not None
        self.model = routing.llm_model
        self.context_tokens = routing.llm_context_tokens
        self.timeout_s = routing.llm_timeout_s
        self._config = config
        self._channel: grpc.aio.Channel | None = None
        self._stub: providers_pb2_grpc.ProvidersStub | None = None

    async def start(self, routes: Sequence[RoutePreference]) -> None:
        self._channel = open_channel(self._config.services.providers)
        self._stub = providers_pb2_grpc.ProvidersStub(self._channel)

    def request(self, messages: Sequence[router_pb2.RouteMessage],
                routes: Sequence[RoutePreference]) -> chat_pb2.ChatRequest:
        """The routing model's request: one user message holding the whole prompt."""
        prompt = build_prompt(routes, messages, self.context_tokens)
        req = chat_pb2.ChatRequest(model=self.model, temperature=TEMPERATURE,
                                   max_tokens=MAX_ANSWER_TOKENS)
        req.messages.add(role=chat_pb2.ROLE_USER).parts.add().text.text = prompt
        return req

    async def classify(self, messages: Sequence[router_pb2.RouteMessage],
                       routes: Sequence[RoutePreference], request_id: str = "",
                       traceparent: str = "") -> Choice:
        if not routes:
            return Choice(None, "no_routes")
        if not any(m.role == chat_pb2.ROLE_USER and m.text for m in messages):
            return Choice(None, "no_user_text")
        plan = resolve(self._config, self.model)
        if plan is None or self._stub is None:
            return Choice(None, "error")
        call = providers_pb2.GenerateRequest(
            request=self.request(messages, routes), plan=plan,
            request_id=f"{request_id}-route" if request_id else "route",
            traceparent=traceparent)
        try:
            batch = await self._stub.Complete(call, timeout=self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            reason = "timeout" if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED else "error"
            log.warning("routing model %s: %s (%s); the request keeps its model", self.model,
                        reason, exc.code().name)
            return Choice(None, reason)
        turn = TurnBuilder().feed_all(batch.events)
        if turn.error is not None or not turn.choices:
            log.warning("routing model %s answered with an error (%s); the request keeps its "
                        "model", self.model, turn.error.type if turn.error else "no answer")
            return Choice(None, "error")
        text = "".join(p.text.text for p in turn_message_parts(turn))
        try:
            picked = parse_answer(text, routes)
        except BadAnswer as exc:
            log.warning("routing model %s: %s; the request keeps its model", self.model, exc)
            return Choice(None, "bad_answer")
        return Choice(picked[0], "matched") if picked else Choice(None, "no_route")

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()


def turn_message_parts(turn: Turn) -> list[chat_pb2.ContentPart]:
    """The text parts of a finished turn's first choice."""
    return [p for p in turn_message(turn.choices[0]).parts if p.WhichOneof("kind") == "text"]
