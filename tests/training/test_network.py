"""Tests of the ResUNet builder (training/network.py): names, shapes, counts."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from training import network  # noqa: E402  (after the importorskip guards)

FULL_PARAM_COUNT = 20_775_893
LIGHT_WIDTH = 0.25
LIGHT_PARAM_COUNT = 1_311_377
CONTRACT_LAYER_NAMES = (
    "pre_image",
    "post_image",
    "terrain",
    "conv1_A",
    "conv1_B",
    "conv1_C",
    "res2a_branch2a",
    "res2a_branch2b",
    "res2a_branch1",
    "bn2a_branch2a",
    "res5c_branch2b",
    "res1conv_preImage_Skip_a",
    "res1conv_postImage_Skip_a",
    "res1conv_terrain_Skip_a",
    "conv_out_2",
    "conv_out_3",
    "conv_out_4",
    "conv_out_5",
    "prediction",
)


@pytest.fixture(scope="module")
def full_model():
    """The published-width network (built once per module, a few seconds)."""
    return network.build_resunet()


@pytest.fixture(scope="module")
def light_model():
    """The light variant used by most shape tests."""
    return network.build_resunet(width=LIGHT_WIDTH)


def random_inputs(batch, height_px, width_px, seed=0):
    """Random inputs in [0, 1], in the model's input order."""
    rng = np.random.default_rng(seed)
    return [
        rng.random((batch, height_px, width_px, channels), dtype=np.float32)
        for channels in (3, 3, 2)
    ]


def test_input_names_and_shapes(full_model):
    assert [t.name for t in full_model.inputs] == list(network.INPUT_NAMES)
    assert [tuple(t.shape) for t in full_model.inputs] == [
        (None, None, None, 3),
        (None, None, None, 3),
        (None, None, None, 2),
    ]
    assert all(t.dtype == "float32" for t in full_model.inputs)


def test_output_names_in_documented_order(full_model, light_model):
    expected = ["prediction", "conv_out_2", "conv_out_3", "conv_out_4", "conv_out_5"]
    assert list(network.OUTPUT_NAMES) == expected
    assert full_model.output_names == expected
    assert light_model.output_names == expected


@pytest.mark.parametrize("height_px, width_px", [(64, 64), (96, 128)])
def test_output_shapes_and_range(light_model, height_px, width_px):
    # Width changes filter counts only (test_width_keeps_topology_and_names): shapes are the full model's too.
    outputs = light_model(random_inputs(2, height_px, width_px), training=False)
    assert len(outputs) == 5
    for output in outputs:
        assert tuple(output.shape) == (2, height_px, width_px, 1)
        values = np.asarray(output)
        assert values.min() >= 0.0 and values.max() <= 1.0


@pytest.mark.parametrize("height_px, width_px", [(64, 64), (96, 128)])
def test_light_model_accepts_named_inputs(light_model, height_px, width_px):
    named = dict(zip(network.INPUT_NAMES, random_inputs(1, height_px, width_px)))
    outputs = light_model(named, training=False)
    assert [tuple(o.shape) for o in outputs] == [(1, height_px, width_px, 1)] * 5


def test_contract_layer_names_present(full_model, light_model):
    for model in (full_model, light_model):
        names = {layer.name for layer in model.layers}
        missing = [name for name in CONTRACT_LAYER_NAMES if name not in names]
        assert not missing


def test_width_keeps_topology_and_names(full_model, light_model):
    assert [layer.name for layer in light_model.layers] == [
        layer.name for layer in full_model.layers
    ]


def test_full_parameter_count_matches_published_weights(full_model):
    assert full_model.count_params() == FULL_PARAM_COUNT == network.REFERENCE_PARAM_COUNT


def test_light_parameter_count(light_model):
    assert light_model.count_params() == LIGHT_PARAM_COUNT


def test_stem_and_branch_filters_scale_with_width(full_model, light_model):
    expected_full = {"conv1_A": 24, "conv1_B": 24, "conv1_C": 16, "res5c_branch2b": 256,
                     "dec1c_branch2b": 64, "res1conv_terrain_Skip_f": 16}
    for name, filters in expected_full.items():
        assert full_model.get_layer(name).filters == filters
        assert light_model.get_layer(name).filters == network.scaled_filters(filters, LIGHT_WIDTH)
    assert network.scaled_filters(16, 0.1) == network.MIN_FILTERS


def test_stem_kernels_and_strides(full_model):
    for suffix in "ABC":
        layer = full_model.get_layer(f"conv1_{suffix}")
        assert layer.kernel_size == (7, 7) and layer.strides == (2, 2)
    assert full_model.get_layer("res2a_branch1").kernel_size == (3, 3)
    assert full_model.get_layer("res3a_branch1").strides == (2, 2)
    assert full_model.get_layer("prediction").kernel_size == (1, 1)


def test_prediction_model_single_output_in_unit_range(light_model):
    model = network.prediction_model(light_model)
    assert [t.name for t in model.inputs] == list(network.INPUT_NAMES)
    assert model.output_names == ["prediction"]
    output = np.asarray(model(random_inputs(3, 64, 96), training=False))
    assert output.shape == (3, 64, 96, 1)
    assert output.dtype == np.float32
    assert output.min() >= 0.0 and output.max() <= 1.0
    full_output = np.asarray(light_model(random_inputs(3, 64, 96), training=False)[0])
    np.testing.assert_array_equal(output, full_output)


def test_l2_regularises_every_convolution(light_model):
    n_convs = sum(isinstance(layer, keras.layers.Conv2D) for layer in light_model.layers)
    assert len(light_model.losses) == n_convs
    unregularised = network.build_resunet(width=LIGHT_WIDTH, l2=0.0)
    assert len(unregularised.losses) == 0


def test_light_model_gradients_reach_every_weight(light_model):
    inputs = random_inputs(1, 32, 32)
    with tf.GradientTape() as tape:
        outputs = light_model(inputs, training=True)
        loss = tf.add_n([tf.reduce_mean(o) for o in outputs]) + tf.add_n(light_model.losses)
    grads = tape.gradient(loss, light_model.trainable_weights)
    assert all(g is not None for g in grads)


def test_bilinear_upsampling_traces_with_free_sizes_and_matches_keras():
    layer = network.BilinearUpSampling2D(4)
    traced = tf.function(
        layer, input_signature=[tf.TensorSpec((None, None, None, 2), tf.float32)]
    ).get_concrete_function()
    x = np.random.default_rng(1).random((1, 5, 7, 2), dtype=np.float32)
    reference = keras.layers.UpSampling2D(4, interpolation="bilinear")(x)
    np.testing.assert_allclose(traced(tf.constant(x)), reference, atol=1e-6)
    assert layer.compute_output_shape((None, None, 8, 2)) == (None, None, 32, 2)


def test_model_config_round_trip(light_model):
    clone = keras.Model.from_config(light_model.get_config())
    assert clone.count_params() == LIGHT_PARAM_COUNT
    assert [t.name for t in clone.inputs] == list(network.INPUT_NAMES)


@pytest.mark.parametrize(
    "kwargs",
    [{"width": 0.0}, {"l2": -1.0}, {"dropout": 1.0}, {"spatial_dropout": -0.1}],
)
def test_rejects_out_of_range_arguments(kwargs):
    with pytest.raises(ValueError):
        network.build_resunet(**kwargs)
