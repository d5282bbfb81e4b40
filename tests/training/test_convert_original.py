"""Tests of the converter of the authors' published Keras model (training/convert_original.py).

The published M_ALL_006.hdf5 is not available here; the tests write files in
its TF 1.15 Keras layout with h5py (tests/helpers/legacy_keras_h5.py) from
networks with the authors' layer names, a small width and seeded weights.
"""

import copy
import hashlib
import shutil

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
pytest.importorskip("tf2onnx")
pytest.importorskip("onnxruntime")
h5py = pytest.importorskip("h5py")

from tests.helpers import legacy_keras_h5 as legacy  # noqa: E402
from model.session import read_card  # noqa: E402
from model.errors import LandslideMapperError  # noqa: E402
from model.session import LandslideModel  # noqa: E402
from training import convert_original as co  # noqa: E402
from training import original_h5 as h5r  # noqa: E402
from training import original_topology as topology  # noqa: E402
from training import network  # noqa: E402
from training.__main__ import main as cli_main  # noqa: E402
from training.export import random_inputs  # noqa: E402

WIDTH = 0.125
SEED = 7
PARITY_SIZE_PX = 64
CHECK_SIZE_PX = 128

# Every file here differs from the published one; the warning is tested once, explicitly.
pytestmark = pytest.mark.filterwarnings("ignore::training.convert_original.ConversionWarning")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A width-0.125 network with seeded weights and its legacy HDF5 file."""
    model = network.build_resunet(width=WIDTH, l2=0.0)
    legacy.randomize_weights(model, SEED)
    path = str(tmp_path_factory.mktemp("original") / "M_ALL_006.hdf5")
    legacy.write_legacy_h5(model, path, nested_variant_layers=("res2a_branch2a", "bn3a_branch1"))
    return model, path


@pytest.fixture
def copy_of(reference, tmp_path):
    """A fresh copy of the reference file to modify."""
    path = str(tmp_path / "M_ALL_006.hdf5")
    shutil.copyfile(reference[1], path)
    return path


def test_conversion_matches_keras_and_card_reads_back(reference, tmp_path):
    model, path = reference
    out = str(tmp_path / "m_all_006.onnx")
    with pytest.warns(co.ConversionWarning, match="is not the published M_ALL_006.hdf5"):
        report = co.convert_original(path, out, sizes_px=(PARITY_SIZE_PX,), tolerance=1e-4)
    assert report.parity_max_abs_diff <= 1e-4
    assert report.architecture == co.Architecture(width=WIDTH, shortcut_kernel_px=3, head_kernel_px=1,
                                                  upsampling="bilinear", topology_checked=True)
    assert report.ignored_layers == [f"conv_out_{k}_logits" for k in (2, 3, 4, 5)]

    # onnxruntime on the converted file against the Keras model the file was written from.
    feed = random_inputs(model, CHECK_SIZE_PX, batch=2, seed=11)
    expected = np.asarray(model(feed, training=False)[0])[..., 0]
    assert expected.std() > 0.01   # probabilities spread out: a wrong weight would show
    got = LandslideModel(out, threads=1).predict(feed)
    assert got.shape == expected.shape
    assert float(np.max(np.abs(got - expected))) <= 1e-4

    card = read_card(out)
    assert (card.gsd_m, card.tile_px, card.context_px, card.threshold) == (6.0, 224, 56, 0.5)
    assert card.output_name == "prediction"
    by_role = {spec.role: spec for spec in card.inputs}
    assert [(c.scale, c.offset) for c in by_role["pre_image"].channels] == [(1 / 127.5, -1.0)] * 3
    assert [(c.name, c.scale, c.offset) for c in by_role["terrain"].channels] == [
        ("hillshade", 1 / 127.5, -1.0), ("slope", 1 / 45.0, -1.0)]
    assert card.terrain == co.TerrainRecipe()
    with open(path, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    assert card.provenance["weights_sha256"] == digest
    assert card.provenance["weights_file"] == "M_ALL_006.hdf5"
    assert card.provenance["is_published_file"] is False
    assert "Prakash" in card.provenance["source"] and "9722" in card.provenance["source"]
    assert card.metrics == {}


def test_existing_output_is_not_replaced_without_overwrite(reference, tmp_path):
    out = tmp_path / "exists.onnx"
    out.write_bytes(b"keep")
    with pytest.raises(co.ConversionError, match="exists"):
        co.convert_original(reference[1], str(out))
    assert out.read_bytes() == b"keep"


def test_file_check_warns_only_for_other_files(reference):
    check = co.check_file(reference[1])
    message = check.warning()
    assert not check.is_published
    assert f"{h5r.PUBLISHED_SIZE_BYTES:,} bytes" in message and h5r.PUBLISHED_SHA256 in message
    assert check.sha256 in message
    published = co.FileCheck("M_ALL_006.hdf5", h5r.PUBLISHED_SIZE_BYTES, h5r.PUBLISHED_SHA256)
    assert published.is_published and published.warning() is None
    same_size = co.FileCheck("M_ALL_006.hdf5", h5r.PUBLISHED_SIZE_BYTES, "0" * 64)
    assert same_size.warning() is not None


def test_reads_nested_weight_paths(reference):
    model, path = reference
    weights = co.read_legacy_h5(path)
    with h5py.File(path, "r") as handle:
        assert "res2a_branch2a/res2a_branch2a_1/kernel:0" in handle["model_weights/res2a_branch2a"]
    np.testing.assert_array_equal(weights.layers["res2a_branch2a"]["kernel"],
                                  model.get_layer("res2a_branch2a").kernel.numpy())
    np.testing.assert_array_equal(weights.layers["bn3a_branch1"]["moving_variance"],
                                  model.get_layer("bn3a_branch1").moving_variance.numpy())
    assert "conv1_A_relu" not in weights.layers   # layers without weights are skipped


def test_missing_layer_is_refused_by_name(copy_of, tmp_path):
    legacy.delete_layer(copy_of, "res3b_branch2a")
    with pytest.raises(co.ConversionError, match="missing layers: res3b_branch2a") as error:
        co.convert_original(copy_of, str(tmp_path / "x.onnx"))
    assert isinstance(error.value, LandslideMapperError)
    assert not (tmp_path / "x.onnx").exists()


def test_mis_shaped_layer_is_refused_by_name(copy_of, tmp_path):
    with h5py.File(copy_of, "r") as handle:
        kernel = handle["model_weights/res4a_branch2b/res4a_branch2b/kernel:0"][()]
    legacy.replace_weight(copy_of, "res4a_branch2b", "kernel", kernel[:1, :1])
    with pytest.raises(co.ConversionError, match=r"mis-shaped layers: res4a_branch2b/kernel \(file \(1, 1,"):
        co.convert_original(copy_of, str(tmp_path / "x.onnx"))


def test_missing_bn_statistic_is_refused(copy_of, tmp_path):
    with h5py.File(copy_of, "r+") as handle:
        group = handle["model_weights/bn4b_branch2a"]
        names = [n for n in group.attrs["weight_names"] if b"moving_mean" not in n]
        group.attrs["weight_names"] = np.array(names)
    with pytest.raises(co.ConversionError, match="missing weights: bn4b_branch2a/moving_mean"):
        co.convert_original(copy_of, str(tmp_path / "x.onnx"))


def test_projection_kernels_that_disagree_cannot_be_settled(copy_of):
    with h5py.File(copy_of, "r") as handle:
        kernel = handle["model_weights/res3a_branch1/res3a_branch1/kernel:0"][()]
    legacy.replace_weight(copy_of, "res3a_branch1", "kernel", kernel[1:2, 1:2])
    with pytest.raises(co.ConversionError, match=r"different kernel sizes.*1x1: res3a_branch1"):
        co.settle_architecture(co.read_legacy_h5(copy_of))


def test_variant_is_settled_from_weight_shapes_and_config(reference, tmp_path):
    variant = network.build_resunet(width=WIDTH, l2=0.0, shortcut_kernel_px=1, head_kernel_px=3,
                                    upsampling="nearest")
    legacy.randomize_weights(variant, SEED + 1)
    path = str(tmp_path / "variant.hdf5")
    legacy.write_legacy_h5(variant, path)
    weights = co.read_legacy_h5(path)
    architecture = co.settle_architecture(weights)
    assert architecture == co.Architecture(width=WIDTH, shortcut_kernel_px=1, head_kernel_px=3,
                                           upsampling="nearest", topology_checked=True)
    rebuilt = co.build_network(architecture)
    co.load_weights(rebuilt, weights, co.required_layers(rebuilt))
    assert co.check_topology(rebuilt, weights) == []
    feed = random_inputs(variant, 64, batch=1, seed=3)
    np.testing.assert_allclose(np.asarray(rebuilt(feed, training=False)[0]),
                               np.asarray(variant(feed, training=False)[0]), atol=1e-6)
    # The builder's default network does not fit these weights (and is left as it was).
    default, _ = reference
    before = default.get_layer("res2a_branch1").kernel.numpy()
    shortcut = r"res2a_branch1/kernel \(file \(1, 1, 12, 8\), network \(3, 3, 12, 8\)\)"
    with pytest.raises(co.ConversionError, match=shortcut) as error:
        co.load_weights(default, weights, co.required_layers(default))
    assert "prediction/kernel (file (3, 3, 8, 1), network (1, 1, 8, 1))" in str(error.value)
    np.testing.assert_array_equal(default.get_layer("res2a_branch1").kernel.numpy(), before)


def test_topology_difference_is_refused(copy_of):
    config = legacy.read_model_config(copy_of)
    for layer in config["config"]["layers"]:
        if layer["name"] == "dec3_concat":
            layer["inbound_nodes"][0].reverse()   # skip first, then the up-sampled features
    legacy.write_model_config(copy_of, config)
    weights = co.read_legacy_h5(copy_of)
    model = co.build_network(co.settle_architecture(weights))
    co.load_weights(model, weights, co.required_layers(model))
    with pytest.raises(co.ConversionError, match=r"2 differences\): dec3a_branch1 takes concatenate") as error:
        co.check_topology(model, weights)
    assert "dec3a_branch2a takes concatenate" in str(error.value)


def test_stride_difference_is_refused(copy_of):
    config = legacy.read_model_config(copy_of)
    for layer in config["config"]["layers"]:
        if layer["name"] in ("res3a_branch2a", "res3a_branch1"):
            layer["config"]["strides"] = [1, 1]
        if layer["name"] == "pool1":
            layer["config"]["strides"] = [4, 4]
    legacy.write_model_config(copy_of, config)
    weights = co.read_legacy_h5(copy_of)
    model = co.build_network(co.settle_architecture(weights))
    co.load_weights(model, weights, co.required_layers(model))
    with pytest.raises(co.ConversionError, match="res3a_branch2a: file") as error:
        co.check_topology(model, weights)
    assert "res3a_branch1: file" in str(error.value) and "max_pool_3x3_4x4_same" in str(error.value)


def test_batch_norm_epsilon_is_taken_from_the_file(reference, copy_of):
    config = legacy.read_model_config(copy_of)
    for layer in config["config"]["layers"]:
        if layer["name"] == "bn2a_branch2a":
            layer["config"]["epsilon"] = 1.001e-5
    legacy.write_model_config(copy_of, config)
    weights = co.read_legacy_h5(copy_of)
    model = co.build_network(co.settle_architecture(weights))
    co.load_weights(model, weights, co.required_layers(model))
    notes = co.check_topology(model, weights)
    assert len(notes) == 1 and notes[0].startswith("bn2a_branch2a: batch-normalisation epsilon 1.001e-05")
    assert model.get_layer("bn2a_branch2a").epsilon == pytest.approx(1.001e-5)


def test_learned_up_sampling_is_refused(copy_of):
    config = legacy.read_model_config(copy_of)
    for layer in config["config"]["layers"]:
        if layer["name"] == "dec4_upsample":
            layer["class_name"] = "Conv2DTranspose"
            layer["config"] = {"name": "dec4_upsample", "filters": 32, "kernel_size": [2, 2], "strides": [2, 2],
                               "padding": "same", "activation": "linear", "use_bias": True}
    legacy.write_model_config(copy_of, config)
    legacy.delete_layer(copy_of, "dec4_upsample")   # its weightless group
    legacy.add_layer(copy_of, "dec4_upsample", {"kernel": np.zeros((2, 2, 32, 32), np.float32),
                                                "bias": np.zeros((32,), np.float32)})
    with pytest.raises(co.ConversionError, match=r"learned transposed convolutions \(dec4_upsample\)"):
        co.settle_architecture(co.read_legacy_h5(copy_of))


def test_weights_only_file_needs_explicit_consent(reference, tmp_path):
    model, _ = reference
    path = str(tmp_path / "weights_only.hdf5")
    legacy.write_legacy_h5(model, path, weights_only=True)
    weights = co.read_legacy_h5(path)
    assert weights.model_config is None and set(weights.layers) == set(topology.weighted_layer_names(model))
    with pytest.raises(co.ConversionError, match="no model_config"):
        co.settle_architecture(weights)
    architecture = co.settle_architecture(weights, allow_unverified_topology=True)
    assert architecture == co.Architecture(width=WIDTH, shortcut_kernel_px=3, head_kernel_px=1,
                                           upsampling="bilinear", topology_checked=False)
    # Weights of a layer the network does not have (e.g. a learned up-sampling) are refused by name.
    legacy.add_layer(path, "dec5_upconv", {"kernel": np.zeros((2, 2, 32, 32), np.float32)})
    with pytest.raises(co.ConversionError, match="network does not have: dec5_upconv"):
        co.convert_original(path, str(tmp_path / "x.onnx"), allow_unverified_topology=True)


def test_not_a_keras_file_is_refused(tmp_path):
    path = tmp_path / "empty.hdf5"
    with h5py.File(path, "w") as handle:
        handle.create_group("something")
    with pytest.raises(co.ConversionError, match="no 'layer_names'"):
        co.read_legacy_h5(str(path))
    text = tmp_path / "text.hdf5"
    text.write_text("not hdf5")
    with pytest.raises(co.ConversionError, match="not an HDF5 file"):
        co.read_legacy_h5(str(text))


def test_cli_reports_refusal(copy_of, tmp_path, capsys):
    legacy.delete_layer(copy_of, "dec2b_branch2b")
    status = cli_main(["convert-original", copy_of, str(tmp_path / "x.onnx"), "--parity-tolerance", "1e-3"])
    assert status == 2
    assert "missing layers: dec2b_branch2b" in capsys.readouterr().err


def test_nearest_up_sampling_matches_keras():
    layer = network.BilinearUpSampling2D(2, "nearest")
    x = np.random.default_rng(2).random((1, 5, 7, 3), dtype=np.float32)
    reference = keras.layers.UpSampling2D(2, interpolation="nearest")(x)
    np.testing.assert_array_equal(np.asarray(layer(x)), np.asarray(reference))
    assert copy.deepcopy(layer.get_config())["interpolation"] == "nearest"
    with pytest.raises(ValueError):
        network.BilinearUpSampling2D(2, "bicubic")
    with pytest.raises(ValueError):
        network.build_resunet(width=0.125, shortcut_kernel_px=2)


def test_parser_knows_the_command():
    from training.__main__ import parser

    args = parser().parse_args(["convert-original", "in.hdf5", "out.onnx", "--overwrite",
                                "--parity-tolerance", "2e-4", "--allow-unverified-topology"])
    assert (args.input, args.output, args.overwrite, args.parity_tolerance, args.allow_unverified_topology) == (
        "in.hdf5", "out.onnx", True, 2e-4, True)
    assert args.func.__name__ == "cmd_convert_original"
