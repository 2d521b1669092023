"""EC2 fake for barman-rs tests: a recording proxy in front of moto's EC2, plus snapshot locks.

moto (``moto_server``, which serves S3 and EC2 on one port) implements every EC2 call Barman's
snapshot backups make except ``LockSnapshot`` (HTTP 500 ``NotImplementedError``). It also
completes snapshots at once, so the waiting, failure and throttling paths of a client cannot
be exercised against it. This fake sits in front of moto and forwards every request (method,
path, headers (less hop-by-hop ones, ``Expect`` and ``Accept-Encoding``), body) as it came,
except:

* ``LockSnapshot`` is answered here: the snapshot must exist (checked with a
  ``DescribeSnapshots`` forwarded to moto), the parameters are validated as the EC2 API
  reference describes them (``LockMode`` governance|compliance; exactly one of
  ``LockDuration`` (1-36500 days) and ``ExpirationDate`` (at least one day ahead);
  ``CoolOffPeriod`` (1-72 hours) only in compliance mode), and the lock is kept in memory.
  The answer is EC2's ``LockSnapshotResponse`` (snapshotId, lockState, lockDuration,
  coolOffPeriod, coolOffPeriodExpiresOn, lockCreatedOn, lockExpiresOn, lockDurationStartTime).
  Errors: ``MissingParameter``, ``InvalidParameterValue``, ``InvalidSnapshot.NotFound``.
  Re-locking follows the documented rules: a ``governance`` or ``compliance-cooloff`` lock may
  be changed freely, a ``compliance`` lock only extended (else ``InvalidParameterValue``).
* ``UnlockSnapshot`` removes a ``governance`` or ``compliance-cooloff`` lock (a ``compliance``
  lock after its cooling-off period cannot be removed: ``OperationNotPermitted``, a code this
  fake chose). Unlocking a snapshot that has no lock answers success.
* ``DeleteSnapshot`` of a snapshot whose lock has not expired answers ``SnapshotLocked``
  (HTTP 400), as EC2 does.
* Requests without an ``Authorization: AWS4-HMAC-SHA256 ...`` header answer HTTP 401
  ``AuthFailure`` (the signature itself is not checked: moto does not either).
* Behaviour injected per resource ID through the control API (below).

Every EC2 request is recorded: sequence number, time, Action, parameters (without the
``X-Amz-*`` signing parameters), the HTTP status answered, the User-Agent, and the resource
set it "concerns": every parameter value, plus the volume of every snapshot ID among them
(snapshot -> volume as moto's ``CreateSnapshot``/``DescribeSnapshots`` report it, asked of moto
when unknown), plus the snapshot a ``CreateSnapshot`` created.

Control API (no authentication; JSON in and out)::

    POST /_fake/volume/<id>   merge settings for resource <id> (a volume ID, or for
                              throttle_next any value a call may concern: an instance ID,
                              a Name tag value); a null value removes that setting
         {"pending_seconds": N}    DescribeSnapshots shows the volume's snapshots as
                                   "pending" with progress below 100% until N seconds after
                                   their CreateSnapshot answered (and CreateSnapshot answers
                                   "pending")
         {"snapshot_state": "error"}  after pending_seconds, DescribeSnapshots shows this state
                                   (with a statusMessage) instead of moto's "completed"
         {"create_state": "error"} the State in CreateSnapshot's own answer
         {"create_latency": N}     CreateSnapshot answers N seconds after moto did
         {"create_error": "Code"}  CreateSnapshot of the volume answers that EC2 error (HTTP 503
                                   for throttling/unavailable codes, 500 for internal errors,
                                   else 400) and creates nothing
         {"throttle_next": N}      the next N calls concerning <id> answer HTTP 503
                                   RequestLimitExceeded (counted down; decremented per call)
    GET  /_fake/volume/<id>   the settings of <id>
    GET  /_fake/calls         the recorded calls, oldest first; ?match=<value> (repeatable)
                              keeps the calls concerning one of the values; ?since=<seq>
                              keeps calls with a greater sequence number
    GET  /_fake/locks         {snapshot ID: lock} for every lock held
    DELETE /_fake/lock/<snap> drop a lock whatever its mode (test clean-up)
    POST /_fake/reset         forget every setting, lock and recorded call

Known gaps: filters of DescribeSnapshots (e.g. ``status``) are evaluated by moto on its own
state, not on the injected one; ``DescribeLockedSnapshots`` is not implemented (it reaches
moto, which answers HTTP 500); the lock duration starts at once even for a "pending" snapshot.

Usage (any Python 3.9+, standard library only; the tests use the moto venv's)::

    python tests/fakes/ec2_fake.py --upstream http://127.0.0.1:5000 [--host 127.0.0.1]
        [--port 0] [--port-file FILE]
    export AWS_ENDPOINT_URL_EC2=http://127.0.0.1:<port>

With ``--port 0`` a free port is chosen; the port is printed on stdout ("listening on
http://HOST:PORT") and, with ``--port-file``, written to FILE.
"""

