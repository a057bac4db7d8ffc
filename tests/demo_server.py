"""The web demo as a user starts it: ``python -m adain demo --weights DIR --port N`` in a subprocess.

``DemoServer.start`` picks a free port on 127.0.0.1, starts the command (this clone's ``adain`` on
``PYTHONPATH``, Gradio's telemetry off, Hugging Face offline, Gradio's files under ``workdir``), and waits
until the page answers; ``stop`` ends that one process. Pictures for the tests are generated here too.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

STARTUP_TIMEOUT_S = 180  # torch + gradio imports on a busy 2-core machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class DemoServer:
    url: str
    process: subprocess.Popen
    log: Path

    @classmethod
    def start(cls, weights_dir: Path, workdir: Path, repo_root: Path) -> DemoServer:
        port = free_port()
        log = workdir / "server.log"
        env = {
            **os.environ,
            "PYTHONPATH": str(repo_root),
            "GRADIO_ANALYTICS_ENABLED": "False",
            "HF_HUB_OFFLINE": "1",
            "GRADIO_TEMP_DIR": str(workdir / "gradio"),
            "PYTHONUNBUFFERED": "1",
        }
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "adain",
                    "demo",
                    "--weights",
                    str(weights_dir),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                cwd=repo_root,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = cls(f"http://127.0.0.1:{port}/", process, log)
        server._wait()
        return server

    def _wait(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"adain demo exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(self.url + "gradio_api/info", timeout=5) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"adain demo did not answer within {STARTUP_TIMEOUT_S} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def picture(path: Path, height: int, width: int, kind: str) -> Path:
    """A small generated picture: ``"content"`` (sky, sun and hills) or ``"style"`` (coloured stripes)."""
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    if kind == "content":
        for y in range(height):
            draw.line([(0, y), (width, y)], fill=(90 + 100 * y // height, 150, 230 - 120 * y // height))
        draw.ellipse([width * 0.6, height * 0.1, width * 0.85, height * 0.45], fill=(250, 210, 60))
        draw.polygon([(0, height), (width * 0.35, height * 0.55), (width * 0.8, height)], fill=(40, 120, 60))
    else:
        rng = np.random.default_rng(7)
        for x in range(0, width + height, 6):
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            draw.line([(x, 0), (x - height, height)], fill=colour, width=4)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path
