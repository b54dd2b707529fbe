"""Classifier-free-guidance flow matching: the training objective and its loop.

For a batch (z, y) of images and labels:
  1. replace each label by ∅ independently with probability η;
  2. draw t ~ U[0, 1] and x = α_t z + β_t ε;
  3. regress u^θ_t(x | y) on the conditional field u_t(x | z) = α̇_t z + β̇_t ε (mean squared error).
Adam, lr 1e-3, batch 250, 5,000 steps is the lab's recipe.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.configs import LR_DECAYS as LR_DECAYS
from core.configs import PRECISIONS as PRECISIONS
from core.configs import TIME_SAMPLINGS as TIME_SAMPLINGS
from core.configs import TrainConfig
from core.data import ImageBatches
from core.distributed import ONE_PROCESS, Ranks, all_sum, convert_sync_batchnorm, step_seed
from core.path import GaussianPath
from core.unet import UNet, UNetConfig


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively (else bf16 autocast is emulated and slower)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def resolve_precision(precision: str, device: torch.device) -> str:
    """``fp32`` or ``bf16``: ``auto`` is bf16 exactly where ``device`` computes it natively."""
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def lr_factor(config: TrainConfig, step: int) -> float:
    """The learning rate of step ``step`` (0-based) as a fraction of ``config.lr``.

    Warm-up: (step + 1) / W for the first W = ``warmup_steps`` steps, reaching 1 at step W − 1.
    Then 1 (constant), or from 1 at step W down to ``lr_floor`` at the last step S − 1:
    cosine f + (1 − f)(1 + cos πp)/2 or linear f + (1 − f)(1 − p), with p = (step − W)/(S − 1 − W).
    """
    c = config
    if step < c.warmup_steps:
        return (step + 1) / c.warmup_steps
    if c.lr_decay == "constant":
        return 1.0
    progress = min((step - c.warmup_steps) / max(c.steps - 1 - c.warmup_steps, 1), 1.0)
    shape = (1 + math.cos(math.pi * progress)) / 2 if c.lr_decay == "cosine" else 1 - progress
    return c.lr_floor + (1 - c.lr_floor) * shape


StepCallback = Callable[[int], bool | None]
"""Called as ``callback(step)`` after each step; a true return stops training. The loss is not
read here (that would make a GPU wait every step): :meth:`CFGTrainer.take_loss` reads it."""


def new_model(config: UNetConfig, seed: int) -> UNet:
    """A freshly initialised U-Net, the same for the same seed, without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return UNet(config)


