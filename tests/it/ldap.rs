//! The LDAP source against a real Active Directory: Samba's AD DC, started and seeded by
//! `scripts/samba/ad` (see `scripts/test`), which exports the `SCIMFORM_TEST_AD_*` variables.

use std::collections::BTreeSet;
use std::path::PathBuf;

use scimform::manifest::model::{GroupSelector, LdapConfig, LdapScope};
use scimform::secret::Secret;
use scimform::source::{AttrValue, LdapSource, SourceGroup, SourceRecord};

pub struct Ad {
    pub url: String,
    pub ldaps_url: String,
    pub bind_dn: String,
    pub password: String,
    pub ca_file: PathBuf,
    pub other_ca_file: PathBuf,
    pub users: usize,
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the suite with `scripts/test`, which starts Samba's AD DC on 127.0.0.1")
    })
}

pub fn ad() -> Ad {
    Ad {
        url: var("SCIMFORM_TEST_AD_URL"),
        ldaps_url: var("SCIMFORM_TEST_AD_LDAPS_URL"),
        bind_dn: var("SCIMFORM_TEST_AD_BIND_DN"),
        password: var("SCIMFORM_TEST_AD_PASSWORD"),
        ca_file: var("SCIMFORM_TEST_AD_CA_FILE").into(),
        other_ca_file: var("SCIMFORM_TEST_AD_OTHER_CA_FILE").into(),
        users: var("SCIMFORM_TEST_AD_USERS").parse().unwrap(),
    }
}

pub const DOMAIN: &str = "DC=corp,DC=test";

pub fn config(ad: &Ad, base_dn: &str) -> LdapConfig {
    LdapConfig {
        url: ad.url.clone(),
        bind_dn: ad.bind_dn.clone(),
        password: Secret::new(ad.password.clone()),
        base_dn: base_dn.to_owned(),
        filter: None,
        scope: LdapScope::Sub,
        page_size: 500,
        starttls: false,
        ca_file: None,
        allow_insecure: false,
        timeout_seconds: 30,
    }
}

fn source(config: LdapConfig, wanted: &[&str]) -> LdapSource {
    let wanted: BTreeSet<String> = wanted.iter().map(|s| (*s).to_owned()).collect();
    LdapSource::new("corp_ad", config, &wanted)
}

fn text<'a>(record: &'a SourceRecord, name: &str) -> Option<&'a str> {
    match record.get(name) {
        Some(AttrValue::Text(t)) => Some(t),
        _ => None,
    }
}

#[tokio::test]
async fn reads_every_user_in_pages_with_only_the_mapped_attributes() {
    let ad = ad();
    let users = source(config(&ad, &format!("OU=Staff,{DOMAIN}")), &["mail", "givenName", "sn"]).users().await.unwrap();
    assert_eq!(users.len(), ad.users, "every user, and no computer account");
    assert_eq!(users.iter().filter(|u| u.disabled).count(), ad.users / 10, "every 10th seeded user is disabled");
    let ids: BTreeSet<&str> = users.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids.len(), users.len(), "objectGUIDs are unique");
    let u42 = users.iter().find(|u| text(u, "mail") == Some("User00042@corp.test")).unwrap();
    assert_eq!(text(u42, "givenName"), Some("Given42"));
    assert_eq!(u42.get("title"), None, "`title` is not mapped, so it is not requested");
    assert!(
        users.iter().all(|u| !text(u, "dn").unwrap_or_default().starts_with("CN=WS")),
        "computers are filtered out"
    );
}

/// From the domain root AD answers with search references (Configuration, DNS zones); they are
/// skipped, not a failure.
#[tokio::test]
async fn search_references_from_the_domain_root_are_skipped() {
    let ad = ad();
    let mut config = config(&ad, DOMAIN);
    config.filter = Some("(|(sAMAccountName=user00042)(sAMAccountName=outsider))".into());
    let users = source(config, &["mail"]).users().await.unwrap();
    let mut mails: Vec<&str> = users.iter().filter_map(|u| text(u, "mail")).collect();
    mails.sort_unstable();
    assert_eq!(mails, ["User00042@corp.test", "outsider@corp.test"]);
}

/// The GUID as `ldapsearch` shows it (base64 of the raw bytes), converted independently by
/// Python's `uuid.UUID(bytes_le=...)`.
#[tokio::test]
async fn object_guid_is_in_canonical_form() {
    let ad = ad();
    let output = std::process::Command::new("ldapsearch")
        .args([
            "-LLL",
            "-x",
            "-H",
            &ad.url,
            "-D",
            &ad.bind_dn,
            "-w",
            &ad.password,
            "-b",
            &format!("OU=Staff,{DOMAIN}"),
            "(sAMAccountName=user00010)",
            "objectGUID",
        ])
        .output()
        .unwrap();
    let ldif = String::from_utf8(output.stdout).unwrap();
    let b64 = ldif.lines().find_map(|l| l.strip_prefix("objectGUID:: ")).unwrap().trim().to_owned();
    let script = format!("import base64, uuid; print(uuid.UUID(bytes_le=base64.b64decode('{b64}')))");
    let expected = std::process::Command::new("python3").args(["-c", &script]).output().unwrap();
    let expected = String::from_utf8(expected.stdout).unwrap().trim().to_owned();
    let mut config = config(&ad, &format!("OU=Staff,{DOMAIN}"));
    config.filter = Some("(sAMAccountName=user00010)".into());
    let users = source(config, &["objectSid"]).users().await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].id, expected);
    assert!(users[0].disabled, "user00010 is disabled (userAccountControl 514)");
    assert!(text(&users[0], "objectSid").unwrap().starts_with("S-1-5-21-"), "{:?}", users[0].get("objectSid"));
}

