"""What the example scripts share: their options (--out-dir, --quick, --seed) and saving a plot."""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def example_args(doc: str, argv: list[str] | None) -> tuple[argparse.Namespace, Path]:
    """Parse the shared options; returns (args, output folder, created if needed)."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="folder for the plot (default: a new temporary folder)")
    parser.add_argument("--quick", action="store_true", help="small data, for tests")
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args(argv)
    out_dir = args.out_dir or Path(tempfile.mkdtemp(prefix="mixedmodels-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    return args, out_dir


def save_figure(fig, path: Path) -> None:
    """Write ``fig`` to ``path`` as a 100 dpi PNG, close it and say where it went."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    print(f"plot saved to {path}\n")
