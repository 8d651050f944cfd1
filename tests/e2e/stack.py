"""Real processes on loopback for the end-to-end test: exporter, Prometheus, Alertmanager.

Each listens on its own free port of 127.0.0.1 and writes into a temporary directory; the
exporter talks to the simulator that the test serves in its own event loop.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import yaml

from tests.alerts.rules import (
    ALERTMANAGER_EXAMPLE,
    AUDIT_ALERTS,
    CREDENTIAL_ALERTS,
    KEY_ALERTS,
    PROJECT_ALERTS,
    USAGE_ALERTS,
    load_rule_document,
)
from tests.process import free_port

T = TypeVar("T")

FAKE_ADMIN_KEY = "sk-admin-test-fake"
SCRAPE_JOB = "openai-key-exporter"  # the job OpenAIExporterDown selects
POLL_INTERVAL = 0.25
# The alerts about keys, projects, admin keys and certificates, about usage and spend, on
# the audit log, and the one about a failing collector, wait 1 s instead of their shipped
# 1m/5m/15m/30m/1h. OpenAIExporterDown,
# OpenAIExporterDataStale and OpenAIExporterRateLimited keep their shipped `for:`:
# OpenAIExporterDown is rightly pending until the first scrape, and must not fire over
# that; their silence is checked on their expressions instead.
SHORTENED = dict.fromkeys(
    KEY_ALERTS
    + PROJECT_ALERTS
    + CREDENTIAL_ALERTS
    + USAGE_ALERTS
    + AUDIT_ALERTS
    + ("OpenAIExporterCollectorFailing",),
    "1s",
)
# Every collector on by default runs in the e2e exporters (usage, costs and spend_limits
# too: the e2e proves the default deployment). Only how often they refresh is shorter:
# the organizations change during a run (a dormant key is used, a key bursts, audit events
# happen), and the shipped 1m (--audit.interval), 5m (--cache.ttl, --usage.interval) and 1h
# (--costs.interval, which spend_limits shares) would show little of it within a test. 2 s
# is twice the scrape interval.
FAST_REFRESH = (
    "--cache.ttl=2s",
    "--usage.interval=2s",
    "--costs.interval=2s",
    "--audit.interval=2s",
)


def tool(*names: str) -> str:
    """The first of `names` on PATH; fails (never skips) when none is installed."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise AssertionError(f"none of {names} found: run ./scripts/install-system-deps.sh")


def exporter_command() -> str:
    """The console script installed beside this interpreter (the project's virtualenv)."""
    path = Path(sys.executable).parent / "openai-key-exporter"
    assert path.exists(), f"{path} missing: run `make venv`"
    return str(path)


