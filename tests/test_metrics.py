from pathlib import Path

import pytest
import torch

from core.checkpoint import CheckpointError
from core.metrics import (
    Classifier,
    accuracy,
    embed,
    frechet_distance,
    load_classifier,
    mean_pairwise_distance,
    quality,
    save_classifier,
    train_classifier,
)
from tests.conftest import bars


@pytest.fixture(scope="module")
def trained() -> tuple[Classifier, object]:
    data = bars(600, size=32, seed=0)
    return train_classifier(data, epochs=2, batch_size=64, seed=0), bars(200, size=32, seed=1)


def test_frechet_distance_of_a_set_to_itself_is_zero_and_matches_gaussians() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4000, 4, generator=g, dtype=torch.float64)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    shift = torch.tensor([1.0, -2.0, 0.0, 0.5], dtype=torch.float64)
    b = torch.randn(4000, 4, generator=g, dtype=torch.float64) + shift
    assert frechet_distance(a, b) == pytest.approx(float(shift.square().sum()), rel=0.05)
    wide = torch.randn(4000, 4, generator=g, dtype=torch.float64) * 3  # Tr(I + 9I − 2·3I) = 4·4
    assert frechet_distance(a, wide) == pytest.approx(16.0, rel=0.05)


def test_classifier_learns_and_real_beats_noise(trained) -> None:
    classifier, test = trained
    assert accuracy(classifier, test) > 0.95
    real = quality(classifier, test.images, test.labels, test.images, test.labels)
    assert real.frechet == pytest.approx(0.0, abs=1e-4)
    assert real.accuracy == pytest.approx(accuracy(classifier, test))
    assert real.diversity == pytest.approx(1.0)
    halves = quality(classifier, test.images[:100], test.labels[:100], test.images[100:], test.labels[100:])
    noise = torch.randn(200, 1, 32, 32, generator=torch.Generator().manual_seed(3)).clamp(-1, 1)
    against_noise = quality(classifier, noise, test.labels, test.images, test.labels)
    assert against_noise.frechet > 10 * max(halves.frechet, 1e-3)
    assert against_noise.accuracy < 0.8 and set(against_noise.frechet_per_class) == {0, 1}


def test_diversity_sees_collapse(trained) -> None:
    classifier, test = trained
    one_each = torch.stack([test.images[test.labels == c][0] for c in (0, 1)])
    collapsed = one_each.repeat_interleave(50, dim=0)
    labels = torch.tensor([0, 1]).repeat_interleave(50)
    assert quality(classifier, collapsed, labels, test.images, test.labels).diversity == pytest.approx(
        0, abs=1e-6
    )
    features, probs = embed(classifier, test.images)
    assert features.shape == (200, 128) and torch.allclose(probs.sum(1), torch.ones(200, dtype=torch.float64))
    assert mean_pairwise_distance(features[:1]) == 0.0


def test_classifier_file_round_trip(trained, tmp_path: Path) -> None:
    classifier, test = trained
    path = save_classifier(tmp_path / "c.safetensors", classifier, {"test_accuracy": "0.99"})
    loaded, metadata = load_classifier(path)
    assert metadata["test_accuracy"] == "0.99"
    assert torch.equal(embed(loaded, test.images)[1], embed(classifier, test.images)[1])
    from core.checkpoint import save_checkpoint
    from core.trainer import new_model
    from tests.conftest import TINY

    not_a_classifier = save_checkpoint(tmp_path / "unet.safetensors", new_model(TINY, 0))
    with pytest.raises(CheckpointError, match="is not a cfg-tui classifier"):
        load_classifier(not_a_classifier)
