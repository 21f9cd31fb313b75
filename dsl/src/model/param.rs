//! Typed params: their types, constraints and values, and the one validation every value goes
//! through, whether it is a default in a `.pipe` file, `engine run --param k=v`, or an HTTP trigger.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::quantity::{parse_duration, parse_size};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    Int,
    Float,
    String,
    Bool,
    Path,
    Duration,
    Size,
    Enum(Vec<String>),
}

impl ParamType {
    /// The names of the built-in types, as written in a `.pipe` file.
    pub const NAMES: [&'static str; 7] =
        ["int", "float", "string", "bool", "path", "duration", "size"];

    pub fn from_name(name: &str) -> Option<ParamType> {
        Some(match name {
            "int" => ParamType::Int,
            "float" => ParamType::Float,
            "string" => ParamType::String,
            "bool" => ParamType::Bool,
            "path" => ParamType::Path,
            "duration" => ParamType::Duration,
            "size" => ParamType::Size,
            _ => return None,
        })
    }

    /// What a value of this type looks like, for error messages.
    pub fn expected(&self) -> String {
        match self {
            ParamType::Int => "a whole number".to_string(),
            ParamType::Float => "a number".to_string(),
            ParamType::String => "a string".to_string(),
            ParamType::Bool => "`true` or `false`".to_string(),
            ParamType::Path => "a path".to_string(),
            ParamType::Duration => "a duration such as `30s`, `10m` or `1h30m`".to_string(),
            ParamType::Size => "a size such as `512MB` or `8GiB`".to_string(),
            ParamType::Enum(members) => format!(
                "one of {}",
                members
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    pub fn is_ordered(&self) -> bool {
        matches!(
            self,
            ParamType::Int | ParamType::Float | ParamType::Duration | ParamType::Size
        )
    }

    pub fn is_textual(&self) -> bool {
        matches!(self, ParamType::String | ParamType::Path)
    }
}

impl ParamType {
    /// The type's name as written in a `.pipe` file (`enum` for an enum).
    pub fn name(&self) -> &'static str {
        match self {
            ParamType::Int => "int",
            ParamType::Float => "float",
            ParamType::String => "string",
            ParamType::Bool => "bool",
            ParamType::Path => "path",
            ParamType::Duration => "duration",
            ParamType::Size => "size",
            ParamType::Enum(_) => "enum",
        }
    }
}

impl fmt::Display for ParamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamType::Enum(members) => write!(f, "enum({})", members.join(", ")),
            other => f.write_str(other.name()),
        }
    }
}

/// A constraint on a param's values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamConstraint {
    /// Inclusive bounds on an int or float.
    Range { min: Option<f64>, max: Option<f64> },
    /// The whole value must match this regex.
    Matches(String),
}

impl fmt::Display for ParamConstraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamConstraint::Range {
                min: Some(min),
                max: Some(max),
            } => {
                write!(f, "between {min} and {max}")
            }
            ParamConstraint::Range {
                min: Some(min),
                max: None,
            } => write!(f, "at least {min}"),
            ParamConstraint::Range {
                min: None,
                max: Some(max),
            } => write!(f, "at most {max}"),
            ParamConstraint::Range {
                min: None,
                max: None,
            } => write!(f, "any number"),
            ParamConstraint::Matches(regex) => write!(f, "matching `{regex}`"),
        }
    }
}

/// A param value, typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum ParamValue {
    Int(i64),
    Float(f64),
    String(String),
    Bool(bool),
    Path(String),
    /// Milliseconds.
    Duration(u64),
    /// Bytes.
    Size(u64),
    Enum(String),
}

impl ParamValue {
    /// The text substituted for `{params.NAME}`: durations in whole seconds, sizes in bytes.
    pub fn render(&self) -> String {
        match self {
            ParamValue::Int(v) => v.to_string(),
            ParamValue::Float(v) => v.to_string(),
            ParamValue::String(v) | ParamValue::Path(v) | ParamValue::Enum(v) => v.clone(),
            ParamValue::Bool(v) => v.to_string(),
            ParamValue::Duration(ms) => (ms / 1000).to_string(),
            ParamValue::Size(bytes) => bytes.to_string(),
        }
    }

    /// The value as `--param NAME=VALUE` accepts it back: durations and sizes with a unit.
    pub fn to_param_text(&self) -> String {
        match self {
            ParamValue::Duration(ms) if ms % 1000 == 0 => format!("{}s", ms / 1000),
            ParamValue::Duration(ms) => format!("{ms}ms"),
            ParamValue::Size(bytes) => format!("{bytes}B"),
            other => other.render(),
        }
    }

    /// The value as a number, for ordered comparisons.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            ParamValue::Int(v) => Some(*v as f64),
            ParamValue::Float(v) => Some(*v),
            ParamValue::Duration(v) | ParamValue::Size(v) => Some(*v as f64),
            _ => None,
        }
    }
}

/// A declared param.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamDef {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ParamType,
    /// `None` for a required param.
    pub default: Option<ParamValue>,
    pub constraint: Option<ParamConstraint>,
}

/// A value that does not fit its param: names the param, the value and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("param `{param}`: `{value}` is not {expected}")]
    Invalid {
        param: String,
        value: String,
        expected: String,
    },
    #[error("unknown param `{param}`{}", known_params(.known))]
    Unknown { param: String, known: Vec<String> },
    #[error(
        "param `{param}` has no default and was not given (set it with --param {param}=VALUE)"
    )]
    Missing { param: String },
    #[error("`{arg}` is not a param assignment: write NAME=VALUE")]
    Malformed { arg: String },
}

fn known_params(known: &[String]) -> String {
    if known.is_empty() {
        " (this pipeline has no params)".to_string()
    } else {
        format!(" (params: {})", known.join(", "))
    }
}

