"""The benchmark's reference loops compute what ours compute, and its timing takes turns."""

import re
import sys

import pytest
import torch

from core.bench import PeakMemory, interleaved_medians, lab_conditional_field, lab_sample
from core.path import GaussianPath
from core.sampling import generate
from core.trainer import native_bf16, new_model
from core.unet import UNetConfig
from tests.conftest import cli
from tui.cli import run

# The lab's loops hard-code 32x32 images and ∅ = 10.
SMALL_MNIST = UNetConfig(channels=(8, 16), num_residual_layers=1, t_embed_dim=8, y_embed_dim=8)


def test_variants_are_timed_in_turns_and_warm_up_rounds_are_not_counted() -> None:
    calls: list[str] = []
    medians = interleaved_medians(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=3, warmup=2
    )
    assert calls == ["a", "b"] * 5
    assert set(medians) == {"a", "b"} and all(0 <= s < 1 for s in medians.values())


def test_peak_memory_sees_what_each_call_allocates_on_the_cpu() -> None:
    peaks = PeakMemory(torch.device("cpu"))
    calls = {"small": lambda: torch.ones(2**20).sum(), "large": lambda: torch.ones(64 * 2**20).sum()}
    interleaved_medians(calls, repeats=1, warmup=2, peaks=peaks)
    if sys.platform != "linux":
        assert peaks.describe("large") == "n/a"
        return
    mib = {name: peaks.bytes[name] / 2**20 for name in calls}
    assert 200 <= mib["large"] <= 400  # 256 MiB of float32, freed in between
    assert mib["small"] < 64
    assert peaks.describe("large").endswith("MiB more RSS")


def test_the_labs_field_is_our_linear_path_velocity() -> None:
    g = torch.Generator().manual_seed(0)
    z, eps = torch.randn(6, 1, 4, 4, generator=g), torch.randn(6, 1, 4, 4, generator=g)
    t = torch.rand(6, 1, 1, 1, generator=g) * 0.98
    path = GaussianPath.named("linear")
    x, _ = t * z + (1 - t) * eps, None
    torch.testing.assert_close(lab_conditional_field(z, x, t), path.velocity(z, eps, t), atol=1e-4, rtol=1e-4)


def test_the_labs_two_call_sampler_equals_our_one_call_euler() -> None:
    model = new_model(SMALL_MNIST, 0).eval()
    labels = torch.tensor([0, 3, 9, 10, 10, 7])
    torch.manual_seed(11)  # the lab's sampler draws x_0 from the global generator
    lab = lab_sample(model, labels, w=3.0, num_timesteps=21)
    ours = generate(model, labels, 3.0, steps=20, seed=11)
    torch.testing.assert_close(ours, lab, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(ours, generate(model, labels, 2.0, steps=20, seed=11), atol=1e-2)


def test_bench_train_prints_every_variant_against_the_lab(cli_env: dict[str, str]) -> None:
    result = cli("bench", "train", "--batch-size", "8", "--repeats", "2", "--device", "cpu", env=cli_env)
    assert result.returncode == 0, result.stderr
    header, *rows = [line for line in result.stdout.splitlines() if line.strip()]
    # The lab's default U-Net: 1.42 GFLOP per training image (forward + backward), whatever the batch.
    assert re.search(r"1\.4[12] GFLOP per image", header)
    rates = {}
    for row in rows:
        pattern = r"\s+(.+?)\s+([\d.]+) img/s\s+([\d.]+) GFLOP/s\s+([\d.]+)x\s+peak ([\d,]+) MiB"
        if match := re.match(pattern, row):
            rates[match[1]] = (float(match[2]), float(match[4]))
    names = set(rates)
    assert {"lab: PIL sampler, its loop", "ours, NCHW fp32", "ours, channels_last fp32"} <= names
    assert ("ours, channels_last + bf16" in names) == native_bf16(torch.device("cpu"))
    lab_rate, lab_ratio = rates["lab: PIL sampler, its loop"]
    assert lab_ratio == 1.0
    for rate, ratio in rates.values():  # the rates are printed to 0.1 img/s, the ratios to 0.01
        assert rate > 0
        assert (rate - 0.05) / (lab_rate + 0.05) - 0.005 <= ratio <= (rate + 0.05) / (lab_rate - 0.05) + 0.005


@pytest.mark.parametrize("fast", ["midpoint:x", "rk4:3", "heun:0", "heun"])
def test_bench_sample_refuses_a_bad_variant_in_one_line(fast: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        run(["bench", "sample", "--fast", fast])
    stderr = capsys.readouterr().err
    assert exit_.value.code == 2
    assert stderr.count("\n") == 1 and "--fast" in stderr and repr(fast) in stderr


def test_bench_sample_times_the_lab_against_both_presets_with_counted_evaluations(
    tmp_path, capsys: pytest.CaptureFixture
) -> None:
    from core.checkpoint import save_checkpoint
    from core.sampling import SAMPLERS

    # A U-Net of one 4-channel stage: 110 images × 99 steps of the lab's loop take seconds.
    micro = UNetConfig(channels=(4,), num_residual_layers=1, t_embed_dim=4, y_embed_dim=4)
    weights = save_checkpoint(tmp_path / "micro.safetensors", new_model(micro, 0).eval())
    with pytest.raises(SystemExit) as exit_:
        run(["bench", "sample", "--checkpoint", str(weights), "--device", "cpu", "--fast", "euler:2"])
    out, err = capsys.readouterr()
    assert exit_.value.code == 0, err
    assert out.startswith("sampling 110 images at w = 3, cpu")
    pattern = r"\s+(.+?)\s+([\d.]+) img/s\s+([\d.]+) evaluations/image\s+([\d.]+) GFLOP/s\s+([\d.]+)x\s+peak "
    rows = {
        m[1]: (float(m[2]), float(m[3]), float(m[5]))
        for m in map(re.compile(pattern).match, out.splitlines())
        if m
    }
    lab, ours_lab, ours_fast = "lab: Euler 99, 2 calls/step", "ours: --preset lab", "ours: --preset fast"
    assert list(rows) == [lab, ours_lab, ours_fast, "ours: euler 2"]
    # Counted network rows per image. The lab calls the network twice a step on all 110 rows; ours
    # batches the 100 digit rows and the 110 null rows together, and a null row's null call is its
    # conditional one: 210 rows a step for 110 images.
    rows_per_step = (110 + 100) / 110
    assert rows[lab][1] == 198.0
    assert rows[ours_lab][1] == round(99 * rows_per_step, 1) == 189.0
    fast = SAMPLERS["fast"]
    assert rows[ours_fast][1] == round(fast.evaluations() * rows_per_step, 1)
    assert rows["ours: euler 2"][1] == round(2 * rows_per_step, 1)
    # The ratio column: the lab's time over each variant's, i.e. its rate over the lab's.
    lab_rate = rows[lab][0]
    assert rows[lab][2] == 1.0
    for rate, _, ratio in rows.values():
        assert rate > 0 and ratio == pytest.approx(rate / lab_rate, rel=0.01, abs=0.01)
    assert f"  {ours_lab}: {SAMPLERS['lab'].describe()}" in out.splitlines()
    assert f"  {ours_fast}: {fast.describe()}" in out.splitlines()
