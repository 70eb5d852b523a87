import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "scripts"))  # what only a measuring script runs lives in it, and is tested from here

from helpers.loading.data import SkippedFiles  # noqa: E402
from helpers.loading.samples import make_sample_data  # noqa: E402


@pytest.fixture(autouse=True)
def fresh_warnings():
    """Each test sees a bad file warned about afresh, whatever the tests before it met."""
    SkippedFiles.forget_warnings()
    yield
    SkippedFiles.forget_warnings()


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    """A small generated ImageFolder shared by the whole session: 12 cats, 12 dogs."""
    root = tmp_path_factory.mktemp("sample")
    make_sample_data(root, per_class=12, seed=0, progress=False)
    return root
