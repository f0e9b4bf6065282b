"""The learned part of the reply reader: a linear model over `features.answer_features`,
stored as one small gzipped JSON artefact, read with a few lines of numpy.

Rules kept here:
- the artefact is plain data: per language the feature names, one weight row per feature
  (integers in units of 1/`SCALE`), a bias, and the temperature that calibrates its
  confidence; plus the abstention policy chosen when it was trained. Nothing is pickled,
  nothing is downloaded; scikit-learn is needed only to train;
- `artefact_bytes` writes it byte for byte the same for the same content (sorted keys, no
  gzip timestamp), so the same corpus gives the same sha256;
- the model's version is the first 12 hex digits of that sha256: every answer the reader
  labels records it;
- the artefact in the data directory's `models/` folder (written by `huifang speech train`)
  overrides the one shipped in the package.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from huifang.domain.enums import Satisfaction

__all__ = [
    "ARTEFACT_NAME",
    "LABELS",
    "SCALE",
    "LanguageModel",
    "ModelError",
    "Policy",
    "ReplyModel",
    "artefact_bytes",
    "load_model",
    "load_model_bytes",
    "packaged_model_path",
    "deployed_model_path",
]

#: the label order of every weight row
LABELS = (
    Satisfaction.satisfied,
    Satisfaction.basically_satisfied,
    Satisfaction.unsatisfied,
    Satisfaction.opt_out,
    Satisfaction.unclear,
)
SCALE = 10_000
ARTEFACT_NAME = "reply-reader.json.gz"
FORMAT = 1


class ModelError(ValueError):
    """An artefact that is not a reply-reader model of this format."""


@dataclass(frozen=True, slots=True)
class Policy:
    """When the reader says "not sure" instead of a label (chosen at training time).

    - below `confidence` (calibrated probability of its best label) it abstains;
    - a reading other than unsatisfied abstains when the chance of a complaint is at least
      `complaint_risk`: a complaint misread is lost, so this threshold sits low;
    - a reply with markers of saying the opposite of its words (quotes, laughter, an eye-roll,
      a question, three clauses or more) needs `marked_confidence` for any reading but
      unsatisfied;
    - an unsatisfied reading needs only `complaint_confidence`: it reaches a person either way
      (an escalation or a review), so its threshold guards the accuracy of escalations, not
      lost complaints.
    """

    confidence: float = 0.9
    complaint_risk: float = 0.05
    marked_confidence: float = 0.95
    complaint_confidence: float = 0.9

    def as_dict(self) -> dict[str, float]:
        return {
            "confidence": self.confidence,
            "complaint_risk": self.complaint_risk,
            "marked_confidence": self.marked_confidence,
            "complaint_confidence": self.complaint_confidence,
        }


@dataclass(frozen=True, slots=True)
class LanguageModel:
    index: dict[str, int]
    weights: np.ndarray
    bias: np.ndarray
    temperature: float

    def probabilities(self, names: tuple[str, ...]) -> list[float]:
        """Calibrated probabilities of `LABELS` for an answer's distinct feature names.

        The weights of the names it knows are summed and scaled by the square root of the
        number of names, as in training (binary, L2-normalised rows).
        """
        index = self.index
        rows = [index[name] for name in names if name in index]
        logits = self.bias
        if rows:
            logits = logits + self.weights.take(rows, axis=0).sum(axis=0) / math.sqrt(len(names))
        scaled = (logits / self.temperature).tolist()
        top = max(scaled)
        exp = [math.exp(value - top) for value in scaled]
        total = sum(exp)
        return [value / total for value in exp]


@dataclass(frozen=True, slots=True)
class ReplyModel:
    languages: dict[str, LanguageModel]
    policy: Policy
    version: str
    #: where it came from: rows per split, the corpus sha256, whether reviewed rows were in
    trained_on: dict[str, Any]

    def for_language(self, language: str) -> LanguageModel:
        model = self.languages.get(language)
        if model is None:
            raise ModelError(f"the reply model has no {language} part; retrain it")
        return model


def artefact_bytes(artefact: dict[str, Any]) -> bytes:
    """The artefact as stored: sorted JSON, gzipped without a timestamp (reproducible)."""
    text = json.dumps(artefact, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)


def version_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def packaged_model_path() -> Path:
    return Path(str(resources.files("huifang.speech").joinpath(ARTEFACT_NAME)))


def deployed_model_path(models_dir: Path) -> Path:
    """Where `huifang speech train` puts a model that replaces the packaged one."""
    return models_dir / "reader" / ARTEFACT_NAME


def load_model(path: Path) -> ReplyModel:
    """The model stored at `path` (read once per file content: a process shares it)."""
    stat = path.stat()
    return _load(path, stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=4)
def _load(path: Path, _size: int, _mtime: int) -> ReplyModel:
    try:
        return load_model_bytes(path.read_bytes())
    except ModelError as exc:
        raise ModelError(f"{path}: {exc}") from None


def load_model_bytes(data: bytes) -> ReplyModel:
    try:
        artefact = json.loads(gzip.decompress(data))
    except (OSError, ValueError) as exc:
        raise ModelError(f"not a gzipped JSON reply model ({exc})") from None
    if artefact.get("format") != FORMAT or artefact.get("labels") != [str(x) for x in LABELS]:
        raise ModelError("a reply model of another format; retrain it")
    languages = {
        name: LanguageModel(
            index={feature: row for row, feature in enumerate(part["features"])},
            weights=np.asarray(part["weights"], dtype=np.float64).reshape(-1, len(LABELS)) / SCALE,
            bias=np.asarray(part["bias"], dtype=np.float64) / SCALE,
            temperature=float(part["temperature"]),
        )
        for name, part in artefact["languages"].items()
    }
    return ReplyModel(
        languages, Policy(**artefact["policy"]), version_of(data), artefact.get("trained_on", {})
    )
