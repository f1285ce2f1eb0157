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
