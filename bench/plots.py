"""The PNGs the README embeds (docs/perf/)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, NullFormatter

_STYLE = {"figure.dpi": 100, "axes.grid": True, "grid.alpha": 0.3, "font.size": 9}


def _log_axes(ax: Any) -> None:
    """Log scales with plain numbers (0.5, 1, 10) instead of powers of ten."""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _save(fig: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    print(f"wrote {path}")


def endpoints(results: Dict[str, Dict[str, Any]], subtitle: str, path: Path) -> None:
    names = list(results)
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(names) + 1.5))
        y = range(len(names))
        p50 = [results[n]["p50_ms"] for n in names]
        p99 = [results[n]["p99_ms"] for n in names]
        ax.barh([i - 0.2 for i in y], p50, height=0.4, label="p50")
        ax.barh([i + 0.2 for i in y], p99, height=0.4, label="p99", alpha=0.6)
        for i, n in enumerate(names):
            r = results[n]
            ax.text(p99[i], i + 0.2, f" {p99[i]:.2f}", va="center", fontsize=7)
            ax.text(p50[i], i - 0.2, f" {p50[i]:.2f}  (db {r['db_statements_per_call']:g},"
                    f" redis {r['redis_round_trips_per_call']:g})", va="center", fontsize=7)
        ax.set_yticks(list(y), names)
        ax.invert_yaxis()
        ax.set_xlim(0, max(p99) * 1.35)
        ax.set_xlabel("ms per call (in-process Lambda handler)")
        ax.set_title(f"Latency per endpoint\n{subtitle}", fontsize=9)
        ax.legend(loc="lower right")
        _save(fig, path)


def read_latency_vs_rows(rows: Dict[str, Any], subtitle: str, path: Path) -> None:
    sizes = sorted(int(s) for s in rows["sizes"])
    cases = list(rows["sizes"][str(sizes[0])]["results"])
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(8, 5.5))
        for n, case in enumerate(cases):
            at = [rows["sizes"][str(s)]["results"][case] for s in sizes]
            ax.plot(sizes, [r["p50_ms"] for r in at], "o-", color=f"C{n}", label=case)
            ax.plot(sizes, [r["p99_ms"] for r in at], "x:", color=f"C{n}", alpha=0.6)
        ax.set_xscale("log")
        _log_axes(ax)
        ax.set_xticks(sizes, [f"{s:,}" for s in sizes])
        ax.set_xlabel("messages in the database (= inbox rows), log scale")
        ax.set_ylabel("ms per read, database path (solid p50, dotted p99)")
        ax.set_title(f"read_messages latency vs database size\n{subtitle}", fontsize=9)
        ax.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.14))
        _save(fig, path)


def send_group_vs_group_size(fanout: Dict[str, Any], subtitle: str, path: Path) -> None:
    sizes = sorted(int(s) for s in fanout["sizes"])
    results = [fanout["sizes"][str(s)] for s in sizes]
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(8, 4.5))
        ax.plot(sizes, [r["p50_ms"] for r in results], "o-", label="p50")
        ax.plot(sizes, [r["p99_ms"] for r in results], "x:", label="p99")
        for s, r in zip(sizes, results):
            ax.annotate(f"{r['p50_ms']:.1f} ms\ndb {r['db_statements_per_call']:g}, "
                        f"redis {r['redis_round_trips_per_call']:g}",
                        (s, r["p50_ms"]), textcoords="offset points", xytext=(0, -30), ha="center", fontsize=7)
        ax.set_xscale("log")
        _log_axes(ax)
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.margins(x=0.1, y=0.25)
        ax.set_xlabel("group members, log scale (recipients = members - 1, each with a cache window)")
        ax.set_ylabel("ms per send_group")
        ax.set_title(f"send_group latency vs group size\n{subtitle}", fontsize=9)
        ax.legend()
        _save(fig, path)


def load_vs_workers(load: Dict[str, Any], subtitle: str, path: Path) -> None:
    ns = sorted(int(n) for n in load["runs"])
    runs = [load["runs"][str(n)] for n in ns]
    with plt.rc_context(_STYLE):
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 5))
        left.plot(ns, [r["requests_per_s"] for r in runs], "o-", color="C0", label="requests/s (left axis)")
        for n, r in zip(ns, runs):
            left.annotate(f"{r['requests_per_s']:.0f}", (n, r["requests_per_s"]), textcoords="offset points",
                          xytext=(0, 6), ha="center", fontsize=7, color="C0")
        twin = left.twinx()  # deliveries are many times the requests: an axis of their own
        twin.plot(ns, [r["deliveries_per_s"] for r in runs], "s--", color="C1",
                  label="messages delivered/s = inbox rows (right axis)")
        twin.grid(False)
        left.set_ylim(bottom=0, top=max(r["requests_per_s"] for r in runs) * 1.25)
        twin.set_ylim(bottom=0, top=max(r["deliveries_per_s"] for r in runs) * 1.25)
        left.set_ylabel("requests / s (all workers)")
        twin.set_ylabel("deliveries / s")
        handles = left.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
        left.legend(handles, [h.get_label() for h in handles], loc="lower right", fontsize=7)
        left.set_title("throughput", fontsize=9)
        for k, op in enumerate(("send", "send_group", "poll")):
            right.plot(ns, [r["ops"][op]["p99_ms"] for r in runs], "o-", color=f"C{k}", label=f"{op} p99")
            right.plot(ns, [r["ops"][op]["p50_ms"] for r in runs], "x:", color=f"C{k}", alpha=0.6,
                       label=f"{op} p50")
        _log_axes(right)
        right.set_ylabel("ms per request (every attempt)")
        right.set_title("latency", fontsize=9)
        right.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.16))
        for ax in (left, right):
            ax.set_xscale("log", base=2)
            ax.set_xticks(ns, [str(n) for n in ns])
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("worker processes (one per Lambda container)")
        fig.suptitle(f"Load vs workers (mix {', '.join(f'{w:.0%} {op}' for op, w in load['mix'].items())})\n"
                     f"{subtitle}", fontsize=9)
        _save(fig, path)
