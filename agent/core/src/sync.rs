//! Taking std locks without caring about poisoning: the one place that
//! decides what a poisoned lock means for the agent.
//!
//! A std lock is poisoned when a thread panicked while holding it. The
//! agent keeps running after such a panic (it is caught by the task or
//! thread that hit it and written to a crash report), and every value the
//! agent guards with a std lock stays usable: each is plain data that is
//! consistent between statements (maps, rings, counters, caches), or state
//! whose next use checks it anyway (a SQLite connection rolls back its open
//! transaction when dropped, a `git2::Repository` re-reads from disk). So
//! refusing every later call, or panicking again, would turn one bug into an
//! agent that is down for good; these helpers take the guard regardless.
//! Locks held across `.await` are tokio's and never poison.

use std::sync::{
    Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError,
};

/// Lock `mutex`, ignoring poisoning (see the module comment).
pub fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Lock `mutex` if nobody holds it, ignoring poisoning (see the module
/// comment); `None` while another thread holds it.
pub fn try_lock<T: ?Sized>(mutex: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match mutex.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// Take `lock` for reading, ignoring poisoning (see the module comment).
pub fn read<T: ?Sized>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// Take `lock` for writing, ignoring poisoning (see the module comment).
pub fn write<T: ?Sized>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// The value inside `mutex`, ignoring poisoning (see the module comment).
pub fn into_inner<T>(mutex: Mutex<T>) -> T {
    mutex.into_inner().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn poisoned_locks_still_give_their_value() {
        let mutex = Arc::new(Mutex::new(1));
        let rw = Arc::new(RwLock::new(2));
        let (m, r) = (mutex.clone(), rw.clone());
        let panicked = std::thread::spawn(move || {
            let _m = m.lock();
            let _r = r.write();
            panic!("poison both locks");
        })
        .join();
        assert!(panicked.is_err());
        assert!(mutex.is_poisoned() && rw.is_poisoned());
        *lock(&mutex) += 1;
        assert_eq!(*lock(&mutex), 2);
        *write(&rw) += 1;
        assert_eq!(*read(&rw), 3);
        let mutex = Arc::try_unwrap(mutex).unwrap_or_else(|_| unreachable!("one owner left"));
        assert_eq!(into_inner(mutex), 2);
    }
}
