"""The MQTT door: a private Mosquitto broker, readings published with QoS 1, the mqtt-ingest command in a thread.

Needs /usr/sbin/mosquitto (started on a free loopback port) or a broker on 127.0.0.1:1883; skipped otherwise."""

from __future__ import annotations

import io
import json
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from django.core.management import CommandError, call_command
from django.db import connections

from lowcarbon.metering.management.commands import mqtt_ingest
from lowcarbon.metering.models import IngestBatch, Meter, QuarantinedRow, Reading
from tests.factories import make_system, make_user

pytestmark = [pytest.mark.mqtt, pytest.mark.integration]

MOSQUITTO = "/usr/sbin/mosquitto"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _reachable(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A private Mosquitto on a free loopback port, or the one on 127.0.0.1:1883."""
    binary = MOSQUITTO if Path(MOSQUITTO).exists() else shutil.which("mosquitto")
    if binary is None:
        if _reachable(1883):
            yield ("127.0.0.1", 1883)
            return
        pytest.skip("no MQTT broker: install mosquitto (/usr/sbin/mosquitto) or run one on 127.0.0.1:1883")
    port = _free_port()
    conf = tmp_path_factory.mktemp("mosquitto") / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen(
        [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 10
        while not _reachable(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                pytest.skip(f"mosquitto did not start on 127.0.0.1:{port}: {err.strip()[:300]}")
            time.sleep(0.05)
        yield ("127.0.0.1", port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def publish(broker: tuple[str, int], topic: str, payloads: list[bytes | str]) -> None:
    """Publish each payload with QoS 1 and wait until the broker has acknowledged it."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-pub-{uuid.uuid4().hex[:8]}")
    client.connect(*broker)
    client.loop_start()
    try:
        infos = [client.publish(topic, p, qos=1) for p in payloads]
        for info in infos:
            info.wait_for_publish(timeout=10)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


