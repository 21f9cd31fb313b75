//! Commands that need no shell. Most steps run one program with some arguments and perhaps a
//! redirection (`cp {inputs} {out}/x`, `wc -c < {inputs} > {out}/n`). Starting `/bin/sh` to run
//! them costs a second program start per attempt, as much as the command itself on a small
//! input, so such a command is run directly, the way make runs a recipe line without shell
//! syntax. Anything else, or anything this module is not sure of, goes to `/bin/sh`.
//!
//! A command is direct when it is one simple command of plain words (quoted with `'...'`,
//! `"..."` without `$`, `` ` `` or `\` inside, or `\`-escaped) and redirections `<`, `>`, `>>`
//! (optionally with a one-digit file descriptor, as in `2>`), whose first word names a program
//! found on `PATH` that is not a shell builtin or reserved word. No expansion of any kind
//! (variables, globs, `~`, command substitution) may be needed: those characters send it to the
//! shell. The words are then exactly the arguments the shell would have passed.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A command split into what the shell would have made of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Direct {
    /// The program and its arguments; the first is the word as written.
    pub argv: Vec<String>,
    /// Redirections, applied in order before the program starts.
    pub redirects: Vec<Redirect>,
}

/// One redirection of a direct command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// The file descriptor redirected: 0 for `<`, 1 for `>` and `>>` unless a digit says.
    pub fd: i32,
    /// The file, relative to the working directory unless absolute.
    pub path: String,
    pub mode: RedirectMode,
}

/// How a redirection opens its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectMode {
    /// `<`: read.
    Read,
    /// `>`: create or truncate, then write.
    Truncate,
    /// `>>`: create, then append.
    Append,
}

/// The builtins and reserved words of `/bin/sh` (dash): a command starting with one of them
/// means what the shell makes of it, not a program on `PATH`.
const SHELL_WORDS: &[&str] = &[
    "!", ".", ":", "[", "{", "}", "alias", "bg", "break", "case", "cd", "chdir", "command",
    "continue", "do", "done", "echo", "elif", "else", "esac", "eval", "exec", "exit", "export",
    "false", "fc", "fg", "fi", "for", "getopts", "hash", "if", "in", "jobs", "kill", "local",
    "printf", "pwd", "read", "readonly", "return", "set", "shift", "test", "then", "times", "trap",
    "true", "type", "ulimit", "umask", "unalias", "unset", "until", "wait", "while",
];

/// Unquoted, these ask for shell syntax or expansion.
const SHELL_SYNTAX: &[char] = &[
    '|', '&', ';', '(', ')', '$', '`', '*', '?', '[', ']', '{', '}', '~', '#', '!', '\n', '\r',
];

/// Splits `command` if it is direct; `None` if it needs the shell.
pub fn parse(command: &str) -> Option<Direct> {
    let mut argv = Vec::new();
    let mut redirects = Vec::new();
    let mut chars = command.chars().peekable();
    // A redirection waiting for its file name.
    let mut pending: Option<(i32, RedirectMode)> = None;
    loop {
        while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
        let Some(&first) = chars.peek() else {
            break;
        };
        if first == '<' || first == '>' {
            if pending.is_some() {
                return None;
            }
            chars.next();
            pending = Some(operator(first, None, &mut chars)?);
            continue;
        }
        let mut word = String::new();
        let mut quoted = false;
        while let Some(&c) = chars.peek() {
            match c {
                ' ' | '\t' => break,
                '\'' => {
                    chars.next();
                    quoted = true;
                    loop {
                        match chars.next()? {
                            '\'' => break,
                            c => word.push(c),
                        }
                    }
                }
                '"' => {
                    chars.next();
                    quoted = true;
                    loop {
                        match chars.next()? {
                            '"' => break,
                            '$' | '`' | '\\' => return None,
                            c => word.push(c),
                        }
                    }
                }
                '\\' => {
                    chars.next();
                    quoted = true;
                    match chars.next()? {
                        '\n' => return None,
                        c => word.push(c),
                    }
                }
                '<' | '>' => {
                    // `2>file`: a lone digit right before the operator names the descriptor.
                    let fd = match word.as_bytes() {
                        [digit @ b'0'..=b'9'] if !quoted && pending.is_none() => {
                            i32::from(digit - b'0')
                        }
                        _ => return None,
                    };
                    chars.next();
                    pending = Some(operator(c, Some(fd), &mut chars)?);
                    word.clear();
                    quoted = false;
                    break;
                }
                c if SHELL_SYNTAX.contains(&c) => return None,
                '\0' => return None,
                c => {
                    chars.next();
                    word.push(c);
                }
            }
        }
        if word.is_empty() && !quoted {
            // The operator of a `2>` just read; its file comes next.
            continue;
        }
        match pending.take() {
            Some((fd, mode)) => redirects.push(Redirect {
                fd,
                path: word,
                mode,
            }),
            None => {
                // Quoted or not: the shell finds its builtins after quote removal, and
                // `a='b c'` assigns.
                if argv.is_empty() && (word.contains('=') || SHELL_WORDS.contains(&word.as_str())) {
                    return None;
                }
                argv.push(word);
            }
        }
    }
    if pending.is_some() || argv.is_empty() || argv[0].is_empty() {
        return None;
    }
    Some(Direct { argv, redirects })
}

