//! The checker's tests: every mistake located, every problem at once.
use std::path::Path;

use crate::manifest::{MapEnvironment, parse};

const GOOD: &str = r#"version: 1
sources:
  hr: { kind: file, path: people.yaml }
target:
  kind: scim
  base_url: https://scim.example/v2
  auth: { bearer_token: "${env:TOKEN}" }
users:
  source: hr
  external_id: "hr-{{ id }}"
  attributes:
    userName: "{{ mail | lower }}"
    title: title
    active: "{{ not disabled }}"
groups:
  - { name: Support, source: hr, from: { id: s }, to: { id: g1 } }
"#;

/// `(line:column, key path, message)` of every problem, or the empty list.
fn problems(text: &str) -> Vec<(String, String, String)> {
    let env = MapEnvironment([("TOKEN".to_owned(), "t".to_owned())].into_iter().collect());
    match parse(text, "m.yaml", &env, Path::new("/etc/scimform")) {
        Ok(_) => Vec::new(),
        Err(e) => e.diagnostics.into_iter().map(|d| (d.location.to_string(), d.key_path, d.message)).collect(),
    }
}

fn one(text: &str) -> (String, String, String) {
    let mut all = problems(text);
    assert_eq!(all.len(), 1, "{all:#?}");
    all.remove(0)
}

#[test]
fn the_good_manifest_loads() {
    assert_eq!(problems(GOOD), Vec::new());
    let env = MapEnvironment([("TOKEN".to_owned(), "t".to_owned())].into_iter().collect());
    let manifest = parse(GOOD, "m.yaml", &env, Path::new("/etc/scimform")).unwrap();
    let crate::manifest::model::SourceConfig::File(file) = &manifest.sources["hr"] else { panic!() };
    assert_eq!(file.path, Path::new("/etc/scimform/people.yaml"));
    assert_eq!(manifest.users.attributes.len(), 3);
    assert_eq!(manifest.target.concurrency, 4);
}

#[test]
fn each_mistake_is_located() {
    let cases: &[(&str, &str, (&str, &str, &str))] = &[
        ("version: 1", "version: 2", ("1:10", "version", "unsupported manifest version `2`")),
        ("groups:", "grups:", ("15:1", "grups", "unknown key `grups`")),
        ("kind: file, path", "kind: fiel, path", ("3:15", "sources.hr.kind", "unknown source kind `fiel`")),
        ("  kind: scim\n", "  kind: scum\n", ("5:9", "target.kind", "unknown variant `scum`, expected `scim`")),
        (
            "    title: title\n",
            "    title: title\n    Title: sn\n",
            ("14:5", "users.attributes.Title", "`Title` is mapped twice (SCIM names ignore case)"),
        ),
        (
            "    title: title\n",
            "    id: objectGUID\n",
            ("13:5", "users.attributes.id", "`id` is assigned by the server and cannot be mapped"),
        ),
        (
            "    title: title\n",
            "    groups: memberOf\n",
            ("13:5", "users.attributes.groups", "`groups` is read-only on users"),
        ),
        (
            "    title: title\n",
            "    title: Team Lead\n",
            (
                "13:12",
                "users.attributes.title",
                "`Team Lead` is neither a source attribute name nor a template; write a constant as `{ constant: \"Team Lead\" }`",
            ),
        ),
        (
            "    title: title\n",
            "    title: [a, b]\n",
            (
                "13:12",
                "users.attributes.title",
                "a source attribute name, a template, a boolean, a number, or a mapping with `from`, `constant` or `reference`",
            ),
        ),
        (
            "    title: title\n",
            "    title: { from: title, constant: x }\n",
            ("13:12", "users.attributes.title", "a mapping needs exactly one of `from`, `constant` and `reference`"),
        ),
        (
            "  source: hr\n",
            "  source: hr\n  match: displayName\n",
            ("10:10", "users.match", "the match attribute `displayName` is not mapped"),
        ),
        (
            "  external_id: \"hr-{{ id }}\"",
            "  external_id: \"hr-{{ id \"",
            ("10:20", "users.external_id", "invalid `external_id`: `{{` is never closed by `}}`"),
        ),
        (
            "from: { id: s }",
            "from: { id: s, name: t }",
            ("16:40", "groups[0].from", "`from` needs exactly one of `id`, `name` and `dn`"),
        ),
        (
            "source: hr, from",
            "source: ad, from",
            ("16:30", "groups[0].source", "source `ad` is not declared under `sources`"),
        ),
        ("${env:TOKEN}", "${env:NOPE}", ("7:26", "target.auth.bearer_token", "environment variable `NOPE` is not set")),
        (
            "  base_url: https",
            "  base_url: ftp",
            ("6:13", "target.base_url", "`base_url` must be an http:// or https:// URL"),
        ),
    ];
    for (from, to, (at, path, message)) in cases {
        assert!(GOOD.contains(from), "{from}");
        let got = one(&GOOD.replacen(from, to, 1));
        assert_eq!((got.0.as_str(), got.1.as_str(), got.2.as_str()), (*at, *path, *message), "{to}");
    }
}

