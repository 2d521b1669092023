//! What EC2 answers, read from its XML with serde: only the fields the snapshot provider
//! uses; everything else in a response is skipped. EC2 wraps every list in an element
//! whose children are all `<item>`s (`<tagSet><item>...</item></tagSet>`); [`items`]
//! unwraps them into a plain `Vec`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// `<xxxSet><item/>...</xxxSet>`.
#[derive(Deserialize)]
struct ItemSet<T> {
    #[serde(rename = "item", default = "Vec::new")]
    items: Vec<T>,
}

/// Deserializes an EC2 list element into its items.
fn items<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(ItemSet::<T>::deserialize(deserializer)?.items)
}

/// A resource tag.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Tag {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// The value of the tag `key`, if the resource has one.
pub fn tag_value<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter().find(|t| t.key == key).map(|t| t.value.as_str())
}

/// Whether the resource has the tag `key` with value `value` (Barman's `_has_tag`).
pub fn has_tag(tags: &[Tag], key: &str, value: &str) -> bool {
    tags.iter().any(|t| t.key == key && t.value == value)
}

/// One `DescribeInstances` reservation: the instances launched together.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    #[serde(default)]
    pub reservation_id: String,
    #[serde(rename = "instancesSet", default, deserialize_with = "items")]
    pub instances: Vec<Instance>,
}

/// An EC2 instance.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    pub instance_id: String,
    /// `/dev/sda1`, `/dev/xvda`...: the root volume's attachment name.
    #[serde(default)]
    pub root_device_name: Option<String>,
    /// `hvm` or `paravirtual`.
    #[serde(default)]
    pub virtualization_type: Option<String>,
    /// Set for instances on an AWS Outpost.
    #[serde(default)]
    pub outpost_arn: Option<String>,
    #[serde(rename = "blockDeviceMapping", default, deserialize_with = "items")]
    pub block_device_mappings: Vec<BlockDeviceMapping>,
    #[serde(rename = "tagSet", default, deserialize_with = "items")]
    pub tags: Vec<Tag>,
}

impl Instance {
    /// The Outpost ARN, if the instance is on one.
    pub fn outpost(&self) -> Option<&str> {
        self.outpost_arn.as_deref().filter(|a| !a.is_empty())
    }

    /// The mapping of the EBS volume `volume_id`, if the instance has it.
    pub fn ebs_mapping(&self, volume_id: &str) -> Option<&BlockDeviceMapping> {
        self.block_device_mappings
            .iter()
            .find(|m| m.volume_id() == Some(volume_id))
    }
}

/// A device of an instance (`blockDeviceMapping` item).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockDeviceMapping {
    #[serde(default)]
    pub device_name: String,
    /// Absent for instance-store devices.
    #[serde(default)]
    pub ebs: Option<EbsDevice>,
}

