"""Routing evaluation: plan every labelled request of one or more files and score the plans, per file.

    python eval/routing/evaluate.py                      # router + offline LLM (default config)
    python eval/routing/evaluate.py --llm none           # router alone (undecided requests count as wrong)
    python eval/routing/evaluate.py --llm-only           # the LLM plans everything (no router)
    python eval/routing/evaluate.py --embedder hash --llm fake   # plumbing check, no models

Metrics: tool-selection accuracy (the multiset of tools equals the label), plan accuracy (tools
and dependency edges, compared by tool names so the order of independent steps does not matter),
router coverage (share decided without the LLM) and router precision (share of those right).
A row may name the devices registered when it is asked (`"devices": [{"id", "name", "kind",
"aliases"}]`; null means the demo fleet): the edge tool's cues come from that registry.
The tools are the shipped fakes (`tools.testing`), which subclass the real tools, so the router and
planner read the real descriptions, examples and cues; `--tools real` uses the real ones.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))


def load_requests(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def edge_names(tools: list[str], edges) -> Counter:
    return Counter((tools[a - 1], tools[b - 1]) for a, b in edges)


def build_agent(args):
    from orchestrator import Agent
    from orchestrator.registry import default_tools
    from polymodal.config import load_config
    from tools.testing import fake_tools

    config = load_config(args.config)
    if args.tools == "real":
        tools, problems = default_tools(config)
        for p in problems:
            print(f"tool unavailable: {p.tool}: {p.reason}", file=sys.stderr)
    else:
        tools = fake_tools()
    llm = None
    if args.llm == "fake":
        from tools.llm import FakeChatModel

        llm = FakeChatModel(default='{"steps": []}')
    elif args.llm == "config":
        from tools.llm import get_chat_model

        llm = get_chat_model(config.llm, config.paths.cache())
    embedder = None if args.embedder == "none" else args.embedder
    agent = Agent(tools, llm=llm, embedder=embedder, config=config, use_router=not args.llm_only)
    if args.llm == "none":
        agent.planner._llm = None
    return agent


def use_fleet(agent, devices) -> None:
    """Register `devices` (None: the demo fleet) with the fake edge tool, as announcements would."""
    from tools.testing import DEMO_FLEET, FakeEdgeQueryTool, announcement

    fleet = (
        DEMO_FLEET
        if devices is None
        else tuple(
            announcement(
                d["id"],
                d.get("name", d["id"]),
                d.get("kind", ""),
                tuple(d.get("aliases", ())),
                tuple(d.get("sensors", ())) or _sensors_named(d),
            )
            for d in devices
        )
    )
    for name, tool in list(agent.tools.items()):
        if isinstance(tool, FakeEdgeQueryTool):
            agent.tools[name] = FakeEdgeQueryTool(devices=fleet)


def _sensors_named(device: dict) -> tuple[str, ...]:
    """A sensor device's sensors, from the words of its name and kind (the eval rows do not list them)."""
    words = " ".join([device.get("name", ""), device.get("kind", ""), *device.get("aliases", [])]).lower()
    found = [
        s
        for s, keys in (
            ("temperature", ("temp", "thermo", "freezer", "温")),
            ("humidity", ("humid", "湿")),
            ("soil_moisture", ("soil", "土壤")),
        )
        if any(k in words for k in keys)
    ]
    return tuple(found)


def evaluate(agent, rows: list[dict], verbose: bool = False, fleets: bool = False) -> dict:
    from polymodal.errors import PlanError

    per = []
    current = "demo"
    for row in rows:
        key = json.dumps(row.get("devices"), sort_keys=True)
        if fleets and key != current:
            use_fleet(agent, row.get("devices"))
            current = key
        t0 = time.perf_counter()
        try:
            plan = agent.plan(row["text"], image=row.get("image"))
            tools, edges, source, err = plan.tools(), sorted(plan.edges()), plan.source, ""
        except PlanError as exc:
            tools, edges, source, err = [], [], "error", str(exc)
        seconds = time.perf_counter() - t0
        tool_ok = Counter(tools) == Counter(row["tools"])
        plan_ok = tool_ok and edge_names(tools, edges) == edge_names(row["tools"], row["edges"])
        per.append(
            {
                **row,
                "got_tools": tools,
                "got_edges": edges,
                "source": source,
                "tool_ok": tool_ok,
                "plan_ok": plan_ok,
                "seconds": seconds,
                "error": err,
                "timing": dict(agent.planner.last_timing),
            }
        )
        if verbose and not plan_ok:
            print(
                f"  MISS #{row['id']} [{source}] {row['text']!r}: want {row['tools']} {row['edges']} "
                f"got {tools} {edges} {err}",
                file=sys.stderr,
            )
    return summarize(per)


