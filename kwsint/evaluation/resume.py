"""kwsint-eval's finished model-stream scores, kept as each finishes, so that an interrupted evaluation resumes
from them (``--resume``)."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
from pathlib import Path

import numpy as np

from ..io import urls
from ..io.atomic import write_atomic


class ScoreStore:
    """A folder of one ``.npz`` per finished (model, hop, stream): its step frames and posteriors.

    A score is found again only for the same model bytes, hop and features file (its path, size and
    modification time; for a URL, what its server says of it: ``urls.version``), so a changed model or file is
    scored anew.
    """

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder

    @staticmethod
    def key(model_sha256: str, hop: int, features: Path | str) -> str:
        """The name of a score: what it depends on, hashed."""
        if urls.is_url(features):
            file = f"{features}:{urls.version(features)}"
        else:
            try:
                st = os.stat(features)
                file = f"{os.path.abspath(features)}:{st.st_size}:{st.st_mtime_ns}"
            except OSError:  # read by the workers only: its path is all there is
                file = str(features)
        return hashlib.sha256(f"{model_sha256}:{hop}:{file}".encode()).hexdigest()[:32]

    def get(self, key: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(step_frames, posterior_q16) of a finished score, or None."""
        try:
            with np.load(self.folder / f"{key}.npz", allow_pickle=False) as z:
                return z["step_frames"], z["posterior_q16"]
        except (OSError, ValueError, KeyError):  # not there, or not whole: scored again
            return None

    def put(self, key: str, step_frames: np.ndarray, posterior_q16: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, step_frames=step_frames, posterior_q16=posterior_q16)
        write_atomic(self.folder / f"{key}.npz", buffer.getvalue())

    def remove(self) -> None:
        """The evaluation is whole: nothing to resume."""
        shutil.rmtree(self.folder, ignore_errors=True)
