"""A real mautrix-python AppService for tests/e2e/appservice.rs.

Started by the test with:
  python mautrix_as.py HS_URL PORT ID AS_TOKEN HS_TOKEN SENDER_LOCALPART [crypto]
("crypto": mautrix parses the MSC3202/MSC4203 fields, `encryption_events=True`).
Prints "READY" once listening, then one line per thing it sees on stdout:
  EVENT {json}   a timeline event received in a transaction (with the transaction id)
  EPHEMERAL {json}  an ephemeral event (typing, receipt) received in a transaction
  TODEVICE {json}   a to-device message (MSC4203), as parsed by mautrix
  DEVICELISTS {json}  device list changes (MSC3202), as parsed by mautrix
  OTK {json}     one-time key counts per user and device (MSC3202), as parsed by mautrix
  FALLBACK {json}  unused fallback key types per user and device (MSC3202)
  PING {json}    the homeserver pinged /_matrix/app/v1/ping
and answers JSON commands read from stdin, one per line, with "RESULT {json}":
  {"cmd": "ping", "txn_id": "..."}                       POST /appservice/{id}/ping
  {"cmd": "send", "user": "@x:y", "room": "!r", "text": "..."}
      register the namespace user if needed, join the room, send a text message as it
  {"cmd": "whoami", "user": "@x:y"}                      /account/whoami masquerading as user
  {"cmd": "register", "user": "@x:y"}                    m.login.application_service
"""

import asyncio
import json
import sys

from mautrix.appservice import AppService
from mautrix.appservice.state_store import ASStateStore
from mautrix.client.state_store import MemoryStateStore
from mautrix.errors import MatrixRequestError


class MemStore(ASStateStore, MemoryStateStore):
    """Nothing persisted between runs: the appservice's state lives in memory."""

    def __init__(self):
        ASStateStore.__init__(self)
        MemoryStateStore.__init__(self)


def out(kind, obj):
    sys.stdout.write(f"{kind} {json.dumps(obj)}\n")
    sys.stdout.flush()


class TestAppService(AppService):
    async def handle_transaction(self, txn_id, *, events, **kwargs):
        for raw in events:
            out("EVENT", {"txn_id": txn_id, "event": raw})
        for raw in kwargs.get("ephemeral") or []:
            out("EPHEMERAL", {"txn_id": txn_id, "event": raw})
        for raw in kwargs.get("to_device") or []:
            out("TODEVICE", {"txn_id": txn_id, "event": raw})
        lists = kwargs.get("device_lists")
        if lists:
            out("DEVICELISTS", {"txn_id": txn_id, "lists": lists.serialize()})
        counts = kwargs.get("otk_counts") or {}
        if counts:
            out("OTK", {"txn_id": txn_id, "counts": {
                u: {d: c.serialize() for d, c in devs.items()} for u, devs in counts.items()}})
        fallback = (kwargs.get("extra_data") or {}).get(
            "org.matrix.msc3202.device_unused_fallback_key_types")
        if fallback:
            out("FALLBACK", {"txn_id": txn_id, "types": fallback})
        return await super().handle_transaction(txn_id, events=[], **kwargs)

    async def _http_ping(self, request):
        body = await request.json()
        out("PING", {"transaction_id": body.get("transaction_id"),
                     "authorization": request.headers.get("Authorization", "")
                     == f"Bearer {self.hs_token}"})
        return await super()._http_ping(request)


def error_of(e):
    return {"ok": False, "status": e.http_status, "errcode": getattr(e, "errcode", None),
            "message": getattr(e, "message", str(e))}


async def run_command(az, cmd):
    name = cmd["cmd"]
    try:
        if name == "ping":
            ms = await az.ping_self(cmd.get("txn_id"))
            return {"ok": True, "duration_ms": ms}
        intent = az.intent.user(cmd["user"])
        if name == "register":
            await intent.ensure_registered()
            return {"ok": True}
        if name == "whoami":
            who = await intent.whoami()
            return {"ok": True, "user_id": who.user_id}
        if name == "send":
            await intent.ensure_registered()
            await intent.ensure_joined(cmd["room"])
            event_id = await intent.send_text(cmd["room"], cmd["text"])
            return {"ok": True, "event_id": event_id}
        return {"ok": False, "message": f"unknown command {name}"}
    except MatrixRequestError as e:
        return error_of(e)


async def main():
    hs_url, port, as_id, as_token, hs_token, sender = sys.argv[1:7]
    crypto = sys.argv[7:8] == ["crypto"]
    az = TestAppService(server=hs_url, domain="localhost", id=as_id, as_token=as_token,
                        hs_token=hs_token, bot_localpart=sender, state_store=MemStore(),
                        ephemeral_events=True, encryption_events=crypto)
    await az.start(host="127.0.0.1", port=int(port))
    out("READY", {})
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        line = line.strip()
        if not line:
            continue
        out("RESULT", await run_command(az, json.loads(line)))
    await az.stop()


asyncio.run(main())
