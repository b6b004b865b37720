"""MQTT ingest while the broker restarts: a private Mosquitto with persistence, `lowcarbon mqtt-ingest` running as
its own process (QoS 1, persistent session), a gateway publishing readings with QoS 1 that re-sends what the broker
had not acknowledged (and, unsure, a few it had). The broker is stopped in the middle and started again on the same
port. Every reading ends up stored exactly once: none lost, none counted twice in the rollups.

Needs the mosquitto binary; skipped otherwise."""

from __future__ import annotations

import getpass
import json
import shutil
import signal
import socket
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from django.utils import translation
from django.utils.translation import gettext as _

pytestmark = [pytest.mark.mqtt, pytest.mark.integration]

MOSQUITTO = "/usr/sbin/mosquitto"
N = 300
SERIAL = "REL-MQTT-1"
TOPIC = "lowcarbon-test/reliability/readings"


def _binary() -> str:
    found = MOSQUITTO if Path(MOSQUITTO).exists() else shutil.which("mosquitto")
    if found is None:
        pytest.skip("mosquitto is not installed: the broker-restart test needs its own broker to restart")
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Broker:
    """A Mosquitto that keeps sessions and queued QoS 1 messages across a restart (persistence on)."""

    def __init__(self, binary: str, where: Path) -> None:
        self.binary = binary
        self.port = _free_port()
        self.conf = where / "mosquitto.conf"
        # run as whoever starts it (started as root, mosquitto would switch to a user who cannot write here)
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\nuser {getpass.getuser()}\n"
            f"persistence true\npersistence_location {where}/\nautosave_interval 1\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while not _reachable(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                self.stop()
                pytest.skip(f"mosquitto did not start on 127.0.0.1:{self.port}: {err.strip()[:300]}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop it as a service manager does (SIGTERM): it writes its persistence file on the way out."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class Lines:
    """A process's output, read as it comes."""

    def __init__(self, stream) -> None:  # type: ignore[no-untyped-def]
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            self.lines.append(line)

    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, needle: str, proc, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            assert proc.poll() is None and time.monotonic() < deadline, self.text()
            time.sleep(0.05)


def _reading(i: int) -> dict[str, str]:
    ts = datetime(2025, 2, 1, 1, tzinfo=UTC) + timedelta(hours=i)
    return {
        "meter_serial": SERIAL,
        "timestamp": ts.isoformat(),
        "energy": str(Decimal(i % 23) / 4),
        "unit": "kWh",
    }


def _key(ts: object) -> str:
    """A stored time as UTC text, whichever driver read it."""
    if isinstance(ts, datetime):
        return ts.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
    return str(ts)


def _dec(v: object) -> Decimal:
    return Decimal(str(v)).quantize(Decimal("0.0001"))


def test_every_reading_stored_exactly_once_across_a_broker_restart(scratch, tmp_path):  # type: ignore[no-untyped-def]
    broker = Broker(_binary(), tmp_path)
    broker.start()
    meter_id = scratch.child("meter", SERIAL)["meter"]
    ingest = scratch.popen(
        "mqtt-ingest", "--port", str(broker.port), "--topic", f"{TOPIC}/#", "--client-id", "rel-ingest",
        "--batch-seconds", "0.3",
    )  # fmt: skip
    out = Lines(ingest.stdout)
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="rel-gateway", clean_session=False)
    try:
        with translation.override("zh-hans"):
            subscribed = _("Subscribed to %(topic)s with QoS 1.") % {"topic": f"{TOPIC}/#"}
            lost = _("Connection to the broker lost; reconnecting.")
            resumed = _("Connected to %(host)s:%(port)s as %(client)s (stored session: %(present)s).") % {
                "host": "127.0.0.1",
                "port": broker.port,
                "client": "rel-ingest",
                "present": _("yes"),
            }
        out.wait_for(subscribed, ingest)

        publisher.reconnect_delay_set(min_delay=0.1, max_delay=1)
        acked: set[int] = set()  # message ids the broker acknowledged (PUBACK)
        publisher.on_publish = lambda client, userdata, mid, reason, properties: acked.add(mid)
        publisher.connect("127.0.0.1", broker.port)
        publisher.loop_start()
        sent: dict[int, list[tuple[int, float]]] = {}  # reading -> (message id, when) of each sending
        lock = threading.Lock()

        def send(i: int) -> None:
            info = publisher.publish(f"{TOPIC}/gw-1", json.dumps(_reading(i)), qos=1)
            with lock:
                sent.setdefault(i, []).append((info.mid, time.monotonic()))

        gateway = threading.Thread(
            target=lambda: [send(i) or time.sleep(0.01) for i in range(N)], daemon=True
        )
        gateway.start()

        # some readings stored, more on their way: restart the broker under them
        deadline = time.monotonic() + 60
        while len(sent) < N // 3 or not scratch.scalar(
            "SELECT count(*) FROM metering_reading WHERE meter_id = %s", (meter_id,)
        ):
            assert time.monotonic() < deadline, out.text()
            time.sleep(0.02)
        sent_before = len(sent)
        broker.stop()
        time.sleep(1.0)  # the gateway keeps publishing into its own queue; the ingest notices the loss
        broker.start()
        gateway.join(60)

        # the gateway re-sends (paho, on reconnecting) until the broker has acknowledged every reading, and sends
        # again itself whatever stays unacknowledged for long
        deadline = time.monotonic() + 90
        while True:
            with lock:
                missing = [i for i in range(N) if not any(mid in acked for mid, _t in sent[i])]
                stale = [i for i in missing if time.monotonic() - sent[i][-1][1] > 10]
            if not missing:
                break
            assert time.monotonic() < deadline, (len(missing), out.text())
            for i in stale:
                send(i)
            time.sleep(0.2)
        # an unsure gateway re-sends what it published just before the restart
        for i in range(sent_before - 10, sent_before):
            publisher.publish(f"{TOPIC}/gw-1", json.dumps(_reading(i)), qos=1).wait_for_publish(timeout=30)

        deadline = time.monotonic() + 60
        while (
            scratch.scalar("SELECT count(*) FROM metering_reading WHERE meter_id = %s", (meter_id,)) < N
            or scratch.scalar("SELECT sum(rows_duplicate) FROM metering_ingestbatch WHERE source = 'mqtt'")
            < 10
        ):
            assert ingest.poll() is None and time.monotonic() < deadline, out.text()
            time.sleep(0.1)
        time.sleep(0.5)
        ingest.send_signal(signal.SIGTERM)  # stops after the current batch
        assert ingest.wait(30) == 0, out.text() + ingest.stderr.read()
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        if ingest.poll() is None:
            ingest.kill()
            ingest.wait()
        broker.stop()

    # the ingest did lose its broker in the middle, and found its session again on the restarted broker
    assert lost in out.text() and resumed in out.text().split(lost, 1)[1], out.text()
    expected = {
        _key(datetime.fromisoformat(r["timestamp"])): _dec(r["energy"]) for r in map(_reading, range(N))
    }
    stored = scratch.query("SELECT ts, energy FROM metering_reading WHERE meter_id = %s", (meter_id,))
    assert len(stored) == N
    assert {_key(ts): _dec(e) for ts, e in stored} == expected
    accepted, rejected, duplicates = scratch.query(
        "SELECT sum(rows_accepted), sum(rows_rejected), sum(rows_duplicate) FROM metering_ingestbatch "
        "WHERE source = 'mqtt'"
    )[0]
    assert (accepted, rejected) == (N, 0) and duplicates >= 10
    total = sum(expected.values())
    daily = scratch.query(
        "SELECT energy, n_readings FROM metering_dailyrollup WHERE meter_id = %s", (meter_id,)
    )
    assert sum(_dec(e) for e, _n in daily) == total and sum(n for _e, n in daily) == N
    monthly = scratch.query(
        "SELECT energy, n_readings FROM metering_monthlyrollup WHERE meter_id = %s", (meter_id,)
    )
    assert sum(_dec(e) for e, _n in monthly) == total and sum(n for _e, n in monthly) == N
