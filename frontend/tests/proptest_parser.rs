//! Random and mutated Dockerfiles must never make the parser, the instruction layer, the lexer or the lowering panic.

use std::fs;
use std::path::Path;

use proptest::prelude::*;
use strata_frontend::instructions::{parse_instruction, parse_mount};
use strata_frontend::lower::{LowerOptions, Unresolved, lower, outline, targets};
use strata_frontend::parser::parse;
use strata_frontend::shell::{EnvMap, Lexer};

/// Every conformance Dockerfile (parser and build suites), as mutation seeds.
fn seeds() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/conformance");
    let mut found = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.file_name().unwrap().to_string_lossy().starts_with("Dockerfile") {
                found.extend(fs::read_to_string(&path).ok());
            }
        }
    }
    found.sort();
    found
}

/// Fragments that exercise the tricky parts of the grammar.
const FRAGMENTS: [&str; 14] =
    ["\\", "\\\n", "`", "\"", "'", "<<EOF", "<<-EOF\n", "\nEOF\n", "${", "}", "[", "--mount=", "\n", "# escape=`\n"];

/// One edit applied to a seed: what, where (as a fraction of the length), and which fragment.
#[derive(Debug, Clone)]
enum Mutation {
    DeleteChar(f64),
    InsertFragment(f64, usize),
    DuplicateLine(f64),
    DeleteLine(f64),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0.0..1.0).prop_map(Mutation::DeleteChar),
        (0.0..1.0, 0..FRAGMENTS.len()).prop_map(|(at, fragment)| Mutation::InsertFragment(at, fragment)),
        (0.0..1.0).prop_map(Mutation::DuplicateLine),
        (0.0..1.0).prop_map(Mutation::DeleteLine),
    ]
}

fn apply(source: &str, mutation: &Mutation) -> String {
    let chars: Vec<char> = source.chars().collect();
    let index = |fraction: f64, len: usize| ((fraction * len as f64) as usize).min(len.saturating_sub(1));
    match *mutation {
        Mutation::DeleteChar(at) if !chars.is_empty() => {
            let at = index(at, chars.len());
            chars[..at].iter().chain(&chars[at + 1..]).collect()
        }
        Mutation::InsertFragment(at, fragment) => {
            let at = index(at, chars.len() + 1);
            let mut out: String = chars[..at].iter().collect();
            out.push_str(FRAGMENTS[fragment]);
            out.extend(&chars[at..]);
            out
        }
        Mutation::DuplicateLine(at) | Mutation::DeleteLine(at) => {
            let mut lines: Vec<&str> = source.split_inclusive('\n').collect();
            if lines.is_empty() {
                return source.to_owned();
            }
            let at = index(at, lines.len());
            if matches!(mutation, Mutation::DuplicateLine(_)) {
                lines.insert(at, lines[at]);
            } else {
                lines.remove(at);
            }
            lines.concat()
        }
        Mutation::DeleteChar(_) => source.to_owned(),
    }
}

/// Runs every layer over `source`, the lowering included; only panics matter, errors are fine.
fn exercise(source: &str) {
    let env: EnvMap = [("A", "x y"), ("EMPTY", "")].into_iter().collect();
    let Ok(ast) = parse(source, "Dockerfile") else {
        return;
    };
    let _ = ast.dump();
    let _ = ast.to_json();
    let lexer = Lexer::new(ast.escape);
    for node in &ast.nodes {
        let _ = parse_instruction(node);
        for word in node.args.iter().chain(node.flags.iter()).chain([&node.original]) {
            let _ = lexer.process_word(word, &env);
            let _ = lexer.process_words(word, &env);
        }
        for mount in node.flags.iter().filter_map(|flag| flag.strip_prefix("--mount=")) {
            let _ = parse_mount(mount);
        }
    }
    let options = LowerOptions::new().build_arg("A", "x y");
    let _ = lower(&ast, &options, &Unresolved);
    let _ = outline(&ast, &options);
    let _ = targets(&ast);
    for stage in ast.nodes.iter().filter_map(|n| n.args.get(2)) {
        let _ = lower(&ast, &LowerOptions::new().target(Some(stage.clone())), &Unresolved);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mutated_conformance_dockerfiles_never_panic(
        seed in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..8),
    ) {
        let seeds = seeds();
        let mut source = seeds[seed.index(seeds.len())].clone();
        for mutation in &mutations {
            source = apply(&source, mutation);
        }
        exercise(&source);
    }

    #[test]
    fn random_dockerfiles_never_panic(source in "((RUN|COPY|ADD|ENV|ARG|FROM|ONBUILD|HEALTHCHECK|LABEL|CMD) )?[ -~\t\n\\\\`\"'<${}#=\\[\\]éλ]{0,120}") {
        exercise(&source);
    }

    #[test]
    fn random_words_never_panic_the_lexer(word in "[ -~éλ]{0,60}", escape in prop::sample::select(vec!['\\', '`'])) {
        let env: EnvMap = [("A", "x y")].into_iter().collect();
        let lexer = Lexer::new(escape);
        let _ = lexer.process_word(&word, &env);
        let _ = lexer.process_words(&word, &env);
        let _ = parse_mount(&word);
    }
}
