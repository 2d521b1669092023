//! EC2 snapshot test helpers: an EC2 "world" (instance + attached EBS volumes) made through
//! the EC2 fake (`tests/fakes/ec2_fake.py`, in front of moto) with boto3 from Barman's
//! virtualenv (`ec2_world.py`), the fake's control API (injected behaviour, recorded calls,
//! locks), and a fake mount table answered by the `tests/fakes/findmnt` stand-in.
//!
//! Both our commands and Barman's reach EC2 through `AWS_ENDPOINT_URL_EC2` ([`ec2_env`]) and
//! find `findmnt` through `PATH` ([`FakeMounts::env`]); give both tools the same environment:
//!
//! ```ignore
//! let world = Ec2World::new("snap", 1);
//! let mounts = FakeMounts::for_volumes(world.volumes());
//! let mut env = world.env();
//! env.extend(mounts.env());
//! let out = barman_command(&dest, "barman-cloud-backup", &options, &["srv"]).envs(env).output();
//! ```
//!
//! Helpers not used by the tests of this module are for the snapshot tests of the commands.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

use serde_json::{Value, json};

use crate::postgres::chown_postgres;
use crate::support::*;

/// The user agent suffix of `ec2_world.py`'s calls (see [`Call::is_from_world`]).
pub const WORLD_AGENT: &str = "barman-rs-ec2-world";

/// Mount options [`FakeMounts`] gives a disk unless told otherwise.
pub const DEFAULT_MOUNT_OPTIONS: &str = "rw,noatime";

/// The EC2 fake's URL (`BARMAN_RS_TEST_EC2_ENDPOINT`, set by `scripts/test-services.sh`).
pub fn ec2_endpoint() -> String {
    required_env("BARMAN_RS_TEST_EC2_ENDPOINT")
}

/// The environment both tools need to reach EC2 (the fake): endpoint, keys, region.
pub fn ec2_env() -> Vec<(String, String)> {
    vec![
        ("AWS_ENDPOINT_URL_EC2".into(), ec2_endpoint()),
        ("AWS_ACCESS_KEY_ID".into(), "test".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
        ("AWS_DEFAULT_REGION".into(), "us-east-1".into()),
    ]
}

/// `tests/fakes` of the workspace (the `findmnt` stand-in, the EC2 fake).
pub fn fakes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fakes")
}

/// The environment that points Python Barman's GCP or Azure compute client at a local fake
/// (`tests/fakes/barman_site/sitecustomize.py`): `variable` (`BARMAN_RS_FAKE_GCP_COMPUTE` or
/// `BARMAN_RS_FAKE_ARM`) set to the fake's base URL, the module's directory on `PYTHONPATH`.
pub fn barman_compute_fake_env(variable: &str, base_url: &str) -> Vec<(String, String)> {
    let site = fakes_dir()
        .join("barman_site")
        .canonicalize()
        .expect("tests/fakes/barman_site");
    vec![
        ("PYTHONPATH".into(), site.display().to_string()),
        (variable.into(), base_url.into()),
    ]
}

/// Python Barman's `command` with `dest`'s arguments and environment:
/// `<command> <dest args> <options> <url> <rest>`. Add `.envs(...)` and run it.
pub fn barman_command(
    dest: &Destination,
    command: &str,
    options: &[&str],
    rest: &[&str],
) -> Command {
    let mut cmd = Command::new(Path::new(&required_env("BARMAN_RS_TEST_BARMAN_BIN")).join(command));
    cmd.args(&dest.args).args(options).arg(&dest.url).args(rest);
    cmd.envs(dest.env.iter().map(|(k, v)| (k, v)));
    cmd
}

/// Our `command`, as [`barman_command`] builds Barman's.
pub fn ours_command(dest: &Destination, command: &str, options: &[&str], rest: &[&str]) -> Command {
    dest.command_for_ours(command, options, rest)
}

// ---------------------------------------------------------------------------------------------
// The fake's control API
// ---------------------------------------------------------------------------------------------

/// One HTTP request to the fake (no dependency on an HTTP crate): (status, body).
fn fake_http(method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
    let endpoint = ec2_endpoint();
    let address = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(address)
        .unwrap_or_else(|e| panic!("cannot reach the EC2 fake at {endpoint}: {e}"));
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let payload = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{payload}",
        payload.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("bad answer from the EC2 fake: {answer:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line from the EC2 fake: {head:?}"));
    (status, body.to_string())
}