impl BlockDeviceMapping {
    pub fn volume_id(&self) -> Option<&str> {
        self.ebs.as_ref().map(|e| e.volume_id.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EbsDevice {
    #[serde(default)]
    pub volume_id: String,
}

/// An EBS volume (`DescribeVolumes` item).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    pub volume_id: String,
    /// The snapshot the volume was created from; empty or absent for a blank volume.
    #[serde(default)]
    pub snapshot_id: Option<String>,
    #[serde(rename = "attachmentSet", default, deserialize_with = "items")]
    pub attachments: Vec<VolumeAttachment>,
    #[serde(rename = "tagSet", default, deserialize_with = "items")]
    pub tags: Vec<Tag>,
}

impl Volume {
    /// The snapshot the volume was created from, if any.
    pub fn source_snapshot(&self) -> Option<&str> {
        self.snapshot_id.as_deref().filter(|s| !s.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeAttachment {
    #[serde(default)]
    pub volume_id: String,
    #[serde(default)]
    pub instance_id: String,
    /// The device name the instance sees the volume under (`/dev/sdf`).
    #[serde(default)]
    pub device: String,
}

/// An EBS snapshot (`CreateSnapshot` answer, `DescribeSnapshots` item).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub snapshot_id: String,
    #[serde(default)]
    pub volume_id: String,
    /// `pending`, `completed`, `error`, `recoverable`, `recovering`.
    #[serde(rename = "status", default)]
    pub state: String,
    #[serde(rename = "statusMessage", default)]
    pub state_message: Option<String>,
    #[serde(default)]
    pub progress: Option<String>,
    /// The account that owns the snapshot.
    #[serde(default)]
    pub owner_id: Option<String>,
    #[serde(rename = "tagSet", default, deserialize_with = "items")]
    pub tags: Vec<Tag>,
}

/// The `LockSnapshot` answer. Dates are kept as EC2 writes them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockSnapshotResult {
    #[serde(default)]
    pub snapshot_id: Option<String>,
    #[serde(default)]
    pub lock_state: Option<String>,
    #[serde(default)]
    pub lock_duration: Option<i64>,
    #[serde(default)]
    pub cool_off_period: Option<i64>,
    #[serde(default)]
    pub cool_off_period_expires_on: Option<String>,
    #[serde(default)]
    pub lock_created_on: Option<String>,
    #[serde(default)]
    pub lock_expires_on: Option<String>,
    #[serde(default)]
    pub lock_duration_start_time: Option<String>,
}

impl LockSnapshotResult {
    /// The answer as Barman logs it: JSON with 4-space indentation of the fields EC2
    /// returned, in the API model's order, numbers as numbers and dates as Python's
    /// `datetime.isoformat()` writes boto3's parsed dates (`2025-01-02T03:04:05+00:00`).
    pub fn to_log_json(&self) -> String {
        let mut fields: Vec<(&str, String)> = Vec::new();
        let text = |v: &str| json_string(v);
        let date = |v: &str| json_string(&python_isoformat(v));
        if let Some(v) = &self.snapshot_id {
            fields.push(("SnapshotId", text(v)));
        }
        if let Some(v) = &self.lock_state {
            fields.push(("LockState", text(v)));
        }
        if let Some(v) = self.lock_duration {
            fields.push(("LockDuration", v.to_string()));
        }
        if let Some(v) = self.cool_off_period {
            fields.push(("CoolOffPeriod", v.to_string()));
        }
        if let Some(v) = &self.cool_off_period_expires_on {
            fields.push(("CoolOffPeriodExpiresOn", date(v)));
        }
        if let Some(v) = &self.lock_created_on {
            fields.push(("LockCreatedOn", date(v)));
        }
        if let Some(v) = &self.lock_expires_on {
            fields.push(("LockExpiresOn", date(v)));
        }
        if let Some(v) = &self.lock_duration_start_time {
            fields.push(("LockDurationStartTime", date(v)));
        }
        if fields.is_empty() {
            return "{}".to_string();
        }
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("    \"{k}\": {v}"))
            .collect();
        format!("{{\n{}\n}}", body.join(",\n"))
    }
}

/// A JSON string as Python's `json.dumps` writes it (non-ASCII escaped).
fn json_string(text: &str) -> String {
    crate::catalog::json::dumps(&crate::catalog::pyliteral::PyValue::str(text))
        .expect("a string is always JSON")
}

/// An EC2 timestamp (`2025-01-02T03:04:05.000Z`) as Python prints the datetime boto3
/// parses it into; text that is not a timestamp is kept.
fn python_isoformat(text: &str) -> String {
    use chrono::Timelike;
    let Ok(parsed) = chrono::DateTime::parse_from_rfc3339(text) else {
        return text.to_string();
    };
    let mut out = parsed.format("%Y-%m-%dT%H:%M:%S").to_string();
    let micros = parsed.nanosecond() / 1000;
    if micros != 0 {
        out.push_str(&format!(".{micros:06}"));
    }
    out.push_str(&parsed.format("%:z").to_string());
    out
}

/// `<Response><Errors><Error><Code/><Message/></Error></Errors></Response>`.
#[derive(Deserialize)]
struct ErrorResponse {
    #[serde(rename = "Errors")]
    errors: ErrorList,
}

#[derive(Deserialize)]
struct ErrorList {
    #[serde(rename = "Error", default)]
    errors: Vec<ErrorBody>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "Code")]
    code: String,
    #[serde(rename = "Message", default)]
    message: Option<String>,
}

/// The code and message of an EC2 error answer, if `text` is one.
pub fn parse_error(text: &str) -> Option<(String, String)> {
    let response: ErrorResponse = quick_xml::de::from_str(text).ok()?;
    let first = response.errors.errors.into_iter().next()?;
    Some((first.code, first.message.unwrap_or_default()))
}

