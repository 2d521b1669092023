"""Azure Resource Manager (Microsoft.Compute) fake for barman-rs tests: VMs, managed disks and
incremental snapshots with long-running operations, plus an Entra ID token endpoint.

The snapshot backups of Barman (azure-mgmt-compute) and of barman-rs make five ARM calls:
``virtualMachines.get``, ``disks.get``, ``snapshots.get``, ``snapshots.begin_create_or_update``
(PUT) and ``snapshots.begin_delete`` (DELETE), the last two long-running. This server keeps
subscriptions, resource groups, VMs, disks and snapshots in memory and answers those calls
with the JSON shapes of the ARM REST reference (Compute ``virtualMachines`` 2026-04-01,
``disks``/``snapshots`` 2026-03-02; any ``YYYY-MM-DD[-preview]`` api-version is accepted and
recorded):

* ``GET .../resourceGroups/<rg>/providers/Microsoft.Compute/virtualMachines/<vm>``: the VM with
  ``properties.storageProfile`` (``osDisk`` and ``dataDisks`` in attachment order, each with
  ``lun``, ``name``, ``createOption``, ``managedDisk.id``).
* ``GET .../disks/<disk>``: ``location``, ``properties.creationData`` (``Empty``, or ``Copy``
  with ``sourceResourceId`` of a snapshot), ``diskState``, ``provisioningState``.
* ``PUT .../snapshots/<name>``: body ``{location, properties: {creationData: {createOption:
  "Copy", sourceUri|sourceResourceId: <disk id>}, incremental}}``; the disk must exist (else
  404 ``NotFound``) and be in that location (else 400 ``InvalidParameter``). Answers 202 with
  ``Azure-AsyncOperation`` (status document) and ``Location`` (``monitor=true``: 202 while
  running, then 200 with the snapshot) headers and ``Retry-After``. The snapshot is visible at
  once with ``provisioningState`` ``Creating`` (``Updating`` when it existed: ARM's PUT
  replaces), ``Succeeded`` or ``Failed`` when the operation ends.
* ``DELETE .../snapshots/<name>``: 202 + operation when it exists (gone when the operation
  ends), 204 when it does not.
* Operation status ``GET /subscriptions/<s>/providers/Microsoft.Compute/locations/<loc>/
  DiskOperations/<id>``: ``{name, startTime, status: InProgress|Succeeded|Failed[, endTime,
  error: {code, message}]}``.
* Errors are ARM's ``{"error": {"code", "message"}}``: 401 ``AuthenticationFailed`` without an
  ``Authorization: Bearer`` header (the token itself is not checked), 404
  ``ResourceGroupNotFound`` / ``ResourceNotFound``, 400 ``InvalidApiVersionParameter``,
  ``MissingApiVersionParameter``, ``InvalidRequestContent``, ``InvalidParameter``.
* Entra ID: ``POST /<tenant>/oauth2/v2.0/token`` (``grant_type=client_credentials``,
  ``client_id``, ``client_secret``, ``scope``) answers ``{token_type, expires_in,
  ext_expires_in, access_token}``; registered service principals (control API) are checked,
  any credentials are accepted when none is registered. ``GET
  /<tenant>/v2.0/.well-known/openid-configuration`` and ``GET /common/discovery/instance``
  answer what MSAL asks before a token. Errors: 400 ``unsupported_grant_type``, 401
  ``invalid_client`` (``error_codes`` [7000215]).

Behaviour injected per disk name (applies to calls that concern the disk: its ``disks.get``,
snapshot PUTs of it, and GET/DELETE of snapshots made from it)::

    POST /_fake/disk/<name>/behaviour   merge settings; a null value removes one
         {"latency": S}          operations on the disk's snapshots end S seconds after they
                                 started (default 0: at the first poll)
         {"fail": "Code"}        snapshot creations end Failed with that error code (and
                                 message "Injected failure"), the snapshot left Failed;
                                 deletions are not affected
         {"throttle_next": N}    the next N calls concerning the disk answer HTTP 429
                                 TooManyRequests with Retry-After (counted down)
         {"retry_after": S}      the Retry-After of those 429s and of operation answers
                                 (default: --retry-after)
         {"completion_seconds": S}  snapshots report properties.completionPercent below 100
                                 until S seconds after their creation ended

Control API (no authentication; JSON in and out)::

    POST /_fake/resource-group  {"subscription", "resource_group"}
    POST /_fake/vm      {"subscription", "resource_group", "name", "location",
                         "os_disk": "name", "data_disks": [{"name", "lun",
                         "source_snapshot_id": optional snapshot resource ID}]}
                        creates the group, the disks (Empty, or Copy of the snapshot ID) and
                        the VM; answers the VM document
    POST /_fake/disk    {"subscription", "resource_group", "name", "location",
                         "source_snapshot_id": optional}: a disk attached to nothing
    POST /_fake/service-principal  {"tenant", "client_id", "client_secret"}
    GET  /_fake/disk/<name>/behaviour
    GET  /_fake/calls   recorded calls, oldest first (seq, time, method, path, api_version,
                        kind, name, resource_group, status, bearer: whether an Authorization:
                        Bearer header came; never the token); ?since=<seq>, ?kind=<kind>
    GET  /_fake/state   every resource group, VM, disk, snapshot and operation
    GET  /_fake/health  {"ok": true}
    POST /_fake/reset   forget everything

Usage (any Python 3.9+, standard library only)::

    python tests/fakes/azure_compute_fake.py [--host 127.0.0.1] [--port 0] [--port-file FILE]
        [--retry-after 1] [--tls-cert CERT --tls-key KEY] [-v]
    export AZURE_RESOURCE_MANAGER_ENDPOINT=http://127.0.0.1:<port>

With ``--port 0`` a free port is chosen; it is printed on stdout ("listening on
http(s)://HOST:PORT") and, with ``--port-file``, written to FILE. With ``--tls-cert`` the
server speaks HTTPS only (for clients that refuse plain-HTTP authority hosts).

Python Barman 3.20.1 against this fake (checked with azure-mgmt-compute 39.0.0, which sends
the api-versions above; the barman venv of test-services.sh lacks it: Barman's extra
``azure-snapshots``), Barman's code unchanged. Both azure-identity and azure-core refuse
plain HTTP (authority host; bearer tokens over ``http://``), so use the ``--tls-cert``
instance, trust its CA with ``REQUESTS_CA_BUNDLE``, and put this test-only
``sitecustomize.py`` first on ``PYTHONPATH``::

    import os
    if os.environ.get("ARM_FAKE"):
        import azure.identity, azure.mgmt.compute as compute
        init = compute.ComputeManagementClient.__init__
        def client(self, credential, subscription_id, base_url=None, **kw):
            kw.setdefault("polling_interval", 1)
            init(self, credential, subscription_id, base_url=os.environ["ARM_FAKE"], **kw)
        compute.ComputeManagementClient.__init__ = client
        # MSAL checks unknown authority hosts with login.microsoftonline.com otherwise.
        secret = azure.identity.ClientSecretCredential.__init__
        def principal(self, *args, **kw):
            kw.setdefault("disable_instance_discovery", True)
            secret(self, *args, **kw)
        azure.identity.ClientSecretCredential.__init__ = principal

with ``ARM_FAKE=https://127.0.0.1:<port>``, ``AZURE_AUTHORITY_HOST`` the same URL and
``AZURE_TENANT_ID``/``AZURE_CLIENT_ID``/``AZURE_CLIENT_SECRET`` set (``--azure-credential
default``: EnvironmentCredential). ``AzureCloudSnapshotInterface`` then finds the VM, its
disks and LUNs, snapshots, names and deletes (twice) as against Azure.

Known gaps: no RBAC, no tags, no list calls, no ``CopyStart``, snapshots hold no data, a
resource group's name is matched case-insensitively but a VM's or disk's must match exactly.
"""

