"""Fixtures for every folder of tests: real S3 API servers (moto's server mode) on loopback, and sessions
ready to push."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

S3_REGION = "us-east-1"
ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


@dataclass
class S3Server:
    """moto's S3 API on ``url``, checking every request's signature: only ``access_key_id`` and
    ``secret_access_key`` (an IAM user's, allowed everything) are accepted."""

    url: str
    access_key_id: str
    secret_access_key: str
    nowhere: Path  # a path that does not exist, for the AWS config files
    process: subprocess.Popen

    def env(self, **changes: str) -> dict[str, str]:
        """The environment that gives a process this server's credentials through the standard AWS chain,
        and nothing else from this machine's (no ~/.aws files, no instance metadata)."""
        return {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
                "AWS_SESSION_TOKEN": "", "AWS_DEFAULT_REGION": S3_REGION,
                "AWS_SHARED_CREDENTIALS_FILE": str(self.nowhere), "AWS_CONFIG_FILE": str(self.nowhere),
                "AWS_EC2_METADATA_DISABLED": "true", **changes}

    def client(self, service: str = "s3") -> Any:
        import boto3

        return boto3.session.Session().client(
            service, endpoint_url=self.url, region_name=S3_REGION, aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key)

    def new_bucket(self) -> str:
        name = f"rewards-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_s3_server(folder: Path) -> S3Server:
    """moto's server mode in a child process on a free loopback port. It starts open
    (INITIAL_NO_AUTH_ACTION_COUNT is infinite), so an IAM user with an access key is made; then
    ``/moto-api/reset-auth`` with 0 turns authentication on: from then on unknown keys get
    InvalidAccessKeyId and wrong secrets SignatureDoesNotMatch, as on AWS."""
    import boto3

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    output = folder / f"moto-{port}.log"
    with output.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise AssertionError(f"moto exited: {output.read_text()}")
        try:
            if httpx.get(f"{url}/moto-api/", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"moto did not start: {output.read_text()}")
        time.sleep(0.05)
    iam = boto3.session.Session().client("iam", endpoint_url=url, region_name=S3_REGION,
                                         aws_access_key_id="setup", aws_secret_access_key="setup")
    iam.create_user(UserName="rewards")
    iam.put_user_policy(UserName="rewards", PolicyName="all", PolicyDocument=json.dumps(ALLOW_ALL))
    key = iam.create_access_key(UserName="rewards")["AccessKey"]
    httpx.post(f"{url}/moto-api/reset-auth", content=b"0").raise_for_status()
    return S3Server(url, key["AccessKeyId"], key["SecretAccessKey"], folder / "nowhere", process)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One S3 server for the whole run (each test makes buckets of its own). The AWS variables of the
    machine running the tests are removed meanwhile, so that nothing reaches real AWS by accident."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [name for name in os.environ if name.startswith("AWS_")]:
            patch.delenv(name)
        running = start_s3_server(tmp_path_factory.mktemp("moto"))
        yield running
        running.stop()


@pytest.fixture
def launch_s3(s3_server: S3Server, tmp_path: Path) -> Iterator[Callable[[], S3Server]]:
    """Start S3 servers of a test's own (to revoke their keys or stop them); each is stopped after it.
    (``s3_server`` first: it clears this machine's AWS variables.)"""
    started: list[S3Server] = []

    def launch() -> S3Server:
        started.append(start_s3_server(tmp_path))
        return started[-1]

    yield launch
    for running in started:
        running.stop()


@pytest.fixture
def evaluated_session() -> Any:
    """``make(store, session_id, record=..., laps=..., progress=..., trials=...)``: a session with an
    untrained model.pth (a real Q-network's weights) and evaluation_metrics.json as an evaluation of it on
    the evaluation track would leave them; ``record=None`` leaves it unevaluated."""
    import io

    import torch

    from rewards_api.agents.dqn import QNetwork
    from rewards_api.params import AgentParams
    from rewards_api.store import SessionStore, atomic_write_bytes

    def make(store: SessionStore, session_id: str, record: float | None = 100.0, laps: int = 1,
             progress: float = 50.0, trials: int = 5) -> None:
        if not store.exists(session_id):
            store.create(session_id)
        agent = AgentParams()
        store.write_agent_params(session_id, agent)
        weights = io.BytesIO()
        torch.save(QNetwork(agent.config().layers).state_dict(), weights)
        atomic_write_bytes(store.paths(session_id).model, weights.getvalue())
        if record is not None:
            metrics = {"num_trials": trials, "record": record, "mean_score": record / 2,
                       "laps_completed": laps, "mean_progress": progress, "total_elapsed_time": 0.5}
            store.update(session_id, "evaluation_metrics",
                         lambda document: document.setdefault("evaluation", {}).update({"1": metrics}))

    return make