#[tokio::test]
async fn reads_a_3000_member_group_through_ranged_retrieval() {
    let ad = ad();
    let mut source = source(config(&ad, &format!("OU=Staff,{DOMAIN}")), &["mail"]);
    let users = source.users().await.unwrap();
    let group = source.group(&GroupSelector::Name("Big Group".into()), false).await.unwrap();
    assert_eq!(group.name, "Big Group");
    assert_eq!(group.members.len(), 3000, "two full windows of 1,500 and the rest");
    let ids: BTreeSet<&str> = users.iter().map(|u| u.id.as_str()).collect();
    assert!(group.members.iter().all(|m| ids.contains(m.id.as_str())), "every member resolves to a user record");
    // By DN and by sAMAccountName too.
    let by_dn = source.group(&GroupSelector::Dn(format!("CN=Big Group,OU=Groups,{DOMAIN}")), false).await.unwrap();
    let by_sam = source.group(&GroupSelector::Name("big-group".into()), false).await.unwrap();
    assert_eq!((by_dn.members.len(), by_sam.members.len()), (3000, 3000));
}

/// Members by mail, and unresolved members by DN, sorted.
fn mails(group: &SourceGroup) -> Vec<String> {
    let mut out: Vec<String> = group.members.iter().filter_map(|m| text(m, "mail")).map(str::to_owned).collect();
    out.extend(group.unresolved.iter().cloned());
    out.sort();
    out
}

#[tokio::test]
async fn expands_nested_groups_and_survives_a_cycle() {
    let ad = ad();
    let mut source = source(config(&ad, &format!("OU=Staff,{DOMAIN}")), &["mail"]);

    let nested = source.group(&GroupSelector::Name("Parent".into()), true).await.unwrap();
    assert_eq!(mails(&nested), ["User09990@corp.test", "User09991@corp.test", "User09992@corp.test"]);
    let direct = source.group(&GroupSelector::Name("Parent".into()), false).await.unwrap();
    assert_eq!(mails(&direct), [format!("CN=Child,OU=Groups,{DOMAIN}"), "User09990@corp.test".to_owned()]);
}

/// Several groups read at once (a connection each) are each what reading it alone gives, in the
/// order asked, and a group that does not exist fails alone.
#[tokio::test]
async fn several_groups_read_at_once_are_each_what_one_read_gives() {
    let ad = ad();
    let wanted = [
        (GroupSelector::Name("Big Group".into()), false),
        (GroupSelector::Name("Parent".into()), true),
        (GroupSelector::Name("No Such Group".into()), false),
        (GroupSelector::Name("Mixed".into()), true),
        (GroupSelector::Name("Parent".into()), false),
    ];
    let mut together = source(config(&ad, &format!("OU=Staff,{DOMAIN}")), &["mail"]);
    let read = together.groups(&wanted).await.unwrap();
    assert_eq!(read.len(), wanted.len());
    let mut alone = source(config(&ad, &format!("OU=Staff,{DOMAIN}")), &["mail"]);
    for ((selector, nested), got) in wanted.iter().zip(read) {
        match (alone.group(selector, *nested).await, got) {
            (Ok(one), Ok(got)) => assert_eq!((&one.id, mails(&one)), (&got.id, mails(&got)), "{selector}"),
            (Err(one), Err(got)) => assert_eq!(one.to_string(), got.to_string()),
            (one, got) => panic!("{selector}: alone {one:?}, together {got:?}"),
        }
    }
}

#[tokio::test]
async fn members_outside_the_user_search_are_reported_not_invented() {
    let ad = ad();
    let mut source = source(config(&ad, &format!("OU=Staff,{DOMAIN}")), &["mail"]);

    let group = source.group(&GroupSelector::Name("Mixed".into()), true).await.unwrap();
    assert_eq!(
        mails(&group),
        [
            format!("CN=Outsider,OU=Outside,{DOMAIN}"),
            format!("CN=WS00,OU=Staff,{DOMAIN}"),
            "User00001@corp.test".to_owned()
        ]
    );
}

/// RFC 4515: `*`, `(`, `)` and `\` in a value are escaped, so each name finds exactly itself.
#[tokio::test]
async fn filter_values_are_escaped() {
    let ad = ad();
    let mut source = source(config(&ad, &format!("OU=Staff,{DOMAIN}")), &["mail"]);

    for (name, member) in
        [("Ops*(x)\\y", "User00013@corp.test"), ("Ops*", "User00012@corp.test"), ("Ops", "User00011@corp.test")]
    {
        let group = source.group(&GroupSelector::Name(name.into()), false).await.unwrap();
        assert_eq!(group.name, name);
        assert_eq!(mails(&group), [member], "{name}");
    }
    let error = source.group(&GroupSelector::Name("Op*".into()), false).await.unwrap_err();
    assert_eq!(error.to_string(), "source `corp_ad`: no group matches name `Op*`");
}

