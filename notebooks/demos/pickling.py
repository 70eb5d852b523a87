"""What a DataLoader can send to spawn (and forkserver) workers: every callable travels by pickle, and pickle sends a
function as a reference, its module and its name. A lambda's name is `<lambda>` and a nested function's is
`outer.<locals>.inner`: no worker can look either up, even when they are written in a file like this one."""
import functools

from torch.utils.data import DataLoader, Dataset


class Numbers(Dataset):
    """0 to 7, each passed through TRANSFORM when one is given."""

    def __init__(self, transform=None):
        self.transform = transform

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return self.transform(i) if self.transform else i


to_list = lambda batch: list(batch)  # noqa: E731  at the top of the file, and still a lambda


def as_list(batch):
    return list(batch)


def add(offset, x):
    return x + offset


def seed_nothing(worker_id):
    pass


def make_init():
    def init(worker_id):  # defined inside another function: pickle cannot name it
        pass
    return init


def attempt(what, dataset=None, **loader_args):
    loader = DataLoader(dataset or Numbers(), batch_size=4, num_workers=1, multiprocessing_context="spawn",
                        timeout=60, **loader_args)
    try:
        print(f"{what}: ok, first batch {next(iter(loader))}")
    except Exception as exc:  # the failure is the lesson: print it in one line
        print(f"{what}: {type(exc).__name__}: {str(exc).splitlines()[0]}")


if __name__ == "__main__":
    attempt("lambda collate_fn, at the top of the file", collate_fn=to_list)
    attempt("nested worker_init_fn", worker_init_fn=make_init())
    attempt("lambda transform", Numbers(transform=lambda x: x + 1))
    attempt("top-level functions", Numbers(transform=functools.partial(add, 1)),
            collate_fn=as_list, worker_init_fn=seed_nothing)
