//! Everything the fake holds, behind one lock: knobs, counters, OpenAI files and both
//! providers' batches. No lock is held across an await.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Value};
use tokio::sync::watch;

use super::anthropic_batch::AnthropicBatch;
use super::knobs::{FakeCounters, FakeKnobs, Provider};
use super::openai_batch::OpenAiBatch;
use crate::config::SimulatedConfig;

/// Batch files expire 30 days after they are made.
pub const FILE_LIFETIME_SECS: i64 = 30 * 86_400;

/// An OpenAI file (an upload, or a batch's output or error file).
#[derive(Debug)]
pub struct StoredFile {
    pub id: String,
    pub filename: String,
    pub purpose: String,
    pub bytes: Arc<[u8]>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    /// Reads still answered "not found" (the `hidden_file_reads` knob at upload).
    pub hidden_reads: u32,
}

impl StoredFile {
    pub fn new(filename: String, purpose: &str, bytes: Vec<u8>, lifetime_secs: Option<i64>) -> Self {
        let created_at = crate::ids::now_secs();
        Self {
            id: super::wire::new_id("file-").chars().take(29).collect(),
            filename,
            purpose: purpose.to_owned(),
            bytes: bytes.into(),
            created_at,
            expires_at: lifetime_secs.map(|s| created_at + s),
            hidden_reads: 0,
        }
    }

    pub fn json(&self) -> Value {
        json!({
            "id": self.id, "object": "file", "bytes": self.bytes.len(), "created_at": self.created_at,
            "filename": self.filename, "purpose": self.purpose, "status": "processed",
            "expires_at": self.expires_at, "status_details": null,
        })
    }
}

/// The files by id, and their ids in upload order.
#[derive(Debug, Default)]
pub struct Files(HashMap<String, StoredFile>, Vec<String>);

impl Files {
    pub fn add(&mut self, file: StoredFile) -> String {
        let id = file.id.clone();
        self.0.insert(id.clone(), file);
        self.1.push(id.clone());
        id
    }

    /// The visible files, newest first (listing uses up no hidden read).
    pub fn newest_first(&self) -> impl Iterator<Item = &StoredFile> {
        self.1.iter().rev().filter_map(|id| self.0.get(id)).filter(|f| f.hidden_reads == 0)
    }

    /// The file, unless it is unknown or still hidden (which uses up one hidden read).
    pub fn read(&mut self, id: &str) -> Option<&StoredFile> {
        let file = self.0.get_mut(id)?;
        if file.hidden_reads > 0 {
            file.hidden_reads -= 1;
            return None;
        }
        Some(file)
    }

    pub fn remove(&mut self, id: &str) -> Option<StoredFile> {
        self.1.retain(|f| f != id);
        self.0.remove(id)
    }
}

pub struct Inner {
    /// The fake's own URL, for Anthropic's absolute `results_url`.
    pub base_url: String,
    pub knobs: FakeKnobs,
    pub counters: FakeCounters,
    pub files: Files,
    /// In creation order (lists show them newest first).
    pub openai: Vec<OpenAiBatch>,
    pub anthropic: Vec<AnthropicBatch>,
}

impl Inner {
    /// Uses up one of the next-K count `pick` selects, if the fault knobs hit `provider`.
    fn take(&mut self, provider: Provider, pick: fn(&mut FakeKnobs) -> &mut u32) -> bool {
        if !self.knobs.faults_hit(provider) || *pick(&mut self.knobs) == 0 {
            return false;
        }
        *pick(&mut self.knobs) -= 1;
        self.counters.rate_limited += 1;
        true
    }

    /// This create answers 429 (`rate_limit_creates`).
    pub fn rate_limit_create(&mut self, provider: Provider) -> bool {
        self.take(provider, |k| &mut k.rate_limit_creates)
    }

    /// This poll answers 429 (`rate_limit_polls`).
    pub fn rate_limit_poll(&mut self, provider: Provider) -> bool {
        self.take(provider, |k| &mut k.rate_limit_polls)
    }

    /// Counts a batch made and says whether its reply is to be dropped.
    pub fn count_create(&mut self, provider: Provider) -> bool {
        let c = &mut self.counters;
        match provider {
            Provider::OpenAi => c.openai_batch_creates += 1,
            Provider::Anthropic => c.anthropic_batch_creates += 1,
        }
        if !self.knobs.faults_hit(provider) {
            return false;
        }
        let nth = match self.knobs.faults_for {
            Some(Provider::OpenAi) => c.openai_batch_creates,
            Some(Provider::Anthropic) => c.anthropic_batch_creates,
            None => c.openai_batch_creates + c.anthropic_batch_creates,
        };
        let drop = if self.knobs.drop_create_at == Some(nth) {
            true
        } else if self.knobs.drop_create_replies > 0 {
            self.knobs.drop_create_replies -= 1;
            true
        } else {
            false
        };
        if drop {
            self.counters.dropped_replies += 1;
        }
        drop
    }

    /// Creates wait for their reply (`hold_creates`).
    pub fn holds(&self, provider: Provider) -> bool {
        self.knobs.hold_creates && self.knobs.faults_hit(provider)
    }

    /// Moves every batch by the steps wall time owes it.
    pub fn catch_up(&mut self) {
        let knobs = &self.knobs;
        for b in &mut self.openai {
            b.advance(knobs, &mut self.files);
        }
        for b in &mut self.anthropic {
            b.advance(knobs, &self.base_url);
        }
    }

    /// Expires every unfinished batch now, keeping what it answered.
    pub fn expire_all(&mut self) {
        self.catch_up();
        for b in &mut self.openai {
            b.expire(&self.knobs, &mut self.files);
        }
        for b in &mut self.anthropic {
            b.expire(&self.knobs, &self.base_url);
        }
    }
}

/// The router's state.
pub struct Shared {
    pub cfg: SimulatedConfig,
    inner: Mutex<Inner>,
    /// Mirrors `knobs.hold_creates`: held creates wait for it to turn false.
    pub hold: watch::Sender<bool>,
}

impl Shared {
    pub fn new(cfg: SimulatedConfig, base_url: String) -> Self {
        let inner = Inner {
            base_url,
            knobs: FakeKnobs::default(),
            counters: FakeCounters::default(),
            files: Files::default(),
            openai: Vec::new(),
            anthropic: Vec::new(),
        };
        Self { cfg, inner: Mutex::new(inner), hold: watch::Sender::new(false) }
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `change` on the knobs and lets held creates go once `hold_creates` is off.
    pub fn update_knobs(&self, change: impl FnOnce(&mut FakeKnobs)) {
        let hold = {
            let mut inner = self.lock();
            // Batches move by the old speed up to now, by the new one after.
            inner.catch_up();
            change(&mut inner.knobs);
            inner.knobs.hold_creates
        };
        self.hold.send_replace(hold);
    }

    /// Waits while creates are held (`hold_creates`), counted in `held_creates`.
    pub async fn wait_while_held(self: &Arc<Self>) {
        struct Held(Arc<Shared>);
        impl Drop for Held {
            // Also when the caller gave up and the reply's future was dropped.
            fn drop(&mut self) {
                self.0.lock().counters.held_creates -= 1;
            }
        }
        self.lock().counters.held_creates += 1;
        let _held = Held(self.clone());
        let mut rx = self.hold.subscribe();
        let _ = rx.wait_for(|held| !held).await;
    }
}