#[tokio::test]
async fn ldaps_and_starttls_verify_the_server_with_the_given_ca() {
    let ad = ad();
    let mut ldaps = config(&ad, &format!("OU=Outside,{DOMAIN}"));
    ldaps.url = ad.ldaps_url.clone();
    ldaps.ca_file = Some(ad.ca_file.clone());
    assert_eq!(source(ldaps.clone(), &["mail"]).users().await.unwrap().len(), 1);

    let mut starttls = config(&ad, &format!("OU=Outside,{DOMAIN}"));
    starttls.starttls = true;
    starttls.ca_file = Some(ad.ca_file.clone());
    assert_eq!(source(starttls, &["mail"]).users().await.unwrap().len(), 1);

    ldaps.ca_file = Some(ad.other_ca_file.clone());
    let error = source(ldaps, &["mail"]).users().await.unwrap_err();
    let message = format!(
        "{error}: {}; {}",
        std::error::Error::source(&error).map(ToString::to_string).unwrap_or_default(),
        error.hint().unwrap_or_default()
    );
    assert!(message.starts_with(&format!("source `corp_ad`: cannot connect to `{}`", ad.ldaps_url)), "{message}");
    assert!(message.contains("ca_file"), "{message}");
    assert!(message.to_lowercase().contains("unknownissuer") || message.contains("UnknownIssuer"), "{message}");
}

#[tokio::test]
async fn each_failure_names_the_source_and_what_to_check() {
    let ad = ad();
    let staff = format!("OU=Staff,{DOMAIN}");
    let mut wrong_password = config(&ad, &staff);
    wrong_password.password = Secret::new("not-the-password");
    let mut unreachable = config(&ad, &staff);
    unreachable.url = "ldap://127.0.0.1:1".into();
    unreachable.timeout_seconds = 5;
    let no_base = config(&ad, &format!("OU=Nope,{DOMAIN}"));
    let mut bad_filter = config(&ad, &staff);
    bad_filter.filter = Some("(objectClass=user".into());
    let mut insecure = config(&ad, &staff);
    insecure.url = "ldap://192.0.2.10".into(); // refused before any packet is sent
    let cases = [
        (
            wrong_password,
            "source `corp_ad`: bind as `Administrator@corp.test` to `ldap://127.0.0.1:389` failed; check `bind_dn`",
        ),
        (
            unreachable,
            "source `corp_ad`: cannot connect to `ldap://127.0.0.1:1`; check that the host and port are right",
        ),
        (no_base, "source `corp_ad`: the base DN `OU=Nope,DC=corp,DC=test` does not exist; check `base_dn`"),
        (bad_filter, "source `corp_ad`: the filter `(objectClass=user` is malformed; check the parentheses"),
        (insecure, "source `corp_ad`: refusing a simple bind over unencrypted `ldap://192.0.2.10`"),
    ];
    for (config, expected) in cases {
        let error = source(config, &["mail"]).users().await.unwrap_err();
        // The hint is data, said after the message.
        let error = format!("{error}; {}", error.hint().unwrap_or_default());
        assert!(error.starts_with(expected), "{error}\n  expected: {expected}");
        assert!(!error.contains(&ad.password) && !error.contains("not-the-password"));
    }
}

/// The administrator's connection, for tests that change the directory.
pub async fn admin() -> ldap3::Ldap {
    let ad = ad();
    let (conn, mut ldap) = ldap3::LdapConnAsync::new(&ad.url).await.unwrap();
    tokio::spawn(async move { conn.drive().await });
    ldap.simple_bind(&ad.bind_dn, &ad.password).await.unwrap().success().unwrap();
    ldap
}

/// A new OU of this test's own, so tests that write do not disturb the others.
pub async fn fresh_ou(ldap: &mut ldap3::Ldap, prefix: &str) -> String {
    let unique = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    );
    let ou = format!("OU={prefix}-{unique},{DOMAIN}");
    ldap.add(&ou, vec![("objectClass", std::collections::HashSet::from(["organizationalUnit"]))])
        .await
        .unwrap()
        .success()
        .unwrap();
    ou
}

/// Adds enabled users `CN=<given>,<ou>` whose sAMAccountName and mail are `<prefix><the OU's
/// last 8 digits><given>` (unique in the domain), with `title: Agent`; returns their DNs and the
/// digits.
pub async fn add_people(ldap: &mut ldap3::Ldap, ou: &str, prefix: &str, names: &[&str]) -> (Vec<String>, String) {
    let digits: String = ou[..ou.find(',').unwrap()].chars().rev().take(8).collect();
    let mut dns = Vec::new();
    for given in names {
        let dn = format!("CN={given},{ou}");
        let sam = format!("{prefix}{digits}{given}");
        let mail = format!("{sam}@corp.test");
        let attributes = vec![
            ("objectClass", std::collections::HashSet::from(["user"])),
            ("sAMAccountName", std::collections::HashSet::from([sam.as_str()])),
            ("mail", std::collections::HashSet::from([mail.as_str()])),
            ("title", std::collections::HashSet::from(["Agent"])),
            // NORMAL_ACCOUNT | PASSWD_NOTREQD: enabled.
            ("userAccountControl", std::collections::HashSet::from(["544"])),
        ];
        ldap.add(&dn, attributes).await.unwrap().success().unwrap();
        dns.push(dn);
    }
    (dns, digits)
}

