"""Sample quality while a run trains: the yardstick of ``cfg-tui eval`` on a small fixed set.

Every few steps the session (:mod:`core.session`) draws :data:`PER_CLASS` samples of each digit
from the weights it samples from, with a few-step sampler (midpoint × 4 at w = 3: 16 network
evaluations a sample), from the same noise every time (seed 0), and measures them with the bundled
MNIST classifier against :data:`REFERENCE_PER_CLASS` test images of each digit: Fréchet distance,
KID, precision and recall, each with its spread, and accuracy (:func:`core.evaluation.evaluate_samples`,
the code of ``cfg-tui eval``). The fixed noise makes one run's evaluations comparable step to step;
the numbers follow a run, they are not ``cfg-tui eval``'s (FD is biased by n, and by the sampler).

Cost, measured with the ``cpu`` preset's U-Net on one core of an AMD EPYC (family 25, model 17,
AVX-512; ``lscpu``), pinned with ``taskset`` because the machine was shared (MKL's eigh on two
threads slowed up to 200× whenever another process took a core): a training step 0.354 s; loading
the classifier and embedding the 2,000 reference images once, 1.8 s (all 10,000 took 12 s); one
evaluation of 300 samples, 6.9 s (sampling 4.6 s, measuring 2.4 s), 19.5 steps. Five evaluations
and the set-up cost 4.1 % of the preset's 2,500 steps (on both cores, under other processes' load,
the same ratio: 19.7 steps an evaluation, 4.1 %). With 500 samples an evaluation took 10.4 s
(29 steps): five would have cost 6 %; midpoint × 2 (8 evaluations a sample) costs what 300 samples
at × 4 do, but its sampler error swamps the model's (FD 323 against 231 at × 4 and 191 at × 16,
bundled model, 500 samples). Hence 30 samples per digit and, by default, :data:`EVALS_PER_RUN` per
run, only for runs that train on at least :data:`AUTO_MIN_IMAGES` images (fewer, or a model that
trains much faster per image than it samples, as under bf16, and five evaluations could cost more
than 5 %; ``--eval-every`` chooses).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.assets import CLASSIFIER
from core.checkpoint import CheckpointError
from core.configs import UNetConfig
from core.data import DataError

# The evaluation's modules load torch, and ``cfg-tui train --help`` quotes this module's numbers: they
# are imported where an evaluation is set up or made.
if TYPE_CHECKING:
    import torch

    from core.metrics import Classifier, Reference
    from core.unet import UNet

SOLVER = "midpoint"
STEPS = 4
GUIDANCE = 3.0
PER_CLASS = 30
SEED = 0
REFERENCE_PER_CLASS = 200
"""The real side: the first 200 test images of each digit (all 10,000 would take 6x longer to set up)."""
EVALS_PER_RUN = 5
"""The default: the run's steps split in five, the last evaluation at the end."""
AUTO_MIN_IMAGES = 250_000
"""Runs that train on fewer images (steps × batch) are not evaluated by default: for the ``cpu``
preset's U-Net, five evaluations cost 5 % of about 2,100 steps of 128 images."""
KEPT = (
    "frechet", "frechet_spread", "kid", "kid_spread", "precision", "precision_spread", "recall",
    "recall_spread", "accuracy", "confidence", "diversity",
)  # fmt: skip
"""What a quality record keeps of an evaluation row (the per-class distances are left out)."""


class QualityOff(Exception):
    """Why the quick evaluation cannot run for a run (one line); training goes on without it."""


def auto_eval_every(total_steps: int, batch_size: int) -> int:
    """Steps between evaluations when the user did not choose: :data:`EVALS_PER_RUN` per run (the
    last at the end), none for a run that trains on fewer than :data:`AUTO_MIN_IMAGES` images."""
    return total_steps // EVALS_PER_RUN if total_steps * batch_size >= AUTO_MIN_IMAGES else 0


def check_measurable(dataset: str, model: UNetConfig) -> None:
    """:class:`QualityOff` unless the classifier can judge the run's samples: MNIST's ten digits,
    one channel, 32 × 32 (28 × 28 as the lab resizes them)."""
    if dataset != "mnist":
        raise QualityOff(f"the classifier knows MNIST digits, not {dataset}")
    shape = (model.num_classes, model.image_channels, model.image_size)
    if shape != (10, 1, 32):
        raise QualityOff(
            f"the classifier takes 10 classes of 1×32×32 images; this model makes "
            f"{model.num_classes} classes of {model.image_channels}×{model.image_size}×{model.image_size}"
        )


@dataclass
class QuickEval:
    """The classifier and the reference's statistics, made once; :meth:`measure` a model any number
    of times."""

    classifier: Classifier
    reference: Reference
    per_class: int = PER_CLASS

    @classmethod
    def load(
        cls,
        dataset: str,
        model: UNetConfig,
        data_root: Path | None,
        device: torch.device,
        per_class: int = PER_CLASS,
        classifier_path: str | os.PathLike | None = None,
        log: Callable[[str], None] = lambda line: None,
    ) -> QuickEval:
        """:class:`QualityOff` saying why when the run cannot be measured or the classifier (default:
        the bundled one) or the test images cannot be read."""
        from core.evaluation import load_yardstick

        check_measurable(dataset, model)
        try:
            classifier, reference = load_yardstick(
                classifier_path or CLASSIFIER,
                device,
                data_root,
                log=log,
                reference_per_class=REFERENCE_PER_CLASS,
            )
        except (CheckpointError, DataError, OSError, RuntimeError) as e:
            # A missing or damaged classifier or test split must not stop a run from training.
            raise QualityOff(str(e).splitlines()[0] if str(e) else repr(e)) from None
        return cls(classifier, reference, per_class)

    def measure(self, model: UNet) -> dict:
        """The record's ``quality`` value for ``model``'s samples now: the measures, the sampler,
        the sample count and the seconds taken."""
        from core.evaluation import evaluate_samples
        from core.sampling import Sampler

        start = time.perf_counter()
        sampler = Sampler(solver=SOLVER, steps=STEPS)
        row = evaluate_samples(
            model, self.classifier, self.reference, GUIDANCE, sampler, self.per_class, SEED
        )
        return {
            **{key: row[key] for key in KEPT},
            "samples": row["n"],
            "solver": SOLVER,
            "steps": STEPS,
            "guidance": GUIDANCE,
            "seed": SEED,
            "seconds": round(time.perf_counter() - start, 3),
        }


def quality_line(quality: dict) -> str:
    """A quality record's ``quality`` in one line, for logs: FD ± spread, accuracy, n, seconds."""
    fd, spread = quality.get("frechet"), quality.get("frechet_spread")
    fd_text = "-" if fd is None else f"{fd:.2f}" + ("" if spread is None else f"±{spread:.2f}")
    accuracy = quality.get("accuracy")
    accuracy_text = "-" if accuracy is None else f"{accuracy:.3f}"
    seconds = quality.get("seconds") or 0.0
    return f"FD {fd_text}, accuracy {accuracy_text} ({quality.get('samples')} samples, {seconds:.1f} s)"
