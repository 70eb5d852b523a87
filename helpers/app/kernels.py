"""Notebook kernels that talk to their client over Unix sockets in a private folder, not over TCP ports.

jupyter_client connects to a kernel over TCP on 127.0.0.1 by default, and ipykernel then warns that the channel is not
encrypted (ipykernel/kernelapp.py, init_sockets). With `transport = "ipc"` both sides use Unix domain sockets instead
(jupyter_client/connect.py); placed in a folder only this user can enter, nothing else on the machine can reach them.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterator


@contextlib.contextmanager
def ipc_kernel_manager() -> Iterator[type]:
    """A kernel manager class for nbclient/papermill whose kernels listen on sockets in a private temporary folder."""
    from jupyter_client.manager import AsyncKernelManager

    with tempfile.TemporaryDirectory(prefix="kernels-") as folder:  # mode 0700: this user only
        class IPCKernelManager(AsyncKernelManager):
            def __init__(self, **kwargs) -> None:
                super().__init__(**kwargs)
                self.transport, self.ip = "ipc", os.path.join(folder, "kernel")

        yield IPCKernelManager
