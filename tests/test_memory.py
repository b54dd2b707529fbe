"""core.configs' memory estimates (what is refused up front as not fitting) and where the free memory
is read: the host's, or a GPU's through NVML, with torch as the fallback (faked here: no GPU)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import core.configs
from core.configs import GiB, UNetConfig, activation_floats, available_memory, check_memory, training_bytes
from core.trainer import new_model
from tests.test_machine import fake_nvml, use_nvml

CONFIGS = [
    UNetConfig(),  # the lab's
    UNetConfig(channels=(8, 16), num_residual_layers=1, t_embed_dim=8, y_embed_dim=8),
    UNetConfig(channels=(64, 128, 256), num_residual_layers=3),
]


def saved_for_backward_bytes(config: UNetConfig, batch: int) -> int:
    """Bytes of the tensors autograd keeps for the backward pass of one training forward (each
    storage once; the weights left out): what a training step holds at its peak, besides temporaries."""
    model = new_model(config, seed=0).train()
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    kept: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        kept[storage.data_ptr()] = storage.nbytes()
        return tensor

    size = config.image_size
    x = torch.randn(batch, config.image_channels, size, size)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        velocity = model(x, torch.rand(batch, 1, 1, 1), torch.randint(0, config.num_classes, (batch,)))
        ((velocity - x) ** 2).mean()
    return sum(nbytes for pointer, nbytes in kept.items() if pointer not in weights)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.channels}x{c.num_residual_layers}")
def test_the_training_estimate_covers_what_backward_keeps_without_doubling_it(config: UNetConfig) -> None:
    """Under it, a run the estimate let through could run out of memory part-way; far over it, runs
    that fit would be refused. Temporaries of the step come on top of what is kept: hence a margin."""
    batch = 4
    kept = saved_for_backward_bytes(config, batch)
    estimate = 4 * batch * activation_floats(config)[0]
    assert kept <= estimate <= 2 * kept, (kept, estimate)
    assert training_bytes(config, 2 * batch) - training_bytes(config, batch) == estimate


def test_a_gpus_memory_is_the_biggest_gpus_whole_memory_read_through_nvml(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Read without CUDA: a context made in the app's process would hold GPU memory for its life."""
    nvml = fake_nvml()
    use_nvml(monkeypatch, nvml)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: pytest.fail("CUDA asked"))
    assert available_memory("cuda") == int(139.8 * GiB)  # the H200 of the two, not the 80 GB H100
    assert nvml.calls == {"init": 1, "shutdown": 1}  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=r"needs about 200\.0 GiB of memory; the GPU has 139\.8 GiB$"):
        check_memory("training", 200 * GiB, "cuda")
    check_memory("training", 100 * GiB, "cuda")


@pytest.mark.parametrize("nvml", [None, fake_nvml(init_error="Driver Not Loaded")], ids=["absent", "failing"])
def test_without_nvml_the_gpus_memory_comes_from_torch(monkeypatch: pytest.MonkeyPatch, nvml: object) -> None:
    use_nvml(monkeypatch, nvml)  # type: ignore[arg-type]
    monkeypatch.setattr(
        torch.cuda, "get_device_properties", lambda index: SimpleNamespace(total_memory=5 * GiB)
    )
    assert available_memory("cuda") == 5 * GiB


def test_the_hosts_memory_is_what_is_available_not_the_total(monkeypatch: pytest.MonkeyPatch) -> None:
    import psutil

    monkeypatch.setattr(psutil, "virtual_memory", lambda: SimpleNamespace(available=3 * GiB, total=64 * GiB))
    assert core.configs.available_memory("cpu") == 3 * GiB
    with pytest.raises(ValueError, match=r"needs about 4\.0 GiB of memory; this machine has 3\.0 GiB free$"):
        check_memory("training", 4 * GiB)
