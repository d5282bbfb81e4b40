"""Tiny ONNX landslide models whose output is a known function of the inputs.

- :func:`red_difference_model`: ``p = sigmoid(gain * (post_red - pre_red))`` in
  model-scaled units, pixel by pixel, so expected masks are known exactly.
- :func:`conv_model`: two 5x5 convolutions (receptive radius 4 px) with seeded
  random weights, a fully convolutional graph for stitching tests.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from model.card import ModelCard, standard_inputs, write_card

OPSET = 17


def tiny_card(**overrides) -> ModelCard:
    """A card for the tiny graphs: 10 m, 64 px tiles, 8 px context."""
    card = ModelCard(
        name="tiny-test-model",
        version="0",
        description="A test graph; not a landslide model.",
        inputs=standard_inputs(),
        output_name="prediction",
        gsd_m=10.0,
        tile_px=64,
        context_px=8,
        size_multiple_px=32,
        threshold=0.5,
        min_area_m2=0.0,
        provenance={"trained_on": "nothing (hand-built test graph)"},
        metrics={},
    )
    return replace(card, **overrides) if overrides else card


def _io(name: str, channels: int):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", "H", "W", channels])


def _graph_inputs():
    return [_io("pre_image", 3), _io("post_image", 3), _io("terrain", 2)]


def _const(name: str, array: np.ndarray):
    return numpy_helper.from_array(np.asarray(array), name)


def _save(graph, path: str, card: Optional[ModelCard]) -> str:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    if card is not None:
        write_card(model, card)
    onnx.save(model, path)
    return path


def red_difference_model(path: str, gain: float = 20.0, card: Optional[ModelCard] = None, with_card: bool = True) -> str:
    """``prediction = sigmoid(gain * (post[..., 0] - pre[..., 0])) + 0 * terrain[..., :1]``."""
    nodes = [
        helper.make_node("Slice", ["pre_image", "starts", "ends", "axes"], ["pre_red"]),
        helper.make_node("Slice", ["post_image", "starts", "ends", "axes"], ["post_red"]),
        helper.make_node("Slice", ["terrain", "starts", "ends", "axes"], ["terrain_first"]),
        helper.make_node("Sub", ["post_red", "pre_red"], ["difference"]),
        helper.make_node("Mul", ["difference", "gain"], ["logit_image"]),
        helper.make_node("Mul", ["terrain_first", "zero"], ["terrain_zero"]),
        helper.make_node("Add", ["logit_image", "terrain_zero"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["prediction"]),
    ]
    initializers = [
        _const("starts", np.array([0], np.int64)),
        _const("ends", np.array([1], np.int64)),
        _const("axes", np.array([3], np.int64)),
        _const("gain", np.array(gain, np.float32)),
        _const("zero", np.array(0.0, np.float32)),
    ]
    graph = helper.make_graph(nodes, "red_difference", _graph_inputs(), [_io("prediction", 1)], initializers)
    return _save(graph, path, (card or tiny_card()) if with_card else None)


def expected_red_difference(pre_red_8bit: np.ndarray, post_red_8bit: np.ndarray, gain: float = 20.0) -> np.ndarray:
    """The probability :func:`red_difference_model` gives for 8-bit red values."""
    logit = gain * ((post_red_8bit / 127.5 - 1.0) - (pre_red_8bit / 127.5 - 1.0))
    return 1.0 / (1.0 + np.exp(-logit))


def conv_model(path: str, seed: int = 0, card: Optional[ModelCard] = None) -> str:
    """Two 5x5 convolutions over all 8 input channels, then a sigmoid."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 0.3, (6, 8, 5, 5)).astype(np.float32)
    b1 = rng.normal(0, 0.1, (6,)).astype(np.float32)
    w2 = rng.normal(0, 0.3, (1, 6, 5, 5)).astype(np.float32)
    b2 = np.zeros((1,), np.float32)
    nodes = [
        helper.make_node("Concat", ["pre_image", "post_image", "terrain"], ["stacked"], axis=3),
        helper.make_node("Transpose", ["stacked"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "w1", "b1"], ["c1"], pads=[2, 2, 2, 2]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[2, 2, 2, 2]),
        helper.make_node("Sigmoid", ["c2"], ["s2"]),
        helper.make_node("Transpose", ["s2"], ["prediction"], perm=[0, 2, 3, 1]),
    ]
    initializers = [_const("w1", w1), _const("b1", b1), _const("w2", w2), _const("b2", b2)]
    graph = helper.make_graph(nodes, "conv", _graph_inputs(), [_io("prediction", 1)], initializers)
    return _save(graph, path, card or tiny_card())


CONV_MODEL_RADIUS_PX = 4
