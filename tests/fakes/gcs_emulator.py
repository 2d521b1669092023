"""GCS emulator for barman-rs tests: gcp-storage-emulator plus the GCS XML API.

This is a test fake that *extends a real emulator*. gcp-storage-emulator (PyPI) implements the
GCS JSON API, which is what Python Barman's google-cloud-storage client mostly speaks. But two
clients we must test need the GCS **XML API**, which no GCS emulator in the package registries
implements:

* Barman 3.20.1 uploads every ``data.tar`` through the XML multipart upload API
  (``XMLMPUContainer``/``XMLMPUPart`` from google-cloud-storage);
* the Rust ``object_store`` crate's GCS client uses the XML API for everything
  (PUT/GET/HEAD/DELETE object, ListObjectsV2-style listing, multipart upload, copy).

So this launcher runs the emulator's own HTTP handler and storage layer, and answers XML API
requests itself before they reach the emulator's router. Every object is stored through the
emulator's ``Storage`` (same object records, same files), so objects written through the XML
routes are visible through the JSON API and the other way round. One storage method is replaced
(``FlatStorage``: one flat file per object, so that objects ``a/b`` and ``a/b/c`` can coexist) and
one added (ranged reads without reading the whole file). Multipart parts are spooled to
``DATA_DIR/.xml-multipart/<upload id>/`` until the upload is completed or aborted. Requests are
served one at a time, like the emulator's own server does (its storage is not thread safe).

Written from the documented XML API behaviour
(https://cloud.google.com/storage/docs/xml-api/overview and the per-request pages linked below).
What is implemented, per request:

* ``PUT /BUCKET/KEY`` upload (put-object-upload): ``Content-Type``, ``Cache-Control``,
  ``Content-Disposition``, ``Content-Encoding``, ``Content-Language``, ``x-goog-meta-*``,
  ``x-goog-storage-class``; ``x-goog-if-generation-match`` (``0`` = must not exist) -> 412.
  Answers ``ETag`` (quoted hex MD5), ``x-goog-generation``, ``x-goog-hash``.
* ``PUT /BUCKET/KEY`` with ``x-goog-copy-source: BUCKET/KEY`` (put-object-copy), with
  ``x-goog-metadata-directive`` COPY/REPLACE and the generation precondition on the target.
* ``GET``/``HEAD /BUCKET/KEY`` (get-object-download): ``Range`` (``a-b``, ``a-``, ``-n``) -> 206
  or 416, ``?generation=``, ``If-Match``/``If-None-Match``/``If-(Un)Modified-Since``,
  ``x-goog-if-generation-match``; headers ``Content-Length``, ``ETag``, ``Last-Modified``,
  ``x-goog-generation``, ``x-goog-metageneration``, ``x-goog-meta-*``.
* ``DELETE /BUCKET/KEY`` (delete-object) -> 204, or 404 ``NoSuchKey``.
* ``GET /BUCKET?list-type=2&prefix&delimiter&continuation-token&start-after&max-keys``
  (get-bucket-list) -> ``ListBucketResult``.
* ``PUT``/``HEAD``/``DELETE /BUCKET`` (bucket create, exists, delete).
* Multipart (post-object-multipart, put-object-multipart, post-object-complete,
  delete-multipart): ``POST ?uploads``, ``PUT ?partNumber=N&uploadId=U`` (answers ``ETag`` and
  the ``x-goog-hash`` that google-cloud-storage verifies), ``POST ?uploadId=U`` with a
  ``CompleteMultipartUpload`` body (parts must be ascending and match their ETags), and
  ``DELETE ?uploadId=U``.

Errors are XML ``<Error><Code>..</Code><Message>..</Message><Details>..</Details></Error>``
bodies: NoSuchBucket, NoSuchKey, NoSuchUpload, PreconditionFailed, InvalidRange, InvalidPart,
InvalidPartOrder, InvalidArgument, MalformedXML, BucketNotEmpty, BucketAlreadyOwnedByYou,
InternalError (a bug here; logged with its traceback).
Not implemented: authentication (any or no bearer token is accepted), ListParts,
ListMultipartUploads, ACLs, object versioning beyond ``generation``.

Usage (with the gcs-venv interpreter, which has gcp-storage-emulator installed)::

    python tests/fakes/gcs_emulator.py --host 127.0.0.1 --port 9023 --data-dir /tmp/gcs
    export STORAGE_EMULATOR_HOST=http://127.0.0.1:9023   # Python clients
    # object_store 0.14: GoogleCloudStorageBuilder::new().with_bucket_name(..)
    #   .with_base_url("http://127.0.0.1:9023")
    #   .with_client_options(ClientOptions::new().with_allow_http(true))
    #   .with_credentials(Arc::new(StaticCredentialProvider::new(GcpCredential { bearer: "".into() })))
    #   (or a service-account key file with "disable_oauth": true, as object_store's own tests do)
"""

