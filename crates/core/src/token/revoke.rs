//! Revocation events (Keystone's model): a token is revoked when an event's set fields all
//! match it and it was issued at or before the event.

use crate::error::{CoreError, CoreResult};
use crate::model::RevocationEvent;
use crate::token::validation_cache::Dependency;
use crate::token::TokenService;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// What an event can match on a token.
#[derive(Debug, Clone)]
pub struct TokenFacts<'a> {
    pub user_id: &'a str,
    pub project_id: Option<&'a str>,
    /// The user's domain and the domain the token's scope lies in.
    pub domain_ids: Vec<&'a str>,
    pub role_ids: Vec<&'a str>,
    pub trust_id: Option<&'a str>,
    pub audit_id: Option<&'a str>,
    pub audit_chain_id: Option<&'a str>,
    pub expires_at: OffsetDateTime,
    pub issued_at: OffsetDateTime,
}

pub fn event_matches(e: &RevocationEvent, t: &TokenFacts<'_>) -> bool {
    if t.issued_at > e.issued_before {
        return false;
    }
    let eq = |want: &Option<String>, have: Option<&str>| match want {
        None => true,
        Some(w) => have == Some(w.as_str()),
    };
    eq(&e.user_id, Some(t.user_id))
        && eq(&e.project_id, t.project_id)
        && eq(&e.trust_id, t.trust_id)
        && eq(&e.audit_id, t.audit_id)
        && eq(&e.audit_chain_id, t.audit_chain_id)
        && e.domain_id
            .as_ref()
            .is_none_or(|d| t.domain_ids.contains(&d.as_str()))
        && e.role_id
            .as_ref()
            .is_none_or(|r| t.role_ids.contains(&r.as_str()))
        && e.expires_at.is_none_or(|x| x == t.expires_at)
        && e.consumer_id.is_none()
        && e.access_token_id.is_none()
}

impl TokenService<'_> {
    pub async fn is_revoked(&self, facts: &TokenFacts<'_>) -> CoreResult<bool> {
        // Events older than the token cannot match it.
        let since = facts.issued_at - Duration::seconds(1);
        let events = self.store.list_revocation_events(Some(since)).await?;
        Ok(events.iter().any(|e| event_matches(e, facts)))
    }

    /// Whether an event recorded so far matches a token stamped (or about to be) with the
    /// whole second `facts.issued_at`. The events since that second are read once per
    /// node and kept until the next revocation anywhere.
    pub(crate) async fn revoked_at_stamp(&self, facts: &TokenFacts<'_>) -> CoreResult<bool> {
        let since = facts.issued_at - Duration::seconds(1);
        let cache = &self.validations;
        let key = facts.issued_at.unix_timestamp().to_string();
        let events = cache
            .derive(&cache.recent_revocations, &key, async {
                let events = self.store.list_revocation_events(Some(since)).await?;
                Ok::<_, CoreError>((Arc::new(events), vec![Dependency::Revocations]))
            })
            .await?;
        Ok(events.iter().any(|e| event_matches(e, facts)))
    }

    /// Revokes one token (and only it) by its audit id.
    pub async fn revoke_audit_id(&self, audit_id: &str) -> CoreResult<()> {
        let mut ev = RevocationEvent::at(self.clock.now());
        ev.audit_id = Some(audit_id.to_string());
        self.store.add_revocation_event(&ev).await?;
        Ok(())
    }

    /// Revokes every token whose audit chain starts with `audit_chain_id`.
    pub async fn revoke_audit_chain(&self, audit_chain_id: &str) -> CoreResult<()> {
        let mut ev = RevocationEvent::at(self.clock.now());
        ev.audit_chain_id = Some(audit_chain_id.to_string());
        self.store.add_revocation_event(&ev).await?;
        Ok(())
    }

    /// Events for `/v3/OS-REVOKE/events`.
    pub async fn list_revocation_events(
        &self,
        since: Option<OffsetDateTime>,
    ) -> CoreResult<Vec<RevocationEvent>> {
        Ok(self.store.list_revocation_events(since).await?)
    }
}