/// One page of a `Describe*` answer.
pub(crate) trait Page: DeserializeOwned {
    type Item;
    fn into_page(self) -> (Vec<Self::Item>, Option<String>);
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DescribeInstancesPage {
    #[serde(rename = "reservationSet", default, deserialize_with = "items")]
    reservations: Vec<Reservation>,
    #[serde(default)]
    next_token: Option<String>,
}

impl Page for DescribeInstancesPage {
    type Item = Reservation;
    fn into_page(self) -> (Vec<Reservation>, Option<String>) {
        (self.reservations, self.next_token)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DescribeVolumesPage {
    #[serde(rename = "volumeSet", default, deserialize_with = "items")]
    volumes: Vec<Volume>,
    #[serde(default)]
    next_token: Option<String>,
}

impl Page for DescribeVolumesPage {
    type Item = Volume;
    fn into_page(self) -> (Vec<Volume>, Option<String>) {
        (self.volumes, self.next_token)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DescribeSnapshotsPage {
    #[serde(rename = "snapshotSet", default, deserialize_with = "items")]
    snapshots: Vec<Snapshot>,
    #[serde(default)]
    next_token: Option<String>,
}

impl Page for DescribeSnapshotsPage {
    type Item = Snapshot;
    fn into_page(self) -> (Vec<Snapshot>, Option<String>) {
        (self.snapshots, self.next_token)
    }
}

/// Reads an answer; the error says what could not be read.
pub(crate) fn parse<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    quick_xml::de::from_str(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DescribeInstances answer as EC2 writes it (trimmed of fields nobody reads, but
    /// with the nested `<item>` lists that must be skipped).
    pub(crate) const DESCRIBE_INSTANCES: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>8f7724cf-496f-496e-8fe3-example</requestId>
    <reservationSet>
        <item>
            <reservationId>r-1234567890abcdef0</reservationId>
            <ownerId>123456789012</ownerId>
            <groupSet/>
            <instancesSet>
                <item>
                    <instanceId>i-1234567890abcdef0</instanceId>
                    <imageId>ami-bff32ccc</imageId>
                    <instanceState><code>16</code><name>running</name></instanceState>
                    <networkInterfaceSet>
                        <item><networkInterfaceId>eni-1</networkInterfaceId>
                            <groupSet><item><groupId>sg-1</groupId></item></groupSet>
                        </item>
                    </networkInterfaceSet>
                    <rootDeviceType>ebs</rootDeviceType>
                    <rootDeviceName>/dev/xvda</rootDeviceName>
                    <blockDeviceMapping>
                        <item>
                            <deviceName>/dev/xvda</deviceName>
                            <ebs>
                                <volumeId>vol-0root</volumeId>
                                <status>attached</status>
                                <attachTime>2015-12-22T10:44:09.000Z</attachTime>
                                <deleteOnTermination>true</deleteOnTermination>
                            </ebs>
                        </item>
                        <item>
                            <deviceName>/dev/sdf</deviceName>
                            <ebs><volumeId>vol-0data</volumeId><status>attached</status></ebs>
                        </item>
                        <item>
                            <deviceName>/dev/sdb</deviceName>
                            <virtualName>ephemeral0</virtualName>
                        </item>
                    </blockDeviceMapping>
                    <virtualizationType>hvm</virtualizationType>
                    <tagSet>
                        <item><key>Name</key><value>pg-primary</value></item>
                        <item><key>empty</key><value/></item>
                    </tagSet>
                    <groupSet/>
                </item>
            </instancesSet>
        </item>
    </reservationSet>
    <nextToken>token-2</nextToken>
</DescribeInstancesResponse>"#;

    #[test]
    fn reads_describe_instances() {
        let page: DescribeInstancesPage = parse(DESCRIBE_INSTANCES).expect("parses");
        let (reservations, next) = page.into_page();
        assert_eq!(next.as_deref(), Some("token-2"));
        assert_eq!(reservations.len(), 1);
        assert_eq!(reservations[0].reservation_id, "r-1234567890abcdef0");
        let instance = &reservations[0].instances[0];
        assert_eq!(instance.instance_id, "i-1234567890abcdef0");
        assert_eq!(instance.root_device_name.as_deref(), Some("/dev/xvda"));
        assert_eq!(instance.virtualization_type.as_deref(), Some("hvm"));
        assert_eq!(instance.outpost(), None);
        let mappings: Vec<(&str, Option<&str>)> = instance
            .block_device_mappings
            .iter()
            .map(|m| (m.device_name.as_str(), m.volume_id()))
            .collect();
        assert_eq!(
            mappings,
            [
                ("/dev/xvda", Some("vol-0root")),
                ("/dev/sdf", Some("vol-0data")),
                ("/dev/sdb", None)
            ]
        );
        assert_eq!(tag_value(&instance.tags, "Name"), Some("pg-primary"));
        assert_eq!(tag_value(&instance.tags, "empty"), Some(""));
        assert!(has_tag(&instance.tags, "Name", "pg-primary"));
        assert!(!has_tag(&instance.tags, "Name", "pg"));
        assert_eq!(
            instance
                .ebs_mapping("vol-0data")
                .map(|m| m.device_name.as_str()),
            Some("/dev/sdf")
        );
    }

    #[test]
    fn reads_empty_and_multi_reservation_answers() {
        let empty = r#"<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>x</requestId><reservationSet/></DescribeInstancesResponse>"#;
        let (reservations, next) = parse::<DescribeInstancesPage>(empty).unwrap().into_page();
        assert!(reservations.is_empty());
        assert_eq!(next, None);
        let two = r#"<DescribeInstancesResponse><reservationSet>
            <item><reservationId>r-1</reservationId><instancesSet>
              <item><instanceId>i-1</instanceId><outpostArn>arn:aws:outposts:us-east-1:1:outpost/op-1</outpostArn></item>
              <item><instanceId>i-2</instanceId></item>
            </instancesSet></item>
            <item><reservationId>r-2</reservationId><instancesSet/></item>
            </reservationSet><nextToken/></DescribeInstancesResponse>"#;
        let (reservations, next) = parse::<DescribeInstancesPage>(two).unwrap().into_page();
        assert_eq!(reservations.len(), 2);
        assert_eq!(reservations[0].instances.len(), 2);
        assert_eq!(
            reservations[0].instances[0].outpost(),
            Some("arn:aws:outposts:us-east-1:1:outpost/op-1")
        );
        assert!(reservations[1].instances.is_empty());
        assert!(next.unwrap_or_default().is_empty());
    }

    #[test]
    fn reads_describe_volumes() {
        let text = r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeVolumesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
   <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
   <volumeSet>
      <item>
         <volumeId>vol-0data</volumeId>
         <size>80</size>
         <snapshotId>snap-0source</snapshotId>
         <availabilityZone>us-east-1a</availabilityZone>
         <status>in-use</status>
         <createTime>2013-12-18T22:35:00.084Z</createTime>
         <attachmentSet>
            <item>
               <volumeId>vol-0data</volumeId>
               <instanceId>i-1234567890abcdef0</instanceId>
               <device>/dev/sdf</device>
               <status>attached</status>
               <attachTime>2013-12-18T22:35:00.000Z</attachTime>
               <deleteOnTermination>false</deleteOnTermination>
            </item>
         </attachmentSet>
         <volumeType>gp3</volumeType>
         <tagSet><item><key>Name</key><value>pgdata</value></item></tagSet>
      </item>
      <item>
         <volumeId>vol-0blank</volumeId>
         <snapshotId/>
         <attachmentSet/>
      </item>
   </volumeSet>
</DescribeVolumesResponse>"#;
        let (volumes, next) = parse::<DescribeVolumesPage>(text).unwrap().into_page();
        assert_eq!(next, None);
        assert_eq!(volumes.len(), 2);
        assert_eq!(volumes[0].source_snapshot(), Some("snap-0source"));
        assert_eq!(
            volumes[0].attachments,
            [VolumeAttachment {
                volume_id: "vol-0data".into(),
                instance_id: "i-1234567890abcdef0".into(),
                device: "/dev/sdf".into(),
            }]
        );
        assert_eq!(tag_value(&volumes[0].tags, "Name"), Some("pgdata"));
        assert_eq!(volumes[1].source_snapshot(), None);
        assert!(volumes[1].attachments.is_empty());
        assert!(volumes[1].tags.is_empty());
    }

    #[test]
    fn reads_snapshots() {
        // CreateSnapshot answers with the snapshot's fields at the top level.
        let created = r#"<CreateSnapshotResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
  <snapshotId>snap-1234567890abcdef0</snapshotId>
  <volumeId>vol-0data</volumeId>
  <status>pending</status>
  <startTime>2016-08-29T20:13:48.000Z</startTime>
  <progress/>
  <ownerId>111122223333</ownerId>
  <volumeSize>8</volumeSize>
  <encrypted>false</encrypted>
  <tagSet><item><key>Name</key><value>pgdata-20250101t000000</value></item></tagSet>
</CreateSnapshotResponse>"#;
        let snapshot: Snapshot = parse(created).unwrap();
        assert_eq!(snapshot.snapshot_id, "snap-1234567890abcdef0");
        assert_eq!(snapshot.state, "pending");
        assert_eq!(snapshot.owner_id.as_deref(), Some("111122223333"));
        assert_eq!(
            tag_value(&snapshot.tags, "Name"),
            Some("pgdata-20250101t000000")
        );
        let described = r#"<DescribeSnapshotsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
   <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
   <snapshotSet>
      <item>
         <snapshotId>snap-1</snapshotId>
         <volumeId>vol-1</volumeId>
         <status>error</status>
         <statusMessage>Internal error</statusMessage>
         <progress>0%</progress>
         <ownerId>111122223333</ownerId>
      </item>
      <item>
         <snapshotId>snap-2</snapshotId>
         <status>completed</status>
         <progress>100%</progress>
      </item>
   </snapshotSet>
   <nextToken>abc</nextToken>
</DescribeSnapshotsResponse>"#;
        let (snapshots, next) = parse::<DescribeSnapshotsPage>(described)
            .unwrap()
            .into_page();
        assert_eq!(next.as_deref(), Some("abc"));
        assert_eq!(snapshots[0].state, "error");
        assert_eq!(
            snapshots[0].state_message.as_deref(),
            Some("Internal error")
        );
        assert_eq!(snapshots[1].state, "completed");
        assert!(snapshots[1].tags.is_empty());
    }

    #[test]
    fn reads_errors() {
        let text = r#"<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code><Message>The instance ID 'i-1a2b3c4d' does not exist</Message></Error></Errors><RequestID>ea966190-f9aa-478e-9ede-example</RequestID></Response>"#;
        assert_eq!(
            parse_error(text),
            Some((
                "InvalidInstanceID.NotFound".to_string(),
                "The instance ID 'i-1a2b3c4d' does not exist".to_string()
            ))
        );
        // moto leaves the message empty.
        let empty = r#"<Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15"><Errors><Error><Code>InvalidSnapshot.NotFound</Code><Message/></Error></Errors><RequestID>request-id</RequestID></Response>"#;
        assert_eq!(
            parse_error(empty),
            Some(("InvalidSnapshot.NotFound".to_string(), String::new()))
        );
        assert_eq!(parse_error("<html><body>Bad gateway</body></html>"), None);
        assert_eq!(parse_error(""), None);
    }

    #[test]
    fn lock_answer_is_logged_as_barman_does() {
        let text = r#"<LockSnapshotResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>x</requestId>
  <snapshotId>snap-1</snapshotId>
  <lockState>compliance-cooloff</lockState>
  <lockDuration>7</lockDuration>
  <coolOffPeriod>24</coolOffPeriod>
  <coolOffPeriodExpiresOn>2025-01-02T03:04:05.000Z</coolOffPeriodExpiresOn>
  <lockCreatedOn>2025-01-01T03:04:05.250Z</lockCreatedOn>
  <lockExpiresOn>2025-01-08T03:04:05.000Z</lockExpiresOn>
  <lockDurationStartTime>2025-01-01T03:04:05.000Z</lockDurationStartTime>
</LockSnapshotResponse>"#;
        let answer: LockSnapshotResult = parse(text).unwrap();
        assert_eq!(
            answer.to_log_json(),
            "{\n    \"SnapshotId\": \"snap-1\",\n    \"LockState\": \"compliance-cooloff\",\n    \"LockDuration\": 7,\n    \"CoolOffPeriod\": 24,\n    \"CoolOffPeriodExpiresOn\": \"2025-01-02T03:04:05+00:00\",\n    \"LockCreatedOn\": \"2025-01-01T03:04:05.250000+00:00\",\n    \"LockExpiresOn\": \"2025-01-08T03:04:05+00:00\",\n    \"LockDurationStartTime\": \"2025-01-01T03:04:05+00:00\"\n}"
        );
        let governance: LockSnapshotResult = parse(
            "<LockSnapshotResponse><snapshotId>snap-2</snapshotId><lockState>governance</lockState><lockDuration>1</lockDuration></LockSnapshotResponse>",
        )
        .unwrap();
        assert_eq!(
            governance.to_log_json(),
            "{\n    \"SnapshotId\": \"snap-2\",\n    \"LockState\": \"governance\",\n    \"LockDuration\": 1\n}"
        );
        assert_eq!(LockSnapshotResult::default().to_log_json(), "{}");
        assert_eq!(json_string("a\"é"), "\"a\\\"\\u00e9\"");
    }
}
