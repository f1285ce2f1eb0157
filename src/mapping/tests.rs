//! Entra's functions that templates gained for issue 16: conditions inside `if`, the run's
//! clock, dates, words and lists. One test each, through the parser and the evaluator.

use serde_json::{Value, json};

use super::Mapping;
use super::eval::evaluate_at;
use crate::record::{AttrValue, SourceRecord};

fn record() -> SourceRecord {
    let mut r = SourceRecord::new("1");
    r.insert("department", AttrValue::Text("Customer Support".into()));
    r.insert("name", AttrValue::Text("ann MARIE o'neil".into()));
    r.insert("hired", AttrValue::Text("2026-01-31T00:00:00Z".into()));
    r.insert("left", AttrValue::Text("2026-03-02".into()));
    r.insert("proxyAddresses", AttrValue::List(vec!["SMTP:ann@x".into(), "smtp:a@y".into(), "smtp:al@z".into()]));
    r.insert("empty", AttrValue::Text(String::new()));
    r
}

fn now() -> jiff::Timestamp {
    "2026-02-10T09:30:00Z".parse().unwrap()
}

fn eval(template: &str) -> Option<Value> {
    let mapping = Mapping::parse(template).unwrap_or_else(|e| panic!("{template}: {e}"));
    evaluate_at(&mapping, &record(), Some(now())).unwrap_or_else(|e| panic!("{template}: {e}"))
}

fn refused(template: &str) -> String {
    Mapping::parse(template).map_or_else(|e| e.message, |_| String::new())
}

#[test]
fn conditions_compare_without_case_inside_if() {
    let cases = [
        (r#"{{ if(eq(department, "customer support"), "CS", "Other") }}"#, "CS"),
        (r#"{{ if(ne(department, "Sales"), "not sales", "sales") }}"#, "not sales"),
        (r#"{{ if(contains(department, "SUPPORT"), "yes", "no") }}"#, "yes"),
        (r#"{{ if(starts_with(department, "cust"), "yes", "no") }}"#, "yes"),
        (r#"{{ if(ends_with(department, "desk"), "yes", "no") }}"#, "no"),
        (r#"{{ if(is_empty(empty), "none", "some") }}"#, "none"),
        (r#"{{ if(is_empty(department), "none", "some") }}"#, "some"),
        (r#"{{ if(contains(proxyAddresses, "smtp:a@y"), "has", "lacks") }}"#, "has"),
        (r#"{{ if(not eq(department, "x"), "not x", "x") }}"#, "not x"),
    ];
    for (template, expected) in cases {
        assert_eq!(eval(template), Some(json!(expected)), "{template}");
    }
    assert_eq!(eval("{{ eq(department, 'Customer Support') }}"), Some(json!(true)), "a condition alone is a boolean");
    assert_eq!(refused("{{ eq(department) }}"), "`eq` takes 2 arguments, found 1");
    assert_eq!(refused("{{ is_empty(a, b) }}"), "`is_empty` takes 1 argument, found 2");
    assert!(refused("{{ equals(a, b) }}").starts_with("unknown function `equals`"));
}

#[test]
fn now_is_the_runs_clock_and_dates_add_and_differ_in_days() {
    assert_eq!(eval("{{ now() }}"), Some(json!("2026-02-10T09:30:00Z")));
    assert_eq!(eval("{{ now() | date('%Y-%m-%d') }}"), Some(json!("2026-02-10")));
    let without_clock = super::evaluate(&Mapping::parse("{{ now() }}").unwrap(), &record());
    assert!(without_clock.is_err(), "no clock, no guess");
    assert_eq!(refused("{{ now(hired) }}"), "`now()` takes no arguments");

    assert_eq!(eval("{{ hired | date_add(30) }}"), Some(json!("2026-03-02T00:00:00Z")));
    assert_eq!(eval("{{ hired | date_add(-31) | date('%Y-%m-%d') }}"), Some(json!("2025-12-31")));
    assert_eq!(eval("{{ date_diff(hired, left) }}"), Some(json!("30")));
    assert_eq!(eval("{{ date_diff(hired, now()) }}"), Some(json!("10")));
    assert_eq!(eval("{{ date_diff(left, hired) }}"), Some(json!("-30")));
    assert_eq!(eval("{{ date_diff(empty, hired) }}"), None, "an empty date gives no value");
    assert_eq!(
        refused("{{ hired | date_add('soon') }}"),
        "filter `date_add` takes a whole number of days, found `soon`"
    );
}

#[test]
fn words_titles_and_lists() {
    assert_eq!(eval("{{ name | title_case }}"), Some(json!("Ann Marie O'neil")));
    assert_eq!(eval("{{ department | word(2, ' ') }}"), Some(json!("Support")));
    assert_eq!(eval("{{ 'a.b-c' | word(3, '.-') }}"), Some(json!("c")));
    assert_eq!(eval("{{ department | word(5, ' ') }}"), None, "fewer words: no value");
    assert_eq!(eval("{{ department | append(' Team') }}"), Some(json!("Customer Support Team")));
    assert_eq!(eval("{{ empty | append(' Team') }}"), None, "nothing to append to");
    assert_eq!(eval("{{ proxyAddresses | first }}"), Some(json!("SMTP:ann@x")));
    assert_eq!(eval("{{ proxyAddresses | last }}"), Some(json!("smtp:al@z")));
    assert_eq!(eval("{{ proxyAddresses | item(2) }}"), Some(json!("smtp:a@y")));
    assert_eq!(eval("{{ proxyAddresses | item(9) }}"), None);
    assert_eq!(eval("{{ proxyAddresses | count }}"), Some(json!("3")));
    assert_eq!(eval("{{ empty | count }}"), Some(json!("0")));
    assert_eq!(refused("{{ name | word(0, ' ') }}"), "`word` counts words from 1");
    assert_eq!(refused("{{ name | item(0) }}"), "`item` counts values from 1");
    assert_eq!(refused("{{ name | first(1) }}"), "filter `first` takes 0 argument(s), found 1");
}
