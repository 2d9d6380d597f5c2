"""Responses tools an agent client (Codex) sends: namespace, custom, tool_search, hosted
tools; the input items they produce; calls mapped back to the client's item types, whole
and streamed, and read back by the real openai SDK."""
from __future__ import annotations

import httpx
import openai
import orjson
import pytest

from switchyard.common.canonical.aggregate import aggregate
from switchyard.common.errors import GatewayError
from switchyard.common.proto import chat_pb2
from switchyard.edge.formats import openai_responses as r
from switchyard.edge.formats.openai_responses.tools import CUSTOM_SCHEMA, flat_name
from switchyard.edge.formats.openai_responses.unwrap import InputStream
from switchyard.providers.adapters import events as E
from tests.unit.test_format_responses import parse_sse

NS_TOOL = {"type": "namespace", "name": "crm", "description": "Customer records",
           "tools": [{"type": "function", "name": "lookup", "description": "Find a customer",
                      "parameters": {"type": "object", "properties": {
                          "id": {"type": "string"}}}},
                     {"type": "custom", "name": "note"}]}
PATCH_TOOL = {"type": "custom", "name": "apply_patch", "description": "Edit files",
              "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}}
SEARCH_TOOL = {"type": "tool_search", "execution": "client", "description": "Find tools"}
HOSTED = [{"type": "web_search"}, {"type": "file_search", "vector_store_ids": ["vs_1"]},
          {"type": "code_interpreter", "container": {"type": "auto"}},
          {"type": "computer_use_preview", "display_width": 1, "display_height": 1,
           "environment": "linux"},
          {"type": "image_generation"}, {"type": "mcp", "server_label": "x",
                                         "server_url": "https://mcp.example"},
          {"type": "local_shell"}, {"type": "web_search_preview"}]
TOOLS = [NS_TOOL, PATCH_TOOL, SEARCH_TOOL, *HOSTED]


def decode(**body):
    return r.decode_request({"model": "m", "input": "hi", **body})


def by_name(req: chat_pb2.ChatRequest) -> dict[str, chat_pb2.Tool]:
    return {t.name: t for t in req.tools if t.type == "function"}


# ---- tools -------------------------------------------------------------------------------
def test_every_tool_type_decodes_none_is_a_400():
    req, ctx = decode(tools=TOOLS)
    fns = by_name(req)
    assert set(fns) == {"crm__lookup", "crm__note", "apply_patch", "tool_search"}
    assert orjson.loads(fns["crm__lookup"].parameters_json) == NS_TOOL["tools"][0]["parameters"]
    assert "Customer records" in fns["crm__lookup"].description
    assert orjson.loads(fns["crm__note"].parameters_json) == CUSTOM_SCHEMA
    # the grammar the client would have enforced is told to the model
    assert "lark" in fns["apply_patch"].description and "start: /.+/" in \
        fns["apply_patch"].description
    assert orjson.loads(fns["apply_patch"].parameters_json) == CUSTOM_SCHEMA
    assert fns["tool_search"].description == "Find tools"
    native = [t.type for t in req.tools if t.type != "function"]
    assert native == [t["type"] for t in HOSTED]   # carried; upstreams drop and report them
    assert ctx.tools[:3] == [NS_TOOL, PATCH_TOOL, SEARCH_TOOL]   # echoed as sent
    assert ctx.tool_map.origin("crm__lookup").namespace == "crm"
    assert ctx.tool_map.origin("apply_patch").kind == "custom"


def test_server_executed_tool_search_is_a_hosted_tool():
    req, _ = decode(tools=[{"type": "tool_search"}])
    assert [t.type for t in req.tools] == ["tool_search"]


def test_flat_names_fit_every_upstream():
    assert flat_name("crm", "lookup") == "crm__lookup"
    assert flat_name("mcp.git hub", "x") == "mcp_git_hub__x"
    long = flat_name("n" * 50, "t" * 50)
    assert len(long) == 64 and long != flat_name("n" * 50, "t" * 51)


@pytest.mark.parametrize("tools, param", [
    ([{"type": "namespace", "name": "ns"}], "tools[0].tools"),
    ([{"type": "namespace", "name": "ns", "tools": [{"type": "web_search"}]}],
     "tools[0].tools[0].type"),
    ([{"type": "custom"}], "tools[0].name"),
    ([{"type": "custom", "name": "c", "format": "lark"}], "tools[0].format"),
    ([{"type": "tool_search", "execution": "client", "parameters": "x"}],
     "tools[0].parameters"),
    ([{"type": 3}], "tools[0].type"),
    ([{"type": "A" * 1000}], "tools[0].type"),
    ([{"type": "Web Search"}], "tools[0].type"),
])
def test_malformed_agent_tools_are_400_naming_the_field(tools, param):
    with pytest.raises(GatewayError) as info:
        decode(tools=tools)
    assert info.value.http_status == 400 and info.value.param == param


@pytest.mark.parametrize("choice, mode, name", [
    ({"type": "custom", "name": "apply_patch"}, chat_pb2.ToolChoice.MODE_NAMED, "apply_patch"),
    ({"type": "function", "name": "lookup", "namespace": "crm"},
     chat_pb2.ToolChoice.MODE_NAMED, "crm__lookup"),
    ({"type": "web_search_preview"}, chat_pb2.ToolChoice.MODE_AUTO, ""),
])
def test_tool_choice_of_each_kind(choice, mode, name):
    req, ctx = decode(tools=TOOLS, tool_choice=choice)
    assert req.tool_choice.mode == mode and req.tool_choice.name == name
    assert ("tool_choice" in ctx.dropped) == (choice["type"] == "web_search_preview")
    assert ctx.tool_choice == choice


def test_allowed_tools_narrows_the_tools():
    req, _ = decode(tools=TOOLS, tool_choice={"type": "allowed_tools", "mode": "required",
                                              "tools": [{"type": "custom",
                                                         "name": "apply_patch"}]})
    assert set(by_name(req)) == {"apply_patch"}
    assert req.tool_choice.mode == chat_pb2.ToolChoice.MODE_REQUIRED


# ---- input items -------------------------------------------------------------------------
def test_the_next_turns_items_decode_to_calls_and_results():
    items = [
        {"role": "user", "content": "fix it"},
        {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "lookup",
         "namespace": "crm", "arguments": '{"id":"7"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "Ada"},
        {"type": "custom_tool_call", "id": "ctc_1", "call_id": "c2", "name": "apply_patch",
         "input": "*** Begin Patch\n*** End Patch"},
        {"type": "custom_tool_call_output", "call_id": "c2", "output": "Done!"},
        {"type": "tool_search_call", "id": "tsc_1", "call_id": "c3", "execution": "client",
         "arguments": {"query": "calendar"}},
        {"type": "tool_search_output", "call_id": "c3", "execution": "client",
         "tools": [{"type": "function", "name": "book", "parameters": {"type": "object"}}]},
        {"type": "web_search_call", "id": "ws_1", "status": "completed",
         "action": {"type": "search", "query": "x"}},
        {"type": "additional_tools", "role": "developer",
         "tools": [{"type": "function", "name": "extra_fn"}]},
    ]
    req, ctx = decode(tools=TOOLS, input=items)
    roles = [m.role for m in req.messages]
    assert roles == [chat_pb2.ROLE_USER, chat_pb2.ROLE_ASSISTANT, chat_pb2.ROLE_USER,
                     chat_pb2.ROLE_ASSISTANT, chat_pb2.ROLE_USER, chat_pb2.ROLE_ASSISTANT,
                     chat_pb2.ROLE_USER]
    calls = [m.parts[0].tool_call for m in req.messages if m.role == chat_pb2.ROLE_ASSISTANT]
    assert [(c.id, c.name) for c in calls] == [("c1", "crm__lookup"), ("c2", "apply_patch"),
                                               ("c3", "tool_search")]
    assert orjson.loads(calls[1].arguments_json) == {"input": "*** Begin Patch\n*** End Patch"}
    assert orjson.loads(calls[2].arguments_json) == {"query": "calendar"}
    results = [m.parts[0].tool_result for m in req.messages[2::2]]
    assert [x.tool_call_id for x in results] == ["c1", "c2", "c3"]
    assert results[1].content[0].text.text == "Done!"
    assert "book" in results[2].content[0].text.text
    # tools loaded by the search and given by additional_tools become callable
    assert {"book", "extra_fn"} <= set(by_name(req))
    assert ctx.dropped == ["input[web_search_call]"]
    assert [i["type"] for i in ctx.input_items] == ["message", *[i["type"] for i in items[1:]]]


# ---- calls back to items -----------------------------------------------------------------
def call_events() -> list[chat_pb2.StreamEvent]:
    return [E.start("u1", "gpt-x"),
            E.block_start(0, E.tool_part("call_p", "apply_patch")),
            E.arguments(0, '{"input": "*** Begin'), E.arguments(0, ' Patch\\n\\u00e9\\ud83d'),
            E.arguments(0, '\\ude00"}'), E.block_stop(0),
            E.block_start(1, E.tool_part("call_l", "crm__lookup")),
            E.arguments(1, '{"id":"7"}'), E.block_stop(1),
            E.block_start(2, E.tool_part("call_s", "tool_search")),
            E.arguments(2, '{"query": "cal'), E.arguments(2, 'endar"}'), E.block_stop(2),
            E.finish(chat_pb2.STOP_REASON_TOOL_USE)]


PATCH = "*** Begin Patch\n\u00e9\U0001F600"


def test_calls_map_back_to_the_clients_item_types():
    _, ctx = decode(tools=TOOLS)
    out = r.encode_response(aggregate(call_events()), model="m", response_id="resp_1",
                            created=1, ctx=ctx)["output"]
    assert [o["type"] for o in out] == ["custom_tool_call", "function_call", "tool_search_call"]
    assert out[0]["input"] == PATCH and out[0]["name"] == "apply_patch"
    assert out[1]["name"] == "lookup" and out[1]["namespace"] == "crm"
    assert out[2]["arguments"] == {"query": "calendar"} and out[2]["execution"] == "client"


def test_streamed_custom_input_comes_as_its_own_deltas():
    req, ctx = decode(tools=TOOLS, stream=True)
    enc = r.StreamEncoder("m", "resp_1", 1, req, ctx)
    frames = parse_sse(b"".join(enc.encode([e]) for e in call_events()) + enc.completed())
    kinds = [k for k, _ in frames]
    deltas = [p["delta"] for k, p in frames if k == "response.custom_tool_call_input.delta"]
    assert "".join(deltas) == PATCH and len(deltas) == 3
    done = next(p for k, p in frames if k == "response.custom_tool_call_input.done")
    assert done["input"] == PATCH
    added = [p["item"] for k, p in frames if k == "response.output_item.added"]
    assert [a["type"] for a in added] == ["custom_tool_call", "function_call",
                                          "tool_search_call"]
    assert added[1]["namespace"] == "crm"
    assert kinds.count("response.function_call_arguments.delta") == 1   # lookup only
    final = frames[-1][1]["response"]
    assert [o["type"] for o in final["output"]] == [a["type"] for a in added]


def test_custom_arguments_of_another_shape_arrive_whole_at_the_end():
    req, ctx = decode(tools=TOOLS, stream=True)
    enc = r.StreamEncoder("m", "resp_1", 1, req, ctx)
    evs = [E.start("u", "m"), E.block_start(0, E.tool_part("c", "apply_patch")),
           E.arguments(0, '{"patch": "x"}'), E.block_stop(0),
           E.finish(chat_pb2.STOP_REASON_TOOL_USE)]
    frames = parse_sse(enc.encode(evs))
    deltas = [p["delta"] for k, p in frames if k == "response.custom_tool_call_input.delta"]
    assert deltas == ['{"patch": "x"}']


@pytest.mark.parametrize("value", ["plain", "quote \" and \\ back", "line\nbreak", "",
                                   "emoji \U0001F600 and \u00e9"])
def test_input_stream_decodes_any_split(value):
    for ascii_only in (False, True):
        raw = orjson.dumps({"input": value}).decode()
        if ascii_only:
            raw = raw.encode("ascii", "backslashreplace").decode().replace(
                "\\U0001f600", "\\ud83d\\ude00").replace("\\xe9", "\\u00e9")
        for step in (1, 2, 3, 7):
            s = InputStream()
            got = "".join(s.feed(raw[i:i + step]) for i in range(0, len(raw), step))
            assert got == value


def test_the_sdk_reads_custom_and_namespaced_calls():
    def handler(request: httpx.Request) -> httpx.Response:
        req, ctx = r.decode_request(orjson.loads(request.content))
        enc = r.StreamEncoder("m", "resp_1", 1, req, ctx)
        body = b"".join(enc.encode([e]) for e in call_events()) + enc.completed()
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})
    client = openai.OpenAI(api_key="k", base_url="http://gw.test/v1", max_retries=0,
                           http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    with client.responses.stream(model="m", input="go", tools=TOOLS) as stream:
        types = [e.type for e in stream]
        final = stream.get_final_response()
    assert "response.custom_tool_call_input.delta" in types
    custom, fn, search = final.output
    assert custom.type == "custom_tool_call" and custom.input == PATCH
    assert fn.type == "function_call" and fn.namespace == "crm" and fn.name == "lookup"
    assert search.type == "tool_search_call" and search.arguments == {"query": "calendar"}


# ---- what the object echoes --------------------------------------------------------------
def test_text_format_echo_is_what_the_route_applied():
    fmt = {"type": "json_schema", "name": "p", "schema": {"type": "object"}}
    _, ctx = decode(text={"format": fmt})
    evs = [E.start("u", "m"), E.finish(chat_pb2.STOP_REASON_END_TURN)]
    applied = r.encode_response(aggregate(evs), model="m", response_id="resp_1", created=1,
                                ctx=ctx)
    assert applied["text"]["format"] == fmt
    evs[0].start.dropped_params.append("response_format")
    dropped = r.encode_response(aggregate(evs), model="m", response_id="resp_1", created=1,
                                ctx=ctx)
    assert dropped["text"]["format"] == {"type": "text"}


def test_prompt_cache_key_is_canonical():
    req, _ = decode(prompt_cache_key="thread-7")
    assert req.prompt_cache_key == "thread-7" and b"prompt_cache_key" not in req.extra_json
