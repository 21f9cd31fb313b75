//! Property tests: no input makes the parser or checker panic, and formatting is a fixpoint
//! that keeps the canonical form of every pipeline.

use proptest::prelude::*;

const SEED: &str = include_str!("../../workflows/sequencing.pipe");

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Arbitrary text: never a panic, always either pipelines or diagnostics with valid spans.
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        let loaded = dsl::load_source("fuzz.pipe", text);
        for d in &loaded.diagnostics {
            for label in &d.labels {
                prop_assert!(label.span.start() <= label.span.end());
            }
            let _ = dsl::render::render(d, &loaded.sources, false);
        }
    }

    /// A real file mangled by deleting, duplicating and inserting pieces: never a panic.
    #[test]
    fn mangled_files_never_panic(edits in prop::collection::vec((0usize..4000, 0usize..40, 0u8..4, "[{}\"#=.,()a-z0-9 \n\\\\]{0,6}"), 1..6)) {
        let mut text = SEED.to_string();
        for (at, len, kind, insert) in edits {
            let at = floor_char(&text, at % (text.len() + 1));
            let end = floor_char(&text, (at + len).min(text.len()));
            match kind {
                0 => { text.replace_range(at..end, ""); }
                1 => { let piece = text[at..end].to_string(); text.insert_str(at, &piece); }
                _ => text.insert_str(at, &insert),
            }
        }
        let loaded = dsl::load_source("mangled.pipe", text.clone());
        let _ = dsl::render::render_all(&loaded.diagnostics, &loaded.sources, false);
        if let Ok(module) = dsl::parser::parse(loaded.root, &text) {
            let _ = dsl::format::format_module(&module);
        }
    }

    /// Generated pipelines with random layout: fmt is a fixpoint and keeps the lowered pipelines.
    #[test]
    fn fmt_is_a_fixpoint_and_keeps_meaning(spec in pipeline_text()) {
        let before = dsl::load_source("gen.pipe", spec.clone());
        prop_assert!(before.is_valid(), "{}\n{:?}", spec, before.diagnostics);
        let module = dsl::parser::parse(before.root, &spec).expect("parses");
        let formatted = dsl::format::format_module(&module);
        let after = dsl::load_source("gen.pipe", formatted.clone());
        prop_assert_eq!(&before.pipelines, &after.pipelines);
        let again = dsl::format::format_module(&dsl::parser::parse(after.root, &formatted).expect("parses"));
        prop_assert_eq!(formatted, again);
    }
}

fn floor_char(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Random whitespace: what a formatter must normalise.
fn ws() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(" ".to_string()),
        Just("  ".to_string()),
        Just("\n".to_string()),
        Just("\n\n  ".to_string()),
        Just("\t".to_string())
    ]
}

/// A pipeline of 1..8 steps, each consuming the source or an earlier step, with random settings,
/// comments and spacing.
fn pipeline_text() -> impl Strategy<Value = String> {
    let step = (
        0usize..8,
        prop::bool::ANY,
        prop::option::of(0u32..5),
        prop::option::of(prop_oneof![Just("10m"), Just("1h30m"), Just("45s")]),
        prop::option::of("[a-z ]{0,12}"),
        prop::bool::ANY,
        ws(),
        ws(),
    );
    prop::collection::vec(step, 1..8).prop_map(|steps| {
        let mut text = String::from("# generated\npipeline gen {\n  param n: int = 3 in 1..10\n  source reads {\n root \"data\"\n glob \"*/*.txt\"\n group sample by regex \"(?P<batch>[A-Z]+)/(?P<sample>[a-z0-9]+)\"\n }\n");
        let mut per_group = Vec::new();
        for (i, (upstream, each, retries, timeout, comment, when, ws1, ws2)) in steps.iter().enumerate() {
            let from_source = i == 0 || *upstream % (i + 1) == i;
            let input = if from_source { "reads".to_string() } else { format!("s{}", upstream % i) };
            // A per-group step needs an input of its own group: the source, or a per-group step.
            let each_here = *each && (from_source || per_group[upstream % i]);
            per_group.push(each_here);
            text.push_str(&format!("step{ws1}s{i}"));
            if each_here {
                text.push_str(" each sample");
            }
            text.push_str(&format!("{ws2}{{ input {input}{ws1}run \"wc -l {{inputs}} > {{out}}/n.txt # {{params.n}}\""));
            if let Some(r) = retries {
                text.push_str(&format!("{ws2}retries {r}"));
            }
            if let Some(t) = timeout {
                text.push_str(&format!(" timeout {t}"));
            }
            if *when && each_here {
                text.push_str(" when group.batch ~ \"^MTX\" and not params.n > 4");
            }
            if let Some(c) = comment {
                text.push_str(&format!(" # {c}\n"));
            }
            text.push_str("\n}\n");
        }
        text.push_str("}\n");
        text
    })
}
