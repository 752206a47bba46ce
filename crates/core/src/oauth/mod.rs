//! The OpenID Provider: OAuth clients, the authorization code flow with its sign-in
//! sessions and consent, the device grant, grants and refresh tokens, token exchange for
//! clusters and the shared error vocabulary (`grant`).

pub mod authorize;
pub mod client;
pub mod device;
pub mod exchange;
pub mod grant;
pub mod session;
pub mod user_grant;

use crate::service::Limen;

/// The OpenID Provider's services: clients, sign-in sessions, authorization codes and consent, the device grant, grants and refresh tokens, token exchange (`limen.oauth()`).
#[derive(Clone, Copy)]
pub struct OAuthService<'a> {
    limen: &'a Limen,
}

impl Limen {
    pub fn oauth(&self) -> OAuthService<'_> {
        OAuthService { limen: self }
    }
}

/// The shared machinery (store, clock, other areas) stays reachable as `self.…`.
impl std::ops::Deref for OAuthService<'_> {
    type Target = Limen;

    fn deref(&self) -> &Limen {
        self.limen
    }
}
