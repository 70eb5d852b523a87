"""What each notebook teaches, asserted on its executed kernel (tests/lessons.py says how the facts are read).

A lesson is registered with @lesson(stem, probe, reversed=...): PROBE is an expression evaluated in the notebook's
namespace after its last cell, giving a dict of facts; the check asserts the lesson on them; each entry of REVERSED
overrides some facts with the opposite result, and the check must then fail, so no check passes whatever happens.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pytest

import lessons
from helpers.verdict import FASTER, SAME, SLOWER, verdict


@dataclass
class Lesson:
    stem: str
    probe: str
    check: Callable[[dict], None]
    reversed: tuple[dict, ...]


LESSONS: dict[str, Lesson] = {}


def lesson(stem: str, probe: str, reversed: tuple[dict, ...]) -> Callable:
    """Register CHECK as the lesson of notebooks/STEM.ipynb."""
    def register(check: Callable[[dict], None]) -> Callable[[dict], None]:
        assert reversed, f"{stem}: give at least one reversed result the check must reject"
        LESSONS[stem] = Lesson(stem, probe, check, tuple(reversed))
        return check
    return register


def found(stem: str) -> lessons.Found:
    """The notebook's facts from this session's nbval run, or from executing it now."""
    if stem not in lessons.FOUND:
        try:
            lessons.FOUND[stem] = lessons.execute_and_probe(stem, LESSONS[stem].probe)
        except Exception as exc:
            lessons.FOUND[stem] = exc
    got = lessons.FOUND[stem]
    if isinstance(got, Exception):
        raise got
    return got


# ---------------------------------------------------------------------------------------------------------------
# The lessons, one per notebook.

# --- lessons 00 ---
@lesson("00_setup_and_data",
        probe="dict(blog_lines_fail=sum(compiles(line) != 'compiles' for line in blog_lines), "
              "fixed_lines_compile=all(compiles(line) == 'compiles' for line in fixed_lines), "
              "smaller=smaller, sized=len(sizes), kept=kept, images=len(dataset), "
              "left_out=[name.split(':')[0] for name in left_out])",
        reversed=(dict(blog_lines_fail=1),
                  dict(fixed_lines_compile=False), dict(smaller=10), dict(kept=3), dict(left_out=[])))
def _setup_and_data(f: dict) -> None:
    assert f["blog_lines_fail"] == 2 and f["fixed_lines_compile"], "defect 1: both blog lines fail, both fixes compile"
    assert f["smaller"] > f["sized"] / 2, "the blog's 512 px resize enlarges most images"
    assert f["kept"] == f["images"] - 1 and f["left_out"] == ["cut_short.jpg"], "the loader leaves out the bad file"


# --- lessons 01 ---
@lesson("01_transforms",
        probe="dict(pixel_ratio=pixel_ratio, max_levels=float(levels.max()), "
              "distinct_draws=distinct_draws, val_identical=val_identical, "
              "bytes_ratio=batch_bytes['blog'] / batch_bytes['fast'], "
              "dict_batch=[list(batch['image'].shape), batch['label'].tolist(), batch['name']], "
              "item_sizes=[tuple(image.shape[1:]) for image, _ in photos], "
              "padded_shape=list(padded.images.shape), padded_sizes=[list(s) for s in padded.sizes], "
              "kept=batch_sizes[False], dropped=batch_sizes[True], "
              "sampled_heights=[[h for h, _ in b.sizes] for b in grouped], "
              "accelerator=torch.accelerator.is_available(), pinned=pinned.images.is_pinned(), "
              "pin_warned=any('pin_memory' in str(w.message) for w in caught))",
        reversed=(dict(pixel_ratio=1.0), dict(max_levels=5.0),
                  dict(distinct_draws=1), dict(val_identical=False), dict(bytes_ratio=1.0),
                  dict(dict_batch=[[3, 2, 2], 0, "img0.jpg"]), dict(padded_shape=[4, 3, 300, 300]),
                  dict(padded_sizes=[[408, 470]] * 4), dict(dropped=[4, 4, 2]), dict(kept=[4, 4]),
                  dict(sampled_heights=[[408, 370, 371, 412], [306, 369, 306, 313], [433, 439]]),
                  dict(pinned=True, accelerator=False), dict(pin_warned=False, accelerator=False)))
def _transforms(f: dict) -> None:
    assert f["pixel_ratio"] > 5, "512 px is more than five times the pixels of 224 px"
    assert f["max_levels"] <= 1, "the uint8 v2 pipeline gives the model the blog pipeline's numbers"
    assert f["distinct_draws"] > 1 and f["val_identical"], "training draws differ, validation calls do not"
    assert f["bytes_ratio"] == 4, "a uint8 batch is a quarter of the float32 one"
    assert f["dict_batch"] == [[4, 3, 2, 2], [0, 1, 0, 1], [f"img{i}.jpg" for i in range(4)]], \
        "default_collate stacks a dict item's tensors, turns its numbers into a tensor and lists its strings"
    sizes, n = [tuple(s) for s in f["item_sizes"]], len(f["item_sizes"])
    assert len(set(sizes[:4])) > 1, "the first batch's photos differ in size, so default_collate cannot stack them"
    assert f["padded_sizes"] == [list(s) for s in sizes[:4]] and f["padded_shape"] == [
        4, 3, max(h for h, _ in sizes[:4]), max(w for _, w in sizes[:4])], "the collate_fn pads to the batch's largest"
    assert sum(f["kept"]) == n and f["kept"][:-1] == [4] * (len(f["kept"]) - 1) and f["kept"][-1] < 4, \
        "without drop_last the last batch is short"
    assert f["dropped"] == f["kept"][:-1], "drop_last drops the short last batch, and only it"
    heights = [h for batch in f["sampled_heights"] for h in batch]
    assert len(f["sampled_heights"]) == -(-n // 4) and heights == sorted(h for h, _ in sizes), \
        "the batch sampler gives every photo once, in batches of 4 in height order"
    assert f["pinned"] == f["accelerator"] and f["pin_warned"] == (not f["accelerator"]), \
        "pin_memory=True pins (through the batch's own pin_memory) only with an accelerator, and warns without one"


# --- lessons 02 ---
@lesson("02_splitting",
        probe="dict(shared_transform=val_part.dataset.transform is train_pipe.transform, "
              "blog_val_repeats=torch.equal(first, again), "
              "overlap=len(train_files & val_files), val_own_transform=val_set.transform is val_pipe.transform, "
              "same_seed_same_split={s.path for s in again_val.samples} == val_files, "
              "other_seed_same_split={s.path for s in other_val.samples} == val_files, "
              "fresh_seeds_equal=seeds[0] == seeds[1], same_seed_same_order=run_b_epoch_1 == epoch_1, "
              "reshuffled=epoch_2 != epoch_1, val_in_order=val_1 == val_2 == list(range(len(val_set))), "
              "random_dogs=random_dogs, strat_dogs=strat_dogs)",
        reversed=(dict(overlap=3), dict(shared_transform=False), dict(blog_val_repeats=True),
                  dict(same_seed_same_split=False), dict(other_seed_same_split=True), dict(fresh_seeds_equal=True),
                  dict(same_seed_same_order=False), dict(reshuffled=False), dict(val_in_order=False),
                  dict(strat_dogs=[3, 4, 3, 2, 3]), dict(random_dogs=[3, 3, 3, 3, 3])))
def _splitting(f: dict) -> None:
    assert f["shared_transform"] and not f["blog_val_repeats"], \
        "random_split's halves share one dataset, so validation is augmented: an image read twice differs"
    assert not f["fresh_seeds_equal"], "two fresh processes seed torch's global generator differently"
    assert f["overlap"] == 0 and f["val_own_transform"], "index split: disjoint files, validation's own transform"
    assert f["same_seed_same_split"] and not f["other_seed_same_split"], "the same seed gives the same split, another seed another"
    assert f["same_seed_same_order"] and f["reshuffled"], "a seeded generator: the same order per run, new per epoch"
    assert f["val_in_order"], "validation unshuffled: file order every pass"
    assert len(set(f["strat_dogs"])) == 1 and len(set(f["random_dogs"])) > 1, \
        "a stratified split holds the same share of the rare class whatever the seed; a random one does not"


# --- lessons 03 ---

@lesson("03_multiprocess_loading",
        probe="dict(worker_processes=len(worker_pids), workers_not_kernel=os.getpid() not in worker_pids, "
              "whole_batches=all(len(set(p)) == 1 for _, p in batches), turns=[worker_pids.index(p[0]) for _, p in batches], "
              "pinned_only_for_cuda=loader.pin_memory == (device == 'cuda'), "
              "served_persistent=len(served[True]), served_fresh=len(served[False]), "
              "in_cell_ok=[a.ok for a in in_cell.values()], in_module_ok=in_module.ok, "
              "without_guard_exit=without_guard.returncode, "
              "bootstrapping=any('bootstrapping phase' in e for e in without_guard.errors), "
              "with_guard_exit=with_guard.returncode, with_guard_out=with_guard.stdout.strip(), "
              "plain_items=len(seen[False]), plain_counts=sorted(set(seen[False].values())), "
              "sharded_items=len(seen[True]), sharded_counts=sorted(set(seen[True].values())), "
              "loaded={row.setting: row.values for row in swept if row.setting in (0, 1)})",
        reversed=(dict(workers_not_kernel=False), dict(turns=[0, 0, 1, 1]), dict(pinned_only_for_cuda=False),
                  dict(served_persistent=4), dict(in_cell_ok=[True, True]), dict(in_module_ok=False),
                  dict(without_guard_exit=0), dict(with_guard_exit=1), dict(plain_counts=[1]),
                  dict(sharded_counts=[2]),
                  dict(loaded={"0": [300.0, 310.0, 305.0, 300.0, 295.0], "1": [600.0, 620.0, 610.0, 600.0, 590.0]}),
                  dict(loaded={"0": [300.0, 310.0], "1": [290.0, 300.0]})))
def _workers(f: dict) -> None:
    assert f["worker_processes"] == 2 and f["workers_not_kernel"], "2 workers: two processes, not the kernel's"
    assert f["whole_batches"] and f["turns"] == [0, 1, 0, 1], "each batch built whole, dealt to the workers in turn"
    assert f["pinned_only_for_cuda"], "the call pins only when batches go to CUDA (defect 8b)"
    assert f["served_persistent"] == 2 and f["served_fresh"] == 4, "persistent: the same 2 processes served both passes"
    assert not any(f["in_cell_ok"]) and f["in_module_ok"], "a cell's class fails under spawn/forkserver, a module's works"
    assert f["without_guard_exit"] != 0 and f["bootstrapping"], "the script fails without the guard"
    assert f["with_guard_exit"] == 0 and "[[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]]" in f["with_guard_out"], \
        "the script runs with the guard"
    assert f["plain_items"] == 8 and f["plain_counts"] == [2], "unsharded, each item arrives once per worker"
    assert f["sharded_items"] == 8 and f["sharded_counts"] == [1], "sharded with get_worker_info(), each item once"
    assert verdict(f["loaded"]["1"], f["loaded"]["0"]) in (SLOWER, SAME), \
        "loading alone, one worker is no faster than none, by the verdict over the rounds"


# --- lessons 09 ---

@lesson("09_failure_zoo",
        probe="dict(timeout=timeout, got=got, alive=len(multiprocessing.active_children()), dump_error=error, "
              "busy_top=busy[0], "
              "busy_in_worker_loop=any(f.endswith('in _worker_loop') for f in busy), "
              "locked_fork=locked['fork'], locked_forkserver=locked['forkserver'], "
              "hidden_workers=hidden[2], hidden_none=hidden[0], too_many=too_many, fixes=list(fixes.values()), "
              "saw=list(saw.values()), shm_failed=failed, shm_fixed=fixed, pickled=pickled.stdout.splitlines())",
        reversed=(dict(got=[[0, 1], [2, 3], [4, 5], [6, 7]]), dict(got=["RuntimeError: DataLoader timed out after 1 seconds"]),
                  dict(alive=1),
                  dict(busy_top="torch/utils/data/_utils/worker.py, in _worker_loop"),
                  dict(locked_fork="fork: ok: [[0, 1, 2, 3], [4, 5, 6, 7]]"),
                  dict(locked_forkserver="forkserver: RuntimeError: DataLoader timed out after 60 seconds"),
                  dict(hidden_none="ValueError (main process, traceback in the message): Caught ValueError in "
                                   "DataLoader worker process 0. ... ValueError: item 5"),
                  dict(too_many="ok: 32 batches"), dict(fixes=["error: received 0 items of ancdata", "ok: 32 batches"]),
                  dict(saw=[[[1], [2], [3]], [[1], [2], [3]], [[1], [2], [3]]]),
                  dict(shm_failed="ok: 4 batches"), dict(shm_fixed="error: unable to allocate shared memory"),
                  dict(pickled=["lambda: ok, first batch [0, 1, 2, 3]"] * 3 + ["top-level: ok, first batch [1, 2, 3, 4]"]),
                  dict(pickled=["lambda: PicklingError: Can't pickle"] * 4)))
def _failure_zoo(f: dict) -> None:
    timed_out = f"RuntimeError: DataLoader timed out after {f['timeout']} seconds"
    assert f["got"] == [[0, 1], timed_out], "the loader's worker starts within the timeout, then item 2 times it out"
    assert f["alive"] == 0, "deleting the iterator ended the loader's worker"
    assert f["dump_error"] == timed_out, "a stuck worker ends in the timeout error"
    assert f["busy_top"] == "helpers/lessons/hangs.py, in __getitem__" and f["busy_in_worker_loop"], \
        "the dump shows the worker stuck in the dataset's __getitem__, under the worker loop"
    assert "timed out" in f["locked_fork"] and f["locked_forkserver"].startswith("forkserver: ok"), \
        "a lock held at fork hangs the forked worker, not the forkserver's"
    assert "Caught ValueError in DataLoader worker process" in f["hidden_workers"], "a worker's error comes wrapped"
    assert "raised in this process" in f["hidden_none"], "without workers the error is raised where it happens"
    assert f["too_many"].startswith("error") and "open files" in f["too_many"], "the open-files limit is hit"
    assert all(outcome.startswith("ok") for outcome in f["fixes"]), "both fixes load every batch"
    assert f["saw"] == [[[1], [1], [1]], [[1], [2], [3]], [[1], [2], [3]]], \
        "persistent workers keep epoch 1; recreated workers or the sampler's epoch see each epoch"
    assert "--shm-size" in f["shm_failed"] and f["shm_fixed"].startswith("ok"), "small /dev/shm fails, 64 MiB works"
    *failing, fixed = f["pickled"]
    assert len(failing) == 3 and all("Can't pickle" in line for line in failing) and ": ok, " in fixed, \
        "under spawn a lambda or nested collate_fn, worker_init_fn or transform cannot be pickled; top-level ones can"


# --- lessons 04 ---
@lesson("04_training",
        probe="dict(wait_apart=all(0 < w < s for s, w in passes), epochs_timed=len(passes), epochs=epochs, "
              "profile_steps=profile_steps, "
              "profiled_waits=[e.count for e in prof.key_averages() if e.key.startswith('enumerate(DataLoader)')], "
              "profiled_steps=[e.count for e in prof.key_averages() if e.key == 'train_step'])",
        reversed=(dict(wait_apart=False), dict(epochs_timed=1), dict(profiled_waits=[]), dict(profiled_steps=[2])))
def _training(f: dict) -> None:
    assert f["wait_apart"] and f["epochs_timed"] == f["epochs"], \
        "every epoch's wait for next(batches) is measured apart from compute: above 0 and below the pass's time"
    assert f["profiled_waits"] == [f["profile_steps"]] and f["profiled_steps"] == [f["profile_steps"]], \
        "torch.profiler sees one enumerate(DataLoader) wait beside each profiled training step"


# --- lessons 14 ---
@lesson("14_training_defects",
        probe="dict(once=once, twice=twice, plain_drift=plain_drift, our_drift=our_drift, in_eval=in_eval, "
              "in_train=in_train, stopped_epochs=stopped['epoch'], resumed_epochs=resumed['epoch'], epochs=epochs, "
              "epoch_1_from_checkpoint=resumed['seconds'][0] == stopped['seconds'][0], "
              "unbroken_val=unbroken['val_loss'], resumed_val=resumed['val_loss'], weight_gap=weight_gap, "
              "blog_ratio=blog / unbroken['train_loss'][-1], batch_ratio=steps / len(val_loader))",
        reversed=(dict(twice=0.9), dict(plain_drift=0.0), dict(our_drift=0.01), dict(in_eval=[0.7, 0.8]),
                  dict(in_train=[0.9, 0.9]), dict(resumed_epochs=[1]), dict(epoch_1_from_checkpoint=False),
                  dict(weight_gap=1e-4),
                  dict(resumed_val=[0.5, 0.6]), dict(blog_ratio=1.0)))
def _training_defects(f: dict) -> None:
    assert abs(f["once"] - f["twice"]) < 1e-6, "defect 3: a second log-softmax leaves CrossEntropyLoss unchanged"
    assert f["plain_drift"] > 0 and f["our_drift"] == 0, \
        "defect 4: a frozen ResNet18 in train() moves BatchNorm's running mean; FrozenResNet18's backbone stays put"
    assert f["in_eval"][0] == f["in_eval"][1] and f["in_train"][0] != f["in_train"][1], \
        "defect 4: validation in eval() repeats; in train() dropout makes each evaluation a new draw"
    assert f["stopped_epochs"] == [1] and f["resumed_epochs"] == list(range(1, f["epochs"] + 1)) \
        and f["epoch_1_from_checkpoint"], "fit resumed after the checkpoint's epoch (its record read back) and finished"
    assert f["weight_gap"] == 0 and f["resumed_val"] == f["unbroken_val"], \
        "a stopped and resumed run ends on the unbroken run's weights and losses, exactly"
    assert abs(f["blog_ratio"] - f["batch_ratio"]) < 0.05 * f["batch_ratio"] and f["batch_ratio"] > 1, \
        "defect 5: the blog's average inflates the training loss by training batches over validation batches"


# --- lessons 05 ---
@lesson("05_timing_workers",
        probe="dict(first_batch={n: first_batch[n] for n in workers if n > 0}, "
              "steady_batch={n: steady_batch[n] for n in workers if n > 0}, "
              "settings=[row.setting for row in swept], workers=list(workers), "
              "loaded={row.setting: row.values for row in swept if row.setting in (0, 1)}, "
              "e2e_settings=[row.setting for row in fed_rows], e2e_workers=list(e2e_workers), e2e_repeats=e2e_repeats, "
              "fed={row.setting: row.values for row in fed_rows}, ceiling=ceiling.values, "
              "waits={row.setting: row.median_of(lambda t: t.data_wait_fraction) for row in fed_rows})",
        reversed=(dict(first_batch={"1": [0.01] * 5, "2": [0.01] * 5, "4": [0.01] * 5}), dict(settings=[0]),
                  dict(loaded={"0": [800.0, 800.0, 810.0, 790.0, 800.0], "1": [1600.0, 1650.0, 1700.0, 1600.0, 1620.0]}),
                  dict(loaded={"0": [800.0, 810.0], "1": [790.0, 800.0]}),
                  dict(e2e_settings=[0]), dict(ceiling=[200.0, 210.0]),
                  dict(waits={"0": None, "1": 0.1, "2": 0.1, "3": 0.1}),
                  dict(ceiling=[1.0, 1.1, 1.0, 1.2, 1.0]),
                  dict(fed={"0": [1e6, 1.1e6, 1e6, 1.2e6, 1e6]}),
                  dict(waits={"0": 0.05, "1": 0.3, "2": 0.3, "3": 0.3})))
def _timing_workers(f: dict) -> None:
    for n, first in f["first_batch"].items():
        assert verdict(first, f["steady_batch"][n], higher_is_better=False) == SLOWER, \
            f"with {n} workers the first batch (start-up) is slower than a steady one, by the verdict over the repeats"
    assert f["settings"] == f["workers"], "every num_workers setting of the sweep was timed"
    assert verdict(f["loaded"]["1"], f["loaded"]["0"]) in (SLOWER, SAME), \
        "loading alone, one worker is no faster than none, by the verdict over the repeats"
    assert f["e2e_settings"] == f["e2e_workers"] and len(f["ceiling"]) == f["e2e_repeats"] and all(
        len(v) == f["e2e_repeats"] for v in f["fed"].values()), "the ceiling and every num_workers ran in every round"
    assert all(w is not None and 0 <= w < 1 for w in f["waits"].values()), \
        "end to end, the data wait is measured at every setting, as a share of the loop"
    assert all(verdict(v, f["ceiling"]) != FASTER for v in f["fed"].values()), \
        "no loader feeds the step measurably faster than batches already in memory (the ceiling)"
    assert verdict(f["fed"]["0"], f["ceiling"]) == SLOWER and f["waits"]["0"] > max(
        w for n, w in f["waits"].items() if n != "0"), \
        "with no workers the step waits for the loading: slower than the ceiling, and more wait than with any worker"


# --- lessons 06 ---
@lesson("06_cheaper_workers",
        probe="dict(bytes_ratio=first['blog'].nbytes / first['uint8 resize'].nbytes, "
              "dtypes={name: str(images.dtype) for name, images in first.items()}, "
              "batch_ratio=[r['mb_per_batch'] for r in breakdown.transfer if r['dtype'] == 'float32'][0] / "
              "[r['mb_per_batch'] for r in breakdown.transfer if r['dtype'] == 'uint8'][0], "
              "like_for_like={(l.num_workers, l.batch_size) for l in loaders.values()} == {(workers, batch_size)}, "
              "timed=[row.setting for row in swept], rates={row.setting: row.values for row in swept}, "
              "full_side=min(full.shape[1:]), drafted_side=min(drafted.shape[1:]), image_size=image_size)",
        reversed=(dict(bytes_ratio=1.0), dict(batch_ratio=2.0), dict(dtypes={"blog": "torch.float32",
                  "uint8": "torch.float32", "uint8 resize": "torch.uint8"}), dict(like_for_like=False),
                  dict(timed=["blog", "uint8 resize"]),
                  dict(rates={"blog": [300.0, 310.0, 305.0, 300.0, 295.0], "uint8": [600.0, 620.0, 610.0, 600.0, 590.0],
                              "uint8 resize": [305.0, 300.0, 310.0, 295.0, 300.0]}),
                  dict(drafted_side=3000), dict(drafted_side=150)))
def _cheaper_workers(f: dict) -> None:
    assert f["bytes_ratio"] == 4 and f["batch_ratio"] == 4, "a float32 batch is 4 times the uint8 one's bytes"
    assert f["dtypes"] == {"blog": "torch.float32", "uint8": "torch.uint8", "uint8 resize": "torch.uint8"}, \
        "the learner's two cheaper loaders hand over uint8"
    assert f["like_for_like"] and f["timed"] == ["blog", "uint8", "uint8 resize"], \
        "the three loaders, one change apart, at the same num_workers and batch, all timed"
    assert verdict(f["rates"]["uint8 resize"], f["rates"]["blog"]) == FASTER, \
        "uint8 hand-over and a uint8 resize make the blog's loader faster, by the verdict over the rounds"
    scale = f["full_side"] / f["drafted_side"]
    assert scale in (4, 8) and f["drafted_side"] >= f["image_size"] and (scale == 8 or f["drafted_side"] < 2 * f["image_size"]), \
        "the phone photo decoded at 1/4 or 1/8, the smallest DCT scale still covering the model's input"


# --- lessons 07 ---

@lesson("07_beyond_the_loader",
        probe="dict(from_images=fed['seconds'], from_cache=cached['seconds'], moved=[r['change'] for r in moves], "
              "in_view=dict(common=len(common), covered=sorted(x for s in seen.values() for x in s) == list(split)), "
              "ddp_returncode=result.returncode, "
              "ddp_shards=[dict(shared=r['shared'], distinct=r['distinct'], "
              "dealt=sum(v for k, v in r.items() if k.startswith('rank '))) for r in shards], "
              "encoded_kb=encoded_kb, decoded_kb=decoded_kb)",
        reversed=(dict(from_cache=[2.3, 2.1, 2.2, 2.0, 2.1]), dict(from_cache=[0.01, 0.01]),
                  dict(moved=[0.1, 0.14, 0.23]),
                  dict(moved=[0.0, 0.0, 0.23]), dict(in_view=dict(common=4, covered=True)),
                  dict(ddp_shards=[dict(shared=3, distinct=157, dealt=160)]), dict(ddp_returncode=1),
                  dict(encoded_kb=60.0, decoded_kb=49.0)))
def _beyond_the_loader(f: dict) -> None:
    assert verdict(f["from_cache"], f["from_images"], higher_is_better=False) == FASTER, \
        "an epoch from cached features is faster than one from images, by the verdict over the epochs"
    frozen, augmented, unfrozen = f["moved"]
    assert frozen == 0.0 and augmented > 0 and unfrozen > 0, "only a fixed transform and a frozen backbone repeat"
    assert f["in_view"] == dict(common=0, covered=True), "DistributedSampler deals each rank a disjoint share"
    assert f["ddp_returncode"] == 0 and f["ddp_shards"], "the torchrun job trained"
    assert all(r["shared"] == 0 and r["distinct"] == r["dealt"] for r in f["ddp_shards"]), "torchrun's shards disjoint"
    assert f["encoded_kb"] < f["decoded_kb"], "JPEG bytes are less to move than decoded pixels"

# --- end lessons 07 ---

# --- lessons 08 ---

@lesson("08_worker_memory",
        probe="dict(pss_none=pss[min(pss)], pss_most=pss[most], grew=grew, index_mb=rows[0]['index_mb'], "
              "started={f\"{r['start_method']} {r['index']}\": r['uss_before_mb_per_worker'] for r in rows + others}, "
              "other_methods=list(other_start_methods), "
              "float32_over_uint8=size[torch.float32] / size[torch.uint8])",
        reversed=(dict(pss_most=0.0), dict(grew={"python-list": 4.0, "numpy": 3.9, "helpers": 3.6}),
                  dict(index_mb=100.0), dict(started={"fork python-list": 5.2, "fork numpy": 5.3, "fork helpers": 5.2,
                                                      "forkserver python-list": 5.0, "forkserver helpers": 5.0}),
                  dict(float32_over_uint8=1.0)))
def _worker_memory(f: dict) -> None:
    assert f["pss_most"] > f["pss_none"], "each worker adds memory: PSS grows with num_workers"
    g = f["grew"]
    assert g["python-list"] > 3 * max(g["numpy"], g["helpers"]), "under fork the list is copied, the arrays are not"
    assert g["python-list"] > 0.5 * f["index_mb"], "each worker's copy is about as large as the list"
    for method in f["other_methods"]:
        for kind in ("python-list", "helpers"):
            assert f["started"][f"{method} {kind}"] > f["started"][f"fork {kind}"], f"{method} workers start larger"
    assert f["float32_over_uint8"] == 4, "a float32 batch in flight is four times the uint8 one"

# --- end lessons 08 ---

# --- lessons 10 ---

@lesson("10_see_the_workers",
        probe="dict(workers=workers, batches=batches, dealt=dealt, "
              "burst={str(f): n for f, n in burst.items()}, "
              "same_pids={str(p): len({frozenset(r['pid'] for r in rows if r['epoch'] == e) for e in (0, 1)}) == 1 "
              "for p, rows in passes.items()}, "
              "process_pids=len({r['pid'] for r in mine}), thread_pids=len({r['pid'] for r in threaded}))",
        reversed=(dict(dealt={"worker 0": [0, 1, 2, 3], "worker 1": [4, 5, 6, 7]}), dict(burst={"2": 3, "4": 8}),
                  dict(same_pids={"False": True, "True": True}), dict(same_pids={"False": False, "True": False}),
                  dict(thread_pids=3), dict(process_pids=1)))
def _see_the_workers(f: dict) -> None:
    n = f["workers"]
    assert f["dealt"] == {f"worker {k}": list(range(k, f["batches"], n)) for k in range(n)}, \
        "batch k is made by worker k mod num_workers"
    assert all(sent == int(factor) * n for factor, sent in f["burst"].items()), \
        "a pass starts by sending prefetch_factor x num_workers batches"
    assert f["same_pids"] == {"False": False, "True": True}, "only persistent workers serve both passes"
    assert f["process_pids"] == n and f["thread_pids"] == 1, "worker processes are N processes; threads live in one"

# --- end lessons 10 ---


# --- lessons 11 ---

@lesson("11_specialised_loaders",
        probe="dict(same_batch=torch.equal(images, t_images) and torch.equal(labels, t_labels), "
              "batch_shape=list(images.shape), batch_size=batch_size, "
              "live_loaders=sorted({r['loader'] for r in live.rows}), "
              "live_dataloader_workers=[r['num_workers'] for r in live.rows if r['loader'] == 'dataloader'], "
              "workers=list(workers), installed=[n for n in LOADERS if n == 'dataloader' or not missing(n)])",
        reversed=(dict(same_batch=False), dict(batch_shape=[0]),
                  dict(live_dataloader_workers=[1]), dict(live_loaders=["dataloader", "made-up"])))
def _specialised_loaders(f: dict) -> None:
    assert f["same_batch"] and f["batch_shape"][0] == f["batch_size"], \
        "a DataLoader and torchdata's thread nodes over the same dataset give the same first batch"
    assert f["live_dataloader_workers"] == f["workers"], "the live run timed the DataLoader at every setting"
    assert f["live_loaders"] == sorted(f["installed"]), "the live run timed every installed loader and nothing else"

# --- end lessons 11 ---

# --- lessons 12 ---
@lesson("12_far_away_storage",
        probe="dict(samples=len(index.samples), wrapped=wrapped, fixed=fixed, cores=cores, far_ms=max(latencies_ms), "
              "need_far=need[max(latencies_ms)])",
        reversed=(dict(wrapped=200), dict(fixed=400), dict(need_far=2.0)))
def _far_away(f: dict) -> None:
    assert f["wrapped"] == 2 * f["samples"], "2 shards, 4 workers, the wrap-around shortcut: every sample twice"
    assert f["fixed"] == f["samples"], "split by shard and by sample: every sample once"
    assert f["far_ms"] > 0 and f["need_far"] > f["cores"], "Little's law asks for more workers than cores"
# --- end lessons 12 ---

# --- lessons 13 ---
@lesson("13_your_own_loader",
        probe="dict(asked=list(workers), rows=[r['num_workers'] for r in read_csv(folder / 'profile.csv')], "
              "waits=[r['data_wait_fraction'] for r in read_csv(folder / 'profile.csv')], profile_status=run.returncode, "
              "recommended='Recommended: num_workers=' in run.stdout, "
              "list_named='dataset.entries: a list of 300,000 entries' in copies['make_list_loader'].stdout, "
              "table_named='Copy-on-read culprits' in copies['make_table_loader'].stdout, "
              "table_walked='No attribute of the dataset holds many Python objects' in "
              "copies['make_table_loader'].stdout, stall_status=stalled.returncode, "
              "stuck_in=next(line.split(' in ')[-1] for line in stalled.stdout.splitlines() if 'my_loader.py' in line), "
              "auto_status=tuned.returncode, epochs=epochs, explained='  model: ' in run.stdout, "
              "decisions=sum('[workers' in line for line in tuned.stdout.splitlines()))",
        reversed=(dict(rows=[0]), dict(waits=[None, 0.3, 0.1]), dict(recommended=False), dict(explained=False), dict(list_named=False), dict(table_named=True),
                  dict(stall_status=0), dict(stuck_in="wait"), dict(decisions=0)))
def _your_own_loader(f: dict) -> None:
    assert f["profile_status"] == 0 and f["rows"] == f["asked"], "profile gives one row per num_workers asked for"
    assert all(w is not None and 0 <= w < 1 for w in f["waits"]), "with --step, the data wait is measured at every setting"
    assert f["recommended"] and f["explained"], "profile recommends num_workers by the one pick, the model explaining it"
    assert f["list_named"], "the walk in a worker names the list of (path, label) tuples"
    assert f["table_walked"] and not f["table_named"], "the same index in a SampleTable is walked and names nothing"
    assert f["stall_status"] == 2, "a stall ends with exit status 2"
    assert f["stuck_in"] == "read_from_a_drive_that_stopped_answering", "the stack names the user's function"
    assert f["auto_status"] == 0 and f["decisions"] == f["epochs"], "--num-workers auto decides after every epoch"
# --- end lessons 13 ---


# ---------------------------------------------------------------------------------------------------------------

STEMS = sorted(LESSONS)


@pytest.mark.parametrize("stem", STEMS)
def test_the_lesson_holds_in_the_executed_notebook(stem):
    LESSONS[stem].check(found(stem).facts)


@pytest.mark.parametrize("stem", STEMS)
def test_the_lesson_check_rejects_the_reversed_result(stem):
    facts = found(stem).facts
    for override in LESSONS[stem].reversed:
        assert set(override) <= set(facts), f"{stem}: reversed names a fact the probe does not give"
        with pytest.raises(AssertionError):
            LESSONS[stem].check({**facts, **override})


@pytest.mark.parametrize("stem", STEMS)
def test_every_figure_shown_is_titled_and_labelled(stem):
    for number, figure in enumerate(found(stem).figures, 1):
        plots = [ax for ax in figure["axes"] if not ax["colorbar"]]
        assert figure["suptitle"] or all(ax["title"] for ax in plots), f"{stem}: figure {number} has no title"
        for ax in plots:
            if ax["axis_on"] and not ax["images"]:
                assert ax["xlabel"] and ax["ylabel"], f"{stem}: figure {number}, '{ax['title']}': label both axes"


def test_every_notebook_has_a_lesson():
    from helpers.app.notebooks import notebook_paths

    missing = [p.stem for p in notebook_paths() if p.stem not in LESSONS]
    assert not missing, f"notebooks without a lesson in tests/test_lessons.py: {missing}"
