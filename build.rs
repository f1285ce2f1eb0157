//! Stamps `--version` with the commit and the build date: the git commit when the source is a
//! git checkout (else `unknown`), and the date from `SOURCE_DATE_EPOCH` when set (reproducible
//! builds), else today.
#![allow(clippy::disallowed_methods, reason = "a build script is an edge: it reads git, the environment and the clock")]

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(|| "unknown".to_owned(), |c| c.trim().to_owned());
    let date = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .unwrap_or_else(jiff::Timestamp::now)
        .strftime("%Y-%m-%d");
    println!("cargo:rustc-env=SCIMFORM_COMMIT={commit}");
    println!("cargo:rustc-env=SCIMFORM_BUILD_DATE={date}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
}
