//! An oslo.policy-compatible rule engine with Keystone's default rules.
//!
//! Check strings use oslo.policy's language: `role:X`, `rule:NAME`, `and`/`or`/`not`,
//! parentheses, `@` (always), `!` (never), `""` (always), and generic checks
//! `attr:value` where `attr` is a dotted path into the credentials (or a quoted literal)
//! and `value` may interpolate the flattened target with `%(target.x)s`.

mod engine;
#[doc(hidden)]
pub mod fuzzing;
mod parse;

pub use engine::{Decision, Policy, PolicyError, TokenScopeKind};
pub use parse::{parse_rule, Rule};