fn fake_json(method: &str, path: &str, body: Option<&Value>) -> Value {
    let (status, text) = fake_http(method, path, body);
    assert_eq!(status, 200, "EC2 fake {method} {path}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("EC2 fake {path}: {e}: {text}"))
}

fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Merges injected settings for resource `id` (see the fake's docstring; `null` removes a
/// setting) and returns the resulting settings.
pub fn inject(id: &str, settings: Value) -> Value {
    fake_json(
        "POST",
        &format!("/_fake/volume/{}", percent_encode(id)),
        Some(&settings),
    )
}

/// Every lock the fake holds, by snapshot ID (`lockState`, `lockMode`, `lockDuration`,
/// `coolOffPeriod`, `lockCreatedOn`, `lockExpiresOn`, ... as strings).
pub fn locks() -> BTreeMap<String, Value> {
    serde_json::from_value(fake_json("GET", "/_fake/locks", None)).unwrap()
}

/// One EC2 request the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    pub seq: u64,
    /// Seconds since the epoch.
    pub time: f64,
    pub action: String,
    /// The query parameters, without `X-Amz-*` signing ones.
    pub params: BTreeMap<String, String>,
    /// Parameter values, plus the volumes of the snapshots among them, plus the snapshot a
    /// CreateSnapshot created.
    pub resources: Vec<String>,
    /// The HTTP status answered.
    pub status: Option<u16>,
    pub agent: String,
}

impl Call {
    fn from_json(value: &Value) -> Call {
        Call {
            seq: value["seq"].as_u64().unwrap(),
            time: value["time"].as_f64().unwrap(),
            action: value["action"].as_str().unwrap_or_default().into(),
            params: serde_json::from_value(value["params"].clone()).unwrap(),
            resources: serde_json::from_value(value["resources"].clone()).unwrap(),
            status: value["status"].as_u64().map(|s| s as u16),
            agent: value["agent"].as_str().unwrap_or_default().into(),
        }
    }

    /// Made by `ec2_world.py` (the test's own set-up and inspection), not by a tool.
    pub fn is_from_world(&self) -> bool {
        self.agent.contains(WORLD_AGENT)
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// The recorded calls concerning one of `values` (IDs, names), oldest first.
pub fn calls_matching(values: &[String]) -> Vec<Call> {
    let query: Vec<String> = values
        .iter()
        .map(|v| format!("match={}", percent_encode(v)))
        .collect();
    let answer = fake_json("GET", &format!("/_fake/calls?{}", query.join("&")), None);
    answer
        .as_array()
        .unwrap()
        .iter()
        .map(Call::from_json)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The world
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Ec2Volume {
    pub id: String,
    /// Its `Name` tag (unique per test).
    pub name: String,
    /// The attachment device, `/dev/sdf`, `/dev/sdg`, ...
    pub device: String,
    /// The snapshot it was created from.
    pub snapshot_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Ec2Instance {
    pub id: String,
    /// Its `Name` tag (unique per test).
    pub name: String,
    pub zone: String,
    /// `hvm` or `paravirtual`.
    pub virtualization: String,
    /// `/dev/sda1` (moto's AMIs).
    pub root_device: String,
    pub volumes: Vec<Ec2Volume>,
}

impl Ec2Instance {
    fn from_json(value: &Value) -> Ec2Instance {
        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
        Ec2Instance {
            id: s(&value["instance_id"]),
            name: s(&value["name"]),
            zone: s(&value["zone"]),
            virtualization: s(&value["virtualization"]),
            root_device: s(&value["root_device"]),
            volumes: value["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| Ec2Volume {
                    id: s(&v["id"]),
                    name: s(&v["name"]),
                    device: s(&v["device"]),
                    snapshot_id: v["snapshot_id"].as_str().map(str::to_string),
                })
                .collect(),
        }
    }
}

/// A snapshot as DescribeSnapshots shows it (through the fake, so with injected states).
#[derive(Debug, Clone)]
pub struct SnapshotInfo {
    pub id: String,
    pub volume_id: String,
    /// `pending`, `completed`, `error`, ...
    pub state: String,
    pub progress: String,
    pub tags: BTreeMap<String, String>,
    pub owner_id: String,
    /// The whole DescribeSnapshots entry (boto3 names).
    pub raw: Value,
}

impl SnapshotInfo {
    fn from_json(value: &Value) -> SnapshotInfo {
        let s = |k: &str| value[k].as_str().unwrap_or_default().to_string();
        SnapshotInfo {
            id: s("SnapshotId"),
            volume_id: s("VolumeId"),
            state: s("State"),
            progress: s("Progress"),
            tags: value["Tags"]
                .as_array()
                .map(|tags| {
                    tags.iter()
                        .map(|t| {
                            (
                                t["Key"].as_str().unwrap().to_string(),
                                t["Value"].as_str().unwrap_or_default().to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            owner_id: s("OwnerId"),
            raw: value.clone(),
        }
    }

    /// The `Name` tag.
    pub fn name(&self) -> Option<&str> {
        self.tags.get("Name").map(String::as_str)
    }
}

/// An EC2 error answer: (code, message).
pub type Ec2Error = (String, String);

/// A running `ec2_world.py serve`: one Python start-up (about 0.3 s of CPU with boto3) for
/// many calls. Idle servers wait in [`IDLE_SERVERS`]; each ends when the test binary exits
/// (its stdin closes).
struct WorldServer {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

static IDLE_SERVERS: Mutex<Vec<WorldServer>> = Mutex::new(Vec::new());

impl WorldServer {
    fn spawn() -> WorldServer {
        let python = Path::new(&required_env("BARMAN_RS_TEST_BARMAN_BIN")).join("python");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/ec2_world.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg("serve")
            .envs(ec2_env())
            .env("EC2_ENDPOINT", ec2_endpoint())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run ec2_world.py serve");
        WorldServer {
            stdin: child.stdin.take().unwrap(),
            stdout: std::io::BufReader::new(child.stdout.take().unwrap()),
            child,
        }
    }

    /// The answer line to one request, or why there is none.
    fn ask(&mut self, command: &str, request: &Value) -> Result<Value, String> {
        use std::io::BufRead;
        let line = json!({"command": command, "request": request}).to_string() + "\n";
        self.stdin
            .write_all(line.as_bytes())
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("writing to ec2_world.py serve: {e}"))?;
        let mut answer = String::new();
        match self.stdout.read_line(&mut answer) {
            Ok(0) => Err("ec2_world.py serve ended".into()),
            Ok(_) => serde_json::from_str(&answer).map_err(|e| format!("{e}: {answer}")),
            Err(e) => Err(format!("reading from ec2_world.py serve: {e}")),
        }
    }
}

impl Drop for WorldServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `ec2_world.py`'s `command` with `request` (through an idle server, or a new one).
fn world_script(command: &str, request: &Value) -> Value {
    let idle = IDLE_SERVERS.lock().unwrap_or_else(|e| e.into_inner()).pop();
    let mut server = idle.unwrap_or_else(WorldServer::spawn);
    let answer = server.ask(command, request);
    match answer {
        Ok(mut answer) => {
            IDLE_SERVERS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(server);
            match answer.get_mut("ok") {
                Some(ok) => ok.take(),
                None => panic!(
                    "ec2_world.py {command} {request} failed:\n{}",
                    answer["fail"].as_str().unwrap_or_default()
                ),
            }
        }
        // The server is in an unknown state: it goes (dropped: killed).
        Err(e) => panic!("ec2_world.py {command} {request}: {e}"),
    }
}

/// A boto3 EC2 call (`op` is the boto3 method name, `params` its keyword arguments) through
/// the fake: the answer without `ResponseMetadata`, or the EC2 error.
pub fn ec2_call(op: &str, params: Value) -> Result<Value, Ec2Error> {
    let answer = world_script("call", &json!({"op": op, "params": params}));
    match answer.get("error") {
        Some(error) => Err((
            error["code"].as_str().unwrap_or_default().to_string(),
            error["message"].as_str().unwrap_or_default().to_string(),
        )),
        None => Ok(answer["result"].clone()),
    }
}

/// An instance with attached EBS volumes, made for one test and destroyed when dropped
/// (instances terminated; volumes, every snapshot of them and every snapshot named to
/// [`Ec2World::forget_snapshot_later`] deleted, locks dropped; errors ignored).
pub struct Ec2World {
    pub instance: Ec2Instance,
    recovery: Mutex<Vec<Ec2Instance>>,
    snapshots: Mutex<Vec<String>>,
}

/// Attachment devices of the world's volumes, in order.
pub const DEVICES: [&str; 8] = [
    "/dev/sdf", "/dev/sdg", "/dev/sdh", "/dev/sdi", "/dev/sdj", "/dev/sdk", "/dev/sdl", "/dev/sdm",
];

impl Ec2World {
    /// An HVM instance named `<tag>-...` (unique) with `volumes` 1 GiB volumes named
    /// `<instance name>-d0`, `-d1`, ..., attached as /dev/sdf, /dev/sdg, ...
    pub fn new(tag: &str, volumes: usize) -> Ec2World {
        Self::with_virtualization(tag, volumes, "hvm")
    }

    /// As [`Self::new`], with `virtualization` `hvm` or `paravirtual` (which makes Barman look
    /// for /dev/hdX instead of /dev/xvdX).
    pub fn with_virtualization(tag: &str, volumes: usize, virtualization: &str) -> Ec2World {
        assert!(volumes <= DEVICES.len());
        let name = unique_name(tag);
        let specs: Vec<Value> = (0..volumes)
            .map(|i| json!({"name": format!("{name}-d{i}"), "device": DEVICES[i], "size": 1}))
            .collect();
        let answer = world_script(
            "instance",
            &json!({"name": name, "virtualization": virtualization, "volumes": specs}),
        );
        Ec2World {
            instance: Ec2Instance::from_json(&answer),
            recovery: Mutex::new(Vec::new()),
            snapshots: Mutex::new(Vec::new()),
        }
    }

    pub fn instance_id(&self) -> &str {
        &self.instance.id
    }

    pub fn instance_name(&self) -> &str {
        &self.instance.name
    }

    pub fn volumes(&self) -> &[Ec2Volume] {
        &self.instance.volumes
    }

    pub fn volume(&self, index: usize) -> &Ec2Volume {
        &self.instance.volumes[index]
    }

    /// The environment both tools need for EC2 ([`ec2_env`]).
    pub fn env(&self) -> Vec<(String, String)> {
        ec2_env()
    }

    /// A "recovery" instance named `<tag>-...` with one volume per `(snapshot ID, device)`,
    /// created from that snapshot (Name tag `<instance name>-r<i>`) and attached at that
    /// device. Destroyed with the world.
    pub fn recovery_instance(&self, tag: &str, from: &[(&str, &str)]) -> Ec2Instance {
        let name = unique_name(tag);
        let specs: Vec<Value> = from
            .iter()
            .enumerate()
            .map(|(i, (snapshot, device))| {
                json!({"name": format!("{name}-r{i}"), "device": device, "size": 1,
                       "snapshot_id": snapshot})
            })
            .collect();
        let answer = world_script(
            "instance",
            &json!({"name": name, "virtualization": "hvm", "volumes": specs}),
        );
        let instance = Ec2Instance::from_json(&answer);
        self.recovery.lock().unwrap().push(instance.clone());
        instance
    }

    /// `count` instances without volumes (beyond the root one) named `name`, made by one
    /// RunInstances call, so in one reservation; terminated with the world. Two calls with
    /// the same name give two reservations.
    pub fn instances_named(&self, name: &str, count: u32) -> Vec<String> {
        let images = ec2_call(
            "describe_images",
            json!({"Filters": [
                {"Name": "virtualization-type", "Values": ["hvm"]},
                {"Name": "root-device-name", "Values": ["/dev/sda1"]}]}),
        )
        .unwrap_or_else(|e| panic!("DescribeImages: {e:?}"));
        let mut ids: Vec<&str> = images["Images"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i["ImageId"].as_str())
            .collect();
        ids.sort_unstable();
        let image = ids.first().expect("an HVM AMI with root device /dev/sda1");
        let answer = ec2_call(
            "run_instances",
            json!({"ImageId": image, "MinCount": count, "MaxCount": count,
                   "InstanceType": "t3.micro",
                   "TagSpecifications": [{"ResourceType": "instance",
                                          "Tags": [{"Key": "Name", "Value": name}]}]}),
        )
        .unwrap_or_else(|e| panic!("RunInstances: {e:?}"));
        let made: Vec<Ec2Instance> = answer["Instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| Ec2Instance {
                id: i["InstanceId"].as_str().unwrap().to_string(),
                name: name.to_string(),
                zone: i["Placement"]["AvailabilityZone"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                virtualization: "hvm".into(),
                root_device: "/dev/sda1".into(),
                volumes: Vec::new(),
            })
            .collect();
        let ids = made.iter().map(|i| i.id.clone()).collect();
        self.recovery.lock().unwrap().extend(made);
        ids
    }

    /// The ID of the EBS volume attached at the root device of instance `id`.
    pub fn root_volume(&self, id: &str) -> String {
        let instance = self.describe_instance(id);
        let root = instance["RootDeviceName"].as_str().unwrap().to_string();
        instance["BlockDeviceMappings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["DeviceName"] == root.as_str())
            .and_then(|m| m["Ebs"]["VolumeId"].as_str())
            .unwrap_or_else(|| panic!("no EBS root volume in {instance}"))
            .to_string()
    }

    /// Deletes `snapshot` (and drops its lock) when the world is dropped, for snapshots of
    /// volumes that are not the world's.
    pub fn forget_snapshot_later(&self, snapshot: &str) {
        self.snapshots.lock().unwrap().push(snapshot.to_string());
    }

    /// Every snapshot of `volume_id`, sorted by start time then ID.
    pub fn snapshots_of_volume(&self, volume_id: &str) -> Vec<SnapshotInfo> {
        let answer = ec2_call(
            "describe_snapshots",
            json!({"Filters": [{"Name": "volume-id", "Values": [volume_id]}]}),
        )
        .unwrap_or_else(|e| panic!("DescribeSnapshots of {volume_id}: {e:?}"));
        let mut snapshots: Vec<SnapshotInfo> = answer["Snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .map(SnapshotInfo::from_json)
            .collect();
        snapshots.sort_by(|a, b| {
            (a.raw["StartTime"].as_str(), &a.id).cmp(&(b.raw["StartTime"].as_str(), &b.id))
        });
        snapshots
    }

    /// One snapshot, `None` when EC2 says `InvalidSnapshot.NotFound`.
    pub fn snapshot(&self, id: &str) -> Option<SnapshotInfo> {
        match ec2_call("describe_snapshots", json!({"SnapshotIds": [id]})) {
            Ok(answer) => answer["Snapshots"]
                .as_array()
                .unwrap()
                .first()
                .map(SnapshotInfo::from_json),
            Err((code, _)) if code == "InvalidSnapshot.NotFound" => None,
            Err(e) => panic!("DescribeSnapshots {id}: {e:?}"),
        }
    }

    /// DescribeInstances of one instance: its entry (boto3 names).
    pub fn describe_instance(&self, id: &str) -> Value {
        let answer = ec2_call("describe_instances", json!({"InstanceIds": [id]}))
            .unwrap_or_else(|e| panic!("DescribeInstances {id}: {e:?}"));
        answer["Reservations"][0]["Instances"][0].clone()
    }

    /// DescribeVolumes of one volume: its entry (boto3 names).
    pub fn describe_volume(&self, id: &str) -> Value {
        let answer = ec2_call("describe_volumes", json!({"VolumeIds": [id]}))
            .unwrap_or_else(|e| panic!("DescribeVolumes {id}: {e:?}"));
        answer["Volumes"][0].clone()
    }

    /// A snapshot of `volume_id` made directly (not by a tool), with a `Name` tag.
    pub fn create_snapshot(&self, volume_id: &str, name: &str) -> Result<String, Ec2Error> {
        let answer = ec2_call(
            "create_snapshot",
            json!({"VolumeId": volume_id, "TagSpecifications": [
                {"ResourceType": "snapshot", "Tags": [{"Key": "Name", "Value": name}]}]}),
        )?;
        Ok(answer["SnapshotId"].as_str().unwrap().to_string())
    }

    /// LockSnapshot in `mode` for `days` days.
    pub fn lock_snapshot(&self, id: &str, mode: &str, days: u32) -> Result<Value, Ec2Error> {
        ec2_call(
            "lock_snapshot",
            json!({"SnapshotId": id, "LockMode": mode, "LockDuration": days}),
        )
    }

    pub fn unlock_snapshot(&self, id: &str) -> Result<Value, Ec2Error> {
        ec2_call("unlock_snapshot", json!({"SnapshotId": id}))
    }

    pub fn delete_snapshot(&self, id: &str) -> Result<(), Ec2Error> {
        ec2_call("delete_snapshot", json!({"SnapshotId": id})).map(|_| ())
    }

    /// The fake's lock of snapshot `id`, if any.
    pub fn lock_of(&self, id: &str) -> Option<Value> {
        locks().remove(id)
    }

    // -- injected behaviour (per volume; see the fake's docstring) ---------------------------

    /// DescribeSnapshots shows `volume_id`'s snapshots `pending` until `seconds` after their
    /// creation (0 = off).
    pub fn set_pending_seconds(&self, volume_id: &str, seconds: f64) {
        inject(
            volume_id,
            json!({"pending_seconds": (seconds > 0.0).then_some(seconds)}),
        );
    }

    /// After the pending time, `volume_id`'s snapshots show `state` (e.g. `error`); `None`
    /// restores moto's `completed`.
    pub fn set_snapshot_state(&self, volume_id: &str, state: Option<&str>) {
        inject(volume_id, json!({"snapshot_state": state}));
    }

    /// The `State` CreateSnapshot answers for `volume_id` (e.g. `error`); `None`: moto's.
    pub fn set_create_state(&self, volume_id: &str, state: Option<&str>) {
        inject(volume_id, json!({"create_state": state}));
    }

    /// CreateSnapshot of `volume_id` answers the EC2 error `code`; `None`: no error.
    pub fn set_create_error(&self, volume_id: &str, code: Option<&str>) {
        inject(volume_id, json!({"create_error": code}));
    }

    /// CreateSnapshot of `volume_id` answers `seconds` late (0 = off).
    pub fn set_create_latency(&self, volume_id: &str, seconds: f64) {
        inject(
            volume_id,
            json!({"create_latency": (seconds > 0.0).then_some(seconds)}),
        );
    }

    /// The next `n` calls concerning `id` (a volume or instance ID, a Name tag value, or a
    /// snapshot of a volume so named) answer 503 `RequestLimitExceeded`.
    pub fn throttle_next(&self, id: &str, n: u32) {
        inject(id, json!({"throttle_next": n}));
    }

    // -- recorded calls ----------------------------------------------------------------------

    /// The IDs and names of this world's instances and volumes.
    pub fn identifiers(&self) -> Vec<String> {
        let mut ids = Vec::new();
        let recovery = self.recovery.lock().unwrap();
        for instance in std::iter::once(&self.instance).chain(recovery.iter()) {
            ids.push(instance.id.clone());
            ids.push(instance.name.clone());
            for volume in &instance.volumes {
                ids.push(volume.id.clone());
                ids.push(volume.name.clone());
            }
        }
        ids
    }

    /// Every recorded call concerning this world (its instances, volumes and their
    /// snapshots, by ID or name), the world's own set-up calls included, oldest first.
    pub fn calls(&self) -> Vec<Call> {
        calls_matching(&self.identifiers())
    }

    /// [`Self::calls`] without the world's own (the tools' calls).
    pub fn tool_calls(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| !c.is_from_world())
            .collect()
    }

    /// The Actions of [`Self::tool_calls`], in order.
    pub fn tool_actions(&self) -> Vec<String> {
        self.tool_calls().into_iter().map(|c| c.action).collect()
    }
}

impl Drop for Ec2World {
    fn drop(&mut self) {
        let recovery = self.recovery.lock().unwrap();
        let instances: Vec<&Ec2Instance> = std::iter::once(&self.instance)
            .chain(recovery.iter())
            .collect();
        let request = json!({
            "instances": instances.iter().map(|i| i.id.clone()).collect::<Vec<_>>(),
            "volumes": instances.iter().flat_map(|i| i.volumes.iter().map(|v| v.id.clone()))
                .collect::<Vec<_>>(),
            "snapshots": *self.snapshots.lock().unwrap(),
            "attachments": instances.iter().flat_map(|i| i.volumes.iter().map(|v| json!({
                "volume": v.id, "instance": i.id, "device": v.device})))
                .collect::<Vec<_>>(),
        });
        // Never panic in drop (a failing test is already unwinding); say what was left.
        let result = std::panic::catch_unwind(|| world_script("cleanup", &request));
        match result {
            Ok(answer) if answer["errors"].as_array().is_some_and(|e| e.is_empty()) => {}
            Ok(answer) => eprintln!("Ec2World clean-up: {}", answer["errors"]),
            Err(_) => eprintln!("Ec2World clean-up failed for {request}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fake mounts
// ---------------------------------------------------------------------------------------------

/// One line of the fake mount table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub source: String,
    pub target: PathBuf,
    pub options: String,
}

/// A temporary directory of "disks" (`disk0`, `disk1`, ...: directories user postgres can
/// use) and the mount table the `findmnt` stand-in answers from.
pub struct FakeMounts {
    dir: tempfile::TempDir,
    table: PathBuf,
    entries: Mutex<Vec<MountEntry>>,
    disks: usize,
}

impl FakeMounts {
    /// `disks` disk directories, nothing mounted.
    pub fn new(disks: usize) -> FakeMounts {
        let dir = temp_dir("fakemounts");
        for i in 0..disks {
            let disk = dir.path().join(format!("disk{i}"));
            std::fs::create_dir(&disk).unwrap();
            make_world_accessible(&disk);
            chown_postgres(&disk);
        }
        let mounts = FakeMounts {
            table: dir.path().join("mounts"),
            dir,
            entries: Mutex::new(Vec::new()),
            disks,
        };
        mounts.write();
        mounts
    }

    /// One disk per volume, disk `i` mounted from volume `i`'s device with
    /// [`DEFAULT_MOUNT_OPTIONS`].
    pub fn for_volumes(volumes: &[Ec2Volume]) -> FakeMounts {
        let mounts = FakeMounts::new(volumes.len());
        for (i, volume) in volumes.iter().enumerate() {
            mounts.mount(&volume.device, &mounts.disk(i), DEFAULT_MOUNT_OPTIONS);
        }
        mounts
    }

    /// Disk directory `index`.
    pub fn disk(&self, index: usize) -> PathBuf {
        assert!(index < self.disks, "FakeMounts has {} disks", self.disks);
        self.dir.path().join(format!("disk{index}"))
    }

    pub fn table_path(&self) -> &Path {
        &self.table
    }

    /// Mounts `source` (a device, e.g. `/dev/sdf`) at `target` (any directory, e.g. a
    /// cluster's root) with `options`, replacing the lines of `source`.
    pub fn mount(&self, source: &str, target: &Path, options: &str) {
        let mut entries = self.entries.lock().unwrap();
        entries.retain(|e| e.source != source);
        entries.push(MountEntry {
            source: source.into(),
            target: target.into(),
            options: options.into(),
        });
        drop(entries);
        self.write();
    }

    /// Adds a line without replacing any (e.g. a device mounted twice).
    pub fn add_line(&self, source: &str, target: &Path, options: &str) {
        self.entries.lock().unwrap().push(MountEntry {
            source: source.into(),
            target: target.into(),
            options: options.into(),
        });
        self.write();
    }

    /// Removes the lines of `source`.
    pub fn unmount(&self, source: &str) {
        self.entries.lock().unwrap().retain(|e| e.source != source);
        self.write();
    }

    /// Replaces the whole table.
    pub fn set(&self, entries: Vec<MountEntry>) {
        *self.entries.lock().unwrap() = entries;
        self.write();
    }

    pub fn entries(&self) -> Vec<MountEntry> {
        self.entries.lock().unwrap().clone()
    }

    /// The environment that makes both tools' `findmnt` answer from this table: `PATH` with
    /// `tests/fakes` first, `BARMAN_RS_FAKE_MOUNTS`.
    pub fn env(&self) -> Vec<(String, String)> {
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
        let fakes = fakes_dir().canonicalize().expect("tests/fakes");
        vec![
            ("PATH".into(), format!("{}:{path}", fakes.display())),
            (
                "BARMAN_RS_FAKE_MOUNTS".into(),
                self.table.display().to_string(),
            ),
        ]
    }

    /// Writes the table atomically (a reader never sees half of it).
    fn write(&self) {
        let escape = |s: &str| s.replace(' ', "\\040");
        let text: String = self
            .entries
            .lock()
            .unwrap()
            .iter()
            .map(|e| {
                format!(
                    "{} {} {}\n",
                    escape(&e.source),
                    escape(&e.target.display().to_string()),
                    e.options
                )
            })
            .collect();
        let temp = self.table.with_extension("tmp");
        std::fs::write(&temp, text).unwrap();
        std::fs::rename(&temp, &self.table).unwrap();
    }
}

/// `sh -c 'findmnt ...'` with `env` (as Barman runs it): (exit code, stdout).
pub fn run_findmnt(env: &[(String, String)], args: &[&str]) -> (Option<i32>, String) {
    let quoted: Vec<String> = args
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect();
    let out: Output = Command::new("sh")
        .arg("-c")
        .arg(format!("findmnt {}", quoted.join(" ")))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run sh");
    (out.status.code(), stdout(&out))
}

// ---------------------------------------------------------------------------------------------
// Smoke test of the above
// ---------------------------------------------------------------------------------------------

#[test]
fn ec2_world_and_fakes_work() {
    let world = Ec2World::new("ec2smoke", 2);
    let (vol0, vol1) = (world.volume(0).clone(), world.volume(1).clone());
    assert_eq!(
        (vol0.device.as_str(), vol1.device.as_str()),
        ("/dev/sdf", "/dev/sdg")
    );
    assert_eq!(world.instance.virtualization, "hvm");

    // The instance as Barman sees it: the Name tag, both volumes in its block devices.
    let instance = world.describe_instance(world.instance_id());
    assert!(
        instance["Tags"]
            .as_array()
            .unwrap()
            .contains(&json!({"Key": "Name", "Value": world.instance_name()})),
        "{instance}"
    );
    let mapped: Vec<(String, String)> = instance["BlockDeviceMappings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["DeviceName"].as_str().unwrap().to_string(),
                m["Ebs"]["VolumeId"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for volume in [&vol0, &vol1] {
        assert!(
            mapped.contains(&(volume.device.clone(), volume.id.clone())),
            "{mapped:?}"
        );
        let described = world.describe_volume(&volume.id);
        assert_eq!(
            described["Attachments"][0]["InstanceId"],
            world.instance_id()
        );
    }

    // findmnt answers both questions from the table, through `sh -c` and PATH like Barman's.
    let mounts = FakeMounts::for_volumes(world.volumes());
    let env = mounts.env();
    let disk0 = mounts.disk(0);
    std::fs::create_dir_all(disk0.join("data/base")).unwrap();
    assert_eq!(
        run_findmnt(&env, &["-o", "TARGET,OPTIONS", "-n", "/dev/sdf"]),
        (Some(0), format!("{} rw,noatime\n", disk0.display()))
    );
    assert_eq!(
        run_findmnt(&env, &["-o", "TARGET,OPTIONS", "-n", "sdf"]),
        (Some(1), String::new()),
        "no name guessing"
    );
    assert_eq!(
        run_findmnt(
            &env,
            &[
                "-n",
                "-o",
                "TARGET",
                "-T",
                disk0.join("data/base").to_str().unwrap()
            ]
        ),
        (Some(0), format!("{}\n", disk0.display()))
    );
    assert_eq!(
        run_findmnt(
            &env,
            &[
                "-n",
                "-o",
                "TARGET",
                "-T",
                mounts.table_path().to_str().unwrap()
            ]
        ),
        (Some(0), "/\n".to_string())
    );
    mounts.unmount("/dev/sdg");
    assert_eq!(
        run_findmnt(&env, &["-o", "TARGET,OPTIONS", "-n", "/dev/sdg"]),
        (Some(1), String::new())
    );
    mounts.add_line("/dev/sdf", &mounts.disk(1), "ro");
    assert_eq!(
        run_findmnt(&env, &["-o", "TARGET,OPTIONS", "-n", "/dev/sdf"]).1,
        format!(
            "{} rw,noatime\n{} ro\n",
            disk0.display(),
            mounts.disk(1).display()
        )
    );
    let (code, _) = run_findmnt(&env, &["--list"]);
    assert_eq!(
        code,
        Some(2),
        "questions the stand-in does not know are refused"
    );

    // Snapshots, injected pending state, throttling.
    let snap = world.create_snapshot(&vol0.id, "smoke-a").unwrap();
    let seen = world.snapshot(&snap).unwrap();
    assert_eq!(
        (seen.state.as_str(), seen.name(), seen.volume_id.as_str()),
        ("completed", Some("smoke-a"), vol0.id.as_str())
    );
    world.set_pending_seconds(&vol1.id, 600.0);
    let slow = world.create_snapshot(&vol1.id, "smoke-b").unwrap();
    let seen = world.snapshot(&slow).unwrap();
    assert_eq!(seen.state, "pending");
    assert_ne!(seen.progress, "100%");
    world.set_pending_seconds(&vol1.id, 0.0);
    world.set_snapshot_state(&vol1.id, Some("error"));
    assert_eq!(world.snapshot(&slow).unwrap().state, "error");
    world.set_snapshot_state(&vol1.id, None);
    assert_eq!(world.snapshot(&slow).unwrap().state, "completed");
    let snapshots: Vec<String> = world
        .snapshots_of_volume(&vol1.id)
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(snapshots, vec![slow.clone()]);

    world.set_create_error(&vol1.id, Some("IncorrectState"));
    let refused = world.create_snapshot(&vol1.id, "smoke-c").unwrap_err();
    assert_eq!(refused.0, "IncorrectState");
    world.set_create_error(&vol1.id, None);

    // boto3 (the world's client) retries RequestLimitExceeded: one 503, then the answer.
    world.throttle_next(&vol1.id, 1);
    assert!(world.snapshot(&slow).is_some());

    // A lock is held by the fake and refuses the deletion with SnapshotLocked.
    let lock = world.lock_snapshot(&snap, "governance", 1).unwrap();
    assert_eq!(lock["SnapshotId"], snap.as_str());
    assert_eq!(lock["LockState"], "governance");
    assert_eq!(lock["LockDuration"], 1);
    assert_eq!(world.lock_of(&snap).unwrap()["lockMode"], "governance");
    assert_eq!(
        world.delete_snapshot(&snap).unwrap_err().0,
        "SnapshotLocked"
    );
    assert!(world.snapshot(&snap).is_some());
    world.unlock_snapshot(&snap).unwrap();
    assert!(world.lock_of(&snap).is_none());
    world.delete_snapshot(&snap).unwrap();
    assert!(world.snapshot(&snap).is_none());

    // Unsigned requests are refused.
    let (status, body) = {
        let endpoint = ec2_endpoint();
        let address = endpoint.trim_start_matches("http://").to_string();
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        let payload = "Action=DescribeVolumes&Version=2016-11-15";
        write!(
            stream,
            "POST / HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{payload}",
            payload.len()
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        (
            answer.split_whitespace().nth(1).unwrap().to_string(),
            answer,
        )
    };
    assert_eq!(status, "401", "{body}");
    assert!(body.contains("<Code>AuthFailure</Code>"), "{body}");

    // The recorded calls: this world's only, in order, with their answers.
    let calls = world.calls();
    assert!(calls.iter().all(Call::is_from_world), "{calls:?}");
    assert!(world.tool_calls().is_empty());
    let summary: Vec<(String, Option<u16>)> = calls
        .iter()
        .filter(|c| {
            matches!(
                c.action.as_str(),
                "CreateSnapshot" | "LockSnapshot" | "DeleteSnapshot" | "UnlockSnapshot"
            )
        })
        .map(|c| (c.action.clone(), c.status))
        .collect();
    let expected: Vec<(String, Option<u16>)> = [
        ("CreateSnapshot", 200),
        ("CreateSnapshot", 200),
        ("CreateSnapshot", 400),
        ("LockSnapshot", 200),
        ("DeleteSnapshot", 400),
        ("UnlockSnapshot", 200),
        ("DeleteSnapshot", 200),
    ]
    .iter()
    .map(|(a, s)| (a.to_string(), Some(*s)))
    .collect();
    assert_eq!(summary, expected);
    let throttled: Vec<&Call> = calls.iter().filter(|c| c.status == Some(503)).collect();
    assert_eq!(throttled.len(), 1, "{calls:?}");
    assert_eq!(throttled[0].action, "DescribeSnapshots");
    assert_eq!(throttled[0].param("SnapshotId.1"), Some(slow.as_str()));
    let lock_call = calls.iter().find(|c| c.action == "LockSnapshot").unwrap();
    assert_eq!(
        (
            lock_call.param("SnapshotId"),
            lock_call.param("LockMode"),
            lock_call.param("LockDuration")
        ),
        (Some(snap.as_str()), Some("governance"), Some("1"))
    );
}