/// Reads the rest of a redirection operator whose first character, `<` or `>`, was just taken.
fn operator(
    first: char,
    fd: Option<i32>,
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
) -> Option<(i32, RedirectMode)> {
    // `<<`, `<>`, `<&`, `>&`, `>|` are shell business.
    if chars
        .peek()
        .is_some_and(|c| matches!(c, '<' | '&' | '|') || (*c == '>' && first == '<'))
    {
        return None;
    }
    Some(match first {
        '<' => (fd.unwrap_or(0), RedirectMode::Read),
        _ if chars.next_if_eq(&'>').is_some() => (fd.unwrap_or(1), RedirectMode::Append),
        _ => (fd.unwrap_or(1), RedirectMode::Truncate),
    })
}

/// The program `name` names, as `execvp` would find it: itself if it holds a `/`, else the first
/// executable file of that name in `path` (a `PATH` value; relative entries are relative to
/// `workdir`). `None` when there is none: the shell then says so in its own words.
pub fn find_program(name: &str, path: &str, workdir: &Path) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    path.split(':').find_map(|dir| {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = workdir.join(dir).join(name);
        let meta = std::fs::metadata(&candidate).ok()?;
        (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then_some(candidate)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(command: &str) -> Vec<String> {
        parse(command).expect(command).argv
    }

    #[test]
    fn plain_words_and_quotes_split_as_the_shell_splits_them() {
        assert_eq!(words("cp a b"), ["cp", "a", "b"]);
        assert_eq!(words("  cp\t'a b'  \"c d\" "), ["cp", "a b", "c d"]);
        assert_eq!(words("x 'it'\\''s' a\\ b ''"), ["x", "it's", "a b", ""]);
        assert_eq!(words("sort -k2,2 -t= f"), ["sort", "-k2,2", "-t=", "f"]);
        assert_eq!(words("awk '{ print $1 }' f"), ["awk", "{ print $1 }", "f"]);
        assert_eq!(words("/usr/bin/env"), ["/usr/bin/env"]);
    }

    #[test]
    fn redirections_are_taken_apart() {
        let direct = parse("wc -c < 'in put' > out/n 2>>err").unwrap();
        assert_eq!(direct.argv, ["wc", "-c"]);
        assert_eq!(
            direct.redirects,
            [
                Redirect {
                    fd: 0,
                    path: "in put".into(),
                    mode: RedirectMode::Read
                },
                Redirect {
                    fd: 1,
                    path: "out/n".into(),
                    mode: RedirectMode::Truncate
                },
                Redirect {
                    fd: 2,
                    path: "err".into(),
                    mode: RedirectMode::Append
                },
            ]
        );
        let direct = parse("gzip -c >'x.gz' f 2> e").unwrap();
        assert_eq!(direct.argv, ["gzip", "-c", "f"]);
        assert_eq!(direct.redirects.len(), 2);
        assert_eq!(direct.redirects[1].fd, 2);
    }

    #[test]
    fn anything_else_goes_to_the_shell() {
        for command in [
            "a | b",
            "a && b",
            "a; b",
            "a &",
            "a\nb",
            "echo x",
            "true",
            "cd dir",
            "exit 3",
            "if x",
            "X=1 cmd",
            "X='a b' cmd",
            "'echo' x",
            "cmd $HOME",
            "cmd \"$HOME\"",
            "cmd \"a\\\"b\"",
            "cmd `date`",
            "cmd *.txt",
            "cmd ~/x",
            "cmd # note",
            "cmd 2>&1",
            "cmd <<EOF",
            "cmd <> f",
            "cmd >| f",
            "cmd >",
            "cmd > a > ",
            "cmd a>b",
            "cmd 'unclosed",
            "cmd \"unclosed",
            "cmd \\",
            "> f",
            "",
            "''",
            "(a)",
            "{ a; }",
        ] {
            assert_eq!(parse(command), None, "{command:?}");
        }
    }

    #[test]
    fn programs_are_found_on_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let tool = bin.join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::fs::write(bin.join("data"), "").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!("/nonexistent:{}", bin.display());
        assert_eq!(find_program("tool", &path, dir.path()), Some(tool.clone()));
        assert_eq!(find_program("data", &path, dir.path()), None);
        assert_eq!(find_program("missing", &path, dir.path()), None);
        assert_eq!(
            find_program("tool", "bin", dir.path()),
            Some(dir.path().join("bin").join("tool"))
        );
        assert_eq!(
            find_program("./x/y", &path, dir.path()),
            Some(PathBuf::from("./x/y"))
        );
    }
}