/// A manifest reading the users under `ou` of the test AD into the SCIM service at `base_url`;
/// `users_tail` ends its `users` section (after `attributes: userName`).
pub fn ad_manifest(ad: &Ad, ou: &str, base_url: &str, users_tail: &str) -> String {
    format!(
        r#"version: 1
sources:
  corp_ad:
    kind: ldap
    url: {url}
    bind_dn: {bind_dn}
    password: ${{env:AD_PASSWORD}}
    base_dn: "{ou}"
target:
  kind: scim
  base_url: {base_url}
  auth: {{ bearer_token: "${{env:SCIM_TOKEN}}" }}
users:
  source: corp_ad
  external_id: "{{{{ objectGUID }}}}"
  attributes:
    userName: "{{{{ mail | lower }}}}"
{users_tail}"#,
        url = ad.url,
        bind_dn = ad.bind_dn,
    )
}

/// Incremental reads: the domain controller's USNs, against the real thing.
mod incremental {
    use std::collections::HashSet;

    use ldap3::Mod;
    use scimform::manifest::model::GroupSelector;
    use scimform::source::{LdapSource, ReadKind};

    use super::{ad, admin, config, fresh_ou, source, text};

    async fn add_user(ldap: &mut ldap3::Ldap, ou: &str, cn: &str, title: &str) -> String {
        let dn = format!("CN={cn},{ou}");
        // sAMAccountName is unique in the domain and at most 20 characters: the OU's last digits.
        let digits = &ou[..ou.find(',').unwrap()];
        let sam = format!("i{}{}", &digits[digits.len() - 8..], cn.to_ascii_lowercase());
        let mail = format!("{}@corp.test", cn.to_ascii_lowercase());
        ldap.add(
            &dn,
            vec![
                ("objectClass", HashSet::from(["user"])),
                ("sAMAccountName", HashSet::from([sam.as_str()])),
                ("mail", HashSet::from([mail.as_str()])),
                ("title", HashSet::from([title])),
            ],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
        dn
    }

    fn fresh(ou: &str) -> LdapSource {
        source(config(&ad(), ou), &["mail", "title"])
    }

    /// Reads the users and the group with `cache` from the last run; returns what it read,
    /// how, and the cache for the next run.
    async fn run(
        ou: &str,
        group: &GroupSelector,
        cache: Option<scimform::source::SourceCache>,
    ) -> (Vec<scimform::source::SourceRecord>, scimform::source::SourceGroup, ReadKind, scimform::source::SourceCache)
    {
        let mut source = fresh(ou).resuming(scimform::source::Resume::From(cache));
        let users = source.users().await.unwrap();
        let group = source.group(group, true).await.unwrap();
        let read = source.finish().unwrap();
        (users.to_vec(), group, read.kind, read.cache)
    }

    /// What a full read finds now, to compare an incremental read with.
    async fn truth(ou: &str, group: &GroupSelector) -> (Vec<scimform::source::SourceRecord>, Vec<String>) {
        let (users, group, kind, _) = run(ou, group, None).await;
        assert!(matches!(kind, ReadKind::Full { reason: None, .. }), "{kind:?}");
        (users, group.members.iter().map(|m| m.id.clone()).collect())
    }

    #[tokio::test]
    async fn reads_only_what_changed_and_notices_who_left() {
        let mut ldap = admin().await;
        let ou = fresh_ou(&mut ldap, "Incr").await;
        let ann = add_user(&mut ldap, &ou, "Ann", "Agent").await;
        let bob = add_user(&mut ldap, &ou, "Bob", "Agent").await;
        let cy = add_user(&mut ldap, &ou, "Cy", "Agent").await;
        let inner = format!("CN=Inner,{ou}");
        ldap.add(&inner, vec![("objectClass", HashSet::from(["group"])), ("member", HashSet::from([bob.as_str()]))])
            .await
            .unwrap()
            .success()
            .unwrap();
        let team_dn = format!("CN=Team,{ou}");
        ldap.add(
            &team_dn,
            vec![("objectClass", HashSet::from(["group"])), ("member", HashSet::from([ann.as_str(), inner.as_str()]))],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
        let team = GroupSelector::Dn(team_dn.clone());

        let (users, group, kind, cache) = run(&ou, &team, None).await;
        assert_eq!(kind, ReadKind::Full { entries: 3, reason: None });
        assert_eq!((users.len(), group.members.len()), (3, 2), "Ann, and Bob through the nested group");

        // One title changes: the next run reads that entry, not all; the group is rebuilt
        // from the records, not read again, and shows the new title.
        ldap.modify(&ann, vec![Mod::Replace("title", HashSet::from(["Team Lead"]))]).await.unwrap().success().unwrap();
        let (users, group, kind, cache) = run(&ou, &team, Some(cache)).await;
        assert_eq!(kind, ReadKind::Incremental { changed: 1, removed: 0, groups_read: 0, groups_reused: 1 });
        let (all, members) = truth(&ou, &team).await;
        assert_eq!(users, all, "the incremental read equals a full read");
        assert_eq!(group.members.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), members);
        let ann_now = group.members.iter().find(|m| text(m, "mail") == Some("ann@corp.test")).unwrap();
        assert_eq!(text(ann_now, "title"), Some("Team Lead"));

        // Bob (a nested member) is deleted and Cy joins the nested group: Bob's tombstone says he
        // left; the nested group changed, so the group is read again.
        ldap.delete(&bob).await.unwrap().success().unwrap();
        ldap.modify(&inner, vec![Mod::Add("member", HashSet::from([cy.as_str()]))]).await.unwrap().success().unwrap();
        let (users, group, kind, cache) = run(&ou, &team, Some(cache)).await;
        assert_eq!(kind, ReadKind::Incremental { changed: 0, removed: 1, groups_read: 1, groups_reused: 0 });
        let (all, members) = truth(&ou, &team).await;
        assert_eq!(users, all);
        let mut got: Vec<String> = group.members.iter().map(|m| m.id.clone()).collect();
        got.sort();
        let mut want = members.clone();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(group.members.len(), 2, "Ann and Cy");

        // Nothing changed: nothing read, the group reused.
        let (_, _, kind, cache) = run(&ou, &team, Some(cache)).await;
        assert_eq!(kind, ReadKind::Incremental { changed: 0, removed: 0, groups_read: 0, groups_reused: 1 });

        // Another invocationID (a restored database, or another DC answering): a full read.
        let mut restored = cache.clone();
        restored.watermark["invocation_id"] = serde_json::json!("00000000-0000-0000-0000-000000000000");
        let (users, _, kind, _) = run(&ou, &team, Some(restored)).await;
        match kind {
            ReadKind::Full { entries: 2, reason: Some(reason) } => {
                assert!(reason.contains("invocationID changed (00000000-0000-0000-0000-000000000000 -> "), "{reason}");
            }
            other => panic!("expected a full read, got {other:?}"),
        }
        assert_eq!(users.len(), 2);

        // A last read older than the tombstone lifetime (AD's default, 180 days): a full read.
        let mut stale = cache.clone();
        let read_at = stale.watermark["read_at"].as_u64().unwrap();
        stale.watermark["read_at"] = serde_json::json!(read_at - 181 * 86_400);
        let (_, _, kind, _) = run(&ou, &team, Some(stale)).await;
        match kind {
            ReadKind::Full { entries: 2, reason: Some(reason) } => {
                assert!(reason.contains("the last read was 181 days ago"), "{reason}");
                assert!(reason.contains("tombstone lifetime (180 days)"), "{reason}");
            }
            other => panic!("expected a full read, got {other:?}"),
        }
    }
}

mod end_to_end {
    use std::collections::HashSet;

