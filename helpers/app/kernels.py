"""Notebook kernels that talk to their client over Unix sockets in a private folder, not over TCP ports.

jupyter_client connects to a kernel over TCP on 127.0.0.1 by default, and ipykernel then warns that the channel is not
encrypted (ipykernel/kernelapp.py, init_sockets). With `transport = "ipc"` both sides use Unix domain sockets instead
(jupyter_client/connect.py); placed in a folder only this user can enter, nothing else on the machine can reach them.
"""
from __future__ import annotations

import contextlib
import os
import signal
import tempfile
from typing import Iterator


@contextlib.contextmanager
def ipc_kernel_manager(base: type | None = None) -> Iterator[type]:
    """A kernel manager class whose kernels listen on sockets in a private temporary folder: for nbclient/papermill
    (BASE None: AsyncKernelManager), or for a blocking client such as nbval's (BASE jupyter_client's KernelManager),
    so the test command's kernels are started as the main job's are."""
    from jupyter_client.manager import AsyncKernelManager

    with tempfile.TemporaryDirectory(prefix="kernels-") as folder:  # mode 0700: this user only
        class IPCKernelManager(base or AsyncKernelManager):
            groups: list[int] = []  # the process group of every kernel started, each its own session

            def __init__(self, **kwargs) -> None:
                super().__init__(**kwargs)
                self.transport, self.ip = "ipc", os.path.join(folder, "kernel")

            async def _async_post_start_kernel(self, **kw) -> None:
                await super()._async_post_start_kernel(**kw)
                pgid = getattr(self.provisioner, "pgid", None)
                if pgid:
                    self.groups.append(pgid)

        try:
            yield IPCKernelManager
        finally:
            end_kernel_groups(IPCKernelManager)


def end_kernel_groups(kernel_manager: type) -> None:
    """SIGKILL every process left in the groups of the kernels KERNEL_MANAGER started: a kernel that ended gracefully
    can leave workers or a forkserver behind, and a kernel past its cell's time limit is ended with its children."""
    groups = getattr(kernel_manager, "groups", [])
    while groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(groups.pop(), signal.SIGKILL)
