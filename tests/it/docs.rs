//! The documentation, run and checked: the README's walkthrough is executed command by command
//! against the embedded server `scimform demo --serve` starts, and the manifest reference names
//! every key the schema knows.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::common::{repo_root, run};

/// One step of a walkthrough: a file to write, or a command with the output lines it shows.
#[derive(Debug)]
enum Step {
    File { name: String, text: String },
    Command { line: String, shows: Vec<String> },
}

/// The steps of the README section `heading`: fenced blocks after `<!-- file: NAME -->` are
/// files; `console` blocks hold `$ ` commands, each followed by lines of its output.
fn walkthrough(readme: &str, heading: &str) -> Vec<Step> {
    let start = readme.find(heading).expect("the walkthrough section");
    let rest = &readme[start + heading.len()..];
    let section = &rest[..rest.find("\n## ").unwrap_or(rest.len())];
    let mut steps = Vec::new();
    let mut file: Option<String> = None;
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        if let Some(name) = line.strip_prefix("<!-- file: ").and_then(|l| l.strip_suffix(" -->")) {
            file = Some(name.to_owned());
            continue;
        }
        let Some(info) = line.strip_prefix("```") else { continue };
        let block: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        if let Some(name) = file.take() {
            steps.push(Step::File { name, text: block.join("\n") + "\n" });
        } else if info == "console" {
            for line in block {
                match line.strip_prefix("$ ") {
                    Some(command) => steps.push(Step::Command { line: command.to_owned(), shows: Vec::new() }),
                    None => {
                        if let Some(Step::Command { shows, .. }) = steps.last_mut() {
                            shows.push(line.trim().to_owned());
                        }
                    }
                }
            }
        }
    }
    steps
}

/// Stops the background server when the test ends, however it ends.
struct Background(std::process::Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_readme_walkthrough_runs_as_written() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let steps = walkthrough(&readme, "## Your first manifest");
    let commands = steps.iter().filter(|s| matches!(s, Step::Command { .. })).count();
    assert!(commands >= 7, "the walkthrough lost its commands: {steps:#?}");
    let dir = tempfile::tempdir().unwrap();
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    let mut server = None;
    for step in &steps {
        match step {
            Step::File { name, text } => std::fs::write(dir.path().join(name), text).unwrap(),
            Step::Command { line, shows } if line == "scimform demo --serve" => {
                let mut child = Command::new(env!("CARGO_BIN_EXE_scimform"))
                    .args(["demo", "--serve"])
                    .stdout(Stdio::piped())
                    .stdin(Stdio::null())
                    .spawn()
                    .unwrap();
                let stdout = child.stdout.take().unwrap();
                server = Some(Background(child));
                let mut printed = Vec::new();
                for printed_line in BufReader::new(stdout).lines() {
                    let printed_line = printed_line.unwrap();
                    if let Some((name, value)) =
                        printed_line.trim().strip_prefix("export ").and_then(|e| e.split_once('='))
                    {
                        env.insert(name.to_owned(), value.to_owned());
                    }
                    printed.push(printed_line.trim().to_owned());
                    if env.contains_key("SCIM_TOKEN") {
                        break;
                    }
                }
                for shown in shows {
                    let pattern = shown.split("PORT").next().unwrap_or_default();
                    assert!(
                        printed.iter().any(|p| p.starts_with(pattern)),
                        "`{line}` did not print `{shown}`: {printed:?}"
                    );
                }
            }
            Step::Command { line, shows } => {
                let args: Vec<&str> = line.split_whitespace().collect();
                assert_eq!(args[0], "scimform", "the walkthrough runs scimform only: {line}");
                let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let ran = run(dir.path(), &args[1..], &env);
                let expected_code = if line.contains("--detailed-exitcode") { 2 } else { 0 };
                assert_eq!(ran.code, expected_code, "`{line}`:\n{}", ran.all());
                let output: Vec<String> = ran.all().lines().map(|l| l.trim().to_owned()).collect();
                for shown in shows {
                    assert!(output.contains(shown), "`{line}` did not print `{shown}`:\n{}", ran.all());
                }
            }
        }
    }
    assert!(server.is_some(), "the walkthrough starts its target");
}

/// Every property name in the schema, at any depth.
fn schema_keys(value: &serde_json::Value, keys: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(object) => {
            if let Some(serde_json::Value::Object(properties)) = object.get("properties") {
                keys.extend(properties.keys().cloned());
            }
            for child in object.values() {
                schema_keys(child, keys);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| schema_keys(item, keys)),
        _ => {}
    }
}

#[test]
fn the_manifest_reference_names_every_key_of_the_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo_root().join("schema/manifest.schema.json")).unwrap())
            .unwrap();
    let mut keys = BTreeSet::new();
    schema_keys(&schema, &mut keys);
    assert!(keys.len() > 50, "the schema lost its properties: {keys:?}");
    let reference = std::fs::read_to_string(repo_root().join("docs/manifest.md")).unwrap();
    // The words inside code spans (a span may wrap): `client_certificate: { cert_file, key_file }`.
    let named: BTreeSet<&str> = reference
        .split('`')
        .skip(1)
        .step_by(2)
        .flat_map(|span| span.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .collect();
    let missing: Vec<&String> = keys.iter().filter(|key| !named.contains(key.as_str())).collect();
    assert!(missing.is_empty(), "docs/manifest.md does not name these keys of the schema: {missing:?}");
}

#[test]
fn every_page_the_readme_links_exists() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let mut linked = 0;
    for rest in readme.match_indices("](").map(|(i, _)| &readme[i + 2..]) {
        let target = &rest[..rest.find(')').unwrap_or(0)];
        if target.starts_with("http") || target.is_empty() {
            continue;
        }
        linked += 1;
        assert!(repo_root().join(target).exists(), "README links `{target}`, which does not exist");
    }
    assert!(linked >= 8, "{linked} links");
}
