"""Data-parallel training over several processes with ``torch.distributed``.

Each process (a *rank*) holds a full copy of the U-Net and trains on its share of the
global batch: B = Σ_r b_r with b_r = ⌊B/W⌋ (+1 for the first B mod W ranks). Each rank
scales its mean loss by W · b_r / B before DistributedDataParallel averages the gradients
over the W ranks, so the update is the gradient of the mean loss over all B images,
exactly as one process with batch B would compute it (up to BatchNorm, whose batch
statistics are per rank unless :class:`SyncBatchNorm2d` shares them).

The launcher (``torchrun``, or ``cfg-tui train --nproc N`` which runs it) sets the
environment that :meth:`Ranks.from_env` reads. Backends: NCCL on GPUs, gloo on the CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.distributed import _functional_collectives as funcol


@dataclass(frozen=True)
class Ranks:
    """Where this process sits among the training processes: rank r of W (one process = 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> Ranks:
        """torchrun's ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; one process when they are unset."""
        env = os.environ
        return cls(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes the run directory."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def share(self, batch_size: int) -> int:
        """This rank's b_r of a global batch B: ⌊B/W⌋, plus one on the first B mod W ranks."""
        return batch_size // self.world_size + (self.rank < batch_size % self.world_size)

    def device(self, device_type: str) -> torch.device:
        """This rank's device: its own GPU by ``LOCAL_RANK``, or the CPU."""
        return torch.device("cuda", self.local_rank) if device_type == "cuda" else torch.device("cpu")


ONE_PROCESS = Ranks()


def gpu_count() -> int:
    """The GPUs that ranks could use here (one process each)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def start(ranks: Ranks, device_type: str) -> torch.device:
    """Join the process group (NCCL for CUDA, gloo for the CPU); returns this rank's device."""
    device = ranks.device(device_type)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        # Rank 0 may spend minutes on previews and checkpoints while the others wait at a collective.
        timeout = timedelta(hours=1)
        dist.init_process_group(backend, rank=ranks.rank, world_size=ranks.world_size, timeout=timeout)
    return device


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def broadcast(value: object, device: torch.device) -> object:
    """Rank 0's ``value`` on every rank (any picklable object)."""
    box = [value]
    dist.broadcast_object_list(box, src=0, device=device)
    return box[0]


def all_sum(values: list[float], device: torch.device) -> list[float]:
    """The sums over all ranks of a few numbers, in one collective."""
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def step_seed(seed: int, rank: int, step: int) -> int:
    """The seed of one rank's random draws at one step: independent streams that need no saved
    state, so a run resumes exactly, with the same number of processes or another."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1, dtype=np.uint64)[0] >> 1)


class SyncBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the global batch over all ranks.

    One differentiable all-reduce of (Σx, Σx², n) per channel gives the global mean and
    biased variance; autograd carries the gradient back through the same collective, so
    W ranks on a split batch compute what one process computes on the whole batch.
    Unlike ``torch.nn.SyncBatchNorm``, it works on the CPU (gloo) as well as on GPUs.
    Same parameters and buffers as BatchNorm2d: checkpoints load into either.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        xf = x.float()
        count = torch.full((1,), xf.numel() / xf.shape[1], device=x.device, dtype=torch.float32)
        local = torch.cat([xf.sum((0, 2, 3)), (xf * xf).sum((0, 2, 3)), count])
        total = funcol.all_reduce(local, "sum", dist.group.WORLD)  # differentiable
        c, n = x.shape[1], total[-1]
        mean, var = total[:c] / n, (total[c : 2 * c] / n - (total[:c] / n) ** 2).clamp_min(0)
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach() * n / (n - 1).clamp_min(1))
        scale = torch.rsqrt(var + self.eps) * (self.weight if self.affine else 1)
        shift = (self.bias if self.affine else 0) - mean * scale
        return (xf * scale.view(1, c, 1, 1) + shift.view(1, c, 1, 1)).to(x.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean: Tensor, unbiased_var: Tensor) -> None:
        self.num_batches_tracked.add_(1)
        momentum = 1 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean.lerp_(mean, momentum)
        self.running_var.lerp_(unbiased_var, momentum)


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d in ``module`` (in place) by a :class:`SyncBatchNorm2d` with the
    same parameters and buffers; returns ``module`` (or the replacement if it is one itself)."""
    if type(module) is nn.BatchNorm2d:
        sync = SyncBatchNorm2d(module.num_features, module.eps, module.momentum, module.affine)
        sync.load_state_dict(module.state_dict())
        return sync.to(module.running_mean.device)
    for name, child in module.named_children():
        setattr(module, name, convert_sync_batchnorm(child))
    return module
