//! Where a disk is mounted, found as Barman 3.20.1 finds it (`barman/fs.py` `findmnt`, the
//! `resolve_mounted_volume` methods of `barman/cloud_providers/*`), and where a path's data
//! lives (`findmnt -T`, which Barman never asks).

use super::DeviceRef;
use super::host::Host;
use crate::error::{Error, Result};

/// A mounted filesystem as `snapshots_info` records it: findmnt's TARGET and OPTIONS,
/// compared verbatim at recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub mount_point: String,
    pub mount_options: String,
}

/// `findmnt -o TARGET,OPTIONS -n <device>`: `None` when it prints nothing (not mounted, or
/// no findmnt at all); exactly two words otherwise, else Barman's "Unexpected findmnt
/// output" error (a device mounted twice, a mount point with spaces). The exit status is
/// not looked at, as in Barman.
pub async fn findmnt(host: &dyn Host, device: &str) -> Result<Option<Mount>> {
    let output = host
        .run("findmnt", &["-o", "TARGET,OPTIONS", "-n", device])
        .await?;
    if output.stdout.is_empty() {
        return Ok(None);
    }
    let fields: Vec<&str> = output.stdout.split_whitespace().collect();
    match fields.as_slice() {
        [target, options] => Ok(Some(Mount {
            mount_point: target.to_string(),
            mount_options: options.to_string(),
        })),
        _ => Err(Error::Provider(format!(
            "Unexpected findmnt output: {}",
            output.stdout
        ))),
    }
}

/// The mount of `device` on `host`, or Barman's error saying why there is none.
pub async fn resolve_mount(host: &dyn Host, device: &DeviceRef) -> Result<Mount> {
    match device {
        DeviceRef::Aws {
            device_name,
            volume_id,
            paravirtual,
        } => resolve_ebs(host, device_name, volume_id, *paravirtual).await,
        DeviceRef::Gcp { device_name } => {
            let path = format!("/dev/disk/by-id/google-{device_name}");
            match findmnt(host, &path).await {
                Err(e) => Err(Error::Provider(format!(
                    "Error finding mount point for device {path}: {e}"
                ))),
                Ok(None) => Err(Error::Provider(format!(
                    "Could not find device {path} at any mount point"
                ))),
                Ok(Some(mount)) => Ok(mount),
            }
        }
        DeviceRef::Azure { lun } => {
            let path = format!("/dev/disk/azure/scsi1/lun{lun}");
            match findmnt(host, &path).await {
                Err(e) => Err(Error::Provider(format!(
                    "Error finding mount point for volume with lun {lun}: {e}"
                ))),
                Ok(None) => Err(Error::Provider(format!(
                    "Could not find volume with lun {lun} at any mount point"
                ))),
                Ok(Some(mount)) => Ok(mount),
            }
        }
    }
}

/// EBS: the attachment's device name is only a hint; the kernel may call the disk
/// `/dev/xvdX` (HVM) or `/dev/hdX` (paravirtual) for `/dev/sdX`, or `nvmeNn1` on Nitro
/// instances, whose serial number is the volume ID without its dash.
async fn resolve_ebs(
    host: &dyn Host,
    device_name: &str,
    volume_id: &str,
    paravirtual: bool,
) -> Result<Mount> {
    if device_name == "/dev/sda1" || device_name == "/dev/xvda" {
        return Err(Error::Provider(format!(
            "'{device_name}' is a root volume. EBS volumes envolved in the snapshot backup \
             must be non-root."
        )));
    }
    let new_prefix = if paravirtual { "/dev/hd" } else { "/dev/xvd" };
    let mut name = device_name.to_string();
    for block in host.list_dir("/sys/block").await? {
        let device = format!("/dev/{block}");
        if name == device {
            break;
        }
        if let Some(rest) = name.strip_prefix("/dev/sd") {
            let renamed = format!("{new_prefix}{rest}");
            if renamed == device {
                name = renamed;
                break;
            }
        }
        let serial_path = format!("/sys/block/{block}/device/serial");
        if device.contains("nvme") && host.exists(&serial_path).await? {
            let Ok(serial) = host.read_file(&serial_path).await else {
                continue;
            };
            if serial.trim().replacen("vol", "vol-", 1) == volume_id {
                name = device;
                break;
            }
        }
    }
    let short = name.strip_prefix("/dev/").unwrap_or(&name).to_string();
    for candidate in [name.as_str(), short.as_str()] {
        match findmnt(host, candidate).await {
            Ok(Some(mount)) => return Ok(mount),
            Ok(None) => {}
            Err(e) => {
                return Err(Error::Provider(format!(
                    "Error finding mount point for device path {device_name}: {e}"
                )));
            }
        }
    }
    Err(Error::Provider(format!(
        "Could not find device {device_name} at any mount point"
    )))
}

