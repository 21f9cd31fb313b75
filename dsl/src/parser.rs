//! Text to syntax tree. pest checks the grammar (`pipe.pest`), and a
//! `TreeBuilder` builds the [`ast`](crate::ast) from its pairs.
//!
//! A file is not handed to pest whole: a `Reader` walks the top level and each pipeline's
//! body itself and asks pest for one unit at a time (a comment, a `use`, a template, a
//! pipeline's head, or up to sixteen items of a pipeline), turning its pairs into syntax tree at
//! once, so memory for pairs is bounded by the largest unit, not by the file. The tree is the one the
//! `file` rule would give; docs/grammar.md ("How the parser reads a file") says why.

use pest::iterators::{Pair, Pairs};
use pest::Parser as _;

use crate::ast::*;
use crate::diagnostic::Diagnostic;
use crate::span::{FileId, Span};
use crate::syntax_error;

mod tree_builder;

use tree_builder::{BlockBuilder, TreeBuilder};

#[derive(pest_derive::Parser)]
#[grammar = "pipe.pest"]
pub(crate) struct PipeParser;

/// Parses one file. On a syntax error, returns the one diagnostic pest's failure turns into;
/// string escape errors are all reported together.
pub fn parse(file: FileId, text: &str) -> Result<Module, Vec<Diagnostic>> {
    parse_with(file, text, &mut PipelineTrees::default())
}

/// Parses one file as [`parse`] does, handing each pipeline's entries to `pipelines` as they
/// are read; the module holds the pipelines `pipelines` gives back.
pub(crate) fn parse_with(
    file: FileId,
    text: &str,
    pipelines: &mut impl PipelineReader,
) -> Result<Module, Vec<Diagnostic>> {
    let mut reader = Reader {
        text,
        pos: 0,
        builder: TreeBuilder {
            file,
            text,
            offset: 0,
            errors: Vec::new(),
        },
        pipelines,
    };
    let items = reader.file().map_err(|error| vec![error])?;
    if reader.builder.errors.is_empty() {
        Ok(Module { items })
    } else {
        Err(reader.builder.errors)
    }
}

/// What is done with a pipeline's entries as they are read: [`parse`] builds its syntax
/// tree; loading lowers its steps one by one, so that a large pipeline's tree is never whole.
pub(crate) trait PipelineReader {
    /// A pipeline's head has been read: its name, and where its `{` ends.
    fn start(&mut self, name: Name, opened_at: usize);
    /// A comment in the pipeline's body, as written (`raw`), at `span` in `text`.
    fn comment(&mut self, text: &str, span: Span, raw: &str);
    fn item(&mut self, text: &str, span: Span, item: PipelineItem);
    /// The pipeline's `}` has been read: its syntax tree, if the module is to hold it.
    fn end(&mut self) -> Option<Pipeline>;
}

/// Builds each pipeline's syntax tree, for the module to hold.
#[derive(Default)]
struct PipelineTrees {
    current: Option<(Name, BlockBuilder<PipelineItem>)>,
}

impl PipelineReader for PipelineTrees {
    fn start(&mut self, name: Name, opened_at: usize) {
        self.current = Some((name, BlockBuilder::new(Some(opened_at))));
    }

    fn comment(&mut self, text: &str, span: Span, raw: &str) {
        if let Some((_, body)) = &mut self.current {
            body.comment_at(text, span, raw);
        }
    }

    fn item(&mut self, text: &str, span: Span, item: PipelineItem) {
        if let Some((_, body)) = &mut self.current {
            body.node(text, span, item);
        }
    }

    fn end(&mut self) -> Option<Pipeline> {
        let (name, body) = self.current.take()?;
        Some(Pipeline {
            name,
            body: body.finish(),
        })
    }
}

