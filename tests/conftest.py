"""Float64 for the whole suite (identities are checked to 1e-10), set before any test runs; hypothesis profiles."""

import os

import jax
from hypothesis import settings

# CI and ./dev test are deterministic: the same examples on every run (derandomize), no example
# database. The exploratory search is opt-in: HYPOTHESIS_PROFILE=explore ./dev test tests/test_properties.py
settings.register_profile("ci", max_examples=40, derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", max_examples=2000, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

jax.config.update("jax_enable_x64", True)
os.environ.setdefault("MAXENT_GAN_QUICK", "1")


def pytest_collection_modifyitems(items):
    """Notebooks first, the later (longer: 05-07 run one to two minutes) ones first: with ``-n 2
    --dist worksteal`` the long items then start early instead of leaving one worker busy after the
    other has finished."""
    notebooks = [item for item in items if str(item.path).endswith(".ipynb")]
    items[:] = notebooks[::-1] + [item for item in items if not str(item.path).endswith(".ipynb")]
