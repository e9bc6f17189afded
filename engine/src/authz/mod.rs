//! Authorization: the RBAC bootstrap policy and its reconciliation at start.

pub mod bootstrap;
