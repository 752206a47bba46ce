//! Evaluating rules against credentials and a target, with scope enforcement.

use crate::parse::{parse_legacy, parse_rule, Rule};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use thiserror::Error;

const DEFAULTS: &str = include_str!("../defaults/keystone.yaml");
/// Rules for Limen's own APIs (OAuth clients …), loaded after Keystone's.
const LIMEN_DEFAULTS: &str = include_str!("../defaults/limen.yaml");

/// How many `rule:` references one decision follows at most: far more than any real
/// policy needs, and a bound on rules that refer to others more than once (`a: rule:b or
/// rule:b`, `b: rule:a or rule:a`), whose expansion doubles at every level. Found by
/// fuzzing: such a pair kept one decision busy for minutes. Beyond it, the reference fails.
const MAX_RULE_REFERENCES: u32 = 1000;

#[derive(Debug, Error)]
pub enum PolicyError {
    #[error("policy file {path}: {msg}")]
    File { path: String, msg: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenScopeKind {
    System,
    Domain,
    Project,
}

impl TokenScopeKind {
    fn name(self) -> &'static str {
        match self {
            TokenScopeKind::System => "system",
            TokenScopeKind::Domain => "domain",
            TokenScopeKind::Project => "project",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
    /// The rule does not accept tokens of this scope (oslo.policy's InvalidScope).
    ScopeMismatch,
}

#[derive(Debug, Deserialize)]
struct DefaultRule {
    check: String,
    #[serde(default)]
    scope: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OverrideValue {
    Check(String),
    Legacy(Vec<Vec<String>>),
}

#[derive(Debug, Clone)]
pub struct Policy {
    rules: HashMap<String, Rule>,
    scopes: HashMap<String, Vec<String>>,
}

impl Policy {
    /// Keystone 30's defaults, and Limen's for its own APIs.
    pub fn keystone_defaults() -> Policy {
        // The embedded files are checked by a test; a parse failure here cannot happen at
        // run time, but it degrades to an empty (deny-all) policy rather than a panic.
        let parsed = [DEFAULTS, LIMEN_DEFAULTS].into_iter().flat_map(|text| {
            serde_yaml::from_str::<HashMap<String, DefaultRule>>(text).unwrap_or_default()
        });
        let mut rules = HashMap::new();
        let mut scopes = HashMap::new();
        for (name, d) in parsed {
            rules.insert(name.clone(), parse_rule(&d.check));
            if !d.scope.is_empty() {
                scopes.insert(name, d.scope);
            }
        }
        Policy { rules, scopes }
    }

    /// Applies an operator's overrides (YAML or JSON: rule name → check string, or the
    /// legacy list-of-lists form). Scope types keep their defaults.
    pub fn apply_overrides(&mut self, text: &str, path: &str) -> Result<usize, PolicyError> {
        let parsed: HashMap<String, OverrideValue> =
            serde_yaml::from_str(text).map_err(|e| PolicyError::File {
                path: path.to_string(),
                msg: e.to_string(),
            })?;
        let n = parsed.len();
        for (name, v) in parsed {
            let rule = match v {
                OverrideValue::Check(s) => parse_rule(&s),
                OverrideValue::Legacy(l) => parse_legacy(&l),
            };
            self.rules.insert(name, rule);
        }
        Ok(n)
    }

    /// A policy of these rules alone, without scope types (the fuzz target's).
    pub(crate) fn of_rules(rules: HashMap<String, Rule>) -> Policy {
        Policy {
            rules,
            scopes: HashMap::new(),
        }
    }

    pub fn from_file(path: &std::path::Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError::File {
            path: path.display().to_string(),
            msg: e.to_string(),
        })?;
        let mut p = Policy::keystone_defaults();
        p.apply_overrides(&text, &path.display().to_string())?;
        Ok(p)
    }

    pub fn has_rule(&self, name: &str) -> bool {
        self.rules.contains_key(name)
    }

    pub fn rule_names(&self) -> impl Iterator<Item = &String> {
        self.rules.keys()
    }

    /// Decides `action` for `creds` on `target` (a nested JSON object, flattened to
    /// dotted keys as Keystone does). Unknown actions are denied.
    pub fn enforce(&self, action: &str, creds: &Value, target: &Value) -> Decision {
        if let Some(allowed) = self.scopes.get(action) {
            let scope = token_scope(creds);
            if !allowed.iter().any(|s| s == scope.name()) {
                return Decision::ScopeMismatch;
            }
        }
        let Some(rule) = self.rules.get(action) else {
            return Decision::Deny;
        };
        let mut flat = HashMap::new();
        flatten("", target, &mut flat);
        if self.eval(rule, creds, &flat, 0, &mut { MAX_RULE_REFERENCES }) {
            Decision::Allow
        } else {
            Decision::Deny
        }
    }

    /// Evaluates a rule by name without scope checks (for `rule:` helpers and tests).
    pub fn check(&self, name: &str, creds: &Value, target: &Value) -> bool {
        let mut flat = HashMap::new();
        flatten("", target, &mut flat);
        self.rules
            .get(name)
            .is_some_and(|r| self.eval(r, creds, &flat, 0, &mut { MAX_RULE_REFERENCES }))
    }

    fn eval(
        &self,
        rule: &Rule,
        creds: &Value,
        target: &HashMap<String, Value>,
        depth: u32,
        references: &mut u32,
    ) -> bool {
        if depth > 32 {
            return false;
        }
        match rule {
            Rule::Always => true,
            Rule::Never => false,
            Rule::Not(r) => !self.eval(r, creds, target, depth, references),
            Rule::And(rs) => rs
                .iter()
                .all(|r| self.eval(r, creds, target, depth, references)),
            Rule::Or(rs) => rs
                .iter()
                .any(|r| self.eval(r, creds, target, depth, references)),
            Rule::RuleRef(name) => {
                if *references == 0 {
                    return false;
                }
                *references -= 1;
                self.rules
                    .get(name)
                    .is_some_and(|r| self.eval(r, creds, target, depth + 1, references))
            }
            Rule::Role(m) => {
                let Some(want) = interpolate(m, target) else {
                    return false;
                };
                let want = want.to_lowercase();
                creds
                    .get("roles")
                    .and_then(Value::as_array)
                    .is_some_and(|roles| {
                        roles
                            .iter()
                            .filter_map(Value::as_str)
                            .any(|r| r.to_lowercase() == want)
                    })
            }
            Rule::Generic { kind, matcher } => {
                let Some(m) = interpolate(matcher, target) else {
                    return false;
                };
                if let Some(lit) = literal(kind) {
                    return m == lit;
                }
                let path: Vec<&str> = kind.split('.').collect();
                find_in(creds, &path, &m)
            }
        }
    }
}

/// The scope oslo.policy attributes to a token: system, domain, else project.
fn token_scope(creds: &Value) -> TokenScopeKind {
    if creds.get("system_scope").and_then(Value::as_str) == Some("all") {
        TokenScopeKind::System
    } else if creds.get("domain_id").is_some_and(|v| !v.is_null()) {
        TokenScopeKind::Domain
    } else {
        TokenScopeKind::Project
    }
}

/// Python's `str()` of a JSON value, which is what oslo.policy compares.
fn py_str(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// Python's `ast.literal_eval` for the literals a check's left side can hold.
fn literal(kind: &str) -> Option<String> {
    let k = kind.trim();
    if k.len() >= 2
        && ((k.starts_with('\'') && k.ends_with('\'')) || (k.starts_with('"') && k.ends_with('"')))
    {
        return Some(k[1..k.len() - 1].to_string());
    }
    match k {
        "None" => Some("None".into()),
        "True" => Some("True".into()),
        "False" => Some("False".into()),
        _ if k.parse::<i64>().is_ok() => k.parse::<i64>().ok().map(|n| n.to_string()),
        _ => None,
    }
}

/// `%(key)s` substitution against the flattened target; a missing key fails the check.
fn interpolate(template: &str, target: &HashMap<String, Value>) -> Option<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("%(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find(")s")?;
        let key = &after[..end];
        out.push_str(&py_str(target.get(key)?));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Some(out)
}

fn find_in(value: &Value, path: &[&str], want: &str) -> bool {
    match path.split_first() {
        None => match value {
            Value::Array(items) => items.iter().any(|v| py_str(v) == want),
            v => py_str(v) == want,
        },
        Some((key, rest)) => match value {
            Value::Object(map) => map.get(*key).is_some_and(|v| find_in(v, rest, want)),
            Value::Array(items) => items.iter().any(|v| find_in(v, path, want)),
            _ => false,
        },
    }
}

/// Flattens nested objects into dotted keys, keeping the nested ones too (oslo.policy
/// looks up both `target.user.domain_id` and plain keys like `user_id`).
fn flatten(prefix: &str, v: &Value, out: &mut HashMap<String, Value>) {
    if let Value::Object(map) = v {
        for (k, child) in map {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            flatten(&key, child, out);
            out.insert(key, child.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn admin_project() -> Value {
        json!({"user_id": "u1", "project_id": "p1", "roles": ["admin", "manager", "member", "reader"], "is_admin": false})
    }

    fn domain_manager(domain: &str) -> Value {
        json!({"user_id": "dm", "domain_id": domain, "roles": ["manager", "member", "reader"],
               "token": {"domain": {"id": domain}}})
    }

    #[test]
    fn defaults_load_completely() {
        let p = Policy::keystone_defaults();
        // Keystone's 204 and Limen's own: OAuth clients and clusters, 5 each.
        assert_eq!(p.rules.len(), 204 + 5 + 5);
        assert!(p.has_rule("identity:create_user"));
        assert!(p.has_rule("identity:create_oauth_client"));
        assert!(p.has_rule("identity:list_clusters"));
        assert_eq!(
            p.scopes.get("identity:create_domain").unwrap(),
            &vec!["system".to_string(), "project".to_string()]
        );
    }

    #[test]
    fn admin_and_scope_enforcement() {
        let p = Policy::keystone_defaults();
        assert_eq!(
            p.enforce("identity:create_domain", &admin_project(), &json!({})),
            Decision::Allow
        );
        let mut dm = domain_manager("d1");
        dm["roles"] = json!(["admin"]);
        assert_eq!(
            p.enforce("identity:create_domain", &dm, &json!({})),
            Decision::ScopeMismatch
        );
        let member = json!({"user_id": "u2", "project_id": "p1", "roles": ["member", "reader"]});
        assert_eq!(
            p.enforce("identity:create_domain", &member, &json!({})),
            Decision::Deny
        );
        assert_eq!(
            p.enforce("identity:no_such_rule", &admin_project(), &json!({})),
            Decision::Deny
        );
    }

    #[test]
    fn domain_manager_creates_users_only_in_own_domain() {
        let p = Policy::keystone_defaults();
        let dm = domain_manager("d1");
        let ok = json!({"target": {"user": {"domain_id": "d1"}}});
        let other = json!({"target": {"user": {"domain_id": "d2"}}});
        let missing = json!({"target": {"user": {}}});
        assert_eq!(p.enforce("identity:create_user", &dm, &ok), Decision::Allow);
        assert_eq!(
            p.enforce("identity:create_user", &dm, &other),
            Decision::Deny
        );
        assert_eq!(
            p.enforce("identity:create_user", &dm, &missing),
            Decision::Deny
        );
    }

    #[test]
    fn domain_manager_grants_only_allow_listed_roles() {
        let p = Policy::keystone_defaults();
        let dm = domain_manager("d1");
        let grant = |role: &str| json!({"target": {"user": {"domain_id": "d1"}, "project": {"domain_id": "d1"}, "role": {"name": role, "domain_id": null}}});
        assert_eq!(
            p.enforce("identity:create_grant", &dm, &grant("member")),
            Decision::Allow
        );
        assert_eq!(
            p.enforce("identity:create_grant", &dm, &grant("reader")),
            Decision::Allow
        );
        assert_eq!(
            p.enforce("identity:create_grant", &dm, &grant("admin")),
            Decision::Deny
        );
        let cross = json!({"target": {"user": {"domain_id": "d2"}, "project": {"domain_id": "d1"}, "role": {"name": "member"}}});
        assert_eq!(
            p.enforce("identity:create_grant", &dm, &cross),
            Decision::Deny
        );
    }

    #[test]
    fn none_literal_and_not() {
        let p = Policy::keystone_defaults();
        // list_roles: a manager needs a domain-scoped token ("not domain_id:None").
        let dm = domain_manager("d1");
        assert_eq!(
            p.enforce("identity:list_roles", &dm, &json!({})),
            Decision::Allow
        );
        let project_manager =
            json!({"user_id": "x", "project_id": "p", "domain_id": null, "roles": ["manager"]});
        assert_eq!(
            p.enforce("identity:list_roles", &project_manager, &json!({})),
            Decision::Deny
        );
    }

    #[test]
    fn overrides_replace_single_rules() {
        let mut p = Policy::keystone_defaults();
        p.apply_overrides("\"identity:list_regions\": \"role:admin\"\n\"identity:get_region\": [[\"role:reader\"]]\n", "test").unwrap();
        let member = json!({"user_id": "u2", "project_id": "p1", "roles": ["member"]});
        assert_eq!(
            p.enforce("identity:list_regions", &member, &json!({})),
            Decision::Deny
        );
        assert_eq!(
            p.enforce(
                "identity:get_region",
                &json!({"roles": ["reader"]}),
                &json!({})
            ),
            Decision::Allow
        );
        assert!(p.apply_overrides("- not a map", "bad").is_err());
    }

    #[test]
    fn generic_checks_follow_oslo() {
        let creds = json!({"user_id": "u1", "roles": ["Reader"], "is_admin": false, "token": {"domain": {"id": "d"}}, "groups": ["g1", "g2"]});
        let target = json!({"target": {"x": "u1", "n": null}, "user_id": "u1"});
        let check = |s: &str| {
            let mut p = Policy::keystone_defaults();
            p.apply_overrides(&format!("t: {}", serde_json::to_string(s).unwrap()), "t")
                .unwrap();
            p.check("t", &creds, &target)
        };
        assert!(check("user_id:%(target.x)s"));
        assert!(check("user_id:%(user_id)s"));
        assert!(
            check("role:reader"),
            "role names compare case-insensitively"
        );
        assert!(check("None:%(target.n)s"));
        assert!(!check("None:%(target.x)s"));
        assert!(!check("user_id:%(target.missing)s"));
        assert!(check("token.domain.id:d"));
        assert!(check("groups:g2"));
        assert!(check("is_admin:False"));
        assert!(!check("is_admin:1"));
        assert!(check("'u1':%(target.x)s"));
    }

    /// Found by fuzzing (policy_rule): rules that refer to each other twice doubled the
    /// work at every level of the depth limit (2^32 evaluations for one decision).
    #[test]
    fn rules_referring_to_each_other_twice_end_quickly() {
        let rule = |s: &str| parse_rule(s);
        let p = Policy::of_rules(HashMap::from([
            ("fuzz".to_string(), rule("rule:a")),
            ("a".to_string(), rule("rule:b or rule:b or rule:b")),
            ("b".to_string(), rule("rule:a or rule:a or rule:a")),
            ("ok".to_string(), rule("rule:yes and rule:yes")),
            ("yes".to_string(), rule("@")),
        ]));
        let started = std::time::Instant::now();
        assert!(!p.check("fuzz", &json!({}), &json!({})));
        assert_eq!(p.enforce("fuzz", &json!({}), &json!({})), Decision::Deny);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert!(p.check("ok", &json!({}), &json!({})));
    }
}
