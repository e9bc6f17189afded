//! ClusterIP allocation from an IPv4 CIDR. The network and broadcast addresses are never
//! handed out; the first host address is the `kubernetes` Service's.

use super::AllocError;
use parking_lot::Mutex;
use std::collections::HashSet;
use std::net::Ipv4Addr;

#[derive(Debug)]
pub struct ClusterIpAllocator {
    cidr: String,
    base: u32,
    size: u32,
    used: Mutex<HashSet<u32>>,
}

impl ClusterIpAllocator {
    /// Parse `a.b.c.d/n` (IPv4, n in 8..=30).
    pub fn new(cidr: &str) -> Result<Self, String> {
        let (ip, bits) = cidr.split_once('/').ok_or_else(|| format!("invalid CIDR {cidr}"))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| format!("invalid CIDR {cidr}"))?;
        let bits: u32 = bits.parse().map_err(|_| format!("invalid CIDR {cidr}"))?;
        if !(8..=30).contains(&bits) {
            return Err(format!("service CIDR {cidr}: prefix length must be between 8 and 30"));
        }
        let mask = u32::MAX << (32 - bits);
        let base = u32::from(ip) & mask;
        Ok(Self {
            cidr: cidr.to_string(),
            base,
            size: 1 << (32 - bits),
            used: Mutex::new(HashSet::new()),
        })
    }

    /// The first usable address (the `kubernetes` Service's ClusterIP).
    pub fn first(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base + 1)
    }

    fn offset(&self, ip: &str) -> Result<u32, AllocError> {
        let out = || AllocError::IpOutOfRange(ip.to_string(), self.cidr.clone());
        let addr: Ipv4Addr = ip.parse().map_err(|_| out())?;
        let v = u32::from(addr);
        if v <= self.base || v >= self.base + self.size - 1 {
            return Err(out());
        }
        Ok(v - self.base)
    }

    /// Reserve a specific address.
    pub fn allocate(&self, ip: &str) -> Result<(), AllocError> {
        let off = self.offset(ip)?;
        if !self.used.lock().insert(off) {
            return Err(AllocError::IpInUse);
        }
        Ok(())
    }

    /// Mark an address as used without failing when it already is (state rebuild).
    pub fn mark_used(&self, ip: &str) {
        if let Ok(off) = self.offset(ip) {
            self.used.lock().insert(off);
        }
    }

    /// Reserve any free address (random start, then linear probe), skipping the first.
    pub fn allocate_next(&self) -> Result<Ipv4Addr, AllocError> {
        let usable = self.size - 2;
        let start = rand::random::<u32>() % usable;
        let mut used = self.used.lock();
        for i in 0..usable {
            let off = 1 + (start + i) % usable;
            if off == 1 {
                continue;
            }
            if used.insert(off) {
                return Ok(Ipv4Addr::from(self.base + off));
            }
        }
        Err(AllocError::Full)
    }

    pub fn release(&self, ip: &str) {
        if let Ok(off) = self.offset(ip) {
            self.used.lock().remove(&off);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_unique_addresses_in_range() {
        let a = ClusterIpAllocator::new("10.96.0.0/28").unwrap();
        assert_eq!(a.first().to_string(), "10.96.0.1");
        a.allocate("10.96.0.1").unwrap();
        let mut seen = HashSet::new();
        for _ in 0..13 {
            let ip = a.allocate_next().unwrap();
            assert!(seen.insert(ip), "duplicate {ip}");
            assert_ne!(ip.to_string(), "10.96.0.1");
        }
        assert_eq!(a.allocate_next(), Err(AllocError::Full));
        assert_eq!(a.allocate("10.96.0.5"), Err(AllocError::IpInUse));
        assert!(matches!(a.allocate("10.97.0.5"), Err(AllocError::IpOutOfRange(..))));
        a.release("10.96.0.5");
        a.allocate("10.96.0.5").unwrap();
    }
}
