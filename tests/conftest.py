"""Shared fixtures."""

import pytest


@pytest.fixture(params=["numpy", "jit"])
def kernel_path(request):
    """Run a test once with the NumPy ops and once with the compiled (Numba) kernels."""
    from convscope.ops import jit

    if request.param == "jit" and jit.numba is None:
        pytest.skip("Numba is not installed (the optional [fast] extra), so there is no compiled path to test")
    previous = jit.enabled()
    jit.set_enabled(request.param == "jit")
    yield request.param
    jit.set_enabled(previous)
