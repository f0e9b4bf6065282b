import hashlib
import io
import re
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from huifang.speech.models import (
    KNOWN_MODELS,
    InvalidModel,
    KnownModel,
    ModelMissing,
    ModelRegistry,
    detect_language,
    language_of_words,
    model_sample_rate,
    vocabulary,
)

HAN = ["满意", "不", "非常", "民警", "态度", "很好", "一般"]
LATIN = ["satisfied", "not", "very", "police", "good", "late", "rude"]


def zipped(model_dir: Path, *, extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for file in sorted(model_dir.rglob("*")):
            if file.is_file():
                bundle.write(file, f"{model_dir.name}/{file.relative_to(model_dir)}")
        for name, content in (extra or {}).items():
            bundle.writestr(name, content)
    return buffer.getvalue()


def registry_serving(
    models_dir: Path, archive: bytes, *, language: str = "zh-CN", pin: str | None = "match"
) -> ModelRegistry:
    sha = hashlib.sha256(archive).hexdigest() if pin == "match" else pin
    known = KnownModel("test-model-cn", language, "https://example.invalid/m.zip", sha, 1, "test")

    def download(url: str, destination: Path) -> None:
        assert url == known.url
        destination.write_bytes(archive)

    return ModelRegistry(models_dir, catalogue={known.name: known}, download=download)


def test_missing_model_message_says_exactly_how_to_install_one(tmp_path: Path) -> None:
    with pytest.raises(ModelMissing, match="huifang models fetch vosk-model-small-cn-0.22"):
        ModelRegistry(tmp_path).path_for("zh-CN")


def test_missing_english_model_suggests_the_small_english_model(tmp_path: Path) -> None:
    with pytest.raises(ModelMissing, match="huifang models fetch vosk-model-small-en-us-0.15"):
        ModelRegistry(tmp_path).path_for("en-US")


def test_added_model_serves_its_language(
    tmp_path: Path, make_fake_model: Callable[..., Path]
) -> None:
    source = make_fake_model("cn-model", HAN)
    registry = ModelRegistry(tmp_path / "models")
    registry.add(source)
    assert registry.path_for("zh-CN") == source.resolve()
    assert [(m.name, m.language) for m in registry.installed()] == [("cn-model", "zh-CN")]


def test_added_model_can_be_copied_into_the_models_directory(
    tmp_path: Path, make_fake_model: Callable[..., Path]
) -> None:
    registry = ModelRegistry(tmp_path / "models")
    registry.add(make_fake_model("cn-model", HAN), "zh-CN", copy=True)
    assert registry.path_for("zh-CN") == tmp_path / "models" / "cn-model"


def test_model_for_another_language_is_refused(
    tmp_path: Path, make_fake_model: Callable[..., Path]
) -> None:
    registry = ModelRegistry(tmp_path / "models")
    with pytest.raises(InvalidModel, match="is a zh-CN model .* not en-US"):
        registry.add(make_fake_model("cn-model", HAN), "en-US")
    assert registry.installed() == []


def test_model_without_acoustic_model_is_refused(
    tmp_path: Path, make_fake_model: Callable[..., Path]
) -> None:
    source = make_fake_model("broken", HAN)
    (source / "am" / "final.mdl").unlink()
    with pytest.raises(InvalidModel, match="final.mdl"):
        ModelRegistry(tmp_path / "models").add(source, "zh-CN")


def test_truncated_graph_is_refused(tmp_path: Path, make_fake_model: Callable[..., Path]) -> None:
    with pytest.raises(InvalidModel, match="not an OpenFst file"):
        ModelRegistry(tmp_path / "models").add(make_fake_model("bad", HAN, graph=b""), "zh-CN")


def test_fetch_installs_an_archive_matching_its_pin(
    tmp_path: Path, make_fake_model: Callable[..., Path]
) -> None:
    registry = registry_serving(tmp_path / "models", zipped(make_fake_model("test-model-cn", HAN)))
    installed = registry.fetch("test-model-cn")
    assert installed.path == tmp_path / "models" / "test-model-cn"
    assert registry.path_for("zh-CN") == installed.path
    assert vocabulary(installed.path) >= set(HAN)


def test_fetch_refuses_a_corrupt_download_and_installs_nothing(
    tmp_path: Path, make_fake_model: Callable[..., Path]
) -> None:
    registry = registry_serving(
        tmp_path / "models", zipped(make_fake_model("test-model-cn", HAN)), pin="0" * 64
    )
    with pytest.raises(InvalidModel, match="corrupt or not the pinned archive"):
        registry.fetch("test-model-cn")
    assert registry.installed() == []
    assert not (tmp_path / "models" / "test-model-cn").exists()


def test_fetch_refuses_an_archive_of_the_wrong_language(
    tmp_path: Path, make_fake_model: Callable[..., Path]
) -> None:
    registry = registry_serving(
        tmp_path / "models", zipped(make_fake_model("test-model-cn", LATIN))
    )
    with pytest.raises(InvalidModel, match="holds a en-US model, not zh-CN"):
        registry.fetch("test-model-cn")
    assert registry.installed() == []


def test_fetch_refuses_an_archive_escaping_its_directory(
    tmp_path: Path, make_fake_model: Callable[..., Path]
) -> None:
    archive = zipped(make_fake_model("test-model-cn", HAN), extra={"../evil.txt": b"x"})
    with pytest.raises(InvalidModel, match="unsafe entry"):
        registry_serving(tmp_path / "models", archive).fetch("test-model-cn")
    assert not (tmp_path / "evil.txt").exists()


def test_fetch_of_an_unpinned_model_needs_a_checksum_from_the_operator(tmp_path: Path) -> None:
    with pytest.raises(InvalidModel, match="--sha256"):
        ModelRegistry(tmp_path).fetch("vosk-model-small-cn-0.22")


def test_fetch_uses_the_operators_checksum_for_an_unpinned_model(
    tmp_path: Path, make_fake_model: Callable[..., Path]
) -> None:
    archive = zipped(make_fake_model("test-model-cn", HAN))
    registry = registry_serving(tmp_path / "models", archive, pin=None)
    installed = registry.fetch("test-model-cn", sha256=hashlib.sha256(archive).hexdigest())
    assert installed.sha256 == hashlib.sha256(archive).hexdigest()


def test_fetch_of_an_unknown_name_lists_the_known_models(tmp_path: Path) -> None:
    with pytest.raises(ModelMissing, match="vosk-model-small-en-us-0.15"):
        ModelRegistry(tmp_path).fetch("vosk-model-xx")


def test_catalogue_names_the_official_models_with_valid_or_absent_pins() -> None:
    assert {
        "vosk-model-small-cn-0.22",
        "vosk-model-cn-0.22",
        "vosk-model-small-en-us-0.15",
        "vosk-model-en-us-0.22-lgraph",
    } <= set(KNOWN_MODELS)
    for model in KNOWN_MODELS.values():
        assert model.url == f"https://alphacephei.com/vosk/models/{model.name}.zip"
        assert model.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", model.sha256)
        assert model.pin_source


@pytest.mark.parametrize(
    ("words", "language"),
    [
        (HAN, "zh-CN"),
        (LATIN, "en-US"),
        (["만족", "경찰", "네"], "ko"),
        (["très", "été", "déçu", "police"] * 3, None),
        ([], None),
    ],
)
def test_language_is_told_by_the_vocabulary_script(words: list[str], language: str | None) -> None:
    assert language_of_words(["<eps>", "!SIL", "#0", *words]) == language


def fst_with_symbols(symbols: list[str]) -> bytes:
    def string(value: str) -> bytes:
        raw = value.encode()
        return struct.pack("<i", len(raw)) + raw

    header = struct.pack("<i", 2125659606) + string("ngram") + string("standard")
    header += struct.pack("<ii", 4, 3) + bytes(32)
    table = (
        struct.pack("<i", 2125658996) + string("words.txt") + struct.pack("<qq", 9, len(symbols))
    )
    for key, symbol in enumerate(symbols):
        table += string(symbol) + struct.pack("<q", key)
    return header + table


def test_vocabulary_is_read_from_the_graph_when_there_is_no_words_file(
    make_fake_model: Callable[..., Path],
) -> None:
    source = make_fake_model("lookahead", [])
    (source / "graph" / "words.txt").unlink()
    (source / "graph" / "HCLG.fst").unlink()
    (source / "graph" / "HCLr.fst").write_bytes(struct.pack("<i", 2125659606))
    (source / "graph" / "Gr.fst").write_bytes(fst_with_symbols(["<eps>", "满意", "不"]))
    assert vocabulary(source) == {"<eps>", "满意", "不"}
    assert detect_language(source) == "zh-CN"


def test_sample_rate_comes_from_the_feature_config(make_fake_model: Callable[..., Path]) -> None:
    source = make_fake_model("narrowband", HAN)
    (source / "conf" / "mfcc.conf").write_text("--sample-frequency=8000\n--use-energy=false\n")
    assert model_sample_rate(source) == 8000


@pytest.mark.speech
def test_the_korean_test_model_is_recognised_as_korean(korean_model_path: Path) -> None:
    assert detect_language(korean_model_path) == "ko"
    assert model_sample_rate(korean_model_path) == 16000


def test_a_failed_download_is_reported_and_installs_nothing(tmp_path: Path) -> None:
    unreachable = KnownModel("m", "zh-CN", "http://127.0.0.1:9/m.zip", "0" * 64, 1, "test")
    registry = ModelRegistry(tmp_path, catalogue={"m": unreachable})
    with pytest.raises(InvalidModel, match="download of .* failed"):
        registry.fetch("m")
    assert registry.installed() == []
