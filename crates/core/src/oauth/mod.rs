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
