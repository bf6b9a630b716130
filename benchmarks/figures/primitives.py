"""Figure 9: the framing decoder and scanner (``benchmarks.bench_framing``), the
retry policy's success-path overhead (``benchmarks.bench_retry``), and the buffer
budget's bookkeeping per held chunk (``benchmarks.bench_budget``). In-memory, this
process only; every figure of these modules goes into the JSON, the main ones into
the table."""

from __future__ import annotations

from benchmarks import bench_budget, bench_framing, bench_retry
from benchmarks.environment import CHAOSNET
from benchmarks.figures.common import Context
from benchmarks.report import Row

SHOWN = (
    ("9a", "decode_64B_frames_per_s", "framing: decode 64 B frames", "frames/s"),
    ("9b", "decode_1MiB_MB_per_s", "framing: decode 1 MiB frames", "MB/s"),
    ("9c", "scan_64B_MB_per_s", "framing: proxy scanner, 64 B frames", "MB/s"),
    ("9d", "decode_1500B_scaling", "framing: 4 MiB / 1 MiB time at 1500 B reads", "ratio"),
    ("9e", "call_overhead_ns", "retry: policy.call overhead", "ns"),
    ("9f", "acall_overhead_ns", "retry: policy.acall overhead", "ns"),
    ("9g", "take_give_back_ns", "budget: take + give_back per held chunk", "ns"),
    ("9h", "inlined_ns", "budget: the same arithmetic inlined", "ns"),
)


def run(ctx: Context) -> list[Row]:
    ctx.say("figure 9: framing decoder, retry overhead, budget bookkeeping (in memory)")
    quick = ctx.plan.quick
    figures = bench_framing.measure(quick) | bench_retry.measure(quick)
    figures |= bench_budget.measure(quick)
    rows = []
    for key, name, title, unit in SHOWN:
        value = figures.get(name)
        target = "linear: ≈ 4 (quadratic ≈ 16)" if name == "decode_1500B_scaling" else ""
        met = None if not target or value is None else value < 6
        rows.append(Row(key, title, unit, {CHAOSNET: value}, target, met))
    rows[0].details = {"framing_and_retry": figures}
    return rows
