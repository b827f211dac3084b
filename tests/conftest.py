import os
from pathlib import Path

import pytest

DATA = Path(os.environ.get("DMASK_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def data_video(name: str) -> Path:
    """A video of the shared test data; skips the test when the data folder is absent."""
    path = DATA / "videos" / name
    if not path.exists():
        pytest.skip(f"test data not found: {path} (set DMASK_DATA to the folder holding videos/ and gallery/)")
    return path


@pytest.fixture(scope="session")
def masked(tmp_path_factory):
    """Mask a shared video once per test session: masked(name) -> (input path, output path)."""
    from dmask import mask_video

    out_dir = tmp_path_factory.mktemp("masked")
    done: dict[str, tuple[Path, Path]] = {}

    def get(name: str):
        if name not in done:
            src = data_video(name)
            dst = out_dir / name
            mask_video(src, dst, params_path=out_dir / (name + ".npz"))
            done[name] = (src, dst)
        return done[name]

    return get


@pytest.fixture(scope="session")
def tracked():
    """Landmark tracks of a video, computed once per session: tracked(path) -> list[Track]."""
    from dmask import track_video

    done = {}

    def get(path):
        if path not in done:
            done[path] = track_video(path)[2]
        return done[path]

    return get
