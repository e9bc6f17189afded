//! Leases for keys that expire (Events live `--event-ttl`, 1 h by default).
//!
//! As upstream's lease manager: one lease is shared by every key written within a reuse
//! window (5% of the TTL, at most a minute), granted for TTL + window so that no key
//! expires early. etcd deletes the keys when the lease runs out, and the delete events
//! reach watches like any other.

use parking_lot::Mutex;
use std::time::{Duration, Instant};

pub struct Leases {
    client: etcd_client::LeaseClient,
    current: Mutex<Vec<Granted>>,
}

#[derive(Clone, Copy)]
struct Granted {
    ttl: Duration,
    id: i64,
    at: Instant,
}

/// How long one lease is reused for keys of `ttl`.
pub fn reuse_window(ttl: Duration) -> Duration {
    (ttl / 20).min(Duration::from_secs(60))
}

impl Leases {
    pub fn new(client: etcd_client::LeaseClient) -> Leases {
        Leases { client, current: Mutex::new(Vec::new()) }
    }

    /// A lease id for a key that should live `ttl`.
    pub async fn lease(&self, ttl: Duration) -> Result<i64, etcd_client::Error> {
        if let Some(id) = self.reusable(ttl, Instant::now()) {
            return Ok(id);
        }
        let window = reuse_window(ttl);
        let seconds = (ttl + window).as_secs().max(1) as i64;
        let mut client = self.client.clone();
        let granted = client.grant(seconds, None).await?;
        let g = Granted { ttl, id: granted.id(), at: Instant::now() };
        let mut current = self.current.lock();
        current.retain(|c| c.ttl != ttl);
        current.push(g);
        Ok(g.id)
    }

    fn reusable(&self, ttl: Duration, now: Instant) -> Option<i64> {
        let window = reuse_window(ttl);
        self.current
            .lock()
            .iter()
            .find(|g| g.ttl == ttl && now.duration_since(g.at) < window)
            .map(|g| g.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reuse_window_is_five_percent_of_the_ttl_up_to_a_minute() {
        assert_eq!(reuse_window(Duration::from_secs(3600)), Duration::from_secs(60));
        assert_eq!(reuse_window(Duration::from_secs(100)), Duration::from_secs(5));
    }
}
