"""The suite's settings (float64, XLA flags, the shared compilation cache, the crash net) for the long checks."""

from tests.conftest import *  # noqa: F403
from tests.conftest import _release_compiled_programs  # noqa: F401
