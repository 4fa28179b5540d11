"""Raw llama.cpp speed rows for the LLM benches: TTFT, prefill and decode tok/s of one ~480-token prompt,
each row in a fresh child process (a llama.cpp build, a model file or a setting per row); the memory bandwidth
measured in the same run, and decode as a share of the memory limit (bandwidth / model bytes).

Where the CPU has AMX, the rows cover the installed build (AMX on) and the non-AMX wheel the Makefile builds
beside it; elsewhere one line says why there is no AMX row.

    .venv/bin/python -m bench.llm_speed                     # builds, then --sweep for settings and model files
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

PROMPT_TOKENS = 480  # the default 4-passage question's new prompt tokens (bench rag_latency)
DECODE_TOKENS = 64


def memory_bandwidth_gbs(mib: int = 256, readers: int = 2, repeats: int = 3) -> float:
    """Read bandwidth, GB/s: `readers` numpy threads each scanning its own array (max() releases the GIL)."""
    import numpy as np

    arrays = [np.ones(mib * 2**18, dtype=np.float32) for _ in range(readers)]
    best = float("inf")
    for _ in range(repeats):
        threads = [threading.Thread(target=a.max) for a in arrays]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        best = min(best, time.perf_counter() - t0)
    return readers * mib * 2**20 / best / 1e9


def decode_line(decode_tok_s: float, model_bytes: int, gbs: float) -> str:
    limit = gbs * 1e9 / model_bytes
    return (
        f"decode {decode_tok_s:.1f} tok/s = {decode_tok_s / limit:.0%} of the memory limit "
        f"({gbs:.1f} GB/s / {model_bytes / 1e9:.2f} GB = {limit:.1f} tok/s): compute-bound"
        if decode_tok_s < 0.7 * limit
        else f"decode {decode_tok_s:.1f} tok/s = {decode_tok_s / limit:.0%} of the memory limit ({limit:.1f} tok/s)"
    )


def _site_of(wheelhouse: Path) -> Path | None:
    """The wheel in `wheelhouse`, unpacked once beside it (a child imports it through PYTHONPATH)."""
    wheels = sorted(wheelhouse.glob("llama_cpp_python-*.whl"))
    if not wheels:
        return None
    site = wheelhouse / "site"
    if not (site / "llama_cpp").is_dir():
        tmp = wheelhouse / f"site.{os.getpid()}.tmp"
        with zipfile.ZipFile(wheels[0]) as zf:
            zf.extractall(tmp)
        for lib in (tmp / "llama_cpp" / "lib").glob("*.so*"):
            lib.chmod(0o755)
        tmp.rename(site)
    return site


def builds() -> tuple[list[tuple[str, Path | None]], str]:
    """(label, PYTHONPATH or None for the installed build) per build to compare, and a note on AMX."""
    from importlib.metadata import version

    from polymodal.config import PathsConfig
    from tools.llm.cpu_check import amx_verdict, host_has_amx

    if not host_has_amx():
        return [("installed build", None)], "AMX rows: none (no AMX on this CPU: /proc/cpuinfo has no amx_tile)"
    from polymodal.models import offline_llm_path

    verdict = amx_verdict(offline_llm_path())
    out: list[tuple[str, Path | None]] = [(f"installed build (AMX {verdict.status})", None)]
    wheels = PathsConfig().cache() / "wheels"
    for info in sorted(wheels.glob(f"llama-cpp-python-{version('llama-cpp-python')}-*/build.json")):
        if json.loads(info.read_text()).get("amx") == "off" and (site := _site_of(info.parent)):
            out.append(("non-AMX build (baseline)", site))
            return out, f"AMX: {verdict.detail}"
    return out, f"AMX: {verdict.detail}; no non-AMX wheel in {wheels} (make setup builds it on AMX hosts)"


def run_row(model: str, prompt: str, pythonpath: Path | None = None, **llama_kwargs) -> dict:
    """One speed row, measured in a child process (its own llama.cpp build when `pythonpath` is given)."""
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    job = {"model": model, "prompt": prompt, "kwargs": llama_kwargs}
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-m", "bench.llm_speed", "--child"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
    )
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1][:200]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _child() -> int:
    import llama_cpp
    import numpy as np

    job = json.loads(sys.stdin.read())
    kw = {"n_ctx": 2048, "n_threads": os.cpu_count(), "n_threads_batch": os.cpu_count(), **job["kwargs"]}
    llm = llama_cpp.Llama(model_path=job["model"], verbose=False, **kw)
    tokens = llm.tokenize(job["prompt"].encode())[:PROMPT_TOKENS]
    if len(tokens) < PROMPT_TOKENS:
        raise SystemExit(f"the prompt has {len(tokens)} tokens, fewer than {PROMPT_TOKENS}")
    llm.eval(tokens[:8])  # warm-up: first-touch of the weights is not prefill
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(tokens)
    logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))
    ttft = time.perf_counter() - t0
    t1 = time.perf_counter()
    for _ in range(DECODE_TOKENS):
        llm.eval([int(np.argmax(logits))])
        logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))
    decode_s = time.perf_counter() - t1
    print(
        json.dumps(
            {
                "ttft_s": ttft,
                "prefill_tok_s": len(tokens) / ttft,
                "decode_tok_s": DECODE_TOKENS / decode_s,
                "prompt_tokens": len(tokens),
                "system": llama_cpp.llama_print_system_info().decode(errors="replace"),
            }
        )
    )
    return 0


def print_row(label: str, row: dict) -> None:
    if "error" in row:
        print(f"  {label:<40} failed: {row['error']}", flush=True)
        return
    print(
        f"  {label:<40} TTFT {row['ttft_s']:.2f} s ({row['prompt_tokens']} prompt tokens), prefill "
        f"{row['prefill_tok_s']:.0f} tok/s, decode {row['decode_tok_s']:.1f} tok/s",
        flush=True,
    )


def build_rows(prompt: str, model: str | None = None) -> dict:
    """The AMX/non-AMX rows (or the line saying why there are none), the bandwidth and the decode ratio."""
    from polymodal.models import offline_llm_path

    model = model or str(offline_llm_path())
    found, note = builds()
    print(f"llama.cpp builds, raw prefill of {PROMPT_TOKENS} tokens then {DECODE_TOKENS} greedy tokens; {note}")
    rows = {}
    for label, site in found:
        rows[label] = run_row(model, prompt, site)
        print_row(label, rows[label])
    gbs = memory_bandwidth_gbs()
    first = next(iter(rows.values()))
    print(f"  memory bandwidth (2 numpy readers) {gbs:.1f} GB/s", flush=True)
    if "decode_tok_s" in first:
        print("  " + decode_line(first["decode_tok_s"], Path(model).stat().st_size, gbs), flush=True)
    return {"builds": rows, "note": note, "bandwidth_gbs": gbs}


SWEEP = [
    ("n_batch 512, n_ubatch 512 (default)", {}),
    ("n_batch 512, n_ubatch 128", {"n_ubatch": 128}),
    ("n_batch 1024, n_ubatch 1024", {"n_batch": 1024, "n_ubatch": 1024}),
    ("flash attention", {"flash_attn": True}),
    ("1 thread", {"n_threads": 1, "n_threads_batch": 1}),
]


def sweep(prompt: str, quants: list[str]) -> dict:
    """Settings on the default file, then each requantized file (its decode ratio to the memory limit too)."""
    from polymodal.models import offline_llm_path, requantized_llm_path

    base = str(offline_llm_path())
    out = {}
    print("settings (installed build, Q4_K_M):")
    for label, kw in SWEEP:
        out[label] = run_row(base, prompt, **kw)
        print_row(label, out[label])
    gbs = memory_bandwidth_gbs()
    print(f"model files (installed build; memory bandwidth {gbs:.1f} GB/s):")
    for quant in ["q4_k_m", *quants]:
        t0 = time.perf_counter()
        path = base if quant == "q4_k_m" else str(requantized_llm_path(quant))
        made = time.perf_counter() - t0
        row = out[quant] = run_row(path, prompt)
        print_row(
            f"{quant} ({Path(path).stat().st_size / 1e9:.2f} GB" + (f", made in {made:.0f} s)" if made > 1 else ")"),
            row,
        )
        if "decode_tok_s" in row:
            print("    " + decode_line(row["decode_tok_s"], Path(path).stat().st_size, gbs), flush=True)
    return out


def default_prompt(data: Path) -> str:
    from bench.datasets import load_seed_articles

    text = "\n".join(load_seed_articles(data).values())
    if len(text) < 2000:
        raise SystemExit(f"no seed articles under {data}: pass --data (the shared data folder)")
    return "请根据以下资料回答问题。\n" + text[:4000]


def main(argv: list[str] | None = None) -> int:
    from bench.datasets import default_data_dir

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--data", default=str(default_data_dir()))
    ap.add_argument("--sweep", action="store_true", help="also n_batch/n_ubatch, flash attention, threads, files")
    ap.add_argument("--quants", default="q4_0,iq4_nl", help="requantized files for --sweep (comma-separated)")
    args = ap.parse_args(argv)
    if args.child:
        return _child()
    prompt = default_prompt(Path(args.data))
    build_rows(prompt)
    if args.sweep:
        sweep(prompt, [q for q in args.quants.split(",") if q])
    return 0


if __name__ == "__main__":
    sys.exit(main())