    use ldap3::Mod;
    use scimform::service::memory::{MemoryServer, MemoryStore};

    use super::{DOMAIN, ad, admin};
    use crate::common::{run_async, workspace};

    /// NORMAL_ACCOUNT | PASSWD_NOTREQD; with ACCOUNTDISABLE (0x2) added, a disabled account.
    const ENABLED: &str = "544";
    const DISABLED: &str = "546";

    #[tokio::test]
    async fn ad_to_scim_converges_and_a_disabled_account_is_one_patch() {
        let ad = ad();
        let mut ldap = admin().await;
        let unique = format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        );
        let ou = format!("OU=E2E-{unique},{DOMAIN}");
        ldap.add(&ou, vec![("objectClass", HashSet::from(["organizationalUnit"]))]).await.unwrap().success().unwrap();
        let mut dns = Vec::new();
        for (sam, given, sn, title) in
            [("e2e-ann", "Ann", "Lee", "Agent"), ("e2e-bob", "Bob", "Ek", "Lead"), ("e2e-cy", "Cy", "Do", "Agent")]
        {
            let dn = format!("CN={given} {sn},{ou}");
            let sam = format!("{sam}-{}", &unique[unique.len() - 6..]);
            let mail = format!("{sam}@corp.test");
            ldap.add(
                &dn,
                vec![
                    ("objectClass", HashSet::from(["user"])),
                    ("sAMAccountName", HashSet::from([sam.as_str()])),
                    ("mail", HashSet::from([mail.as_str()])),
                    ("givenName", HashSet::from([given])),
                    ("sn", HashSet::from([sn])),
                    ("title", HashSet::from([title])),
                    ("userAccountControl", HashSet::from([ENABLED])),
                ],
            )
            .await
            .unwrap()
            .success()
            .unwrap();
            dns.push(dn);
        }
        let team = format!("CN=Team,{ou}");
        ldap.add(
            &team,
            vec![
                ("objectClass", HashSet::from(["group"])),
                ("member", HashSet::from([dns[0].as_str(), dns[1].as_str()])),
            ],
        )
        .await
        .unwrap()
        .success()
        .unwrap();

