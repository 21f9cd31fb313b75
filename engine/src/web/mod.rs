//! The web page `engine daemon` serves at `/`: plain HTML, CSS and JavaScript modules, embedded
//! in the binary (no build step, nothing fetched from elsewhere), that watch and control the
//! daemon through its HTTP API. `docs/web.md` describes the page.
//!
//! This module owns the files and how they are served (content types, validators and the
//! headers that keep the page to its own origin); the API's router sends `GET /` and
//! `GET /assets/{file}` here.

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// Its name under `/assets/` (the page itself is [`INDEX`]).
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("assets/", $name)),
        }
    };
}

/// The page, served at `/`.
pub const INDEX: Asset = asset!("index.html", "text/html; charset=utf-8");

/// Everything the page loads, served at `/assets/NAME`.
pub const ASSETS: &[Asset] = &[
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("ui.js", "text/javascript; charset=utf-8"),
    asset!("dag.js", "text/javascript; charset=utf-8"),
    asset!("pipelines.js", "text/javascript; charset=utf-8"),
    asset!("runs.js", "text/javascript; charset=utf-8"),
    asset!("run.js", "text/javascript; charset=utf-8"),
    asset!("failed.js", "text/javascript; charset=utf-8"),
    asset!("queue.js", "text/javascript; charset=utf-8"),
    asset!("lineage.js", "text/javascript; charset=utf-8"),
];

/// The asset named `name`, if there is one.
pub fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// Headers on every file of the page: scripts, styles, images and requests only from the
/// daemon itself, no framing, no referrer, no content sniffing. Browsers revalidate each file
/// (by its [`Asset::etag`]) so a new binary's page is never mixed with an old one's.
pub const HEADERS: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-cache"),
];

impl Asset {
    /// A strong validator of the content: its blake3 hash, quoted.
    pub fn etag(&self) -> String {
        format!("\"{}\"", &blake3::hash(self.body).to_hex()[..32])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_page_imports_is_embedded() {
        let mut texts = vec![INDEX.body];
        texts.extend(ASSETS.iter().map(|a| a.body));
        for text in texts {
            let text = std::str::from_utf8(text).unwrap();
            for (at, _) in text.match_indices("/assets/") {
                let name: String = text[at + 8..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
                    .collect();
                assert!(asset(&name).is_some(), "`/assets/{name}` is not embedded");
            }
            for (at, _) in text.match_indices("from \"./") {
                let name: String = text[at + 8..].chars().take_while(|c| *c != '"').collect();
                assert!(asset(&name).is_some(), "`./{name}` is not embedded");
            }
        }
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        let mut texts = vec![INDEX.body];
        texts.extend(ASSETS.iter().map(|a| a.body));
        for text in texts {
            let text = std::str::from_utf8(text).unwrap();
            for needle in ["http://", "https://", "//cdn", "@import url"] {
                // SVG's XML namespace is a name, not a request.
                let uses = text
                    .match_indices(needle)
                    .filter(|(at, _)| !text[*at..].starts_with("http://www.w3.org/"))
                    .count();
                assert_eq!(uses, 0, "`{needle}` in an embedded file");
            }
        }
    }

    #[test]
    fn etags_differ_with_content() {
        assert_ne!(INDEX.etag(), ASSETS[0].etag());
        assert_eq!(INDEX.etag(), INDEX.etag());
    }
}
