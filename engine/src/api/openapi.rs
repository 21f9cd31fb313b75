//! `GET /openapi.json`: the OpenAPI 3 description of the API, `docs/openapi.json`, built into
//! the binary.

use axum::http::StatusCode;

use super::response::{with_type, Response, JSON};

/// The document, as `docs/openapi.json` has it.
pub const DOCUMENT: &str = include_str!("../../../docs/openapi.json");

pub async fn document() -> Response {
    with_type(StatusCode::OK, JSON, DOCUMENT)
}

#[cfg(test)]
mod tests {
    use super::super::router::ROUTES;
    use super::*;

    #[test]
    fn documents_every_route_and_no_other() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let paths = doc["paths"].as_object().unwrap();
        for route in ROUTES {
            let method = route.method.as_str().to_ascii_lowercase();
            assert!(
                paths.get(route.path).and_then(|p| p.get(&method)).is_some(),
                "docs/openapi.json lacks {method} {}",
                route.path
            );
        }
        for (path, operations) in paths {
            for method in operations.as_object().unwrap().keys() {
                if method == "parameters" {
                    continue;
                }
                assert!(
                    ROUTES
                        .iter()
                        .any(|r| r.path == path && r.method.as_str().eq_ignore_ascii_case(method)),
                    "docs/openapi.json documents {method} {path}, which no route serves"
                );
            }
        }
    }

    #[test]
    fn every_reference_resolves() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap();
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        assert!(!refs.is_empty());
        for reference in refs {
            let pointer = reference.trim_start_matches('#');
            assert!(
                doc.pointer(pointer).is_some(),
                "unresolved $ref {reference}"
            );
        }
    }

    fn collect_refs(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("$ref", serde_json::Value::String(r)) => out.push(r.clone()),
                        _ => collect_refs(value, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
            _ => {}
        }
    }
}