        let mut store = MemoryStore::new(Some("tok"));
        store.insert_group("E2E Team", &[]);
        let server = MemoryServer::start(store).await.unwrap();
        let manifest = format!(
            r#"version: 1
sources:
  corp_ad:
    kind: ldap
    url: {url}
    bind_dn: {bind_dn}
    password: ${{env:AD_PASSWORD}}
    base_dn: "{ou}"
    page_size: 2
target:
  kind: scim
  base_url: {base_url}
  auth: {{ bearer_token: "${{env:SCIM_TOKEN}}" }}
users:
  source: corp_ad
  external_id: "{{{{ objectGUID }}}}"
  attributes:
    userName: "{{{{ mail | lower }}}}"
    displayName: "{{{{ givenName }}}} {{{{ sn }}}}"
    name.givenName: givenName
    name.familyName: sn
    title: title
groups:
  - name: Team
    source: corp_ad
    from: {{ dn: "{team}" }}
    to: {{ display_name: E2E Team }}
"#,
            url = ad.url,
            bind_dn = ad.bind_dn,
            base_url = server.base_url(),
        );
        let dir = workspace(&[("ad.yaml", &manifest)]);
        let env = [("AD_PASSWORD", ad.password.as_str()), ("SCIM_TOKEN", "tok")];

        let first = run_async(dir.path(), &["apply", "-f", "ad.yaml", "--auto-approve"], &env).await;
        assert_eq!(first.code, 0, "{}", first.all());
        assert!(
            first
                .stdout
                .contains("Plan: 3 to create, 0 to update, 0 to adopt, 0 to disable, 0 to delete, 1 group to change."),
            "{}",
            first.stdout
        );
        assert_eq!(server.group_members("E2E Team").len(), 2);

        server.reset_writes();
        let second = run_async(dir.path(), &["plan", "-f", "ad.yaml", "--detailed-exitcode"], &env).await;
        assert_eq!(
            (second.code, second.stdout.as_str()),
            (0, "No changes. The target matches the manifest.\n"),
            "{}",
            second.stderr
        );

        ldap.modify(&dns[1], vec![Mod::Replace("userAccountControl", HashSet::from([DISABLED]))])
            .await
            .unwrap()
            .success()
            .unwrap();
        let third = run_async(dir.path(), &["apply", "-f", "ad.yaml", "--auto-approve"], &env).await;
        assert_eq!(third.code, 0, "{}", third.all());
        assert!(
            third
                .stdout
                .contains("Plan: 0 to create, 0 to update, 0 to adopt, 1 to disable, 0 to delete, 0 groups to change."),
            "{}",
            third.stdout
        );
        assert_eq!(server.writes(), 1, "exactly one write: the PATCH that sets active=false");
        let bob = server.users().into_iter().find(|u| u["name"]["givenName"] == "Bob").unwrap();
        assert_eq!(bob["active"], false);
    }

    /// The scheduled run against AD with a state file: the first run reads everything and fills
    /// the state; a run with nothing to do reads no user entry and sends nothing to the target;
    /// one changed title is one entry read and one PATCH.
    #[tokio::test]
    async fn ad_runs_with_a_state_file_read_only_what_changed() {
        let ad = ad();
        let mut ldap = admin().await;
        let ou = super::fresh_ou(&mut ldap, "E2EState").await;
        let (dns, _) = super::add_people(&mut ldap, &ou, "s", &["Ann", "Bob"]).await;
        let server = MemoryServer::start(MemoryStore::new(Some("tok"))).await.unwrap();
        let manifest = super::ad_manifest(&ad, &ou, server.base_url(), "    title: title\n");
        let dir = workspace(&[("ad.yaml", &manifest)]);
        let env = [("AD_PASSWORD", ad.password.as_str()), ("SCIM_TOKEN", "tok")];
        let apply = ["apply", "-f", "ad.yaml", "--auto-approve", "--state", "state.db", "-v"];

        let first = run_async(dir.path(), &apply, &env).await;
        assert_eq!(first.code, 0, "{}", first.all());
        assert!(first.stderr.contains("Source `corp_ad` read in full (2 users)."), "{}", first.stderr);

        server.reset_writes();
        let idle = run_async(dir.path(), &apply, &env).await;
        assert_eq!(idle.code, 0, "{}", idle.all());
        assert!(idle.stdout.contains("No changes."), "{}", idle.stdout);
        assert!(idle.stderr.contains("Source `corp_ad` read incrementally: 0 changed user(s) read"), "{}", idle.stderr);
        let requests: Vec<&str> = idle.stderr.lines().filter(|l| l.contains(" -> ")).collect();
        assert_eq!(requests, [" INFO GET /Users -> 200"], "the one request: how many users (count=0): {}", idle.stderr);

        // That run changed nothing: while the domain controller's position stays where it was,
        // the next run's plan stands without a user search. (Other tests write to this AD at
        // the same time and move it: a run that plans in full settles again, so a few tries.)
        let mut stood = None;
        for _ in 0..20 {
            let run = run_async(dir.path(), &apply, &env).await;
            assert_eq!(run.code, 0, "{}", run.all());
            if run.stderr.contains("whose plan stands") {
                stood = Some(run);
                break;
            }
        }
        let stood = stood.expect("a run with AD as it was");
        assert!(!stood.stderr.contains("Source `corp_ad` read"), "no user search: {}", stood.stderr);
        let requests: Vec<&str> = stood.stderr.lines().filter(|l| l.contains(" -> ")).collect();
        assert_eq!(requests, [" INFO GET /Users -> 200"], "{}", stood.stderr);
        assert_eq!(stood.stdout, "No changes. The target matches the manifest.\n");

        // A write to AD moves its position: the next run reads what changed, whatever stood.
        ldap.modify(&dns[1], vec![Mod::Replace("title", HashSet::from(["Lead"]))]).await.unwrap().success().unwrap();
        let one = run_async(dir.path(), &apply, &env).await;
        assert_eq!(one.code, 0, "{}", one.all());
        assert!(one.stderr.contains("Source `corp_ad` read incrementally: 1 changed user(s) read"), "{}", one.stderr);
        assert_eq!(server.writes(), 1, "one PATCH: {}", one.all());
        let bob = server.users().into_iter().find(|u| u["title"] == "Lead");
        assert!(bob.is_some(), "{:?}", server.users());

        // `--refresh` reads the directory in full again.
        let full = run_async(dir.path(), &[&apply[..], &["--refresh"]].concat(), &env).await;
        assert!(full.stderr.contains("Source `corp_ad` read in full (2 users)."), "{}", full.stderr);
    }

