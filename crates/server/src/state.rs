//! What every handler shares.

use crate::config::Config;
use crate::ratelimit::LoginLimiter;
use limen_core::Limen;
use limen_policy::Policy;
use std::sync::{Arc, RwLock};

#[derive(Clone)]
pub struct AppState {
    pub limen: Limen,
    pub policy: Arc<RwLock<Arc<Policy>>>,
    pub config: Arc<Config>,
    pub login_limiter: Option<Arc<LoginLimiter>>,
}

impl AppState {
    pub fn policy(&self) -> Arc<Policy> {
        match self.policy.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}