/// The mount point of the filesystem holding `path` (`findmnt -n -o TARGET -T <path>`,
/// after resolving symbolic links), `None` when findmnt cannot tell.
pub async fn mount_point_of(host: &dyn Host, path: &str) -> Result<Option<String>> {
    let Some(real) = host.real_path(path).await? else {
        return Err(Error::Provider(format!("{path} does not exist")));
    };
    let output = host
        .run("findmnt", &["-n", "-o", "TARGET", "-T", &real])
        .await?;
    let target = output.stdout.trim_end_matches('\n');
    Ok(
        (output.success && !target.is_empty() && !target.contains('\n'))
            .then(|| target.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::super::host::fake::FakeHost;
    use super::*;

    fn ebs(device: &str) -> DeviceRef {
        DeviceRef::Aws {
            device_name: device.into(),
            volume_id: "vol-0abc".into(),
            paravirtual: false,
        }
    }

    fn block(rt: &tokio::runtime::Runtime, host: &FakeHost, device: &DeviceRef) -> Result<Mount> {
        rt.block_on(resolve_mount(host, device))
    }

    #[test]
    fn ebs_device_names_resolve_as_barman_resolves_them() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // The attachment name itself.
        let host = FakeHost::default()
            .answer("ls /sys/block", true, "loop0 sdf\n")
            .answer(
                "findmnt -o TARGET,OPTIONS -n /dev/sdf",
                true,
                "/srv/pg rw,noatime\n",
            );
        let mount = block(&rt, &host, &ebs("/dev/sdf")).unwrap();
        assert_eq!(mount.mount_point, "/srv/pg");
        assert_eq!(mount.mount_options, "rw,noatime");
        // Renamed by an HVM kernel.
        let host = FakeHost::default()
            .answer("ls /sys/block", true, "xvdf\n")
            .answer("findmnt -o TARGET,OPTIONS -n /dev/xvdf", true, "/a rw\n");
        assert_eq!(
            block(&rt, &host, &ebs("/dev/sdf")).unwrap().mount_point,
            "/a"
        );
        // Nitro: the NVMe device whose serial is the volume ID without its dash; a device
        // whose serial cannot be read is skipped.
        let host = FakeHost::default()
            .answer("ls /sys/block", true, "nvme0n1 nvme1n1\n")
            .answer("test -e /sys/block/nvme0n1/device/serial", true, "")
            .answer("test -e /sys/block/nvme1n1/device/serial", true, "")
            .answer("cat /sys/block/nvme1n1/device/serial", true, "vol0abc  \n")
            .answer("findmnt -o TARGET,OPTIONS -n /dev/nvme1n1", true, "/n rw\n");
        assert_eq!(
            block(&rt, &host, &ebs("/dev/sdf")).unwrap().mount_point,
            "/n"
        );
        // Second attempt without /dev/.
        let host = FakeHost::default()
            .answer("ls /sys/block", true, "")
            .answer("findmnt -o TARGET,OPTIONS -n sdf", true, "/s rw\n");
        assert_eq!(
            block(&rt, &host, &ebs("/dev/sdf")).unwrap().mount_point,
            "/s"
        );
        // Nothing mounted.
        let host = FakeHost::default().answer("ls /sys/block", true, "sdf\n");
        assert_eq!(
            block(&rt, &host, &ebs("/dev/sdf")).unwrap_err().to_string(),
            "Could not find device /dev/sdf at any mount point"
        );
        // Root volumes, and findmnt output Barman cannot read.
        assert!(
            block(&rt, &FakeHost::default(), &ebs("/dev/xvda"))
                .unwrap_err()
                .to_string()
                .contains("is a root volume")
        );
        let host = FakeHost::default()
            .answer("ls /sys/block", true, "")
            .answer(
                "findmnt -o TARGET,OPTIONS -n /dev/sdf",
                true,
                "/a rw\n/b rw\n",
            );
        assert_eq!(
            block(&rt, &host, &ebs("/dev/sdf")).unwrap_err().to_string(),
            "Error finding mount point for device path /dev/sdf: Unexpected findmnt output: \
             /a rw\n/b rw\n"
        );
    }

    #[test]
    fn gcp_and_azure_devices_have_fixed_paths() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let host = FakeHost::default().answer(
            "findmnt -o TARGET,OPTIONS -n /dev/disk/by-id/google-pgdata",
            true,
            "/opt/disk0 rw,relatime\n",
        );
        let device = DeviceRef::Gcp {
            device_name: "pgdata".into(),
        };
        assert_eq!(
            block(&rt, &host, &device).unwrap().mount_point,
            "/opt/disk0"
        );
        let device = DeviceRef::Azure { lun: 3 };
        assert_eq!(
            block(&rt, &FakeHost::default(), &device)
                .unwrap_err()
                .to_string(),
            "Could not find volume with lun 3 at any mount point"
        );
    }

    #[test]
    fn the_filesystem_of_a_path_is_asked_after_resolving_links() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let host = FakeHost::default()
            .answer("realpath -e -- /var/lib/pg", true, "/srv/pg/data\n")
            .answer("findmnt -n -o TARGET -T /srv/pg/data", true, "/srv/pg\n");
        assert_eq!(
            rt.block_on(mount_point_of(&host, "/var/lib/pg")).unwrap(),
            Some("/srv/pg".into())
        );
        assert!(rt.block_on(mount_point_of(&host, "/nowhere")).is_err());
    }
}
