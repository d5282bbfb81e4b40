"""Execution providers: GPU when onnxruntime offers one, CPU otherwise, a named choice refused when missing."""

import pytest

from model.errors import RuntimeDependencyError
from model.session import EXECUTION_PROVIDERS, LandslideModel, choose_providers

CPU = "CPUExecutionProvider"


def test_auto_prefers_a_gpu_and_keeps_the_cpu_as_fallback():
    assert choose_providers("auto", [CPU]) == [CPU]
    assert choose_providers("auto", ["AzureExecutionProvider", CPU]) == [CPU]
    assert choose_providers("auto", ["CUDAExecutionProvider", CPU]) == ["CUDAExecutionProvider", CPU]
    assert choose_providers("auto", ["DmlExecutionProvider", CPU]) == ["DmlExecutionProvider", CPU]
    assert choose_providers("auto", ["CoreMLExecutionProvider", CPU]) == ["CoreMLExecutionProvider", CPU]
    assert choose_providers("auto", ["TensorrtExecutionProvider", "CUDAExecutionProvider", CPU])[0] == "CUDAExecutionProvider"


def test_cpu_never_uses_a_gpu():
    assert choose_providers("cpu", ["CUDAExecutionProvider", CPU]) == [CPU]


def test_a_named_gpu_provider_that_is_missing_is_refused_with_what_is_offered():
    with pytest.raises(RuntimeDependencyError, match="CUDAExecutionProvider.*offers: CPUExecutionProvider"):
        choose_providers("cuda", [CPU])
    with pytest.raises(RuntimeDependencyError, match="Unknown execution provider 'gpu'"):
        choose_providers("gpu", [CPU])
    assert choose_providers("directml", ["DmlExecutionProvider", CPU]) == ["DmlExecutionProvider", CPU]


def test_sessions_run_on_the_cpu_here(red_model):
    pytest.importorskip("onnxruntime")
    for choice in ("auto", "cpu"):
        model = LandslideModel(red_model, execution_provider=choice)
        assert model.providers[-1] == CPU
    with pytest.raises(RuntimeDependencyError, match="CoreMLExecutionProvider"):
        LandslideModel(red_model, execution_provider="coreml")
    assert EXECUTION_PROVIDERS[0] == "auto"
