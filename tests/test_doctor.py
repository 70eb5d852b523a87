"""`python -m helpers doctor`: each verdict on a faked machine (a small /dev/shm, a low open-files limit, a CPU quota
file), the JSON, and the exit status from a real process whose open-files limit was lowered."""
import json
import os
import sys
from pathlib import Path


from helpers.__main__ import main
from helpers.app.doctor import (OK, PROBLEM, WARNING, Plan, cores, diagnose, exit_status, open_files, shared_memory,
                            shm_space, start_method)
from helpers.machine import cpu_quota, usable_cores
from helpers.processes import run_group

ROOT = Path(__file__).resolve().parents[1]
MIB = 2**20
AFFINITY = len(os.sched_getaffinity(0))


def fake_cgroup(tmp_path: Path, files: dict[str, str], own: str = "/") -> tuple[Path, Path]:
    """A cgroup tree holding FILES and a /proc/self/cgroup that puts this process at OWN."""
    root = tmp_path / "cgroup"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    proc = tmp_path / "proc_self_cgroup"
    proc.write_text(f"0::{own}\n")
    return root, proc


def test_a_half_cpu_quota_leaves_one_core_and_max_leaves_the_affinity(tmp_path):
    root, proc = fake_cgroup(tmp_path, {"cpu.max": "50000 100000\n"})
    assert cpu_quota(root, proc) == 0.5 and usable_cores(root, proc) == 1
    root, proc = fake_cgroup(tmp_path / "b", {"cpu.max": "max 100000\n"})
    assert cpu_quota(root, proc) is None and usable_cores(root, proc) == AFFINITY


def test_a_parent_cgroups_quota_limits_its_children(tmp_path):
    root, proc = fake_cgroup(tmp_path, {"docker/cpu.max": "150000 100000", "docker/job/cpu.max": "max 100000"},
                             own="/docker/job")
    assert cpu_quota(root, proc) == 1.5 and usable_cores(root, proc) == min(AFFINITY, 2)


def test_cgroup_v1_quota_and_period_files(tmp_path):
    root, proc = fake_cgroup(tmp_path, {"cpu/cpu.cfs_quota_us": "100000", "cpu/cpu.cfs_period_us": "100000"})
    assert cpu_quota(root, proc) == 1.0
    root, proc = fake_cgroup(tmp_path / "b", {"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"})
    assert cpu_quota(root, proc) is None


def test_a_quota_below_the_cpu_count_is_a_warning_naming_the_cores_to_use():
    finding = cores(usable=2, counted=64, quota=2.0)
    assert finding.verdict == WARNING and "size num_workers by 2" in finding.fix
    assert cores(usable=8, counted=8, quota=None).verdict == OK


def test_under_torchrun_the_cores_are_shared_by_the_ranks_on_the_machine():
    shared = cores(usable=8, counted=8, quota=None, ranks=4, num_workers=4)
    assert shared.verdict == WARNING and "2 per rank" in shared.value and "4 ranks x 4 workers = 16" in shared.fix
    assert cores(usable=8, counted=8, quota=None, ranks=4, num_workers=2).verdict == OK


def test_dockers_64_mb_shm_is_a_problem_for_big_batches_and_fine_for_small():
    big = Plan(num_workers=4, batch_size=64, image_size=224)  # 8 batches of 38.5 MB in flight
    assert shared_memory(64 * MIB, 63 * MIB, big).verdict == PROBLEM
    assert "--shm-size" in shared_memory(64 * MIB, 63 * MIB, big).fix
    small = Plan(num_workers=1, batch_size=4, image_size=64)
    assert shared_memory(64 * MIB, 63 * MIB, small).verdict == OK
    assert shared_memory(None, None, big).verdict == OK  # no /dev/shm: macOS, Windows


def test_a_missing_shm_folder_is_read_as_absent(tmp_path):
    assert shm_space(tmp_path / "nowhere") == (None, None)
    total, free = shm_space(tmp_path)
    assert total >= free > 0


def test_a_low_open_files_limit_is_a_problem_unless_tensors_travel_by_file_system():
    plan = Plan(num_workers=8, prefetch_factor=4)
    low = open_files(64, 64, open_now=40, strategy="file_descriptor", plan=plan)
    assert low.verdict == PROBLEM and "file_system" in low.fix and "--ulimit nofile" in low.fix  # soft = hard
    assert "ulimit -n 4096" in open_files(64, 100000, open_now=40, strategy="file_descriptor", plan=plan).fix
    assert open_files(64, 64, open_now=20, strategy="file_system", plan=plan).verdict != PROBLEM
    assert open_files(-1, -1, open_now=40, strategy="file_descriptor", plan=plan).verdict == OK  # unlimited


def test_spawn_warns_that_notebook_datasets_cannot_travel():
    assert start_method("fork").verdict == OK
    assert "module" in start_method("spawn").fix and start_method("forkserver").verdict == WARNING


def test_diagnose_reads_the_probes_it_is_pointed_at(tmp_path):
    root, proc = fake_cgroup(tmp_path, {"cpu.max": "100000 100000"})
    findings = {f.check: f for f in diagnose(Plan(), shm_path=tmp_path / "none", cgroup_root=root, cgroup_file=proc,
                                              nofile=(8, 8))}
    assert findings["cpu cores"].value.startswith("1 usable") and "quota 1 CPUs" in findings["cpu cores"].value
    assert findings["/dev/shm"].verdict == OK and "absent" in findings["/dev/shm"].value
    assert findings["open files"].verdict == PROBLEM
    assert exit_status(list(findings.values())) == 1


def test_json_lists_every_check_and_the_exit_status_follows_the_problems(capsys):
    code = main(["doctor", "--json", "--num-workers", "1"])
    report = json.loads(capsys.readouterr().out)
    checks = [f["check"] for f in report["findings"]]
    assert checks == ["versions", "start method", "cpu cores", "memory", "/dev/shm", "open files", "gpu",
                      "imagenet weights"]
    assert {f["verdict"] for f in report["findings"]} <= {OK, WARNING, PROBLEM}
    assert code == (report["problems"] > 0) and report["plan"]["num_workers"] == 1


def test_a_process_with_a_lowered_open_files_limit_exits_1_naming_the_fix():
    lower = "import resource,runpy,sys; resource.setrlimit(resource.RLIMIT_NOFILE, (12, 12)); " \
            "sys.argv=['helpers','doctor']; runpy.run_module('helpers', run_name='__main__')"
    done = run_group([sys.executable, "-c", lower], timeout=120, cwd=ROOT,
                     env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 1, done.stderr
    line = next(l for l in done.stdout.splitlines() if "open files" in l)
    assert line.startswith("PROBLEM") and "limit 12" in line
    assert "set_sharing_strategy('file_system')" in done.stdout
