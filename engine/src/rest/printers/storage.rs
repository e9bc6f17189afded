//! Printers of storage: persistent volumes and claims (core group) and storage.k8s.io
//! (storage classes, CSI drivers, CSI nodes, CSI storage capacities, volume attachments,
//! volume attributes classes).

use super::cells::{
    age, annotation, at, deleting, len_at, list_at, name, opt_bool, opt_str, quantity, str_at,
};
use super::{AGE, Column, Desc, NAME, Printer, col, printer, wide};
use serde_json::{Value, json};

const BETA_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

/// `GetAccessModesAsString`: RWO, ROX, RWX, RWOP in that order.
fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| has(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

fn phase(o: &Value) -> String {
    if deleting(o) { "Terminating".into() } else { str_at(o, &["status", "phase"]).into() }
}

fn unset_or(v: Option<&str>) -> String {
    v.unwrap_or("<unset>").to_string()
}

pub static PERSISTENT_VOLUME: Printer = printer(
    &[
        NAME,
        col("Capacity", "string", Desc::Doc("core.v1.PersistentVolumeSpec", "capacity")),
        col("Access Modes", "string", Desc::Doc("core.v1.PersistentVolumeSpec", "accessModes")),
        col(
            "Reclaim Policy",
            "string",
            Desc::Doc("core.v1.PersistentVolumeSpec", "persistentVolumeReclaimPolicy"),
        ),
        col("Status", "string", Desc::Doc("core.v1.PersistentVolumeStatus", "phase")),
        col("Claim", "string", Desc::Doc("core.v1.PersistentVolumeSpec", "claimRef")),
        col("StorageClass", "string", Desc::Text("StorageClass of the pv")),
        col("VolumeAttributesClass", "string", Desc::Text("VolumeAttributesClass of the pv")),
        col("Reason", "string", Desc::Doc("core.v1.PersistentVolumeStatus", "reason")),
        AGE,
        wide("VolumeMode", "string", Desc::Doc("core.v1.PersistentVolumeSpec", "volumeMode")),
    ],
    persistent_volume,
);

fn persistent_volume(o: &Value) -> Vec<Value> {
    let claim = match at(o, &["spec", "claimRef"]).filter(|c| c.is_object()) {
        Some(c) => format!("{}/{}", str_at(c, &["namespace"]), str_at(c, &["name"])),
        None => String::new(),
    };
    let class = annotation(o, BETA_CLASS).unwrap_or(str_at(o, &["spec", "storageClassName"]));
    vec![
        json!(name(o)),
        json!(quantity(at(o, &["spec", "capacity", "storage"]))),
        json!(access_modes(list_at(o, &["spec", "accessModes"]))),
        json!(str_at(o, &["spec", "persistentVolumeReclaimPolicy"])),
        json!(phase(o)),
        json!(claim),
        json!(class),
        json!(unset_or(opt_str(o, &["spec", "volumeAttributesClassName"]))),
        json!(str_at(o, &["status", "reason"])),
        json!(age(o)),
        json!(unset_or(opt_str(o, &["spec", "volumeMode"]))),
    ]
}

pub static PERSISTENT_VOLUME_CLAIM: Printer = printer(
    &[
        NAME,
        col("Status", "string", Desc::Doc("core.v1.PersistentVolumeClaimStatus", "phase")),
        col("Volume", "string", Desc::Doc("core.v1.PersistentVolumeClaimSpec", "volumeName")),
        col("Capacity", "string", Desc::Doc("core.v1.PersistentVolumeClaimStatus", "capacity")),
        col(
            "Access Modes",
            "string",
            Desc::Doc("core.v1.PersistentVolumeClaimStatus", "accessModes"),
        ),
        col("StorageClass", "string", Desc::Text("StorageClass of the pvc")),
        col("VolumeAttributesClass", "string", Desc::Text("VolumeAttributesClass of the pvc")),
        AGE,
        wide("VolumeMode", "string", Desc::Doc("core.v1.PersistentVolumeClaimSpec", "volumeMode")),
    ],
    persistent_volume_claim,
);

fn persistent_volume_claim(o: &Value) -> Vec<Value> {
    let volume = str_at(o, &["spec", "volumeName"]);
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(at(o, &["status", "capacity", "storage"])),
            access_modes(list_at(o, &["status", "accessModes"])),
        )
    };
    let class = annotation(o, BETA_CLASS).or(opt_str(o, &["spec", "storageClassName"]));
    vec![
        json!(name(o)),
        json!(phase(o)),
        json!(volume),
        json!(capacity),
        json!(modes),
        json!(class.unwrap_or("")),
        json!(unset_or(opt_str(o, &["spec", "volumeAttributesClassName"]))),
        json!(age(o)),
        json!(unset_or(opt_str(o, &["spec", "volumeMode"]))),
    ]
}