import argparse
import http.client
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlencode, urlsplit
from xml.sax.saxutils import escape

logger = logging.getLogger("ec2_fake")

EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
API_VERSION = "2016-11-15"
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "content-length",
}
# Request headers not passed on: the body is already read (Expect), and answers are rewritten
# (Accept-Encoding: moto must not compress them).
NOT_FORWARDED = {"expect", "accept-encoding"}
# Answer headers this server writes itself.
OWN_HEADERS = {"server", "date"}
SETTINGS = {
    "pending_seconds": (int, float),
    "create_latency": (int, float),
    "snapshot_state": str,
    "create_state": str,
    "create_error": str,
    "throttle_next": int,
}
LOCK_MODES = ("governance", "compliance")
MAX_LOCK_DAYS = 36500
MAX_COOL_OFF_HOURS = 72
# Slack on "at least one day ahead", so that a client computing now + 1 day is not refused
# for the seconds its request took.
EXPIRATION_SLACK = timedelta(minutes=5)


class Ec2Error(Exception):
    """An EC2 error answer: ``<Response><Errors><Error>...`` with an HTTP status."""

    def __init__(self, code, message, status=HTTPStatus.BAD_REQUEST):
        super().__init__(code)
        self.code, self.message, self.status = code, message, status


def error_status(code):
    if code in ("RequestLimitExceeded", "Throttling", "Unavailable", "ServiceUnavailable"):
        return HTTPStatus.SERVICE_UNAVAILABLE
    if code in ("InternalError", "InternalFailure"):
        return HTTPStatus.INTERNAL_SERVER_ERROR
    if code == "AuthFailure":
        return HTTPStatus.UNAUTHORIZED
    if code == "UnauthorizedOperation":
        return HTTPStatus.FORBIDDEN
    return HTTPStatus.BAD_REQUEST


def utcnow():
    return datetime.now(timezone.utc)


