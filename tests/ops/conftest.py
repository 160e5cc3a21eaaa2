"""The CPU kernels split their work over threads (``at::parallel_for``): run the op's tests with two
intra-op threads, where tests/conftest.py gives the rest of the suite one."""

import pytest
import torch

# Threads for the op's tests: enough for the kernels' parallel loops to split the work.
KERNEL_TEST_THREADS = 2


@pytest.fixture(autouse=True)
def _kernel_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(KERNEL_TEST_THREADS)
    yield
    torch.set_num_threads(threads)