/// The name, with " (default)" when the `annotation` marks the default class.
fn class_name(o: &Value, annotations: &[&str]) -> String {
    let default = annotations.iter().any(|a| annotation(o, a) == Some("true"));
    if default { format!("{} (default)", name(o)) } else { name(o).to_string() }
}

pub static STORAGE_CLASS: Printer = printer(
    &[
        NAME,
        col("Provisioner", "string", Desc::Doc("storage.v1.StorageClass", "provisioner")),
        col("ReclaimPolicy", "string", Desc::Doc("storage.v1.StorageClass", "reclaimPolicy")),
        col(
            "VolumeBindingMode",
            "string",
            Desc::Doc("storage.v1.StorageClass", "volumeBindingMode"),
        ),
        col(
            "AllowVolumeExpansion",
            "string",
            Desc::Doc("storage.v1.StorageClass", "allowVolumeExpansion"),
        ),
        AGE,
    ],
    storage_class,
);

fn storage_class(o: &Value) -> Vec<Value> {
    let defaults = [
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ];
    vec![
        json!(class_name(o, &defaults)),
        json!(str_at(o, &["provisioner"])),
        json!(opt_str(o, &["reclaimPolicy"]).unwrap_or("Delete")),
        json!(opt_str(o, &["volumeBindingMode"]).unwrap_or("Immediate")),
        json!(opt_bool(o, &["allowVolumeExpansion"]).unwrap_or(false)),
        json!(age(o)),
    ]
}

pub static VOLUME_ATTRIBUTES_CLASS: Printer = printer(
    &[
        NAME,
        col("DriverName", "string", Desc::Doc("storage.v1.VolumeAttributesClass", "driverName")),
        AGE,
    ],
    volume_attributes_class,
);

fn volume_attributes_class(o: &Value) -> Vec<Value> {
    let defaults = ["volumeattributesclass.alpha.kubernetes.io/is-default-class"];
    vec![json!(class_name(o, &defaults)), json!(str_at(o, &["driverName"])), json!(age(o))]
}

pub static CSI_NODE: Printer = printer(
    &[
        NAME,
        col(
            "Drivers",
            "integer",
            Desc::Text("Drivers indicates the number of CSI drivers registered on the node"),
        ),
        AGE,
    ],
    csi_node,
);

fn csi_node(o: &Value) -> Vec<Value> {
    vec![json!(name(o)), json!(len_at(o, &["spec", "drivers"])), json!(age(o))]
}

const fn csi_spec(name: &'static str, ty: &'static str, field: &'static str) -> Column {
    col(name, ty, Desc::Doc("storage.v1.CSIDriverSpec", field))
}

pub static CSI_DRIVER: Printer = printer(
    &[
        NAME,
        csi_spec("AttachRequired", "boolean", "attachRequired"),
        csi_spec("PodInfoOnMount", "boolean", "podInfoOnMount"),
        csi_spec("StorageCapacity", "boolean", "storageCapacity"),
        csi_spec("TokenRequests", "string", "tokenRequests"),
        csi_spec("RequiresRepublish", "boolean", "requiresRepublish"),
        csi_spec("Modes", "string", "volumeLifecycleModes"),
        AGE,
    ],
    csi_driver,
);