    /// The old scripts' bug, not repeated: a write that fails is not forgotten when the
    /// watermark moves. The run after it reads nothing new from AD, yet plans the refused create
    /// again (from every record, against the target read in full) and sends it.
    #[tokio::test]
    async fn a_failed_write_is_planned_again_although_the_watermark_moved() {
        use wiremock::matchers::{method, path};
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let ad = ad();
        let mut ldap = admin().await;
        let ou = super::fresh_ou(&mut ldap, "E2EFail").await;
        let digits: String = ou[..ou.find(',').unwrap()].chars().rev().take(8).collect();
        let sam = format!("f{digits}");
        let mail = format!("{sam}@corp.test");
        let attributes = vec![
            ("objectClass", HashSet::from(["user"])),
            ("sAMAccountName", HashSet::from([sam.as_str()])),
            ("mail", HashSet::from([mail.as_str()])),
            ("userAccountControl", HashSet::from([ENABLED])),
        ];
        ldap.add(&format!("CN=Fay,{ou}"), attributes).await.unwrap().success().unwrap();

        let target = MockServer::start().await;
        let empty = serde_json::json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 0, "Resources": []});
        Mock::given(method("GET"))
            .and(path("/Users"))
            .respond_with(ResponseTemplate::new(200).set_body_json(empty))
            .mount(&target)
            .await;
        let refused = serde_json::json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "400", "detail": "try later"});
        Mock::given(method("POST"))
            .and(path("/Users"))
            .respond_with(ResponseTemplate::new(400).set_body_json(refused))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&target)
            .await;
        Mock::given(method("POST"))
            .and(path("/Users"))
            .respond_with(
                ResponseTemplate::new(201).set_body_json(serde_json::json!({"id": "fay-1", "userName": mail})),
            )
            .with_priority(2)
            .expect(1)
            .mount(&target)
            .await;
        let manifest = format!(
            "version: 1\nsources:\n  corp_ad:\n    kind: ldap\n    url: {url}\n    bind_dn: {bind_dn}\n    password: ${{env:AD_PASSWORD}}\n    base_dn: \"{ou}\"\ntarget:\n  kind: scim\n  base_url: {base}\n  auth: {{ bearer_token: t }}\nusers:\n  source: corp_ad\n  external_id: \"{{{{ objectGUID }}}}\"\n  attributes:\n    userName: \"{{{{ mail | lower }}}}\"\n",
            url = ad.url,
            bind_dn = ad.bind_dn,
            base = target.uri()
        );
        let dir = workspace(&[("ad.yaml", &manifest)]);
        let env = [("AD_PASSWORD", ad.password.as_str())];
        let apply = ["apply", "-f", "ad.yaml", "--auto-approve"];
        let failed = run_async(dir.path(), &apply, &env).await;
        assert_eq!(failed.code, 1, "{}", failed.all());
        assert!(failed.stderr.contains("read in full (1 users)"), "{}", failed.stderr);

        let retried = run_async(dir.path(), &apply, &env).await;
        assert_eq!(retried.code, 0, "{}", retried.all());
        assert!(retried.stderr.contains("read incrementally: 0 changed user(s) read"), "{}", retried.stderr);
        assert!(retried.stdout.contains("Plan: 1 to create"), "the refused create, again: {}", retried.stdout);
    }
}

/// `users.scope.member_of` against the real AD: the user search carries AD's in-chain filter,
/// and incremental runs notice a member leaving and coming back although the user object is not
/// touched by either.
mod scope {
    use std::collections::HashSet;

    use ldap3::Mod;
    use scimform::service::memory::{MemoryServer, MemoryStore};

    use super::{ad, ad_manifest, add_people, admin, fresh_ou};
    use crate::common::{run_async, workspace};

