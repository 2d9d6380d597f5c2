"""Prices in USD per million tokens: per-entry `pricing:` first, then cost catalogs
(`model_metrics_sources`, models.dev `api.json` or DigitalOcean's GenAI catalog) fetched
from a URL or a file and refreshed in the background. An unknown price is an unknown cost."""
from __future__ import annotations

import asyncio
import logging
import pathlib
from collections.abc import Iterable, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson

from switchyard.common.config.model import Config, CostSource, Price, ProviderEntry
from switchyard.common.proto import chat_pb2, router_pb2
from switchyard.common.refresher import Refresher

log = logging.getLogger(__name__)

FETCH_TIMEOUT_S = 20.0
MAX_CATALOG_BYTES = 64 * 1024 * 1024


def cost_usd(price: Price, usage: chat_pb2.Usage) -> float:
    """What a turn cost; reasoning tokens are part of output_tokens (priced as output)."""
    cache_read = price.input if price.cache_read is None else price.cache_read
    cache_write = price.input if price.cache_write is None else price.cache_write
    return (usage.input_tokens * price.input + usage.output_tokens * price.output
            + usage.cache_read_tokens * cache_read
            + usage.cache_creation_tokens * cache_write) / 1_000_000.0


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        n = float(value)
    except ValueError:
        return None
    return n if n >= 0 else None


def parse_models_dev(doc: Any) -> dict[str, Price]:
    """models.dev `api.json`: {provider: {models: {id: {cost: {input, output, cache_read,
    cache_write}}}}}, USD per million tokens; keys `provider/model`."""
    out: dict[str, Price] = {}
    if not isinstance(doc, dict):
        raise ValueError("a models.dev catalog is a JSON object of providers")
    for provider_id, provider in doc.items():
        models = provider.get("models") if isinstance(provider, dict) else None
        if not isinstance(models, dict):
            continue
        for model_id, model in models.items():
            cost = model.get("cost") if isinstance(model, dict) else None
            if not isinstance(cost, dict):
                continue
            inp, outp = _num(cost.get("input")), _num(cost.get("output"))
            if inp is None or outp is None:
                continue
            out[f"{provider_id}/{model_id}"] = Price(
                inp, outp, _num(cost.get("cache_read")), _num(cost.get("cache_write")))
    return out


def parse_digitalocean(doc: Any) -> dict[str, Price]:
    """DigitalOcean's GenAI model catalog: a list of models (top level, or under `data` /
    `models`), each with `model_id` (or `id`), `creator`, and `pricing` holding input and
    output prices per million tokens; keys `lowercase(creator)/model_id`."""
    items = doc
    if isinstance(doc, dict):
        items = doc.get("data", doc.get("models", doc.get("model_catalog")))
        if isinstance(items, dict):
            items = items.get("models", items.get("data"))
    if not isinstance(items, list):
        raise ValueError("a DigitalOcean catalog lists its models under data or models")
    out: dict[str, Price] = {}
    for item in items:
        if not isinstance(item, dict):
            continue
        model_id = item.get("model_id") or item.get("id")
        pricing = item.get("pricing")
        if not isinstance(model_id, str) or not isinstance(pricing, dict):
            continue
        inp = _first(pricing, "input_price_per_million", "input_price_per_million_tokens",
                     "input_per_million", "input")
        outp = _first(pricing, "output_price_per_million", "output_price_per_million_tokens",
                      "output_per_million", "output")
        if inp is None or outp is None:
            continue
        price = Price(inp, outp, _first(pricing, "cache_read_price_per_million", "cache_read"),
                      _first(pricing, "cache_write_price_per_million", "cache_write"))
        creator = item.get("creator") or item.get("provider") or ""
        if isinstance(creator, dict):
            creator = creator.get("name") or ""
        key = f"{str(creator).lower()}/{model_id}" if creator else model_id
        out[key] = price
    return out


def _first(d: Mapping[str, Any], *names: str) -> float | None:
    for name in names:
        if name in d and (n := _num(d[name])) is not None:
            return n
    return None


PARSERS = {"models.dev": parse_models_dev, "digitalocean": parse_digitalocean}


def load_catalog(source: CostSource, raw: bytes) -> dict[str, Price]:
    """Prices from a catalog's bytes, with the source's `model_aliases` applied."""
    prices = PARSERS[source.provider](orjson.loads(raw))
    for catalog_key, ours in source.aliases:
        if catalog_key in prices:
            prices[ours] = prices[catalog_key]
    return prices


async def fetch(url: str) -> bytes:
    """A catalog's bytes from http(s)://, file:// or a path (file reads off the loop)."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        import aiohttp  # here: the edge and router load it (~9 MB) only to fetch a catalog
        timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session, \
                session.get(url) as response:
            response.raise_for_status()
            return await response.content.read(MAX_CATALOG_BYTES)
    path = parts.path if parts.scheme == "file" else url
    return await asyncio.to_thread(pathlib.Path(path).read_bytes)


class PriceBook(Protocol):
    def price(self, entry: ProviderEntry | None, model: str) -> Price | None: ...


def target_price(prices: PriceBook, config: Config, target: router_pb2.Target) -> Price | None:
    """The price of one plan target: its provider entry's, for its upstream model."""
    return prices.price(config.provider(target.provider), target.model)


class Prices:
    """Price lookup for (provider entry, upstream model); catalogs refresh in a task."""

    def __init__(self, sources: Iterable[CostSource]) -> None:
        self.sources = tuple(sources)
        self.catalogs: dict[int, dict[str, Price]] = {}
        self._refresher = Refresher([s.refresh_s for s in self.sources], self._load,
                                    self._failed, self._recovered, "cost-catalogs")

    def price(self, entry: ProviderEntry | None, model: str) -> Price | None:
        """The entry's own pricing, else the first catalog knowing `provider/model`."""
        if entry is not None and entry.pricing is not None:
            return entry.pricing
        if not self.catalogs or entry is None:
            return None
        keys = [f"{entry.provider}/{model}"]
        if not entry.is_wildcard and entry.model != model:
            keys.append(f"{entry.provider}/{entry.model}")
        for i in sorted(self.catalogs):
            catalog = self.catalogs[i]
            for key in keys:
                if key in catalog:
                    return catalog[key]
        return None

    async def refresh(self, index: int) -> bool:
        """Load source `index` once; a failure keeps what was loaded and is logged once."""
        return await self._refresher.refresh(index)

    async def _load(self, index: int) -> None:
        source = self.sources[index]
        self.catalogs[index] = await asyncio.to_thread(load_catalog, source,
                                                       await fetch(source.url))

    def _failed(self, index: int, exc: Exception) -> None:
        source = self.sources[index]
        log.warning("cost catalog %s (%s) could not be loaded (%s); costs of its models stay "
                    "unknown until it can", source.url, source.provider, type(exc).__name__)

    def _recovered(self, index: int) -> None:
        log.info("cost catalog %s loaded", self.sources[index].url)

    def start(self) -> None:
        """Load every catalog now and on its refresh_interval (in the running loop)."""
        self._refresher.start()

    async def close(self) -> None:
        await self._refresher.close()
