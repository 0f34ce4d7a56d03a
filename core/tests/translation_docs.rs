//! docs/anthropic-translation.md prints the translation's tables: they must say what the
//! code does (same parameters, fates and rules; every built-in model pattern).

use fastrouter_batch_core::translate::params::PARAMS;
use fastrouter_batch_core::translate::sampling::BUILTIN;

fn doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/anthropic-translation.md");
    std::fs::read_to_string(path).expect("docs/anthropic-translation.md")
}

#[test]
fn the_parameter_table_is_the_code_table() {
    let doc = doc();
    let section =
        doc.split("## Parameters").nth(1).and_then(|s| s.split("\n## ").next()).expect("a Parameters section");
    let rows: Vec<String> = section.lines().filter(|l| l.starts_with("| `")).map(str::to_owned).collect();
    let expected: Vec<String> =
        PARAMS.iter().map(|p| format!("| `{}` | {} | {} |", p.name, p.fate.as_str(), p.rule)).collect();
    assert_eq!(rows, expected, "\nthe docs table should read:\n{}\n", expected.join("\n"));
}

#[test]
fn every_builtin_model_pattern_is_documented() {
    let doc = doc();
    let section = doc.split("## Sampling parameters").nth(1).expect("a sampling section");
    for (pattern, support) in BUILTIN {
        let row = section
            .lines()
            .find(|l| l.starts_with(&format!("| `{support}` |")))
            .unwrap_or_else(|| panic!("no row for {support}"));
        assert!(row.contains(&format!("`{pattern}`")), "{pattern} ({support}) is not in the docs");
    }
}
