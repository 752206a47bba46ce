//! The fuzz target for the SubjectAccessReview matcher (`fuzz/`, run with
//! `scripts/fuzz.sh`), kept here so that the fuzz target is one line and the normal tests
//! replay the committed corpus through the same code.

use crate::kubernetes::rules::{
    check_rule, decide, AccessDecision, AccessRequest, AccessTarget, Effect, KubeRule, RuleSubject,
};

/// Reads choices from the fuzz input; past its end every choice is the first option.
struct Choices<'a>(&'a [u8]);

const GROUPS: [&str; 4] = ["g1", "g2", "system:authenticated", "limen:project:p:member"];
const NAMESPACES: [&str; 6] = ["*", "dev", "kube-system", "default", "", "prod"];
const VERBS: [&str; 5] = ["get", "list", "*", "create", "watch"];
const API_GROUPS: [&str; 4] = ["", "apps", "*", "rbac.authorization.k8s.io"];
const PATTERNS: [&str; 9] = [
    "pods",
    "pods/exec",
    "pods/*",
    "*/scale",
    "*",
    "secrets",
    "nodes",
    "",
    "a/b/c",
];
const RESOURCES: [&str; 5] = ["pods", "secrets", "nodes", "deployments", "*"];
const SUBRESOURCES: [&str; 4] = ["", "exec", "scale", "*"];
const NAMES: [&str; 3] = ["web", "", "*"];
const PATHS: [&str; 6] = ["/healthz", "/metrics/*", "*", "/", "", "healthz"];

impl Choices<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn below(&mut self, n: usize) -> usize {
        self.byte() as usize % n
    }

    /// One of `options`, or (for a byte ≥ 240) a string taken from the input itself.
    fn text(&mut self, options: &[&str]) -> String {
        let b = self.byte();
        if b >= 240 {
            let len = (self.byte() as usize % 16).min(self.0.len());
            let (taken, rest) = self.0.split_at(len);
            self.0 = rest;
            return String::from_utf8_lossy(taken).into_owned();
        }
        options[b as usize % options.len()].to_string()
    }

    fn list(&mut self, options: &[&str], max: usize) -> Vec<String> {
        (0..self.below(max + 1))
            .map(|_| self.text(options))
            .collect()
    }

    fn rule(&mut self) -> KubeRule {
        let subjects = (0..self.below(3))
            .map(|_| RuleSubject::Group(self.text(&GROUPS)))
            .collect();
        let effect = if self.byte().is_multiple_of(2) {
            Effect::Allow
        } else {
            Effect::Deny
        };
        let verbs = self.list(&VERBS, 2);
        if self.below(4) == 0 {
            return KubeRule {
                subjects,
                effect,
                verbs,
                non_resource_paths: self.list(&PATHS, 2),
                ..KubeRule::default()
            };
        }
        KubeRule {
            subjects,
            effect,
            verbs,
            namespaces: self.list(&NAMESPACES, 3),
            except_namespaces: self.list(&NAMESPACES[1..], 2),
            api_groups: self.list(&API_GROUPS, 2),
            resources: self.list(&PATTERNS, 3),
            except_resources: self.list(&RESOURCES, 1),
            names: self.list(&NAMES, 1),
            ..KubeRule::default()
        }
    }

    fn request(&mut self) -> AccessRequest {
        let groups = self.list(&GROUPS, 3);
        let verb = self.text(&VERBS);
        let target = if self.below(5) == 0 {
            AccessTarget::NonResource {
                path: self.text(&PATHS),
            }
        } else {
            AccessTarget::Resource {
                namespace: self.text(&NAMESPACES),
                api_group: self.text(&API_GROUPS),
                resource: self.text(&RESOURCES),
                subresource: self.text(&SUBRESOURCES),
                name: self.text(&NAMES),
            }
        };
        AccessRequest {
            user: "u".into(),
            groups,
            verb,
            target,
        }
    }
}

fn allowed(d: &AccessDecision) -> bool {
    matches!(d, AccessDecision::Allowed { .. })
}

/// Arbitrary rules (valid or not) and a request: the matcher decides without panicking,
/// and whatever it allows without a namespace it allows in every namespace the rules name
/// (allowed or excepted) and in one they do not.
pub fn kube_rules(data: &[u8]) {
    let mut input = Choices(data);
    let rules: Vec<KubeRule> = (0..input.below(6)).map(|_| input.rule()).collect();
    let req = input.request();
    for r in &rules {
        let _ = check_rule(r);
    }
    let decision = decide(&rules, &req);
    let AccessTarget::Resource { namespace, .. } = &req.target else {
        return;
    };
    if !namespace.is_empty() || !allowed(&decision) {
        return;
    }
    let named = rules
        .iter()
        .flat_map(|r| r.namespaces.iter().chain(&r.except_namespaces))
        .filter(|n| !n.is_empty() && *n != "*");
    for ns in named.map(String::as_str).chain(["unnamed", "kube-system"]) {
        let mut one = req.clone();
        if let AccessTarget::Resource { namespace, .. } = &mut one.target {
            *namespace = ns.to_string();
        }
        let in_ns = decide(&rules, &one);
        assert!(
            allowed(&in_ns),
            "allowed without a namespace ({decision:?}) but not in {ns:?} ({in_ns:?}): {rules:?} {req:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn kube_rules_corpus_replays() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/kube_rules");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
            super::kube_rules(&std::fs::read(entry.unwrap().path()).unwrap());
            n += 1;
        }
        assert!(n > 0, "{dir:?} is empty");
    }
}
