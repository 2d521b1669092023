"""Smoke test of tests/fakes/gcs_emulator.py: every XML API route, plus JSON API visibility.

    # XML routes only (any Python 3 with gcp-storage-emulator, e.g. the gcs-venv one); starts its
    # own emulator on a free 127.0.0.1 port unless --endpoint is given:
    $ROOT/gcs-venv/bin/python tests/fakes/gcs_emulator_smoke.py
    # ... and the JSON API checks (google-cloud-storage, e.g. from the barman-venv):
    $ROOT/gcs-venv/bin/python tests/fakes/gcs_emulator_smoke.py --json-python $ROOT/barman-venv/bin/python

The XML requests are shaped like the Rust object_store 0.14 GCS client's (keys percent-encoded
except ASCII letters and digits, ``x-goog-if-generation-match``, ``list-type=2`` listing,
multipart upload). Prints one line per check and ends with ``N passed, 0 failed``; exits 1 on
the first failure.
"""

import argparse
import email.utils
import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
PASSED = 0


def check(name, condition, detail=""):
    global PASSED
    if not condition:
        print("FAIL {} {}".format(name, detail), flush=True)
        print("{} passed, 1 failed".format(PASSED), flush=True)
        sys.exit(1)
    PASSED += 1
    print("ok   {}".format(name), flush=True)


def enc(text):
    """Percent-encode everything but ASCII letters and digits (object_store's NON_ALPHANUMERIC)."""
    return "".join(chr(b) if chr(b).isascii() and chr(b).isalnum() else "%{:02X}".format(b)
                   for b in text.encode("utf-8"))


