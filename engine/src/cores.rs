//! Work run on every serving core, for views of per-core state that lives in
//! thread-locals (flow control's queues: `Rc`s no other thread may touch).
//!
//! Each worker registers a mailbox when it starts ([`Cores::register`]) and serves it
//! with a task of its runtime ([`serve`]); [`Cores::gather`] posts a job to every
//! mailbox and collects the answers in core order. Jobs are for rare requests (debug
//! dumps), never the request path: a job runs between the core's other tasks.
//!
//! Invariants: a core's job runs on that core's thread; a core that has stopped (its
//! mailbox gone) is left out of a gather, which never waits on it.

use parking_lot::Mutex;

/// A job for one core.
pub type Job = Box<dyn FnOnce() + Send>;

/// The serving cores' mailboxes, by core index.
#[derive(Default)]
pub struct Cores {
    mailboxes: Mutex<Vec<Option<flume::Sender<Job>>>>,
}

impl std::fmt::Debug for Cores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cores").field("count", &self.mailboxes.lock().len()).finish()
    }
}

impl Cores {
    /// Core `core`'s mailbox, to be served on its thread with [`serve`].
    pub fn register(&self, core: usize) -> flume::Receiver<Job> {
        let (tx, rx) = flume::unbounded();
        let mut boxes = self.mailboxes.lock();
        if boxes.len() <= core {
            boxes.resize(core + 1, None);
        }
        boxes[core] = Some(tx);
        rx
    }

    /// `f`'s answer on every core that serves its mailbox, in core order.
    pub async fn gather<T, F>(&self, f: F) -> Vec<T>
    where
        T: Send + 'static,
        F: Fn() -> T + Send + Sync + 'static,
    {
        let f = std::sync::Arc::new(f);
        let senders: Vec<_> = self.mailboxes.lock().iter().flatten().cloned().collect();
        let mut answers = Vec::with_capacity(senders.len());
        for tx in senders {
            let (answer_tx, answer_rx) = flume::bounded(1);
            let f = f.clone();
            let job: Job = Box::new(move || {
                let _ = answer_tx.send(f());
            });
            if tx.send(job).is_ok() {
                answers.push(answer_rx);
            }
        }
        let mut out = Vec::with_capacity(answers.len());
        for rx in answers {
            // A core that stopped dropped the job, and with it the answer's sender.
            if let Ok(v) = rx.recv_async().await {
                out.push(v);
            }
        }
        out
    }
}

/// Run the jobs posted to this core until the mailbox is gone.
pub async fn serve(jobs: flume::Receiver<Job>) {
    while let Ok(job) = jobs.recv_async().await {
        job();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        static WHO: Cell<usize> = const { Cell::new(usize::MAX) };
    }

    #[test]
    fn every_core_answers_from_its_own_thread_in_core_order() {
        let cores = std::sync::Arc::new(Cores::default());
        let threads: Vec<_> = (0..3)
            .map(|i| {
                let jobs = cores.register(i);
                std::thread::spawn(move || {
                    WHO.with(|w| w.set(i));
                    futures_executor::block_on(serve(jobs));
                })
            })
            .collect();
        let answers = futures_executor::block_on(cores.gather(|| WHO.with(Cell::get)));
        assert_eq!(answers, [0, 1, 2]);
        drop(cores);
        for t in threads {
            t.join().unwrap();
        }
    }

    #[test]
    fn a_stopped_core_is_left_out() {
        let cores = Cores::default();
        let _gone = cores.register(0);
        drop(_gone);
        let jobs = cores.register(1);
        let t = std::thread::spawn(move || futures_executor::block_on(serve(jobs)));
        let answers = futures_executor::block_on(cores.gather(|| 7));
        assert_eq!(answers, [7]);
        drop(cores);
        t.join().unwrap();
    }
}
