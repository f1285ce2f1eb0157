//! `ScimPath`'s parsing, display and reads and writes of resources.

use serde_json::json;

use super::*;

#[test]
fn parses_and_prints_the_supported_forms() {
    for text in [
        "title",
        "name.givenName",
        r#"emails[type eq "work"].value"#,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        r#"phoneNumbers[type eq "a\"b"].value"#,
        "emails[primary eq true].value",
        "addresses[primary eq false].locality",
        "x509Certificates[value eq null].display",
        "ims[rank eq 2].value",
    ] {
        let path = ScimPath::parse(text).unwrap();
        assert_eq!(path.to_string(), text);
    }
}

/// RFC 7644 §3.4.2.2 compares with `true`, `false`, `null` and numbers too; a boolean
/// filter is not the string `"true"`.
#[test]
fn boolean_null_and_number_filters_match_their_kind() {
    let path = ScimPath::parse("emails[primary eq true].value").unwrap();
    assert_ne!(path, ScimPath::parse(r#"emails[primary eq "true"].value"#).unwrap());
    let user = json!({"emails": [{"value": "a@x", "primary": false}, {"value": "b@x", "primary": true}]});
    assert_eq!(path.get(&user), Some(&json!("b@x")));
    let mut empty = json!({});
    path.set(&mut empty, json!("c@x"));
    assert_eq!(empty, json!({"emails": [{"primary": true, "value": "c@x"}]}));
    assert!(ScimPath::parse("emails[primary eq yes].value").is_err());
}

#[test]
fn core_schema_prefix_is_the_core_attribute() {
    let path = ScimPath::parse("urn:ietf:params:scim:schemas:core:2.0:User:title").unwrap();
    assert_eq!(path, ScimPath::parse("TITLE").unwrap());
}

#[test]
fn names_compare_without_case() {
    assert_eq!(ScimPath::parse("Name.GivenName").unwrap(), ScimPath::parse("name.givenName").unwrap());
    assert_ne!(ScimPath::parse("name.givenName").unwrap(), ScimPath::parse("name").unwrap());
}

#[test]
fn rejects_malformed_paths_with_an_offset() {
    let cases = [
        ("", 0),
        ("1abc", 0),
        ("name..x", 5),
        (r#"emails[type ne "work"].value"#, 12),
        (r#"emails[type eq "work".value"#, 21),
        ("title x", 5),
    ];
    for (text, offset) in cases {
        let error = ScimPath::parse(text).unwrap_err();
        assert_eq!(error.offset, offset, "{text}: {error}");
    }
}

#[test]
fn gets_sets_and_removes_values() {
    let mut user = json!({
        "UserName": "a@example.com",
        "emails": [{"type": "other", "value": "x"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Sales"}
    });
    let user_name = ScimPath::parse("userName").unwrap();
    assert_eq!(user_name.get(&user), Some(&json!("a@example.com")));

    let work = ScimPath::parse(r#"emails[type eq "work"].value"#).unwrap();
    assert_eq!(work.get(&user), None);
    work.set(&mut user, json!("w@example.com"));
    assert_eq!(work.get(&user), Some(&json!("w@example.com")));
    assert_eq!(user["emails"].as_array().unwrap().len(), 2);

    let dept = ScimPath::parse("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department").unwrap();
    assert_eq!(dept.get(&user), Some(&json!("Sales")));
    dept.set(&mut user, json!("Support"));
    assert_eq!(dept.get(&user), Some(&json!("Support")));

    let given = ScimPath::parse("name.givenName").unwrap();
    given.set(&mut user, json!("Ann"));
    assert_eq!(user["name"], json!({"givenName": "Ann"}));

    work.remove(&mut user);
    assert_eq!(user["emails"], json!([{"type": "other", "value": "x"}]));
    given.remove(&mut user);
    assert_eq!(user["name"], json!({}));
}
