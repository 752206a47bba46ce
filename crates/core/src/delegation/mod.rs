//! Delegation: acting for someone else, within limits they set: trusts, application
//! credentials (with access rules and their guess limit), EC2 and other credentials (with
//! AWS signatures) and OAuth 1.0a consumers and tokens.

pub mod access_rules;
pub mod appcred;
pub mod aws_signature;
pub mod credential;
pub mod ec2;
pub mod guess_limit;
pub mod oauth1;
pub mod trust;

use crate::service::Limen;

/// Delegation's services: trusts, application credentials and access rules, credentials and EC2, OAuth 1.0a (`limen.delegation()`).
#[derive(Clone, Copy)]
pub struct DelegationService<'a> {
    limen: &'a Limen,
}

impl Limen {
    pub fn delegation(&self) -> DelegationService<'_> {
        DelegationService { limen: self }
    }
}

/// The shared machinery (store, clock, other areas) stays reachable as `self.…`.
impl std::ops::Deref for DelegationService<'_> {
    type Target = Limen;

    fn deref(&self) -> &Limen {
        self.limen
    }
}
