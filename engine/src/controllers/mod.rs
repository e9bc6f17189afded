//! Work the apiserver does by itself: bootstrap objects at start (default namespaces, the
//! `kubernetes` Service and its endpoints, system PriorityClasses, allocator state) and
//! the namespace controller that empties and removes terminating namespaces (kapi runs
//! standalone, so `kubectl delete namespace` must complete without a controller manager),
//! and, on a shared store, the lease endpoint reconciler that lists every replica; the
//! CustomResourceDefinition controller (`crd`) that keeps the served registry in step
//! with the stored CRDs; the resource quota controller (`quota`) that keeps every
//! ResourceQuota's `status` recalculated from the caches; each namespace's `default` ServiceAccount
//! (`service_accounts`); and the ValidatingAdmissionPolicy status controller
//! (`policy_status`) that writes each policy's type-checking warnings.

pub mod bootstrap;
pub mod compaction;
pub mod crd;
pub mod endpoints;
pub mod namespace;
pub mod policy_status;
pub mod quota;
pub mod service_accounts;
