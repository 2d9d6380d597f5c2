"""Which token budgets a request draws on, and how many tokens it reserves: pure functions
of the config, the decoded request, its route plan and its headers."""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from switchyard.common.canonical.mappings import default_max_tokens
from switchyard.common.canonical.token_estimate import estimate_tokens
from switchyard.common.config.model import RateLimitRule
from switchyard.common.proto import chat_pb2, router_pb2
from switchyard.edge.limits.base import RATELIMITS, Bucket


def digest(text: str) -> str:
    """A short stable name for a value that must not be a key itself (header values)."""
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class RuleSet:
    """Plano's `ratelimits` entries, matched by model name and request header."""

    def __init__(self, rules: Iterable[RateLimitRule]) -> None:
        self.rules = tuple(rules)
        # Each entry's counter name: the same on every edge, whatever the entries' order.
        self.ids = {r: digest(f"{r.model}\n{r.header}\n{r.value}") for r in self.rules}

    def __bool__(self) -> bool:
        return bool(self.rules)

    def buckets(self, names: set[str], headers: Mapping[str, str]) -> list[Bucket]:
        """The budgets of entries whose model is one of `names` and whose header the request
        carries. As in Plano, an entry with the header's exact value wins over one without
        a value for the same model and header; entries for other headers all apply."""
        chosen: dict[tuple[str, str], tuple[RateLimitRule, str]] = {}
        for rule in self.rules:
            if rule.model not in names:
                continue
            value = headers.get(rule.header)
            if value is None:
                continue
            slot = (rule.model, rule.header)
            if rule.value is not None:
                if value == rule.value:
                    chosen[slot] = (rule, value)
            elif slot not in chosen:
                chosen[slot] = (rule, value)
        return [self._bucket(rule, value) for rule, value in chosen.values()]

    def _bucket(self, rule: RateLimitRule, value: str) -> Bucket:
        key = "rl:" + self.ids[rule]
        if rule.value is None:   # one budget per value of the header
            key += ":" + digest(value)
        return Bucket(key, float(rule.tokens), rule.unit_s,
                      f"{rule.tokens} tokens per {rule.unit} for model {rule.model} with "
                      f"header {rule.header} (ratelimits)", RATELIMITS)


def model_names(req: chat_pb2.ChatRequest, plan: router_pb2.RoutePlan) -> set[str]:
    """Every name a `ratelimits` entry may give the model: as the client sent it, the
    resolved name, and the first targets' entry, `provider/model` and upstream names."""
    names = {req.model, plan.name}
    for target in plan.targets[:max(1, plan.weighted_count)]:
        prefix = target.provider.partition("/")[0]
        names.update((target.model, target.provider, f"{prefix}/{target.model}"))
    return names


def reservation_size(req: chat_pb2.ChatRequest, plan: router_pb2.RoutePlan) -> int:
    """Tokens held at admit: the estimated input plus the output allowed (`max_tokens`, or
    the model's default output limit from the mappings table, which Anthropic and Bedrock
    routes send upstream when the client gives none)."""
    if req.HasField("max_tokens"):
        output = max(0, req.max_tokens)
    else:
        output = default_max_tokens(plan.targets[0].model if plan.targets else req.model)
    return estimate_tokens(req) + output


def used_tokens(usage: chat_pb2.Usage) -> int:
    """What a finished turn cost against a token budget: all input (cached included) and
    all output (reasoning included)."""
    return (usage.input_tokens + usage.cache_read_tokens + usage.cache_creation_tokens
            + usage.output_tokens)
