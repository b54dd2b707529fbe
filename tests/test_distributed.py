"""Data-parallel training: rank shares, per-rank seeds, and W processes computing one global batch."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F

from core import distributed
from core.distributed import Ranks, SyncBatchNorm2d, convert_sync_batchnorm, step_seed
from core.trainer import CFGTrainer, TrainConfig, new_model
from tests.conftest import TINY, bars

GLOBAL_BATCH = 9  # split 5 + 4: the shares differ, so the loss weighting matters


@pytest.mark.parametrize("world", [1, 2, 3, 4, 7])
def test_the_shares_of_the_ranks_make_up_the_global_batch(world: int) -> None:
    for batch in (world, 9, 250, 251):
        shares = [Ranks(r, world).share(batch) for r in range(world)]
        assert sum(shares) == batch and max(shares) - min(shares) <= 1


def test_each_rank_and_step_has_its_own_seed() -> None:
    seeds = {step_seed(0, rank, step) for rank in range(4) for step in range(100)}
    assert len(seeds) == 400
    assert step_seed(5, 1, 7) == step_seed(5, 1, 7) != step_seed(6, 1, 7)


def test_converted_batchnorm_keeps_its_weights_and_is_plain_batchnorm_on_one_process() -> None:
    model = new_model(TINY, 0).train()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_()
    plain = new_model(TINY, 0).train()
    plain.load_state_dict(model.state_dict())
    convert_sync_batchnorm(model)
    assert any(isinstance(m, SyncBatchNorm2d) for m in model.modules())
    assert model.state_dict().keys() == plain.state_dict().keys()
    x, t, y = torch.randn(6, 1, 16, 16), torch.rand(6), torch.tensor([0, 1, 2, 0, 1, 2])
    torch.testing.assert_close(model(x, t, y), plain(x, t, y))  # no process group: no sync


def _fixed_batch() -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(GLOBAL_BATCH, 1, 16, 16, generator=g)
    return x, torch.rand(GLOBAL_BATCH, generator=g), torch.randint(0, 3, (GLOBAL_BATCH,), generator=g), -x


def _one_step(trainer: CFGTrainer, rows: slice) -> dict[str, torch.Tensor]:
    """One optimizer step of ``trainer`` on ``rows`` of the fixed batch; its gradients and buffers."""
    x, t, y, target = _fixed_batch()
    trainer.loss = lambda z, labels: F.mse_loss(trainer.forward(z, t[rows], labels), target[rows])
    trainer.optimize(x[rows], y[rows])
    grads = {f"grad.{k}": p.grad.clone() for k, p in trainer.model.named_parameters()}
    return grads | {f"buffer.{k}": b.clone() for k, b in trainer.model.named_buffers()}


def _rank(rank: int, world: int, port: int, out: str) -> None:
    os.environ |= {"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank)}
    os.environ |= {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    torch.set_num_threads(1)
    ranks = Ranks.from_env()
    device = distributed.start(ranks, "cpu")
    start = sum(ranks.__class__(r, world).share(GLOBAL_BATCH) for r in range(rank))
    rows = slice(start, start + ranks.share(GLOBAL_BATCH))
    results = {}
    for sync_bn in (True, False):
        config = TrainConfig(batch_size=GLOBAL_BATCH, lr=1e-3, sync_bn=sync_bn, channels_last=False)
        trainer = CFGTrainer(new_model(TINY, 0), bars(32), config, ranks)
        results[sync_bn] = _one_step(trainer, rows)
    assert device.type == "cpu"
    torch.save(results, f"{out}/rank{rank}.pt")
    distributed.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_on_a_split_batch_compute_the_gradient_of_the_whole_batch(tmp_path: Path) -> None:
    mp.start_processes(_rank, (2, _free_port(), str(tmp_path)), nprocs=2, start_method="spawn")
    config = TrainConfig(batch_size=GLOBAL_BATCH, lr=1e-3, channels_last=False)
    single = _one_step(CFGTrainer(new_model(TINY, 0), bars(32), config), slice(None))
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    synced, unsynced = ranks[0][True], ranks[0][False]
    for name, value in single.items():
        torch.testing.assert_close(synced[name], value, atol=1e-5, rtol=1e-4, msg=name)
        torch.testing.assert_close(ranks[1][True][name], synced[name], atol=0, rtol=0, msg=name)
    # Without SyncBatchNorm each rank normalises by its own 5 or 4 rows: a different gradient.
    grads = [k for k in single if k.startswith("grad.")]
    assert not all(torch.allclose(unsynced[k], single[k], atol=1e-4) for k in grads)
