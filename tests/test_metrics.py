from pathlib import Path

import pytest
import torch

from core.checkpoint import CheckpointError
from core.metrics import (
    COMBINED,
    Classifier,
    Reference,
    accuracy,
    augment,
    embed,
    load_classifier,
    mean_pairwise_distance,
    quality,
    save_classifier,
    train_classifier,
)
from core.statistics import frechet_distance
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
    reference = Reference.of(classifier, test.images, test.labels)
    real = quality(classifier, test.images, test.labels, reference)
    assert real.frechet == pytest.approx(0.0, abs=1e-4)
    assert real.accuracy == pytest.approx(accuracy(classifier, test))
    assert real.diversity == pytest.approx(1.0)
    halves = quality(
        classifier,
        test.images[:100],
        test.labels[:100],
        Reference.of(classifier, test.images[100:], test.labels[100:]),
    )
    noise = torch.randn(200, 1, 32, 32, generator=torch.Generator().manual_seed(3)).clamp(-1, 1)
    against_noise = quality(classifier, noise, test.labels, reference)
    assert against_noise.frechet > 10 * max(halves.frechet, 1e-3)
    assert against_noise.accuracy < 0.8 and set(against_noise.frechet_per_class) == {0, 1}
    assert real.distances.precision.value > 0.9 and against_noise.distances.precision.value < 0.1
    assert against_noise.distances.kid.value > 10 * abs(halves.distances.kid.value)


def test_augmentation_moves_digits_a_little_and_keeps_the_background() -> None:
    images = -torch.ones(64, 1, 32, 32)
    images[:, :, 12:20, 10:22] = 1  # a centred block, like a digit
    moved = augment(images, torch.Generator().manual_seed(0))
    assert moved.shape == images.shape and not torch.equal(moved, images)
    assert moved[:, :, 0, :].max() < -0.99 and moved[:, :, :, 0].max() < -0.99  # edges stay background
    assert 0 < (moved - images).abs().mean() < (images - images.roll(4, -1)).abs().mean()  # < 4 pixels
    assert moved.sum((1, 2, 3)).std() > 0  # each image its own change


def test_diversity_sees_collapse(trained) -> None:
    classifier, test = trained
    one_each = torch.stack([test.images[test.labels == c][0] for c in (0, 1)])
    collapsed = one_each.repeat_interleave(50, dim=0)
    labels = torch.tensor([0, 1]).repeat_interleave(50)
    reference = Reference.of(classifier, test.images, test.labels)
    assert quality(classifier, collapsed, labels, reference).diversity == pytest.approx(0, abs=1e-6)
    features, probs = embed(classifier, test.images)
    assert features.shape == (200, COMBINED)
    assert torch.allclose(probs.sum(1), torch.ones(200, dtype=torch.float64))
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
    tensors_v1 = tmp_path / "v1.safetensors"
    from core.checkpoint import read_tensors, save_tensors

    tensors, metadata = read_tensors(path)
    save_tensors(tensors_v1, tensors, {**metadata, "version": "1"})
    with pytest.raises(CheckpointError, match="classifier of version 1, expected 2; remake it"):
        load_classifier(tensors_v1)
    pooled = Classifier(feature_layer="pool")
    pooled.load_state_dict(classifier.state_dict())
    loaded, _ = load_classifier(save_classifier(tmp_path / "p.safetensors", pooled.eval(), {}))
    assert loaded.feature_layer == "pool" and embed(loaded, test.images)[0].shape == (200, 128)


def test_the_bundled_classifier_is_the_stronger_one() -> None:
    from core.assets import CLASSIFIER

    classifier, metadata = load_classifier(CLASSIFIER)
    assert classifier.feature_layer == "combined" and float(metadata["test_accuracy"]) >= 0.995
    assert int(metadata["epochs"]) >= 10 and not torch.equal(classifier.combined_std, torch.ones(COMBINED))


def test_units_dead_on_every_training_image_are_not_blown_up(trained) -> None:
    """A unit that never fires on the training images has std 0; scaled by it, one sample that wakes
    it would dominate every distance."""
    classifier, _ = trained
    std = classifier.combined_std
    assert float(std.min()) >= 0.01 * float(std.median()) * (1 - 1e-6)
    wake = torch.zeros(1, COMBINED)
    wake[0, int(std.argmin())] = 1.0  # a unit at 1 where the training images had it nearly constant
    assert float(((wake - classifier.combined_mean) / std).abs().max()) < 1e4
