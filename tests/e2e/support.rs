//! The test context: a temp dir to write `.pipe` files into, and a runner for the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Env {
    dir: tempfile::TempDir,
}

/// What a run of the binary produced.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("a temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `text` to `name` (relative to the temp dir), creating directories.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create dirs");
        }
        std::fs::write(&path, text).expect("write file");
        path
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).expect("read file")
    }

    /// Runs `engine ARGS` in the temp dir.
    pub fn engine(&self, args: &[&str]) -> Run {
        run_in(self.dir.path(), args)
    }

    /// Runs `engine ARGS` in the temp dir with the environment variables `vars` set.
    pub fn engine_with(&self, vars: &[(&str, &str)], args: &[&str]) -> Run {
        run_with(self.dir.path(), vars, args)
    }
}

/// Runs `engine ARGS` in `dir`, never coloured.
pub fn run_in(dir: &Path, args: &[&str]) -> Run {
    run_with(dir, &[], args)
}

/// Runs `engine ARGS` in `dir` with `vars` set, never coloured, and with no `ENGINE_LOG` of
/// the caller's.
fn run_with(dir: &Path, vars: &[(&str, &str)], args: &[&str]) -> Run {
    let output: Output = Command::new(env!("CARGO_BIN_EXE_engine"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("ENGINE_LOG")
        .envs(vars.iter().copied())
        .output()
        .expect("the engine binary runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The repository root, for tests over the shipped workflows and stdlib.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("engine/ has a parent")
        .to_path_buf()
}

/// One HTTP/1.1 request over a plain socket: (status, body).
pub fn http(
    address: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