#[test]
fn set_mistakes_are_located() {
    let skills = "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User:routingSkills";
    let with = |sets: &str| GOOD.replace("groups:\n  - {", &format!("  sets:\n{sets}groups:\n  - {{"));
    let cases = [
        (
            format!(
                "    {skills}:\n      groups: [{{ source: hr, group: {{ id: b }}, name: Billing, proficiency: 7 }}]\n"
            ),
            ("17:76", format!("users.sets.\"{skills}\".groups[0].proficiency"), "proficiency `7` is out of range"),
        ),
        (
            format!("    {skills}:\n      groups: [{{ source: hr, group: {{ id: b }}, name: Billing }}]\n"),
            ("17:16", format!("users.sets.\"{skills}\".groups[0]"), "missing `proficiency`"),
        ),
        (
            "    nickName:\n      from: nick\n".to_owned(),
            ("16:5", "users.sets.nickName".to_owned(), "`nickName` cannot be managed as a set"),
        ),
        (
            "    roles: { }\n".to_owned(),
            ("16:12", "users.sets.roles".to_owned(), "a set needs `from`, `groups` or both"),
        ),
        (
            "    roles: { from: r, groups: [{ source: hr, group: { id: x }, name: Admin, proficiency: 1 }] }\n"
                .to_owned(),
            ("16:90", "users.sets.roles.groups[0].proficiency".to_owned(), "`roles` entries have no proficiency"),
        ),
        (
            "    roles: { from: r, groups: [{ source: ad, group: { id: x }, name: Admin }] }\n".to_owned(),
            ("16:42", "users.sets.roles.groups[0].source".to_owned(), "source `ad` is not declared under `sources`"),
        ),
    ];
    for (sets, (at, path, message)) in cases {
        let got = one(&with(&sets));
        assert_eq!((got.0.as_str(), got.1.as_str(), got.2.as_str()), (at, path.as_str(), message), "{sets}");
    }
    assert_eq!(
        problems(&with(&format!("    {skills}:\n      from: skills\n    roles:\n      from: roles\n"))),
        Vec::new()
    );
}

#[test]
fn reports_every_problem_not_just_the_first() {
    let text = GOOD
        .replace("title: title", "titel: title\n    displayName: '{{ x | nope }}'")
        .replace("version: 1", "version: 1\nextra: true")
        .replace("kind: file, path: people.yaml", "kind: file");
    let all = problems(&text);
    let messages: Vec<&str> = all.iter().map(|p| p.2.as_str()).collect();
    assert_eq!(messages.len(), 4, "{all:#?}");
    assert!(messages.contains(&"unknown key `extra`"));
    assert!(messages.contains(&"missing field `path`"));
    assert!(messages.contains(&"unknown SCIM attribute `titel`"));
    assert!(messages.iter().any(|m| m.starts_with("unknown filter `nope`")));
}

