//! Errors of the storage layer.

use crate::store::Revision;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StorageError {
    /// Create of a key that exists.
    #[error("key exists: {key}")]
    AlreadyExists { key: String },
    /// Update or delete of a key that does not exist.
    #[error("key not found: {key}")]
    NotFound { key: String },
    /// A precondition on the key's modification revision failed.
    #[error("revision conflict on {key}: expected {expected}, current {current}")]
    Conflict { key: String, expected: Revision, current: Revision },
    /// The requested revision was compacted away (the engine answers 410 Gone).
    #[error("required revision {requested} has been compacted (compacted revision {compacted})")]
    Compacted { requested: Revision, compacted: Revision },
    /// The requested revision is newer than the store's current revision.
    #[error("required revision {requested} is a future revision (current {current})")]
    FutureRevision { requested: Revision, current: Revision },
    /// A watcher could not keep up and was closed; the client must re-list.
    #[error("watcher fell behind and was closed")]
    WatcherTooSlow,
    /// The store is shutting down or has been closed.
    #[error("storage is closed")]
    Closed,
    /// The disk (embedded store) or etcd's quota is full: writes fail, reads go on, and
    /// writes resume once space is freed. The message says what ran out.
    #[error("{0}")]
    NoSpace(String),
    /// Disk or corruption trouble; the message says which.
    #[error("storage I/O error: {0}")]
    Io(String),
    /// The backend cannot be reached in time (etcd backend).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

impl From<std::io::Error> for StorageError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e.to_string())
    }
}
