"""Whether llama.cpp's AMX matmul runs on this CPU: checked once per installed llama.cpp build, in a child.

ggml's AMX kernels faulted on some Sapphire Rapids-class VMs (tools/llm/patches/). A fault kills the
process, so the check runs one small AMX prefill in a child process and keeps the verdict in the polymodal
cache, keyed by the checksum of the installed ggml CPU library. Where it failed, `no_amx_params()` loads the
model without ggml's extra buffer types (AMX, and the repacked kernels with it).
"""

from __future__ import annotations

import contextlib
import hashlib
import platform
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

__all__ = ["AmxVerdict", "amx_verdict", "host_has_amx", "no_amx_params", "run_probe"]

PROBE_TIMEOUT_S = 300.0
_NO_AMX_BUILD = 3  # the probe's exit code when the installed build was compiled without AMX
_PROBE_TOKENS = 64  # > 32 rows: ggml's AMX path tiles a batch (one row goes through AVX-512 VNNI instead)
_params_lock = threading.Lock()


@dataclass(frozen=True)
class AmxVerdict:
    status: str  # absent (no AMX here) | off (this build has none) | ok | failed
    detail: str

    @property
    def use_amx(self) -> bool:
        """False only where the check failed: the model then loads without the AMX buffer type."""
        return self.status != "failed"


def host_has_amx(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """True on an x86-64 CPU whose kernel reports `amx_tile` (AMX present and permitted)."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return False
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return False
    return any(line.startswith("flags") and "amx_tile" in line.split() for line in text.splitlines())


def _cpu_library() -> Path | None:
    """The installed ggml CPU backend library (where the AMX kernels live), or None without llama_cpp."""
    import importlib.util

    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return None
    libs = sorted(Path(next(iter(spec.submodule_search_locations)), "lib").glob("libggml-cpu*.so*"))
    return libs[0].resolve() if libs else None


def _library_key(lib: Path) -> str:
    digest = hashlib.sha256()
    with open(lib, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def run_probe(cmd: list[str], timeout_s: float = PROBE_TIMEOUT_S) -> AmxVerdict:
    """Run `cmd` (the AMX probe) in a child; a crash, a signal or a timeout is a failed verdict, never ours."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return AmxVerdict("failed", f"the AMX check did not finish in {timeout_s:.0f} s")
    except OSError as exc:
        return AmxVerdict("failed", f"the AMX check could not start: {exc}")
    if done.returncode < 0:
        import signal

        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = f"signal {-done.returncode}"
        return AmxVerdict("failed", f"AMX matmul crashed ({name}): llama.cpp runs without AMX")
    if done.returncode == _NO_AMX_BUILD:
        return AmxVerdict("off", "this llama.cpp build has no AMX (built with LLAMA_AMX=off)")
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
        return AmxVerdict("failed", f"AMX check exited {done.returncode} ({last}): llama.cpp runs without AMX")
    return AmxVerdict("ok", "AMX matmul checked: on")


def amx_verdict(
    model_path: str | Path, cache_dir: str | Path | None = None, probe: list[str] | None = None
) -> AmxVerdict:
    """This host's verdict for the installed llama.cpp build, from the cache or a new child check.

    `probe` replaces the child's command (tests); the default loads `model_path` and prefills a few tokens.
    """
    if not host_has_amx():
        return AmxVerdict("absent", "no AMX on this CPU")
    lib = _cpu_library()
    if lib is None:
        return AmxVerdict("absent", "llama-cpp-python is not installed")
    if cache_dir is None:
        from polymodal.config import PathsConfig

        cache_dir = PathsConfig().cache()
    cached = Path(cache_dir) / "llm" / f"amx-check-{_library_key(lib)}.json"
    try:
        import json

        data = json.loads(cached.read_text())
        return AmxVerdict(str(data["status"]), str(data["detail"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    verdict = run_probe(probe or [sys.executable, "-m", "tools.llm.cpu_check", str(model_path)])
    from polymodal.fsutil import atomic_write_json

    cached.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(cached, {"status": verdict.status, "detail": verdict.detail, "library": str(lib)})
    return verdict


@contextlib.contextmanager
def no_amx_params() -> Iterator[None]:
    """While open, `llama_cpp.Llama(...)` loads its model with `use_extra_bufts = False` (no AMX buffer).

    llama-cpp-python's `Llama` does not take that model parameter, so its default-params call is wrapped.
    """
    import llama_cpp.llama_cpp as lib

    with _params_lock:
        original = lib.llama_model_default_params

        def defaults():  # noqa: ANN202 - the ctypes struct
            params = original()
            params.use_extra_bufts = False
            return params

        lib.llama_model_default_params = defaults
        try:
            yield
        finally:
            lib.llama_model_default_params = original


def _probe(model_path: str) -> int:
    """The child: prefill a batch through the model; the AMX buffer type takes its quantized weights."""
    import llama_cpp

    features = llama_cpp.llama_print_system_info().decode(errors="replace")
    if "AMX_INT8 = 1" not in features:
        return _NO_AMX_BUILD
    llm = llama_cpp.Llama(model_path=model_path, n_ctx=256, n_batch=_PROBE_TOKENS, n_threads=1, verbose=False)
    tokens = llm.tokenize(b" amx" * _PROBE_TOKENS)[:_PROBE_TOKENS]
    llm.eval(tokens)
    return 0


if __name__ == "__main__":
    sys.exit(_probe(sys.argv[1]))
