//! A fetch, pull or push in flight: it runs on the blocking pool and hands
//! its caller the progress as it comes, then the result. Progress is a
//! snapshot, so a full channel drops an update rather than make the
//! network wait for a slow reader; cancelling stops the transfer at its
//! next progress callback, and dropping the transfer (its reader went
//! away, e.g. the client of a streaming RPC hung up) cancels it.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use tokio::{sync::mpsc, task::JoinHandle};

use crate::{
    error::{Error, Result},
    git::remote::{Progress, Reporter},
};

/// Progress updates buffered between the transfer and its reader.
const PROGRESS_BUFFER: usize = 64;

/// What a transfer reports next.
#[derive(Debug)]
pub enum TransferEvent<R> {
    /// How far it got.
    Progress(Progress),
    /// It ended; nothing follows.
    Done(Result<R>),
}

/// A running transfer; read it with [`Transfer::next`].
#[derive(Debug)]
pub struct Transfer<R> {
    progress: mpsc::Receiver<Progress>,
    job: Option<JoinHandle<Result<R>>>,
    finished: Option<Result<R>>,
    cancelled: Arc<AtomicBool>,
}

impl<R: Send + 'static> Transfer<R> {
    /// Run `work` on the blocking pool with a reporter feeding this
    /// transfer.
    pub(crate) fn spawn<W>(work: W) -> Self
    where
        W: FnOnce(&Reporter<'_>) -> Result<R> + Send + 'static,
    {
        let cancelled = Arc::new(AtomicBool::new(false));
        let (sender, progress) = mpsc::channel(PROGRESS_BUFFER);
        let flag = cancelled.clone();
        let job = tokio::task::spawn_blocking(move || {
            let report = move |p: Progress| {
                let _ = sender.try_send(p);
            };
            let reporter = Reporter {
                progress: &report,
                cancelled: flag,
            };
            work(&reporter)
        });
        Self {
            progress,
            job: Some(job),
            finished: None,
            cancelled,
        }
    }
}

impl<R> Transfer<R> {
    /// Ask the transfer to stop (its reader went away); it ends with an
    /// `Aborted` error at its next progress callback.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// The next progress update, or the result once the work is done (after
    /// the progress it reported last); `None` after the result.
    pub async fn next(&mut self) -> Option<TransferEvent<R>> {
        loop {
            if self.finished.is_some() {
                if let Ok(p) = self.progress.try_recv() {
                    return Some(TransferEvent::Progress(p));
                }
                return self.finished.take().map(TransferEvent::Done);
            }
            let job = self.job.as_mut()?;
            tokio::select! {
                outcome = job => {
                    self.job = None;
                    self.finished = Some(outcome.map_err(Error::from).and_then(|result| result));
                }
                Some(p) = self.progress.recv() => return Some(TransferEvent::Progress(p)),
            }
        }
    }
}

impl<R> Drop for Transfer<R> {
    fn drop(&mut self) {
        // Nobody can read the outcome any more: stop the network work
        // rather than let it run on for a client that left. (Harmless when
        // the work already ended.)
        self.cancel();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::oneshot;

    use super::*;

    #[tokio::test]
    async fn dropping_a_transfer_cancels_its_work() {
        let (report, outcome) = oneshot::channel();
        let transfer = Transfer::spawn(move |reporter| {
            // Stands in for libgit2 polling the flag in its callbacks; gives
            // up after about a minute (bounding a hang, not a speed) so the
            // test fails instead of blocking the runtime's shutdown.
            let mut saw_cancel = false;
            for _ in 0..12_000 {
                if reporter.cancelled.load(Ordering::Relaxed) {
                    saw_cancel = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = report.send(saw_cancel);
            Ok(())
        });
        drop(transfer);
        assert!(outcome.await.expect("the work reported"), "not cancelled");
    }
}