class EMA:
    """An exponential moving average of a model's weights: θ̄ ← d_n θ̄ + (1 − d_n) θ, buffers copied.

    d_n = min(decay, (1 + n) / (10 + n)) after n updates: without this warm-up the random
    initial weights would still weigh decay^n in the average (8 % after 2,500 steps at 0.999).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        self.updates += 1
        ema_params = list(self.model.parameters())
        torch._foreach_lerp_(ema_params, [p.detach() for p in model.parameters()], 1 - decay)
        for ema_buf, buf in zip(self.model.buffers(), model.buffers(), strict=True):
            ema_buf.copy_(buf)


class CFGTrainer:
    """Owns the model, optimizer, optional EMA and the random stream of one training run.

    All randomness of a step (batch, label drops, t, ε) comes from one generator seeded by
    (``config.seed``, rank, step), so a run on the CPU is reproducible step for step and
    resumes exactly with nothing but the step saved. With several processes (``ranks``),
    each rank trains on its share of the global batch ``config.batch_size`` through
    DistributedDataParallel (see :mod:`core.distributed`).
    """

    def __init__(
        self, model: UNet, data: ImageBatches, config: TrainConfig, ranks: Ranks = ONE_PROCESS
    ) -> None:
        self.config, self.ranks = config, ranks
        self.device = data.device
        memory_format = torch.channels_last if config.channels_last else torch.preserve_format
        if ranks.distributed and config.sync_bn:
            model = convert_sync_batchnorm(model)
        self.model = model.to(self.device, memory_format=memory_format)
        self.data = data
        self.path = GaussianPath.named(config.schedule)
        self.null_label = model.config.null_label
        # The fused kernel is one launch for all parameters: a clear win on CUDA.
        fused = self.device.type == "cuda"
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=config.lr, betas=(config.beta1, config.beta2), fused=fused
        )
        keep_ema = config.ema_decay > 0 and ranks.is_main  # only rank 0 saves weights
        self.ema = EMA(self.model, config.ema_decay) if keep_ema else None
        self.generator = torch.Generator(self.device).manual_seed(config.seed)
        network: nn.Module = self.model
        if ranks.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            network = DistributedDataParallel(self.model, device_ids=ids)
        # On CUDA, "reduce-overhead" replays the forward as CUDA graphs: one launch instead of one
        # per kernel, which is what a small U-Net at a small batch is bound by on a fast GPU.
        mode = "reduce-overhead" if self.device.type == "cuda" else None
        self.forward = torch.compile(network, mode=mode) if config.compile else network
        self.bf16 = resolve_precision(config.precision, self.device) == "bf16"
        self.step = 0
        # The losses of the steps since the last take_loss(), summed on the device: reading a
        # loss makes the CPU wait for the GPU, so it is read at log steps only.
        self._loss_sum = torch.zeros((), device=self.device)
        self.pending = 0

    def loss(self, z: Tensor, y: Tensor) -> Tensor:
        """The CFG flow-matching loss of one batch z ``(B, C, H, W)``, y ``(B,)``."""
        b, gen, dev = z.shape[0], self.generator, self.device
        drop = torch.rand(b, generator=gen, device=dev) < self.config.eta
        y = torch.where(drop, torch.full_like(y, self.null_label), y)
        t = self.sample_times(b)
        x, eps = self.path.sample(z, t, gen)
        with self._autocast():
            predicted = self.forward(x, t, y)
        return F.mse_loss(predicted.float(), self.path.velocity(z, eps, t))

    def sample_times(self, b: int) -> Tensor:
        """b times ``(b, 1, 1, 1)`` in [0, 1]: uniform, or logit-normal t = sigmoid(m + s·n)."""
        c, gen, dev = self.config, self.generator, self.device
        if c.time_sampling == "uniform":
            return torch.rand(b, 1, 1, 1, generator=gen, device=dev)
        return torch.sigmoid(c.time_mean + c.time_std * torch.randn(b, 1, 1, 1, generator=gen, device=dev))

    def _autocast(self) -> torch.autocast | nullcontext:
        if self.bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def train_step(self) -> Tensor:
        """One optimizer step on a fresh batch (this rank's share); returns its (detached) mean loss."""
        self.generator.manual_seed(step_seed(self.config.seed, self.ranks.rank, self.step))
        return self.optimize(*self.data.sample(self.ranks.share(self.config.batch_size), self.generator))

    def optimize(self, z: Tensor, y: Tensor) -> Tensor:
        """One optimizer step on a batch z ``(b, C, H, W)``, y ``(b,)``; returns its (detached) mean loss."""
        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.lr * lr_factor(self.config, self.step)
        loss = self.loss(z, y)
        self.optimizer.zero_grad(set_to_none=True)
        if self.ranks.distributed:
            # DDP averages over W ranks; weighting by W·b_r/B makes that the global-batch mean.
            (loss * (self.ranks.world_size * len(z) / self.config.batch_size)).backward()
        else:
            loss.backward()
        if self.config.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model)
        self.step += 1
        return loss.detach()

    def train(
        self,
        steps: int | None = None,
        callback: StepCallback | None = None,
        should_stop: Callable[[], bool] | None = None,
        agree_every: int = 1,
    ) -> None:
        """Run until ``steps`` (default ``config.steps``) steps in total, never waiting on the device.

        Training also ends after a step where ``callback`` returns true or ``should_stop()`` is
        true. With several processes the ranks agree on stopping every ``agree_every`` steps (one
        collective), so all of them stop at the same step.
        """
        total = self.config.steps if steps is None else steps
        while self.step < total:
            self._loss_sum += self.train_step()
            self.pending += 1
            stop = should_stop is not None and should_stop()
            if self.ranks.distributed:
                stop = self.step % agree_every == 0 and all_sum([float(stop)], self.device)[0] > 0
            if (callback is not None and callback(self.step)) or stop:
                break
        self.model.eval()

    def take_loss(self) -> float:
        """The mean loss of the steps since the last call (global-batch mean with several
        processes: a collective, so every rank calls it at the same steps); nan if none."""
        if self.pending == 0:
            return math.nan
        total = self._loss_sum
        if self.ranks.distributed:
            share = self.ranks.share(self.config.batch_size) / self.config.batch_size
            total = all_sum([float(total) * share], self.device)[0]
        mean = float(total) / self.pending
        self._loss_sum, self.pending = torch.zeros((), device=self.device), 0
        return mean

    def finite(self) -> bool:
        """Whether the losses not yet taken and every weight are finite (on every rank: a
        collective with several processes) — the test before a checkpoint is written."""
        checks = [torch.isfinite(self._loss_sum)] + [torch.isfinite(p).all() for p in self.model.parameters()]
        ok = bool(torch.stack(checks).all())  # one read of the device
        if self.ranks.distributed:
            ok = all_sum([float(not ok)], self.device)[0] == 0
        return ok

    def state(self) -> tuple[dict[str, Tensor], dict[str, str]]:
        """Everything an exact resume needs, as tensors and string metadata (for safetensors):
        weights and buffers, Adam's moments, the EMA and the step (which seeds the random draws)."""
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        if self.ema is not None:
            tensors |= {f"ema.{k}": v for k, v in self.ema.model.state_dict().items()}
        optim = self.optimizer.state_dict()
        for index, moments in optim["state"].items():
            tensors |= {f"optim.{index}.{k}": torch.as_tensor(v) for k, v in moments.items()}
        metadata = {"step": str(self.step), "param_groups": json.dumps(optim["param_groups"])}
        if self.ema is not None:
            metadata["ema_updates"] = str(self.ema.updates)
        return tensors, metadata

    def load_state(self, tensors: dict[str, Tensor], metadata: dict[str, str]) -> None:
        """Restore what :meth:`state` saved; raises KeyError/ValueError/RuntimeError if it does not fit."""
        self.model.load_state_dict(_prefixed(tensors, "model."))
        if self.ema is not None:
            self.ema.model.load_state_dict(_prefixed(tensors, "ema."))
            self.ema.updates = int(metadata["ema_updates"])
        moments: dict[int, dict[str, Tensor]] = {}
        for name, value in _prefixed(tensors, "optim.").items():
            index, key = name.split(".", 1)
            moments.setdefault(int(index), {})[key] = value
        groups = _checked_groups(json.loads(metadata["param_groups"]), len(self.optimizer.param_groups))
        _check_moments(moments, [p for group in self.optimizer.param_groups for p in group["params"]])
        step = int(metadata["step"])
        if step < 0:
            raise ValueError(f"step {step} is negative")
        self.optimizer.load_state_dict({"state": moments, "param_groups": groups})
        self.step = step

    @property
    def sampling_model(self) -> UNet:
        """The weights to sample from: the EMA when it is kept, else the trained model."""
        return self.ema.model if self.ema is not None else self.model


