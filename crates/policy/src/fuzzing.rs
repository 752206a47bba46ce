//! The fuzz target for the oslo.policy rule parser and evaluator (`fuzz/`, run with
//! `scripts/fuzz.sh`), kept here so that the fuzz target is one line and the normal tests
//! replay the committed corpus through the same code.

use crate::{parse_rule, Policy};
use serde_json::json;
use std::collections::HashMap;

/// The input is up to three check strings, one a line: the rule `fuzz`, and the rules
/// `a` and `b` it may refer to (`rule:a`); each is parsed and `fuzz` is evaluated for a
/// few credentials against a target with nested, numeric, boolean and null values.
pub fn policy_rule(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.splitn(3, '\n');
    let mut rules = HashMap::new();
    for name in ["fuzz", "a", "b"] {
        rules.insert(name.to_string(), parse_rule(lines.next().unwrap_or("")));
    }
    let policy = Policy::of_rules(rules);
    let target = json!({
        "user_id": "u1", "project_id": "p1", "enabled": true, "count": 3, "none": null,
        "target": {"user": {"id": "u1", "domain_id": "d1"}, "project": {"domain_id": "d1"}},
        "list": ["x", 1, {"y": "z"}]
    });
    for creds in [
        json!({"user_id": "u1", "project_id": "p1", "roles": ["admin", "Member"],
               "is_admin": false, "token": {"domain": {"id": "d1"}}}),
        json!({"user_id": "u2", "domain_id": "d1", "roles": [], "system_scope": "all",
               "group_ids": ["g1", "g2"]}),
        json!(null),
    ] {
        let _ = policy.enforce("fuzz", &creds, &target);
        let _ = policy.check("fuzz", &creds, &target);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn policy_rule_corpus_replays() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/policy_rule");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
            super::policy_rule(&std::fs::read(entry.unwrap().path()).unwrap());
            n += 1;
        }
        assert!(n > 0, "{dir:?} is empty");
    }
}