class CommandRun:
    """mqtt-ingest in a thread (it uses its own database connection), with its output and error."""

    def __init__(self, broker: tuple[str, int], topic: str, client_id: str, *args: str) -> None:
        self.out = io.StringIO()
        self.error: BaseException | None = None
        argv = [
            "--host", broker[0], "--port", str(broker[1]), "--topic", topic, "--client-id", client_id,
            "--batch-seconds", "0.3", *args,
        ]  # fmt: skip
        self.thread = threading.Thread(target=self._run, args=(argv,), daemon=True)
        self.thread.start()

    def _run(self, argv: list[str]) -> None:
        try:
            call_command("mqtt_ingest", *argv, stdout=self.out)
        except BaseException as exc:  # reported by join()
            self.error = exc
        finally:
            connections.close_all()

    def wait_subscribed(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while "QoS 1" not in self.out.getvalue():
            assert self.thread.is_alive() and time.monotonic() < deadline, self.out.getvalue()
            time.sleep(0.02)

    def join(self, timeout: float = 60) -> str:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "mqtt-ingest did not stop by itself"
        if self.error is not None:
            raise self.error
        return self.out.getvalue()


def reading(serial: str, hour: int, energy: str) -> dict[str, Any]:
    return {
        "meter_serial": serial,
        "timestamp": f"2024-06-01T{hour:02d}:00:00",
        "energy": energy,
        "unit": "kWh",
    }


@pytest.fixture
def names() -> tuple[str, str]:
    """A topic and client id of their own, so a shared broker's other traffic and sessions do not interfere."""
    tag = uuid.uuid4().hex[:10]
    return f"lowcarbon-test/{tag}/readings", f"lowcarbon-test-{tag}"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_readings_stored_once_and_bad_payload_quarantined(broker, names):  # type: ignore[no-untyped-def]
    topic, client_id = names
    owner = make_user("owner_household")
    system = make_system(owner)
    serial = Meter.objects.get(subject_kind="pv_system", subject_id=system.pk).serial
    good = [
        json.dumps(reading(serial, 9, "1.25")),  # one reading
        json.dumps([reading(serial, 10, "2.5"), reading(serial, 11, "3.75")]),  # a list
        json.dumps(
            {"readings": [reading(serial, 12, "4.5"), reading(serial, 13, "5")]}
        ),  # {"readings": [...]}
    ]
    bad = "{not json, meter 42"

    # a first, empty run creates the persistent session: what is published while the command is away is kept
    call_command(
        "mqtt_ingest", "--host", broker[0], "--port", str(broker[1]), "--topic", f"{topic}/#",
        "--client-id", client_id, "--exit-after-idle", "0.3", stdout=io.StringIO(),
    )  # fmt: skip
    publish(broker, f"{topic}/gw-1", [*good[:2], bad])

    run = CommandRun(broker, f"{topic}/#", client_id, "--max-messages", "4", "--exit-after-idle", "20")
    run.wait_subscribed()
    publish(broker, f"{topic}/gw-2", good[2:])  # and one while it runs
    out = run.join()

    expected = {
        datetime(2024, 6, 1, h - 8, tzinfo=UTC): Decimal(e)
        for h, e in ((9, "1.25"), (10, "2.5"), (11, "3.75"), (12, "4.5"), (13, "5"))
    }
    meter_id = Meter.objects.get(serial=serial).pk
    assert dict(Reading.objects.filter(meter_id=meter_id).values_list("ts", "energy")) == expected
    batches = IngestBatch.objects.filter(source="mqtt")
    assert sum(b.rows_accepted for b in batches) == 5
    assert sum(b.rows_rejected for b in batches) == 1
    q = QuarantinedRow.objects.get(batch__source="mqtt")
    assert (q.reason, q.raw) == ("unparseable_field", bad)
    assert q.batch.rejected_by_reason == {"unparseable_field": 1}
    # the command reports in the default language, Chinese
    assert all(f"批次 #{b.pk}：" in out for b in batches)

    # the same readings again: identical duplicates, nothing new stored
    publish(broker, f"{topic}/gw-1", good)
    run = CommandRun(broker, f"{topic}/#", client_id, "--max-messages", "3", "--exit-after-idle", "20")
    run.join()
    assert Reading.objects.filter(meter_id=meter_id).count() == 5
    again = IngestBatch.objects.filter(source="mqtt").exclude(pk__in=[b.pk for b in batches])
    assert sum(b.rows_duplicate for b in again) == 5
    assert sum(b.rows_accepted + b.rows_rejected for b in again) == 0


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_message_not_acknowledged_when_its_batch_fails(broker, names, monkeypatch):  # type: ignore[no-untyped-def]
    topic, client_id = names
    owner = make_user("owner_household")
    system = make_system(owner)
    serial = Meter.objects.get(subject_kind="pv_system", subject_id=system.pk).serial
    args = ("--host", broker[0], "--port", str(broker[1]), "--topic", f"{topic}/#", "--client-id", client_id)
    call_command("mqtt_ingest", *args, "--exit-after-idle", "0.3", stdout=io.StringIO())
    publish(broker, f"{topic}/gw", [json.dumps(reading(serial, 10, "2.0"))])

    def crash(*a: Any, **k: Any) -> None:
        raise RuntimeError("database went away")

    with monkeypatch.context() as m:
        m.setattr(mqtt_ingest, "do_ingest", crash)
        with pytest.raises(RuntimeError, match="database went away"):
            call_command(
                "mqtt_ingest", *args, "--max-messages", "1", "--exit-after-idle", "20", stdout=io.StringIO()
            )
    assert not Reading.objects.exists()

    # the broker delivers the unacknowledged message again to the same session
    out = io.StringIO()
    call_command("mqtt_ingest", *args, "--max-messages", "1", "--exit-after-idle", "20", stdout=out)
    assert Reading.objects.count() == 1
    assert "已接收 1" in out.getvalue()


def test_broker_not_reachable_is_a_clear_error() -> None:
    port = _free_port()
    with pytest.raises(CommandError, match=f"127.0.0.1:{port}"):
        call_command("mqtt_ingest", "--port", str(port), "--exit-after-idle", "1", stdout=io.StringIO())


@pytest.mark.parametrize(
    ("payload", "count"),
    [
        (b'{"meter_serial": "M", "energy": 1.5}', 1),
        (b'[{"meter_serial": "M"}, {"meter_serial": "N"}]', 2),
        (b'{"readings": [{"meter_serial": "M"}]}', 1),
        (b"[]", 0),
    ],
)
def test_payload_shapes(payload: bytes, count: int) -> None:
    records, why = mqtt_ingest.split_payload(payload)
    assert records is not None and len(records) == count and why == ""


@pytest.mark.parametrize("payload", [b"{nope", b"\xff\xfe", b"42", b'"text"', b'{"readings": 3}'])
def test_unreadable_payloads(payload: bytes) -> None:
    records, why = mqtt_ingest.split_payload(payload)
    assert records is None and why
