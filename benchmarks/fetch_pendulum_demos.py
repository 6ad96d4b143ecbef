"""Fetch the Pendulum-v1 expert demonstrations that ship inside imitation's source distribution.

    python benchmarks/fetch_pendulum_demos.py            # -> benchmarks/data/imitation_pendulum_rollouts.npz

imitation 1.0.1's sdist on PyPI carries ``tests/testdata/expert_models/pendulum_0/rollouts/final.npz``: 56
trajectories of 200 steps by an SB3 expert (observations cos θ, sin θ, θ̇; torques; returns -548 to -0.5). The
archive is checked against its published SHA-256 and the file is written through a temporary name, so an
interrupted fetch leaves nothing half-written. Read it with ``maxent_gan.models.pendulum.pendulum_problem(
horizon=200, demonstrations=path)``; ``tests/data/imitation_pendulum_rollouts.npz`` is its first four
trajectories.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import tarfile
import tempfile
import urllib.request
from pathlib import Path

URL = ("https://files.pythonhosted.org/packages/17/5e/e31945c03461a8f9e3c285c552a27f6d5bfe9e10354bf8bb08c00c697574/"
       "imitation-1.0.1.tar.gz")
SHA256 = "7b6341e41bf4c8a572b05dccd819d7a70df6244318559fe83e41c9444f00d29c"
MEMBER = "imitation-1.0.1/tests/testdata/expert_models/pendulum_0/rollouts/final.npz"
DEFAULT = Path(__file__).parent / "data" / "imitation_pendulum_rollouts.npz"


def fetch(out: Path = DEFAULT) -> Path:
    """Download, check and extract the rollouts to ``out`` (kept if already there)."""
    if out.exists():
        return out
    with urllib.request.urlopen(URL, timeout=120) as response:
        archive = response.read()
    digest = hashlib.sha256(archive).hexdigest()
    if digest != SHA256:
        raise RuntimeError(f"imitation-1.0.1.tar.gz: SHA-256 {digest}, expected {SHA256}")
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        data = tar.extractfile(MEMBER).read()
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=out.parent, suffix=".part")
    with os.fdopen(handle, "wb") as file:
        file.write(data)
    os.chmod(temporary, 0o644)
    os.replace(temporary, out)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT)
    print(fetch(parser.parse_args().out))
