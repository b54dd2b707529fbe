"""The training recipe's options: time sampling, lr schedule, Adam betas, precision, and that
reading the loss only at log steps changes no record."""

import json
import math
from pathlib import Path

import pytest
import torch

from core import trainer as trainer_module
from core.runs import RunDir
from core.session import SessionOptions, TrainingSession
from core.trainer import CFGTrainer, TrainConfig, lr_factor, native_bf16, new_model, resolve_precision
from tests.conftest import TINY, bars, run_config


def _trainer(**kwargs) -> CFGTrainer:
    config = TrainConfig(**{"steps": 20, "batch_size": 16, "lr": 3e-3, **kwargs})
    return CFGTrainer(new_model(TINY, 0), bars(64), config)


def _ks_distance(draws: torch.Tensor, cdf) -> float:
    """Kolmogorov–Smirnov statistic sup |F_n(t) − F(t)| of ``draws`` against ``cdf``."""
    x, _ = draws.double().flatten().sort()
    n = len(x)
    f = cdf(x)
    above = torch.arange(1, n + 1, dtype=torch.float64) / n - f
    below = f - torch.arange(0, n, dtype=torch.float64) / n
    return float(torch.maximum(above, below).max())


def _logit_normal_cdf(m: float, s: float):
    normal = torch.distributions.Normal(torch.tensor(m, dtype=torch.float64), s)
    return lambda t: normal.cdf(torch.log(t) - torch.log1p(-t))


def test_logit_normal_times_follow_their_distribution() -> None:
    n, m, s = 20_000, 0.5, 0.8
    times = _trainer(time_sampling="logit-normal", time_mean=m, time_std=s).sample_times(n)
    assert times.shape == (n, 1, 1, 1) and float(times.min()) > 0 and float(times.max()) < 1
    critical = 1.95 / math.sqrt(n)  # the KS test at α = 0.001
    assert _ks_distance(times, _logit_normal_cdf(m, s)) < critical
    # The same test tells a neighbouring distribution apart: it can fail.
    assert _ks_distance(times, _logit_normal_cdf(0.0, s)) > critical
    uniform = _trainer().sample_times(n)
    assert _ks_distance(uniform, lambda t: t) < critical
    assert _ks_distance(uniform, _logit_normal_cdf(0.0, 1.0)) > critical


@pytest.mark.parametrize(
    ("decay", "middle"),
    [("cosine", 0.1 + 0.9 * 0.5), ("linear", 0.1 + 0.9 * 0.5), ("constant", 1.0)],
)
def test_lr_warms_up_then_decays_to_its_floor(decay: str, middle: float) -> None:
    config = TrainConfig(steps=111, warmup_steps=10, lr_decay=decay, lr_floor=0.1)
    assert lr_factor(config, 0) == pytest.approx(0.1)  # 1/10 of the way up
    assert lr_factor(config, 4) == pytest.approx(0.5)
    assert lr_factor(config, 9) == pytest.approx(1.0)  # warm-up's end
    assert lr_factor(config, 10) == pytest.approx(1.0)  # decay's start
    assert lr_factor(config, 60) == pytest.approx(middle)  # half way from step 10 to step 110
    assert lr_factor(config, 110) == pytest.approx(0.1 if decay != "constant" else 1.0)
    if decay == "cosine":  # the shapes differ between the middle and the ends
        assert lr_factor(config, 35) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi / 4)) / 2)
    if decay == "linear":
        assert lr_factor(config, 35) == pytest.approx(0.1 + 0.9 * 0.75)


def test_the_optimizer_steps_with_the_scheduled_lr_and_the_given_betas() -> None:
    trainer = _trainer(steps=12, warmup_steps=4, lr_decay="linear", lr_floor=0.0, beta1=0.8, beta2=0.95)
    seen: list[float] = []
    trainer.train(callback=lambda step: seen.append(trainer.optimizer.param_groups[0]["lr"]))
    expected = [3e-3 * lr_factor(trainer.config, k) for k in range(12)]
    assert seen == pytest.approx(expected) and seen[-1] == 0.0
    assert trainer.optimizer.param_groups[0]["betas"] == (0.8, 0.95)


