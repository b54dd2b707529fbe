import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from core.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from core.trainer import new_model
from core.unet import UNetConfig
from tests.conftest import TINY


def _saved(tmp_path: Path, config: UNetConfig = TINY) -> tuple[Path, torch.nn.Module]:
    model = new_model(config, seed=3).eval()
    # Non-default BatchNorm statistics, so that buffers are checked too.
    model.init_conv[1].running_mean.fill_(0.25)
    return save_checkpoint(tmp_path / "model.safetensors", model, {"step": "42"}), model


def _one_line_error(path: Path, **kwargs) -> str:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message
    return message


def test_round_trip_gives_the_same_model_and_metadata(tmp_path: Path) -> None:
    path, model = _saved(tmp_path)
    loaded, metadata = load_checkpoint(path)
    assert loaded.config == TINY
    assert metadata["step"] == "42"
    assert not loaded.training
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    x, t, y = torch.randn(2, 1, 16, 16), torch.rand(2), torch.tensor([0, 2])
    torch.testing.assert_close(loaded(x, t, y), model(x, t, y))
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_file_is_safetensors_not_pickle(tmp_path: Path) -> None:
    path, _ = _saved(tmp_path)
    raw = path.read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_len])
    assert json.loads(header["__metadata__"]["unet_config"]) == TINY.to_dict()
    assert b"\x80\x04" not in raw[:2]


def test_missing_and_corrupt_files_give_one_line(tmp_path: Path) -> None:
    assert "checkpoint not found" in _one_line_error(tmp_path / "nope.safetensors")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00\x01not a checkpoint at all" * 10)
    assert "not a readable safetensors file" in _one_line_error(garbage)
    path, _ = _saved(tmp_path)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert "not a readable safetensors file" in _one_line_error(truncated)


def test_foreign_safetensors_file_is_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(3)}, str(foreign))
    assert "not a cfg-tui checkpoint" in _one_line_error(foreign)


def test_mismatched_configuration_is_named(tmp_path: Path) -> None:
    path, _ = _saved(tmp_path)
    expected = UNetConfig(
        channels=(8, 32), num_residual_layers=1, t_embed_dim=8, y_embed_dim=8, num_classes=2, image_size=16
    )
    message = _one_line_error(path, expect=expected)
    assert re.search(r"channels is \[8, 16\] but \[8, 32\] was expected", message)


def test_tensors_that_do_not_fit_the_stored_configuration_are_refused(tmp_path: Path) -> None:
    path, _model = _saved(tmp_path)
    _, tensors, metadata = read_checkpoint(path)
    # Claim a wider network than the tensors hold: refused from the header, before building it.
    metadata["unet_config"] = json.dumps({**TINY.to_dict(), "channels": [8, 24]})
    lying = tmp_path / "lying.safetensors"
    save_file(tensors, str(lying), metadata=metadata)
    assert re.search(r"has [\d,]+ parameters but the file stores [\d,]+ numbers", _one_line_error(lying))
    # A narrower one: built (it is smaller than the file), then its tensors' shapes do not fit.
    metadata["unet_config"] = json.dumps({**TINY.to_dict(), "channels": [8, 12]})
    save_file(tensors, str(lying), metadata=metadata)
    assert re.search(r"tensor \S+ is torch.float32 \(\d+, \d+", _one_line_error(lying))
    # Drop a tensor.
    del tensors["final_conv.bias"]
    save_file(tensors, str(lying), metadata={**metadata, "unet_config": json.dumps(TINY.to_dict())})
    assert "missing final_conv.bias" in _one_line_error(lying)


def test_bad_configuration_and_non_finite_weights_are_refused(tmp_path: Path) -> None:
    path, _ = _saved(tmp_path)
    _, tensors, metadata = read_checkpoint(path)
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad), metadata={**metadata, "unet_config": "{not json"})
    assert "bad model configuration" in _one_line_error(bad)
    tensors["final_conv.bias"][0] = float("nan")
    save_file(tensors, str(bad), metadata=metadata)
    assert "final_conv.bias has non-finite values" in _one_line_error(bad)


def test_unwritable_destination_raises_and_leaves_nothing(tmp_path: Path) -> None:
    model = new_model(TINY, seed=0)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / "no" / "such" / "dir" / "m.safetensors", model)
    target = tmp_path / "m.safetensors"
    target.write_bytes(b"old")
    save_checkpoint(target, model)
    assert load_checkpoint(target)[0].config == TINY
