"""API and worker processes apart: an ``--role api`` server takes the publish, a separate
``--role worker`` process on the same database delivers it."""

from __future__ import annotations

import httpx
import pytest

from pushgate.fakes.runner import FakeProviders
from tests.conftest import start_server, unique
from tests.integration.delivery_helpers import (
    FAST_ENGINE,
    apns_app,
    apns_token,
    endpoint,
    settled,
)


def test_a_worker_process_delivers_what_an_api_process_stored(
    database_url: str, fakes: FakeProviders, tmp_path_factory: pytest.TempPathFactory
) -> None:
    fakes.apns.reset()
    env = fakes.env() | FAST_ENGINE
    data = tmp_path_factory.mktemp("data")
    api = start_server(database_url, data, env | {"PUSHGATE_ROLE": "api"})
    try:
        sns = api.client()
        app = apns_app(sns, fakes)
        topic = sns.create_topic(Name=unique("roles"))["TopicArn"]
        tokens = [apns_token() for _ in range(20)]
        for token in tokens:
            sns.subscribe(
                TopicArn=topic, Protocol="application", Endpoint=endpoint(sns, app, token)
            )
        message_id = sns.publish(TopicArn=topic, Message="from the API process")["MessageId"]
        assert fakes.apns.received == []  # an API process never delivers

        worker = start_server(database_url, data, env | {"PUSHGATE_ROLE": "worker"})
        try:
            assert sorted(p.token for p in fakes.apns.wait_for(20)) == sorted(tokens)
            assert settled(api, message_id)["counts"]["sent"] == 20
            # A worker serves no SNS API.
            assert httpx.post(worker.url + "/", data={"Action": "ListTopics"}).status_code == 404
        finally:
            worker.stop()
    finally:
        api.stop()
