"""`train --stall-s` and scripts/train.py's: a stalled pass shows where it is stuck, ends with exit status 2 and leaves
no process behind; a bad value is one line."""
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from front_door import run_command
from helpers.processes import kill_group

HERE = Path(__file__).parent
ROOT = HERE.parent
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals and fork as Linux has them")


def still_there(pids: list[int], group: int) -> list[int]:
    """The processes among PIDS, or in process group GROUP, that are still running (zombies have ended)."""
    left = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if (proc.pid in pids or os.getpgid(proc.pid) == group) and proc.info["status"] != psutil.STATUS_ZOMBIE:
                left.append(proc.pid)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return left


@pytest.fixture
def data(tmp_path) -> Path:
    """Two class folders, one file each: the index train reads; the stand-in splits never open them."""
    for name in ("cat", "dog"):
        (tmp_path / "data" / name).mkdir(parents=True)
        (tmp_path / "data" / name / "0.jpg").write_bytes(b"")
    return tmp_path / "data"


@linux_only
@pytest.mark.parametrize("entry, split, at, workers, shown", [
    ("train", "train", 6, "2", "(each with its own augmentation seed)"),
    ("train", "val", 0, "1", "fetching dataset indices [0, 1]"),
    ("scripts/train.py", "train", 6, "0", "with num_workers=0 its main thread loads the batches"),
])
def test_a_stalled_training_run_shows_where_and_leaves_nothing_behind(entry, split, at, workers, shown, data,
                                                                      tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)]), "STALL_TEST_PIDS": str(pids),
           "STALL_SPLIT": split, "STALL_AT": str(at), "HELPERS_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, str(HERE / "stall_training.py"), entry, "--data", str(data), "--epochs",
                             "1", "--num-workers", workers, "--batch-size", "2", "--image-size", "32",
                             "--no-pretrained", "--checkpoint", "", "--no-progress", "--stall-s", "2"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=240)
        seen = [int(p.stem) for p in pids.glob("*.pid")]
        left = still_there([p for p in seen if p != proc.pid], proc.pid)
    finally:
        kill_group(proc)
        proc.communicate()
    assert proc.returncode == 2, err
    assert "in stuck_in_training_data" in out and shown in out
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("error: no batch arrived for 2 s (--stall-s): ")
    assert len(set(seen) - {proc.pid}) >= int(workers) and left == []


@pytest.mark.parametrize("argv, says", [
    (["train", "--stall-s", "0"], "--stall-s: got 0"),
    (["scripts/train.py", "--stall-s", "soon"], "--stall-s: got 'soon'"),
    (["cached", "--stall-s", "2"], "--stall-s 2: cached does not watch for stalls"),
    (["scripts/train_ddp.py", "--stall-s", "2"], "--stall-s 2: ddp does not watch for stalls"),
])
def test_a_bad_stall_limit_is_one_line_and_exit_status_2(argv, says, capsys):
    code, out, err = run_command(argv, capsys)
    assert code == 2 and says in err and err.count("\n") == 1 and "Traceback" not in err


@linux_only
def test_a_worker_still_starting_is_reported_and_not_signalled(tmp_path):
    """A worker whose probe is not in place yet would be ended by the stack signal (SIGUSR1's default): not asked."""
    from helpers.loading.stalls import collect_stacks

    starting = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        texts = collect_stacks([starting.pid], tmp_path, timeout_s=0.5)
        alive = starting.poll() is None
    finally:
        kill_group(starting)
        starting.wait()
    assert texts == [f"worker 0 (pid {starting.pid}): still starting (its worker_init_fn has not run yet), so not "
                     "asked for its stack"]
    assert alive


STUCK = """
import signal, sys, tempfile, time
from helpers.loading import stalls
stalls.GRACE_S = 0.5
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})  # the interrupt never lands: stuck as in C code
watch = stalls.Watchdog(0.3, lambda: "report", lambda: None, tempfile.mkdtemp(prefix="helpers-stall-"))
print(watch.folder, flush=True)
with watch, watch.waiting():
    time.sleep(60)
"""


@linux_only
def test_a_main_thread_that_never_returns_ends_from_the_watchdog_with_its_folder_removed():
    from helpers.processes import run_group

    done = run_group([sys.executable, "-c", STUCK], timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    folder = Path(done.stdout.splitlines()[0])
    assert done.returncode == 2 and "ends here" in done.stderr
    assert not folder.exists()
