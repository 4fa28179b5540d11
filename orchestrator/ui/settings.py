"""Settings report: models per role, the active image encoder, what is missing, memory in use.

Plain functions (no gradio at import), so they are tested without a browser.
"""

from __future__ import annotations

import logging

from orchestrator.models import process_rss_mb
from orchestrator.ui.services import AppServices

log = logging.getLogger("polymodal.app")


# -- settings --------------------------------------------------------------------------------------------


def _rss_mb() -> float:
    rss = process_rss_mb()
    if rss:
        return rss
    import resource  # no /proc: the peak is the best there is

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def settings_report(services: AppServices) -> str:
    """Markdown: models per role, active encoder, tools and what is missing, memory in use."""
    from orchestrator.cli.doctor import diagnose

    cfg = services.config
    out = ["### Models", "| role | configured | present | detail |", "|---|---|---|---|"]
    checks = diagnose(cfg)
    for c in checks:
        if c.kind == "model":
            out.append(f"| {c.name} | {_md(c.detail.split(':')[0])} | {'✓' if c.ok else '✗'} | {_md(c.detail)} |")
    out += [
        "",
        f"LLM backend `{cfg.llm.backend}` · image encoder setting `{cfg.images.encoder}` · "
        f"knowledge base `{cfg.kb_path()}` · image library `{cfg.images_path()}`",
    ]
    agent = services.built_agent()
    if agent is not None:
        out += ["", "### Tools", ", ".join(f"`{n}`" for n in agent.tools) or "(none)"]
        for p in getattr(agent, "problems", []):
            out.append(f"- `{p.tool}` unavailable: {_md(p.reason)}")
    missing = [c for c in checks if not c.ok]
    out += ["", "### Doctor: what is missing"]
    out += [
        f"- **{c.name}** ({c.kind}): {_md(c.detail)}" + (f" — disables {_md(c.disables)}" if c.disables else "")
        for c in missing
    ] or ["Nothing: every model, extra and service is present."]
    out += ["", "### Memory", f"Process resident memory: {_rss_mb():.0f} MB", ""]
    models = getattr(agent, "models", None) if agent is not None else None
    if models is not None:
        loaded = models.loaded()
        out.append(
            "Models loaded: "
            + (", ".join(f"`{k}` ({mb:.0f} MB)" for k, mb in loaded) or "none yet")
            + f" · budget use {models.used_mb:.0f} of {getattr(models, 'budget_mb', 0):.0f} MB"
        )
    return "\n".join(out)


def _md(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")