    #[tokio::test]
    async fn a_nested_ad_group_scopes_the_users_and_leaving_it_disables_exactly_that_user() {
        let ad = ad();
        let mut ldap = admin().await;
        let ou = fresh_ou(&mut ldap, "Scope").await;
        let (dns, digits) = add_people(&mut ldap, &ou, "c", &["Ann", "Bob", "Cy"]).await;
        let inner = format!("CN=Inner,{ou}");
        let members = HashSet::from([dns[0].as_str(), dns[1].as_str()]);
        ldap.add(&inner, vec![("objectClass", HashSet::from(["group"])), ("member", members)])
            .await
            .unwrap()
            .success()
            .unwrap();
        // Found by name across the domain: unique to this run.
        let agents_name = format!("CC Agents {digits}");
        let agents = format!("CN={agents_name},{ou}");
        ldap.add(&agents, vec![("objectClass", HashSet::from(["group"])), ("member", HashSet::from([inner.as_str()]))])
            .await
            .unwrap()
            .success()
            .unwrap();
        let server = MemoryServer::start(MemoryStore::new(Some("tok"))).await.unwrap();
        let scope = format!(
            "  scope:\n    member_of:\n      - {{ source: corp_ad, group: {{ name: \"{agents_name}\" }}, nested: true }}\n"
        );
        let manifest = ad_manifest(&ad, &ou, server.base_url(), &scope);
        let dir = workspace(&[("ad.yaml", &manifest)]);
        let env = [("AD_PASSWORD", ad.password.as_str()), ("SCIM_TOKEN", "tok")];
        let apply = ["apply", "-f", "ad.yaml", "--auto-approve", "--state", "state.db", "-v"];
        let bob = format!("c{digits}bob@corp.test").to_lowercase();

        let first = run_async(dir.path(), &apply, &env).await;
        assert_eq!(first.code, 0, "{}", first.all());
        let in_chain = format!("(memberOf:1.2.840.113556.1.4.1941:={agents})");
        assert!(first.stderr.contains(&in_chain), "the search carries the in-chain filter: {}", first.stderr);
        assert!(first.stderr.contains("Source `corp_ad` read in full (2 users)."), "{}", first.stderr);
        assert_eq!(server.users().len(), 2, "Ann and Bob, through the nested group; not Cy");

        // Bob leaves the nested group: his user object is not touched, yet the next run (an
        // incremental one) disables exactly him.
        ldap.modify(&inner, vec![Mod::Delete("member", HashSet::from([dns[1].as_str()]))])
            .await
            .unwrap()
            .success()
            .unwrap();
        server.reset_writes();
        let left = run_async(dir.path(), &apply, &env).await;
        assert_eq!(left.code, 0, "{}", left.all());
        assert!(
            left.stderr.contains("Source `corp_ad` read incrementally: 0 changed user(s) read, 1 left the scope"),
            "{}",
            left.stderr
        );
        assert!(
            left.stdout.contains(&format!(
                "# user \"{bob}\" will be disabled (left the scope: no longer in group \"{agents_name}\")"
            )),
            "{}",
            left.stdout
        );
        assert_eq!(server.writes(), 1, "one PATCH: {}", left.all());
        assert_eq!(server.user(&bob).unwrap()["active"], false);

        // Back in the group: enabled again, by an incremental run too.
        ldap.modify(&inner, vec![Mod::Add("member", HashSet::from([dns[1].as_str()]))])
            .await
            .unwrap()
            .success()
            .unwrap();
        server.reset_writes();
        let back = run_async(dir.path(), &apply, &env).await;
        assert_eq!(back.code, 0, "{}", back.all());
        assert!(back.stderr.contains("Source `corp_ad` read incrementally: 1 changed user(s) read"), "{}", back.stderr);
        assert_eq!(server.writes(), 1, "{}", back.all());
        assert_eq!(server.user(&bob).unwrap()["active"], true);
        let idle = run_async(dir.path(), &apply, &env).await;
        assert!(idle.stdout.contains("No changes."), "{}", idle.stdout);
    }
}

/// A pairing pattern's candidates from AD: the groups whose `cn` starts with the pattern's
/// literal prefix, found by the server (`(cn=<prefix>*)`), each by objectGUID.
#[tokio::test]
async fn group_names_by_prefix_for_a_pairing_pattern() {
    let ad = ad();
    let mut ldap = admin().await;
    let ou = fresh_ou(&mut ldap, "Pattern").await;
    let (dns, digits) = add_people(&mut ldap, &ou, "p", &["Ann"]).await;
    let prefix = format!("GC{digits}-");
    for team in ["Sales", "Billing"] {
        let dn = format!("CN={prefix}{team},{ou}");
        let attributes = vec![
            ("objectClass", std::collections::HashSet::from(["group"])),
            ("member", std::collections::HashSet::from([dns[0].as_str()])),
        ];
        ldap.add(&dn, attributes).await.unwrap().success().unwrap();
    }
    let other = format!("CN=XX{digits}-Other,{ou}");
    ldap.add(&other, vec![("objectClass", std::collections::HashSet::from(["group"]))])
        .await
        .unwrap()
        .success()
        .unwrap();

    let source = source(config(&ad, &ou), &["mail"]);
    let mut found = source.group_names(Some(&prefix)).await.unwrap();
    found.sort_by(|a, b| a.1.cmp(&b.1));
    let names: Vec<&str> = found.iter().map(|(_, name)| name.as_str()).collect();
    assert_eq!(names, [format!("{prefix}Billing"), format!("{prefix}Sales")]);
    // Each is found again by its id, as the pairing it makes names it.
    let mut source = source;
    let group = source.group(&GroupSelector::Id(found[1].0.clone()), false).await.unwrap();
    assert_eq!(group.members.len(), 1);
}
