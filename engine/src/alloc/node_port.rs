//! NodePort allocation from a port range (`30000-32767`).

use super::AllocError;
use parking_lot::Mutex;
use std::collections::HashSet;

#[derive(Debug)]
pub struct NodePortAllocator {
    range: String,
    lo: u16,
    hi: u16,
    used: Mutex<HashSet<u16>>,
}

impl NodePortAllocator {
    pub fn new(range: &str) -> Result<Self, String> {
        let (lo, hi) =
            range.split_once('-').ok_or_else(|| format!("invalid port range {range}"))?;
        let lo: u16 = lo.trim().parse().map_err(|_| format!("invalid port range {range}"))?;
        let hi: u16 = hi.trim().parse().map_err(|_| format!("invalid port range {range}"))?;
        if lo == 0 || hi < lo {
            return Err(format!("invalid port range {range}"));
        }
        Ok(Self { range: range.to_string(), lo, hi, used: Mutex::new(HashSet::new()) })
    }

    pub fn allocate(&self, port: i64) -> Result<(), AllocError> {
        if port < self.lo as i64 || port > self.hi as i64 {
            return Err(AllocError::PortOutOfRange(self.range.clone()));
        }
        if !self.used.lock().insert(port as u16) {
            return Err(AllocError::PortInUse);
        }
        Ok(())
    }

    pub fn mark_used(&self, port: i64) {
        if (self.lo as i64..=self.hi as i64).contains(&port) {
            self.used.lock().insert(port as u16);
        }
    }

    pub fn allocate_next(&self) -> Result<u16, AllocError> {
        let n = (self.hi - self.lo) as u32 + 1;
        let start = rand::random::<u32>() % n;
        let mut used = self.used.lock();
        for i in 0..n {
            let p = self.lo + ((start + i) % n) as u16;
            if used.insert(p) {
                return Ok(p);
            }
        }
        Err(AllocError::Full)
    }

    pub fn release(&self, port: i64) {
        if let Ok(p) = u16::try_from(port) {
            self.used.lock().remove(&p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_unique_and_in_range() {
        let a = NodePortAllocator::new("30000-30004").unwrap();
        let mut got: Vec<u16> = (0..5).map(|_| a.allocate_next().unwrap()).collect();
        got.sort();
        assert_eq!(got, vec![30000, 30001, 30002, 30003, 30004]);
        assert_eq!(a.allocate_next(), Err(AllocError::Full));
        assert_eq!(a.allocate(30001), Err(AllocError::PortInUse));
        assert!(matches!(a.allocate(80), Err(AllocError::PortOutOfRange(_))));
    }
}
