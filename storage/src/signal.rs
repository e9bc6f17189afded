//! A wake-all signal across threads: whoever changes a condition calls [`Signal::notify`],
//! and tasks on any executor waiting with [`Signal::wait_until`] re-check their condition
//! then, instead of polling it with sleeps.
//!
//! Invariant (no lost wake-ups): a waiter registers its waker and then re-reads the
//! generation; a notifier bumps the generation and then looks for waiters. Both steps are
//! sequentially consistent, so either the notifier sees the waiter or the waiter sees the
//! new generation. A notify with nobody waiting costs one atomic add and one load.

use parking_lot::Mutex;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Poll, Waker};

#[derive(Debug, Default)]
pub struct Signal {
    generation: AtomicU64,
    waiting: AtomicUsize,
    wakers: Mutex<Vec<Waker>>,
}

impl Signal {
    /// Wake every waiting task (they re-check their conditions).
    pub fn notify(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) == 0 {
            return;
        }
        let wakers = {
            let mut w = self.wakers.lock();
            self.waiting.store(0, Ordering::SeqCst);
            std::mem::take(&mut *w)
        };
        for w in wakers {
            w.wake();
        }
    }

    /// Resolves once `ready()` holds, re-checking it after every notify. The caller bounds
    /// the wait (a timeout around it) where the condition may never hold.
    pub fn wait_until<'a>(
        &'a self,
        mut ready: impl FnMut() -> bool + 'a,
    ) -> impl Future<Output = ()> + 'a {
        std::future::poll_fn(move |cx| {
            let seen = self.generation.load(Ordering::SeqCst);
            if ready() {
                return Poll::Ready(());
            }
            {
                let mut w = self.wakers.lock();
                if !w.iter().any(|x| x.will_wake(cx.waker())) {
                    w.push(cx.waker().clone());
                    self.waiting.fetch_add(1, Ordering::SeqCst);
                }
            }
            if self.generation.load(Ordering::SeqCst) != seen && ready() {
                return Poll::Ready(());
            }
            Poll::Pending
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn a_waiter_on_another_thread_wakes_when_the_condition_is_published() {
        for _ in 0..200 {
            let signal = Arc::new(Signal::default());
            let flag = Arc::new(AtomicBool::new(false));
            let (s, f) = (signal.clone(), flag.clone());
            let setter = std::thread::spawn(move || {
                f.store(true, Ordering::Release);
                s.notify();
            });
            futures_executor::block_on(signal.wait_until(|| flag.load(Ordering::Acquire)));
            setter.join().unwrap();
        }
    }

    #[test]
    fn notify_without_waiters_keeps_no_wakers() {
        let s = Signal::default();
        s.notify();
        assert!(s.wakers.lock().is_empty());
        assert_eq!(s.generation.load(Ordering::SeqCst), 1);
    }
}