class Client:
    def __init__(self, endpoint):
        u = urlsplit(endpoint)
        self.host, self.port = u.hostname, u.port

    def req(self, method, path, body=b"", headers=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        headers = dict(headers or {})
        if method in ("PUT", "POST") or body:
            headers.setdefault("Content-Length", str(len(body)))
        conn.request(method, path, body=body or None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def xml_code(body):
    try:
        return ET.fromstring(body).findtext("Code")
    except ET.ParseError:
        return None


def local(tag):
    return tag.rpartition("}")[2]


def parse_list(body):
    root = ET.fromstring(body)
    out = {"keys": [], "prefixes": [], "truncated": False, "token": None, "contents": []}
    for el in root:
        tag = local(el.tag)
        if tag == "Contents":
            fields = {local(c.tag): c.text for c in el}
            out["keys"].append(fields["Key"])
            out["contents"].append(fields)
        elif tag == "CommonPrefixes":
            out["prefixes"].append([c.text for c in el if local(c.tag) == "Prefix"][0])
        elif tag == "IsTruncated":
            out["truncated"] = el.text == "true"
        elif tag == "NextContinuationToken":
            out["token"] = el.text
    return out


def list_all(c, bucket, **params):
    """Follows continuation tokens; returns the pages."""
    pages, token = [], None
    while True:
        q = dict(params, **{"list-type": "2"})
        if token:
            q["continuation-token"] = token
        query = "&".join("{}={}".format(k, enc(str(v))) for k, v in q.items())
        status, _, body = c.req("GET", "/{}?{}".format(enc(bucket), query))
        assert status == 200, (status, body)
        page = parse_list(body)
        pages.append(page)
        if not page["truncated"]:
            return pages
        token = page["token"]
        assert token and len(pages) < 100


def create_bucket_json(c, name):
    body = json.dumps({"name": name}).encode()
    return c.req("POST", "/storage/v1/b?project=test", body, {"Content-Type": "application/json"})[0]


def xml_checks(c, data_dir):
    run = os.urandom(4).hex()  # unique bucket names, so that reruns on one emulator work
    bucket = "xml-smoke-" + run
    check("create bucket through the JSON API", create_bucket_json(c, bucket) == 200)

    def obj(key):
        return "/{}/{}".format(enc(bucket), enc(key))

    # Missing bucket.
    s, _, b = c.req("PUT", "/no-such-bucket/{}".format(enc("a/b")), b"x")
    check("PUT into a missing bucket -> 404 NoSuchBucket", s == 404 and xml_code(b) == "NoSuchBucket", (s, b))
    s, _, b = c.req("GET", "/no-such-bucket?list-type=2")
    check("list a missing bucket -> 404 NoSuchBucket", s == 404 and xml_code(b) == "NoSuchBucket", (s, b))
    s, _, b = c.req("GET", "/no-such-bucket/{}".format(enc("k")))
    check("GET in a missing bucket -> 404 NoSuchBucket", s == 404 and xml_code(b) == "NoSuchBucket", (s, b))
    s, _, _ = c.req("PUT", "/xml-made-" + run)
    check("PUT /BUCKET creates a bucket", s == 200 and c.req("HEAD", "/xml-made-" + run)[0] == 200)
    s, _, b = c.req("PUT", "/xml-made-" + run)
    check("PUT /BUCKET again -> 409", s == 409 and xml_code(b) == "BucketAlreadyOwnedByYou", (s, b))

    # PUT object.
    key = "xml/dir/obj name+ü~.bin"
    data = os.urandom(100_000)
    s, h, b = c.req("PUT", obj(key), data, {
        "Content-Type": "application/x-test", "x-goog-meta-origin": "xml-put",
        "x-goog-if-generation-match": "0"})
    check("PUT object (conditional create)", s == 200, (s, b))
    check("PUT answers ETag = quoted hex MD5", h.get("etag") == '"{}"'.format(hashlib.md5(data).hexdigest()), h)
    gen1 = h.get("x-goog-generation", "")
    check("PUT answers x-goog-generation", gen1.isdigit(), h)
    s, h, b = c.req("PUT", obj(key), b"other", {"x-goog-if-generation-match": "0"})
    check("conditional create of an existing object -> 412 PreconditionFailed",
          s == 412 and xml_code(b) == "PreconditionFailed", (s, b))
    s, h, b = c.req("PUT", obj(key), b"other", {"x-goog-if-generation-match": "12345"})
    check("PUT with a stale generation -> 412", s == 412, (s, b))

    # GET / HEAD.
    s, h, b = c.req("GET", obj(key))
    check("GET object body", s == 200 and b == data, s)
    check("GET headers Content-Length/Content-Type/x-goog-meta-*",
          h.get("content-length") == str(len(data)) and h.get("content-type") == "application/x-test"
          and h.get("x-goog-meta-origin") == "xml-put", h)
    check("GET headers ETag/x-goog-generation", h.get("etag") == '"{}"'.format(hashlib.md5(data).hexdigest())
          and h.get("x-goog-generation") == gen1, h)
    lm = email.utils.parsedate_to_datetime(h.get("last-modified", ""))
    check("GET Last-Modified is an RFC 2822 date", abs(time.time() - lm.timestamp()) < 300, h.get("last-modified"))
    etag = h["etag"]
    s, h, b = c.req("GET", obj(key), headers={"Range": "bytes=10-19"})
    check("ranged GET bytes=10-19 -> 206", s == 206 and b == data[10:20]
          and h.get("content-range") == "bytes 10-19/{}".format(len(data)), (s, h))
    s, h, b = c.req("GET", obj(key), headers={"Range": "bytes=99990-"})
    check("ranged GET bytes=N- -> 206", s == 206 and b == data[99990:]
          and h.get("content-range") == "bytes 99990-99999/100000", (s, h))
    s, h, b = c.req("GET", obj(key), headers={"Range": "bytes=-7"})
    check("ranged GET bytes=-7 (suffix) -> 206", s == 206 and b == data[-7:], (s, h))
    s, h, b = c.req("GET", obj(key), headers={"Range": "bytes=200000-"})
    check("ranged GET past the end -> 416 InvalidRange", s == 416 and xml_code(b) == "InvalidRange", (s, b))
    s, h, b = c.req("HEAD", obj(key))
    check("HEAD object", s == 200 and b == b"" and h.get("content-length") == str(len(data))
          and h.get("etag") == etag and "last-modified" in h, (s, h))
    s, h, b = c.req("GET", obj(key), headers={"If-None-Match": etag})
    check("GET If-None-Match: <etag> -> 304", s == 304, s)
    s, h, b = c.req("GET", obj(key), headers={"If-Match": '"0000"'})
    check("GET If-Match: <other> -> 412", s == 412, s)
    s, h, b = c.req("GET", obj(key) + "?generation=1")
    check("GET ?generation=<other> -> 404", s == 404, s)
    s, h, b = c.req("GET", obj("xml/missing"))
    check("GET missing object -> 404 NoSuchKey", s == 404 and xml_code(b) == "NoSuchKey", (s, b))
    s, h, b = c.req("HEAD", obj("xml/missing"))
    check("HEAD missing object -> 404", s == 404, s)

    # Conditional update with the current generation.
    s, h, b = c.req("PUT", obj("xml/update"), b"v1")
    gen = h["x-goog-generation"]
    s, h, b = c.req("PUT", obj("xml/update"), b"v2", {"x-goog-if-generation-match": gen})
    check("PUT with x-goog-if-generation-match = current generation", s == 200
          and c.req("GET", obj("xml/update"))[2] == b"v2", (s, b))

    # Names that are each other's "directories" (the emulator alone cannot store both).
    for n in ("nest/a", "nest/a/b", "nest/a/b/c"):
        assert c.req("PUT", obj(n), n.encode())[0] == 200, n
    check("objects a, a/b and a/b/c coexist",
          [c.req("GET", obj(n))[2] for n in ("nest/a", "nest/a/b", "nest/a/b/c")]
          == [b"nest/a", b"nest/a/b", b"nest/a/b/c"])

    # Listing.
    names = ["list/a/1", "list/a/2", "list/b/1", "list/c", "list/d", "list/e/x/y", "listing-other"]
    for n in names:
        assert c.req("PUT", obj(n), n.encode())[0] == 200
    pages = list_all(c, bucket, prefix="list/", delimiter="/", **{"max-keys": 2})
    keys = [k for p in pages for k in p["keys"]]
    prefixes = [k for p in pages for k in p["prefixes"]]
    check("list with delimiter, max-keys=2: pages", [len(p["keys"]) + len(p["prefixes"]) for p in pages] == [2, 2, 1]
          and all(p["truncated"] for p in pages[:-1]), pages)
    check("list with delimiter: Contents", keys == ["list/c", "list/d"], keys)
    check("list with delimiter: CommonPrefixes", prefixes == ["list/a/", "list/b/", "list/e/"], prefixes)
    pages = list_all(c, bucket, prefix="list/", **{"max-keys": 1})
    keys = [k for p in pages for k in p["keys"]]
    check("list without delimiter, max-keys=1 pagination", keys == sorted(names[:-1]) and len(pages) == 6, keys)
    pages = list_all(c, bucket, prefix="list/", **{"start-after": "list/b/1"})
    check("list start-after", pages[0]["keys"] == ["list/c", "list/d", "list/e/x/y"], pages)
    contents = list_all(c, bucket, prefix="list/c")[0]["contents"][0]
    check("list Contents fields", contents["Size"] == "6" and contents["ETag"] == '"{}"'.format(
        hashlib.md5(b"list/c").hexdigest()) and contents["LastModified"].endswith("Z"), contents)

    # Multipart upload.
    mkey = "xml/multi part.bin"
    s, h, b = c.req("POST", obj(mkey) + "?uploads", b"", {
        "Content-Type": "application/x-tar", "x-goog-meta-kind": "multipart"})
    upload_id = ET.fromstring(b).findtext("{http://s3.amazonaws.com/doc/2006-03-01/}UploadId")
    check("initiate multipart -> UploadId", s == 200 and upload_id, (s, b))
    parts = {1: os.urandom(5 << 20), 2: os.urandom(5 << 20), 3: os.urandom(1000)}
    etags = {}
    for n in (2, 3, 1):  # upload out of order
        s, h, b = c.req("PUT", obj(mkey) + "?partNumber={}&uploadId={}".format(n, upload_id), parts[n])
        etags[n] = h.get("etag")
        check("upload part {}".format(n), s == 200 and etags[n] == '"{}"'.format(hashlib.md5(parts[n]).hexdigest())
              and "md5=" in h.get("x-goog-hash", "") and "crc32c=" in h.get("x-goog-hash", ""), (s, h))
    if data_dir:
        check("parts are spooled under the data dir",
              len(os.listdir(os.path.join(data_dir, ".xml-multipart", upload_id))) >= 3)

    def complete(order, tags):
        return "<CompleteMultipartUpload>{}</CompleteMultipartUpload>".format("".join(
            "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>".format(n, tags[n]) for n in order)).encode()

    s, h, b = c.req("POST", obj(mkey) + "?uploadId=" + upload_id, complete([1, 2, 3], {**etags, 2: '"bad"'}))
    check("complete with a wrong ETag -> 400 InvalidPart", s == 400 and xml_code(b) == "InvalidPart", (s, b))
    s, h, b = c.req("POST", obj(mkey) + "?uploadId=" + upload_id, complete([2, 1, 3], etags))
    check("complete with parts out of order -> 400 InvalidPartOrder",
          s == 400 and xml_code(b) == "InvalidPartOrder", (s, b))
    s, h, b = c.req("POST", obj("xml/other") + "?uploadId=" + upload_id, complete([1, 2, 3], etags))
    check("complete under another key -> 404 NoSuchUpload", s == 404 and xml_code(b) == "NoSuchUpload", (s, b))
    s, h, b = c.req("POST", obj(mkey) + "?uploadId=" + upload_id, complete([1, 2, 3], etags))
    whole = parts[1] + parts[2] + parts[3]
    root = ET.fromstring(b) if s == 200 else None
    check("complete multipart", s == 200 and root is not None and local(root.tag) == "CompleteMultipartUploadResult"
          and h.get("x-goog-generation", "").isdigit(), (s, b))
    check("complete answers the object's ETag", root.findtext("{http://s3.amazonaws.com/doc/2006-03-01/}ETag")
          == '"{}"'.format(hashlib.md5(whole).hexdigest()), b)
    s, h, b = c.req("GET", obj(mkey))
    check("multipart object assembled in part order", s == 200 and b == whole, (s, len(b)))
    check("multipart object keeps initiate headers", h.get("content-type") == "application/x-tar"
          and h.get("x-goog-meta-kind") == "multipart", h)
    if data_dir:
        check("spool dir removed after complete",
              not os.path.exists(os.path.join(data_dir, ".xml-multipart", upload_id)))

    s, h, b = c.req("POST", obj("xml/aborted") + "?uploads")
    abort_id = ET.fromstring(b).findtext("{http://s3.amazonaws.com/doc/2006-03-01/}UploadId")
    c.req("PUT", obj("xml/aborted") + "?partNumber=1&uploadId=" + abort_id, b"part")
    s, h, b = c.req("DELETE", obj("xml/aborted") + "?uploadId=" + abort_id)
    check("abort multipart -> 204", s == 204, (s, b))
    s, h, b = c.req("PUT", obj("xml/aborted") + "?partNumber=2&uploadId=" + abort_id, b"late")
    check("part after abort -> 404 NoSuchUpload", s == 404 and xml_code(b) == "NoSuchUpload", (s, b))
    check("aborted upload left no object", c.req("HEAD", obj("xml/aborted"))[0] == 404)

    # Copy.
    s, h, b = c.req("PUT", obj("xml/copy"), b"", {"x-goog-copy-source": "{}/{}".format(enc(bucket), enc(key))})
    check("copy object", s == 200 and c.req("GET", obj("xml/copy"))[2] == data, (s, b))
    s, h, b = c.req("PUT", obj("xml/copy"), b"", {"x-goog-copy-source": "{}/{}".format(enc(bucket), enc(key)),
                                                  "x-goog-if-generation-match": "0"})
    check("copy onto an existing object with generation-match 0 -> 412", s == 412, (s, b))
    s, h, b = c.req("PUT", obj("xml/copy2"), b"", {"x-goog-copy-source": "{}/nothing".format(enc(bucket))})
    check("copy of a missing source -> 404", s == 404, (s, b))

    # Delete.
    s, h, b = c.req("DELETE", obj("xml/copy"))
    check("DELETE object -> 204", s == 204 and c.req("GET", obj("xml/copy"))[0] == 404, s)
    s, h, b = c.req("DELETE", obj("xml/copy"))
    check("DELETE missing object -> 404 NoSuchKey", s == 404 and xml_code(b) == "NoSuchKey", (s, b))
    s, h, b = c.req("DELETE", "/" + bucket)
    check("DELETE non-empty bucket -> 409", s == 409, (s, b))
    return {"run": run, "bucket": bucket, "key": key, "sha256": hashlib.sha256(data).hexdigest(),
            "multipart_key": mkey, "multipart_sha256": hashlib.sha256(whole).hexdigest()}


def json_checks(endpoint, xml_info):
    """Runs with an interpreter that has google-cloud-storage (the barman-venv)."""
    os.environ["STORAGE_EMULATOR_HOST"] = endpoint
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project="test", credentials=AnonymousCredentials())
    bucket = client.bucket(xml_info["bucket"])
    blob = bucket.get_blob(xml_info["key"])
    check("JSON: XML-written object is visible", blob is not None and blob.metadata == {"origin": "xml-put"}
          and blob.content_type == "application/x-test", blob and blob._properties)
    check("JSON: XML-written object content",
          hashlib.sha256(blob.download_as_bytes()).hexdigest() == xml_info["sha256"])
    mblob = bucket.get_blob(xml_info["multipart_key"])
    check("JSON: XML-multipart object content",
          hashlib.sha256(mblob.download_as_bytes()).hexdigest() == xml_info["multipart_sha256"])
    names = [b.name for b in client.list_blobs(bucket, prefix="list/")]
    check("JSON: list shows XML-written objects", names == ["list/a/1", "list/a/2", "list/b/1", "list/c", "list/d",
                                                            "list/e/x/y"], names)

    jname = "json-smoke-" + xml_info["run"]
    jb = client.create_bucket(jname)
    check("JSON: bucket create/get", client.get_bucket(jname).name == jb.name)
    up = jb.blob("json/small.txt")
    up.metadata = {"origin": "json"}
    up.upload_from_string(b"hello from json", content_type="text/plain")
    big = os.urandom(3 << 20)
    rb = jb.blob("json/resumable.bin", chunk_size=1 << 20)
    rb.upload_from_string(big)
    check("JSON: ranged download", rb.download_as_bytes(start=10, end=19) == big[10:20])

    c = Client(endpoint)
    s, h, b = c.req("GET", "/{}/{}".format(jname, enc("json/small.txt")))
    check("XML: JSON-written object readable", s == 200 and b == b"hello from json"
          and h.get("x-goog-meta-origin") == "json" and h.get("content-type") == "text/plain", (s, h))
    s, h, b = c.req("GET", "/{}/{}".format(jname, enc("json/resumable.bin")),
                    headers={"Range": "bytes=1048570-1048580"})
    check("XML: ranged GET of a JSON resumable upload", s == 206 and b == big[1048570:1048581], s)
    page = parse_list(c.req("GET", "/{}?list-type=2&prefix=json%2F".format(jname))[2])
    check("XML: list shows JSON-written objects", page["keys"] == ["json/resumable.bin", "json/small.txt"], page)

    # google-cloud-storage's own XML multipart upload (what Barman's data.tar upload builds on).
    from google.cloud.storage import transfer_manager
    with tempfile.NamedTemporaryFile() as f:
        payload = os.urandom((12 << 20) + 123)
        f.write(payload)
        f.flush()
        mp = jb.blob("json/xml-mpu.bin")
        transfer_manager.upload_chunks_concurrently(f.name, mp, chunk_size=5 << 20, max_workers=3,
                                                    worker_type=transfer_manager.THREAD)
    check("google-cloud-storage XML multipart upload (upload_chunks_concurrently)",
          jb.blob("json/xml-mpu.bin").download_as_bytes() == payload)
    jb.blob("json/xml-mpu.bin").delete()

    with client.batch():
        jb.blob("json/small.txt").delete()
        jb.blob("json/resumable.bin").delete()
    check("JSON: batch delete", list(client.list_blobs(jb)) == [])
    check("XML: batch-deleted object is gone", c.req("HEAD", "/{}/{}".format(jname, enc("json/small.txt")))[0] == 404)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", help="a running emulator (default: start one)")
    ap.add_argument("--data-dir", help="its data dir (enables the spool-dir checks)")
    ap.add_argument("--json-python", help="an interpreter with google-cloud-storage for the JSON checks")
    ap.add_argument("--json-only", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.json_only:
        json_checks(args.endpoint, json.loads(args.json_only))
        print("{} passed, 0 failed".format(PASSED))
        return

    proc = tmp = None
    endpoint, data_dir = args.endpoint, args.data_dir
    try:
        if not endpoint:
            tmp = tempfile.mkdtemp(prefix="gcs-smoke-")
            data_dir, port = tmp, free_port()
            proc = subprocess.Popen(
                [sys.executable, os.path.join(HERE, "gcs_emulator.py"), "--host", "127.0.0.1",
                 "--port", str(port), "--data-dir", tmp, "-q"])
            endpoint = "http://127.0.0.1:{}".format(port)
            for _ in range(200):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.05)
        info = xml_checks(Client(endpoint), data_dir)
        total = PASSED
        if args.json_python:
            child = subprocess.run([args.json_python, os.path.abspath(__file__), "--endpoint", endpoint,
                                    "--json-only", json.dumps(info)], stdout=subprocess.PIPE, text=True)
            lines = child.stdout.splitlines()
            print("\n".join(lines[:-1]), flush=True)  # its checks, without its closing count
            total += int(lines[-1].split()[0]) if lines and "passed" in lines[-1] else 0
            if child.returncode != 0:
                print("{} passed, 1 failed".format(total))
                sys.exit(1)
        print("{} passed, 0 failed".format(total))
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=10)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
