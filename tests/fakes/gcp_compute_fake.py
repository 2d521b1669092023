"""Compute Engine fake for barman-rs tests: the REST v1 calls of persistent-disk snapshots.

A stateful, in-memory server (no upstream) answering, under ``/compute/v1/``, with the JSON
shapes of the Compute Engine API reference:

* ``GET  projects/<p>/zones/<z>/instances/<i>``          instances.get
* ``GET  projects/<p>/zones/<z>/disks/<d>``              disks.get
* ``GET  projects/<p>/regions/<r>/disks/<d>``            regionDisks.get
* ``POST projects/<p>/global/snapshots``                 snapshots.insert ({name, sourceDisk});
  the source disk must be an existing disk (zonal or regional, relative path or full URL),
  else 404; a taken name answers 409 ``alreadyExists``
* ``GET  projects/<p>/global/snapshots[/<s>]``           snapshots.list / snapshots.get
* ``DELETE projects/<p>/global/snapshots/<s>``           snapshots.delete
* ``GET  projects/<p>/global/operations/<op>``           globalOperations.get
* ``POST projects/<p>/global/operations/<op>/wait``      globalOperations.wait: answers when the
  operation is DONE or after ``--wait-deadline`` seconds (default 120: the documented "about
  2 minutes"), whichever comes first

Errors are Google's ``{"error": {"code", "message", "errors": [{"domain", "reason",
"message"}]}}``. Every API request must carry ``Authorization: Bearer <token>`` (any token;
the fake does not check signatures), else HTTP 401.

A snapshot is ``CREATING`` for ``creating_seconds`` after its insert, then ``UPLOADING`` for
``uploading_seconds``, then ``READY``; its insert operation is ``RUNNING`` until then and
``DONE`` from then on (with ``error``/``httpErrorStatusCode``/``httpErrorMessage`` and the
snapshot ``FAILED`` when ``operation_error`` is set for the disk). A delete operation is
``DONE`` at once (the snapshot is gone).

Tokens:

* ``POST /token`` (form ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>``):
  the JWT's claims must name ``iss``, ``aud`` and ``scope`` (the signature is not verified: no
  RSA in the standard library); answers ``{"access_token", "expires_in": 3600, "token_type"}``.
  Point a service-account key file's ``token_uri`` here.
* ``GET /computeMetadata/v1/instance/service-accounts/default/token`` with
  ``Metadata-Flavor: Google`` (else 403): the metadata server (``GCE_METADATA_HOST=127.0.0.1:PORT``).

Every request (API and tokens) is recorded: sequence number, time, method, path, the
HTTP status answered, the token used (API calls), and the set of resources it "concerns":
the path's segments, the name and source disk of an insert, and the disk of a snapshot named.

Control API (no authentication; JSON in and out)::

    POST /_fake/disk       {"project", "zone" | "region", "name", "source_snapshot"?: name,
                            "size_gb"?}                       create a disk
    POST /_fake/instance   {"project", "zone", "name", "disks": [{"name", "zone" | "region",
                            "project"?, "device_name"?, "boot"?}]}   create an instance with
                            those disks attached in that order (they must exist)
    POST /_fake/settings/<key>  merge settings for <key> (a disk name; for throttle_next any
                            value a call may concern: instance, snapshot, project); null removes
         {"creating_seconds": N}   time a new snapshot of the disk stays CREATING (default 0)
         {"uploading_seconds": N}  then UPLOADING (default 0)
         {"operation_error": "CODE"}  the insert operation ends DONE with this error and the
                                   snapshot FAILED ("operation_error_message" sets the text)
         {"throttle_next": N}      the next N API calls concerning <key> answer HTTP 429
                                   rateLimitExceeded with "Retry-After: <retry_after>"
         {"retry_after": S}        seconds in that header (default 1)
    GET  /_fake/settings/<key>
    GET  /_fake/calls      recorded calls, oldest first; ?match=<value> (repeatable) keeps the
                           calls concerning one of them; ?since=<seq> those after <seq>
    GET  /_fake/state      instances, disks, snapshots (with their current status), operations
    POST /_fake/reset      forget everything

Barman 3.20.1 against this fake: its ``GcpCloudSnapshotInterface`` needs google-cloud-compute
(not in the ``barman[cloud,azure,google,...]`` venv; checked with 1.57.0 in a scratch venv) and
has no endpoint option, and google-cloud-compute reads no endpoint variable. A test-only
``sitecustomize.py`` on ``PYTHONPATH`` that wraps ``__init__`` of ``compute_v1.SnapshotsClient``,
``DisksClient``, ``InstancesClient`` and ``GlobalOperationsClient`` to default
``client_options={"api_endpoint": "http://127.0.0.1:<port>"}`` is enough (the operations
client is built by the library itself, so it must be covered too). With a service-account key
file, google-auth sends self-signed JWTs as bearer tokens and never calls ``token_uri``; this
fake accepts them.

Usage (any Python 3.9+, standard library only)::

    python tests/fakes/gcp_compute_fake.py [--host 127.0.0.1] [--port 0] [--port-file FILE]
    export CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE=http://127.0.0.1:<port>/compute/v1/

With ``--port 0`` a free port is chosen; the port is printed on stdout ("listening on
http://HOST:PORT") and, with ``--port-file``, written to FILE.
"""

