"""The one device resolver and the cached prior loader."""

from __future__ import annotations

import shutil

import pytest
import torch

from geodiff.device import GPU_CHUNK, GPU_PRECISION, gpu_chunk, gpu_precision, resolve_device
from geodiff.priors import load, load_cached
from geodiff.priors.registry import SHIPPED_DIR


def test_auto_and_cpu() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    want = "cuda" if torch.cuda.is_available() else "cpu"
    for auto in ("auto", None, ""):
        assert resolve_device(auto).type == want


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_missing_cuda_names_the_fix(name: str) -> None:
    with pytest.raises(ValueError, match="CUDA is not available here; use --device cpu or auto"):
        resolve_device(name)


def test_bad_names() -> None:
    with pytest.raises(ValueError, match="auto, cpu, cuda"):
        resolve_device("gpu0")


@pytest.mark.gpu
def test_cuda_index_beyond_the_machine() -> None:
    n = torch.cuda.device_count()
    assert resolve_device(f"cuda:{n - 1}") == torch.device(f"cuda:{n - 1}")
    with pytest.raises(ValueError, match=f"has {n} CUDA device"):
        resolve_device(f"cuda:{n}")


def test_load_cached_loads_once_per_file_and_device(tmp_path) -> None:
    a = load_cached("tiny", "cpu")
    assert load_cached("tiny", "auto" if not torch.cuda.is_available() else "cpu") is a
    assert load("tiny") is not a  # load() always gives a fresh prior
    for ext in (".safetensors", ".json"):
        shutil.copy(SHIPPED_DIR / f"tiny{ext}", tmp_path / f"m{ext}")
    m = load_cached(tmp_path / "m.safetensors", "cpu")
    assert m is not a and load_cached(str(tmp_path / "m.safetensors"), "cpu") is m
    with pytest.raises(FileNotFoundError, match="no prior named"):
        load_cached("nope", "cpu")


def test_gpu_precision_and_chunk_settings() -> None:
    assert gpu_precision({}) is GPU_PRECISION
    assert gpu_precision({"GEODIFF_GPU_PRECISION": "bf16"}) is torch.bfloat16
    assert gpu_precision({"GEODIFF_GPU_PRECISION": "FP32"}) is None
    with pytest.raises(ValueError, match="GEODIFF_GPU_PRECISION='fp8' is not a precision; use fp32 or bf16"):
        gpu_precision({"GEODIFF_GPU_PRECISION": "fp8"})
    assert gpu_chunk({}) == GPU_CHUNK
    assert gpu_chunk({"GEODIFF_GPU_CHUNK": "64"}) == 64
    for bad in ("0", "-3", "many"):
        with pytest.raises(ValueError, match="set a whole number >= 1 or unset it"):
            gpu_chunk({"GEODIFF_GPU_CHUNK": bad})