def _prefixed(tensors: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def _checked_groups(groups: object, count: int) -> list[dict]:
    """Adam's saved param groups, if they are what this optimizer saves: ``count`` objects with
    betas two numbers in [0, 1) and a finite lr ≥ 0 (a damaged file would fail at the first step)."""
    if not isinstance(groups, list) or len(groups) != count or not all(isinstance(g, dict) for g in groups):
        raise ValueError(f"param_groups is not a list of {count} groups")
    for group in groups:
        betas, lr = group.get("betas"), group.get("lr")
        if not (isinstance(betas, list) and len(betas) == 2 and all(_number_in(b, 0, 1) for b in betas)):
            raise ValueError(f"betas {betas!r} are not two numbers in [0, 1)")
        if not _number_in(lr, 0, math.inf):
            raise ValueError(f"lr {lr!r} is not a finite number >= 0")
        group["betas"] = tuple(betas)
    return groups


def _number_in(value: object, low: float, high: float) -> bool:
    """Whether ``value`` is a finite number in [low, high)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and low <= value < high


def _check_moments(moments: dict[int, dict[str, Tensor]], params: list[Tensor]) -> None:
    """Adam's moments must have their parameter's shape (else the first step fails far from here)."""
    for index, state in moments.items():
        if not 0 <= index < len(params):
            raise ValueError(f"optimizer state for parameter {index}, which does not exist")
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state and state[key].shape != params[index].shape:
                shape, want = tuple(state[key].shape), tuple(params[index].shape)
                raise ValueError(f"optimizer {key} of parameter {index} has shape {shape}, not {want}")
