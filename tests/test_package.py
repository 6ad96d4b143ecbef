"""The installed package: one namespace, ``maxent_gan``, and nothing named ``models`` or ``inference`` at the
top of site-packages, so it installs beside a user's own ``models`` package."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                    "--wheel-dir", str(out), str(ROOT)], check=True, capture_output=True, timeout=300)
    (path,) = out.glob("maxent_gan-*.whl")
    return path


def test_the_wheel_holds_one_top_level_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"maxent_gan"}
    for module in ("maxent_gan/__init__.py", "maxent_gan/models/tabular.py", "maxent_gan/inference/app/cli.py",
                   "maxent_gan/inference/proposals/policy.py"):
        assert module in names
    assert not any(name.startswith(("maxent_gan/tests/", "maxent_gan/benchmarks/", "maxent_gan/notebooks/"))
                   for name in names)
    entry_points = next(name for name in names if name.endswith("entry_points.txt"))
    assert "maxent-gan = maxent_gan.inference.app.cli:run" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_beside_a_users_models_package_both_import(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    assert not (site / "models").exists() and not (site / "inference").exists()
    users = tmp_path / "user"
    (users / "models").mkdir(parents=True)
    (users / "models" / "__init__.py").write_text("OWNER = 'the user'\n")
    script = ("import models, maxent_gan, maxent_gan.models.tabular, maxent_gan.inference.estimators\n"
              "print(models.OWNER); print(maxent_gan.__file__); print(maxent_gan.models.tabular.__file__)\n")
    # run outside the repository, the installed copy first on the path (the dependencies come from this venv)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(users)])}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    owner, package, tabular = result.stdout.splitlines()[-3:]
    assert owner == "the user"
    assert Path(package).is_relative_to(site) and Path(tabular).is_relative_to(site / "maxent_gan" / "models")
