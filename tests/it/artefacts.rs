use std::path::PathBuf;

use crate::common::{repo_root, run};

/// `schema/manifest.schema.json` must be what `scimform schema` prints.
#[test]
fn schema_file_is_fresh() {
    let committed = std::fs::read_to_string(repo_root().join("schema/manifest.schema.json")).unwrap_or_default();
    let generated = scimform::manifest::raw::json_schema();
    assert!(
        committed == generated,
        "schema/manifest.schema.json is out of date; run `cargo run -- schema > schema/manifest.schema.json`"
    );
    let printed = run(&repo_root(), &["schema"], &[]);
    assert_eq!(printed.code, 0);
    assert_eq!(printed.stdout, generated);
}

fn example_manifests() -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![repo_root().join("examples")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                // Manifests have a top-level `version`; data files (people.yaml) do not.
                let text = std::fs::read_to_string(&path).unwrap();
                if text.lines().any(|l| l.starts_with("version:")) {
                    found.push(path);
                }
            }
        }
    }
    found.sort();
    found
}

/// The variables the examples read their secrets from.
const EXAMPLE_ENV: &[(&str, &str)] = &[
    ("SCIM_BASE_URL", "https://scim.example/v2"),
    ("SCIM_TOKEN", "x"),
    ("AD_BIND_PASSWORD", "x"),
    ("GENESYS_CLIENT_ID", "x"),
    ("GENESYS_CLIENT_SECRET", "x"),
    ("GRAPH_TENANT_ID", "x"),
    ("GRAPH_CLIENT_ID", "x"),
    ("GRAPH_CLIENT_SECRET", "x"),
];

#[test]
fn every_example_validates() {
    let manifests = example_manifests();
    assert!(!manifests.is_empty(), "no example manifests found");
    for manifest in manifests {
        let file = manifest.to_string_lossy().into_owned();
        let result = run(&repo_root(), &["validate", "-f", &file], EXAMPLE_ENV);
        assert_eq!(result.code, 0, "{file}:\n{}", result.all());
    }
}

/// Every `scimform ...` command in the CI example parses with today's command line, so the
/// example cannot drift from the flags it uses.
#[test]
fn the_ci_example_uses_real_commands() {
    use clap::Parser;
    let workflow = std::fs::read_to_string(repo_root().join("examples/ci/scimform.yml")).unwrap();
    let mut commands = Vec::new();
    for line in workflow.lines() {
        let line = line.trim().trim_start_matches("run:").trim();
        if !line.starts_with("scimform ") {
            continue;
        }
        let words: Vec<String> = line
            .split_whitespace()
            .take_while(|w| !matches!(*w, ">" | "|" | "||" | "&&" | ";"))
            .map(|w| w.trim_matches('"').to_owned())
            .collect();
        if let Err(error) = scimform::cli::Cli::try_parse_from(&words) {
            panic!("`{line}` does not parse:\n{error}");
        }
        commands.push(words[1].clone());
    }
    commands.sort();
    commands.dedup();
    assert_eq!(commands, ["apply", "plan", "validate"], "the workflow validates, plans and applies");
}