def iso(ts):
    """EC2's timestamp form: 2026-01-02T03:04:05.123Z."""
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + "{:03d}Z".format(
        ts.microsecond // 1000)


def parse_iso(text):
    """An ISO 8601 UTC timestamp as clients send it (fraction and zone optional)."""
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]00:?00)?", text.strip())
    if not m:
        return None
    try:
        ts = datetime.strptime(m.group(1) + "T" + m.group(2), "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    frac = m.group(3)
    if frac:
        ts = ts.replace(microsecond=int((frac[1:] + "000000")[:6]))
    return ts.replace(tzinfo=timezone.utc)


def local(tag):
    """An element's tag without its namespace."""
    return tag.rpartition("}")[2]


def child_text(el, name):
    for c in el:
        if local(c.tag) == name:
            return c.text or ""
    return None


def set_child(el, name, value, after=None):
    """Sets (or adds, after the child named ``after`` when given) a text child."""
    ns = el.tag[:el.tag.index("}") + 1] if el.tag.startswith("{") else ""
    for c in el:
        if local(c.tag) == name:
            c.text = value
            return
    new = ET.Element(ns + name)
    new.text = value
    index = len(el)
    if after is not None:
        for i, c in enumerate(el):
            if local(c.tag) == after:
                index = i + 1
    el.insert(index, new)


class Lock:
    def __init__(self, snapshot_id, mode, duration, cool_off, expires, created):
        self.snapshot_id, self.mode, self.duration = snapshot_id, mode, duration
        self.cool_off, self.expires, self.created = cool_off, expires, created

    def cool_off_expires(self):
        if self.cool_off is None:
            return None
        return self.created + timedelta(hours=self.cool_off)

    def state(self, now):
        if now >= self.expires:
            return "expired"
        if self.mode == "governance":
            return "governance"
        cool = self.cool_off_expires()
        if cool is not None and now < cool:
            return "compliance-cooloff"
        return "compliance"

    def fields(self, now):
        """(name, value) pairs of the LockSnapshot answer, in the API's member order."""
        out = [("snapshotId", self.snapshot_id), ("lockState", self.state(now))]
        if self.duration is not None:
            out.append(("lockDuration", str(self.duration)))
        if self.cool_off is not None:
            out.append(("coolOffPeriod", str(self.cool_off)))
            out.append(("coolOffPeriodExpiresOn", iso(self.cool_off_expires())))
        out.append(("lockCreatedOn", iso(self.created)))
        out.append(("lockExpiresOn", iso(self.expires)))
        out.append(("lockDurationStartTime", iso(self.created)))
        return out

    def as_json(self, now):
        return dict(self.fields(now), lockMode=self.mode)


class State:
    """Everything the fake remembers; every access holds ``lock``."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.settings = {}          # resource ID -> {setting: value}
        self.locks = {}             # snapshot ID -> Lock
        self.calls = []             # recorded call dicts
        self.snapshot_volume = {}   # snapshot ID -> volume ID
        self.snapshot_created = {}  # snapshot ID -> time.time() of its CreateSnapshot answer
        self.seq = 0


class Ec2FakeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "barman-rs-ec2-fake"

    def log_message(self, fmt, *args):
        logger.info("%s %s", self.address_string(), fmt % args)

    # -- dispatch ---------------------------------------------------------------------------

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def do_HEAD(self):
        self.dispatch()

    def dispatch(self):
        self.body = self.read_body()
        url = urlsplit(self.path)
        try:
            if url.path.startswith("/_fake/"):
                return self.control(url)
            return self.ec2(url)
        except Exception as err:  # a bug in this fake: say so, keep serving
            logger.exception("%s %s failed", self.command, self.path)
            self.send_error_xml(Ec2Error("InternalError", "ec2_fake failed: {!r}".format(err),
                                         HTTPStatus.INTERNAL_SERVER_ERROR))

    @property
    def state(self):
        return self.server.state

    # -- request and response helpers --------------------------------------------------------

    def read_body(self):
        length = self.headers.get("Content-Length")
        if length is not None:
            return self.rfile.read(int(length))
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return b""

    def send_reply(self, status, body=b"", headers=()):
        self.send_response(int(status))
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, value, status=HTTPStatus.OK):
        self.send_reply(status, json.dumps(value, indent=1).encode(),
                        [("Content-Type", "application/json")])

    def send_xml(self, xml_text, status=HTTPStatus.OK):
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n' + xml_text).encode("utf-8")
        self.send_reply(status, body, [("Content-Type", "text/xml;charset=UTF-8")])

    def send_error_xml(self, err):
        self.status = int(err.status)
        self.send_xml(
            "<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors>"
            "<RequestID>{}</RequestID></Response>".format(
                escape(err.code), escape(err.message), uuid.uuid4()),
            err.status,
        )

    def send_result(self, action, fields):
        parts = ['<{}Response xmlns="{}">'.format(action, EC2_NS),
                 "<requestId>{}</requestId>".format(uuid.uuid4())]
        parts.extend("<{0}>{1}</{0}>".format(name, escape(value)) for name, value in fields)
        parts.append("</{}Response>".format(action))
        self.status = 200
        self.send_xml("".join(parts))

    # -- control API ---------------------------------------------------------------------------

    def control(self, url):
        parts = [unquote(p) for p in url.path.split("/")[2:]]
        query = parse_qs(url.query, keep_blank_values=True)
        st = self.state
        if parts == ["reset"] and self.command == "POST":
            with st.lock:
                st.reset()
            return self.send_json({})
        if parts == ["calls"] and self.command == "GET":
            match = set(query.get("match", []))
            since = int(query.get("since", ["0"])[-1] or 0)
            with st.lock:
                calls = [dict(c) for c in st.calls if c["seq"] > since and
                         (not match or match & set(c["resources"]))]
            return self.send_json(calls)
        if parts == ["locks"] and self.command == "GET":
            now = utcnow()
            with st.lock:
                locks = {k: v.as_json(now) for k, v in st.locks.items()}
            return self.send_json(locks)
        if len(parts) == 2 and parts[0] == "lock" and self.command == "DELETE":
            with st.lock:
                found = st.locks.pop(parts[1], None) is not None
            return self.send_json({"removed": found})
        if len(parts) == 2 and parts[0] == "volume" and parts[1]:
            key = parts[1]
            if self.command == "GET":
                with st.lock:
                    return self.send_json(dict(st.settings.get(key, {})))
            if self.command == "POST":
                try:
                    changes = json.loads(self.body or b"{}")
                    if not isinstance(changes, dict):
                        raise ValueError("a JSON object is expected")
                    for name, value in changes.items():
                        if name not in SETTINGS:
                            raise ValueError("unknown setting {!r} (known: {})".format(
                                name, ", ".join(sorted(SETTINGS))))
                        if value is not None and (isinstance(value, bool) or
                                                  not isinstance(value, SETTINGS[name])):
                            raise ValueError("bad value for {}: {!r}".format(name, value))
                except ValueError as err:
                    return self.send_json({"error": str(err)}, HTTPStatus.BAD_REQUEST)
                with st.lock:
                    current = st.settings.setdefault(key, {})
                    for name, value in changes.items():
                        if value is None:
                            current.pop(name, None)
                        else:
                            current[name] = value
                    result = dict(current)
                return self.send_json(result)
        return self.send_json({"error": "no such control route: {} {}".format(
            self.command, url.path)}, HTTPStatus.NOT_FOUND)

    # -- EC2 ------------------------------------------------------------------------------------

    def ec2(self, url):
        params = {}
        for source in (url.query, self.body.decode("utf-8", "replace")
                       if self.is_form() else ""):
            for name, values in parse_qs(source, keep_blank_values=True).items():
                params[name] = values[-1]
        params = {k: v for k, v in params.items() if not k.lower().startswith("x-amz-")}
        action = params.get("Action", "")
        self.status = None
        call = self.record(action, params)
        try:
            self.handle_action(action, params, call)
        except Ec2Error as err:
            self.send_error_xml(err)
        finally:
            with self.state.lock:
                call["status"] = self.status

    def is_form(self):
        ctype = self.headers.get("Content-Type", "")
        return ctype.startswith("application/x-www-form-urlencoded") or (
            not ctype and self.body[:7] == b"Action=")

    def record(self, action, params):
        resources = set(params.values())
        snapshots = [v for v in resources if v.startswith("snap-")]
        volumes = {}
        for snap in snapshots:
            volumes[snap] = self.volume_of(snap)
        resources.update(v for v in volumes.values() if v)
        st = self.state
        with st.lock:
            st.seq += 1
            call = {
                "seq": st.seq,
                "time": time.time(),
                "action": action,
                "params": params,
                "resources": sorted(resources),
                "status": None,
                "agent": self.headers.get("User-Agent", ""),
            }
            st.calls.append(call)
        return call

    def handle_action(self, action, params, call):
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            raise Ec2Error("AuthFailure", "AWS was not able to validate the provided access "
                           "credentials (ec2_fake: no AWS4-HMAC-SHA256 Authorization header).",
                           HTTPStatus.UNAUTHORIZED)
        self.throttle(call)
        if action == "LockSnapshot":
            return self.lock_snapshot(params)
        if action == "UnlockSnapshot":
            return self.unlock_snapshot(params)
        if action == "DeleteSnapshot":
            self.refuse_locked_delete(params.get("SnapshotId", ""))
        if action == "CreateSnapshot":
            return self.create_snapshot(params, call)
        status, headers, body = self.forward()
        if action == "DescribeSnapshots" and status == 200:
            body = self.rewrite_describe_snapshots(body)
        self.relay(status, headers, body)

    def settings_for(self, key):
        with self.state.lock:
            return dict(self.state.settings.get(key, {}))

    def throttle(self, call):
        st = self.state
        with st.lock:
            for key in call["resources"]:
                conf = st.settings.get(key)
                if conf and conf.get("throttle_next", 0) > 0:
                    conf["throttle_next"] -= 1
                    break
            else:
                return
        raise Ec2Error("RequestLimitExceeded", "Request limit exceeded.",
                       HTTPStatus.SERVICE_UNAVAILABLE)

    # -- forwarding to moto ---------------------------------------------------------------------

    def forward(self, method=None, body=None, extra_headers=None):
        """Sends this request (or a variant) to moto; returns (status, headers, body)."""
        host, port = self.server.upstream
        conn = http.client.HTTPConnection(host, port, timeout=300)
        try:
            headers = {}
            for name, value in self.headers.items():
                if name.lower() in HOP_BY_HOP or name.lower() in NOT_FORWARDED:
                    continue
                headers[name] = value
            if extra_headers:
                headers.update(extra_headers)
            payload = self.body if body is None else body
            if payload or (method or self.command) in ("POST", "PUT"):
                headers["Content-Length"] = str(len(payload))
            conn.request(method or self.command, self.path if body is None else "/",
                         payload, headers)
            resp = conn.getresponse()
            data = resp.read()
            kept = [(k, v) for k, v in resp.getheaders()
                    if k.lower() not in HOP_BY_HOP and k.lower() not in OWN_HEADERS]
            return resp.status, kept, data
        finally:
            conn.close()

    def relay(self, status, headers, body):
        self.status = status
        self.send_reply(status, body, headers)

    def describe_snapshot(self, snapshot_id):
        """moto's view of one snapshot: (status, root element of the answer)."""
        body = urlencode({"Action": "DescribeSnapshots", "Version": API_VERSION,
                          "SnapshotId.1": snapshot_id}).encode()
        status, _, data = self.forward(
            "POST", body, {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        try:
            root = ET.fromstring(data)
        except ET.ParseError:
            root = None
        if status == 200 and root is not None:
            self.learn_snapshots(root)
        return status, root

    def volume_of(self, snapshot_id):
        with self.state.lock:
            known = self.state.snapshot_volume.get(snapshot_id)
        if known is not None or not self.headers.get("Authorization"):
            return known
        self.describe_snapshot(snapshot_id)
        with self.state.lock:
            return self.state.snapshot_volume.get(snapshot_id)

    def learn_snapshots(self, root):
        """Remembers snapshot -> volume from a DescribeSnapshots or CreateSnapshot answer."""
        items = [root] if local(root.tag) == "CreateSnapshotResponse" else [
            item for item in root.iter() if local(item.tag) == "item"
            and child_text(item, "snapshotId") is not None]
        with self.state.lock:
            for item in items:
                snap, vol = child_text(item, "snapshotId"), child_text(item, "volumeId")
                if snap and vol:
                    self.state.snapshot_volume[snap] = vol

    # -- snapshots ------------------------------------------------------------------------------

    def create_snapshot(self, params, call):
        volume = params.get("VolumeId", "")
        conf = self.settings_for(volume)
        if conf.get("create_error"):
            code = conf["create_error"]
            raise Ec2Error(code, "Injected by ec2_fake for volume {}.".format(volume),
                           error_status(code))
        status, headers, body = self.forward()
        if status == 200:
            root = ET.fromstring(body)
            self.learn_snapshots(root)
            snap = child_text(root, "snapshotId")
            with self.state.lock:
                if snap:
                    self.state.snapshot_created.setdefault(snap, time.time())
                    call["resources"] = sorted(set(call["resources"]) | {snap})
            new_state = conf.get("create_state")
            if new_state is None and (conf.get("pending_seconds") or conf.get("snapshot_state")):
                new_state = "pending"
            if new_state is not None:
                set_child(root, "status", new_state)
                set_child(root, "progress", "100%" if new_state == "completed" else "0%")
                body = serialize(root)
        if conf.get("create_latency"):
            time.sleep(float(conf["create_latency"]))
        self.relay(status, headers, body)

    def rewrite_describe_snapshots(self, body):
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            return body
        self.learn_snapshots(root)
        changed = False
        now = time.time()
        for item in root.iter():
            if local(item.tag) != "item" or child_text(item, "snapshotId") is None:
                continue
            snap, vol = child_text(item, "snapshotId"), child_text(item, "volumeId") or ""
            conf = self.settings_for(vol)
            if not (conf.get("pending_seconds") or conf.get("snapshot_state")):
                continue
            with self.state.lock:
                created = self.state.snapshot_created.get(snap)
            if created is None:
                started = parse_iso(child_text(item, "startTime") or "")
                created = started.timestamp() if started else now
            pending = float(conf.get("pending_seconds") or 0)
            elapsed = now - created
            if elapsed < pending:
                set_child(item, "status", "pending")
                set_child(item, "progress", "{}%".format(min(99, int(99 * elapsed / pending))))
                changed = True
            elif conf.get("snapshot_state"):
                state = conf["snapshot_state"]
                set_child(item, "status", state)
                if state != "completed":
                    set_child(item, "statusMessage",
                              "Injected state {} (ec2_fake).".format(state), after="status")
                changed = True
        return serialize(root) if changed else body

    def lock_snapshot(self, params):
        snap = params.get("SnapshotId", "")
        mode = params.get("LockMode", "")
        if not snap:
            raise Ec2Error("MissingParameter",
                           "The request must contain the parameter SnapshotId")
        if not mode:
            raise Ec2Error("MissingParameter", "The request must contain the parameter LockMode")
        if mode not in LOCK_MODES:
            raise Ec2Error("InvalidParameterValue",
                           "Value ({}) for parameter LockMode is invalid. Valid values: "
                           "governance, compliance.".format(mode))
        duration, cool_off, expires = None, None, None
        now = utcnow()
        if "LockDuration" in params and "ExpirationDate" in params:
            raise Ec2Error("InvalidParameterValue",
                           "Specify either LockDuration or ExpirationDate, not both.")
        if "LockDuration" in params:
            duration = int_param(params, "LockDuration", 1, MAX_LOCK_DAYS)
            expires = now + timedelta(days=duration)
        elif "ExpirationDate" in params:
            expires = parse_iso(params["ExpirationDate"])
            if expires is None:
                raise Ec2Error("InvalidParameterValue",
                               "Value ({}) for parameter ExpirationDate is invalid.".format(
                                   params["ExpirationDate"]))
            if expires < now + timedelta(days=1) - EXPIRATION_SLACK:
                raise Ec2Error("InvalidParameterValue",
                               "ExpirationDate must be at least one day in the future.")
        else:
            raise Ec2Error("MissingParameter",
                           "The request must contain either LockDuration or ExpirationDate.")
        if "CoolOffPeriod" in params:
            if mode != "compliance":
                raise Ec2Error("InvalidParameterValue",
                               "CoolOffPeriod can be specified only in compliance mode.")
            cool_off = int_param(params, "CoolOffPeriod", 1, MAX_COOL_OFF_HOURS)

        status, root = self.describe_snapshot(snap)
        if status != 200:
            code = "InvalidSnapshot.NotFound"
            if root is not None:
                for el in root.iter():
                    if local(el.tag) == "Code" and el.text:
                        code = el.text
            if code == "InvalidSnapshot.NotFound":
                raise Ec2Error(code, "The snapshot '{}' does not exist.".format(snap))
            raise Ec2Error(code, "DescribeSnapshots failed upstream.", status)

        new = Lock(snap, mode, duration, cool_off, expires, now)
        with self.state.lock:
            old = self.state.locks.get(snap)
            if old is not None and old.state(now) == "compliance":
                if mode != "compliance" or cool_off is not None or expires < old.expires:
                    raise Ec2Error("InvalidParameterValue",
                                   "The snapshot is locked in compliance mode; its lock can "
                                   "only be extended.")
            self.state.locks[snap] = new
        self.send_result("LockSnapshot", new.fields(now))

    def unlock_snapshot(self, params):
        snap = params.get("SnapshotId", "")
        if not snap:
            raise Ec2Error("MissingParameter",
                           "The request must contain the parameter SnapshotId")
        now = utcnow()
        with self.state.lock:
            lock = self.state.locks.get(snap)
            if lock is not None and lock.state(now) == "compliance":
                raise Ec2Error("OperationNotPermitted",
                               "The snapshot '{}' is locked in compliance mode and its "
                               "cooling-off period has expired.".format(snap))
            self.state.locks.pop(snap, None)
        if lock is None:
            status, _ = self.describe_snapshot(snap)
            if status != 200:
                raise Ec2Error("InvalidSnapshot.NotFound",
                               "The snapshot '{}' does not exist.".format(snap))
        self.send_result("UnlockSnapshot", [("snapshotId", snap)])

    def refuse_locked_delete(self, snap):
        now = utcnow()
        with self.state.lock:
            lock = self.state.locks.get(snap)
            if lock is None:
                return
            if lock.state(now) == "expired":
                del self.state.locks[snap]
                return
        raise Ec2Error("SnapshotLocked",
                       "The snapshot '{}' is locked ({}) and can't be deleted.".format(
                           snap, lock.state(now)))


def int_param(params, name, low, high):
    try:
        value = int(params[name])
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise Ec2Error("InvalidParameterValue",
                       "Value ({}) for parameter {} is invalid. It must be an integer from "
                       "{} to {}.".format(params[name], name, low, high))
    return value


def serialize(root):
    ns = root.tag[1:root.tag.index("}")] if root.tag.startswith("{") else ""
    if ns:
        ET.register_namespace("", ns)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8",
                                                                     xml_declaration=False)


class Ec2FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address, upstream):
        self.state = State()
        self.upstream = upstream
        super().__init__(address, Ec2FakeHandler)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--port-file", help="write the port number to this file")
    parser.add_argument("--upstream", required=True,
                        help="moto's URL, e.g. http://127.0.0.1:5000")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    upstream = urlsplit(args.upstream)
    if upstream.scheme != "http" or not upstream.hostname:
        parser.error("--upstream must be an http://HOST:PORT URL")
    httpd = Ec2FakeServer((args.host, args.port), (upstream.hostname, upstream.port or 80))
    port = httpd.server_address[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write("{}\n".format(port))
        os.replace(args.port_file + ".tmp", args.port_file)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("listening on http://{}:{} (upstream {})".format(args.host, port, args.upstream),
          flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()
