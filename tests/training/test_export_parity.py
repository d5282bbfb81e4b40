"""The parity check compares shapes as well as values: broadcasting must not hide a wrong graph."""

import numpy as np
import pytest
from onnx import TensorProto, helper

from training.export import ExportError, parity_check


class _Tensor:
    def __init__(self, name, channels):
        self.name, self.shape = name, (None, None, None, channels)


class _KerasLike:
    """What parity_check uses of a Keras model: ``inputs`` and a call returning the prediction."""

    inputs = [_Tensor("pre_image", 3), _Tensor("post_image", 3), _Tensor("terrain", 2)]

    def __call__(self, feed, training=False):
        return 1.0 / (1.0 + np.exp(-feed["post_image"][..., :1]))


def _graph(extra_axis: bool) -> bytes:
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", "H", "W", c])
              for n, c in (("pre_image", 3), ("post_image", 3), ("terrain", 2))]
    nodes = [helper.make_node("Slice", ["post_image", "starts", "ends", "axes"], ["red"]),
             helper.make_node("Sigmoid", ["red"], ["probability"])]
    initializers = [helper.make_tensor(n, TensorProto.INT64, [1], [v]) for n, v in
                    (("starts", 0), ("ends", 1), ("axes", 3))]
    if extra_axis:  # what tf2onnx produced when it dropped the final Squeeze
        initializers.append(helper.make_tensor("zero", TensorProto.INT64, [1], [0]))
        nodes.append(helper.make_node("Unsqueeze", ["probability", "zero"], ["prediction"]))
    else:
        nodes.append(helper.make_node("Identity", ["probability"], ["prediction"]))
    output = helper.make_tensor_value_info("prediction", TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "parity", inputs, [output], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_a_matching_graph_passes():
    assert parity_check(_KerasLike(), _graph(extra_axis=False), sizes_px=(32,)) < 1e-6


def test_an_extra_output_axis_is_refused_although_the_values_broadcast():
    with pytest.raises(ExportError, match="shape"):
        parity_check(_KerasLike(), _graph(extra_axis=True), sizes_px=(32,))
