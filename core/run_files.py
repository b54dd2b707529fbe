"""The typed contents of a run's ``config.json`` and ``status.json``.

Every writer and reader of a run directory goes through :class:`RunConfig` and
:class:`RunStatus`. Both carry ``version``; reading is tolerant of older files (keys
added since default to what those files meant) and of keys it does not know (kept in
``RunConfig.extra`` and written back), so that a newer cfg-tui never breaks an older run.

Reading is strict about what the keys hold: a file edited by hand, damaged, or written by something
else must not reach the trainer or the app as a string step, a negative pid, a NaN time or a U-Net of
10^12 parameters. Each value is checked for its kind and range, and the first bad one is a one-line
:class:`RunError` naming the file, the key and the value.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from core.configs import PROCESSES, STAGES, STEP, TrainConfig, UNetConfig, unet_parameters

CONFIG_VERSION = 1
STATUS_VERSION = 1
STATES = ("running", "finished", "stopped", "failed")
T = TypeVar("T")

# What a config.json or status.json may hold is checked against core.configs' bounds (through
# UNetConfig / TrainConfig, and the bounds below), the ones a new run is made under: every run
# cfg-tui made reads back, and a hand-edited or damaged file asking for the absurd is refused.
MAX_PARAMETERS = 2**31
"""U-Net parameters (8 GiB of float32 weights): far past any MNIST model, short of what would hang or
exhaust memory when a resume builds it (the widest configuration inside the bounds has more)."""
IMAGES = (1, 10**9)
"""Training images a run's data may hold (MNIST's 60,000 or a made-up set)."""
PROCESS_RANGE = (int(PROCESSES.low), int(PROCESSES.high))
MAX_STEP = int(STEP.high)
"""A step in status.json: no run takes more (core.configs.TRAIN_STEPS)."""
MAX_PID = 2**31 - 1
"""A pid_t; 0 means none (a status from before pids were recorded). A negative pid is never taken:
``kill`` would read it as a process group (-1: every process)."""


class RunError(ValueError):
    """A folder that is not a usable run; the message is one line."""


def shown(value: object, width: int = 40) -> str:
    """``value`` as JSON writes it (null, true, "x"; ASCII, so never a line break) cut to ``width``
    characters: a message quotes a bad value, never a whole file."""
    try:
        said = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        said = repr(value)
    return said if len(said) <= width else said[: width - 1] + "…"


def is_whole(value: object) -> bool:
    """An int from JSON (a bool is not one, nor 5.0)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_finite(value: object) -> bool:
    """A finite int or float from JSON (a bool is not a number; NaN and Infinity are not finite)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def whole(name: str, value: object, low: int, high: int) -> int:
    """``value`` if it is a whole number in [low, high], else a one-line ValueError naming ``name``."""
    if not is_whole(value) or not low <= value <= high:  # type: ignore[operator]
        raise ValueError(f"{name} must be a whole number from {low:,} to {high:,}, not {shown(value)}")
    return value  # type: ignore[return-value]


def real(name: str, value: object, low: float = -math.inf) -> float:
    """``value`` as a float if it is a finite number, ``low`` or more; else a one-line ValueError."""
    if not is_finite(value) or value < low:  # type: ignore[operator]
        above = "" if low == -math.inf else f", {low:g} or more"
        raise ValueError(f"{name} must be a finite number{above}, not {shown(value)}")
    return float(value)


def text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text, not {shown(value)}")
    return value


def optional(check: Callable[..., T], name: str, value: object, *bounds: float) -> T | None:
    """None for a key absent or null, else ``check(name, value, *bounds)``."""
    return None if value is None else check(name, value, *bounds)


def _section(d: dict, key: str) -> dict:
    """``d[key]``, which must be a JSON object (KeyError when missing: ``no 'key'``)."""
    value = d[key]
    if not isinstance(value, dict):
        raise ValueError(f"{key} must be an object, not {shown(value)}")
    return value


def _kind_problem(value: object, like: object) -> str | None:
    """What is wrong with ``value`` as a setting whose default is ``like`` (its kind), or None.

    The dataclasses do not check kinds: "100" steps would fail later as a TypeError in the
    trainer, 16.5 images a batch in torch, true as 1 would pass unseen."""
    if isinstance(like, bool):
        return None if isinstance(value, bool) else "must be true or false"
    if isinstance(like, int):
        return None if is_whole(value) else "must be a whole number"
    if isinstance(like, float):
        return None if is_finite(value) else "must be a finite number"
    if isinstance(like, str):
        return None if isinstance(value, str) else "must be text"
    if isinstance(like, tuple):
        ok = isinstance(value, list) and all(is_whole(v) for v in value)
        return None if ok else "must be a list of whole numbers"
    return None


def _check_kinds(section: str, cls: type, d: dict) -> None:
    """Each known key of ``d`` holds the kind of its field's default (unknown keys are left to
    ``cls.from_dict``, which names them)."""
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    for name, value in d.items():
        problem = _kind_problem(value, defaults[name]) if name in defaults else None
        if problem:
            raise ValueError(f"{section} {name} {problem}, not {shown(value)}")


def read_model(d: dict) -> UNetConfig:
    """config.json's ``model``: kinds, then UNetConfig's own checks, then the size it would build."""
    _check_kinds("model", UNetConfig, d)
    stages = len(d.get("channels", ()))  # counted first: each of a million entries would be checked
    if stages > STAGES.high:
        raise ValueError(f"model channels must list at most {STAGES.high:g} stages, not {stages:,}")
    model = UNetConfig.from_dict(d)
    parameters = unet_parameters(model)
    if parameters > MAX_PARAMETERS:
        raise ValueError(f"the model would have {parameters:,} parameters, more than {MAX_PARAMETERS:,}")
    return model


def read_train(d: dict) -> TrainConfig:
    """config.json's ``train``: kinds, then TrainConfig's own checks (core.configs' bounds)."""
    _check_kinds("train", TrainConfig, {k: v for k, v in d.items() if k != "bf16"})
    return TrainConfig.from_dict(d)


@dataclass(frozen=True)
class DataInfo:
    """Which training data a run uses, and their fingerprint (checked on resume)."""

    dataset: str
    root: str
    images: int
    fingerprint: str

    @classmethod
    def from_dict(cls, d: dict) -> DataInfo:
        return cls(
            dataset=text("data dataset", d["dataset"]),
            root=text("data root", d["root"]),
            images=whole("data images", d["images"], *IMAGES),
            fingerprint=text("data fingerprint", d["fingerprint"]),
        )


@dataclass(frozen=True)
class RunConfig:
    """``config.json``: every setting of a run, the data it trains on, and where it was made."""

    preset: str
    model: UNetConfig
    train: TrainConfig
    data: DataInfo
    device: str = "cpu"
    processes: int = 1
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""
    command: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # keys of a newer cfg-tui, kept as they were

    def to_dict(self) -> dict:
        return {
            "version": CONFIG_VERSION,
            "preset": self.preset,
            "model": self.model.to_dict(),
            "train": self.train.to_dict(),
            "data": dataclasses.asdict(self.data),
            "device": self.device,
            "processes": self.processes,
            "versions": self.versions,
            "created": self.created,
            "command": self.command,
            **self.extra,
        }

    @classmethod
    def from_dict(cls, d: dict, where: object = "config.json") -> RunConfig:
        """Read a config.json's object; :class:`RunError` naming ``where`` if it is unusable."""
        known = {f.name for f in dataclasses.fields(cls)} | {"version"}
        try:
            config = cls(
                preset=text("preset", d.get("preset", "?")),
                model=read_model(_section(d, "model")),
                train=read_train(_section(d, "train")),
                data=DataInfo.from_dict(_section(d, "data")),
                device=text("device", d.get("device", "cpu")),
                processes=whole("processes", d.get("processes", 1), *PROCESS_RANGE),  # runs before --nproc: 1
                versions=_versions(d.get("versions", {})),
                created=text("created", d.get("created", "")),
                command=_command(d.get("command", [])),
                extra={k: v for k, v in d.items() if k not in known},
            )
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            reason = f"no {e}" if isinstance(e, KeyError) else str(e)
            raise RunError(f"{where} has unusable settings ({reason})") from None
        if config.train.batch_size < config.processes:  # create_run refuses it too
            raise RunError(f"{where} has unusable settings (batch size {config.train.batch_size} is less "
                           f"than one image per process, {config.processes} processes)")  # fmt: skip
        return config

    def with_steps(self, steps: int) -> RunConfig:
        return dataclasses.replace(self, train=dataclasses.replace(self.train, steps=steps))


def _versions(value: object) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError(f"versions must be an object of texts, not {shown(value)}")
    return value


def _command(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"command must be a list of texts, not {shown(value)}")
    return value


@dataclass(frozen=True)
class RunStatus:
    """``status.json``: where a run is, written by its trainer at every logged step and at the end."""

    state: str
    step: int
    total_steps: int
    pid: int = 0
    host: str = ""
    started: float = 0.0
    updated: float = 0.0
    checkpoint_step: int | None = None
    device: str | None = None
    last_loss: float | None = None
    elapsed: float | None = None
    reason: str | None = None  # why a run failed or stopped
    phase: str | None = None  # what a running trainer is doing before its first logged step

    @classmethod
    def now(cls, state: str, step: int, total_steps: int, started: float | None = None, **extra) -> RunStatus:
        """A status of this process on this host, updated now."""
        now = time.time()
        return cls(state, step, total_steps, os.getpid(), socket.gethostname(), started or now, now, **extra)

    def to_dict(self) -> dict:
        values = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        return {"version": STATUS_VERSION, **values}

    @classmethod
    def from_dict(cls, d: dict, where: object = "status.json") -> RunStatus:
        """Read a status.json's object; :class:`RunError` naming ``where`` and the first bad key.

        A key absent takes its default (older files lack some), and null is one only for the keys
        that may be None; a key present must hold a value of its kind and range: no string step,
        no null, negative or huge pid, no NaN time."""
        try:
            state = text("state", d["state"])
            if state not in STATES:
                raise ValueError(f"unknown state {state[:40]!r}")
            step = whole("step", d.get("step", 0), 0, MAX_STEP)
            return cls(
                state=state,
                step=step,
                total_steps=whole("total_steps", d.get("total_steps", step), 0, MAX_STEP),
                pid=whole("pid", d.get("pid", 0), 0, MAX_PID),
                host=text("host", d.get("host", "")),
                started=real("started", d.get("started", 0.0), 0),
                updated=real("updated", d.get("updated", 0.0), 0),
                checkpoint_step=optional(whole, "checkpoint_step", d.get("checkpoint_step"), 0, MAX_STEP),
                device=optional(text, "device", d.get("device")),
                last_loss=optional(real, "last_loss", d.get("last_loss")),
                elapsed=optional(real, "elapsed", d.get("elapsed"), 0),
                reason=optional(text, "reason", d.get("reason")),
                phase=optional(text, "phase", d.get("phase")),
            )
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            reason = f"no {e}" if isinstance(e, KeyError) else str(e)
            raise RunError(f"{where} is not a usable status ({reason})") from None

    @property
    def on_this_host(self) -> bool:
        return self.host == socket.gethostname()
