"""Grad-CAM support added to an exported ONNX graph (the ``onnx`` library: export time only).

Grad-CAM needs a convolutional feature map A and the gradient of the class score with respect
to it. ONNX Runtime computes no gradients, and only ONNX files are shipped, so the graph itself
is given what the runtime needs (``app/engine/gradcam.py`` does the rest with numpy):

- the shipped graph gets each chosen feature map as an extra output (an ``Identity`` of the
  tensor, under a stable name such as ``features``); every existing output keeps its name,
  position and values, so the adapters' predictions do not change;
- a small *head* graph is cut out of the same model (``onnx.utils.Extractor``): feature maps in,
  the class score before its sigmoid/softmax out. The runtime differentiates it by central
  differences, one direction per channel (see ``app.engine.gradcam.channel_weights``).

A head that reads the *shape* of an original input (the cervical stage 2 reshapes its CNN
features back to (batch, time) with the input's dimensions) gets that shape as an int64 input
named ``<input>_shape`` instead: every ``Shape`` of the input becomes an ``Identity`` of it.

``add_gradcam(model, features, score, head_path)`` does both and is idempotent (a graph that
already has the outputs is left as it is), so the task's ``export.py`` calls it after every
export and the current shipped files were converted by the same call.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import TensorProto, helper
from onnx.utils import Extractor


@dataclass(frozen=True)
class FeatureTap:
    """A feature map to expose: the output name it gets and the tensor it copies."""

    name: str  # e.g. "features" or "features_ap": a graph output of the shipped file
    tensor: str  # the internal tensor, e.g. "/net/encoder/layer4/layer4.0/act_1/Relu_output_0"


def last_output_under(model: onnx.ModelProto, scope: str) -> str:
    """The output of the last node whose name starts with ``scope`` (torch's exporter names
    nodes by module path, e.g. ``/net/encoder/layer4/``): that module's output tensor."""
    found = [n for n in model.graph.node if n.name.startswith(scope) and n.output]
    if not found:
        raise ValueError(f"no node of the graph lies under '{scope}'")
    return found[-1].output[0]


def input_of_last(model: onnx.ModelProto, op_type: str) -> str:
    """The first input of the graph's last ``op_type`` node (e.g. the final activation)."""
    found = [n for n in model.graph.node if n.op_type == op_type]
    if not found:
        raise ValueError(f"the graph has no {op_type} node")
    return found[-1].input[0]


def add_feature_outputs(model: onnx.ModelProto, taps: list[FeatureTap]) -> onnx.ModelProto:
    """A copy of ``model`` with each tap's tensor appended as a graph output named ``tap.name``
    (float32, its shape as inferred). Existing outputs keep their order and values."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    inferred = {v.name: v for v in onnx.shape_inference.infer_shapes(model).graph.value_info}
    for tap in taps:
        if tap.name in {o.name for o in out.graph.output}:
            continue
        out.graph.node.append(
            helper.make_node("Identity", [tap.tensor], [tap.name], name=f"gradcam/{tap.name}")
        )
        info = onnx.ValueInfoProto()
        if tap.tensor in inferred:
            info.CopyFrom(inferred[tap.tensor])
        else:
            info.CopyFrom(helper.make_tensor_value_info(tap.tensor, TensorProto.FLOAT, None))
        info.name = tap.name
        out.graph.output.append(info)
    onnx.checker.check_model(out)
    return out


def _shapes_as_inputs(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """A copy in which every ``Shape`` of a graph input reads a new int64 input
    ``<input>_shape`` instead, so a head cut from it needs no copy of that input."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph_inputs = {i.name: i for i in out.graph.input}
    added: list[str] = []
    for node in out.graph.node:
        if node.op_type != "Shape" or node.input[0] not in graph_inputs or node.attribute:
            continue  # Shape with start/end attributes is left alone (none in these graphs)
        source = graph_inputs[node.input[0]]
        name = f"{source.name}_shape"
        if name not in added:
            rank = len(source.type.tensor_type.shape.dim)
            out.graph.input.append(helper.make_tensor_value_info(name, TensorProto.INT64, [rank]))
            added.append(name)
        node.op_type = "Identity"
        node.input[0] = name
    return out, added