import argparse
import base64
import email.utils
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import sys
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from functools import partial
from http import HTTPStatus
from http.server import HTTPServer
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

from gcp_storage_emulator.exceptions import Conflict, NotFound
from gcp_storage_emulator.handlers import buckets as em_buckets
from gcp_storage_emulator.handlers import objects as em_objects
from gcp_storage_emulator.server import RequestHandler
from gcp_storage_emulator.storage import Storage

logger = logging.getLogger("gcs_emulator")

# First path segments the emulator's JSON API owns; everything else is an XML API bucket.
JSON_API_SEGMENTS = {"", "storage", "upload", "download", "batch", "b", "wipe"}
S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"  # google-cloud-storage looks for this one
LIST_NS = "http://doc.s3.amazonaws.com/2006-03-01"  # what GCS puts on ListBucketResult
MULTIPART_DIR = ".xml-multipart"
UPLOAD_ID_RE = re.compile(r"^[0-9a-f]{32}$")


class FlatStorage(Storage):
    """The emulator's storage, with each object's bytes in one flat file per object.

    The emulator keeps object ``a/b/c`` in the file ``BUCKET/a/b/c``, so objects ``a/b`` and
    ``a/b/c`` cannot both exist (a file where a directory is needed) and ``.`` segments vanish.
    Naming the file after a hash of the object name avoids both; the object records (names,
    metadata) stay in the emulator's own ``.meta`` file, shared by the JSON and XML APIs.
    """

    def _object_path(self, bucket_name, file_name):
        return "{}/{}".format(bucket_name, hashlib.sha256(file_name.encode("utf-8")).hexdigest())

    def read_range(self, bucket_name, file_name, start, length):
        """Bytes [start, start + length) of an object, reading only those from disk."""
        if self._use_memory_fs:
            return self.get_file(bucket_name, file_name)[start:start + length]
        try:
            with open(self._store._disk_path(self._object_path(bucket_name, file_name)), "rb") as f:
                f.seek(start)
                return f.read(length)
        except OSError:
            raise NotFound


class XmlError(Exception):
    """An XML API error answer."""

    MESSAGES = {
        "NoSuchBucket": "The specified bucket does not exist.",
        "NoSuchKey": "The specified key does not exist.",
        "NoSuchUpload": "The requested upload was not found.",
        "PreconditionFailed": "At least one of the pre-conditions you specified did not hold.",
        "InvalidRange": "The requested range cannot be satisfied.",
        "InvalidPart": "One or more of the specified parts could not be found.",
        "InvalidPartOrder": "The list of parts was not in ascending order.",
        "InvalidArgument": "Invalid argument.",
        "MalformedXML": "The XML you provided was not well-formed.",
        "BucketNotEmpty": "The bucket you tried to delete is not empty.",
        "BucketAlreadyOwnedByYou": "Your previous request to create the named bucket succeeded.",
        "NotImplemented": "This request is not implemented by the test emulator.",
        "InternalError": "The test emulator failed; see its log.",
    }

    def __init__(self, status, code, details="", headers=None):
        super().__init__(code)
        self.status, self.code, self.details = status, code, details
        self.headers = headers or {}


