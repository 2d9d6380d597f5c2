"""One conformance case, driven through either SDK, normalised to one result shape so the
matrix can assert the same facts whatever the client format."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

# One model per upstream family, for the client suites that run on each (LangChain, AI SDK).
ROUTE_MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-5-20250929",
                "gemini": "gemini-2.5-flash"}
TOOL_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}},
               "required": ["city"]}
PNG_1PX = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


@dataclass
class Result:
    text: str = ""
    tool_calls: list[tuple[str, str, dict]] = field(default_factory=list)
    stop: str = ""              # end | tool | max | stop_sequence
    reasoning: str = ""
    input_tokens: int = 0       # prompt side, as the client's format counts it
    output_tokens: int = 0
    raw: object = None          # the SDK's own object (final message / completion)


OPENAI_STOP = {"stop": "end", "tool_calls": "tool", "length": "max", "content_filter": "refusal"}
ANTHROPIC_STOP = {"end_turn": "end", "tool_use": "tool", "max_tokens": "max",
                  "stop_sequence": "stop_sequence", "refusal": "refusal"}


class OpenAIChatClient:
    name = "chat"

    def __init__(self, sdk):
        self.sdk = sdk

    def ask(self, model: str, messages: list[dict], *, stream=False, tools=False, **kw) -> Result:
        params = dict(model=model, messages=messages, **kw)
        if tools:
            params["tools"] = [{"type": "function", "function": {
                "name": "get_weather", "description": "Weather", "parameters": TOOL_SCHEMA}}]
        if not stream:
            c = self.sdk.chat.completions.create(**params)
            m = c.choices[0].message
            return Result(
                text=m.content or "",
                tool_calls=[(t.id, t.function.name, json.loads(t.function.arguments or "{}"))
                            for t in m.tool_calls or []],
                stop=OPENAI_STOP[c.choices[0].finish_reason],
                reasoning=(m.model_extra or {}).get("reasoning_content") or "",
                input_tokens=c.usage.prompt_tokens, output_tokens=c.usage.completion_tokens,
                raw=c)
        r = Result()
        calls: dict[int, list] = {}
        params["stream_options"] = {"include_usage": True}
        for chunk in self.sdk.chat.completions.create(stream=True, **params):
            if chunk.usage:
                r.input_tokens = chunk.usage.prompt_tokens
                r.output_tokens = chunk.usage.completion_tokens
            if not chunk.choices:
                continue
            d = chunk.choices[0].delta
            r.text += d.content or ""
            r.reasoning += (d.model_extra or {}).get("reasoning_content") or ""
            for tc in d.tool_calls or []:
                entry = calls.setdefault(tc.index, [tc.id, "", ""])
                entry[1] += (tc.function.name or "") if tc.function else ""
                entry[2] += (tc.function.arguments or "") if tc.function else ""
            if chunk.choices[0].finish_reason:
                r.stop = OPENAI_STOP[chunk.choices[0].finish_reason]
        r.tool_calls = [(i, n, json.loads(a or "{}")) for i, n, a in
                        (calls[k] for k in sorted(calls))]
        return r

    def tool_turn(self, call_id: str, result: str) -> list[dict]:
        return [{"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": None, "tool_calls": [{
                    "id": call_id, "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
                {"role": "tool", "tool_call_id": call_id, "content": result}]

    def image_message(self) -> list[dict]:
        return [{"role": "user", "content": [
            {"type": "text", "text": "What is in this image?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_1PX}"}}]}]

    def stop_kw(self, seq: str) -> dict:
        return {"stop": [seq]}


class AnthropicClient:
    name = "messages"

    def __init__(self, sdk):
        self.sdk = sdk

    def ask(self, model: str, messages: list[dict], *, stream=False, tools=False, **kw) -> Result:
        params = dict(model=model, messages=messages, max_tokens=kw.pop("max_tokens", 256), **kw)
        if tools:
            params["tools"] = [{"name": "get_weather", "description": "Weather",
                                "input_schema": TOOL_SCHEMA}]
        if stream:
            with self.sdk.messages.stream(**params) as s:
                for _ in s:
                    pass
                msg = s.get_final_message()
        else:
            msg = self.sdk.messages.create(**params)
        r = Result(stop=ANTHROPIC_STOP[msg.stop_reason], raw=msg,
                   input_tokens=msg.usage.input_tokens + (msg.usage.cache_read_input_tokens or 0),
                   output_tokens=msg.usage.output_tokens)
        for block in msg.content:
            if block.type == "text":
                r.text += block.text
            elif block.type == "tool_use":
                r.tool_calls.append((block.id, block.name, block.input))
            elif block.type == "thinking":
                r.reasoning += block.thinking
        return r

    def tool_turn(self, call_id: str, result: str) -> list[dict]:
        return [{"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": call_id,
                                                   "name": "get_weather",
                                                   "input": {"city": "Paris"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call_id,
                                              "content": result}]}]

    def image_message(self) -> list[dict]:
        return [{"role": "user", "content": [
            {"type": "text", "text": "What is in this image?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": PNG_1PX}}]}]

    def stop_kw(self, seq: str) -> dict:
        return {"stop_sequences": [seq]}


GEMINI_STOP = {"STOP": "end", "MAX_TOKENS": "max", "SAFETY": "refusal"}


class GeminiClient:
    """Google's SDK (google-genai) against the gateway's generateContent routes. Messages in
    the matrix's plain {"role", "content": str} shape are turned into Gemini contents; the
    ones this class builds (tool_turn, image_message) are Gemini contents already."""
    name = "gemini"

    def __init__(self, sdk):
        self.sdk = sdk

    @staticmethod
    def contents(messages: list[dict]) -> list[dict]:
        out = []
        for m in messages:
            if "parts" in m:
                out.append(m)
            else:
                out.append({"role": "model" if m["role"] == "assistant" else "user",
                            "parts": [{"text": m["content"]}]})
        return out

    def config(self, tools: bool, kw: dict):
        from google.genai import types
        params = {}
        if "max_tokens" in kw:
            params["max_output_tokens"] = kw.pop("max_tokens")
        params.update(kw)
        if tools:
            params["tools"] = [types.Tool(function_declarations=[types.FunctionDeclaration(
                name="get_weather", description="Weather", parameters_json_schema=TOOL_SCHEMA)])]
        return types.GenerateContentConfig(**params)

    def ask(self, model: str, messages: list[dict], *, stream=False, tools=False, **kw) -> Result:
        args = dict(model=model, contents=self.contents(messages), config=self.config(tools, kw))
        r = Result()
        finish = None
        chunks = (self.sdk.models.generate_content_stream(**args) if stream
                  else [self.sdk.models.generate_content(**args)])
        for chunk in chunks:
            r.raw = chunk
            if chunk.usage_metadata and chunk.usage_metadata.prompt_token_count is not None:
                u = chunk.usage_metadata
                r.input_tokens = u.prompt_token_count or 0
                r.output_tokens = (u.candidates_token_count or 0) + (u.thoughts_token_count or 0)
            if not chunk.candidates:
                continue
            cand = chunk.candidates[0]
            finish = cand.finish_reason or finish
            for part in (cand.content.parts if cand.content and cand.content.parts else []):
                if part.function_call:
                    fc = part.function_call
                    r.tool_calls.append((fc.id, fc.name, dict(fc.args or {})))
                elif part.thought:
                    r.reasoning += part.text or ""
                elif part.text:
                    r.text += part.text
        name = finish.value if finish is not None else ""
        r.stop = "tool" if r.tool_calls and name == "STOP" else GEMINI_STOP.get(name, name)
        return r

    def tool_turn(self, call_id: str, result: str) -> list[dict]:
        return [{"role": "user", "parts": [{"text": "Weather in Paris?"}]},
                {"role": "model", "parts": [{"function_call": {
                    "id": call_id, "name": "get_weather", "args": {"city": "Paris"}}}]},
                {"role": "user", "parts": [{"function_response": {
                    "id": call_id, "name": "get_weather", "response": {"result": result}}}]}]

    def image_message(self) -> list[dict]:
        import base64
        return [{"role": "user", "parts": [
            {"text": "What is in this image?"},
            {"inline_data": {"mime_type": "image/png", "data": base64.b64decode(PNG_1PX)}}]}]

    def stop_kw(self, seq: str) -> dict:
        return {"stop_sequences": [seq]}


def gemini_sdk(gateway_url: str, api_key: str = "test-key"):
    """google-genai pointed at the gateway (no retries: the tests count attempts)."""
    from google import genai
    from google.genai import types
    return genai.Client(api_key=api_key, http_options=types.HttpOptions(
        base_url=gateway_url, timeout=30_000, retry_options=types.HttpRetryOptions(attempts=1)))
