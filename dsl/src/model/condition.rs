//! `when` conditions, checked and lowered: which groups (and under which params) a step runs for.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::param::ParamValue;
use super::pattern::Pattern;
use crate::ast::CmpOp;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    Or(Vec<Condition>),
    And(Vec<Condition>),
    Not(Box<Condition>),
    /// A bool param used alone.
    Flag(String),
    Compare {
        field: Field,
        op: CmpOp,
        value: Literal,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "scope", content = "name")]
pub enum Field {
    Group(String),
    Param(String),
}

/// The right-hand side of a comparison, typed by the checker to fit the field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Literal {
    Text(String),
    Number(f64),
    Bool(bool),
    /// The regex of `~` and `!~`.
    Regex(Pattern),
}

impl Condition {
    /// Evaluates the condition for one group's fields under the run's params.
    /// A field that is missing compares as the empty string.
    pub fn eval(
        &self,
        fields: &BTreeMap<String, String>,
        params: &BTreeMap<String, ParamValue>,
    ) -> bool {
        match self {
            Condition::Or(all) => all.iter().any(|c| c.eval(fields, params)),
            Condition::And(all) => all.iter().all(|c| c.eval(fields, params)),
            Condition::Not(inner) => !inner.eval(fields, params),
            Condition::Flag(name) => matches!(params.get(name), Some(ParamValue::Bool(true))),
            Condition::Compare { field, op, value } => {
                let subject: Subject = match field {
                    Field::Group(name) => {
                        Subject::Text(fields.get(name).cloned().unwrap_or_default())
                    }
                    Field::Param(name) => match params.get(name) {
                        Some(ParamValue::Bool(b)) => Subject::Bool(*b),
                        Some(v) => match v.as_number() {
                            Some(n) => Subject::Number(n),
                            None => Subject::Text(v.render()),
                        },
                        None => Subject::Text(String::new()),
                    },
                };
                compare(&subject, *op, value)
            }
        }
    }

    /// Adds the names of the params the condition reads to `out`.
    pub fn params<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Condition::Or(all) | Condition::And(all) => all.iter().for_each(|c| c.params(out)),
            Condition::Not(inner) => inner.params(out),
            Condition::Flag(name)
            | Condition::Compare {
                field: Field::Param(name),
                ..
            } => out.push(name),
            Condition::Compare { .. } => {}
        }
    }
}

enum Subject {
    Text(String),
    Number(f64),
    Bool(bool),
}

fn compare(subject: &Subject, op: CmpOp, value: &Literal) -> bool {
    match (subject, value) {
        (Subject::Text(s), Literal::Regex(pattern)) => {
            let found = pattern.is_match(s);
            match op {
                CmpOp::NotMatches => !found,
                _ => found,
            }
        }
        (Subject::Text(s), Literal::Text(v)) => ordered(op, s.as_str().cmp(v.as_str())),
        (Subject::Number(n), Literal::Number(v)) => {
            n.partial_cmp(v).is_some_and(|o| ordered(op, o))
        }
        (Subject::Bool(b), Literal::Bool(v)) => ordered(op, b.cmp(v)),
        _ => false,
    }
}

fn ordered(op: CmpOp, ordering: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match op {
        CmpOp::Eq => ordering == Equal,
        CmpOp::Ne => ordering != Equal,
        CmpOp::Lt => ordering == Less,
        CmpOp::Le => ordering != Greater,
        CmpOp::Gt => ordering == Greater,
        CmpOp::Ge => ordering != Less,
        CmpOp::Matches | CmpOp::NotMatches => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_batch() {
        let mtx = Condition::Compare {
            field: Field::Group("batch".into()),
            op: CmpOp::Matches,
            value: Literal::Regex("^MTX".into()),
        };
        let fields = |b: &str| BTreeMap::from([("batch".to_string(), b.to_string())]);
        let params = BTreeMap::new();
        assert!(mtx.eval(&fields("MTX01"), &params));
        assert!(!mtx.eval(&fields("RTX01"), &params));
        assert!(Condition::Not(Box::new(mtx)).eval(&fields("RTX01"), &params));
    }

    #[test]
    fn numeric_params_compare_as_numbers() {
        let c = Condition::Compare {
            field: Field::Param("q".into()),
            op: CmpOp::Ge,
            value: Literal::Number(10.0),
        };
        let params = BTreeMap::from([("q".to_string(), ParamValue::Int(9))]);
        assert!(!c.eval(&BTreeMap::new(), &params));
    }
}