def http_date(rfc3339):
    """'2026-01-02T03:04:05.123456Z' -> 'Fri, 02 Jan 2026 03:04:05 GMT'."""
    return email.utils.format_datetime(parse_time(rfc3339), usegmt=True)


def parse_time(rfc3339):
    return datetime.strptime(rfc3339, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def etag_of(obj):
    """Quoted hex MD5, the XML API's ETag for a non-composite object."""
    return '"{}"'.format(base64.b64decode(obj["md5Hash"]).hex())


def strip_quotes(etag):
    return etag.strip().strip('"')


class XmlApiHandler(RequestHandler):
    """The emulator's request handler, with the XML API answered before its router runs."""

    server_version = "barman-rs-gcs-emulator"

    # -- dispatch ---------------------------------------------------------------------------

    def do_GET(self):
        self.dispatch("GET", super().do_GET)

    def do_HEAD(self):
        self.dispatch("HEAD", None)

    def do_PUT(self):
        self.dispatch("PUT", super().do_PUT)

    def do_POST(self):
        self.dispatch("POST", super().do_POST)

    def do_DELETE(self):
        self.dispatch("DELETE", super().do_DELETE)

    def dispatch(self, method, json_api):
        url = urlsplit(self.path)
        raw_bucket, _, raw_key = url.path.lstrip("/").partition("/")
        bucket, key = unquote(raw_bucket), unquote(raw_key)
        if bucket in JSON_API_SEGMENTS and json_api is not None:
            return json_api()
        self.query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        self.head_only = method == "HEAD"
        self.body_read = False
        try:
            if not bucket:
                raise XmlError(HTTPStatus.NOT_IMPLEMENTED, "NotImplemented")
            if key:
                self.object_request(method, bucket, key)
            else:
                self.bucket_request(method, bucket)
        except XmlError as err:
            self.send_error_xml(err)
        except Exception as err:  # a bug in this fake or in the emulator: say so, keep serving
            logger.exception("%s %s failed", method, self.path)
            self.send_error_xml(XmlError(HTTPStatus.INTERNAL_SERVER_ERROR, "InternalError", repr(err)))

    def object_request(self, method, bucket, key):
        q = self.query
        if method == "POST" and "uploads" in q:
            return self.multipart_initiate(bucket, key)
        if method == "PUT" and "uploadId" in q:
            return self.multipart_put_part(bucket, key)
        if method == "POST" and "uploadId" in q:
            return self.multipart_complete(bucket, key)
        if method == "DELETE" and "uploadId" in q:
            return self.multipart_abort(bucket, key)
        if method == "PUT" and self.headers.get("x-goog-copy-source"):
            return self.copy_object(bucket, key)
        if method == "PUT":
            return self.put_object(bucket, key)
        if method in ("GET", "HEAD"):
            return self.get_object(bucket, key)
        if method == "DELETE":
            return self.delete_object(bucket, key)
        raise XmlError(HTTPStatus.NOT_IMPLEMENTED, "NotImplemented")

    def bucket_request(self, method, bucket):
        if method == "GET":
            return self.list_objects(bucket)
        if method == "HEAD":
            self.require_bucket(bucket)
            return self.send_reply(HTTPStatus.OK)
        if method == "PUT":
            if self.storage.get_bucket(bucket) is not None:
                raise XmlError(HTTPStatus.CONFLICT, "BucketAlreadyOwnedByYou")
            em_buckets.create_bucket(bucket, self.storage)
            return self.send_reply(HTTPStatus.OK)
        if method == "DELETE":
            self.require_bucket(bucket)
            try:
                self.storage.delete_bucket(bucket)
            except Conflict as err:
                raise XmlError(HTTPStatus.CONFLICT, "BucketNotEmpty", str(err))
            return self.send_reply(HTTPStatus.NO_CONTENT)
        raise XmlError(HTTPStatus.NOT_IMPLEMENTED, "NotImplemented")

    # -- request and response helpers --------------------------------------------------------

    def read_body(self):
        self.body_read = True
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

    def send_reply(self, status, body=b"", headers=None, content_type=None):
        self.send_response(status.value, status.phrase)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if content_type:
            self.send_header("Content-Type", content_type)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and not self.head_only:
            self.wfile.write(body)

    def send_xml(self, status, xml_text, headers=None):
        body = ("<?xml version='1.0' encoding='UTF-8'?>" + xml_text).encode("utf-8")
        self.send_reply(status, body, headers, "application/xml; charset=UTF-8")

    def send_error_xml(self, err):
        if not self.body_read:
            self.read_body()  # so that a client still sending its body gets the answer
        message = XmlError.MESSAGES.get(err.code, err.code)
        self.send_xml(
            err.status,
            "<Error><Code>{}</Code><Message>{}</Message><Details>{}</Details></Error>".format(
                err.code, escape(message), escape(err.details)
            ),
            err.headers,
        )

    def require_bucket(self, bucket):
        if self.storage.get_bucket(bucket) is None:
            raise XmlError(HTTPStatus.NOT_FOUND, "NoSuchBucket", bucket)

    def require_object(self, bucket, key):
        self.require_bucket(bucket)
        try:
            return self.storage.get_file_obj(bucket, key)
        except NotFound:
            raise XmlError(HTTPStatus.NOT_FOUND, "NoSuchKey", "{}/{}".format(bucket, key))

    def current_object(self, bucket, key):
        try:
            return self.storage.get_file_obj(bucket, key)
        except NotFound:
            return None

    def check_generation_match(self, existing):
        """x-goog-if-generation-match: '0' = must not exist, else = current generation."""
        want = self.headers.get("x-goog-if-generation-match")
        if want is None:
            return
        have = existing["generation"] if existing else "0"
        if want.strip() != have:
            raise XmlError(HTTPStatus.PRECONDITION_FAILED, "PreconditionFailed",
                           "x-goog-if-generation-match: {} (object generation {})".format(want, have))

    def base_url(self):
        return "http://{}".format(self.headers.get("Host") or "%s:%s" % self.server.server_address)

    def attributes_from_headers(self):
        """Object resource fields set by upload headers (upload or multipart initiate)."""
        h = self.headers
        fields = {"contentType": h.get("Content-Type") or "application/octet-stream"}
        for header, field in (
            ("Cache-Control", "cacheControl"),
            ("Content-Disposition", "contentDisposition"),
            ("Content-Encoding", "contentEncoding"),
            ("Content-Language", "contentLanguage"),
            ("x-goog-storage-class", "storageClass"),
        ):
            if h.get(header):
                fields[field] = h[header]
        metadata = {
            name[len("x-goog-meta-"):]: value
            for name, value in h.items()
            if name.lower().startswith("x-goog-meta-")
        }
        if metadata:
            fields["metadata"] = metadata
        return fields

    def store_object(self, bucket, key, data, fields):
        """Create the object through the emulator's storage layer, as its JSON API does."""
        obj = em_objects._make_object_resource(
            self.base_url(), bucket, key, fields["contentType"], str(len(data))
        )
        obj.update(fields)
        obj = em_objects._checksums(data, obj)
        self.storage.create_file(bucket, key, data, obj)
        return obj

    def object_headers(self, obj):
        headers = {
            "ETag": etag_of(obj),
            "Last-Modified": http_date(obj["updated"]),
            "x-goog-generation": obj["generation"],
            "x-goog-metageneration": obj.get("metageneration", "1"),
            "x-goog-stored-content-length": str(obj["size"]),
            "x-goog-storage-class": obj.get("storageClass") or "STANDARD",
        }
        for field, header in (
            ("contentType", "Content-Type"),
            ("cacheControl", "Cache-Control"),
            ("contentDisposition", "Content-Disposition"),
            ("contentEncoding", "Content-Encoding"),
            ("contentLanguage", "Content-Language"),
        ):
            if obj.get(field):
                headers[header] = obj[field]
        if obj.get("contentEncoding"):
            headers["x-goog-stored-content-encoding"] = obj["contentEncoding"]
        for name, value in (obj.get("metadata") or {}).items():
            if value is not None:
                headers["x-goog-meta-" + name] = str(value)
        return headers

    @staticmethod
    def hash_header(obj):
        return "crc32c={},md5={}".format(obj["crc32c"], obj["md5Hash"])

    # -- objects ------------------------------------------------------------------------------

    def put_object(self, bucket, key):
        """https://cloud.google.com/storage/docs/xml-api/put-object-upload"""
        data = self.read_body()
        self.require_bucket(bucket)
        self.check_generation_match(self.current_object(bucket, key))
        obj = self.store_object(bucket, key, data, self.attributes_from_headers())
        self.send_reply(HTTPStatus.OK, headers={
            "ETag": etag_of(obj),
            "x-goog-generation": obj["generation"],
            "x-goog-metageneration": obj["metageneration"],
            "x-goog-hash": self.hash_header(obj),
            "x-goog-stored-content-length": str(obj["size"]),
        })

    def copy_object(self, bucket, key):
        """https://cloud.google.com/storage/docs/xml-api/put-object-copy"""
        self.read_body()
        source = unquote(self.headers["x-goog-copy-source"]).lstrip("/")
        src_bucket, _, src_key = source.partition("/")
        src_obj = self.require_object(src_bucket, src_key)
        self.require_bucket(bucket)
        self.check_generation_match(self.current_object(bucket, key))
        data = self.storage.get_file(src_bucket, src_key)
        if self.headers.get("x-goog-metadata-directive", "COPY").upper() == "REPLACE":
            fields = self.attributes_from_headers()
        else:
            keep = ("contentType", "cacheControl", "contentDisposition", "contentEncoding",
                    "contentLanguage", "storageClass", "metadata")
            fields = {k: src_obj[k] for k in keep if src_obj.get(k) is not None}
            fields.setdefault("contentType", "application/octet-stream")
        obj = self.store_object(bucket, key, data, fields)
        self.send_xml(
            HTTPStatus.OK,
            "<CopyObjectResult><LastModified>{}</LastModified><ETag>{}</ETag></CopyObjectResult>"
            .format(obj["updated"], escape(etag_of(obj))),
            {"x-goog-generation": obj["generation"], "ETag": etag_of(obj)},
        )

    def get_object(self, bucket, key):
        """https://cloud.google.com/storage/docs/xml-api/get-object-download (and HEAD)"""
        obj = self.require_object(bucket, key)
        if "generation" in self.query and self.query["generation"] != obj["generation"]:
            raise XmlError(HTTPStatus.NOT_FOUND, "NoSuchKey", "generation " + self.query["generation"])
        self.check_generation_match(obj)
        headers = self.object_headers(obj)
        if not self.conditions_hold(obj, headers):
            return
        size = int(obj["size"])
        headers["Accept-Ranges"] = "bytes"
        byte_range = self.parse_range(size)
        if byte_range is None:
            data = b"" if self.head_only else self.storage.get_file(bucket, key)
            headers["x-goog-hash"] = self.hash_header(obj)
            headers["Content-Length"] = str(size)
            return self.send_reply(HTTPStatus.OK, data, headers)
        start, end = byte_range  # inclusive
        data = b"" if self.head_only else self.storage.read_range(bucket, key, start, end - start + 1)
        headers["Content-Range"] = "bytes {}-{}/{}".format(start, end, size)
        headers["Content-Length"] = str(end - start + 1)
        self.send_reply(HTTPStatus.PARTIAL_CONTENT, data, headers)

    def conditions_hold(self, obj, headers):
        """If-Match / If-Unmodified-Since -> 412; If-None-Match / If-Modified-Since -> 304."""
        etag = strip_quotes(headers["ETag"])
        modified = parse_time(obj["updated"]).replace(microsecond=0)
        h = self.headers
        if h.get("If-Match") and not any(
            t.strip() == "*" or strip_quotes(t) == etag for t in h["If-Match"].split(",")
        ):
            raise XmlError(HTTPStatus.PRECONDITION_FAILED, "PreconditionFailed", "If-Match")
        if h.get("If-Unmodified-Since"):
            since = email.utils.parsedate_to_datetime(h["If-Unmodified-Since"])
            if modified > since:
                raise XmlError(HTTPStatus.PRECONDITION_FAILED, "PreconditionFailed",
                               "If-Unmodified-Since")
        not_modified = False
        if h.get("If-None-Match"):
            not_modified = any(
                t.strip() == "*" or strip_quotes(t) == etag for t in h["If-None-Match"].split(",")
            )
        elif h.get("If-Modified-Since"):
            not_modified = modified <= email.utils.parsedate_to_datetime(h["If-Modified-Since"])
        if not_modified:
            keep = ("ETag", "Last-Modified", "x-goog-generation", "x-goog-metageneration")
            self.send_reply(HTTPStatus.NOT_MODIFIED, headers={k: headers[k] for k in keep})
            return False
        return True

    def parse_range(self, size):
        """Returns (first, last) inclusive, None for no/ignored Range, or raises 416."""
        value = self.headers.get("Range")
        if not value:
            return None
        m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", value)
        if not m or (m.group(1) == "" and m.group(2) == ""):
            return None  # unsupported syntax (e.g. several ranges): whole object, like GCS
        first, last = m.group(1), m.group(2)
        if first == "":  # suffix: the last N bytes
            n = int(last)
            if n == 0 or size == 0:
                raise self.range_error(size)
            return max(0, size - n), size - 1
        first = int(first)
        last = size - 1 if last == "" else min(int(last), size - 1)
        if first >= size or first > last:
            raise self.range_error(size)
        return first, last

    @staticmethod
    def range_error(size):
        return XmlError(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, "InvalidRange",
                        headers={"Content-Range": "bytes */{}".format(size)})

    def delete_object(self, bucket, key):
        """https://cloud.google.com/storage/docs/xml-api/delete-object"""
        obj = self.require_object(bucket, key)
        self.check_generation_match(obj)
        self.storage.delete_file(bucket, key)
        self.send_reply(HTTPStatus.NO_CONTENT)

    # -- listing ------------------------------------------------------------------------------

    def list_objects(self, bucket):
        """https://cloud.google.com/storage/docs/xml-api/get-bucket-list (list-type=2)"""
        self.require_bucket(bucket)
        q = self.query
        prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
        try:
            max_keys = min(max(int(q.get("max-keys", "1000")), 1), 1000)
        except ValueError:
            raise XmlError(HTTPStatus.BAD_REQUEST, "InvalidArgument", "max-keys")
        after, after_is_prefix = q.get("start-after", ""), False
        if q.get("continuation-token"):
            try:
                token = json.loads(base64.urlsafe_b64decode(q["continuation-token"]))
                if token["after"] >= after:
                    after, after_is_prefix = token["after"], bool(token["prefix"])
            except (ValueError, KeyError, TypeError):
                raise XmlError(HTTPStatus.BAD_REQUEST, "InvalidArgument", "continuation-token")

        objects = self.storage.objects.get(bucket, {})
        entries = []  # (name, object or None for a common prefix), in key order
        truncated = False
        for name in sorted(n for n in objects if n.startswith(prefix)):
            if name <= after or (after_is_prefix and name.startswith(after)):
                continue
            rolled = None
            if delimiter:
                cut = name.find(delimiter, len(prefix))
                if cut >= 0:
                    rolled = name[:cut + len(delimiter)]
            if rolled is not None and entries and entries[-1][0] == rolled and entries[-1][1] is None:
                continue  # same common prefix as the previous entry
            if len(entries) == max_keys:
                truncated = True
                break
            entries.append((rolled, None) if rolled is not None else (name, objects[name]))

        parts = ['<ListBucketResult xmlns="{}">'.format(LIST_NS)]
        parts.append("<Name>{}</Name>".format(escape(bucket)))
        parts.append("<Prefix>{}</Prefix>".format(escape(prefix)))
        if delimiter:
            parts.append("<Delimiter>{}</Delimiter>".format(escape(delimiter)))
        if "start-after" in q:
            parts.append("<StartAfter>{}</StartAfter>".format(escape(q["start-after"])))
        if "continuation-token" in q:
            parts.append("<ContinuationToken>{}</ContinuationToken>".format(
                escape(q["continuation-token"])))
        parts.append("<KeyCount>{}</KeyCount><MaxKeys>{}</MaxKeys>".format(len(entries), max_keys))
        parts.append("<IsTruncated>{}</IsTruncated>".format("true" if truncated else "false"))
        if truncated:
            last_name, last_obj = entries[-1]
            token = json.dumps({"after": last_name, "prefix": last_obj is None}).encode()
            parts.append("<NextContinuationToken>{}</NextContinuationToken>".format(
                base64.urlsafe_b64encode(token).decode()))
        for name, obj in entries:
            if obj is None:
                parts.append("<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>".format(
                    escape(name)))
            else:
                parts.append(
                    "<Contents><Key>{}</Key><Generation>{}</Generation>"
                    "<MetaGeneration>{}</MetaGeneration><LastModified>{}</LastModified>"
                    "<ETag>{}</ETag><Size>{}</Size><StorageClass>{}</StorageClass></Contents>"
                    .format(escape(name), obj["generation"], obj.get("metageneration", "1"),
                            obj["updated"], escape(etag_of(obj)), int(obj["size"]),
                            obj.get("storageClass") or "STANDARD"))
        parts.append("</ListBucketResult>")
        self.send_xml(HTTPStatus.OK, "".join(parts))

    # -- multipart upload ---------------------------------------------------------------------

    def upload_dir(self, bucket, key):
        """The spool directory of ?uploadId=..., which must belong to this bucket and key."""
        upload_id = self.query.get("uploadId", "")
        path = os.path.join(self.server.multipart_root, upload_id)
        try:
            with open(os.path.join(path, "upload.json")) as f:
                info = json.load(f)
        except (OSError, ValueError):
            info = None
        if not UPLOAD_ID_RE.match(upload_id) or not info or (info["bucket"], info["key"]) != (bucket, key):
            raise XmlError(HTTPStatus.NOT_FOUND, "NoSuchUpload", upload_id)
        return path, info

    def multipart_initiate(self, bucket, key):
        """https://cloud.google.com/storage/docs/xml-api/post-object-multipart"""
        self.read_body()
        self.require_bucket(bucket)
        upload_id = secrets.token_hex(16)
        path = os.path.join(self.server.multipart_root, upload_id)
        os.makedirs(path)
        with open(os.path.join(path, "upload.json"), "w") as f:
            json.dump({"bucket": bucket, "key": key, "fields": self.attributes_from_headers()}, f)
        self.send_xml(
            HTTPStatus.OK,
            '<InitiateMultipartUploadResult xmlns="{}"><Bucket>{}</Bucket><Key>{}</Key>'
            "<UploadId>{}</UploadId></InitiateMultipartUploadResult>".format(
                S3_NS, escape(bucket), escape(key), upload_id),
        )

    def multipart_put_part(self, bucket, key):
        """https://cloud.google.com/storage/docs/xml-api/put-object-multipart"""
        data = self.read_body()
        path, _ = self.upload_dir(bucket, key)
        try:
            number = int(self.query.get("partNumber", ""))
        except ValueError:
            number = 0
        if not 1 <= number <= 10000:
            raise XmlError(HTTPStatus.BAD_REQUEST, "InvalidArgument", "partNumber must be 1..10000")
        md5 = hashlib.md5(data)
        part = os.path.join(path, "part-{:05d}".format(number))
        with open(part + ".tmp", "wb") as f:
            f.write(data)
        os.replace(part + ".tmp", part)  # a retried part replaces the earlier one
        with open(part + ".etag", "w") as f:
            f.write(md5.hexdigest())
        self.send_reply(HTTPStatus.OK, headers={
            "ETag": '"{}"'.format(md5.hexdigest()),
            "x-goog-hash": "crc32c={},md5={}".format(
                em_objects._crc32c(data), base64.b64encode(md5.digest()).decode()),
        })

    def multipart_complete(self, bucket, key):
        """https://cloud.google.com/storage/docs/xml-api/post-object-complete"""
        body = self.read_body()
        path, info = self.upload_dir(bucket, key)
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            raise XmlError(HTTPStatus.BAD_REQUEST, "MalformedXML")

        def local(el):  # tag name without its namespace
            return el.tag.rpartition("}")[2]

        listed = []
        for part in (el for el in root if local(el) == "Part"):
            fields = {local(child): (child.text or "").strip() for child in part}
            try:
                listed.append((int(fields["PartNumber"]), strip_quotes(fields["ETag"])))
            except (KeyError, ValueError):
                raise XmlError(HTTPStatus.BAD_REQUEST, "MalformedXML", "Part needs PartNumber and ETag")
        if not listed:
            raise XmlError(HTTPStatus.BAD_REQUEST, "MalformedXML", "no Part")
        numbers = [n for n, _ in listed]
        if numbers != sorted(set(numbers)):
            raise XmlError(HTTPStatus.BAD_REQUEST, "InvalidPartOrder")
        chunks = []
        for number, etag in listed:
            part = os.path.join(path, "part-{:05d}".format(number))
            try:
                with open(part + ".etag") as f:
                    stored = f.read()
                with open(part, "rb") as f:
                    data = f.read()
            except OSError:
                raise XmlError(HTTPStatus.BAD_REQUEST, "InvalidPart", "part {}".format(number))
            if stored != etag:
                raise XmlError(HTTPStatus.BAD_REQUEST, "InvalidPart",
                               "part {}: ETag {} != {}".format(number, etag, stored))
            chunks.append(data)
        self.require_bucket(bucket)
        obj = self.store_object(bucket, key, b"".join(chunks), info["fields"])
        shutil.rmtree(path, ignore_errors=True)
        self.send_xml(
            HTTPStatus.OK,
            "<CompleteMultipartUploadResult xmlns=\"{}\"><Location>{}/{}/{}</Location>"
            "<Bucket>{}</Bucket><Key>{}</Key><ETag>{}</ETag></CompleteMultipartUploadResult>".format(
                S3_NS, escape(self.base_url()), escape(bucket), escape(key), escape(bucket),
                escape(key), escape(etag_of(obj))),
            {"x-goog-generation": obj["generation"], "ETag": etag_of(obj)},
        )

    def multipart_abort(self, bucket, key):
        """https://cloud.google.com/storage/docs/xml-api/delete-multipart"""
        self.read_body()
        path, _ = self.upload_dir(bucket, key)
        shutil.rmtree(path, ignore_errors=True)
        self.send_reply(HTTPStatus.NO_CONTENT)


class EmulatorServer(HTTPServer):
    # The emulator's storage is not thread safe, so requests are served one at a time, like
    # the emulator's own server does; a deep accept queue keeps parallel clients from stalling
    # in SYN retries while they wait.
    request_queue_size = 128

    def __init__(self, address, storage, multipart_root):
        self.multipart_root = multipart_root
        super().__init__(address, partial(XmlApiHandler, storage))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9023)
    parser.add_argument("--data-dir", required=True,
                        help="objects go to DATA_DIR/.cloudstorage, multipart parts to "
                             "DATA_DIR/" + MULTIPART_DIR)
    parser.add_argument("--in-memory", action="store_true",
                        help="keep objects in memory (multipart parts are still spooled to disk)")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # The emulator's batch handler warns about every response it builds; drop that noise.
    logging.getLogger("gcp_storage_emulator.server").addFilter(
        lambda record: "handled as string" not in record.getMessage())
    data_dir = os.path.abspath(args.data_dir)
    multipart_root = os.path.join(data_dir, MULTIPART_DIR)
    os.makedirs(multipart_root, exist_ok=True)
    storage = FlatStorage(use_memory_fs=args.in_memory, data_dir=data_dir)
    httpd = EmulatorServer((args.host, args.port), storage, multipart_root)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    logger.warning("listening on http://%s:%s (data in %s)", args.host, httpd.server_port, data_dir)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()
