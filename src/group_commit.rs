//! Lines written with group commit: every caller's bytes are written before its `wait` returns
//! (listen answers a request only after its line and its record are written, so nothing
//! answered is lost even to kill -KILL), and the lines of requests in flight together share
//! one write instead of a syscall each.
//!
//! One writer task per file: a caller appends to the open batch and, if it was the first in
//! it, wakes the writer. The writer yields once before taking the batch, so every request
//! already being handled gets to add its line, writes the batch with one call, and wakes all
//! of its callers at once.

use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::Notify;

/// Writes one batch of whole lines; `Err` with the reason when it could not (the sink rolls
/// back what it wrote of it, so the file keeps only whole lines).
pub type Sink = Box<dyn FnMut(&[u8]) -> Result<(), String> + Send>;

/// A file written with group commit. Cheap to share: clone the `Arc`.
pub struct GroupCommit {
    open: Mutex<Open>,
    /// Wakes the writer: a permit is kept when it is busy writing, so no batch is missed.
    kick: Notify,
}

struct Open {
    buf: Vec<u8>,
    batch: Arc<Batch>,
}

/// The outcome of one write, shared by every caller whose bytes were in it.
#[derive(Default)]
pub struct Batch {
    result: OnceLock<Result<(), String>>,
    done: Notify,
}

impl Batch {
    /// Waits until the batch is written; the reason when it was not.
    pub async fn wait(&self) -> Result<(), String> {
        // Registered before looking: a result set in between still wakes this.
        let notified = self.done.notified();
        if let Some(result) = self.result.get() {
            return result.clone();
        }
        notified.await;
        self.result
            .get()
            .cloned()
            .unwrap_or_else(|| Err("the writer stopped".into()))
    }
}

impl GroupCommit {
    /// Starts the writer on the current tokio runtime.
    pub fn start(sink: Sink) -> Arc<GroupCommit> {
        let commit = Arc::new(GroupCommit {
            open: Mutex::new(Open {
                buf: Vec::with_capacity(64 * 1024),
                batch: Arc::default(),
            }),
            kick: Notify::new(),
        });
        tokio::spawn(writer(commit.clone(), sink));
        commit
    }

    /// Adds `fill`'s bytes to the open batch; wait on the batch returned before going on.
    pub fn append(&self, fill: impl FnOnce(&mut Vec<u8>)) -> Arc<Batch> {
        let (batch, first) = {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            let first = open.buf.is_empty();
            fill(&mut open.buf);
            (open.batch.clone(), first)
        };
        if first {
            self.kick.notify_one();
        }
        batch
    }

    /// Appends and waits until written.
    pub async fn write(&self, fill: impl FnOnce(&mut Vec<u8>)) -> Result<(), String> {
        let batch = self.append(fill);
        batch.wait().await
    }

    /// The open batch with what it holds, leaving a fresh one (the buffer's room is kept).
    fn take(&self, spare: Vec<u8>) -> (Vec<u8>, Arc<Batch>) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let buf = std::mem::replace(&mut open.buf, spare);
        let batch = std::mem::take(&mut open.batch);
        (buf, batch)
    }
}

async fn writer(commit: Arc<GroupCommit>, mut sink: Sink) {
    let mut spare = Vec::with_capacity(64 * 1024);
    loop {
        commit.kick.notified().await;
        // Lets the requests already being handled add their lines to this batch.
        tokio::task::yield_now().await;
        let (mut buf, batch) = commit.take(spare);
        let result = if buf.is_empty() { Ok(()) } else { sink(&buf) };
        let _ = batch.result.set(result);
        batch.done.notify_waiters();
        buf.clear();
        spare = buf;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn lines_written_together_share_one_write_and_each_waits_for_it() {
        let writes = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
        let seen = writes.clone();
        let commit = GroupCommit::start(Box::new(move |bytes: &[u8]| {
            seen.lock().unwrap().push(bytes.to_vec());
            Ok(())
        }));
        let tasks: Vec<_> = (0..10)
            .map(|i| {
                let commit = commit.clone();
                tokio::spawn(async move {
                    commit
                        .write(|buf| buf.extend_from_slice(format!("{i}\n").as_bytes()))
                        .await
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), Ok(()));
        }
        let writes = writes.lock().unwrap();
        let all: Vec<u8> = writes.concat();
        assert_eq!(all.iter().filter(|b| **b == b'\n').count(), 10);
        assert_eq!(writes.len(), 1, "one write for the ten: {writes:?}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failed_write_fails_every_line_in_it() {
        let commit = GroupCommit::start(Box::new(|_: &[u8]| Err("disk full".into())));
        let a = commit.append(|b| b.push(b'a'));
        let b = commit.append(|b| b.push(b'b'));
        assert_eq!(a.wait().await, Err("disk full".to_string()));
        assert_eq!(b.wait().await, Err("disk full".to_string()));
    }
}
