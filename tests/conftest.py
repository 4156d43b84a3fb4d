"""Shared fixtures: a real tiny model folder, real benchmark files, a real vLLM server."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
VLLM_START_SECONDS = 600


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.fail(f"benchmark data not found at {DATA} (the shared/ folder beside the repo)")
    return DATA


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama folder with a SentencePiece tokenizer and a chat template.

    `make test` builds it once into .cache/ and names it in $PONDER_TINY_MODEL;
    without that, the session builds its own (about a minute and a half).
    """
    from ponder.models.tiny import build_tiny_model

    built = os.environ.get("PONDER_TINY_MODEL")
    if built:
        if not (Path(built) / "config.json").is_file():
            pytest.fail(f"$PONDER_TINY_MODEL={built} is not a model folder")
        return Path(built)
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture(scope="session")
def hf_generator(tiny_model: Path):
    from ponder.generators.transformers import TransformersGenerator

    return TransformersGenerator(tiny_model)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _vllm_python() -> str:
    configured = os.environ.get("PONDER_VLLM_PYTHON")
    python = Path(configured) if configured else ROOT / ".venv-vllm" / "bin" / "python"
    if not python.exists():
        pytest.fail(f"no vLLM environment at {python}: run `make vllm` (or use `make test`)")
    return str(python)


@contextlib.contextmanager
def _vllm_server(model: Path, name: str, log_dir: Path) -> Iterator[str]:
    """A real vLLM OpenAI-compatible server on 127.0.0.1 serving `model` as `name`."""
    port = _free_port()
    log_path = log_dir / "server.log"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "VLLM_CPU_KVCACHE_SPACE": "1",
    }
    command = [
        _vllm_python(),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model),
        "--served-model-name",
        name,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        "float32",
        "--max-model-len",
        "512",
        "--enforce-eager",
        "--seed",
        "0",
        # vllm-cpu's engine dies on a seeded request whose prompt chunked prefill splits.
        "--no-enable-chunked-prefill",
    ]
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + VLLM_START_SECONDS
        while True:
            if server.poll() is not None:
                tail = log_path.read_text(errors="replace")[-3000:]
                pytest.fail(f"vLLM exited with {server.returncode} during start-up:\n{tail}")
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"vLLM did not answer within {VLLM_START_SECONDS} s; log: {log_path}")
            time.sleep(1)
        _warm_up(base, name)
        yield f"{base}/v1"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


@pytest.fixture(scope="session")
def vllm_url(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real vLLM server serving the tiny chat model as "tiny"."""
    with _vllm_server(tiny_model, "tiny", tmp_path_factory.mktemp("vllm-tiny")) as url:
        yield url


@pytest.fixture(scope="session")
def vllm_arith_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real vLLM server serving the committed embedded arith policy as "arith-policy"."""
    from ponder.models import embedded_policy

    folder = embedded_policy()
    with _vllm_server(folder, "arith-policy", tmp_path_factory.mktemp("vllm-arith")) as url:
        yield url


@pytest.fixture(scope="session")
def vllm_verifier_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real vLLM server serving the committed embedded arith verifier as "arith-verifier"."""
    from ponder.models import embedded_verifier

    folder, name = embedded_verifier(), "arith-verifier"
    with _vllm_server(folder, name, tmp_path_factory.mktemp("vllm-verifier")) as url:
        yield url


def _warm_up(base: str, name: str) -> None:
    """The first request asking for logprobs is slow once; pay that outside the tests."""
    import json

    body = json.dumps({"model": name, "prompt": "a", "max_tokens": 2, "logprobs": 1}).encode()
    request = urllib.request.Request(
        f"{base}/v1/completions", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120):
        pass


@pytest.fixture(scope="session")
def ponder_cli() -> list[str]:
    """The command that runs ponder's CLI in a fresh process, as a user would."""
    return [sys.executable, "-m", "ponder.cli"]
