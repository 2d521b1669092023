"""S3 side of bench/delete-bench.sh: builds the catalogs, lists and drops buckets.

Runs with the Python of the Barman 3.20.1 venv (boto3, and Barman's own BackupInfo writes
the backup.info files, so their format is exactly Barman's).

    delete-catalog.py make ENDPOINT NOW BACKUPS WALS BUCKET...   build one catalog per bucket
    delete-catalog.py keys ENDPOINT BUCKET                       every key, sorted, one a line
    delete-catalog.py count ENDPOINT BUCKET                      the number of objects
    delete-catalog.py expect ENDPOINT NOW BACKUPS WALS SCENARIO  keys left after SCENARIO
    delete-catalog.py drop ENDPOINT BUCKET...                    delete the objects, then the bucket

Credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY. The catalog (server `srv`, no path
prefix inside the bucket) is the same in every bucket, byte for byte:

- BACKUPS backups srv/base/<ID>/{backup.info,data.tar}: backup k (0 = oldest) began at
  NOW - (BACKUPS - 1 - k) days - 12 h (NOW: epoch seconds, so that a recovery window is never
  a few seconds away from a backup's end), ended 10 min later, ID = its begin time in UTC;
  status DONE, timeline 1, PostgreSQL 15, 16 MiB segments. data.tar is a real 10 KiB tar
  (PG_VERSION and backup_label).
- WALS WAL segments srv/wals/<TTTTTTTTLLLLLLLL>/<segment> of 16 bytes, consecutive from
  000000010000000000000001. With STEP = WALS // BACKUPS, backup k's begin_wal is segment
  1 + k * STEP + STEP // 2 and its end_wal the next one; one <begin_wal>.00000028.backup
  history file per backup next to its begin_wal; and srv/wals/00000002.history.
"""

import concurrent.futures
import datetime
import hashlib
import hmac
import http.client
import io
import os
import sys
import tarfile
import threading
import urllib.parse

import boto3
import botocore.config

SERVER = "srv"
THREADS = 32
SEG_PER_LOG = 256  # 16 MiB segments: 0x100000000 / 0x1000000


def client(endpoint):
    # one client for all threads (boto3 clients are thread-safe), a pool as large as the threads
    cfg = botocore.config.Config(max_pool_connections=THREADS, retries={"max_attempts": 10, "mode": "standard"})
    return boto3.client("s3", endpoint_url=endpoint, config=cfg)


