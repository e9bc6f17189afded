//! API Priority and Fairness, the part that knows no Kubernetes objects: how many seats
//! each priority level may use, and who gets the next free seat.
//!
//! - [`config`]: a priority level's settings and upstream's concurrency limit arithmetic
//!   (nominal, lendable and borrowing limits from the server's seats).
//! - [`demand`]: a level's seat demand over an adjustment period and its statistics.
//! - [`borrowing`]: the periodic sharing of the server's seats between levels (current
//!   limits from nominal, lendable and borrowing limits and each level's demand).
//! - [`seats`]: a level's seat pool, taken and given back with atomics (no lock on the
//!   path of a request that does not wait).
//! - [`shuffle`]: shuffle sharding (a flow's hand of queues, dealt from its hash).
//! - [`queueset`]: one core's queues of one level, served by fair queuing on virtual
//!   finish time.
//! - [`note`]: the engine's description of a queued request (debug dumps).
//! - [`retry`]: the `Retry-After` of a level's 429s (upstream's dropped-requests tracker).
//! - [`timing`]: timing histograms (how long a level's sampled seat demand and seat
//!   utilization spent in each range).
//! - [`dispatch`]: the [`Dispatcher`] (the levels, reconfigured live) and
//!   [`Level::admit`], which a request awaits for its seats; the seats go back when the
//!   returned [`Seat`] is dropped.
//!
//! The engine classifies requests (FlowSchemas) and keeps the configuration current; it
//! hands this crate only level settings, flow hashes and request widths.

pub mod borrowing;
pub mod config;
pub mod demand;
pub mod dispatch;
pub mod note;
pub mod queueset;
pub mod retry;
pub mod seats;
pub mod shuffle;
pub mod timing;

pub use config::{LevelConfig, Limits, Queuing};
pub use dispatch::{Dispatcher, Level, Rejected, Seat};
pub use note::RequestNote;
