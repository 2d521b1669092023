"""Object-level chores the deletion tests need, done with the SDKs Barman itself uses.

Run with the Python of Barman's virtualenv (boto3, azure-storage-blob, google-cloud-storage):

    bucket_tool.py SERVICE upload SRC_DIR BUCKET [BUCKET...]   every file of SRC_DIR, key = its path
    bucket_tool.py s3 copy SRC_BUCKET DST_BUCKET [DST...]      every object, server-side
    bucket_tool.py SERVICE list BUCKET                         every key, sorted, one per line
    bucket_tool.py SERVICE put BUCKET KEY TEXT                 one object holding TEXT
    bucket_tool.py s3 lock BUCKET KEY                          legal hold ON (bucket made with mklocked)
    bucket_tool.py s3 unlock BUCKET KEY                        legal hold OFF
    bucket_tool.py s3 mklocked BUCKET                          a bucket with Object Lock enabled

Connection details come from the environment the commands use (see support.rs); S3 needs
S3_ENDPOINT as well.
"""
import os
import sys
from concurrent.futures import ThreadPoolExecutor

service, action = sys.argv[1:3]
args = sys.argv[3:]


def s3_client():
    import boto3

    return boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"])


def files_of(root):
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            yield path, os.path.relpath(path, root)


class S3:
    def __init__(self):
        self.client = s3_client()

    def put(self, bucket, key, data):
        self.client.put_object(Bucket=bucket, Key=key, Body=data)

    def keys(self, bucket):
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]


class Azure:
    def __init__(self):
        from azure.storage.blob import BlobServiceClient

        self.client = BlobServiceClient.from_connection_string(
            os.environ["AZURE_STORAGE_CONNECTION_STRING"]
        )

    def put(self, bucket, key, data):
        self.client.get_blob_client(bucket, key).upload_blob(data, overwrite=True)

    def keys(self, bucket):
        return [b.name for b in self.client.get_container_client(bucket).list_blobs()]


class Gcs:
    def __init__(self):
        from google.cloud import storage

        self.client = storage.Client()

    def put(self, bucket, key, data):
        self.client.bucket(bucket).blob(key).upload_from_string(data)

    def keys(self, bucket):
        return [b.name for b in self.client.list_blobs(bucket)]


store = {"s3": S3, "azure": Azure, "gcs": Gcs}[service]()

if action == "upload":
    src, buckets = args[0], args[1:]
    jobs = []
    for path, key in files_of(src):
        with open(path, "rb") as f:
            data = f.read()
        jobs.extend((bucket, key, data) for bucket in buckets)
    # Azurite and the GCS emulator serve one request at a time well; S3 servers take more.
    workers = 16 if service == "s3" else 4
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda job: store.put(*job), jobs))
elif action == "copy":
    src, buckets = args[0], args[1:]
    jobs = [(key, bucket) for key in store.keys(src) for bucket in buckets]
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda job: store.client.copy_object(
                    Bucket=job[1], Key=job[0], CopySource={"Bucket": src, "Key": job[0]}
                ),
                jobs,
            )
        )
elif action == "list":
    for key in sorted(store.keys(args[0])):
        print(key)
elif action == "put":
    store.put(args[0], args[1], args[2].encode())
elif action == "mklocked":
    store.client.create_bucket(Bucket=args[0], ObjectLockEnabledForBucket=True)
elif action in ("lock", "unlock"):
    store.client.put_object_legal_hold(
        Bucket=args[0],
        Key=args[1],
        LegalHold={"Status": "ON" if action == "lock" else "OFF"},
    )
else:
    raise SystemExit("unknown action " + action)
