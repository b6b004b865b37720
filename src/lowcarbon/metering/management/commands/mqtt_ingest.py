"""`lowcarbon mqtt-ingest`: subscribe to meter gateways on an MQTT broker and ingest their readings.

Each message is a JSON object (one reading), a list of readings or {"readings": [...]}. Messages are buffered and
ingested together every --batch-seconds through the one ingest service (as a trusted system door). The session is
persistent (MQTT 3.1.1, clean_session=False) and messages are acknowledged by hand only after the batch holding
them is committed: if the process dies first, the broker delivers them again, and readings already stored count as
identical duplicates. A payload that cannot be read is quarantined with its text, never dropped.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import paho.mqtt.client as mqtt
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils.translation import gettext as _

from lowcarbon.core.domain.text import storable
from lowcarbon.metering.domain.validate import UNPARSEABLE_FIELD, RawRow
from lowcarbon.metering.models import IngestBatch, QuarantinedRow
from lowcarbon.metering.parsers import iter_records
from lowcarbon.metering.services import do_ingest

#: mosquitto sends at most 20 unacknowledged QoS 1 messages to a client (max_inflight_messages); a batch is
#: ingested as soon as it holds this many messages, so the broker is never left waiting for --batch-seconds
DEFAULT_FLUSH_MESSAGES = 20


@dataclass(frozen=True)
class _Message:
    mid: int
    qos: int
    topic: str
    payload: bytes


def split_payload(payload: bytes) -> tuple[list[Any] | None, str]:
    """The readings of one payload: a JSON object (one reading), a list of readings or {"readings": [...]}.
    Returns (records, "") or (None, why the payload cannot be read)."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return None, "payload is not UTF-8 text"
    try:
        data = json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        return None, f"payload is not JSON: {exc}"
    if isinstance(data, dict):
        if "readings" in data:
            readings = data["readings"]
            if isinstance(readings, list):
                return readings, ""
            return None, '"readings" is not a list'
        return [data], ""
    if isinstance(data, list):
        return data, ""
    return None, "payload is neither a reading object nor a list of readings"


def _payload_text(payload: bytes) -> str:
    return payload.decode("utf-8", errors="backslashreplace")


