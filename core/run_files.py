"""The typed contents of a run's ``config.json`` and ``status.json``.

Every writer and reader of a run directory goes through :class:`RunConfig` and
:class:`RunStatus`. Both carry ``version``; reading is tolerant of older files (keys
added since default to what those files meant) and of keys it does not know (kept in
``RunConfig.extra`` and written back), so that a newer cfg-tui never breaks an older run.
"""

from __future__ import annotations

import dataclasses
import math
import os
import socket
import time
from dataclasses import dataclass, field

from core.configs import TrainConfig, UNetConfig

CONFIG_VERSION = 1
STATUS_VERSION = 1
STATES = ("running", "finished", "stopped", "failed")


class RunError(ValueError):
    """A folder that is not a usable run; the message is one line."""


@dataclass(frozen=True)
class DataInfo:
    """Which training data a run uses, and their fingerprint (checked on resume)."""

    dataset: str
    root: str
    images: int
    fingerprint: str


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
            data = DataInfo(**{k: d["data"][k] for k in ("dataset", "root", "images", "fingerprint")})
            return cls(
                preset=str(d.get("preset", "?")),
                model=UNetConfig.from_dict(d["model"]),
                train=TrainConfig.from_dict(d["train"]),
                data=data,
                device=str(d.get("device", "cpu")),
                processes=int(d.get("processes", 1)),  # runs before --nproc had one process
                versions=dict(d.get("versions", {})),
                created=str(d.get("created", "")),
                command=list(d.get("command", [])),
                extra={k: v for k, v in d.items() if k not in known},
            )
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            reason = f"no {e}" if isinstance(e, KeyError) else str(e)
            raise RunError(f"{where} has unusable settings ({reason})") from None

    def with_steps(self, steps: int) -> RunConfig:
        return dataclasses.replace(self, train=dataclasses.replace(self.train, steps=steps))


def _optional(kind: type, value: object) -> object:
    return None if value is None else kind(value)


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
        try:
            state = str(d["state"])
            if state not in STATES:
                raise ValueError(f"unknown state {state!r}")
            step = int(d.get("step", 0))
            return cls(
                state=state,
                step=step,
                total_steps=int(d.get("total_steps", step)),
                pid=int(d.get("pid", 0)),
                host=str(d.get("host", "")),
                started=float(d.get("started", 0.0)),
                updated=float(d.get("updated", 0.0)),
                checkpoint_step=_optional(int, d.get("checkpoint_step")),  # type: ignore[arg-type]
                device=_optional(str, d.get("device")),  # type: ignore[arg-type]
                last_loss=_finite_or_none(d.get("last_loss")),
                elapsed=_optional(float, d.get("elapsed")),  # type: ignore[arg-type]
                reason=_optional(str, d.get("reason")),  # type: ignore[arg-type]
                phase=_optional(str, d.get("phase")),  # type: ignore[arg-type]
            )
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            reason = f"no {e}" if isinstance(e, KeyError) else str(e)
            raise RunError(f"{where} is not a usable status ({reason})") from None

    @property
    def on_this_host(self) -> bool:
        return self.host == socket.gethostname()


def _finite_or_none(value: object) -> float | None:
    if not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None
