//! BuildKit's parser and shell-lexer conformance data (see `testdata/conformance/parser/README.md`).

use std::fs;
use std::path::{Path, PathBuf};

use strata_frontend::parser::parse;
use strata_frontend::shell::{EnvMap, Lexer};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/conformance/parser")
}

/// Sorted case directories under `dir`.
fn cases(dir: &str) -> Vec<(String, PathBuf)> {
    let mut found: Vec<_> = fs::read_dir(data_dir().join(dir))
        .unwrap_or_else(|e| panic!("reading {dir}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .map(|path| (path.file_name().unwrap().to_string_lossy().into_owned(), path))
        .collect();
    found.sort();
    found
}

/// Fails with every collected problem, not just the first.
fn report(what: &str, checked: usize, failures: Vec<String>) {
    assert!(failures.is_empty(), "{} of {checked} {what} failed:\n\n{}", failures.len(), failures.join("\n\n"));
}

#[test]
fn testfiles_dump_like_buildkit() {
    let cases = cases("testfiles");
    assert_eq!(cases.len(), 33);
    let mut failures = Vec::new();
    for (name, dir) in &cases {
        let source = fs::read_to_string(dir.join("Dockerfile")).unwrap();
        let expected = fs::read_to_string(dir.join("result")).unwrap();
        match parse(&source, "Dockerfile") {
            Ok(ast) if ast.dump() + "\n" == expected => {}
            Ok(ast) => {
                failures.push(format!("{name}: dump differs\n--- got\n{}\n--- expected\n{expected}", ast.dump()))
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    report("testfiles", cases.len(), failures);
}

#[test]
fn negative_cases_are_rejected() {
    let cases = cases("negative");
    assert_eq!(cases.len(), 4);
    let expected_messages = [
        ("empty_dockerfile", "file with no instructions"),
        ("env_no_value", "ENV must have two arguments"),
        ("only_comments", "file with no instructions"),
        ("shykes-nested-json", "when using JSON array syntax, arrays must be comprised of strings only"),
    ];
    let mut failures = Vec::new();
    for (name, dir) in &cases {
        let source = fs::read_to_string(dir.join("Dockerfile")).unwrap();
        let expected = expected_messages.iter().find(|(case, _)| case == name).map(|(_, message)| *message);
        match parse(&source, "Dockerfile") {
            Ok(ast) => failures.push(format!("{name}: parsed, dump:\n{}", ast.dump())),
            Err(e) if Some(e.message()) != expected => failures.push(format!("{name}: unexpected error {e}")),
            Err(_) => {}
        }
    }
    report("negative cases", cases.len(), failures);
}

#[test]
fn env_var_test_single_words() {
    let text = fs::read_to_string(data_dir().join("shell/envVarTest")).unwrap();
    let env: EnvMap = [("PWD", "/home"), ("SHELL", "bash"), ("KOREAN", "한국어"), ("NULL", "")].into_iter().collect();
    let lexer = Lexer::new('\\');
    let mut failures = Vec::new();
    let mut checked = 0;
    for (number, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('|').map(str::trim).collect();
        let [platform, input, expected] = fields[..] else { panic!("line {}: not three fields: {line}", number + 1) };
        if platform == "W" {
            continue;
        }
        checked += 1;
        match (lexer.process_word(input, &env), expected) {
            (Err(_), "error") => {}
            (Ok(got), expected) if got.value == expected => {}
            (got, _) => failures.push(format!("line {}: {input:?}: expected {expected:?}, got {got:?}", number + 1)),
        }
    }
    assert_eq!(checked, 228);
    report("envVarTest lines", checked, failures);
}

#[test]
fn words_test_word_splitting() {
    let text = fs::read_to_string(data_dir().join("shell/wordsTest")).unwrap();
    let lexer = Lexer::new('\\');
    let mut env = EnvMap::new();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (number, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(assignment) = line.strip_prefix("ENV ") {
            let (name, value) = assignment.trim_start_matches(' ').split_once('=').unwrap();
            env.insert(name, value);
            continue;
        }
        let (input, expected) = line.split_once('|').unwrap_or_else(|| panic!("line {}: no '|'", number + 1));
        let (input, expected) = (input.trim(), expected.trim_start_matches(' '));
        checked += 1;
        match (lexer.process_words(input, &env), expected) {
            (Err(_), "error") => {}
            (Ok(words), expected) if words == expected.split(',').collect::<Vec<_>>() => {}
            (got, _) => failures.push(format!("line {}: {input:?}: expected {expected:?}, got {got:?}", number + 1)),
        }
    }
    assert_eq!(checked, 24);
    report("wordsTest lines", checked, failures);
}

#[test]
fn testfile_line_ranges() {
    #[derive(serde::Deserialize)]
    struct Lines {
        root: [u32; 2],
        instructions: Vec<[u32; 2]>,
    }
    let dir = data_dir().join("testfile-line");
    let expected: Lines = toml::from_str(&fs::read_to_string(dir.join("lines.toml")).unwrap()).unwrap();
    let ast = parse(&fs::read_to_string(dir.join("Dockerfile")).unwrap(), "Dockerfile").unwrap();
    assert_eq!([ast.span.start.line, ast.span.end.line], expected.root, "root range");
    let got: Vec<[u32; 2]> = ast.nodes.iter().map(|n| [n.span.start.line, n.span.end.line]).collect();
    assert_eq!(got, expected.instructions, "instruction ranges");
}
