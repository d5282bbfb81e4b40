"""Several trained ResUNets of one recipe averaged into one network: an output ensemble that ships as one ONNX graph.

Averaging the probabilities of two networks trained apart (for example the default model and a checkpoint trained
on with more families) can score better than either, but the plugin runs one carded ONNX model. Here the members
are called side by side inside one Keras model whose every output (``prediction`` and the deep-supervision heads)
is the mean of the members' same output, so that:

- the export (:func:`training.export.export_onnx`, parity-checked against Keras) writes one graph; onnxruntime runs
  both members in one session, and the card's test-time augmentation applies to the mean;
- the card lists the members (provenance ``members``: each one's steps, tiles and what it was trained on), so the
  trainer can rebuild the ensemble from its ONNX file (:func:`training.onnx_weights.rebuild_network`) and adapt it
  to an event like any other model.

Each member keeps its own layer names inside a sub-model called ``member_<i>``; that scope survives in the graph's
node names, which is how the rebuild tells the members' weights apart.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from model.card import ModelCard, card_from_json, reading_differences
from model.errors import LandslideMapperError

MEMBERS = "members"
"""Provenance key of an ensemble's card: one dict per member network, in graph order."""
MEMBER_FACTS = ("width", "steps", "tiles_seen", "tiles_by_kind", "training_kinds", "training_seconds", "trained_on",
                "checkpoint")
"""What the card keeps of each member."""


class EnsembleError(LandslideMapperError):
    """The networks cannot be averaged into one model."""


def member_scope(index: int) -> str:
    """The name of member ``index``'s sub-model, which prefixes its layers' names in the graph."""
    return f"member_{index}"


def member_count(card: ModelCard) -> int:
    """How many networks the card's graph averages (1 for a plain network)."""
    members = card.provenance.get(MEMBERS) if isinstance(card.provenance, dict) else None
    return len(members) if isinstance(members, list) and members else 1


def average_networks(networks: Sequence[Any], name: str = "ensemble") -> Any:
    """A Keras model with the ResUNet's inputs and outputs, each output the mean of the members' same output.

    Args:
        networks: Models from :func:`training.network.build_resunet` (all outputs), built with the names
            :func:`member_scope` gives, in order.
        name: The model's name.
    """
    import keras

    from .network import OUTPUT_NAMES, build_inputs

    if len(networks) < 2:
        raise EnsembleError(f"an ensemble needs at least two networks, not {len(networks)}")
    for index, network in enumerate(networks):
        if network.name != member_scope(index):
            raise EnsembleError(f"member {index} is called '{network.name}', not '{member_scope(index)}'")
        if len(network.outputs) != len(OUTPUT_NAMES):
            raise EnsembleError(f"member {index} has {len(network.outputs)} outputs, not the ResUNet's "
                                f"{len(OUTPUT_NAMES)}")
    inputs = build_inputs()
    outputs_by_member = [network(inputs) for network in networks]
    outputs = [keras.layers.Average(name=output_name)([outputs[index] for outputs in outputs_by_member])
               for index, output_name in enumerate(OUTPUT_NAMES)]
    return keras.Model(inputs=inputs, outputs=outputs, name=name)


def load_checkpoint(folder: str, weight_parts: Optional[Sequence[str]] = None, name: str = "resunet",
                    l2: float = 1e-5) -> Tuple[Any, ModelCard]:
    """The network of a ``train_generated`` width folder (``card.json``, ``state.json``, weight parts).

    Returns:
        ``(network, card)``: the Keras model (all outputs) named ``name`` and the folder's card with the training
        facts of ``state.json`` added to its provenance.
    """
    from .network import build_resunet
    from .train_generated import STATE_FILE, load_weight_parts

    with open(os.path.join(folder, "card.json"), encoding="utf-8") as handle:
        card = card_from_json(handle.read())
    with open(os.path.join(folder, STATE_FILE), encoding="utf-8") as handle:
        state = json.load(handle)
    network = build_resunet(width=float(state["width"]), l2=l2, name=name)
    load_weight_parts(network, weight_parts or [os.path.join(folder, part) for part in state["weights"]])
    provenance = dict(card.provenance, steps=state["steps"], tiles_seen=state["tiles"],
                      tiles_by_kind=state.get("tiles_by_kind", {}), training_seconds=round(state["seconds"]))
    provenance.setdefault("width", float(state["width"]))
    return network, dataclasses.replace(card, provenance=provenance)


