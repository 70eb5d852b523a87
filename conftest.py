"""Loaded by pytest before anything is collected, so notebook kernels started by nbval inherit this too."""
import os

os.environ["HELPERS_OFFLINE"] = "1"  # tests and CI never try to download ImageNet weights


def pytest_configure(config):
    """nbval starts its kernels as the main job does (helpers/kernels.py: private Unix sockets, each kernel's process
    group ended at the end of the session), and a cell past run-notebooks' quick limit fails rather than waits."""
    if not getattr(config.option, "nbval", False):
        return
    import contextlib

    import nbval.kernel
    from jupyter_client.manager import KernelManager

    from helpers.app.kernels import ipc_kernel_manager
    from helpers.app.notebooks import CELL_TIMEOUTS

    stack = contextlib.ExitStack()
    nbval.kernel.KernelManager = stack.enter_context(ipc_kernel_manager(KernelManager))
    config.add_cleanup(stack.close)
    if float(config.option.nbval_cell_timeout) == 2000:  # nbval's default, 33 minutes; a value given is kept
        config.option.nbval_cell_timeout = CELL_TIMEOUTS["quick"]
