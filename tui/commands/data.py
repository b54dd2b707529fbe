"""``cfg-tui data``: fetch and inspect the datasets."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from core.data import DATASETS, DataError, default_data_root
from core.data.sources import RAW_FILES
from tui.commands.common import DataRoot, check_folder, log

app = typer.Typer(help="Fetch MNIST / Fashion-MNIST and show what is in the data root.", no_args_is_help=True)


def _names(dataset: str) -> list[str]:
    if dataset == "all":
        return list(DATASETS)
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)} or all")
    return [dataset]


@app.command()
def fetch(
    dataset: str = typer.Option("mnist", help=f"{', '.join(DATASETS)} or all."),
    data_root: Path | None = DataRoot,
) -> None:
    """Get the raw files (trying each source in turn) and preprocess both splits once."""
    import torch  # here, not above: --help must not wait for it

    from core.data import load_split

    root = data_root or default_data_root()
    names = _names(dataset)
    check_folder("--data-root", root)  # the files fetched and the caches are written there
    for name in names:
        for split in RAW_FILES:
            start = time.perf_counter()
            data, fingerprint = load_split(name, split, root, log=log)
            counts = " ".join(map(str, torch.bincount(data.labels, minlength=10).tolist()))
            lo, hi = float(data.images.min()), float(data.images.max())
            typer.echo(
                f"{name} {split}: {len(data):,} images in [{lo:g}, {hi:g}], labels 0-9: {counts}; "
                f"{time.perf_counter() - start:.2f} s, fingerprint {fingerprint[:12]}"
            )
    typer.echo(f"data root: {root}")


@app.command()
def info(data_root: Path | None = DataRoot) -> None:
    """Show, for each dataset, where its raw files and caches are and whether they are there."""
    from core.data.cache import cache_path

    root = data_root or default_data_root()
    table = Table("dataset", "split", "raw files", "cache")
    for dataset in DATASETS.values():
        raw = dataset.raw_dir(root)
        for split, files in RAW_FILES.items():
            have_raw = all((raw / f).exists() or (raw / f"{f}.gz").exists() for f in files)
            cache = cache_path(root, dataset, split)
            table.add_row(
                dataset.name,
                split,
                "present" if have_raw else "missing",
                f"{cache.stat().st_size / 2**20:.1f} MiB" if cache.exists() else "none",
            )
    Console().print(table)
    typer.echo(f"data root: {root}")
