//! `GET /pipelines`, `GET /pipelines/{name}` and `POST /pipelines/{name}/trigger`: the daemon's
//! loaded pipelines, and starting a run of one with params.

use std::collections::BTreeMap;

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::actions::created;
use super::control::{ControlError, ParamProblem};
use super::error::ApiError;
use super::request::{JsonBody, Segments};
use super::response::{json, Response};
use super::state::ApiState;

/// Every loaded pipeline, and the files that do not load.
pub async fn list(State(state): State<Arc<ApiState>>) -> Result<Response, ApiError> {
    let body = state
        .blocking(|state| {
            Ok(json!({
                "pipelines": state.control.pipelines(),
                "load_errors": state.control.load_errors(),
            }))
        })
        .await?;
    Ok(json(StatusCode::OK, &body))
}

/// One pipeline, by name.
pub async fn get(
    State(state): State<Arc<ApiState>>,
    Segments(name): Segments<String>,
) -> Result<Response, ApiError> {
    let pipeline = state
        .blocking(move |state| {
            state
                .control
                .pipelines()
                .into_iter()
                .find(|p| p.name == name)
                .ok_or(ControlError::UnknownPipeline(name).into())
        })
        .await?;
    Ok(json(StatusCode::OK, &pipeline))
}

/// `GET /pipelines/{name}/gap`: scans the sources now; every step with its gap (0 when it has
/// nothing to do).
pub async fn gap(
    State(state): State<Arc<ApiState>>,
    Segments(name): Segments<String>,
) -> Result<Response, ApiError> {
    let body = state
        .blocking(move |state| {
            let gap = state.control.gap(&name)?;
            Ok(json!({ "pipeline": name, "gap": gap }))
        })
        .await?;
    Ok(json(StatusCode::OK, &body))
}

/// The body of a trigger: params by name, each a string or a JSON scalar.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerBody {
    #[serde(default)]
    params: BTreeMap<String, serde_json::Value>,
}

/// Starts a run: 201 with `{"run": ID}` and a `Location` of the run.
pub async fn trigger(
    State(state): State<Arc<ApiState>>,
    Segments(name): Segments<String>,
    JsonBody(body): JsonBody<TriggerBody>,
) -> Result<Response, ApiError> {
    let params = param_texts(body.unwrap_or_default().params)?;
    let run = state
        .blocking(move |state| Ok(state.control.trigger(&name, &params)?))
        .await?;
    Ok(created(run))
}

/// The params as `--param NAME=VALUE` takes them: strings as they are, numbers and booleans as
/// JSON writes them. Anything else is a 422 naming each such param.
fn param_texts(
    params: BTreeMap<String, serde_json::Value>,
) -> Result<Vec<(String, String)>, ApiError> {
    let mut texts = Vec::new();
    let mut problems = Vec::new();
    for (name, value) in params {
        let text = match value {
            serde_json::Value::String(text) => text,
            serde_json::Value::Number(number) => number.to_string(),
            serde_json::Value::Bool(flag) => flag.to_string(),
            other => {
                let kind = match other {
                    serde_json::Value::Null => "null",
                    serde_json::Value::Array(_) => "a list",
                    _ => "an object",
                };
                problems.push(ParamProblem {
                    message: format!(
                        "param `{name}`: {kind} is not a value (give a string, number or boolean, or leave the param out for its default)"
                    ),
                    param: name,
                });
                continue;
            }
        };
        texts.push((name, text));
    }
    if problems.is_empty() {
        Ok(texts)
    } else {
        Err(ApiError::InvalidParams { problems })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_become_param_text() {
        let params =
            serde_json::from_str(r#"{"threads": 8, "ratio": 0.5, "name": "x y", "dry": true}"#)
                .unwrap();
        let texts = param_texts(params).unwrap();
        let texts: Vec<(&str, &str)> = texts
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            texts,
            [
                ("dry", "true"),
                ("name", "x y"),
                ("ratio", "0.5"),
                ("threads", "8")
            ]
        );
    }

    #[test]
    fn every_non_scalar_is_reported() {
        let params = serde_json::from_str(r#"{"a": null, "b": [1], "c": {}, "d": 1}"#).unwrap();
        let ApiError::InvalidParams { problems } = param_texts(params).unwrap_err() else {
            panic!("expected invalid params");
        };
        let names: Vec<&str> = problems.iter().map(|p| p.param.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert!(problems[1]
            .message
            .starts_with("param `b`: a list is not a value"));
    }
}
