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