async def poll(
    check: Callable[[], Awaitable[T | None]],
    what: str,
    within: float,
    context: Callable[[], str] = lambda: "",
) -> T:
    """Calls `check` until it returns something other than None, for at most `within` s;
    then fails naming `what`, with `context()` (say, the processes' logs)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = await check()
        if result is not None:
            return result
        if loop.time() >= deadline:
            raise AssertionError(f"gave up after {within:.0f} s waiting for {what}\n{context()}")
        await asyncio.sleep(POLL_INTERVAL)


@dataclass
class Process:
    name: str
    process: asyncio.subprocess.Process
    log: Path

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        return f"--- {self.name} log ---\n" + "\n".join(text[-lines:])

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), timeout=10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


async def start(
    name: str, args: list[str], directory: Path, env: dict[str, str] | None = None
) -> Process:
    log = directory / f"{name}.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *args, stdout=out, stderr=asyncio.subprocess.STDOUT, env=env, cwd=directory
        )
    return Process(name, process, log)


def rules_for_test(shortened: dict[str, str]) -> dict[str, Any]:
    """The shipped rules with the `for:` of the named alerts shortened; nothing else changes."""
    document = load_rule_document()
    for group in document["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") in shortened:
                rule["for"] = shortened[rule["alert"]]
    return document


def alertmanager_config_for_test() -> dict[str, Any]:
    """The example configuration with its receivers' integrations removed (nothing is sent
    anywhere); routes, grouping and inhibitions stay exactly as shipped."""
    config = yaml.safe_load(ALERTMANAGER_EXAMPLE.read_text(encoding="utf-8"))
    assert isinstance(config, dict)
    config["receivers"] = [{"name": receiver["name"]} for receiver in config["receivers"]]
    return config


@dataclass
class Stack:
    """The running processes and how to reach them."""

    directory: Path
    session: aiohttp.ClientSession
    exporter_url: str
    prometheus_url: str
    alertmanager_url: str
    processes: list[Process] = field(default_factory=list)

    def logs(self) -> str:
        return "\n".join(process.tail() for process in self.processes)

    async def get_json(self, url: str, **params: str) -> Any:
        async with self.session.get(url, params=params) as response:
            response.raise_for_status()
            return await response.json()

    async def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's result vector, now or at Prometheus time `at`."""
        params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        body = await self.get_json(f"{self.prometheus_url}/api/v1/query", **params)
        assert body["status"] == "success", body
        assert body["data"]["resultType"] == "vector", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    async def prometheus_alerts(self) -> list[dict[str, Any]]:
        body = await self.get_json(f"{self.prometheus_url}/api/v1/alerts")
        alerts: list[dict[str, Any]] = body["data"]["alerts"]
        return alerts

    async def alertmanager_alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = await self.get_json(f"{self.alertmanager_url}/api/v2/alerts")
        return alerts

    async def alertmanager_groups(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = await self.get_json(
            f"{self.alertmanager_url}/api/v2/alerts/groups"
        )
        return groups


async def start_stack(
    exit_stack: AsyncExitStack,
    directory: Path,
    shortened: dict[str, str],
    *,
    exporter_env: Mapping[str, str],
    exporter_args: Sequence[str] = (),
    history: Callable[[str], str] | None = None,
    scrape_configs: Callable[[str], list[dict[str, Any]]] | None = None,
) -> Stack:
    """Starts exporter (the installed command with `exporter_args`, and only PATH and
    `exporter_env` in its environment), Alertmanager and Prometheus; returns once a
    target of job SCRAPE_JOB is up. `scrape_configs`, given the exporter's address
    (host:port), returns Prometheus's scrape configs; by default one job SCRAPE_JOB
    scrapes the exporter's /metrics. `history`, given the exporter's instance label,
    returns series in the OpenMetrics text format that Prometheus holds from before it
    started (written into its TSDB with `promtool tsdb create-blocks-from openmetrics`)."""
    session = await exit_stack.enter_async_context(
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
    )
    exporter_port, prometheus_port, alertmanager_port = free_port(), free_port(), free_port()
    stack = Stack(
        directory=directory,
        session=session,
        exporter_url=f"http://127.0.0.1:{exporter_port}",
        prometheus_url=f"http://127.0.0.1:{prometheus_port}",
        alertmanager_url=f"http://127.0.0.1:{alertmanager_port}",
    )

    async def started(process: Process) -> Process:
        stack.processes.append(process)
        exit_stack.push_async_callback(process.stop)
        return process

    # Only what the exporter needs: no credential of the machine running the tests.
    await started(
        await start(
            "exporter",
            [
                exporter_command(),
                f"--web.listen-address=127.0.0.1:{exporter_port}",
                *exporter_args,
            ],
            directory,
            {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **exporter_env},
        )
    )

    (directory / "alertmanager.yml").write_text(
        yaml.safe_dump(alertmanager_config_for_test()), encoding="utf-8"
    )
    await started(
        await start(
            "alertmanager",
            [
                tool("alertmanager", "prometheus-alertmanager"),
                "--config.file=alertmanager.yml",
                f"--storage.path={directory / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{alertmanager_port}",
                "--cluster.listen-address=",
            ],
            directory,
        )
    )

    (directory / "rules.yml").write_text(
        yaml.safe_dump(rules_for_test(shortened)), encoding="utf-8"
    )
    prometheus_config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": ["rules.yml"],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]
        },
        "scrape_configs": (scrape_configs or metrics_scrape_configs)(f"127.0.0.1:{exporter_port}"),
    }
    (directory / "prometheus.yml").write_text(yaml.safe_dump(prometheus_config), encoding="utf-8")
    if history is not None:
        await backfill(directory, history(stack.exporter_url.removeprefix("http://")))
    await started(
        await start(
            "prometheus",
            [
                tool("prometheus"),
                "--config.file=prometheus.yml",
                f"--storage.tsdb.path={directory / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
            ],
            directory,
        )
    )

    async def target_up() -> dict[str, Any] | None:
        for process in stack.processes:
            assert process.process.returncode is None, f"{process.name} exited\n{stack.logs()}"
        try:
            body = await stack.get_json(f"{stack.prometheus_url}/api/v1/targets")
        except aiohttp.ClientError:
            return None  # not listening yet
        targets = body["data"]["activeTargets"]
        up = [t for t in targets if t["health"] == "up" and t["labels"]["job"] == SCRAPE_JOB]
        return up[0] if up else None

    # The first scrape comes about 5 s after Prometheus starts.
    await poll(target_up, "Prometheus to scrape the exporter", within=60, context=stack.logs)
    return stack


def metrics_scrape_configs(address: str) -> list[dict[str, Any]]:
    """One job, SCRAPE_JOB, scraping the exporter's /metrics at `address`."""
    return [{"job_name": SCRAPE_JOB, "static_configs": [{"targets": [address]}]}]


async def backfill(directory: Path, openmetrics: str) -> None:
    """Blocks of `openmetrics` in Prometheus's (not yet started) data directory."""
    source = directory / "history.om"
    source.write_text(openmetrics, encoding="utf-8")
    process = await start(
        "promtool-backfill",
        [
            tool("promtool"),
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            # One block for the whole history, not one per 2 h: fewer to load and compact.
            "--max-block-duration=192h",
            str(source),
            str(directory / "prometheus-data"),
        ],
        directory,
    )
    code = await process.process.wait()
    assert code == 0, f"promtool could not backfill\n{process.tail()}"


def simulator_env(admin_api_url: str) -> dict[str, str]:
    """The exporter's environment for the simulator at `admin_api_url`, holding the fake key."""
    return {"OPENAI_ADMIN_KEY": FAKE_ADMIN_KEY, "OPENAI_BASE_URL": admin_api_url}
