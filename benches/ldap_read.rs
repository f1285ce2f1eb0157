//! Reads every user of the test Active Directory (see `benches/ldap-read.sh`, which starts Samba
//! and seeds 10,000 users) through the LDAP source, and reports wall time and peak memory; then
//! reads on from the last read's USN watermark, as a scheduled run with a state does.
// A benchmark program: it prints, reads /proc, and stops at the first failure.
#![allow(clippy::print_stdout, clippy::disallowed_methods, clippy::expect_used, clippy::cast_precision_loss)]

use std::collections::BTreeSet;
use std::time::Instant;

use scimform::manifest::model::{LdapConfig, LdapScope};
use scimform::secret::Secret;
use scimform::source::{LdapSource, Resume};

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
}

fn main() {
    let (Ok(url), Ok(bind_dn), Ok(password)) = (
        std::env::var("SCIMFORM_TEST_AD_URL"),
        std::env::var("SCIMFORM_TEST_AD_BIND_DN"),
        std::env::var("SCIMFORM_TEST_AD_PASSWORD"),
    ) else {
        println!("skipped: run benches/ldap-read.sh, which starts the test AD and sets SCIMFORM_TEST_AD_*");
        return;
    };
    let page_size = std::env::var("PAGE_SIZE").ok().and_then(|p| p.parse().ok()).unwrap_or(500);
    let config = LdapConfig {
        url,
        bind_dn,
        password: Secret::new(password),
        base_dn: "OU=Staff,DC=corp,DC=test".into(),
        filter: None,
        scope: LdapScope::Sub,
        page_size,
        starttls: false,
        ca_file: None,
        allow_insecure: false,
        timeout_seconds: 60,
    };
    let wanted: BTreeSet<String> =
        ["mail", "givenName", "sn", "displayName", "title", "department"].iter().map(|s| (*s).to_owned()).collect();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let before = peak_rss_kib().unwrap_or(0);
    for round in 1..=3 {
        let mut source = LdapSource::new("bench", config.clone(), &wanted);
        let started = Instant::now();
        let users = runtime.block_on(source.users()).expect("the test AD answers");
        let elapsed = started.elapsed();
        println!(
            "round {round}: {} users in {:.2} s ({:.0} users/s), page size {page_size}",
            users.len(),
            elapsed.as_secs_f64(),
            users.len() as f64 / elapsed.as_secs_f64()
        );
    }
    println!("peak RSS {} KiB (at start {before} KiB)", peak_rss_kib().unwrap_or(0));

    // Incremental: a full read leaves a cache; reading on from it finds what changed since.
    let mut first = LdapSource::new("bench", config.clone(), &wanted);
    runtime.block_on(first.users()).expect("the test AD answers");
    let mut cache = first.finish().expect("a cache after a read").cache;
    for round in 1..=3 {
        let mut source = LdapSource::new("bench", config.clone(), &wanted).resuming(Resume::From(Some(cache)));
        let started = Instant::now();
        let users = runtime.block_on(source.users()).expect("the test AD answers");
        let elapsed = started.elapsed();
        let read = source.finish().expect("a read");
        println!("incremental round {round}: {} users in {:.3} s; {}", users.len(), elapsed.as_secs_f64(), read.kind);
        cache = read.cache;
    }
}
