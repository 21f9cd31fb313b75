//! Reading requests: axum extractors for the path's `{...}` segments, the query string and the
//! JSON body (bounded in size while it is read), each refusing a request with an [`ApiError`]
//! rather than axum's plain-text rejection.

use axum::body::to_bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header::CONTENT_LENGTH;
use axum::http::request::Parts;
use axum::http::{StatusCode, Uri};
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// The largest request body accepted.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The route's `{...}` segments as axum's [`Path`] decodes them: a `String`, or a tuple of them.
pub struct Segments<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Segments<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(segments)) => Ok(Segments(segments)),
            // A segment that is not UTF-8 once decoded (400), or a handler that wants other
            // segments than its route has (500).
            Err(rejection) if rejection.status() == StatusCode::BAD_REQUEST => {
                Err(ApiError::BadRequest(rejection.body_text()))
            }
            Err(rejection) => Err(ApiError::Internal(rejection.body_text())),
        }
    }
}

/// The run of a `/runs/{id}` route.
pub struct RunId(pub u64);

impl<S: Send + Sync> FromRequestParts<S> for RunId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Segments(run) = Segments::<String>::from_request_parts(parts, state).await?;
        Ok(RunId(id(&run, "run")?))
    }
}

/// The run and the task of a `/runs/{id}/tasks/{task}` route.
pub struct TaskIds {
    pub run: u64,
    pub task: u64,
}

impl<S: Send + Sync> FromRequestParts<S> for TaskIds {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Segments((run, task)) =
            Segments::<(String, String)>::from_request_parts(parts, state).await?;
        Ok(TaskIds {
            run: id(&run, "run")?,
            task: id(&task, "task")?,
        })
    }
}

/// A segment as a run or task number (an int64, as the schema says); anything else is a 400
/// saying it is not a `what` number.
fn id(text: &str, what: &str) -> Result<u64, ApiError> {
    text.parse::<i64>()
        .ok()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| ApiError::BadRequest(format!("`{text}` is not a {what} number")))
}

/// The query string as axum's [`Query`] decodes it: `name=value` pairs in order.
#[derive(Debug)]
pub struct QueryParams {
    pairs: Vec<(String, String)>,
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        QueryParams::from_uri(&parts.uri)
    }
}

impl QueryParams {
    /// The query of `uri`. Pairs cannot fail to decode (a bad escape is kept as it is, bytes
    /// that are not UTF-8 become U+FFFD), so the error is only there in case axum changes.
    pub fn from_uri(uri: &Uri) -> Result<QueryParams, ApiError> {
        Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map(|Query(pairs)| QueryParams { pairs })
            .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))
    }

    /// The last value given for `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name` parsed as a number (or anything `FromStr`); a value that does not
    /// parse is a 400 naming the parameter.
    pub fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, ApiError> {
        self.get(name)
            .map(|text| {
                text.parse().map_err(|_| {
                    ApiError::BadRequest(format!(
                        "query parameter `{name}`: `{text}` is not a non-negative whole number"
                    ))
                })
            })
            .transpose()
    }

    /// The value of `name` as a non-negative int64, what the schema calls a time or an id.
    pub fn int64(&self, name: &str) -> Result<Option<u64>, ApiError> {
        let Some(value) = self.number::<u64>(name)? else {
            return Ok(None);
        };
        if value > i64::MAX as u64 {
            return Err(ApiError::BadRequest(format!(
                "query parameter `{name}`: `{value}` is larger than {}",
                i64::MAX
            )));
        }
        Ok(Some(value))
    }

    /// Whether `name` is given as a true flag (`1`, `true`, `yes`, or no value) or a false one
    /// (`0`, `false`, `no`; or not given); anything else is a 400.
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.get(name) {
            None | Some("0" | "false" | "no") => Ok(false),
            Some("" | "1" | "true" | "yes") => Ok(true),
            Some(other) => Err(ApiError::BadRequest(format!(
                "query parameter `{name}`: `{other}` is neither true (`1`, `true`, `yes`) nor false (`0`, `false`, `no`)"
            ))),
        }
    }
}

/// For an optional field of a body that may be left out (with `#[serde(default)]`) but not be
/// `null`.
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// The body as JSON of type `T`; an empty body is `None`. A body over [`BODY_LIMIT`] is refused
/// as soon as its declared length or the bytes read so far exceed it.
pub struct JsonBody<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _: &S) -> Result<Self, ApiError> {
        let too_large = ApiError::PayloadTooLarge { limit: BODY_LIMIT };
        let declared = request
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
            return Err(too_large);
        }
        let bytes = match to_bytes(request.into_body(), BODY_LIMIT).await {
            Ok(bytes) => bytes,
            Err(error) => {
                let error = error.into_inner();
                if error.is::<http_body_util::LengthLimitError>() {
                    return Err(too_large);
                }
                return Err(ApiError::BadRequest(format!(
                    "cannot read the request body: {error}"
                )));
            }
        };
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses a JSON body, which must be an object (serde would take an array for a struct);
/// empty (or only whitespace) is `None`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<Option<T>, ApiError> {
    let Some(first) = bytes.iter().find(|b| !b.is_ascii_whitespace()) else {
        return Ok(None);
    };
    if *first != b'{' {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object (`{...}`)".into(),
        ));
    }
    serde_json::from_slice(bytes)
        .map(Some)
        .map_err(|error| ApiError::BadRequest(format!("the body is not valid JSON here: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(text: &str) -> QueryParams {
        QueryParams::from_uri(&format!("/?{text}").parse().unwrap()).unwrap()
    }

    #[test]
    fn decodes_escapes_and_plus_and_keeps_bad_escapes() {
        let decoded = query("a=a%20b+c&b=%2Fdata%2Fx.txt&c=100%&d=%zz%4&e=%C3%A9");
        assert_eq!(decoded.get("a"), Some("a b c"));
        assert_eq!(decoded.get("b"), Some("/data/x.txt"));
        assert_eq!(decoded.get("c"), Some("100%"));
        assert_eq!(decoded.get("d"), Some("%zz%4"));
        assert_eq!(decoded.get("e"), Some("é"));
    }

    #[test]
    fn the_last_value_wins_and_numbers_are_checked() {
        let params = query("limit=5&follow&limit=7&x=%31");
        assert_eq!(params.get("limit"), Some("7"));
        assert_eq!(params.number::<u64>("x").unwrap(), Some(1));
        assert!(params.flag("follow").unwrap());
        assert!(!params.flag("missing").unwrap());
        assert!(!query("follow=0").flag("follow").unwrap());
        assert!(query("follow=junk").flag("follow").is_err());
        let error = query("limit=ten").number::<u64>("limit").unwrap_err();
        assert_eq!(
            error.to_string(),
            "query parameter `limit`: `ten` is not a non-negative whole number"
        );
        let none = QueryParams::from_uri(&"/runs".parse().unwrap()).unwrap();
        assert_eq!(none.get("a"), None);
    }

    #[test]
    fn empty_bodies_are_none_and_bad_json_is_a_400() {
        assert_eq!(parse_json::<serde_json::Value>(b" \n").unwrap(), None);
        let error = parse_json::<serde_json::Value>(b"{oops").unwrap_err();
        assert_eq!(error.status().as_u16(), 400);
        assert!(error.to_string().starts_with("the body is not valid JSON"));
    }
}
