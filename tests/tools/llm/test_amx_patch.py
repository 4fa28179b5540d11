"""The AMX tile-config patch: it applies to the sdist the Makefile builds, and with it GCC keeps the stores
to the tile config's `colsb`/`rows` before `ldtilecfg` (without it GCC 12 drops them: the fault the patch fixes).
Compiles the vendored function alone for Sapphire Rapids, which any x86-64 GCC can target."""

from __future__ import annotations

import re
import shutil
import subprocess
import tarfile
from importlib.metadata import version
from pathlib import Path

import pytest

from polymodal.config import PathsConfig

PATCH = Path(__file__).resolve().parents[3] / "tools" / "llm" / "patches" / "ggml-amx-tile-config.patch"
MMQ = "vendor/llama.cpp/ggml/src/ggml-cpu/amx/mmq.cpp"


def _sdist() -> Path:
    pytest.importorskip("llama_cpp")  # the models extra: make installs it, and keeps its sdist beside the wheel
    path = PathsConfig().cache() / "sdist" / f"llama_cpp_python-{version('llama-cpp-python')}.tar.gz"
    assert path.is_file(), f"{path} missing: make setup downloads it"
    return path


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, str]:
    """mmq.cpp as shipped and as patched (by `patch -p1`, as the Makefile applies it)."""
    root = tmp_path_factory.mktemp("sdist")
    sdist = _sdist()
    with tarfile.open(sdist) as tar:
        top = sdist.name.removesuffix(".tar.gz")
        member = tar.extractfile(f"{top}/{MMQ}")
        assert member is not None
        original = member.read().decode()
    (root / MMQ).parent.mkdir(parents=True)
    (root / MMQ).write_text(original)
    done = subprocess.run(["patch", "-p1", "-d", str(root), "-i", str(PATCH)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return {"original": original, "patched": (root / MMQ).read_text()}


def _tile_config_stores(source: str, tmp_path: Path) -> set[int]:
    """Offsets (from the config's start) that the compiled `ggml_tile_config_init` stores to before ldtilecfg."""
    start = source.index("struct tile_config_t{")
    body = source.index("inline void ggml_tile_config_init(void) {")
    end = source.index("\n}\n", body) + 3
    unit = tmp_path / "tile_config.cpp"
    unit.write_text(
        "#include <immintrin.h>\n#include <cstdint>\n"
        + source[start:end]
        + '\nextern "C" void polymodal_probe(void) { ggml_tile_config_init(); }\n'
    )
    cmd = ["g++", "-std=c++17", "-O3", "-march=sapphirerapids", "-S", "-o", "-", str(unit)]
    asm = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    func = asm[asm.index("polymodal_probe:") :]
    func = func[: func.index("ldtilecfg")] + func[func.index("ldtilecfg") :].split("\n", 1)[0]
    base_off, base_reg = re.search(r"ldtilecfg\s+(-?\d*)\((%\w+)\)", func).groups()
    stores = re.findall(r"\tv?mov\w*\s+[^,]+,\s*(-?\d*)\(" + re.escape(base_reg) + r"\)", func)
    return {int(off or 0) - int(base_off or 0) for off in stores}


@pytest.mark.slow
def test_the_patch_keeps_the_tile_config_stores(sources, tmp_path):
    if shutil.which("g++") is None:
        pytest.fail("g++ missing: it builds llama-cpp-python too")
    colsb, rows = range(16, 48), range(48, 64)
    patched = _tile_config_stores(sources["patched"], tmp_path)
    assert any(o in colsb for o in patched) and any(o in rows for o in patched), patched
    gcc = subprocess.run(["g++", "-dumpversion"], capture_output=True, text=True).stdout.strip()
    if gcc.split(".")[0] == "12":  # the compiler of the fault: the shipped code loses both
        original = _tile_config_stores(sources["original"], tmp_path)
        assert not any(o in colsb or o in rows for o in original), original