import argparse
import json
import logging
import os
import re
import secrets
import signal
import ssl
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOG = logging.getLogger("azure_compute_fake")

API_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
RESOURCE_RE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/Microsoft\.Compute/(?P<kind>virtualMachines|disks|snapshots)/(?P<name>[^/]+)/?$",
    re.IGNORECASE,
)
OPERATION_RE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/providers/Microsoft\.Compute/locations/(?P<loc>[^/]+)"
    r"/DiskOperations/(?P<id>[^/]+)$",
    re.IGNORECASE,
)
TOKEN_RE = re.compile(r"^/(?P<tenant>[^/]+)/oauth2/v2\.0/token$")
OPENID_RE = re.compile(r"^/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration$")
KINDS = {"virtualmachines": "virtualMachines", "disks": "disks", "snapshots": "snapshots"}


class ArmError(Exception):
    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def iso(ts):
    return datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


def resource_id(sub, rg, kind, name):
    return "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/{}/{}".format(
        sub, rg, kind, name)


class State:
    def __init__(self, retry_after):
        self.lock = threading.RLock()
        self.default_retry_after = retry_after
        self.reset()

    def reset(self):
        with self.lock:
            self.groups = {}  # (sub, rg lower) -> rg as created
            self.vms = {}  # (sub, rg lower, name) -> dict
            self.disks = {}
            self.snapshots = {}  # (sub, rg lower, name) -> dict (+ "_source_disk", "_ended")
            self.operations = {}  # id -> dict
            self.behaviour = {}  # disk name -> settings
            self.principals = {}  # (tenant, client_id) -> secret
            self.calls = []
            self.seq = 0

    # -- helpers (lock held)
    def group(self, sub, rg):
        key = (sub, rg.lower())
        if key not in self.groups:
            raise ArmError(404, "ResourceGroupNotFound",
                           "Resource group '{}' could not be found.".format(rg))
        return self.groups[key]

    def add_group(self, sub, rg):
        self.groups.setdefault((sub, rg.lower()), rg)

    def settings(self, disk_name):
        return self.behaviour.get(disk_name, {})

    def retry_after(self, disk_name):
        value = self.settings(disk_name).get("retry_after")
        return self.default_retry_after if value is None else value

    def throttle(self, disk_name):
        if disk_name is None:
            return
        settings = self.behaviour.get(disk_name)
        if settings and settings.get("throttle_next", 0) > 0:
            settings["throttle_next"] -= 1
            raise ArmError(429, "TooManyRequests",
                           "The request is being throttled.",
                           {"Retry-After": str(self.retry_after(disk_name))})

    def make_disk(self, sub, rg, name, location, source_snapshot_id=None):
        self.add_group(sub, rg)
        creation = {"createOption": "Empty"}
        if source_snapshot_id:
            creation = {"createOption": "Copy", "sourceResourceId": source_snapshot_id}
        disk = {
            "id": resource_id(sub, self.groups[(sub, rg.lower())], "disks", name),
            "name": name,
            "type": "Microsoft.Compute/disks",
            "location": location,
            "sku": {"name": "Premium_LRS", "tier": "Premium"},
            "properties": {
                "creationData": creation,
                "diskSizeGB": 16,
                "diskState": "Unattached",
                "provisioningState": "Succeeded",
                "timeCreated": iso(time.time()),
                "uniqueId": str(uuid.uuid4()),
            },
        }
        self.disks[(sub, rg.lower(), name)] = disk
        return disk

    def find_disk_by_id(self, disk_id):
        for disk in self.disks.values():
            if disk["id"].lower() == (disk_id or "").lower():
                return disk
        return None

    def refresh(self, now=None):
        """Ends operations whose time has come."""
        now = now or time.time()
        for op in self.operations.values():
            if op["status"] != "InProgress" or now < op["ends_at"]:
                continue
            op["status"] = "Failed" if op["fail"] else "Succeeded"
            op["endTime"] = iso(now)
            key = op["target"]
            if op["kind"] == "create":
                snap = self.snapshots.get(key)
                if snap is not None and snap.get("_operation") == op["id"]:
                    snap["properties"]["provisioningState"] = op["status"]
                    snap["_ended"] = now
            elif op["kind"] == "delete" and not op["fail"]:
                snap = self.snapshots.get(key)
                if snap is not None and snap.get("_delete_operation") == op["id"]:
                    del self.snapshots[key]

    def start_operation(self, kind, target, location, disk_name):
        settings = self.settings(disk_name)
        now = time.time()
        op = {
            "id": str(uuid.uuid4()),
            "kind": kind,
            "target": target,
            "location": location,
            "disk": disk_name,
            "status": "InProgress",
            "startTime": iso(now),
            "ends_at": now + float(settings.get("latency") or 0),
            # Only creations fail: the cleanup of a failed creation must be able to run.
            "fail": settings.get("fail") if kind == "create" else None,
        }
        self.operations[op["id"]] = op
        return op

    def public_snapshot(self, snap):
        doc = {k: v for k, v in snap.items() if not k.startswith("_")}
        doc = json.loads(json.dumps(doc))
        seconds = self.settings(snap.get("_source_disk")).get("completion_seconds")
        ended = snap.get("_ended")
        if seconds and doc["properties"]["provisioningState"] == "Succeeded" and ended:
            done = min(100.0, 100.0 * (time.time() - ended) / float(seconds))
            doc["properties"]["completionPercent"] = round(done, 1)
        return doc


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AzureComputeFake/1.0"

    def log_message(self, fmt, *args):
        LOG.info("%s " + fmt, self.address_string(), *args)

    # -- plumbing
    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send(self, status, doc=None, headers=None, raw=None, ctype="application/json"):
        data = raw if raw is not None else (b"" if doc is None else json.dumps(doc).encode())
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if data or status not in (204,):
            self.send_header("Content-Type", ctype + "; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def base_url(self):
        scheme = "https" if self.server.tls else "http"
        return "{}://{}".format(scheme, self.headers.get("Host") or "{}:{}".format(
            *self.server.server_address[:2]))

    def record(self, entry):
        st = self.server.state
        with st.lock:
            st.seq += 1
            entry["seq"] = st.seq
            entry["time"] = time.time()
            st.calls.append(entry)

    def do_GET(self):
        self.dispatch("GET")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_POST(self):
        self.dispatch("POST")

    def dispatch(self, method):
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        path = url.path
        body = self.body()
        try:
            if path.startswith("/_fake/"):
                return self.control(method, path, query, body)
            if path == "/common/discovery/instance" or OPENID_RE.match(path) or TOKEN_RE.match(path):
                return self.entra(method, path, query, body)
            return self.arm(method, path, query, body)
        except ArmError as e:
            self.send(e.status, {"error": {"code": e.code, "message": e.message}}, e.headers)
        except Exception as e:  # a bug of the fake: say so loudly
            LOG.exception("internal error")
            self.send(500, {"error": {"code": "FakeInternalError", "message": repr(e)}})

    # -- Entra ID
    def entra(self, method, path, query, body):
        base = self.base_url()
        if path == "/common/discovery/instance":
            authority = (query.get("authorization_endpoint") or [""])[0]
            tenant = "common"
            m = re.search(r"/([^/]+)/oauth2/v2\.0/authorize", authority)
            if m:
                tenant = m.group(1)
            return self.send(200, {
                "tenant_discovery_endpoint":
                    "{}/{}/v2.0/.well-known/openid-configuration".format(base, tenant),
                "api-version": "1.1",
                "metadata": [],
            })
        m = OPENID_RE.match(path)
        if m:
            tenant = m.group("tenant")
            return self.send(200, {
                "token_endpoint": "{}/{}/oauth2/v2.0/token".format(base, tenant),
                "authorization_endpoint": "{}/{}/oauth2/v2.0/authorize".format(base, tenant),
                "issuer": "{}/{}/v2.0".format(base, tenant),
                "token_endpoint_auth_methods_supported": ["client_secret_post"],
                "response_types_supported": ["code", "token"],
            })
        tenant = TOKEN_RE.match(path).group("tenant")
        if method != "POST":
            raise ArmError(405, "MethodNotAllowed", "POST only")
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        entry = {"method": method, "path": path, "kind": "token", "tenant": tenant,
                 "client_id": form.get("client_id"), "scope": form.get("scope"),
                 "grant_type": form.get("grant_type")}
        if form.get("grant_type") != "client_credentials":
            entry["status"] = 400
            self.record(entry)
            return self.send(400, {"error": "unsupported_grant_type",
                                   "error_description": "AADSTS70003: unsupported grant type",
                                   "error_codes": [70003]})
        st = self.server.state
        with st.lock:
            known = st.principals
            ok = bool(form.get("client_id")) and bool(form.get("client_secret"))
            if known:
                ok = known.get((tenant, form.get("client_id"))) == form.get("client_secret")
        if not ok:
            entry["status"] = 401
            self.record(entry)
            return self.send(401, {"error": "invalid_client",
                                   "error_description": "AADSTS7000215: Invalid client secret provided.",
                                   "error_codes": [7000215]})
        entry["status"] = 200
        self.record(entry)
        return self.send(200, {"token_type": "Bearer", "expires_in": 3599,
                               "ext_expires_in": 3599,
                               "access_token": "fake-" + secrets.token_urlsafe(24)})

    # -- ARM
    def arm(self, method, path, query, body):
        st = self.server.state
        entry = {"method": method, "path": path,
                 "api_version": (query.get("api-version") or [None])[0],
                 "bearer": (self.headers.get("Authorization") or "").startswith("Bearer ")
                 and len(self.headers.get("Authorization")) > len("Bearer ")}
        status = 500
        try:
            if not entry["bearer"]:
                raise ArmError(401, "AuthenticationFailed",
                               "Authentication failed. The 'Authorization' header is missing.")
            op = OPERATION_RE.match(path)
            if op:
                entry["kind"] = "operation"
                status, doc, headers = self.operation(op, query)
            else:
                m = RESOURCE_RE.match(path)
                if not m:
                    raise ArmError(404, "InvalidResourceType",
                                   "The resource path '{}' is not known to this fake.".format(path))
                api = entry["api_version"]
                if not api:
                    raise ArmError(400, "MissingApiVersionParameter",
                                   "The api-version query parameter (?api-version=) is required for all requests.")
                if not API_VERSION_RE.match(api):
                    raise ArmError(400, "InvalidApiVersionParameter",
                                   "The api-version '{}' is invalid.".format(api))
                kind = KINDS[m.group("kind").lower()]
                entry.update(kind=kind, name=m.group("name"), resource_group=m.group("rg"))
                status, doc, headers = self.resource(method, m.group("sub"), m.group("rg"),
                                                     kind, m.group("name"), body)
        except ArmError as e:
            entry["status"] = e.status
            entry["error"] = e.code
            self.record(entry)
            raise
        entry["status"] = status
        self.record(entry)
        self.send(status, doc, headers)

    def operation(self, m, query):
        st = self.server.state
        with st.lock:
            st.refresh()
            op = st.operations.get(m.group("id"))
            if op is None:
                raise ArmError(404, "NotFound", "Operation not found.")
            st.throttle(op["disk"])
            retry = {"Retry-After": str(st.retry_after(op["disk"]))}
            if (query.get("monitor") or [""])[0] == "true":
                if op["status"] == "InProgress":
                    return 202, None, retry
                if op["status"] == "Failed":
                    raise ArmError(400, op["fail"], "Injected failure")
                if op["kind"] == "create":
                    snap = st.snapshots.get(op["target"])
                    return 200, st.public_snapshot(snap) if snap else None, {}
                return 204, None, {}
            doc = {"name": op["id"], "startTime": op["startTime"], "status": op["status"]}
            if op["status"] != "InProgress":
                doc["endTime"] = op["endTime"]
            if op["status"] == "Failed":
                doc["error"] = {"code": op["fail"], "message": "Injected failure"}
            return 200, doc, retry if op["status"] == "InProgress" else {}

    def operation_headers(self, sub, op, disk_name):
        st = self.server.state
        url = "{}/subscriptions/{}/providers/Microsoft.Compute/locations/{}/DiskOperations/{}?p={}&api-version=2026-03-02".format(
            self.base_url(), sub, op["location"], op["id"], op["id"])
        return {"Azure-AsyncOperation": url,
                "Location": url + "&monitor=true",
                "Retry-After": str(st.retry_after(disk_name))}

    def resource(self, method, sub, rg, kind, name, body):
        st = self.server.state
        with st.lock:
            st.refresh()
            rg_name = st.group(sub, rg)
            key = (sub, rg.lower(), name)
            table = {"virtualMachines": st.vms, "disks": st.disks, "snapshots": st.snapshots}[kind]
            existing = table.get(key)
            concerned = None
            if kind == "disks":
                concerned = name
            elif kind == "snapshots" and existing is not None:
                concerned = existing.get("_source_disk")
            if method == "GET":
                st.throttle(concerned)
                if existing is None:
                    raise ArmError(404, "ResourceNotFound",
                                   "The Resource 'Microsoft.Compute/{}/{}' under resource group '{}' was not found. "
                                   "For more details please go to https://aka.ms/ARMResourceNotFoundFix".format(
                                       kind, name, rg_name))
                if kind == "snapshots":
                    return 200, st.public_snapshot(existing), {}
                return 200, existing, {}
            if kind != "snapshots":
                raise ArmError(405, "MethodNotAllowed",
                               "This fake only reads {}.".format(kind))
            if method == "DELETE":
                st.throttle(concerned)
                if existing is None:
                    return 204, None, {}
                op = st.start_operation("delete", key, existing["location"], concerned)
                existing["_delete_operation"] = op["id"]
                return 202, None, self.operation_headers(sub, op, concerned)
            if method == "PUT":
                return self.put_snapshot(sub, rg_name, key, name, existing, body)
            raise ArmError(405, "MethodNotAllowed", "Unsupported method")

    def put_snapshot(self, sub, rg_name, key, name, existing, body):
        st = self.server.state
        try:
            doc = json.loads(body or b"null")
            props = doc["properties"]
            creation = props["creationData"]
            location = doc["location"]
        except (ValueError, KeyError, TypeError):
            raise ArmError(400, "InvalidRequestContent",
                           "The request content was invalid and could not be deserialized.")
        if creation.get("createOption") != "Copy":
            raise ArmError(400, "InvalidParameter",
                           "This fake only creates snapshots with createOption Copy.")
        source_id = creation.get("sourceUri") or creation.get("sourceResourceId")
        disk = st.find_disk_by_id(source_id)
        if disk is None:
            raise ArmError(404, "NotFound", "Resource {} is not found.".format(source_id))
        st.throttle(disk["name"])
        if disk["location"].lower() != str(location).lower():
            raise ArmError(400, "InvalidParameter",
                           "The snapshot must be in the location of its source disk ({}).".format(
                               disk["location"]))
        now = time.time()
        op = st.start_operation("create", key, disk["location"], disk["name"])
        snap = {
            "id": resource_id(sub, rg_name, "snapshots", name),
            "name": name,
            "type": "Microsoft.Compute/snapshots",
            "location": disk["location"],
            "sku": {"name": "Standard_ZRS", "tier": "Standard"},
            "properties": {
                "creationData": {"createOption": "Copy", "sourceResourceId": disk["id"],
                                 "sourceUniqueId": disk["properties"]["uniqueId"]},
                "incremental": bool(props.get("incremental", False)),
                "diskSizeGB": disk["properties"]["diskSizeGB"],
                "provisioningState": "Updating" if existing else "Creating",
                "timeCreated": existing["properties"]["timeCreated"] if existing else iso(now),
                "uniqueId": existing["properties"]["uniqueId"] if existing else str(uuid.uuid4()),
            },
            "_source_disk": disk["name"],
            "_operation": op["id"],
        }
        st.snapshots[key] = snap
        return 202, None, self.operation_headers(sub, op, disk["name"])

    # -- control API
    def control(self, method, path, query, body):
        st = self.server.state
        doc = json.loads(body) if body else {}
        with st.lock:
            if path == "/_fake/health":
                return self.send(200, {"ok": True})
            if path == "/_fake/reset" and method == "POST":
                st.reset()
                return self.send(200, {"ok": True})
            if path == "/_fake/calls":
                since = int((query.get("since") or ["0"])[0])
                kinds = query.get("kind")
                calls = [c for c in st.calls if c["seq"] > since
                         and (not kinds or c.get("kind") in kinds)]
                return self.send(200, calls)
            if path == "/_fake/state":
                st.refresh()
                return self.send(200, {
                    "resource_groups": sorted("{}/{}".format(*k) for k in st.groups),
                    "vms": list(st.vms.values()),
                    "disks": list(st.disks.values()),
                    "snapshots": [st.public_snapshot(s) for s in st.snapshots.values()],
                    "operations": list(st.operations.values()),
                })
            if path == "/_fake/resource-group" and method == "POST":
                st.add_group(doc["subscription"], doc["resource_group"])
                return self.send(200, {"ok": True})
            if path == "/_fake/service-principal" and method == "POST":
                st.principals[(doc["tenant"], doc["client_id"])] = doc["client_secret"]
                return self.send(200, {"ok": True})
            if path == "/_fake/disk" and method == "POST":
                disk = st.make_disk(doc["subscription"], doc["resource_group"], doc["name"],
                                    doc.get("location", "westeurope"),
                                    doc.get("source_snapshot_id"))
                return self.send(200, disk)
            if path == "/_fake/vm" and method == "POST":
                return self.send(200, self.make_vm(doc))
            m = re.match(r"^/_fake/disk/([^/]+)/behaviour$", path)
            if m:
                settings = st.behaviour.setdefault(m.group(1), {})
                if method == "POST":
                    for k, v in doc.items():
                        if v is None:
                            settings.pop(k, None)
                        else:
                            settings[k] = v
                return self.send(200, settings)
        raise ArmError(404, "NotFound", "Unknown control path {}".format(path))

    def make_vm(self, doc):
        st = self.server.state
        sub, rg, name = doc["subscription"], doc["resource_group"], doc["name"]
        location = doc.get("location", "westeurope")
        st.add_group(sub, rg)
        os_name = doc.get("os_disk") or name + "-os"
        os_disk = st.make_disk(sub, rg, os_name, location)
        os_disk["properties"]["diskState"] = "Attached"
        data = []
        for d in doc.get("data_disks", []):
            disk = st.make_disk(sub, rg, d["name"], d.get("location", location),
                                d.get("source_snapshot_id"))
            disk["properties"]["diskState"] = "Attached"
            data.append({
                "lun": int(d["lun"]),
                "name": d["name"],
                "createOption": "Attach",
                "caching": "None",
                "diskSizeGB": disk["properties"]["diskSizeGB"],
                "managedDisk": {"id": disk["id"], "storageAccountType": "Premium_LRS"},
                "toBeDetached": False,
            })
        vm = {
            "id": resource_id(sub, st.groups[(sub, rg.lower())], "virtualMachines", name),
            "name": name,
            "type": "Microsoft.Compute/virtualMachines",
            "location": location,
            "properties": {
                "vmId": str(uuid.uuid4()),
                "hardwareProfile": {"vmSize": "Standard_D2s_v5"},
                "storageProfile": {
                    "osDisk": {
                        "osType": "Linux",
                        "name": os_name,
                        "createOption": "FromImage",
                        "caching": "ReadWrite",
                        "managedDisk": {"id": os_disk["id"], "storageAccountType": "Premium_LRS"},
                        "diskSizeGB": os_disk["properties"]["diskSizeGB"],
                    },
                    "dataDisks": data,
                },
                "provisioningState": "Succeeded",
            },
        }
        st.vms[(sub, rg.lower(), name)] = vm
        return vm


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, retry_after, tls_context=None):
        self.state = State(retry_after)
        self.tls = tls_context is not None
        super().__init__(address, Handler)
        if tls_context is not None:
            self.socket = tls_context.wrap_socket(self.socket, server_side=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--port-file", help="write the port number to this file")
    parser.add_argument("--retry-after", type=int, default=1,
                        help="Retry-After (seconds) of operation and throttling answers")
    parser.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate")
    parser.add_argument("--tls-key", help="...and this PEM key")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    context = None
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
    httpd = Server((args.host, args.port), args.retry_after, context)
    port = httpd.server_address[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write("{}\n".format(port))
        os.replace(args.port_file + ".tmp", args.port_file)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("listening on {}://{}:{}".format("https" if context else "http", args.host, port),
          flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()