#[test]
fn genesys_derives_its_urls_from_the_region() {
    let text = GOOD.replace(
            "  base_url: https://scim.example/v2\n  auth: { bearer_token: \"${env:TOKEN}\" }",
            "  profile: genesys\n  region: mypurecloud.ie\n  auth:\n    oauth2_client_credentials: { client_id: c, client_secret: \"${env:TOKEN}\" }",
        );
    let env = MapEnvironment([("TOKEN".to_owned(), "t".to_owned())].into_iter().collect());
    let manifest = parse(&text, "m.yaml", &env, Path::new(".")).unwrap();
    assert_eq!(manifest.target.base_url, "https://api.mypurecloud.ie/api/v2/scim/v2");
    let crate::manifest::model::TargetAuth::OAuth2ClientCredentials { token_url, .. } = &manifest.target.auth else {
        panic!("oauth2 expected")
    };
    assert_eq!(token_url, "https://login.mypurecloud.ie/oauth/token");

    let generic = GOOD.replace("  base_url: https://scim.example/v2\n", "");
    assert_eq!(one(&generic).2, "missing key `base_url`");
    let region_without_genesys = GOOD.replace(
        "  base_url: https://scim.example/v2\n",
        "  base_url: https://scim.example/v2\n  region: mypurecloud.ie\n",
    );
    assert_eq!(one(&region_without_genesys).2, "`region` applies to `profile: genesys` only");
}

/// Names read from a Graph source are Graph's, checked at load: a typo in a user mapping, in
/// a dotted property and in a member key each fails at its place with a suggestion; the
/// users' AD match mapping used to key Entra members (no `member_key`) is named too.
#[test]
fn graph_reads_are_checked_against_graph_user_properties() {
    const ENTRA: &str = "  entra: { kind: graph, tenant_id: t, client_id: c, client_secret: s }\n";
    let entra_users = GOOD
        .replace("sources:\n", &format!("sources:\n{ENTRA}"))
        .replace("source: hr\n", "source: entra\n")
        .replace("title: title", "title: jobTitel\n    displayName: employeeOrgData.divison")
        .replace("source: hr, from", "source: entra, member_key: \"{{ userPrincipleName }}\", from");
    let all = problems(&entra_users);
    let messages: Vec<&str> = all.iter().map(|p| p.2.as_str()).collect();
    assert!(messages.contains(&"`jobTitel` is not a property of a Microsoft Graph user (v1.0)"), "{all:#?}");
    assert!(messages.contains(&"`employeeOrgData` has no property `divison`"), "{all:#?}");
    assert!(messages.contains(&"`userPrincipleName` is not a property of a Microsoft Graph user (v1.0)"), "{all:#?}");
    let member_key = all.iter().find(|p| p.2.contains("userPrincipleName")).unwrap();
    assert_eq!(member_key.1, "groups[0].member_key");
    let env = MapEnvironment([("TOKEN".to_owned(), "t".to_owned())].into_iter().collect());
    let error = parse(&entra_users, "m.yaml", &env, Path::new(".")).unwrap_err();
    let hints: Vec<&str> = error.diagnostics.iter().filter_map(|d| d.hint.as_deref()).collect();
    assert!(hints.contains(&"did you mean `jobTitle`?"), "{hints:?}");
    assert!(hints.contains(&"did you mean `employeeOrgData.division`?"), "{hints:?}");
    assert!(hints.contains(&"did you mean `userPrincipalName`?"), "{hints:?}");

    let ad_users_entra_groups = GOOD
        .replace("sources:\n", &format!("sources:\n{ENTRA}"))
        .replace("{{ mail | lower }}", "{{ sAMAccountName | lower }}")
        .replace("source: hr, from", "source: entra, from");
    let (_, at, message) = one(&ad_users_entra_groups);
    assert_eq!(at, "groups[0]");
    assert!(message.starts_with("members of Graph source `entra` are keyed by the users' match mapping"), "{message}");

    let fine = ad_users_entra_groups.replace(
        "source: entra, from",
        "source: entra, member_key: \"{{ onPremisesExtensionAttributes.extensionAttribute3 }}\", from",
    );
    assert_eq!(problems(&fine), Vec::new());
}

