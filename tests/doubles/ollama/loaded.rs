//! Which models are "in memory": the set `/api/ps` lists. A model is loaded
//! by a generation or chat (or an empty-prompt load request), stays while a
//! request uses it, and expires `keep_alive` after its last request ends,
//! as Ollama's scheduler does. Expiry is applied lazily when the set is
//! read, which is all a fake needs.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard, PoisonError},
};

use crate::{catalog::CatalogModel, keep_alive::KeepAlive};

#[derive(Debug)]
struct Entry {
    model: &'static CatalogModel,
    /// Unix nanoseconds.
    expires_at: u128,
    /// Requests running on it; it never expires while this is non-zero.
    in_use: u32,
}

/// A loaded model as `/api/ps` reports it.
#[derive(Debug, Clone)]
pub struct Running {
    pub model: &'static CatalogModel,
    pub expires_at: u128,
}

/// The loaded models of one server.
#[derive(Debug, Default)]
pub struct Loaded {
    entries: Mutex<HashMap<String, Entry>>,
}

impl Loaded {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // Every change is a single insert or field update, so the map is
        // consistent even if a holder ever panicked.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A request starts using `model`; `true` if it had to be loaded.
    pub fn begin_use(
        &self,
        model: &'static CatalogModel,
        keep_alive: KeepAlive,
        now: u128,
    ) -> bool {
        let mut entries = self.lock();
        prune(&mut entries, now);
        let mut newly = false;
        let entry = entries.entry(model.key().to_string()).or_insert_with(|| {
            newly = true;
            Entry {
                model,
                expires_at: 0,
                in_use: 0,
            }
        });
        entry.in_use += 1;
        entry.expires_at = keep_alive.expires_at(now);
        newly
    }

    /// A request using the model ended; its keep-alive starts now.
    pub fn end_use(&self, model: &CatalogModel, keep_alive: KeepAlive, now: u128) {
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(model.key()) {
            entry.in_use = entry.in_use.saturating_sub(1);
            entry.expires_at = keep_alive.expires_at(now);
        }
        prune(&mut entries, now);
    }

    /// Loads (or refreshes) a model without running anything on it.
    pub fn load(&self, model: &'static CatalogModel, keep_alive: KeepAlive, now: u128) {
        self.begin_use(model, keep_alive, now);
        self.end_use(model, keep_alive, now);
    }

    /// Unloads a model now, or as soon as its running requests end.
    pub fn unload(&self, model: &CatalogModel, now: u128) {
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(model.key()) {
            entry.expires_at = now;
        }
        prune(&mut entries, now);
    }

    /// The loaded models, sorted by name.
    pub fn running(&self, now: u128) -> Vec<Running> {
        let mut entries = self.lock();
        prune(&mut entries, now);
        let mut list: Vec<Running> = entries
            .values()
            .map(|e| Running {
                model: e.model,
                expires_at: e.expires_at,
            })
            .collect();
        list.sort_by_key(|r| r.model.name());
        list
    }
}

fn prune(entries: &mut HashMap<String, Entry>, now: u128) {
    entries.retain(|_, e| e.in_use > 0 || e.expires_at > now);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::catalog;

    #[test]
    fn expires_after_keep_alive_but_not_while_in_use() -> Result<(), &'static str> {
        let model = catalog::find("test-small").ok_or("missing")?;
        let loaded = Loaded::default();
        let ka = KeepAlive::For(Duration::from_secs(10));
        assert!(loaded.begin_use(model, KeepAlive::For(Duration::ZERO), 100));
        assert_eq!(loaded.running(1_000_000_000_000).len(), 1, "in use");
        loaded.end_use(model, ka, 200);
        assert_eq!(loaded.running(200 + 9_000_000_000).len(), 1);
        assert!(loaded.running(200 + 10_000_000_000).is_empty());
        loaded.load(model, KeepAlive::Forever, 300);
        // A century later it is still there.
        assert_eq!(
            loaded
                .running(300 + 100 * 365 * 86_400 * 1_000_000_000)
                .len(),
            1
        );
        loaded.unload(model, 400);
        assert!(loaded.running(400).is_empty());
        Ok(())
    }
}
