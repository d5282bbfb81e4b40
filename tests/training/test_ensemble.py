"""training.ensemble: networks trained apart averaged into one graph, exported with its members in the card, and
rebuilt member by member for adaptation."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from model.card import ImageNormalisation
from model.session import LandslideModel, read_card
from tests.conftest import REPO_ROOT

WIDTH = 0.0625


def _checkpoint(folder, seed, steps, normalisation=None):
    """A train_generated width folder holding a randomly initialised (seeded) network."""
    import keras

    from training.network import build_resunet
    from training.train_generated import STATE_FILE, generated_card, save_weight_parts

    os.makedirs(folder)
    keras.utils.set_random_seed(seed)
    network = build_resunet(width=WIDTH, l2=1e-5)
    rng = np.random.default_rng(seed)  # batch norms away from identity, so that a mixed-up member shows
    network.set_weights([w + rng.normal(0, 0.05, w.shape).astype(np.float32) for w in network.get_weights()])
    card = generated_card(WIDTH)
    if normalisation is not None:
        card = dataclasses.replace(card, image_normalisation=normalisation)
    with open(os.path.join(folder, "card.json"), "w", encoding="utf-8") as handle:
        handle.write(card.to_json())
    parts = save_weight_parts(network, os.path.join(folder, "weights"))
    state = {"width": WIDTH, "steps": steps, "tiles": steps * 8, "seconds": 60.0,
             "weights": [os.path.basename(p) for p in parts]}
    with open(os.path.join(folder, STATE_FILE), "w", encoding="utf-8") as handle:
        json.dump(state, handle)
    return network


@pytest.fixture(scope="module")
def two_members(tmp_path_factory):
    root = tmp_path_factory.mktemp("members")
    folders = [str(root / "a"), str(root / "b")]
    networks = [_checkpoint(folders[0], 1, 100), _checkpoint(folders[1], 2, 250)]
    return folders, networks


def test_every_output_is_the_mean_of_the_members_outputs(two_members):
    from training.export import random_inputs
    from training.ensemble import checkpoints_ensemble
    from training.train_generated import generated_card

    folders, networks = two_members
    ensemble, card = checkpoints_ensemble(folders)
    feed = random_inputs(ensemble, 64, batch=1, seed=3)
    got = [np.asarray(o) for o in ensemble(feed, training=False)]
    alone = [[np.asarray(o) for o in network(feed, training=False)] for network in networks]
    assert len(got) == len(alone[0]) == 5
    for index, output in enumerate(got):
        np.testing.assert_allclose(output, (alone[0][index] + alone[1][index]) / 2, atol=1e-6)
    assert not np.allclose(alone[0][0], alone[1][0], atol=1e-3)  # the members differ, so the mean says something
    assert [m["steps"] for m in card.provenance["members"]] == [100, 250]
    assert "steps" not in card.provenance and card.provenance["width"] == WIDTH
    assert card.provenance["training_kinds"] == list(generated_card(WIDTH).provenance["training_kinds"])
    assert card.description.startswith("The mean probability of 2 ResUNets (width 0.0625)")


def test_the_exported_ensemble_is_rebuilt_member_by_member(two_members, tmp_path):
    from training.ensemble import member_count, member_scope
    from training.export import random_inputs
    from training.network import prediction_model
    from training.onnx_weights import rebuild_network

    folders, networks = two_members
    out = str(tmp_path / "ensemble.onnx")
    done = subprocess.run([sys.executable, "-m", "training", "export-ensemble", out, *folders,
                           "--member-trained-on", "seed one", "seed two", "--test-time-augmentation", "flips",
                           "--name", "two-members", "--parity-tolerance", "1e-3"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    card = read_card(out)
    assert member_count(card) == 2 and card.name == "two-members" and card.test_time_augmentation == "flips"
    assert [m["trained_on"] for m in card.provenance["members"]] == ["seed one", "seed two"]

    rebuilt, width, worst = rebuild_network(out, card)
    assert width == WIDTH and worst < 1e-3
    for index, network in enumerate(networks):  # each member's kernels, not the other's (batch norms are folded)
        member = rebuilt.get_layer(member_scope(index))
        convolutions = [layer for layer in prediction_model(network).layers if type(layer).__name__ == "Conv2D"]
        assert len(convolutions) > 50
        for layer in convolutions:
            np.testing.assert_allclose(member.get_layer(layer.name).get_weights()[0], layer.get_weights()[0],
                                       atol=1e-6, err_msg=f"member {index}, {layer.name}")
    frozen = [layer for index in range(2) for layer in rebuilt.get_layer(member_scope(index)).layers
              if type(layer).__name__ == "BatchNormalization"]
    assert frozen and not any(layer.trainable for layer in frozen)

    feed = random_inputs(rebuilt, 96, batch=1, seed=5)
    plugin = LandslideModel(out, threads=1)
    one_pass = dataclasses.replace(plugin.card, test_time_augmentation="none")
    plugin.card = one_pass
    expected = np.mean([np.asarray(prediction_model(n)(feed, training=False))[..., 0] for n in networks], axis=0)
    np.testing.assert_allclose(plugin.predict(feed), expected, atol=1e-4)


def test_members_that_read_their_windows_otherwise_are_refused(tmp_path):
    from training.ensemble import EnsembleError, checkpoints_ensemble

    folders = [str(tmp_path / "a"), str(tmp_path / "b")]
    _checkpoint(folders[0], 1, 10)
    _checkpoint(folders[1], 2, 10, normalisation=ImageNormalisation())
    with pytest.raises(EnsembleError, match="image_normalisation"):
        checkpoints_ensemble(folders)
    with pytest.raises(EnsembleError, match="at least two"):
        checkpoints_ensemble(folders[:1])


def test_a_plain_network_counts_as_one_member():
    from training.ensemble import member_count

    card = read_card(os.path.join(REPO_ROOT, "model", "default_model.onnx"))
    assert member_count(dataclasses.replace(card, provenance={"width": 0.125})) == 1
    assert member_count(dataclasses.replace(card, provenance={"members": []})) == 1
    assert member_count(dataclasses.replace(card, provenance={"members": [{}, {}, {}]})) == 3
