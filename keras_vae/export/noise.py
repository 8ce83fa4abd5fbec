"""Random draws of a traced function turned into inputs.

A seeded signature (``score``, ``ancestral_sample``) draws its noise with
stateless random ops, which TFLite has no builtin kernel for. :func:`lift`
traces the seeded function once and feeds each float draw (the output of a
``StatelessRandomNormalV2``, ``StatelessRandomUniformV2``, ... op) from a new
input instead, cutting away the seed arithmetic above it. What remains is the
same graph, so given the noise the seeded version drew, it returns the same
values, for any head that samples through ``keras_vae.heads.draw_seed``.

:func:`draws_per_head` counts the draws each head makes, which names the
noise inputs after the layer they feed (``noise_h2``, ``noise_x``).
"""

import re

import keras
import tensorflow as tf

from keras_vae import scoring

_DRAW = re.compile(r"^Stateless(Random|TruncatedNormal|ParameterizedTruncatedNormal)")
#: What a user feeds for each random op type.
_DISTRIBUTIONS = {
    "StatelessRandomNormalV2": "standard normal N(0, 1)",
    "StatelessRandomNormal": "standard normal N(0, 1)",
    "StatelessRandomUniformV2": "uniform U[0, 1)",
    "StatelessRandomUniform": "uniform U[0, 1)",
}


def _draw_ops(graph):
    """Float-valued random ops of ``graph`` in creation order (the order they are drawn)."""
    return [
        op
        for op in graph.get_operations()
        if _DRAW.match(op.type) and op.outputs and op.outputs[0].dtype.is_floating
    ]


def lift(fn, input_signature, keep, names, docs):
    """``fn`` with its random draws fed from inputs.

    Args:
        fn: a Python function of the tensors in ``input_signature`` that
            draws its noise through ``keras_vae.heads.draw_seed``.
        input_signature: list of ``tf.TensorSpec`` (named) of ``fn``.
        keep: names of the inputs the lifted function still takes (the
            others, e.g. ``seed``, only fed the random ops).
        names: one name per draw, in the order they are drawn.
        docs: one phrase per draw (what the noise feeds), same order.

    Returns:
        ``(function, specs)``: a concrete function of the kept inputs then
        the noise, returning ``fn``'s outputs; ``specs`` are the noise inputs'
        named ``tf.TensorSpec`` with, for each, ``{"distribution", "doc"}``
        as a second element: ``[(spec, info), ...]``.

    Raises:
        RuntimeError: the number of draws is not ``len(names)``, or random
            ops that are not float draws remain.
    """
    wrapped = tf.compat.v1.wrap_function(fn, input_signature)
    draws = _draw_ops(wrapped.graph)
    if len(draws) != len(names):
        raise RuntimeError(
            f"The traced function draws {len(draws)} noise tensors but its heads account for "
            f"{len(names)}; a head draws noise outside keras_vae.heads.draw_seed, so the "
            "noise-input signatures cannot name its inputs. Export with format='saved_model'."
        )
    graph_def = wrapped.graph.as_graph_def()
    nodes = {node.name: node for node in graph_def.node}
    for op in draws:
        # The draw becomes a placeholder; the seed arithmetic above it is then dead.
        node = nodes[op.name]
        del node.input[:]
        node.op = "Placeholder"
        node.attr.clear()
        node.attr["dtype"].type = op.outputs[0].dtype.as_datatype_enum
        node.attr["shape"].shape.CopyFrom(op.outputs[0].shape.as_proto())
    outputs = tf.nest.map_structure(lambda t: t.name, wrapped.structured_outputs)
    graph_def = _live_subgraph(graph_def, [name.split(":")[0] for name in tf.nest.flatten(outputs)])
    captures = {internal.name: external for external, internal in wrapped.graph.captures}

    def import_graph():
        # The variables the traced function read, captured by the new graph.
        graph = tf.compat.v1.get_default_graph()
        input_map = {name: graph.capture(handle) for name, handle in captures.items()}
        tf.compat.v1.import_graph_def(graph_def, input_map=input_map, name="")

    imported = tf.compat.v1.wrap_function(import_graph, [])
    element = imported.graph.as_graph_element
    input_names = dict(zip([s.name for s in input_signature], [t.name for t in wrapped.graph.inputs]))
    feeds = [element(input_names[name]) for name in keep] + [element(op.outputs[0].name) for op in draws]
    pruned = imported.prune(feeds=feeds, fetches=tf.nest.map_structure(element, outputs))
    specs = []
    for op, name, doc in zip(draws, names, docs):
        tensor = op.outputs[0]
        distribution = _DISTRIBUTIONS.get(op.type, op.type)
        specs.append((tf.TensorSpec(tensor.shape, tensor.dtype, name=name), {"distribution": distribution, "doc": doc}))
    return pruned, specs


def _live_subgraph(graph_def, outputs):
    """``graph_def`` without the nodes ``outputs`` (node names) do not depend on."""
    nodes = {node.name: node for node in graph_def.node}
    live, stack = set(), list(outputs)
    while stack:
        name = stack.pop()
        if name not in live:
            live.add(name)
            stack.extend(i.lstrip("^").split(":")[0] for i in nodes[name].input)
    pruned = tf.compat.v1.GraphDef()
    pruned.versions.CopyFrom(graph_def.versions)
    pruned.library.CopyFrom(graph_def.library)
    pruned.node.extend(node for node in graph_def.node if node.name in live)
    return pruned


def draws_per_head(head, features):
    """How many random draws ``head.sample`` makes (e.g. 1; one per component of a mixed head).

    Args:
        head: a distribution head.
        features: a small input the head accepts (its parameters are
            computed from it eagerly).

    Returns:
        int.
    """
    counter = scoring.SeedSequence(0)
    head.sample(head(features), counter)
    return counter.count


def numbered(stem, count):
    """``[stem]`` for one draw, ``[stem_0, stem_1, ...]`` for several."""
    return [stem] if count == 1 else [f"{stem}_{i}" for i in range(count)]


def zeros(width):
    """A ``[1, width]`` (or ``[1, *width]`` for a shape) float32 input to probe a head or network with."""
    shape = tuple(width) if isinstance(width, (tuple, list)) else (width,)
    return keras.ops.zeros((1, *shape), dtype="float32")