import argparse
import base64
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

logger = logging.getLogger("gcp_compute_fake")

API_PREFIX = "/compute/v1/"
# selfLinks use Google's public base, as the real API writes them.
LINK_BASE = "https://www.googleapis.com/compute/v1/"
SETTINGS = {
    "creating_seconds": (int, float),
    "uploading_seconds": (int, float),
    "operation_error": str,
    "operation_error_message": str,
    "throttle_next": int,
    "retry_after": (int, float),
}
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class ApiError(Exception):
    def __init__(self, status, reason, message, headers=()):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.headers = list(headers)

    def body(self):
        return {"error": {"code": int(self.status), "message": self.message,
                          "errors": [{"domain": "global", "reason": self.reason,
                                      "message": self.message}]}}


def rfc3339(ts):
    return datetime.fromtimestamp(ts, timezone.utc).astimezone().isoformat(timespec="milliseconds")


def new_id():
    return str(uuid.uuid4().int % (10 ** 19))


def disk_key(project, scope_kind, scope, name):
    return "projects/{}/{}/{}/disks/{}".format(project, scope_kind, scope, name)


def parse_disk_ref(ref):
    """(project, 'zones'|'regions', scope, name) of a disk URL or path, else None."""
    path = urlsplit(ref).path if "://" in ref else ref
    parts = [unquote(p) for p in path.split("/") if p]
    if "projects" not in parts:
        return None
    i = len(parts) - 1 - parts[::-1].index("projects")
    rest = parts[i:]
    if len(rest) != 6 or rest[2] not in ("zones", "regions") or rest[4] != "disks":
        return None
    return rest[1], rest[2], rest[3], rest[5]


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.instances = {}   # (project, zone, name) -> dict
        self.disks = {}       # disk_key -> dict
        self.snapshots = {}   # (project, name) -> dict (with private fields "_...")
        self.operations = {}  # (project, name) -> dict (with private fields "_...")
        self.settings = {}
        self.calls = []
        self.seq = 0
        self.tokens = 0

    # -- snapshot and operation life cycle -------------------------------------------------

    def snapshot_view(self, snap, now):
        view = {k: v for k, v in snap.items() if not k.startswith("_")}
        t = now - snap["_created"]
        if t < snap["_creating"]:
            view["status"] = "CREATING"
        elif t < snap["_creating"] + snap["_uploading"]:
            view["status"] = "UPLOADING"
        else:
            view["status"] = "FAILED" if snap["_error"] else "READY"
        return view

    def operation_view(self, op, now):
        view = {k: v for k, v in op.items() if not k.startswith("_")}
        snap = op.get("_snapshot")
        if snap is not None and op["operationType"] == "insert":
            status = self.snapshot_view(snap, now)["status"]
            if status in ("READY", "FAILED"):
                view["status"] = "DONE"
                view["progress"] = 100
                view["endTime"] = rfc3339(snap["_created"] + snap["_creating"] + snap["_uploading"])
                if snap["_error"]:
                    code, message = snap["_error"]
                    view["error"] = {"errors": [{"code": code, "message": message}]}
                    view["httpErrorStatusCode"] = 400
                    view["httpErrorMessage"] = "BAD REQUEST"
            else:
                view["status"] = "RUNNING"
                view["progress"] = 0 if status == "CREATING" else 50
        return view


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gcp_compute_fake"

    def log_message(self, fmt, *args):
        logger.info("%s " + fmt, self.address_string(), *args)

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    @property
    def state(self):
        return self.server.state

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_json(self, value, status=HTTPStatus.OK, headers=()):
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        for name, val in headers:
            self.send_header(name, val)
        self.end_headers()
        self.wfile.write(body)

    def dispatch(self):
        url = urlsplit(self.path)
        body = self.read_body()
        try:
            if url.path.startswith("/_fake/"):
                return self.control(url, body)
            if url.path == "/token":
                return self.token(body)
            if url.path == "/computeMetadata/v1/instance/service-accounts/default/token":
                return self.metadata_token()
            if url.path.startswith(API_PREFIX):
                return self.api(url, body)
            self.send_json(ApiError(404, "notFound", "No such path").body(), 404)
        except Exception as err:  # a bug of the fake: say so loudly
            logger.exception("failed")
            self.send_json(ApiError(500, "internalError",
                                    "gcp_compute_fake failed: {!r}".format(err)).body(), 500)

    # -- records -----------------------------------------------------------------------------

    def record(self, concerns, token=None):
        with self.state.lock:
            self.state.seq += 1
            call = {"seq": self.state.seq, "time": time.time(), "method": self.command,
                    "path": urlsplit(self.path).path, "status": None, "token": token,
                    "concerns": sorted(c for c in concerns if c)}
            self.state.calls.append(call)
        return call

    # -- tokens ------------------------------------------------------------------------------

    def issue_token(self):
        with self.state.lock:
            self.state.tokens += 1
            return "fake-access-token-{}".format(self.state.tokens)

    def token(self, body):
        call = self.record({"token"})
        form = parse_qs(body.decode("utf-8", "replace"))
        grant = (form.get("grant_type") or [""])[0]
        assertion = (form.get("assertion") or [""])[0]
        claims = None
        try:
            payload = assertion.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except Exception:
            pass
        if self.command != "POST" or grant != JWT_GRANT or not isinstance(claims, dict) or \
                not all(claims.get(k) for k in ("iss", "aud", "scope")):
            call["status"] = 400
            return self.send_json({"error": "invalid_grant",
                                   "error_description": "gcp_compute_fake: expected a JWT "
                                   "bearer grant naming iss, aud and scope"}, 400)
        call["status"] = 200
        call["claims"] = {k: claims.get(k) for k in ("iss", "aud", "scope", "iat", "exp")}
        self.send_json({"access_token": self.issue_token(), "expires_in": 3600,
                        "token_type": "Bearer"})

    def metadata_token(self):
        call = self.record({"metadata"})
        if self.headers.get("Metadata-Flavor") != "Google":
            call["status"] = 403
            return self.send_json({"error": "Missing Metadata-Flavor: Google"}, 403)
        call["status"] = 200
        self.send_json({"access_token": self.issue_token(), "expires_in": 3599,
                        "token_type": "Bearer"})

    # -- control -----------------------------------------------------------------------------

    def control(self, url, body):
        st = self.state
        parts = [unquote(p) for p in url.path.split("/") if p][1:]
        data = json.loads(body) if body else {}
        now = time.time()
        if parts == ["reset"] and self.command == "POST":
            with st.lock:
                st.reset()
            return self.send_json({})
        if parts == ["calls"] and self.command == "GET":
            q = parse_qs(url.query)
            match = set(q.get("match", []))
            since = int((q.get("since") or ["0"])[0])
            with st.lock:
                calls = [c for c in st.calls if c["seq"] > since and
                         (not match or match & set(c["concerns"]))]
            return self.send_json(calls)
        if parts == ["state"] and self.command == "GET":
            with st.lock:
                return self.send_json({
                    "instances": list(st.instances.values()),
                    "disks": list(st.disks.values()),
                    "snapshots": [st.snapshot_view(s, now) for s in st.snapshots.values()],
                    "operations": [st.operation_view(o, now) for o in st.operations.values()],
                })
        if len(parts) == 2 and parts[0] == "settings":
            key = parts[1]
            with st.lock:
                cur = st.settings.setdefault(key, {})
                if self.command == "POST":
                    for name, value in data.items():
                        if name not in SETTINGS:
                            return self.send_json({"error": "unknown setting " + name}, 400)
                        if value is None:
                            cur.pop(name, None)
                        elif not isinstance(value, SETTINGS[name]) or isinstance(value, bool):
                            return self.send_json({"error": "bad value for " + name}, 400)
                        else:
                            cur[name] = value
                return self.send_json(dict(cur))
        if parts == ["disk"] and self.command == "POST":
            project, name = data["project"], data["name"]
            kind, scope = ("regions", data["region"]) if data.get("region") else ("zones", data["zone"])
            key = disk_key(project, kind, scope, name)
            disk = {"kind": "compute#disk", "id": new_id(), "name": name,
                    "creationTimestamp": rfc3339(now), "sizeGb": str(data.get("size_gb", 10)),
                    "status": "READY", "selfLink": LINK_BASE + key,
                    "type": LINK_BASE + "projects/{}/{}/{}/diskTypes/pd-balanced".format(
                        project, kind, scope)}
            if kind == "zones":
                disk["zone"] = LINK_BASE + "projects/{}/zones/{}".format(project, scope)
            else:
                disk["region"] = LINK_BASE + "projects/{}/regions/{}".format(project, scope)
            if data.get("source_snapshot"):
                disk["sourceSnapshot"] = LINK_BASE + "projects/{}/global/snapshots/{}".format(
                    project, data["source_snapshot"])
                disk["sourceSnapshotId"] = new_id()
            with st.lock:
                st.disks[key] = disk
            return self.send_json(disk)
        if parts == ["instance"] and self.command == "POST":
            project, zone, name = data["project"], data["zone"], data["name"]
            attached = []
            with st.lock:
                for index, d in enumerate(data.get("disks", [])):
                    kind, scope = ("regions", d["region"]) if d.get("region") else \
                        ("zones", d.get("zone", zone))
                    key = disk_key(d.get("project", project), kind, scope, d["name"])
                    if key not in st.disks:
                        return self.send_json({"error": "no disk " + key}, 400)
                    st.disks[key].setdefault("users", []).append(
                        LINK_BASE + "projects/{}/zones/{}/instances/{}".format(project, zone, name))
                    attached.append({"kind": "compute#attachedDisk", "type": "PERSISTENT",
                                     "mode": "READ_WRITE", "source": LINK_BASE + key,
                                     "deviceName": d.get("device_name", d["name"]),
                                     "index": index, "boot": bool(d.get("boot", False)),
                                     "autoDelete": False, "interface": "SCSI"})
                inst = {"kind": "compute#instance", "id": new_id(), "name": name,
                        "creationTimestamp": rfc3339(now), "status": "RUNNING",
                        "zone": LINK_BASE + "projects/{}/zones/{}".format(project, zone),
                        "machineType": LINK_BASE + "projects/{}/zones/{}/machineTypes/e2-small"
                        .format(project, zone),
                        "selfLink": LINK_BASE + "projects/{}/zones/{}/instances/{}".format(
                            project, zone, name),
                        "disks": attached}
                st.instances[(project, zone, name)] = inst
            return self.send_json(inst)
        self.send_json({"error": "unknown control call"}, 404)

    # -- API ---------------------------------------------------------------------------------

    def api(self, url, body):
        st = self.state
        parts = [unquote(p) for p in url.path[len(API_PREFIX):].split("/") if p]
        auth = self.headers.get("Authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
        data = {}
        if body:
            try:
                data = json.loads(body)
            except ValueError:
                data = None
        concerns = set(parts)
        with st.lock:
            if isinstance(data, dict) and isinstance(data.get("sourceDisk"), str):
                ref = parse_disk_ref(data["sourceDisk"])
                if ref:
                    concerns.add(ref[3])
                if isinstance(data.get("name"), str):
                    concerns.add(data["name"])
            if len(parts) >= 4 and parts[2:4] == ["global", "snapshots"] and len(parts) == 5:
                snap = st.snapshots.get((parts[1], parts[4]))
                if snap:
                    concerns.add(snap["_disk"])
        call = self.record(concerns, token)
        try:
            if not token:
                raise ApiError(401, "required", "Request is missing required authentication "
                               "credential. Expected OAuth 2 access token.")
            self.throttle(concerns)
            if data is None:
                raise ApiError(400, "parseError", "Parse Error")
            status, value = self.route(parts, data)
            if self.command == "POST" and parts[-1:] == ["wait"]:
                value = self.wait_done(parts[1], value)
        except ApiError as err:
            call["status"] = int(err.status)
            return self.send_json(err.body(), err.status, err.headers)
        call["status"] = status
        self.send_json(value, status)

    def wait_done(self, project, op):
        """globalOperations.wait: the operation once DONE, or as it is at the deadline."""
        st = self.state
        deadline = time.time() + self.server.wait_deadline
        while op.get("status") != "DONE" and time.time() < deadline:
            time.sleep(0.02)
            with st.lock:
                stored = st.operations.get((project, op["name"]))
                if stored is None:
                    break
                op = st.operation_view(stored, time.time())
        return op

    def throttle(self, concerns):
        st = self.state
        with st.lock:
            for key in sorted(concerns):
                s = st.settings.get(key)
                if s and s.get("throttle_next", 0) > 0:
                    s["throttle_next"] -= 1
                    after = s.get("retry_after", 1)
                    raise ApiError(429, "rateLimitExceeded",
                                   "Rate Limit Exceeded (injected by gcp_compute_fake for {})"
                                   .format(key), [("Retry-After", str(after))])

    def route(self, parts, data):
        st = self.state
        m = self.command
        now = time.time()
        if len(parts) < 2 or parts[0] != "projects":
            raise ApiError(404, "notFound", "Unknown path")
        project = parts[1]
        rest = parts[2:]
        with st.lock:
            if m == "GET" and len(rest) == 4 and rest[0] == "zones" and rest[2] == "instances":
                inst = st.instances.get((project, rest[1], rest[3]))
                if not inst:
                    raise ApiError(404, "notFound", "The resource 'projects/{}/zones/{}/instances/{}'"
                                   " was not found".format(project, rest[1], rest[3]))
                return 200, inst
            if m == "GET" and len(rest) == 4 and rest[0] in ("zones", "regions") and rest[2] == "disks":
                key = disk_key(project, rest[0], rest[1], rest[3])
                if key not in st.disks:
                    raise ApiError(404, "notFound", "The resource '{}' was not found".format(key))
                return 200, st.disks[key]
            if rest[:2] == ["global", "snapshots"]:
                if m == "GET" and len(rest) == 2:
                    items = [st.snapshot_view(s, now) for (p, _), s in st.snapshots.items()
                             if p == project]
                    return 200, {"kind": "compute#snapshotList", "items": items}
                if m == "POST" and len(rest) == 2:
                    return 200, self.insert_snapshot(project, data, now)
                if len(rest) == 3:
                    snap = st.snapshots.get((project, rest[2]))
                    if not snap:
                        raise ApiError(404, "notFound", "The resource 'projects/{}/global/"
                                       "snapshots/{}' was not found".format(project, rest[2]))
                    if m == "GET":
                        return 200, st.snapshot_view(snap, now)
                    if m == "DELETE":
                        del st.snapshots[(project, rest[2])]
                        op = self.new_operation(project, "delete", snap["selfLink"], snap["id"], now)
                        op["status"] = "DONE"
                        op["progress"] = 100
                        op["endTime"] = rfc3339(now)
                        return 200, st.operation_view(op, now)
            if rest[:2] == ["global", "operations"] and len(rest) >= 3:
                op = st.operations.get((project, rest[2]))
                if not op:
                    raise ApiError(404, "notFound", "The resource 'projects/{}/global/"
                                   "operations/{}' was not found".format(project, rest[2]))
                if (m == "GET" and len(rest) == 3) or (m == "POST" and rest[3:] == ["wait"]):
                    return 200, st.operation_view(op, now)
        raise ApiError(404, "notFound", "Unknown path")

    def new_operation(self, project, kind, target, target_id, now):
        name = "operation-{}-{}".format(int(now * 1000), uuid.uuid4().hex[:12])
        op = {"kind": "compute#operation", "id": new_id(), "name": name,
              "operationType": kind, "targetLink": target, "targetId": target_id,
              "status": "RUNNING", "user": "barman@fake", "progress": 0,
              "insertTime": rfc3339(now), "startTime": rfc3339(now),
              "selfLink": LINK_BASE + "projects/{}/global/operations/{}".format(project, name)}
        self.state.operations[(project, name)] = op
        return op

    def insert_snapshot(self, project, data, now):
        st = self.state
        name = data.get("name")
        source = data.get("sourceDisk")
        if not name or not source:
            raise ApiError(400, "required", "Required field 'name' and 'sourceDisk' not specified")
        ref = parse_disk_ref(source)
        if not ref or disk_key(*ref) not in st.disks:
            raise ApiError(404, "notFound", "The resource '{}' was not found".format(source))
        if (project, name) in st.snapshots:
            raise ApiError(409, "alreadyExists", "The resource 'projects/{}/global/snapshots/{}'"
                           " already exists".format(project, name))
        disk = st.disks[disk_key(*ref)]
        s = st.settings.get(ref[3], {})
        error = None
        if s.get("operation_error"):
            error = (s["operation_error"], s.get("operation_error_message",
                                                 "Injected by gcp_compute_fake"))
        snap = {"kind": "compute#snapshot", "id": new_id(), "name": name,
                "creationTimestamp": rfc3339(now), "diskSizeGb": disk["sizeGb"],
                "sourceDisk": disk["selfLink"], "sourceDiskId": disk["id"],
                "storageBytes": "0", "storageBytesStatus": "UP_TO_DATE",
                "storageLocations": ["eu"],
                "selfLink": LINK_BASE + "projects/{}/global/snapshots/{}".format(project, name),
                "_created": now, "_creating": s.get("creating_seconds", 0),
                "_uploading": s.get("uploading_seconds", 0), "_error": error,
                "_disk": ref[3]}
        st.snapshots[(project, name)] = snap
        op = self.new_operation(project, "insert", snap["selfLink"], snap["id"], now)
        op["_snapshot"] = snap
        return st.operation_view(op, now)


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address, wait_deadline=120.0):
        self.state = State()
        self.wait_deadline = wait_deadline
        super().__init__(address, Handler)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--port-file", help="write the port number to this file")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    parser.add_argument("--wait-deadline", type=float, default=120.0,
                        help="longest globalOperations.wait answer, seconds (default 120)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    httpd = FakeServer((args.host, args.port), args.wait_deadline)
    port = httpd.server_address[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write("{}\n".format(port))
        os.replace(args.port_file + ".tmp", args.port_file)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("listening on http://{}:{}".format(args.host, port), flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()