@pytest.mark.parametrize("native", [True, False])
def test_precision_auto_is_bf16_exactly_where_the_device_has_it(
    monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    monkeypatch.setattr(trainer_module, "native_bf16", lambda device: native)
    trainer = _trainer(precision="auto")
    assert trainer.bf16 is native
    dtypes: list[torch.dtype] = []
    trainer.model.final_conv.register_forward_hook(lambda m, i, out: dtypes.append(out.dtype))
    trainer.train_step()
    assert dtypes == [torch.bfloat16 if native else torch.float32]
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"


@pytest.mark.parametrize("native", [True, False])
def test_native_bf16_asks_the_device(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: native)
    assert native_bf16(torch.device("cuda")) is native
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: native)
    assert native_bf16(torch.device("cpu")) is native
    assert resolve_precision("auto", torch.device("cpu")) == ("bf16" if native else "fp32")


def test_older_configs_read_their_bf16_flag_as_a_precision() -> None:
    assert TrainConfig.from_dict({"bf16": True}).precision == "bf16"
    assert TrainConfig.from_dict({"bf16": False}).precision == "fp32"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"time_sampling": "beta"}, "time sampling must be one of uniform, logit-normal, not 'beta'"),
        ({"time_std": 0.0}, "time std must be a finite number above 0, not 0.0"),
        ({"warmup_steps": -1}, "warm-up steps must be 0 or more, not -1"),
        ({"lr_decay": "step"}, "lr decay must be one of constant, cosine, linear, not 'step'"),
        ({"lr_floor": 1.5}, "lr floor (a fraction of the lr) must be in [0, 1], not 1.5"),
        ({"beta2": 1.0}, "beta2 must be in [0, 1), not 1.0"),
        ({"precision": "fp16"}, "precision must be one of fp32, bf16, auto, not 'fp16'"),
    ],
)
def test_bad_recipe_settings_are_refused(change: dict, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        TrainConfig(**change)
    assert str(refused.value) == message


def test_reading_the_loss_at_log_steps_gives_the_records_of_reading_it_every_step(tmp_path: Path) -> None:
    config = dict(steps=23, ema_decay=0.9, warmup_steps=3, lr_decay="cosine", time_sampling="logit-normal")
    per_step = _trainer(**config)
    losses = []
    per_step.train(callback=lambda step: losses.append(per_step.take_loss()))

    trainer = _trainer(**config)
    run = RunDir.create(tmp_path / "run", run_config())
    session = TrainingSession(trainer=trainer, run=run, options=SessionOptions(5, 0, log_every=5))
    assert session.run_until_done(lambda: False, lambda record: None) == "finished"
    records = [json.loads(line) for line in run.metrics_path.read_text().splitlines()]
    windows = [(0, 5), (5, 10), (10, 15), (15, 20), (20, 23)]
    assert [r["step"] for r in records] == [5, 10, 15, 20, 23]
    for record, (a, b) in zip(records, windows, strict=True):
        assert record["loss"] == pytest.approx(sum(losses[a:b]) / (b - a), rel=1e-6)
        assert record["lr"] == pytest.approx(3e-3 * lr_factor(trainer.config, b - 1))
    pairs = zip(per_step.model.parameters(), trainer.model.parameters(), strict=True)
    assert all(torch.equal(p, q) for p, q in pairs)


def test_runs_detail_names_the_recipe() -> None:
    from tui.commands.runs import recipe_text

    assert recipe_text(TrainConfig()) == (
        "t uniform, constant lr, Adam β (0.9, 0.999), no EMA, precision fp32"
    )
    tuned = TrainConfig(time_sampling="logit-normal", time_std=0.8, warmup_steps=100, lr_decay="cosine",
                        lr_floor=0.1, beta2=0.95, ema_decay=0.999, precision="auto")  # fmt: skip
    assert recipe_text(tuned) == (
        "t logit-normal(0, 0.8), warm-up 100, cosine to 0.1×lr, Adam β (0.9, 0.95), EMA 0.999, precision auto"
    )
