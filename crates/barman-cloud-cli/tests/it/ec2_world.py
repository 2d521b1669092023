"""EC2 chores of the snapshot tests (see ec2.rs), done with boto3 as Barman does them.

Run with the Python of Barman's virtualenv: ``ec2_world.py COMMAND`` reads one JSON object on
stdin and prints one JSON object on stdout. The EC2 endpoint is EC2_ENDPOINT (the ec2 fake);
credentials and region come from the usual AWS_* variables. Every call carries the user agent
suffix ``barman-rs-ec2-world``, so the fake's call records tell these calls from the tools'.

    instance  {"name", "virtualization": "hvm"|"paravirtual",
               "volumes": [{"name", "device", "size", "snapshot_id"?}]}
        RunInstances (Name tag; an AMI of that virtualization type), then for each volume
        CreateVolume in the instance's zone (from snapshot_id when given; Name tag) and
        AttachVolume at its device.
        -> {"instance_id", "name", "zone", "virtualization", "root_device",
            "volumes": [{"id", "name", "device", "snapshot_id"}]}
    call      {"op": "<boto3 method>", "params": {...}}
        -> {"result": <answer without ResponseMetadata>} or {"error": {"code", "message"}}
    cleanup   {"instances": [...], "volumes": [...], "snapshots": [...],
               "attachments": [{"volume", "instance", "device"}]}
        drops the fake's locks of the snapshots and of every snapshot of the volumes, deletes
        those snapshots, detaches the volumes, terminates the instances, deletes the volumes; every
        error is collected, none stops the clean-up -> {"errors": [...]}
    serve     (no stdin object) reads one {"command", "request"} object per line and answers
        each with one line, {"ok": <the command's answer>} or {"fail": "<traceback>"}, until
        stdin closes: one Python start-up for many calls (ec2.rs keeps a few such servers)
"""
import json
import os
import sys
import traceback
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = os.environ["EC2_ENDPOINT"]


def client():
    return boto3.client(
        "ec2",
        endpoint_url=ENDPOINT,
        config=Config(user_agent_extra="barman-rs-ec2-world", retries={"max_attempts": 10}),
    )


def tags(name):
    return [{"Key": "Name", "Value": name}]


def instance(ec2, req):
    virt = req.get("virtualization", "hvm")
    images = ec2.describe_images(
        Filters=[{"Name": "virtualization-type", "Values": [virt]},
                 {"Name": "root-device-name", "Values": ["/dev/sda1"]}]
    )["Images"]
    if not images:
        raise SystemExit("no {} AMI with root device /dev/sda1".format(virt))
    images.sort(key=lambda i: i["ImageId"])
    inst = ec2.run_instances(
        ImageId=images[0]["ImageId"], MinCount=1, MaxCount=1, InstanceType="t3.micro",
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags(req["name"])}],
    )["Instances"][0]
    zone = inst["Placement"]["AvailabilityZone"]
    volumes = []
    for vol in req.get("volumes", []):
        kwargs = {"AvailabilityZone": zone, "Size": vol.get("size", 1),
                  "TagSpecifications": [{"ResourceType": "volume", "Tags": tags(vol["name"])}]}
        if vol.get("snapshot_id"):
            kwargs["SnapshotId"] = vol["snapshot_id"]
        made = ec2.create_volume(**kwargs)
        ec2.attach_volume(VolumeId=made["VolumeId"], InstanceId=inst["InstanceId"],
                          Device=vol["device"])
        volumes.append({"id": made["VolumeId"], "name": vol["name"], "device": vol["device"],
                        "snapshot_id": made.get("SnapshotId") or None})
    return {"instance_id": inst["InstanceId"], "name": req["name"], "zone": zone,
            "virtualization": inst["VirtualizationType"], "root_device": inst["RootDeviceName"],
            "volumes": volumes}


def call(ec2, req):
    try:
        result = getattr(ec2, req["op"])(**req.get("params", {}))
    except ClientError as err:
        return {"error": {"code": err.response["Error"].get("Code"),
                          "message": err.response["Error"].get("Message")}}
    result.pop("ResponseMetadata", None)
    return {"result": result}


def cleanup(ec2, req):
    errors = []

    def attempt(what, fn, **kwargs):
        try:
            return fn(**kwargs)
        except Exception as err:  # clean-up goes on whatever fails
            errors.append("{}: {}".format(what, err))
            return None

    snapshots = set(req.get("snapshots", []))
    for vol in req.get("volumes", []):
        found = attempt("snapshots of " + vol, ec2.describe_snapshots,
                        Filters=[{"Name": "volume-id", "Values": [vol]}])
        snapshots.update(s["SnapshotId"] for s in (found or {}).get("Snapshots", []))
    for snap in sorted(snapshots):
        attempt("unlock " + snap, urllib.request.urlopen,
                url=urllib.request.Request(ENDPOINT + "/_fake/lock/" + snap, method="DELETE"))
        attempt("delete " + snap, ec2.delete_snapshot, SnapshotId=snap)
    # moto needs the instance ID to detach (HTTP 500 without it), and the instance alive.
    for att in req.get("attachments", []):
        attempt("detach " + att["volume"], ec2.detach_volume, VolumeId=att["volume"],
                InstanceId=att["instance"], Device=att["device"], Force=True)
    for inst in req.get("instances", []):
        attempt("terminate " + inst, ec2.terminate_instances, InstanceIds=[inst])
    for vol in req.get("volumes", []):
        attempt("delete " + vol, ec2.delete_volume, VolumeId=vol)
    # "already gone" is what a clean-up wants
    errors = [e for e in errors if "NotFound" not in e and "IncorrectState" not in e]
    return {"errors": errors}


HANDLERS = {"instance": instance, "call": call, "cleanup": cleanup}


def serve(ec2):
    """One request per stdin line, one answer per stdout line, until stdin closes."""
    for line in sys.stdin:
        msg = json.loads(line)
        try:
            answer = {"ok": HANDLERS[msg["command"]](ec2, msg["request"])}
        except BaseException:  # SystemExit too: report it, keep serving
            answer = {"fail": traceback.format_exc()}
        sys.stdout.write(json.dumps(answer, default=str) + "\n")
        sys.stdout.flush()


def main():
    command = sys.argv[1]
    ec2 = client()
    if command == "serve":
        serve(ec2)
        return
    req = json.load(sys.stdin)
    json.dump(HANDLERS[command](ec2, req), sys.stdout, default=str)


if __name__ == "__main__":
    main()