/// Walks a file unit by unit: [`Rule::top_unit`] at the top level, and for a pipeline, its
/// head and then [`Rule::pipeline_items`] until the `}` that closes it.
struct Reader<'t, 'p, P> {
    text: &'t str,
    /// Where the next unit starts (after skipping whitespace).
    pos: usize,
    builder: TreeBuilder<'t>,
    pipelines: &'p mut P,
}

impl<'t, P: PipelineReader> Reader<'t, '_, P> {
    fn file(&mut self) -> Result<Block<TopItem>, Diagnostic> {
        let mut block = BlockBuilder::new(None);
        // The start of the last unit whose optional tail might continue at the next one (a
        // `use` or a template); a syntax error is then reported as `file` would from there.
        let mut resume_from = None;
        loop {
            self.skip_whitespace();
            let start = self.pos;
            if start == self.text.len() {
                return Ok(block.finish());
            }
            let Some(pair) = self.unit(Rule::top_unit) else {
                return Err(self.syntax_error(Rule::file_body, resume_from.unwrap_or(start)));
            };
            resume_from = None;
            match pair.as_rule() {
                Rule::comment => block.comment(&self.builder, &pair),
                Rule::pipeline_head => {
                    if let Some(pipeline) = self.pipeline(pair)? {
                        let span = Span::new(self.builder.file, start, self.pos);
                        block.node(self.text, span, TopItem::Pipeline(pipeline));
                    }
                }
                _ => {
                    resume_from = Some(start);
                    let span = self.builder.span(&pair);
                    let item = self.builder.top_item(pair);
                    block.node(self.text, span, item);
                }
            }
        }
    }

    /// A pipeline, from its head (already read) to its closing `}`, handed to the pipeline
    /// reader entry by entry.
    fn pipeline(&mut self, head: Pair<'t, Rule>) -> Result<Option<Pipeline>, Diagnostic> {
        let name = self.builder.name(
            head.clone()
                .into_inner()
                .nth(1)
                .expect("grammar: pipeline name"),
        );
        self.pipelines.start(name, self.pos);
        let mut resume_from = None;
        loop {
            self.skip_whitespace();
            let start = self.pos;
            if self.text[start..].starts_with('}') {
                self.pos += 1;
                return Ok(self.pipelines.end());
            }
            let Some(items) = self.units(Rule::pipeline_items) else {
                return Err(self.syntax_error(Rule::pipeline_body, resume_from.unwrap_or(start)));
            };
            for pair in items {
                let span = self.builder.span(&pair);
                if pair.as_rule() == Rule::comment {
                    resume_from = None;
                    self.pipelines.comment(self.text, span, pair.as_str());
                } else {
                    resume_from = Some(self.builder.start(&pair));
                    let item = self.builder.pipeline_item(pair);
                    self.pipelines.item(self.text, span, item);
                }
            }
        }
    }

    /// Skips what the grammar's `WHITESPACE` matches.
    fn skip_whitespace(&mut self) {
        let rest = &self.text[self.pos..];
        let trimmed = rest.trim_start_matches([' ', '\t', '\r', '\n']);
        self.pos += rest.len() - trimmed.len();
    }

    /// Parses one unit with `rule` at `pos` and moves past it; `None` if it does not match.
    fn unit(&mut self, rule: Rule) -> Option<Pair<'t, Rule>> {
        self.units(rule)?.next()
    }

    /// Parses one or more units with `rule` at `pos` and moves past them; `None` if it does not
    /// match. The pairs' positions are relative to `pos`, which the builder's offset accounts for.
    fn units(&mut self, rule: Rule) -> Option<Pairs<'t, Rule>> {
        let start = self.pos;
        let units = PipeParser::parse(rule, &self.text[start..]).ok()?;
        let end = units.clone().last()?.as_span().end();
        self.builder.offset = start;
        self.pos = start + end;
        Some(units)
    }

    /// The diagnostic for the syntax error found at `pos`, explained by running `rule` from
    /// `from`: the start of the previous unit if its optional tail could have continued there
    /// (so its alternatives are among those expected), else `pos` itself.
    fn syntax_error(&self, rule: Rule, from: usize) -> Diagnostic {
        syntax_error::explain(self.builder.file, self.text, rule, from, self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Module {
        parse(FileId(0), text).unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn keeps_comments_and_blank_lines() {
        let module =
            parse_ok("# head\n\npipeline p { # trailing\n  step a { run \"x\" }\n\n  # own\n}\n");
        let entries = &module.items.entries;
        assert!(matches!(&entries[0].item, Item::Comment(c) if !c.trailing));
        assert!(entries[1].blank_line_before);
        let Item::Node(TopItem::Pipeline(p)) = &entries[1].item else {
            panic!()
        };
        assert!(matches!(&p.body.entries[0].item, Item::Comment(c) if c.trailing));
        assert!(matches!(&p.body.entries[2].item, Item::Comment(c) if !c.trailing));
        assert!(p.body.entries[2].blank_line_before);
    }

    #[test]
    fn unescapes_strings() {
        let module = parse_ok(r#"pipeline p { step a { run "say \"hi\"\n" } }"#);
        let Item::Node(TopItem::Pipeline(p)) = &module.items.entries[0].item else {
            panic!()
        };
        let (PipelineItem::Step(step), _) = p.body.nodes().next().unwrap() else {
            panic!()
        };
        let (StepItem::Run(run), _) = step.body.as_ref().unwrap().nodes().next().unwrap() else {
            panic!()
        };
        assert_eq!(run.value, "say \"hi\"\n");
    }

    #[test]
    fn keywords_end_at_word_boundaries() {
        parse_ok("pipeline p { step runner { run \"x\" } }");
    }

    #[test]
    fn range_ends_are_placed_by_position() {
        let module = parse_ok("pipeline p { param x: int = 3 in ..5 }");
        let Item::Node(TopItem::Pipeline(p)) = &module.items.entries[0].item else {
            panic!()
        };
        let (PipelineItem::Param(param), _) = p.body.nodes().next().unwrap() else {
            panic!()
        };
        let Some(Constraint::Range { min, max, .. }) = &param.constraint else {
            panic!()
        };
        assert!(min.is_none());
        assert_eq!(max.as_ref().unwrap().text, "5");
    }

    /// The tree `file` gives when pest parses the whole text at once, built by the same code
    /// as the reader's; `None` on any error.
    fn parse_whole(text: &str) -> Option<Module> {
        let root = PipeParser::parse(Rule::file, text).ok()?.next()?;
        let mut builder = TreeBuilder {
            file: FileId(0),
            text,
            offset: 0,
            errors: Vec::new(),
        };
        let mut block = BlockBuilder::new(None);
        for pair in root.into_inner() {
            match pair.as_rule() {
                Rule::EOI => {}
                Rule::comment => block.comment(&builder, &pair),
                Rule::pipeline_decl => {
                    let span = builder.span(&pair);
                    let mut inner = pair.into_inner();
                    let head = inner.next()?;
                    let name = builder.name(head.clone().into_inner().nth(1)?);
                    let opened_at = builder.start(&head) + head.as_str().len();
                    let body = builder.block(inner, Some(opened_at), TreeBuilder::pipeline_item);
                    block.node(text, span, TopItem::Pipeline(Pipeline { name, body }));
                }
                _ => {
                    let span = builder.span(&pair);
                    let item = builder.top_item(pair);
                    block.node(text, span, item);
                }
            }
        }
        builder.errors.is_empty().then(|| Module {
            items: block.finish(),
        })
    }

    fn assert_reads_like_file(text: &str) {
        let unit_by_unit = parse(FileId(0), text).ok();
        assert_eq!(unit_by_unit, parse_whole(text), "{text}");
    }

    #[test]
    fn reads_every_file_as_the_file_rule_does() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut dirs = vec![
            root.join("tests/fixtures"),
            root.join("../workflows"),
            root.join("../stdlib"),
        ];
        let mut read = 0;
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("readable").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "pipe") {
                    assert_reads_like_file(&std::fs::read_to_string(&path).expect("readable"));
                    read += 1;
                }
            }
        }
        assert!(read > 100, "found only {read} files");
    }

    proptest::proptest! {
        /// Mangled real text: the reader accepts exactly what `file` accepts, with the same tree.
        #[test]
        fn reads_mangled_text_as_the_file_rule_does(
            edits in proptest::collection::vec(
                (0usize..4000, 0usize..40, 0u8..4, "[{}\"#=.,()a-z0-9 \n\\\\]{0,6}"),
                1..6,
            )
        ) {
            let mut text = include_str!("../../workflows/sequencing.pipe").to_string();
            for (at, len, kind, insert) in edits {
                let at = floor_char(&text, at % (text.len() + 1));
                let end = floor_char(&text, (at + len).min(text.len()));
                match kind {
                    0 => text.replace_range(at..end, ""),
                    1 => {
                        let piece = text[at..end].to_string();
                        text.insert_str(at, &piece);
                    }
                    _ => text.insert_str(at, &insert),
                }
            }
            assert_reads_like_file(&text);
        }
    }

    fn floor_char(text: &str, mut at: usize) -> usize {
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        at
    }

    /// The one syntax error of `text`: its line, column and underlined width, and its message.
    fn syntax_error(text: &str) -> (usize, usize, usize, String) {
        let mut sources = crate::span::SourceMap::new();
        let file = sources.add("t.pipe", text);
        let errors = parse(file, text).expect_err("a syntax error");
        let span = errors[0].primary_span().expect("a label");
        let (line, col) = sources.line_col(file, span.start());
        (line, col, span.len(), errors[0].message.clone())
    }

    #[test]
    fn a_missing_literal_is_reported_where_it_is_missing() {
        let (line, col, width, message) =
            syntax_error("pipeline p {\n  param threads int = 4\n}\n");
        assert_eq!((line, col, width), (2, 17, 3));
        assert_eq!(message, "expected `:`, found `int`");

        let text = "pipeline p {\n  step a {\n    env {\n      LANG \"C.UTF-8\"\n    }\n  }\n}\n";
        let (line, col, width, message) = syntax_error(text);
        assert_eq!((line, col, width), (4, 12, 9));
        assert_eq!(message, "expected `=`, found a string");

        let (line, col, _, message) = syntax_error("pipeline p\n  step a { run \"x\" }\n}\n");
        assert_eq!((line, col), (2, 3));
        assert_eq!(message, "expected `{`, found `step`");
    }

    #[test]
    fn a_token_cut_short_is_reported_by_its_rule() {
        let (line, col, width, message) =
            syntax_error("pipeline p {\n  step a {\n    retries 2.5\n  }\n}\n");
        assert_eq!((line, col, width), (3, 13, 3));
        assert_eq!(message, "expected a whole number, found `2.5`");
    }

    #[test]
    fn an_unclosed_triple_string_is_reported_where_it_opens() {
        let (line, col, width, message) =
            syntax_error("pipeline p {\n  step a {\n    run \"\"\"\n      wc -l\n  }\n}\n");
        assert_eq!((line, col, width), (3, 9, 3));
        assert!(
            message.ends_with("found a `\"\"\"` string that is never closed"),
            "{message}"
        );
    }

    #[test]
    fn an_error_after_an_item_lists_what_could_continue_it() {
        // After `input a`, another name needs a comma; a step setting or `}` may follow too.
        let (_, col, _, message) = syntax_error("pipeline p { step s { input a b } }");
        assert_eq!(col, 31);
        assert!(message.starts_with("expected a step setting"), "{message}");
        // After a `use` without `as`, the error lists `as` with the top-level items.
        let (_, col, _, message) = syntax_error("use checksum\n%%\n");
        assert_eq!(col, 1);
        assert_eq!(
            message,
            "expected the end of the file, `pipeline`, `template` or `use` or `as`, found `%`"
        );
    }
}
