//! etcd's errors as `StorageError`s: compaction and future revisions keep their meaning
//! (410 and 504 upstream), the NOSPACE alarm ("mvcc: database space exceeded") is
//! `NoSpace`, everything about reaching etcd is `Unavailable` (503).

use crate::error::StorageError;
use crate::store::Revision;

/// Whether the request never reached etcd (no connection to the member), so sending it
/// again, to another member, cannot apply it twice.
pub fn never_sent(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        etcd_client::Error::GRpcStatus(s) => {
            let m = s.message();
            // "no leader": refused before it was proposed, so never applied.
            m.contains("etcdserver: no leader")
                || (s.code() == tonic::Code::Unavailable
                    && (m.contains("connect") || m.contains("Connection refused")))
        }
        _ => false,
    }
}

/// Map an etcd-client error. `requested` is the revision the call asked for, if any.
pub fn from_etcd(e: etcd_client::Error, requested: Option<Revision>) -> StorageError {
    match e {
        etcd_client::Error::GRpcStatus(status) => from_status(&status, requested),
        etcd_client::Error::InvalidArgs(m) => StorageError::Io(format!("etcd: {m}")),
        other => StorageError::Unavailable(format!("etcd: {other}")),
    }
}

fn from_status(status: &tonic::Status, requested: Option<Revision>) -> StorageError {
    let message = status.message();
    if message.contains("required revision has been compacted") {
        return StorageError::Compacted { requested: requested.unwrap_or(0), compacted: 0 };
    }
    if message.contains("required revision is a future revision") {
        return StorageError::FutureRevision { requested: requested.unwrap_or(0), current: 0 };
    }
    // The NOSPACE alarm: writes fail until space is freed and the alarm disarmed.
    if message.contains("database space exceeded") {
        return StorageError::NoSpace(message.to_string());
    }
    match status.code() {
        tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition => {
            StorageError::Io(format!("etcd: {message}"))
        }
        _ => StorageError::Unavailable(format!("etcd: {message}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compaction_and_future_revisions_keep_their_meaning() {
        let compacted =
            tonic::Status::out_of_range("etcdserver: mvcc: required revision has been compacted");
        assert!(matches!(
            from_status(&compacted, Some(5)),
            StorageError::Compacted { requested: 5, .. }
        ));
        let future =
            tonic::Status::out_of_range("etcdserver: mvcc: required revision is a future revision");
        assert!(matches!(from_status(&future, Some(9)), StorageError::FutureRevision { .. }));
        let down = tonic::Status::unavailable("etcdserver: leader changed");
        assert!(matches!(from_status(&down, None), StorageError::Unavailable(_)));
    }

    #[test]
    fn nospace_alarm_is_no_space_with_etcds_message() {
        let full = tonic::Status::resource_exhausted("etcdserver: mvcc: database space exceeded");
        assert_eq!(
            from_status(&full, None),
            StorageError::NoSpace("etcdserver: mvcc: database space exceeded".into())
        );
    }
}