def seg_name(n, tli=1):
    return "%08X%08X%08X" % (tli, n // SEG_PER_LOG, n % SEG_PER_LOG)


def wal_key(name):
    return "%s/wals/%s/%s" % (SERVER, name[:16], name)


def lsn(n, offset):
    return "%X/%X" % (n // SEG_PER_LOG, (n % SEG_PER_LOG) << 24 | offset)


def tar_bytes(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o600
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def plan(now, backups, wals):
    """[(backup_id, begin_time, end_time, begin segment number, end segment number)], oldest first."""
    step = wals // backups
    if step < 4:
        raise SystemExit("need at least 4 WAL segments per backup (WALS >= 4 * BACKUPS)")
    now = datetime.datetime.fromtimestamp(now, datetime.timezone.utc).replace(microsecond=0)
    out = []
    for k in range(backups):
        begin = now - datetime.timedelta(days=backups - 1 - k, hours=12)
        b = 1 + k * step + step // 2
        out.append((begin.strftime("%Y%m%dT%H%M%S"), begin, begin + datetime.timedelta(minutes=10), b, b + 1))
    return out


def catalog(now, backups, wals):
    """{key: bytes} of the whole catalog."""
    import barman.output  # noqa: F401  (breaks the output <-> infofile import cycle)
    from barman.infofile import BackupInfo

    objects = {}
    for backup_id, begin, end, b, e in plan(now, backups, wals):
        label = (
            "START WAL LOCATION: %s (file %s)\nCHECKPOINT LOCATION: %s\n"
            "BACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: %s\n"
            "LABEL: Barman backup cloud %s\nSTART TIMELINE: 1\n"
            % (lsn(b, 0x28), seg_name(b), lsn(b, 0x60), begin.strftime("%Y-%m-%d %H:%M:%S UTC"), backup_id)
        )
        info = BackupInfo(
            backup_id,
            status="DONE",
            server_name=SERVER,
            backup_label=label,
            begin_offset=0x28,
            begin_time=begin,
            begin_wal=seg_name(b),
            begin_xlog=lsn(b, 0x28),
            end_offset=0x138,
            end_time=end,
            end_wal=seg_name(e),
            end_xlog=lsn(e, 0x138),
            cluster_size=31457280,
            config_file="/etc/postgresql/15/main/postgresql.conf",
            hba_file="/etc/postgresql/15/main/pg_hba.conf",
            ident_file="/etc/postgresql/15/main/pg_ident.conf",
            pgdata="/var/lib/postgresql/15/main",
            systemid="7345678901234567890",
            timeline=1,
            version=150000,
            xlog_segment_size=16777216,
            data_checksums="off",
            copy_stats={
                "total_time": 12.5,
                "number_of_workers": 2,
                "analysis_time": 0,
                "analysis_time_per_item": {"data": 0},
                "copy_time_per_item": {"data": 10.25},
                "serialized_copy_time_per_item": {"data": 9.0},
                "copy_time": 10.25,
                "serialized_copy_time": 9.0,
            },
        )
        buf = io.BytesIO()
        info.save(file_object=buf)
        base = "%s/base/%s/" % (SERVER, backup_id)
        objects[base + "backup.info"] = buf.getvalue()
        objects[base + "data.tar"] = tar_bytes([("PG_VERSION", b"15\n"), ("backup_label", label.encode())])
        history = "%s.%08X.backup" % (seg_name(b), 0x28)
        objects[wal_key(history)] = (
            "START WAL LOCATION: %s (file %s)\nSTOP WAL LOCATION: %s (file %s)\n"
            % (lsn(b, 0x28), seg_name(b), lsn(e, 0x138), seg_name(e))
        ).encode()
    for n in range(1, wals + 1):
        name = seg_name(n)
        objects[wal_key(name)] = ("%-15s\n" % name[-15:]).encode()  # 16 bytes
    objects["%s/wals/00000002.history" % SERVER] = b"1\t0/9000000\tno recovery target specified\n"
    return objects


class Signer:
    """AWS Signature V4 of a PUT, by hand: a few microseconds instead of boto3's milliseconds."""

    def __init__(self, host):
        self.host = host
        self.key_id = os.environ.get("AWS_ACCESS_KEY_ID", "")
        self.secret = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
        self.region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        self.keys = {}

    def headers(self, path, body):
        now = datetime.datetime.now(datetime.timezone.utc)
        amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        key = self.keys.get(day)
        if key is None:
            key = ("AWS4" + self.secret).encode()
            for part in (day, self.region, "s3", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self.keys[day] = key
        payload = hashlib.sha256(body).hexdigest()
        signed = "host;x-amz-content-sha256;x-amz-date"
        canonical = "PUT\n%s\n\nhost:%s\nx-amz-content-sha256:%s\nx-amz-date:%s\n\n%s\n%s" % (
            path, self.host, payload, amz_date, signed, payload)
        scope = "%s/%s/s3/aws4_request" % (day, self.region)
        to_sign = "AWS4-HMAC-SHA256\n%s\n%s\n%s" % (amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest())
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        return {
            "x-amz-content-sha256": payload,
            "x-amz-date": amz_date,
            "Authorization": "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
            % (self.key_id, scope, signed, signature),
        }


def make(endpoint, now, backups, wals, buckets):
    s3 = client(endpoint)
    objects = catalog(int(now), int(backups), int(wals))
    for bucket in buckets:
        s3.create_bucket(Bucket=bucket)
    # Keep-alive HTTP PUTs signed by hand, one connection per thread: boto3 costs ~3 ms of
    # client CPU per PUT, which made the upload 3x slower on 2 cores. Should the server refuse
    # them (403), boto3 does the rest.
    parsed = urllib.parse.urlsplit(endpoint)
    signer = Signer(parsed.netloc)
    local = threading.local()
    refused = []

    def put(bucket, key):
        if not refused:
            conn = getattr(local, "conn", None)
            if conn is None:
                conn = local.conn = http.client.HTTPConnection(parsed.netloc, timeout=60)
            path = "%s/%s/%s" % (parsed.path.rstrip("/"), bucket, urllib.parse.quote(key, safe="/~"))
            body = objects[key]
            conn.request("PUT", path, body=body, headers=signer.headers(path, body))
            resp = conn.getresponse()
            detail = resp.read()
            if resp.status == 200:
                return
            if resp.status != 403:
                raise SystemExit("PUT %s/%s: HTTP %d %s" % (bucket, key, resp.status, resp.reason))
            if not refused:
                print("signed PUT refused, boto3 takes over: %s" % detail[:300], file=sys.stderr)
            refused.append(True)
        s3.put_object(Bucket=bucket, Key=key, Body=objects[key])

    with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(put, bucket, key) for key in sorted(objects) for bucket in buckets]
        for f in concurrent.futures.as_completed(futures):
            f.result()
    for bucket in buckets:
        n = count(s3, bucket)
        if n != len(objects):
            raise SystemExit("bucket %s holds %d objects, expected %d" % (bucket, n, len(objects)))
    print(len(objects))


def expect(now, backups, wals, scenario):
    """The keys Barman's rules leave after SCENARIO on this catalog, sorted.

    Backups go oldest first; deleting one removes the WAL (segments and .backup files, any
    hash directory) whose name sorts before the begin_wal of the next backup, so what stays is
    every WAL from the begin_wal of the oldest remaining backup on; history files stay.
    """
    backups_plan = plan(now, backups, wals)
    if scenario == "redundancy":  # REDUNDANCY 1
        deleted = set(range(backups - 1))
    elif scenario == "oldest":
        deleted = {0}
    elif scenario == "dry-run":
        deleted = set()
    elif scenario == "window":  # RECOVERY WINDOW OF 30 DAYS, minimum redundancy 0
        por = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=30)
        outside = [k for k, (_, _, end, _, _) in enumerate(backups_plan) if end < por]
        # the newest backup ending before the point of recoverability is still needed
        deleted = set(range(outside[-1])) if outside else set()
    else:
        raise SystemExit("unknown scenario %s" % scenario)
    remaining = [k for k in range(backups) if k not in deleted]
    cut = seg_name(backups_plan[remaining[0]][3]) if deleted and remaining else ""
    gone = {"%s/base/%s/" % (SERVER, backups_plan[k][0]) for k in deleted}
    out = []
    for key in catalog(now, backups, wals):
        name = key.rsplit("/", 1)[-1]
        if key.rsplit("/", 1)[0] + "/" in gone:
            continue
        if key.startswith(SERVER + "/wals/") and not name.endswith(".history") and name < cut:
            continue
        out.append(key)
    return sorted(out)


def keys(s3, bucket):
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(o["Key"] for p in pages for o in p.get("Contents", []))


def count(s3, bucket):
    return len(keys(s3, bucket))


def drop(endpoint, buckets):
    s3 = client(endpoint)
    for bucket in buckets:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for p in pages:
            objs = [{"Key": o["Key"]} for o in p.get("Contents", [])]
            if objs:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": objs, "Quiet": True})
        s3.delete_bucket(Bucket=bucket)


def main():
    cmd, endpoint, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if cmd == "make":
        make(endpoint, args[0], args[1], args[2], args[3:])
    elif cmd == "keys":
        sys.stdout.write("".join(k + "\n" for k in keys(client(endpoint), args[0])))
    elif cmd == "expect":
        sys.stdout.write("".join(k + "\n" for k in expect(int(args[0]), int(args[1]), int(args[2]), args[3])))
    elif cmd == "count":
        print(count(client(endpoint), args[0]))
    elif cmd == "drop":
        drop(endpoint, args)
    else:
        raise SystemExit("unknown command %s" % cmd)


if __name__ == "__main__":
    main()