fn csi_driver(o: &Value) -> Vec<Value> {
    let flag = |f: &str, default: bool| json!(opt_bool(o, &["spec", f]).unwrap_or(default));
    let tokens = match at(o, &["spec", "tokenRequests"]).and_then(Value::as_array) {
        Some(t) => t.iter().map(|r| str_at(r, &["audience"])).collect::<Vec<_>>().join(","),
        None => "<unset>".into(),
    };
    let modes: Vec<&str> =
        list_at(o, &["spec", "volumeLifecycleModes"]).iter().filter_map(Value::as_str).collect();
    vec![
        json!(name(o)),
        flag("attachRequired", true),
        flag("podInfoOnMount", false),
        flag("storageCapacity", false),
        json!(tokens),
        flag("requiresRepublish", false),
        json!(if modes.is_empty() { "<none>".into() } else { modes.join(",") }),
        json!(age(o)),
    ]
}

pub static CSI_STORAGE_CAPACITY: Printer = printer(
    &[
        NAME,
        col(
            "StorageClassName",
            "string",
            Desc::Doc("storage.v1.CSIStorageCapacity", "storageClassName"),
        ),
        col("Capacity", "string", Desc::Doc("storage.v1.CSIStorageCapacity", "capacity")),
    ],
    csi_storage_capacity,
);

fn csi_storage_capacity(o: &Value) -> Vec<Value> {
    let capacity = match at(o, &["capacity"]) {
        None | Some(Value::Null) => "<unset>".into(),
        q => quantity(q),
    };
    vec![json!(name(o)), json!(str_at(o, &["storageClassName"])), json!(capacity)]
}

pub static VOLUME_ATTACHMENT: Printer = printer(
    &[
        NAME,
        Column {
            format: "name",
            ..col("Attacher", "string", Desc::Doc("storage.v1.VolumeAttachmentSpec", "attacher"))
        },
        col("PV", "string", Desc::Doc("storage.v1.VolumeAttachmentSource", "persistentVolumeName")),
        col("Node", "string", Desc::Doc("storage.v1.VolumeAttachmentSpec", "nodeName")),
        col("Attached", "boolean", Desc::Doc("storage.v1.VolumeAttachmentStatus", "attached")),
        AGE,
    ],
    volume_attachment,
);

fn volume_attachment(o: &Value) -> Vec<Value> {
    vec![
        json!(name(o)),
        json!(str_at(o, &["spec", "attacher"])),
        json!(str_at(o, &["spec", "source", "persistentVolumeName"])),
        json!(str_at(o, &["spec", "nodeName"])),
        json!(opt_bool(o, &["status", "attached"]).unwrap_or(false)),
        json!(age(o)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_and_claims() {
        let pv = json!({"metadata": {"name": "pv1"},
            "spec": {"capacity": {"storage": "10Gi"},
                     "accessModes": ["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "fast",
                     "claimRef": {"namespace": "ns", "name": "data"}},
            "status": {"phase": "Bound"}});
        let r = persistent_volume(&pv);
        assert_eq!(
            r[1..9],
            [
                json!("10Gi"),
                json!("RWO,RWX"),
                json!("Retain"),
                json!("Bound"),
                json!("ns/data"),
                json!("fast"),
                json!("<unset>"),
                json!("")
            ]
        );
        assert_eq!(r[10], "<unset>");
        let pending = json!({"spec": {"storageClassName": "fast", "volumeMode": "Filesystem"},
            "status": {"phase": "Pending"}});
        let r = persistent_volume_claim(&pending);
        assert_eq!(
            r[1..7],
            [json!("Pending"), json!(""), json!(""), json!(""), json!("fast"), json!("<unset>")]
        );
        assert_eq!(r[8], "Filesystem");
    }

    #[test]
    fn storage_classes_and_drivers() {
        let sc = json!({"metadata": {"name": "std",
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "csi.example"});
        assert_eq!(
            storage_class(&sc)[..5],
            [
                json!("std (default)"),
                json!("csi.example"),
                json!("Delete"),
                json!("Immediate"),
                json!(false)
            ]
        );
        let d = json!({"spec": {"tokenRequests": [{"audience": "a"}, {"audience": "b"}]}});
        assert_eq!(
            csi_driver(&d)[1..7],
            [json!(true), json!(false), json!(false), json!("a,b"), json!(false), json!("<none>")]
        );
        assert_eq!(csi_storage_capacity(&json!({}))[2], "<unset>");
    }
}
