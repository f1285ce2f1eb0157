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
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo_root().join("schema/manifest.schema.json")).unwrap())
            .unwrap();
    assert!(schema["$id"].as_str().is_some_and(|id| id.starts_with("urn:scimform:")), "the schema names itself");
    for manifest in manifests {
        let file = manifest.to_string_lossy().into_owned();
        // Editors find the schema through the first line.
        let text = std::fs::read_to_string(&manifest).unwrap();
        let schema_path = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# yaml-language-server: $schema="))
            .unwrap_or_else(|| panic!("{file} does not start with its `$schema` line"));
        assert!(manifest.parent().unwrap().join(schema_path).exists(), "{file}: {schema_path}");
        let result = run(&repo_root(), &["validate", "-f", &file], EXAMPLE_ENV);
        assert_eq!(result.code, 0, "{file}:\n{}", result.all());
    }
}

/// A command line parses with today's CLI (`--help` and `--version` count as parsing).
fn parses(words: &[String]) -> Result<(), String> {
    use clap::Parser;
    match scimform::cli::Cli::try_parse_from(words) {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.kind(), clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion) => {
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// The `scimform ...` commands in a CI file's lines (`run:` or `- ` before them).
fn commands_in(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|line| line.trim().trim_start_matches("run:").trim_start_matches("- ").trim())
        .filter(|line| line.starts_with("scimform "))
        .map(|line| {
            line.split_whitespace()
                .take_while(|w| !matches!(*w, ">" | "|" | "||" | "&&" | ";"))
                .map(|w| w.trim_matches('"').to_owned())
                .collect()
        })
        .collect()
}

/// Every `scimform ...` command in the CI examples (GitHub Actions, GitLab CI) parses with
/// today's command line, so an example cannot drift from the flags it uses; each example is
/// YAML.
#[test]
fn the_ci_examples_use_real_commands() {
    for (file, expected) in [
        ("examples/ci/scimform.yml", ["apply", "plan", "validate"]),
        ("examples/ci/gitlab-ci.yml", ["apply", "plan", "validate"]),
    ] {
        let text = std::fs::read_to_string(repo_root().join(file)).unwrap();
        scimform::yaml::parse(&text).unwrap_or_else(|e| panic!("{file}: {e:?}"));
        let mut commands = Vec::new();
        for words in commands_in(&text) {
            if let Err(error) = parses(&words) {
                panic!("{file}: `{}` does not parse:\n{error}", words.join(" "));
            }
            commands.push(words[1].clone());
        }
        commands.sort();
        commands.dedup();
        assert_eq!(commands, expected, "{file}: the workflow validates, plans and applies");
    }
}

/// The Kubernetes CronJob's container arguments and the Dockerfile's entry point and default
/// command are real command lines; the CronJob is YAML that stops one run at a time at its
/// deadline.
#[test]
fn the_kubernetes_and_docker_examples_use_real_commands() {
    let cronjob = std::fs::read_to_string(repo_root().join("examples/kubernetes/cronjob.yaml")).unwrap();
    scimform::yaml::parse(&cronjob).unwrap();
    for needed in
        ["concurrencyPolicy: Forbid", "activeDeadlineSeconds:", "secretRef:", "configMap:", "runAsNonRoot: true"]
    {
        assert!(cronjob.contains(needed), "the CronJob has {needed}");
    }
    let args = cronjob.lines().find_map(|l| l.trim().strip_prefix("args:")).expect("the container's args");
    let args: Vec<String> = serde_json::from_str(args.trim()).unwrap();
    let words: Vec<String> = std::iter::once("scimform".to_owned()).chain(args).collect();
    parses(&words).unwrap_or_else(|e| panic!("the CronJob's args: {e}"));

    let dockerfile = std::fs::read_to_string(repo_root().join("Dockerfile")).unwrap();
    let json_array = |directive: &str| -> Vec<String> {
        let line = dockerfile.lines().find_map(|l| l.strip_prefix(directive)).unwrap_or_else(|| panic!("{directive}"));
        serde_json::from_str(line.trim()).unwrap()
    };
    let entrypoint = json_array("ENTRYPOINT");
    assert!(entrypoint[0].ends_with("/scimform"), "exec form, no shell: {entrypoint:?}");
    let words: Vec<String> = std::iter::once("scimform".to_owned()).chain(json_array("CMD")).collect();
    parses(&words).unwrap();
    assert!(dockerfile.contains("USER 65532"), "runs as a non-root user");
    // The `docker run` in its comment: the image's arguments after the image name.
    let run = dockerfile.lines().find(|l| l.contains("plan -f /etc/scimform")).expect("a docker run example");
    let words: Vec<String> =
        std::iter::once("scimform").chain(run.trim_start_matches('#').split_whitespace()).map(str::to_owned).collect();
    parses(&words).unwrap_or_else(|e| panic!("`{run}`: {e}"));
}
