//! Commands that need no shell. A command made of plain words (letters, digits, `_-./,:+@%^`,
//! single-quoted strings and backslash-escaped characters) whose first word is neither a shell
//! builtin nor a reserved word means the same to `/bin/sh` as to `execvp`: the shell would only
//! split it into words and run the program. The local executor runs such a command directly,
//! as GNU make does, and spares the start of a shell, which costs as much as a small command
//! itself (`cp`, `wc`). Anything else (`$`, quotes of other kinds, redirections, pipes, globs,
//! `~`, `#`, an assignment, a newline) goes to `/bin/sh -c` unchanged.

/// The words of `command` when it needs no shell; `None` when it does.
pub fn argv(command: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '\\' => match chars.next()? {
                '\n' => return None,
                c => {
                    word.push(c);
                    in_word = true;
                }
            },
            // `=` makes a first word an assignment; elsewhere it is plain.
            '=' if !words.is_empty() => {
                word.push(c);
                in_word = true;
            }
            c if c.is_ascii_alphanumeric() || "_-./,:+@%^".contains(c) => {
                word.push(c);
                in_word = true;
            }
            _ => return None,
        }
    }
    if in_word {
        words.push(word);
    }
    let program = words.first()?;
    if !program.contains('/') && SHELL_WORDS.contains(&program.as_str()) {
        return None;
    }
    Some(words)
}

/// The builtins and reserved words of dash and bash (either may be `/bin/sh`): a command
/// starting with one of them means something else without the shell, or nothing at all.
const SHELL_WORDS: &[&str] = &[
    "!",
    ".",
    ":",
    "[",
    "[[",
    "]]",
    "{",
    "}",
    "alias",
    "bg",
    "bind",
    "break",
    "builtin",
    "caller",
    "case",
    "cd",
    "chdir",
    "command",
    "compgen",
    "complete",
    "continue",
    "coproc",
    "declare",
    "dirs",
    "disown",
    "do",
    "done",
    "echo",
    "elif",
    "else",
    "enable",
    "esac",
    "eval",
    "exec",
    "exit",
    "export",
    "false",
    "fc",
    "fg",
    "fi",
    "for",
    "function",
    "getopts",
    "hash",
    "help",
    "history",
    "if",
    "in",
    "jobs",
    "kill",
    "let",
    "local",
    "logout",
    "mapfile",
    "popd",
    "printf",
    "pushd",
    "pwd",
    "read",
    "readarray",
    "readonly",
    "return",
    "select",
    "set",
    "shift",
    "shopt",
    "source",
    "suspend",
    "test",
    "then",
    "time",
    "times",
    "trap",
    "true",
    "type",
    "typeset",
    "ulimit",
    "umask",
    "unalias",
    "unset",
    "until",
    "wait",
    "while",
];

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn words(command: &str) -> Option<Vec<String>> {
        argv(command)
    }

    fn some(words: &[&str]) -> Option<Vec<String>> {
        Some(words.iter().map(|w| w.to_string()).collect())
    }

    #[test]
    fn plain_words_and_quotes_are_split_as_the_shell_would() {
        assert_eq!(words("cp s0 s1"), some(&["cp", "s0", "s1"]));
        assert_eq!(words("  wc\t-c  "), some(&["wc", "-c"]));
        assert_eq!(
            words("cat 'a b' 'it'\\''s' ''"),
            some(&["cat", "a b", "it's", ""])
        );
        assert_eq!(words("tool --x=1 a\\ b"), some(&["tool", "--x=1", "a b"]));
        assert_eq!(words("/bin/echo hi"), some(&["/bin/echo", "hi"]));
        assert_eq!(words("'a'b'c'"), some(&["abc"]));
    }

    #[test]
    fn anything_the_shell_would_interpret_needs_the_shell() {
        for command in [
            "",
            "   ",
            "echo hi",
            "cd /tmp",
            "exit 3",
            "wc -c < in > out",
            "a | b",
            "a; b",
            "a && b",
            "echo $HOME",
            "ls *.txt",
            "ls ~",
            "cat \"x\"",
            "a # comment",
            "X=1 env",
            "sleep 1 &",
            "(true)",
            "cat 'unclosed",
            "a\\",
            "a\\\nb",
            "a\nb",
            "`id`",
            "'exec' true",
        ] {
            assert_eq!(argv(command), None, "{command:?}");
        }
    }

    /// The words `/bin/sh` passes to a program for `command`: what it makes of
    /// `printf '%s\0' - COMMAND`, NUL-separated, without the `-`.
    fn shell_words(command: &str) -> Vec<String> {
        let output = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("printf '%s\\0' - {command}"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{command:?}: {output:?}");
        let text = String::from_utf8(output.stdout).unwrap();
        text.split_terminator('\0')
            .skip(1)
            .map(str::to_string)
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whenever the executor would skip the shell, the shell agrees on the words.
        #[test]
        fn the_words_are_the_shells(
            args in proptest::collection::vec("[a-z0-9 '\\\\=._%^@:,+\t-]{0,12}", 1..5)
        ) {
            let command = args.join(" ");
            if let Some(words) = argv(&format!("prog {command}")) {
                let expected = shell_words(&command);
                prop_assert_eq!(&words[1..], expected.as_slice());
            }
        }

        /// Quoting anything at all makes a command that needs no shell.
        #[test]
        fn quoted_values_are_one_word_each(values in proptest::collection::vec(".{0,12}", 1..5)) {
            let quoted: Vec<String> = values.iter().map(|v| dsl::model::command::shell_quote(v)).collect();
            let words = argv(&format!("prog {}", quoted.join(" ")));
            let expected: Vec<String> =
                std::iter::once("prog".to_string()).chain(values.iter().cloned()).collect();
            prop_assert_eq!(words, Some(expected));
        }
    }
}