def extract_head(model: onnx.ModelProto, taps: list[FeatureTap], score: str) -> onnx.ModelProto:
    """The part of ``model`` from the taps' tensors to ``score``, its inputs named as the taps
    (plus ``<input>_shape`` for an original input whose shape it reads) and its one output
    named ``score``."""
    work, shape_inputs = _shapes_as_inputs(model)
    work = onnx.shape_inference.infer_shapes(work)
    inputs = [t.tensor for t in taps] + shape_inputs
    head = Extractor(work).extract_model(inputs, [score])
    # only the shape inputs the head really reads stay
    used = {i for n in head.graph.node for i in n.input}
    keep = [i for i in head.graph.input if i.name in used or i.name in {t.tensor for t in taps}]
    del head.graph.input[:]
    head.graph.input.extend(keep)
    rename = {t.tensor: t.name for t in taps}
    rename[score] = "score"
    for node in head.graph.node:
        node.input[:] = [rename.get(i, i) for i in node.input]
        node.output[:] = [rename.get(o, o) for o in node.output]
    for vi in (*head.graph.input, *head.graph.output):
        vi.name = rename.get(vi.name, vi.name)
    for vi in head.graph.input:  # any batch size: the runtime batches perturbed copies
        dims = vi.type.tensor_type.shape.dim
        if dims and vi.type.tensor_type.elem_type == TensorProto.FLOAT:
            dims[0].dim_param = "n"
    for vi in head.graph.output:
        dims = vi.type.tensor_type.shape.dim
        if dims:
            dims[0].dim_param = "n"
    head.producer_name = "osteoview gradcam head"
    onnx.checker.check_model(head)
    return head


def add_gradcam(
    path: Path, taps: list[FeatureTap], score: str, head_path: Path
) -> tuple[bool, Path]:
    """Give the ONNX file at ``path`` the taps as outputs and write the head graph (``score`` is
    the tensor the head ends at, e.g. the input of the final sigmoid) to ``head_path``. Taps it
    has already are replaced (a re-run with another layer moves them); the file is rewritten only
    when its bytes change. Returns (whether ``path`` was rewritten, head_path)."""
    data = Path(path).read_bytes()
    model = _without_taps(onnx.load_from_string(data), taps)
    tapped = add_feature_outputs(model, taps).SerializeToString()
    changed = tapped != data
    if changed:
        Path(path).write_bytes(tapped)
    Path(head_path).write_bytes(extract_head(model, taps, score).SerializeToString())
    return changed, head_path


def _without_taps(model: onnx.ModelProto, taps: list[FeatureTap]) -> onnx.ModelProto:
    names = {t.name for t in taps}
    out = onnx.ModelProto()
    out.CopyFrom(model)
    keep_out = [o for o in out.graph.output if o.name not in names]
    del out.graph.output[:]
    out.graph.output.extend(keep_out)
    keep_nodes = [n for n in out.graph.node if not (set(n.output) & names)]
    del out.graph.node[:]
    out.graph.node.extend(keep_nodes)
    return out


def gradcam_manifest_in_place(out: Path, add_outputs, shipped_files) -> Path:
    """A task's ``--gradcam-only`` export: ``add_outputs(out)`` (its ``add_gradcam_outputs`` at
    its layer) on the files already in ``out``, and their manifest updated: new digests and
    sizes of ``shipped_files(out)`` (the head listed), the ``gradcam`` entry, the rest kept."""
    import json

    from app.engine.manifest_schema import validate_manifest
    from app.engine.runtime import sha256_of

    path = Path(out) / "manifest.json"
    doc = json.loads(path.read_text())
    doc["gradcam"] = add_outputs(out)
    doc["files"] = {
        n: {"sha256": sha256_of(Path(out) / n), "bytes": (Path(out) / n).stat().st_size}
        for n in shipped_files(out)
    }
    validate_manifest(doc, path)
    path.write_text(json.dumps(doc, indent=2))
    return path
