//! Parsing oslo.policy check strings into [`Rule`] trees.

/// A parsed check string.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    Always,
    Never,
    Not(Box<Rule>),
    And(Vec<Rule>),
    Or(Vec<Rule>),
    /// `rule:NAME`
    RuleRef(String),
    /// `role:NAME` (the name may interpolate the target)
    Role(String),
    /// `kind:match`: `kind` is a credential path or a quoted/`None`/number literal.
    Generic {
        kind: String,
        matcher: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    And,
    Or,
    Not,
    Check(Rule),
}

fn parse_check(s: &str) -> Rule {
    match s {
        "!" => return Rule::Never,
        "@" => return Rule::Always,
        _ => {}
    }
    let Some((kind, matcher)) = s.split_once(':') else {
        // oslo.policy treats a malformed check as one that never passes.
        return Rule::Never;
    };
    match kind {
        "rule" => Rule::RuleRef(matcher.to_string()),
        "role" => Rule::Role(matcher.to_string()),
        _ => Rule::Generic {
            kind: kind.to_string(),
            matcher: matcher.to_string(),
        },
    }
}

/// oslo.policy's tokenizer: split on white space, peel parentheses off word ends.
fn tokenize(rule: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    for word in rule.split_whitespace() {
        let clean = word.trim_start_matches('(');
        for _ in 0..(word.len() - clean.len()) {
            out.push(Tok::Open);
        }
        if clean.is_empty() {
            continue;
        }
        let core = clean.trim_end_matches(')');
        let trailing = clean.len() - core.len();
        match core.to_ascii_lowercase().as_str() {
            "and" => out.push(Tok::And),
            "or" => out.push(Tok::Or),
            "not" => out.push(Tok::Not),
            "" => {}
            _ => out.push(Tok::Check(parse_check(core))),
        }
        for _ in 0..trailing {
            out.push(Tok::Close);
        }
    }
    out
}

/// How deep `not` and parentheses may nest: far beyond any real check string, and short
/// of the stack (4,000 nested parentheses overflowed a test thread's: found by fuzzing).
/// Deeper does not parse, and so never passes.
const MAX_NESTING: usize = 64;

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or_expr(&mut self) -> Result<Rule, ()> {
        let mut items = vec![self.and_expr()?];
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            items.push(self.and_expr()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Rule::Or(items)
        })
    }

    fn and_expr(&mut self) -> Result<Rule, ()> {
        let mut items = vec![self.not_expr()?];
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            items.push(self.not_expr()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Rule::And(items)
        })
    }

    fn not_expr(&mut self) -> Result<Rule, ()> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(());
        }
        let rule = match self.next() {
            Some(Tok::Not) => Ok(Rule::Not(Box::new(self.not_expr()?))),
            Some(Tok::Open) => {
                let inner = self.or_expr()?;
                match self.next() {
                    Some(Tok::Close) => Ok(inner),
                    _ => Err(()),
                }
            }
            Some(Tok::Check(c)) => Ok(c),
            _ => Err(()),
        };
        self.depth -= 1;
        rule
    }
}

/// Parses a check string. As in oslo.policy, an empty string always passes and a string
/// that does not parse never does.
pub fn parse_rule(s: &str) -> Rule {
    let toks = tokenize(s);
    if toks.is_empty() {
        return Rule::Always;
    }
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    match p.or_expr() {
        Ok(r) if p.pos == p.toks.len() => r,
        _ => Rule::Never,
    }
}

/// The legacy list-of-lists form: an OR of ANDs of check strings.
pub fn parse_legacy(list: &[Vec<String>]) -> Rule {
    if list.is_empty() {
        return Rule::Always;
    }
    Rule::Or(
        list.iter()
            .map(|conj| {
                if conj.is_empty() {
                    Rule::Always
                } else {
                    Rule::And(conj.iter().map(|c| parse_check(c)).collect())
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(r: &str) -> Rule {
        Rule::Role(r.into())
    }

    #[test]
    fn precedence_and_parentheses() {
        assert_eq!(
            parse_rule("role:a or role:b and role:c"),
            Rule::Or(vec![role("a"), Rule::And(vec![role("b"), role("c")])])
        );
        assert_eq!(
            parse_rule("(role:a or role:b) and not role:c"),
            Rule::And(vec![
                Rule::Or(vec![role("a"), role("b")]),
                Rule::Not(Box::new(role("c")))
            ])
        );
        assert_eq!(parse_rule("((role:a))"), role("a"));
    }

    #[test]
    fn special_forms() {
        assert_eq!(parse_rule(""), Rule::Always);
        assert_eq!(parse_rule("@"), Rule::Always);
        assert_eq!(parse_rule("!"), Rule::Never);
        assert_eq!(parse_rule("role:a and"), Rule::Never);
        assert_eq!(parse_rule("(role:a"), Rule::Never);
        assert_eq!(parse_rule("nocolon"), Rule::Never);
        assert_eq!(
            parse_rule("'manager':%(target.role.name)s"),
            Rule::Generic {
                kind: "'manager'".into(),
                matcher: "%(target.role.name)s".into()
            }
        );
        assert_eq!(
            parse_legacy(&[
                vec!["role:a".into()],
                vec!["role:b".into(), "rule:x".into()]
            ]),
            Rule::Or(vec![
                Rule::And(vec![role("a")]),
                Rule::And(vec![role("b"), Rule::RuleRef("x".into())])
            ])
        );
    }

    /// Found by fuzzing (policy_rule): thousands of nested parentheses or `not`s
    /// overflowed the stack; past the nesting limit a check string does not parse.
    #[test]
    fn deep_nesting_does_not_parse() {
        let deep = format!("{}role:a{}", "(".repeat(4000), ")".repeat(4000));
        assert_eq!(parse_rule(&deep), Rule::Never);
        assert_eq!(parse_rule(&"not ".repeat(4000)), Rule::Never);
        let fine = format!("{}role:a{}", "(".repeat(20), ")".repeat(20));
        assert_eq!(parse_rule(&fine), Rule::Role("a".into()));
    }
}
