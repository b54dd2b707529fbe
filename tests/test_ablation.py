"""The recipe ablation's bookkeeping: step counts from the time budget, snapshots where asked."""

from pathlib import Path

from core.ablation import Variant, seconds_per_step, train_variant
from core.checkpoint import load_checkpoint
from core.presets import Preset
from core.trainer import TrainConfig
from tests.conftest import TINY, bars

TINY_PRESET = Preset(TINY, TrainConfig(steps=50, batch_size=16, lr=3e-3), "tiny")


def test_each_variant_trains_for_the_budget_at_its_own_speed_and_snapshots_on_time(tmp_path: Path) -> None:
    variant = Variant("fast one", {"warmup_steps": 2, "lr_decay": "linear"}, extra_emas=(0.9,))
    records = train_variant(TINY_PRESET, variant, bars(64), budget=10.0, step_seconds=0.5,
                            fractions=(0.5, 1.0), out=tmp_path, log=lambda line: None)  # fmt: skip
    # 10 s at 0.5 s a step: 20 steps, snapshots at 10 and 20, the main weights and the extra EMA.
    expected = [(10, "main"), (10, "ema0.9"), (20, "main"), (20, "ema0.9")]
    assert [(r["step"], r["weights"]) for r in records] == expected
    assert {r["steps"] for r in records} == {20} and records[-1]["seconds"] == 10.0
    for record in records:
        _, metadata = load_checkpoint(record["file"])
        assert metadata["step"] == str(record["step"])
    assert (tmp_path / "fast_one" / "snapshots.json").exists()

    third = Variant("third", {}, budget_fraction=1 / 3)
    short = train_variant(TINY_PRESET, third, bars(64), 9.0, 1.0, (1.0,), tmp_path, log=lambda line: None)
    assert [r["step"] for r in short] == [3]


def test_seconds_per_step_times_every_variant() -> None:
    variants = [Variant("a", {}), Variant("b", {"ema_decay": 0.99}, extra_emas=(0.9, 0.99))]
    timings = seconds_per_step(TINY_PRESET, variants, bars(64), steps=2, repeats=1)
    assert set(timings) == {"a", "b"} and all(0 < s < 10 for s in timings.values())
