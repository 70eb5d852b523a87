"""When it hangs: each cause reproduced with real workers, ending in the message that names it."""
import psutil

from helpers.lessons import hangs


def workers_left() -> list[psutil.Process]:
    """Children other than multiprocessing's resource tracker, which spawn starts once and keeps."""
    return [p for p in psutil.Process().children() if "resource_tracker" not in " ".join(p.cmdline())]


def test_a_stuck_workers_dump_shows_it_in_the_datasets_getitem_and_leaves_no_process():
    error, stacks = hangs.stuck_worker_dumped(timeout=1)
    assert error == "RuntimeError: DataLoader timed out after 1 seconds"
    busy = [stack for stack in stacks if stack[0] == "helpers/lessons/hangs.py, in __getitem__"]
    assert busy and "torch/utils/data/_utils/worker.py, in _worker_loop" in busy[0]
    assert workers_left() == []


def test_dump_stacks_reads_a_faulthandler_dump_one_list_a_thread():
    text = ('Thread 0x00007f01 (most recent call first):\n  File "/x/site-packages/torch/a.py", line 3 in f\n\n'
            'Current thread 0x00007f02 (most recent call first):\n  File "/usr/lib/python3.11/threading.py", line 9 in run\n')
    assert hangs.dump_stacks(text) == [["torch/a.py, in f"], ["threading.py, in run"]]


def test_a_workers_error_arrives_wrapped_and_without_workers_it_is_raised_as_itself():
    wrapped, plain = hangs.error_in_worker(2), hangs.error_in_worker(0)
    assert "Caught ValueError in DataLoader worker process 0" in wrapped and "label 'dgo'" in wrapped
    assert plain == "ValueError (raised in this process): item 5: label 'dgo' is not one of cat, dog"


def test_a_lock_held_at_fork_hangs_the_forked_worker_but_not_one_from_the_forkserver():
    assert hangs.fork_while_locked("fork", timeout=1) == "fork: RuntimeError: DataLoader timed out after 1 seconds"
    assert hangs.fork_while_locked("forkserver", timeout=60) == "forkserver: ok: [[0, 1, 2, 3], [4, 5, 6, 7]]"
    assert not hangs.LOCK.locked()


def test_the_demos_never_fork_the_process_that_calls_them():
    """A notebook's kernel calls these: the fork, and the worker left waiting, happen in a child Python started for
    them, or in a forkserver. os.register_at_fork's hooks run for every fork that returns to Python here
    (multiprocessing's, not subprocess's fork and exec), so a count of 0 says this process was not forked."""
    import os

    forks = []
    os.register_at_fork(before=lambda: forks.append(1))
    assert hangs.fork_while_locked("fork", timeout=1).startswith("fork: RuntimeError")
    assert "Caught ValueError" in hangs.error_in_worker(2, context="forkserver")  # notebook 09's in-kernel loaders
    assert hangs.stuck_worker_dumped(timeout=1)[0].startswith("RuntimeError")
    assert forks == []
