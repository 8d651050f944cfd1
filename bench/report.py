"""The benchmark's tables (Markdown, so they paste into docs/performance.md as they are)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from bench.audit import audit_table
from bench.plan import Plan
from bench.scrape_cost import percentile
from bench.sizes import POLL_INTERVAL, SDK_DEFAULT_LIMIT, SIZES, USAGE_SIZES, Size

Result = dict[str, Any]


def _ms(seconds: float) -> str:
    milliseconds = seconds * 1000
    return f"{milliseconds:.0f}" if milliseconds >= 100 else f"{milliseconds:.1f}"


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _per_key(kib: int, size: Size) -> str:
    return f"{kib * 1024 / size.keys:,.0f} B"


def refresh_table(results: list[Result], plan: Plan) -> list[str]:
    lines = [
        f"Refresh at concurrency {plan.concurrency}, {plan.latency * 1000:.0f} ms injected per "
        f"request: median of {plan.refresh_runs}. Lower bound: max(project pages, "
        "ceil(requests / concurrency)) x latency; 'sim.': the latency the simulator really "
        "gives at that concurrency (injected + its own work), measured with a bare client "
        "right before each refresh, and the median ratio to the bound computed with it. "
        f"Naive: sequential at the API's default limit={SDK_DEFAULT_LIMIT}, median "
        f"of {plan.naive_runs} (huge: 1).",
        "",
        "| size | keys | refresh s | lower bound s | ratio | sim. latency ms | ratio to sim. "
        "| requests | minimum | naive s | naive requests | naive / ours |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        size = SIZES[result["size"]]
        refresh = _median([r["seconds"] for r in result["refreshes"]])
        bound = size.refresh_lower_bound(plan.concurrency, plan.latency)
        latency = _median([r["simulator_latency"] for r in result["refreshes"]])
        to_simulated = _median(
            [
                r["seconds"] / size.refresh_lower_bound(plan.concurrency, r["simulator_latency"])
                for r in result["refreshes"]
            ]
        )
        counts = "/".join(str(n) for n in sorted({r["requests"] for r in result["refreshes"]}))
        naive = "| - | - | - |"
        if result.get("naive"):
            seconds = _median([r["seconds"] for r in result["naive"]])
            naive = (
                f"| {seconds:.1f} | {result['naive'][0]['requests_seen']} "
                f"| {seconds / refresh:.1f}x |"
            )
        lines.append(
            f"| {size.name} | {size.keys:,} | {refresh:.2f} | {bound:.2f} | {refresh / bound:.2f} "
            f"| {latency * 1000:.1f} | {to_simulated:.2f} | {counts} "
            f"| {size.minimum_requests} {naive}"
        )
    lines += [
        "",
        "Side by side: each api_keys-only refresh is followed at once by one with the "
        "credential collectors (api_keys, admin_api_keys, users, invites, certificates: the "
        "default set of issue 9), then by one with every default collector (those, plus "
        "usage, costs and spend_limits), each in its own worker, so all three meet the same "
        "neighbours; medians, and medians of the per-run ratios to api_keys alone. The "
        "organizations of these sizes have no usage (the usage size measures it), so usage "
        "and costs cost a page each; spend limits cost two requests per project.",
        "",
        "| size | api_keys s | credentials s | ratio | every default s | ratio | requests "
        "| credentials | every default |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        pairs = [r for r in result["refreshes"] if "all_collectors_seconds" in r]
        if not pairs:
            continue
        ours = _median([r["seconds"] for r in pairs])
        cells = [f"{ours:.2f}"]
        for name in ("credentials", "all_collectors"):
            cells.append(f"{_median([r[f'{name}_seconds'] for r in pairs]):.2f}")
            cells.append(f"{_median([r[f'{name}_seconds'] / r['seconds'] for r in pairs]):.3f}")
        requests = [
            str(pairs[0][key])
            for key in ("requests", "credentials_requests", "all_collectors_requests")
        ]
        lines.append(f"| {result['size']} | {' | '.join(cells + requests)} |")
    return lines


def scrape_tables(results: list[Result], plan: Plan) -> list[str]:
    lines = [
        f"Scrape cost from a warm cache, ms, p50 / p99 of {plan.scrape_runs} renders, each in a "
        "new second, in one process: what the /metrics handler computes, without the network. "
        "Baseline: prometheus_client generate_latest over a plain GaugeMetricFamily collector "
        f"(+ gzip level 6), median of {plan.baseline_runs} (huge: 1), same snapshot, same "
        "instant. Speedup: baseline p50 / ours p50. First: the first scrape of a new "
        "snapshot (plain + gzip). Same second: an OpenMetrics+gzip scrape in the same second "
        "as another, which reuses its compressed ages. Same samples: both outputs parsed "
        "(text and OpenMetrics) give the same set of samples, ages included.",
        "",
        "| size | text | baseline | speedup | text+gzip | baseline | speedup "
        "| OpenMetrics+gzip | baseline | speedup | first | same second | same samples |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for result in results:
        scrape = result["scrape"]
        cells = []
        for name in ("text", "text_gzip", "om_gzip"):
            cost = scrape[name]
            cells += [
                f"{_ms(cost['p50'])} / {_ms(cost['p99'])}",
                _ms(cost["baseline_p50"]),
                f"{cost['baseline_p50'] / cost['p50']:.0f}x",
            ]
        first = f"{_ms(scrape['prepare_s'])} + {_ms(scrape['prepare_gzip_s'])}"
        same = "yes" if scrape.get("same_samples") else "NO"
        cells += [first, _ms(scrape["same_second_s"]), same]
        lines.append(f"| {result['size']} | {' | '.join(cells)} |")
    lines += [
        "",
        "Bytes per scrape (ours / baseline) and series:",
        "",
        "| size | bytes plain | baseline | bytes gzip | baseline | bytes/key | series "
        "| key series/key |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        scrape = result["scrape"]
        lines.append(
            f"| {result['size']} | {scrape['bytes']:,} | {scrape['baseline_bytes']:,} "
            f"| {scrape['bytes_gzip']:,} | {scrape['baseline_bytes_gzip']:,} "
            f"| {scrape['bytes'] / result['keys']:.0f} | {scrape['series']:,} "
            f"| {scrape['series_per_key']:.2f} |"
        )
    return lines


def process_table(results: list[Result], idle: Result, plan: Plan) -> list[str]:
    idle_rss = idle["memory_kib"]["VmRSS"]
    lines = [
        "The real process (openai-key-exporter, a child process per size): RSS after its "
        f"refresh and {plan.http_scrapes + 1} scrapes as Prometheus asks (OpenMetrics, gzip), "
        f"then after {plan.plain_scrapes} plain scrapes too; per key: above the same process "
        f"serving an empty organization ({idle_rss / 1024:.0f} MiB). HTTP: time to the whole "
        f"body over loopback, p50 / p99 of {plan.http_scrapes} warm scrapes as Prometheus "
        "asks, and the first scrape of the snapshot. Storm: "
        f"{plan.storm_scrapes} concurrent scrapes on an expired cache, and the upstream "
        "requests they caused.",
        "",
        "| size | RSS MiB | per key | + plain scrapes MiB | per key | peak MiB | HTTP ms "
        "| first HTTP ms | plain HTTP ms | storm requests | minimum |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        size = SIZES[result["size"]]
        gzip_only, plain = result["memory_kib"], result["memory_plain_kib"]
        http = result["http"]
        storm_requests = result["storm"]["requests"] if "storm" in result else "-"
        lines.append(
            f"| {size.name} | {gzip_only['VmRSS'] / 1024:.0f} "
            f"| {_per_key(gzip_only['VmRSS'] - idle_rss, size)} "
            f"| {plain['VmRSS'] / 1024:.0f} | {_per_key(plain['VmRSS'] - idle_rss, size)} "
            f"| {plain['VmHWM'] / 1024:.0f} "
            f"| {_ms(_median(http['om_gzip']))} / {_ms(percentile(http['om_gzip'], 0.99))} "
            f"| {_ms(http['first'])} | {_ms(_median(http['text']))} | {storm_requests} "
            f"| {size.minimum_requests} |"
        )
    return lines


def growth_table(results: list[Result], idle: Result) -> list[str]:
    """How each cost grows with keys: one line per size, per-key figures side by side."""
    lines = [
        "Growth with keys (per key; refresh per 1,000 keys):",
        "",
        "| size | keys | refresh s / 1k keys | scrape µs/key (OpenMetrics+gzip) "
        "| baseline µs/key | bytes/key plain | bytes/key gzip | RSS bytes/key |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        size = SIZES[result["size"]]
        cells = [size.name, f"{size.keys:,}"]
        if "refreshes" in result:
            refresh = _median([r["seconds"] for r in result["refreshes"]])
            cells.append(f"{refresh * 1000 / size.keys:.3f}")
        else:
            cells.append("-")
        if "scrape" in result:
            scrape = result["scrape"]
            cells += [
                f"{scrape['om_gzip']['p50'] * 1e6 / size.keys:.2f}",
                f"{scrape['om_gzip']['baseline_p50'] * 1e6 / size.keys:.1f}",
                f"{scrape['bytes'] / size.keys:.0f}",
                f"{scrape['bytes_gzip'] / size.keys:.0f}",
            ]
        else:
            cells += ["-"] * 4
        if "memory_kib" in result and idle:
            above = result["memory_kib"]["VmRSS"] - idle["memory_kib"]["VmRSS"]
            cells.append(f"{above * 1024 / size.keys:,.0f}")
        else:
            cells.append("-")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _polls(result: Result, *, steady: bool) -> list[Result]:
    """Every run's first poll, or every run's steady polls."""
    chosen: list[Result] = []
    for run in result["runs"]:
        chosen += run["polls"][1:] if steady else run["polls"][:1]
    return chosen


def usage_tables(results: list[Result], plan: Plan) -> list[str]:
    lines = [
        f"Usage polls (the usage collector alone, in its own worker; hourly buckets, "
        f"lookback 3h at 10:05 UTC on a Tuesday: 4 buckets, the open one and the one "
        f"before it still growing): median of {plan.usage_runs} first polls (a new worker "
        f"each, the ledger empty) and of {plan.usage_runs * plan.steady_polls} steady polls "
        f"({plan.steady_polls} per run, each {POLL_INTERVAL} s of simulated time after the "
        "one before: the same window re-read, grown). Requests: every poll of every run "
        "(the minimum: one page per source). CPU: the exporter's process; parse: pydantic "
        "turning the bodies into models; ledger: BucketLedger.advance; the rest is reading "
        "the bodies (aiohttp) and summing results per series. Simulator CPU: the simulator "
        "computing and serializing the pages, in the driver's process (with the real API "
        "that is OpenAI's time, not the exporter's).",
        "",
        "| size | series | requests | minimum | poll | s | CPU s | parse s | ledger s "
        "| simulator CPU s | MB read |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        size = USAGE_SIZES[result["size"]]
        counts = sorted({p["requests"] for run in result["runs"] for p in run["polls"]})
        for kind, steady in (("first", False), ("steady", True)):
            polls = _polls(result, steady=steady)
            cells = [
                f"{_median([p[name] for p in polls]):.2f}"
                for name in (
                    "seconds",
                    "cpu_seconds",
                    "parse_cpu_seconds",
                    "ledger_cpu_seconds",
                    "simulator_cpu_seconds",
                )
            ]
            megabytes = _median([p["bytes_read"] / 1e6 for p in polls])
            lines.append(
                f"| {size.name} | {polls[0]['series']:,} | {'/'.join(map(str, counts))} "
                f"| {size.minimum_requests} | {kind} | {' | '.join(cells)} | {megabytes:.0f} |"
            )
    lines += [
        "",
        "Memory: 'ledger' is the usage state's Python objects, every distinct object "
        "reachable from it counted once (sys.getsizeof): exact, and free of what the "
        "allocator keeps; RSS: the worker process after its steady polls, above the same "
        "process before its first poll, which also holds what the parsing peak left to the "
        "allocator. Per series: divided by the ledger's series. Medians of the runs.",
        "",
        "| size | series | ledger MB | ledger B/series | objects/series | RSS growth MiB "
        "| RSS B/series | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        series = result["runs"][0]["polls"][-1]["series"]
        runs = result["runs"]
        ledger = _median([r["memory_after"]["usage_bytes"] for r in runs])
        objects = _median([r["memory_after"]["usage_objects"] for r in runs])
        growth = _median([r["memory_after"]["VmRSS"] - r["memory_before"]["VmRSS"] for r in runs])
        peak = _median([r["memory_after"]["VmHWM"] for r in runs])
        lines.append(
            f"| {result['size']} | {series:,} | {ledger / 1e6:.1f} | {ledger / series:,.0f} "
            f"| {objects / series:.1f} | {growth / 1024:.0f} | {growth * 1024 / series:,.0f} "
            f"| {peak / 1024:.0f} |"
        )
    scraped = [r for r in results if "scrape" in r]
    if scraped:
        lines += [
            "",
            f"Scrape of the usage counters, ms, p50 / p99 of {min(plan.scrape_runs, 10)} renders "
            "from a warm cache, and the baseline (prometheus_client, once), as in the scrape "
            "table above. First: the first scrape after a poll (plain + gzip), which renders "
            "and compresses every counter once for both formats; later scrapes of the same "
            "state reuse that text. Samples: counter lines in the text.",
            "",
            "| size | samples | text | baseline | speedup | text+gzip | baseline | speedup "
            "| OpenMetrics+gzip | baseline | speedup | first | bytes plain | bytes gzip "
            "| same samples |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for result in scraped:
            scrape = result["scrape"]
            cells = [f"{scrape['usage_series']:,}"]
            for name in ("text", "text_gzip", "om_gzip"):
                cost = scrape[name]
                cells += [
                    f"{_ms(cost['p50'])} / {_ms(cost['p99'])}",
                    _ms(cost["baseline_p50"]),
                    f"{cost['baseline_p50'] / cost['p50']:.0f}x",
                ]
            cells += [
                f"{_ms(scrape['prepare_s'])} + {_ms(scrape['prepare_gzip_s'])}",
                f"{scrape['bytes']:,}",
                f"{scrape['bytes_gzip']:,}",
                {True: "yes", False: "NO"}.get(scrape.get("same_samples"), "not checked"),
            ]
            lines.append(f"| {result['size']} | {' | '.join(cells)} |")
    return lines


def tables(
    results: list[Result],
    idle: Result,
    plan: Plan,
    usage: list[Result] | None = None,
    audit: list[Result] | None = None,
) -> str:
    sections: list[list[str]] = []
    if listed := [r for r in results if "refreshes" in r]:
        sections.append(refresh_table(listed, plan))
    if scraped := [r for r in results if "scrape" in r]:
        sections.append(scrape_tables(scraped, plan))
    if processed := [r for r in results if "memory_kib" in r]:
        sections.append(process_table(processed, idle, plan))
    if results:
        sections.append(growth_table(results, idle))
    if usage:
        sections.append(usage_tables(usage, plan))
    if audit:
        sections.append(audit_table(audit, plan))
    return "\n\n".join("\n".join(section) for section in sections)
