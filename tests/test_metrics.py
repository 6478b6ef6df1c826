"""The receiver's metrics (service/metrics.py) and their bounded labels, from the outside."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from service.bigcommerce.webhook_scopes import STORE_SCOPES, family_of
from service.metrics import CallbackMetrics, EdgeMetrics, multiprocess_directory
from tests.helpers import encode, envelope, signed


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.parametrize(
    ("scope", "family"),
    [
        ("store/order/statusUpdated", "order"),
        ("store/cart/lineItem/added", "cart"),
        ("store/product/inventory/order/updated", "product"),
        ("store/channel/1/order/created", "channel"),
        ("store/made-up-12345/x", "other"),
        ("store/", "other"),
        ("other/order/created", "other"),
    ],
)
def test_scope_families_are_documented_ones_or_other(scope: str, family: str) -> None:
    assert family_of(scope) == family


def test_families_are_few() -> None:
    assert len({family_of(scope) for scope in STORE_SCOPES}) < 25


def test_counts_wait_in_integers_until_the_flush() -> None:
    metrics = EdgeMetrics()

    async def answer_three() -> tuple[bytes, bytes]:
        metrics.callbacks.acknowledged("accepted", 0.002)
        metrics.callbacks.acknowledged("duplicate", 0.3)
        metrics.callbacks.count("signature_mismatch")
        before = metrics.exposition()  # what another process would see: nothing yet
        await asyncio.sleep(metrics.callbacks.flush_seconds * 3)
        return before, metrics.exposition()

    before, after = asyncio.run(answer_three())
    assert ("bcwebhooks_callbacks_total", (("outcome", "accepted"),)) not in samples(before.decode())
    found = samples(after.decode())
    assert found[("bcwebhooks_callbacks_total", (("outcome", "accepted"),))] == 1
    assert found[("bcwebhooks_callbacks_total", (("outcome", "duplicate"),))] == 1
    assert found[("bcwebhooks_callbacks_total", (("outcome", "signature_mismatch"),))] == 1
    assert found[("bcwebhooks_ack_seconds_bucket", (("le", "0.0025"),))] == 1
    assert found[("bcwebhooks_ack_seconds_bucket", (("le", "0.25"),))] == 1
    assert found[("bcwebhooks_ack_seconds_bucket", (("le", "0.5"),))] == 2
    assert found[("bcwebhooks_ack_seconds_count", ())] == 2
    assert found[("bcwebhooks_ack_seconds_sum", ())] == pytest.approx(0.302)


def test_without_an_event_loop_counts_go_straight_through() -> None:
    metrics = CallbackMetrics(CollectorRegistry())
    metrics.count("wrong_store")
    assert metrics.callbacks.labels("wrong_store")._value.get() == 1


def test_metrics_endpoint_counts_what_the_receiver_answered(client: TestClient) -> None:
    raw = encode(envelope())
    headers = signed(raw, webhook_id="msg_metrics")
    assert client.post("/webhooks/bigcommerce", content=raw, headers=headers).status_code == 200
    assert client.post("/webhooks/bigcommerce", content=raw, headers=headers).status_code == 200
    assert client.post("/webhooks/bigcommerce", content=b"{}", headers=headers).status_code == 401
    page = client.get("/metrics")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/plain")
    found = samples(page.text)
    counted = {
        labels[0][1]: n for (name, labels), n in found.items() if name == "bcwebhooks_callbacks_total" and n
    }
    assert counted == {"accepted": 1, "duplicate": 1, "signature_mismatch": 1}
    assert found[("bcwebhooks_ack_seconds_count", ())] == 2


def test_a_given_multiprocess_directory_is_emptied_of_old_files_and_kept(tmp_path: Path) -> None:
    given = tmp_path / "prom"
    given.mkdir()
    (given / "counter_123.db").write_bytes(b"old")
    (given / "notes.txt").write_text("mine")
    with multiprocess_directory({"PROMETHEUS_MULTIPROC_DIR": str(given)}) as directory:
        assert directory == str(given)
        assert sorted(p.name for p in given.iterdir()) == ["notes.txt"]
    assert given.exists()


@pytest.mark.parametrize("environ", [{}, {"PROMETHEUS_MULTIPROC_DIR": "  "}])
def test_without_one_a_temporary_directory_is_made_and_removed(environ: dict[str, str]) -> None:
    with multiprocess_directory(environ) as directory:
        assert Path(directory).is_dir()
    assert not Path(directory).exists()
