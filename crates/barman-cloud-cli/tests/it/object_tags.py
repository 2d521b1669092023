"""Prints the tags (S3, Azure blob index tags) or custom metadata (GCS) of one object as JSON.

Run with the Python of Barman's virtualenv, which has boto3, azure-storage-blob and
google-cloud-storage: object_tags.py SERVICE BUCKET KEY. Connection details come from the
same environment variables the commands use (see support.rs).
"""
import json
import os
import sys

service, bucket, key = sys.argv[1:4]
if service == "s3":
    import boto3

    client = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"])
    tags = client.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
    result = {t["Key"]: t["Value"] for t in tags}
elif service == "azure":
    from azure.storage.blob import BlobServiceClient

    client = BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"])
    result = client.get_blob_client(bucket, key).get_blob_tags()
elif service == "gcs":
    from google.cloud import storage

    blob = storage.Client().bucket(bucket).get_blob(key)
    result = blob.metadata or {}
else:
    raise SystemExit("unknown service " + service)
print(json.dumps(result, sort_keys=True))
