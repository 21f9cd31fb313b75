//! Reading requests: the JSON body (bounded in size while it is read) and the query string.

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::CONTENT_LENGTH;
use hyper::HeaderMap;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// The largest request body accepted.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Reads the body as JSON of type `T`; an empty body is `None`. A body over [`BODY_LIMIT`] is
/// refused as soon as its declared length or the bytes read so far exceed it.
pub async fn read_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Option<T>, ApiError> {
    let too_large = ApiError::PayloadTooLarge { limit: BODY_LIMIT };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        return Err(too_large);
    }
    let bytes = match Limited::new(body, BODY_LIMIT).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => return Err(too_large),
        Err(error) => {
            return Err(ApiError::BadRequest(format!(
                "cannot read the request body: {error}"
            )))
        }
    };
    parse_json(&bytes)
}

/// Parses a JSON body; empty (or only whitespace) is `None`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<Option<T>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(bytes)
        .map(Some)
        .map_err(|error| ApiError::BadRequest(format!("the body is not valid JSON here: {error}")))
}

/// The query string, decoded: `name=value` pairs in order.
#[derive(Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(query: Option<&str>) -> Query {
        let pairs = query
            .unwrap_or("")
            .split('&')
            .filter(|part| !part.is_empty())
            .map(|part| {
                let (name, value) = part.split_once('=').unwrap_or((part, ""));
                (decode(name), decode(value))
            })
            .collect();
        Query { pairs }
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

    /// Whether `name` is given as a true flag (`1`, `true`, `yes`, or no value).
    pub fn flag(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|v| matches!(v, "" | "1" | "true" | "yes"))
    }
}

/// Percent-decoding, with `+` as a space; an invalid escape is kept as it is.
pub fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i + 1..i + 3) {
            Some(hex) if bytes[i] == b'%' => std::str::from_utf8(hex)
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok()),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(byte), _) => {
                out.push(byte);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, byte) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_and_plus_and_keeps_bad_escapes() {
        assert_eq!(decode("a%20b+c"), "a b c");
        assert_eq!(decode("%2Fdata%2Fx.txt"), "/data/x.txt");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz%4"), "%zz%4");
        assert_eq!(decode("%C3%A9"), "é");
    }

    #[test]
    fn the_last_value_wins_and_numbers_are_checked() {
        let query = Query::parse(Some("limit=5&follow&limit=7&x=%31"));
        assert_eq!(query.get("limit"), Some("7"));
        assert_eq!(query.number::<u64>("x").unwrap(), Some(1));
        assert!(query.flag("follow"));
        assert!(!query.flag("missing"));
        let error = Query::parse(Some("limit=ten"))
            .number::<u64>("limit")
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "query parameter `limit`: `ten` is not a non-negative whole number"
        );
        assert_eq!(Query::parse(None).get("a"), None);
    }

    #[test]
    fn empty_bodies_are_none_and_bad_json_is_a_400() {
        assert_eq!(parse_json::<serde_json::Value>(b" \n").unwrap(), None);
        let error = parse_json::<serde_json::Value>(b"{oops").unwrap_err();
        assert_eq!(error.status().as_u16(), 400);
        assert!(error.to_string().starts_with("the body is not valid JSON"));
    }
}
