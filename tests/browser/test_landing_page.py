"""The landing page as a browser renders it: real headless Chromium, not a parser."""

import asyncio
import shutil
import tempfile
from pathlib import Path

from tests.process import run_exporter

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


async def chromium(*args: str) -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "chromium is installed by scripts/install-system-deps.sh"
    with tempfile.TemporaryDirectory() as profile:
        process = await asyncio.create_subprocess_exec(
            binary,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0
    return out.decode()


async def test_demo_landing_page_renders_with_status_and_a_metrics_link(tmp_path: Path) -> None:
    async with run_exporter("--demo") as exporter:
        await exporter.wait_until_ready()
        dom = await chromium("--dump-dom", exporter.url + "/")
        screenshot = tmp_path / "landing.png"
        await chromium(f"--screenshot={screenshot}", "--window-size=900,600", exporter.url + "/")
        assert await exporter.stop() == 0
    assert "<title>OpenAI Key Exporter</title>" in dom
    assert '<a href="/metrics">Metrics</a>' in dom
    assert "Demo mode" in dom
    assert "<th>api_keys</th><td>7 projects, 44 keys</td>" in dom
    assert screenshot.stat().st_size > 5000  # a page was painted, not a blank error tab