/// Filters come from the environment too; an interpolated value that is the wrong type is
/// an error that never shows the value (it may be a secret).
#[test]
fn filters_interpolate_and_type_errors_hide_the_value() {
    let text = GOOD.replace(
            "  hr: { kind: file, path: people.yaml }\n",
            "  hr: { kind: file, path: people.yaml }\n  ad: { kind: ldap, url: ldap://dc, bind_dn: b, password: p, base_dn: dc=x, filter: \"${env:FILTER}\", page_size: \"${env:TOKEN}\" }\n  entra: { kind: graph, tenant_id: t, client_id: c, client_secret: s, filter: \"department eq '${env:DEPT}'\" }\n",
        );
    let env = MapEnvironment(
        [("TOKEN", "hunter2"), ("FILTER", "(department=Support)"), ("DEPT", "Sales")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    );
    let error = parse(&text, "m.yaml", &env, Path::new(".")).unwrap_err();
    assert_eq!(error.diagnostics.len(), 1, "{error:#?}");
    let message = &error.diagnostics[0].message;
    assert_eq!(message, "the value `${…}` gives here is not valid: expected u32");
    let fixed = text.replace("page_size: \"${env:TOKEN}\"", "page_size: 100");
    let manifest = parse(&fixed, "m.yaml", &env, Path::new(".")).unwrap();
    let crate::manifest::model::SourceConfig::Ldap(ad) = &manifest.sources["ad"] else { panic!() };
    assert_eq!(ad.filter.as_deref(), Some("(department=Support)"));
    let crate::manifest::model::SourceConfig::Graph(entra) = &manifest.sources["entra"] else { panic!() };
    assert_eq!(entra.filter.as_deref(), Some("department eq 'Sales'"));
}

/// A shape error in one key (an unknown key, a wrong type) does not hide the semantic
/// errors of the rest of its section or of the others; a zero timeout is an error.
#[test]
fn shape_errors_do_not_hide_the_other_problems() {
    let text = r#"version: 1
sources:
  hr: { kind: file, path: people.yaml, extra: 1 }
  ad: { kind: ldap, url: http://x, bind_dn: b, password: p, base_dn: d, timeout_seconds: 0 }
target:
  kind: scim
  base_url: https://x
  concurrency: many
  timeout_seconds: 0
  auth: { bearer_token: t }
users:
  source: hr
  matchh: userName
  attributes:
    userName: mail
    titel: title
  sets:
    roles: { from: "{{ x | nope }}" }
groups:
  - { name: A, source: hrx, from: { id: a }, to: { id: b }, members_per_operation: 0 }
  - { name: B, source: hr, from: { id: a }, to: { }, methd: put }
"#;
    let all = problems(text);
    let at: Vec<(&str, &str)> = all.iter().map(|p| (p.1.as_str(), p.2.as_str())).collect();
    for expected in [
        ("sources.hr.extra", "unknown key `extra`"),
        ("sources.ad.url", "an LDAP url must start with `ldap://` or `ldaps://`"),
        ("sources.ad.timeout_seconds", "timeout_seconds `0` is out of range"),
        ("target.concurrency", "invalid type: string \"many\", expected u32"),
        ("target.timeout_seconds", "timeout_seconds `0` is out of range"),
        ("users.matchh", "unknown key `matchh`"),
        ("users.attributes.titel", "unknown SCIM attribute `titel`"),
        ("groups[0].source", "source `hrx` is not declared under `sources`"),
        ("groups[0].members_per_operation", "members_per_operation must be at least 1"),
        ("groups[1].to", "`to` needs exactly one of `id` and `display_name`"),
        ("groups[1].methd", "unknown key `methd`"),
    ] {
        assert!(at.contains(&expected), "{expected:?} missing from {at:#?}");
    }
    assert!(at.iter().any(|(p, m)| *p == "users.sets.roles.from" && m.starts_with("unknown filter `nope`")), "{at:#?}");
    assert_eq!(all.len(), 12, "{at:#?}");
}

#[test]
fn yaml_syntax_errors_are_located() {
    let all = problems("version: 1\nsources: [\n");
    assert_eq!(all.len(), 1);
    assert!(all[0].2.starts_with("YAML syntax error"), "{all:?}");
}

#[test]
fn scope_clauses_are_checked_where_they_stand() {
    let with_scope = |scope: &str| GOOD.replace("groups:\n", &format!("  scope:\n{scope}groups:\n"));
    let cases: &[(&str, (&str, &str, &str))] = &[
        (
            "    filters:\n      - - { attribute: title, operator: matches, value: '^(Lead' }\n",
            ("17:57", "users.scope.filters[0][0].value", "invalid regular expression: regex parse error:"),
        ),
        (
            "    filters:\n      - - { attribute: title, operator: in, value: x }\n",
            ("17:11", "users.scope.filters[0][0]", "`in` compares with a list: give `values: [...]`"),
        ),
        (
            "    filters:\n      - - { attribute: title, operator: equals }\n",
            ("17:11", "users.scope.filters[0][0]", "`equals` compares with one value: give `value:`"),
        ),
        (
            "    filters:\n      - - { attribute: hired, operator: greater_than, value: last year }\n",
            ("17:62", "users.scope.filters[0][0].value", "`last year` is neither a number nor an RFC 3339 time"),
        ),
        (
            "    filters:\n      - - { attribute: title, operator: is_empty, value: x }\n",
            ("17:11", "users.scope.filters[0][0]", "`is_empty` takes no `value`"),
        ),
        (
            "    member_of:\n      - { source: entra, group: { name: Agents } }\n",
            ("17:19", "users.scope.member_of[0].source", "source `entra` is not declared under `sources`"),
        ),
        (
            "    filters:\n      - - { attribute: title, operator: lessthan, value: 3 }\n",
            ("17:41", "users.scope.filters[0][0].operator", "unknown variant `lessthan`"),
        ),
    ];
    for (scope, (at, path, message)) in cases {
        let (found_at, found_path, found) = one(&with_scope(scope));
        assert_eq!((found_at.as_str(), found_path.as_str()), (*at, *path), "{scope}: {found}");
        assert!(found.starts_with(message), "{scope}: {found}");
    }
    let scoped = with_scope(
        "    member_of:\n      - { source: hr, group: { name: Agents }, nested: true }\n    filters:\n      - - { attribute: department, operator: equals, value: Support }\n",
    );
    assert_eq!(problems(&scoped), Vec::new());
}

#[test]
fn several_match_keys_are_each_checked() {
    let with_match = |m: &str| GOOD.replace("  external_id:", &format!("  match: {m}\n  external_id:"));
    let ok = parse(
        &with_match("[userName, title]"),
        "m.yaml",
        &MapEnvironment([("TOKEN".to_owned(), "t".to_owned())].into_iter().collect()),
        Path::new("/etc"),
    )
    .unwrap();
    assert_eq!(ok.users.match_path.to_string(), "userName");
    assert_eq!(ok.users.match_paths.iter().map(ToString::to_string).collect::<Vec<_>>(), ["userName", "title"]);
    let cases: &[(&str, (&str, &str, &str))] = &[
        ("[]", ("10:10", "users.match", "`match` needs at least one SCIM path")),
        ("[userName, userName]", ("10:21", "users.match[1]", "`userName` is listed twice")),
        ("[userName, nickName]", ("10:21", "users.match[1]", "the match attribute `nickName` is not mapped")),
    ];
    for (m, (at, path, message)) in cases {
        let (found_at, found_path, found) = one(&with_match(m));
        assert_eq!((found_at.as_str(), found_path.as_str(), found.as_str()), (*at, *path, *message), "{m}");
    }
}

#[test]
fn delete_after_days_needs_users_that_are_disabled() {
    let with = |d: &str| GOOD.replace("groups:\n", &format!("  deprovision: {d}\ngroups:\n"));
    let (at, path, message) = one(&with("{ action: delete, out_of_scope: delete, delete_after_days: 30 }"));
    assert_eq!((at.as_str(), path.as_str()), ("15:75", "users.deprovision.delete_after_days"));
    assert!(message.starts_with("`delete_after_days` deletes users scimform disabled"), "{message}");
    let (_, _, message) = one(&with("{ action: disable, delete_after_days: 0 }"));
    assert_eq!(message, "`delete_after_days` must be at least 1");
    assert_eq!(problems(&with("{ action: delete, delete_after_days: 30 }")), Vec::new(), "out of scope still disables");
}

#[test]
fn a_pairing_pattern_is_checked_and_fills_its_matches() {
    let with =
        |pairing: &str| GOOD.replace("  - { name: Support, source: hr, from: { id: s }, to: { id: g1 } }\n", pairing);
    let env = MapEnvironment([("TOKEN".to_owned(), "t".to_owned())].into_iter().collect());
    let good = with(
        "  - { name: 'gc-{{ match.1 }}', source: hr, from: { name_matches: '^GC-(.+)$' }, to: { display_name: '{{ match.1 }}' } }\n",
    );
    let manifest = parse(&good, "m.yaml", &env, Path::new("/etc")).unwrap();
    assert!(manifest.groups.is_empty());
    let pattern = &manifest.group_patterns[0];
    assert_eq!(pattern.literal_prefix().as_deref(), Some("GC-"));
    let pairing = pattern.pairing("g-7", "GC-Sales").unwrap();
    assert_eq!((pairing.name.as_str(), pairing.to.to_string()), ("gc-Sales", "displayName `Sales`".to_owned()));
    assert_eq!(pairing.from, crate::manifest::model::GroupSelector::Id("g-7".into()));
    assert!(pattern.pairing("g-8", "Sales").is_none());

    let cases: &[(&str, &str)] = &[
        (
            "{ name: gc, source: hr, from: { name_matches: '^GC-(.+)$' }, to: { display_name: x } }",
            "every pairing of pattern `^GC-(.+)$` would be named `gc`",
        ),
        (
            "{ name: 'gc-{{ match.2 }}', source: hr, from: { name_matches: '^GC-(.+)$' }, to: { display_name: x } }",
            "`gc-{{ match.2 }}` has `{{ match.2 }}`, and the pattern has 1 capture group(s)",
        ),
        (
            "{ name: 'gc-{{ match.1 }}', source: hr, from: { name_matches: '^GC-(.+$' }, to: { display_name: x } }",
            "invalid regular expression",
        ),
        (
            "{ name: 'gc-{{ match.1 }}', source: hr, from: { name_matches: '^GC-(.+)$' }, to: { id: g1 } }",
            "a pattern's `to` is a `display_name`",
        ),
        (
            "{ name: 'gc-{{ match.1 }}', source: hr, from: { name_matches: '^GC-(.+)$', id: x }, to: { display_name: x } }",
            "`from` needs exactly one of",
        ),
    ];
    for (pairing, message) in cases {
        let (_, _, found) = one(&with(&format!("  - {pairing}\n")));
        assert!(found.starts_with(message), "{pairing}: {found}");
    }
}