impl ParamDef {
    /// Parses and validates `text` as a value of this param.
    pub fn parse_value(&self, text: &str) -> Result<ParamValue, ParamError> {
        let invalid = |expected: String| ParamError::Invalid {
            param: self.name.clone(),
            value: text.to_string(),
            expected,
        };
        let value = match &self.ty {
            ParamType::Int => {
                ParamValue::Int(text.trim().parse().map_err(|_| invalid(self.expected()))?)
            }
            ParamType::Float => {
                let v: f64 = text.trim().parse().map_err(|_| invalid(self.expected()))?;
                if !v.is_finite() {
                    return Err(invalid(self.expected()));
                }
                ParamValue::Float(v)
            }
            ParamType::Bool => match text.trim() {
                "true" => ParamValue::Bool(true),
                "false" => ParamValue::Bool(false),
                _ => return Err(invalid(self.expected())),
            },
            ParamType::String => ParamValue::String(text.to_string()),
            ParamType::Path => {
                if text.is_empty() || text.contains('\0') {
                    return Err(invalid(self.expected()));
                }
                ParamValue::Path(text.to_string())
            }
            ParamType::Duration => {
                ParamValue::Duration(parse_duration(text.trim()).map_err(invalid)?)
            }
            ParamType::Size => ParamValue::Size(parse_size(text.trim()).map_err(invalid)?),
            ParamType::Enum(members) => {
                if !members.iter().any(|m| m == text) {
                    return Err(invalid(self.expected()));
                }
                ParamValue::Enum(text.to_string())
            }
        };
        if !self.satisfies_constraint(&value) {
            return Err(invalid(self.expected()));
        }
        Ok(value)
    }

    /// What a valid value looks like: the type and the constraint.
    pub fn expected(&self) -> String {
        match &self.constraint {
            Some(constraint) => format!("{} {constraint}", self.ty.expected()),
            None => self.ty.expected(),
        }
    }

    /// Whether an already typed value satisfies the constraint.
    pub fn satisfies_constraint(&self, value: &ParamValue) -> bool {
        match (&self.constraint, value) {
            (None, _) => true,
            (Some(ParamConstraint::Range { min, max }), value) => value
                .as_number()
                .is_none_or(|v| min.is_none_or(|min| v >= min) && max.is_none_or(|max| v <= max)),
            (
                Some(ParamConstraint::Matches(pattern)),
                ParamValue::String(s) | ParamValue::Path(s),
            ) => regex::Regex::new(&format!("^(?:{pattern})$")).is_ok_and(|re| re.is_match(s)),
            (Some(ParamConstraint::Matches(_)), _) => true,
        }
    }
}

/// Resolves the params of a run: the defaults, overridden by `overrides` (`NAME=VALUE` pairs
/// already split). Every problem is reported, not only the first.
pub fn resolve_params(
    defs: &[ParamDef],
    overrides: &[(String, String)],
) -> Result<BTreeMap<String, ParamValue>, Vec<ParamError>> {
    let mut values = BTreeMap::new();
    let mut errors = Vec::new();
    for (name, text) in overrides {
        match defs.iter().find(|def| &def.name == name) {
            Some(def) => match def.parse_value(text) {
                Ok(value) => {
                    values.insert(name.clone(), value);
                }
                Err(error) => errors.push(error),
            },
            None => errors.push(ParamError::Unknown {
                param: name.clone(),
                known: defs.iter().map(|def| def.name.clone()).collect(),
            }),
        }
    }
    for def in defs {
        if values.contains_key(&def.name)
            || errors
                .iter()
                .any(|e| matches!(e, ParamError::Invalid { param, .. } if *param == def.name))
        {
            continue;
        }
        match &def.default {
            Some(default) => {
                values.insert(def.name.clone(), default.clone());
            }
            None => errors.push(ParamError::Missing {
                param: def.name.clone(),
            }),
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(errors)
    }
}

/// Splits `NAME=VALUE`.
pub fn split_assignment(arg: &str) -> Result<(String, String), ParamError> {
    match arg.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_string(), value.to_string()))
        }
        _ => Err(ParamError::Malformed {
            arg: arg.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int_param() -> ParamDef {
        ParamDef {
            name: "threads".into(),
            ty: ParamType::Int,
            default: Some(ParamValue::Int(4)),
            constraint: Some(ParamConstraint::Range {
                min: Some(1.0),
                max: Some(64.0),
            }),
        }
    }

    #[test]
    fn errors_name_param_value_and_expectation() {
        let error = int_param().parse_value("100").unwrap_err();
        assert_eq!(
            error.to_string(),
            "param `threads`: `100` is not a whole number between 1 and 64"
        );
        assert_eq!(int_param().parse_value("8"), Ok(ParamValue::Int(8)));
    }

    #[test]
    fn resolve_reports_every_problem() {
        let defs = vec![
            int_param(),
            ParamDef {
                name: "sheet".into(),
                ty: ParamType::Path,
                default: None,
                constraint: None,
            },
        ];
        let errors = resolve_params(
            &defs,
            &[("threads".into(), "x".into()), ("nope".into(), "1".into())],
        )
        .unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        let values = resolve_params(&defs, &[("sheet".into(), "a.csv".into())]).unwrap();
        assert_eq!(values["threads"], ParamValue::Int(4));
    }

    #[test]
    fn matches_is_anchored() {
        let def = ParamDef {
            name: "label".into(),
            ty: ParamType::String,
            default: None,
            constraint: Some(ParamConstraint::Matches("[a-z]+".into())),
        };
        assert!(def.parse_value("abc").is_ok());
        assert!(def.parse_value("abc1").is_err());
    }
}
