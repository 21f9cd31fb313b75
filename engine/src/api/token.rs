//! The bearer token that guards the API: where it comes from (a file the caller names,
//! `ENGINE_API_TOKEN`, or `STATE/api-token`, created on first start) and how a presented token is
//! compared with it (in constant time).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The environment variable that sets the token.
pub const TOKEN_ENV: &str = "ENGINE_API_TOKEN";
/// The token file in the state directory.
pub const TOKEN_FILE: &str = "api-token";

/// A bearer token. Its `Debug` never shows it.
#[derive(Clone)]
pub struct Token {
    text: String,
    /// blake3 of the text: [`blake3::Hash`] compares in constant time, and hashing both sides
    /// first hides the length too.
    hash: blake3::Hash,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read the API token from `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the API token to `{path}`: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the API token from {origin} is empty")]
    Empty { origin: String },
    #[error("the API token from {origin} has characters other than visible ASCII")]
    NotAscii { origin: String },
    #[error("cannot generate a random API token: {0}")]
    Random(String),
}

impl Token {
    /// A token from text (surrounding whitespace removed); `origin` names where it came from
    /// for the error message.
    pub fn new(text: &str, origin: &str) -> Result<Token, TokenError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(TokenError::Empty {
                origin: origin.to_string(),
            });
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::NotAscii {
                origin: origin.to_string(),
            });
        }
        Ok(Token {
            text: text.to_string(),
            hash: blake3::hash(text.as_bytes()),
        })
    }

    /// A new random token: 32 bytes from the operating system, as 64 hex digits.
    pub fn generate() -> Result<Token, TokenError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
        let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Token::new(&text, "the random generator")
    }

    /// The token itself, to print once for the operator.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `presented` is this token, compared in constant time.
    pub fn matches(&self, presented: &[u8]) -> bool {
        blake3::hash(presented) == self.hash
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

/// The API token and whether it was created just now (the daemon then prints it once).
///
/// In order: the file `file` if the caller names one, else `$ENGINE_API_TOKEN`, else
/// `STATE/api-token`, which is created (mode 0600, 32 random bytes as hex) if it does not exist.
pub fn load_or_create_token(
    state_dir: &Path,
    file: Option<&Path>,
) -> Result<(Token, bool), TokenError> {
    let env = std::env::var(TOKEN_ENV).ok();
    resolve(state_dir, file, env.as_deref())
}

fn resolve(
    state_dir: &Path,
    file: Option<&Path>,
    env: Option<&str>,
) -> Result<(Token, bool), TokenError> {
    if let Some(path) = file {
        return Ok((read_token(path)?, false));
    }
    if let Some(text) = env {
        return Ok((Token::new(text, &format!("${TOKEN_ENV}"))?, false));
    }
    let path = state_dir.join(TOKEN_FILE);
    if path.exists() {
        return Ok((read_token(&path)?, false));
    }
    let token = Token::generate()?;
    if create_token_file(state_dir, &path, &token)? {
        Ok((token, true))
    } else {
        // Another process created it first: use theirs.
        Ok((read_token(&path)?, false))
    }
}

fn read_token(path: &Path) -> Result<Token, TokenError> {
    let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Token::new(&text, &format!("`{}`", path.display()))
}

/// Writes the token to a private temporary file, then links it into place, so that no reader
/// ever sees a partial file and two daemons starting at once agree on one token. Returns false
/// when the file already existed.
fn create_token_file(state_dir: &Path, path: &Path, token: &Token) -> Result<bool, TokenError> {
    let write_error = |source| TokenError::Write {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(state_dir).map_err(write_error)?;
    let tmp = state_dir.join(format!("{TOKEN_FILE}.{}.tmp", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(format!("{}\n", token.as_str()).as_bytes())?;
            f.sync_all()
        });
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(write_error(e)),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn creates_a_private_token_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let (first, created) = resolve(dir.path(), None, None).unwrap();
        assert!(created);
        assert_eq!(first.as_str().len(), 64);
        assert!(first.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        let path = dir.path().join(TOKEN_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (second, created) = resolve(dir.path(), None, None).unwrap();
        assert!(!created);
        assert_eq!(second.as_str(), first.as_str());
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "only the token file is left");
    }

    #[test]
    fn a_named_file_beats_the_environment_which_beats_the_state_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(TOKEN_FILE), "from-state\n").unwrap();
        let named = dir.path().join("named");
        std::fs::write(&named, "  from-file \n").unwrap();
        let (token, created) = resolve(dir.path(), Some(&named), Some("from-env")).unwrap();
        assert_eq!((token.as_str(), created), ("from-file", false));
        let (token, _) = resolve(dir.path(), None, Some("from-env")).unwrap();
        assert_eq!(token.as_str(), "from-env");
        let (token, _) = resolve(dir.path(), None, None).unwrap();
        assert_eq!(token.as_str(), "from-state");
    }

    #[test]
    fn empty_or_odd_tokens_are_refused_with_their_origin() {
        let dir = tempfile::tempdir().unwrap();
        let error = resolve(dir.path(), None, Some(" ")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the API token from $ENGINE_API_TOKEN is empty"
        );
        let error = resolve(dir.path(), None, Some("a b")).unwrap_err();
        assert!(error.to_string().contains("visible ASCII"), "{error}");
        let missing = dir.path().join("missing");
        let error = resolve(dir.path(), Some(&missing), None).unwrap_err();
        assert!(error
            .to_string()
            .starts_with("cannot read the API token from"));
    }

    #[test]
    fn matches_only_the_same_token_and_never_shows_it() {
        let token = Token::new("s3cret", "a test").unwrap();
        assert!(token.matches(b"s3cret"));
        assert!(!token.matches(b"s3cre"));
        assert!(!token.matches(b"s3cret2"));
        assert!(!token.matches(b""));
        assert_eq!(format!("{token:?}"), "Token(..)");
    }
}
