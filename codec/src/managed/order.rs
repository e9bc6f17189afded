//! The order and number of managedFields entries, as upstream's field manager keeps
//! them: Apply entries before Update entries, each by time (whole seconds), manager,
//! apiVersion and subresource; and at most ten Update entries, the oldest merged per
//! apiVersion into an `ancient-changes` entry.

use super::Entry;
use std::cmp::Ordering;

/// Upstream's cap on Update entries (`DefaultMaxUpdateManagers`).
const MAX_UPDATE_MANAGERS: usize = 10;

/// The manager the oldest Update entries are merged into.
const ANCIENT: &str = "ancient-changes";

fn seconds(e: &Entry) -> i64 {
    e.time.as_deref().and_then(crate::time::parse_rfc3339).map_or(0, |(s, _)| s)
}

fn order(a: &Entry, b: &Entry) -> Ordering {
    a.operation
        .cmp(&b.operation)
        .then(seconds(a).cmp(&seconds(b)))
        .then_with(|| a.manager.cmp(&b.manager))
        .then_with(|| a.api_version.cmp(&b.api_version))
        .then_with(|| a.subresource.cmp(&b.subresource))
}

/// Whether `e` is the `ancient-changes` entry of `version`.
fn is_bucket(e: &Entry, version: &str) -> bool {
    e.manager == ANCIENT
        && e.operation == "Update"
        && e.api_version == version
        && e.subresource.is_none()
}

/// Sort entries as upstream encodes them.
pub(super) fn sort(entries: &mut [Entry]) {
    entries.sort_by(order);
}

/// Merge the oldest Update entries until at most ten remain: the second and later
/// entries of one apiVersion (oldest first) join a bucket that starts as the first.
pub(super) fn cap_updates(entries: &mut Vec<Entry>) {
    let mut updates: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].operation != "Apply" && !entries[i].set.is_empty())
        .collect();
    if updates.len() <= MAX_UPDATE_MANAGERS {
        return;
    }
    updates.sort_by(|&a, &b| {
        seconds(&entries[a])
            .cmp(&seconds(&entries[b]))
            .then_with(|| order(&entries[a], &entries[b]))
    });
    let mut remaining = updates.len();
    let mut first_of_version: Vec<(String, usize)> = Vec::new();
    let mut merged = Vec::new();
    for &i in &updates {
        if remaining <= MAX_UPDATE_MANAGERS {
            break;
        }
        let version = entries[i].api_version.clone();
        match first_of_version.iter().find(|(v, _)| *v == version) {
            Some(&(_, first)) => {
                let bucket = entries.iter().position(|e| is_bucket(e, &version)).unwrap_or(first);
                if bucket == i {
                    continue;
                }
                let (set, time) = (entries[i].set.clone(), entries[i].time.clone());
                let b = &mut entries[bucket];
                b.manager = ANCIENT.into();
                b.subresource = None;
                b.set.union(&set);
                b.time = time;
                merged.push(i);
                remaining -= 1;
            }
            None => first_of_version.push((version, i)),
        }
    }
    merged.sort_unstable();
    for i in merged.into_iter().rev() {
        entries.remove(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fieldset::FieldSet;

    fn entry(manager: &str, op: &str, time: &str, field: &str) -> Entry {
        let mut set = FieldSet::default();
        set.insert(&[format!("f:{field}")]);
        Entry {
            manager: manager.into(),
            operation: op.into(),
            api_version: "v1".into(),
            time: Some(time.into()),
            subresource: None,
            set,
        }
    }

    #[test]
    fn apply_entries_come_first_then_by_time_and_manager() {
        let mut list = vec![
            entry("b", "Update", "2024-01-01T00:00:02Z", "x"),
            entry("z", "Apply", "2024-01-01T00:00:09Z", "y"),
            entry("a", "Update", "2024-01-01T00:00:02Z", "z"),
            entry("c", "Update", "2024-01-01T00:00:01Z", "w"),
        ];
        sort(&mut list);
        let names: Vec<&str> = list.iter().map(|e| e.manager.as_str()).collect();
        assert_eq!(names, ["z", "c", "a", "b"]);
    }

    #[test]
    fn more_than_ten_updaters_merge_the_oldest_into_ancient_changes() {
        let mut list: Vec<Entry> = (0..12)
            .map(|i| {
                entry(
                    &format!("m{i:02}"),
                    "Update",
                    &format!("2024-01-01T00:00:{i:02}Z"),
                    &format!("f{i}"),
                )
            })
            .collect();
        list.push(entry("applier", "Apply", "2024-01-01T00:00:00Z", "a"));
        cap_updates(&mut list);
        let updates: Vec<&Entry> = list.iter().filter(|e| e.operation == "Update").collect();
        assert_eq!(updates.len(), 10);
        let ancient = list.iter().find(|e| e.manager == ANCIENT).unwrap();
        assert_eq!(ancient.set.paths().len(), 3, "m00, m01 and m02 are merged");
        assert_eq!(ancient.time.as_deref(), Some("2024-01-01T00:00:02Z"));
        assert!(list.iter().any(|e| e.manager == "m03"));
        assert!(list.iter().any(|e| e.manager == "applier"));

        // The next capping merges into the existing bucket.
        list.push(entry("m12", "Update", "2024-01-01T00:00:30Z", "f12"));
        cap_updates(&mut list);
        let buckets: Vec<&Entry> = list.iter().filter(|e| e.manager == ANCIENT).collect();
        assert_eq!(buckets.len(), 1);
        assert_eq!(buckets[0].set.paths().len(), 4, "m03 joined the bucket");
        assert_eq!(list.iter().filter(|e| e.operation == "Update").count(), 10);
    }
}
