//! The layering, read from the code's own `crate::` paths: the pure core imports no edge, no two
//! top-level modules import each other, and ARCHITECTURE.md names only paths that exist.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::common::repo_root;

/// Modules that do no I/O.
const PURE: &[&str] =
    &["yaml", "text", "causes", "manifest", "mapping", "scim", "record", "current", "desired", "plan", "secret"];
/// Modules that reach the outside world (or orchestrate those that do).
const EDGES: &[&str] = &[
    "source", "http", "service", "state", "apply", "pipeline", "commands", "lock", "progress", "tls", "cli",
    "settings", "signals", "metrics", "logging",
];

/// Each top-level module and the top-level modules its non-test code names as `crate::x`.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let src = repo_root().join("src");
    let mut pending = vec![src.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(&src).unwrap();
            let top =
                relative.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            // Test modules may reach anything.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let names = found.entry(top.clone()).or_default();
            for (index, _) in code.match_indices("crate::") {
                let rest = &code[index + "crate::".len()..];
                let name: String = rest.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                if !name.is_empty() && name != top {
                    names.insert(name);
                }
            }
        }
    }
    found
}

#[test]
fn the_pure_core_imports_no_edge() {
    let imports = imports();
    let mut wrong = Vec::new();
    for pure in PURE {
        for name in imports.get(*pure).into_iter().flatten() {
            if EDGES.contains(&name.as_str()) {
                wrong.push(format!("{pure} -> {name}"));
            }
        }
    }
    assert!(wrong.is_empty(), "pure modules importing edges: {wrong:?}");
    let known: BTreeSet<&str> = PURE.iter().chain(EDGES).copied().collect();
    let unclassified: Vec<&String> = imports.keys().filter(|m| !known.contains(m.as_str())).collect();
    let top_level = ["lib", "main", "report", "exit"];
    assert!(
        unclassified.iter().all(|m| top_level.contains(&m.as_str())),
        "classify these modules as pure or edge: {unclassified:?}"
    );
}

#[test]
fn no_two_top_level_modules_import_each_other() {
    let imports = imports();
    let mut cycles = Vec::new();
    for (module, names) in &imports {
        for name in names {
            if name > module && imports.get(name).is_some_and(|back| back.contains(module)) {
                cycles.push(format!("{module} <-> {name}"));
            }
        }
    }
    assert!(cycles.is_empty(), "{cycles:?}");
}

/// Every `src/…`, `tests/…` or `benches/…` path ARCHITECTURE.md names exists, and every file
/// it names inside a folder it maps exists there.
#[test]
fn architecture_md_names_only_paths_that_exist() {
    let root = repo_root();
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let mut missing = Vec::new();
    let mut checked = 0;
    for line in text.lines() {
        let mut folder: Option<&str> = None;
        for quoted in line.split('`').skip(1).step_by(2) {
            let named = quoted.trim_end_matches('/');
            if ["src/", "tests/", "benches/"].iter().any(|p| quoted.starts_with(p)) {
                checked += 1;
                if !root.join(named).exists() {
                    missing.push(named.to_owned());
                }
                folder = quoted.ends_with('/').then_some(named);
            } else if let Some(folder) = folder
                && Path::new(quoted).extension().is_some_and(|e| e == "rs")
                && !quoted.contains(' ')
            {
                checked += 1;
                if !root.join(folder).join(quoted).exists() {
                    missing.push(format!("{folder}/{quoted}"));
                }
            }
        }
    }
    assert!(checked > 20, "the map names the code: {checked} paths");
    assert!(missing.is_empty(), "ARCHITECTURE.md names paths that do not exist: {missing:?}");
}

/// Files that hold one idea stay small: no file in `src/` over 600 lines, tests included; and
/// no folder named `target` (tools take it for Cargo's build output and hide it).
#[test]
fn files_stay_small_and_no_folder_is_named_target() {
    let mut long = Vec::new();
    let mut pending = vec![repo_root().join("src")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                assert_ne!(path.file_name().unwrap(), "target", "{}", path.display());
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let lines = std::fs::read_to_string(&path).unwrap().lines().count();
                if lines > 600 {
                    long.push(format!("{} ({lines} lines)", path.display()));
                }
            }
        }
    }
    assert!(long.is_empty(), "{long:?}");
}