def _rate(items, key) -> float:
    return round(100.0 * sum(1 for r in items if r[key]) / len(items), 1) if items else 0.0


def summarize(per: list[dict]) -> dict:
    routed = [r for r in per if r["source"] == "router"]
    llm = [r for r in per if r["source"] == "llm"]
    groups: dict[str, list] = defaultdict(list)
    for r in per:
        groups[f"category:{r['category']}"].append(r)
        groups[f"lang:{r['lang']}"].append(r)
    route_ms = [r["timing"].get("route", 0) * 1000 for r in per]
    llm_s = [r["timing"]["llm"] for r in per if "llm" in r["timing"]]
    return {
        "requests": len(per),
        "chinese_share": round(100.0 * sum(r["lang"] == "zh" for r in per) / len(per), 1),
        "tool_selection_accuracy": _rate(per, "tool_ok"),
        "plan_accuracy": _rate(per, "plan_ok"),
        "router_coverage": round(100.0 * len(routed) / len(per), 1),
        "router_precision_tools": _rate(routed, "tool_ok"),
        "router_precision_plan": _rate(routed, "plan_ok"),
        "llm_planned": len(llm),
        "llm_tool_accuracy": _rate(llm, "tool_ok"),
        "llm_plan_accuracy": _rate(llm, "plan_ok"),
        "plan_errors": sum(r["source"] == "error" for r in per),
        "router_ms_p50": round(statistics.median(route_ms), 2) if route_ms else None,
        "llm_plan_s_p50": round(statistics.median(llm_s), 2) if llm_s else None,
        "by_group": {
            k: {"n": len(v), "tools": _rate(v, "tool_ok"), "plan": _rate(v, "plan_ok")}
            for k, v in sorted(groups.items())
        },
        "misses": [
            {
                "id": r["id"],
                "text": r["text"],
                "want": [r["tools"], r["edges"]],
                "got": [r["got_tools"], r["got_edges"]],
                "source": r["source"],
            }
            for r in per
            if not r["plan_ok"]
        ],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", nargs="+", default=[str(HERE / "requests.jsonl")], help="one report per file")
    ap.add_argument("--config", default=None)
    ap.add_argument(
        "--llm",
        choices=["config", "none", "fake"],
        default="config",
        help="config: the configured chat model (offline default); none: router only",
    )
    ap.add_argument("--llm-only", action="store_true", help="skip the router: the LLM plans every request")
    ap.add_argument("--embedder", default="use-multilingual-v3", help="router embedder name, or none")
    ap.add_argument("--tools", choices=["fake", "real"], default="fake")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--every", type=int, default=1, help="evaluate every Nth request (a spread sample for slow runs)")
    ap.add_argument("--out", default="", help="write the full report as JSON here")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)

    agent = build_agent(args)
    agent.router.warm_up()
    reports = {}
    for path in args.requests:
        rows = load_requests(Path(path))[:: max(1, args.every)]
        if args.limit:
            rows = rows[: args.limit]
        fleets = args.tools == "fake" and any("devices" in r for r in rows)
        report = evaluate(agent, rows, args.verbose, fleets=fleets)
        report["setup"] = {"llm": args.llm, "llm_only": args.llm_only, "embedder": args.embedder, "tools": args.tools}
        reports[Path(path).name if len(args.requests) == 1 else path] = report
        if fleets:
            use_fleet(agent, None)
        brief = {k: v for k, v in report.items() if k != "misses"}
        print(json.dumps({"file": path, **brief}, ensure_ascii=False, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(reports, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
