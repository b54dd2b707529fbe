import math

import pytest
import torch

from core.data import ImageBatches
from core.sampling import generate
from core.trainer import EMA, CFGTrainer, TrainConfig, new_model
from tests.conftest import TINY, bars


def _trainer(steps: int = 20, seed: int = 0, **kwargs) -> CFGTrainer:
    config = TrainConfig(steps=steps, batch_size=32, lr=3e-3, eta=0.2, seed=seed, **kwargs)
    return CFGTrainer(new_model(TINY, seed), bars(512), config)


def test_training_learns_each_class() -> None:
    trainer = _trainer(steps=400)
    losses: list[float] = []
    trainer.train(callback=lambda step: losses.append(trainer.take_loss()))
    assert len(losses) == 400
    assert sum(losses[-50:]) / 50 < 0.6 * sum(losses[:20]) / 20

    data = bars(512, seed=1)
    means = torch.stack([data.images[data.labels == c].mean(0).flatten() for c in (0, 1)])
    labels = torch.tensor([0] * 16 + [1] * 16)
    samples = generate(trainer.model, labels, w=3.0, steps=30, seed=5)
    nearest = torch.cdist(samples.flatten(1), means).argmin(1)
    assert (nearest == labels).float().mean() >= 0.9


def test_same_seed_same_weights_on_cpu() -> None:
    a, b, c = _trainer(seed=0), _trainer(seed=0), _trainer(seed=1)
    for t in (a, b, c):
        t.train()
    same = [
        torch.equal(p, q)
        for p, q in zip(a.model.state_dict().values(), b.model.state_dict().values(), strict=True)
    ]
    assert all(same)
    assert not torch.equal(a.model.final_conv.weight, c.model.final_conv.weight)


def test_labels_drop_to_null_at_rate_eta() -> None:
    trainer = _trainer()
    seen: list[torch.Tensor] = []
    trainer.forward = lambda x, t, y: (seen.append(y), trainer.model(x, t, y))[1]
    z, y = trainer.data.sample(256, trainer.generator)
    for _ in range(8):
        trainer.loss(z, y)
    labels = torch.cat(seen)
    null_rate = (labels == TINY.null_label).float().mean()
    assert 0.15 < float(null_rate) < 0.25  # η = 0.2 over 2048 draws
    kept = labels != TINY.null_label
    assert torch.equal(labels[kept], y.repeat(8)[kept])


def test_loss_is_mse_against_the_path_velocity() -> None:
    trainer = _trainer()
    zero_model = lambda x, t, y: torch.zeros_like(x)  # noqa: E731
    trainer.forward = zero_model
    z, y = trainer.data.sample(64, trainer.generator)
    state = trainer.generator.get_state()
    loss = trainer.loss(z, y)
    # Replay the same draws: label drop, t, then ε.
    trainer.generator.set_state(state)
    torch.rand(64, generator=trainer.generator)
    t = torch.rand(64, 1, 1, 1, generator=trainer.generator)
    eps = torch.randn(z.shape, generator=trainer.generator)
    torch.testing.assert_close(loss, ((z - eps) ** 2).mean())
    assert float(t.min()) >= 0 and float(t.max()) <= 1


def test_ema_tracks_the_weights_with_a_warm_up() -> None:
    trainer = _trainer(steps=100, ema_decay=0.9)
    before = trainer.ema.model.final_conv.weight.clone()
    trainer.train_step()  # first update: decay (1 + 0) / (10 + 0) = 0.1
    expected = 0.1 * before + 0.9 * trainer.model.final_conv.weight
    torch.testing.assert_close(trainer.ema.model.final_conv.weight, expected)
    trainer.train(steps=90)
    before = trainer.ema.model.final_conv.weight.clone()
    trainer.train_step()  # after 90 updates the warm-up (91/100) has passed the decay 0.9
    expected = 0.9 * before + 0.1 * trainer.model.final_conv.weight
    torch.testing.assert_close(trainer.ema.model.final_conv.weight, expected)
    assert trainer.sampling_model is trainer.ema.model
    assert isinstance(trainer.ema, EMA)


def test_gradient_clipping_bounds_the_update() -> None:
    clipped, free = _trainer(grad_clip=1e-3), _trainer()
    w0 = clipped.model.final_conv.weight.detach().clone()
    for t in (clipped, free):
        t.train_step()
    grad_norm = torch.sqrt(sum((p.grad**2).sum() for p in clipped.model.parameters() if p.grad is not None))
    assert float(grad_norm) <= 1e-3 * 1.01
    assert not torch.equal(clipped.model.final_conv.weight, free.model.final_conv.weight)
    assert not torch.equal(clipped.model.final_conv.weight, w0)


def test_callback_can_stop_training_and_the_losses_wait_on_the_device_until_taken() -> None:
    trainer = _trainer(steps=50)
    steps: list[int] = []

    def callback(step: int) -> bool:
        steps.append(step)
        return step == 7

    trainer.train(callback=callback)
    assert trainer.step == 7 and steps == list(range(1, 8))
    assert trainer.pending == 7
    assert trainer.take_loss() > 0 and trainer.pending == 0
    assert math.isnan(trainer.take_loss())  # nothing since


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match=r"^eta .* not 1\.5$"):
        TrainConfig(eta=1.5)
    with pytest.raises(ValueError, match=r"^steps must be at least 1, not 0$"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="between 1 and the dataset size 4"):
        ImageBatches(torch.zeros(4, 1, 8, 8), torch.zeros(4, dtype=torch.long)).sample(5)


def test_stop_at_k_and_resume_equals_the_uninterrupted_run(tmp_path) -> None:
    from core.checkpoint import read_tensors, save_tensors

    straight = _trainer(steps=12, ema_decay=0.9)
    straight.train()
    first = _trainer(steps=12, ema_decay=0.9)
    first.train(steps=5)
    save_tensors(tmp_path / "state.safetensors", *first.state())
    resumed = _trainer(steps=12, ema_decay=0.9, seed=0)
    resumed.load_state(*read_tensors(tmp_path / "state.safetensors"))
    assert resumed.step == 5
    resumed.train()
    for name, value in straight.state()[0].items():
        assert torch.equal(value, resumed.state()[0][name]), name


def test_bf16_autocast_on_cpu_runs_the_network_in_bf16_with_the_same_gradient_direction() -> None:
    fp32, bf16 = _trainer(), _trainer(precision="bf16")
    z, y = fp32.data.sample(64, torch.Generator().manual_seed(3))
    dtypes: list[torch.dtype] = []
    bf16.model.final_conv.register_forward_hook(lambda m, i, out: dtypes.append(out.dtype))
    grads, losses = [], []
    for trainer in (fp32, bf16):  # the same seed, so the same label drops, t and ε
        loss = trainer.loss(z, y)
        loss.backward()
        losses.append(float(loss.detach()))
        grads.append(torch.cat([p.grad.flatten() for p in trainer.model.parameters()]))
    assert dtypes == [torch.bfloat16]
    assert all(p.dtype == torch.float32 and p.grad.dtype == torch.float32 for p in bf16.model.parameters())
    assert losses[0] != losses[1]  # rounded differently...
    assert losses[1] == pytest.approx(losses[0], rel=0.02)  # ...but the same loss
    assert float(torch.cosine_similarity(grads[0], grads[1], dim=0)) > 0.99