class Command(BaseCommand):
    help = (
        "Ingest meter readings from an MQTT broker (persistent session, QoS 1, acknowledged after commit). "
        'Each message is a JSON reading, a list of readings or {"readings": [...]}.'
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="broker host (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=1883, help="broker port (default 1883)")
        parser.add_argument(
            "--topic", default="lowcarbon/readings/#", help="topic filter (default lowcarbon/readings/#)"
        )
        parser.add_argument(
            "--client-id",
            default="lowcarbon-ingest",
            help="client id; the broker keeps the session (and unacknowledged messages) under it",
        )
        parser.add_argument(
            "--batch-seconds",
            type=float,
            default=2.0,
            help="ingest buffered messages every S seconds (default 2)",
        )
        parser.add_argument(
            "--flush-messages",
            type=int,
            default=DEFAULT_FLUSH_MESSAGES,
            metavar="N",
            help=f"ingest at once when N messages are buffered (default {DEFAULT_FLUSH_MESSAGES})",
        )
        parser.add_argument(
            "--max-messages", type=int, default=None, metavar="N", help="stop after N messages are ingested"
        )
        parser.add_argument(
            "--exit-after-idle",
            type=float,
            default=None,
            metavar="S",
            help="stop when no message has arrived for S seconds",
        )

    # ---- state -------------------------------------------------------------------------------------------------

    def _reset(self, options: dict[str, Any]) -> None:
        self.opts = options
        self.buffer: list[_Message] = []
        self.buffer_since = 0.0
        self.received = 0
        self.batches = 0
        self.subscribed = False
        self.connected = False
        self.fatal = ""
        self.stop_requested = False
        self.last_activity = time.monotonic()

    # ---- MQTT callbacks (run inside client.loop, in this command's thread) ------------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        if reason_code.is_failure:
            self.fatal = _("The broker refused the connection: %(reason)s") % {"reason": reason_code}
            return
        self.connected = True
        present = getattr(flags, "session_present", False)
        self.stdout.write(
            _("Connected to %(host)s:%(port)s as %(client)s (stored session: %(present)s).")
            % {
                "host": self.opts["host"],
                "port": self.opts["port"],
                "client": self.opts["client_id"],
                "present": _("yes") if present else _("no"),
            }
        )
        client.subscribe(self.opts["topic"], qos=1)

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: list[Any], properties: Any
    ) -> None:
        if any(rc.is_failure for rc in reason_codes):
            self.fatal = _("The broker refused the subscription to %(topic)s.") % {
                "topic": self.opts["topic"]
            }
            return
        self.subscribed = True
        self.last_activity = time.monotonic()
        self.stdout.write(_("Subscribed to %(topic)s with QoS 1.") % {"topic": self.opts["topic"]})

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        limit = self.opts["max_messages"]
        if limit is not None and self.received >= limit:
            return  # not acknowledged: the broker keeps it for the next run
        if not self.buffer:
            self.buffer_since = time.monotonic()
        self.buffer.append(_Message(message.mid, message.qos, message.topic, bytes(message.payload)))
        self.received += 1
        self.last_activity = time.monotonic()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        self.connected = False
        self.subscribed = False

    # ---- ingest ----------------------------------------------------------------------------------------------

    def _flush(self, client: mqtt.Client, *, acknowledge: bool = True) -> None:
        """Ingest the buffered messages as one batch, then (only then) acknowledge them."""
        messages, self.buffer = self.buffer, []
        rows: list[RawRow] = []
        unreadable: list[tuple[int, _Message, str]] = []
        n = 0
        for m in messages:
            records, why = split_payload(m.payload)
            if records is None:
                n += 1
                unreadable.append((n, m, why))
                continue
            for row in iter_records(records):
                n += 1
                rows.append(replace(row, row_number=n))
        o = self.opts
        batch = do_ingest(
            rows,
            source=IngestBatch.Source.MQTT,
            filename=f"mqtt://{o['host']}:{o['port']}/{o['topic']}",
            user=None,
        )
        if unreadable:
            batch = _quarantine_payloads(batch, unreadable)
        # committed: now the broker may forget these messages
        if acknowledge:
            for m in messages:
                client.ack(m.mid, m.qos)
        self.batches += 1
        self.last_activity = time.monotonic()
        reasons = ", ".join(f"{code} {count}" for code, count in sorted(batch.rejected_by_reason.items()))
        line = _(
            "batch #%(batch)d: %(messages)d messages, %(rows)d rows: accepted %(accepted)d, "
            "identical duplicates %(duplicates)d, rejected %(rejected)d"
        ) % {
            "batch": batch.pk,
            "messages": len(messages),
            "rows": batch.rows_total,
            "accepted": batch.rows_accepted,
            "duplicates": batch.rows_duplicate,
            "rejected": batch.rows_rejected,
        }
        self.stdout.write(line + (f" ({reasons})" if reasons else ""))

    # ---- main loop -------------------------------------------------------------------------------------------

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_seconds"] <= 0:
            raise CommandError(_("--batch-seconds must be positive."))
        if options["flush_messages"] < 1:
            raise CommandError(_("--flush-messages must be at least 1."))
        if options["max_messages"] is not None and options["max_messages"] < 1:
            raise CommandError(_("--max-messages must be at least 1."))
        self._reset(options)
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=options["client_id"],
            clean_session=False,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        try:
            client.connect(options["host"], options["port"], keepalive=30)
        except OSError as exc:
            raise CommandError(
                _("Cannot connect to the MQTT broker at %(host)s:%(port)s: %(error)s")
                % {"host": options["host"], "port": options["port"], "error": exc}
            )
        restore = self._install_signal_handlers()
        try:
            self._run(client)
        finally:
            restore()
            self._disconnect(client)
        if self.fatal:
            raise CommandError(self.fatal)
        self.stdout.write(
            _("Stopped after %(messages)d messages in %(batches)d batches.")
            % {"messages": self.received, "batches": self.batches}
        )

    def _run(self, client: mqtt.Client) -> None:
        o = self.opts
        next_reconnect = 0.0
        while not self.fatal:
            rc = client.loop(timeout=0.1)
            now = time.monotonic()
            if rc != mqtt.MQTT_ERR_SUCCESS:
                if self.buffer:
                    # the broker will deliver these again; store them now anyway (re-sent ones are duplicates)
                    self._flush(client, acknowledge=False)
                if now >= next_reconnect:
                    self.stdout.write(_("Connection to the broker lost; reconnecting."))
                    next_reconnect = now + 2.0
                    with contextlib.suppress(OSError):
                        client.reconnect()
            limit_reached = o["max_messages"] is not None and self.received >= o["max_messages"]
            if self.buffer and (
                now - self.buffer_since >= o["batch_seconds"]
                or len(self.buffer) >= o["flush_messages"]
                or limit_reached
                or self.stop_requested
            ):
                self._flush(client)
            if self.buffer:
                continue
            if limit_reached or self.stop_requested:
                break
            idle = o["exit_after_idle"]
            if (
                idle is not None
                and (self.subscribed or not self.connected)
                and now - self.last_activity >= idle
            ):
                break

    def _disconnect(self, client: mqtt.Client) -> None:
        """Send the outstanding acknowledgements, then disconnect cleanly (the session stays on the broker)."""
        if not client.is_connected():
            return
        client.disconnect()
        deadline = time.monotonic() + 5
        while client.is_connected() and time.monotonic() < deadline:
            if client.loop(timeout=0.1) != mqtt.MQTT_ERR_SUCCESS:
                break

    def _install_signal_handlers(self):  # type: ignore[no-untyped-def]
        """SIGTERM/SIGINT end the run after the current batch (only possible in the main thread)."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def request_stop(signum: int, frame: Any) -> None:
            self.stop_requested = True

        old = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}

        def restore() -> None:
            for sig, handler in old.items():
                signal.signal(sig, handler)

        return restore


def _quarantine_payloads(batch: IngestBatch, unreadable: list[tuple[int, _Message, str]]) -> IngestBatch:
    """Quarantine payloads that are not readings (reason unparseable_field, with their text) in the batch."""
    with transaction.atomic():
        batch = IngestBatch.objects.select_for_update().get(pk=batch.pk)
        QuarantinedRow.objects.bulk_create(
            [
                QuarantinedRow(
                    batch=batch,
                    row_number=n,
                    reason=UNPARSEABLE_FIELD,
                    field="payload",
                    detail=storable(f"{m.topic}: {why}")[:300],
                    raw=storable(_payload_text(m.payload)),
                )
                for n, m, why in unreadable
            ]
        )
        reasons = dict(batch.rejected_by_reason or {})
        reasons[UNPARSEABLE_FIELD] = reasons.get(UNPARSEABLE_FIELD, 0) + len(unreadable)
        batch.rejected_by_reason = dict(sorted(reasons.items()))
        batch.rows_total += len(unreadable)
        batch.rows_rejected += len(unreadable)
        batch.save(update_fields=["rejected_by_reason", "rows_total", "rows_rejected"])
    return batch