def member_facts(card: ModelCard, checkpoint: str, trained_on: str = "") -> Dict[str, Any]:
    """What an ensemble's card keeps of one member (see :data:`MEMBER_FACTS`)."""
    facts = dict(card.provenance, checkpoint=checkpoint)
    if trained_on:
        facts["trained_on"] = trained_on
    return {key: facts[key] for key in MEMBER_FACTS if key in facts}


def ensemble_card(cards: Sequence[ModelCard], members: Sequence[Dict[str, Any]], trained_on: str) -> ModelCard:
    """The first member's card with the ensemble's provenance; every member must read its windows alike."""
    first = cards[0]
    for index, card in enumerate(cards[1:], start=1):
        differences = reading_differences(first, card, also=("gsd_m", "context_px", "size_multiple_px"))
        if differences:
            raise EnsembleError(f"member {index} reads its windows otherwise than member 0 (its card's "
                                f"{', '.join(differences)} differ), so the two cannot share one input")
    widths = sorted({member.get("width") for member in members if member.get("width") is not None})
    provenance = {  # each member's steps stay with it: one may have been trained on from another
        MEMBERS: list(members),
        "trained_on": trained_on,
        "width": widths[0] if len(widths) == 1 else None,
        "training_kinds": list(dict.fromkeys(kind for member in members for kind in member.get("training_kinds", []))),
        "held_out_families": first.provenance.get("held_out_families", []),
    }
    shown = ", ".join(f"{width:g}" for width in widths)
    description = (f"The mean probability of {len(members)} ResUNets (width {shown}) trained apart, run as one graph; "
                   "images normalised per scene.")
    return dataclasses.replace(first, description=description, provenance=provenance, metrics={})


def checkpoints_ensemble(folders: Sequence[str], trained_on: Sequence[str] = ()) -> Tuple[Any, ModelCard]:
    """The averaged network of ``train_generated`` width folders and its card (before threshold and scores)."""
    if len(folders) < 2:
        raise EnsembleError(f"an ensemble needs at least two checkpoint folders, not {len(folders)}")
    if trained_on and len(trained_on) != len(folders):
        raise EnsembleError(f"{len(trained_on)} --member-trained-on texts for {len(folders)} folders")
    networks, cards, members = [], [], []
    for index, folder in enumerate(folders):
        network, card = load_checkpoint(folder, name=member_scope(index))
        networks.append(network)
        cards.append(card)
        members.append(member_facts(card, os.path.normpath(folder), trained_on[index] if trained_on else ""))
    summary = "; ".join(f"member {index}: {member.get('trained_on', 'see its checkpoint')}"
                        for index, member in enumerate(members))
    card = ensemble_card(cards, members, f"the mean probability of {len(members)} networks trained apart ({summary})")
    return average_networks(networks), card


def rebuild_ensemble(proto: Any, card: ModelCard, l2: float = 1e-5) -> Tuple[Any, List[str]]:
    """The averaged Keras network of an ensemble's ONNX graph, each member's weights read from its scope.

    Returns:
        ``(network, problems)``: the model when every member was rebuilt (problems empty), else ``None`` and why.
    """
    from .network import build_resunet, prediction_model
    from .onnx_weights import assign_layers, onnx_layer_weights, weighted_layers

    members = card.provenance[MEMBERS]
    networks, problems = [], []
    for index, member in enumerate(members):
        width = member.get("width")
        if not isinstance(width, (int, float)):
            return None, [f"member {index} has no width in the card"]
        network = build_resunet(width=float(width), l2=l2, name=member_scope(index))
        names = [layer.name for layer in weighted_layers(network)]
        weights = onnx_layer_weights(proto, names, scope=member_scope(index))
        problem = assign_layers(network, weights, [layer.name for layer in weighted_layers(prediction_model(network))])
        if problem is not None:
            problems.append(f"member {index} (width {width:g}): {problem}")
        networks.append(network)
    if problems:
        return None, problems
    return average_networks(networks), []
