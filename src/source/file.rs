//! `kind: file`: people and groups from a YAML, JSON or CSV file (demos, tests, HR exports).
//!
//! YAML/JSON: `{ users: [ {id: ..., mail: ..., disabled: false, ...} ], groups: [ {id, name,
//! members: [user ids]} ] }`, or a bare list of users. CSV (users only): one row per user; a
//! column name repeated in the header makes a multi-valued attribute.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

use super::{AttrValue, SourceError, SourceGroup, SourceRecord};
use crate::manifest::model::GroupSelector;

/// A people file on disk, or (for the demo) its text. The file is read and parsed once per
/// source, however many groups are paired with it.
#[derive(Debug)]
pub struct FileSource {
    name: String,
    path: PathBuf,
    text: Option<String>,
    contents: OnceLock<Arc<Contents>>,
}

#[derive(Debug, Default)]
struct Contents {
    users: Arc<Vec<SourceRecord>>,
    groups: Vec<FileGroup>,
    /// The sha256 of the text read (`fingerprint`).
    fingerprint: String,
}

/// A group as the file writes it: members by user id.
#[derive(Debug)]
struct FileGroup {
    id: String,
    name: String,
    members: Vec<String>,
}

impl FileSource {
    pub fn new(name: &str, path: PathBuf) -> Self {
        Self { name: name.to_owned(), path, text: None, contents: OnceLock::new() }
    }

    /// A file source whose contents are given rather than read (`path` still picks the format).
    pub fn from_text(name: &str, path: PathBuf, text: String) -> Self {
        Self { name: name.to_owned(), path, text: Some(text), contents: OnceLock::new() }
    }

    fn contents(&self) -> Result<Arc<Contents>, SourceError> {
        if let Some(contents) = self.contents.get() {
            return Ok(Arc::clone(contents));
        }
        let contents = Arc::new(self.read()?);
        Ok(Arc::clone(self.contents.get_or_init(|| contents)))
    }

    /// The sha256 of the file as it is now, without parsing it: what `fingerprint` was when
    /// the file read the same.
    pub fn current_fingerprint(&self) -> Result<String, SourceError> {
        Ok(fingerprint_of(self.text()?.as_bytes()))
    }

    /// The sha256 of the text this run read, once it did.
    pub fn fingerprint(&self) -> Option<String> {
        self.contents.get().map(|c| c.fingerprint.clone())
    }

    #[expect(clippy::disallowed_methods, reason = "a file source reads its file")]
    fn text(&self) -> Result<String, SourceError> {
        if let Some(text) = &self.text {
            return Ok(text.clone());
        }
        let bytes = std::fs::read(&self.path).map_err(|source| SourceError::Read {
            source_name: self.name.clone(),
            path: self.path.display().to_string(),
            source,
        })?;
        crate::text::utf8(bytes).map_err(|e| SourceError::Parse {
            source_name: self.name.clone(),
            path: self.path.display().to_string(),
            format: self.format(),
            detail: e.to_string(),
        })
    }

    fn format(&self) -> &'static str {
        let extension = self.path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        match extension.as_str() {
            "csv" => "CSV",
            "json" => "JSON",
            _ => "YAML",
        }
    }

    fn read(&self) -> Result<Contents, SourceError> {
        let format = self.format();
        let text = self.text()?;
        let parsed = match format {
            "CSV" => parse_csv(&text),
            "JSON" => parse_json(&text),
            _ => crate::yaml::parse(&text)
                .map_err(|e| format!("line {}: {}", e.location, e.message))
                .and_then(|node| parse_value(&node.to_json())),
        };
        let mut contents = parsed.map_err(|detail| SourceError::Parse {
            source_name: self.name.clone(),
            path: self.path.display().to_string(),
            format,
            detail,
        })?;
        contents.fingerprint = fingerprint_of(text.as_bytes());
        Ok(contents)
    }

    pub fn users(&self) -> Result<Arc<Vec<SourceRecord>>, SourceError> {
        Ok(Arc::clone(&self.contents()?.users))
    }

    /// Every group, as `(id, name)`.
    pub fn group_names(&self) -> Result<Vec<(String, String)>, SourceError> {
        Ok(self.contents()?.groups.iter().map(|g| (g.id.clone(), g.name.clone())).collect())
    }

    /// The group `selector` names; with `nested`, a member that is another group's id stands
    /// for that group's members (cycles end).
    pub fn group(&self, selector: &GroupSelector, nested: bool) -> Result<SourceGroup, SourceError> {
        let contents = self.contents()?;
        let Contents { users, groups, .. } = contents.as_ref();
        let group = groups
            .iter()
            .find(|g| match selector {
                GroupSelector::Id(id) => &g.id == id,
                GroupSelector::Name(name) => g.name.eq_ignore_ascii_case(name),
                GroupSelector::Dn(dn) => g.id.eq_ignore_ascii_case(dn),
            })
            .ok_or_else(|| SourceError::GroupNotFound {
                source_name: self.name.clone(),
                selector: selector.to_string(),
            })?;
        let by_id: std::collections::HashMap<&str, &SourceRecord> = users.iter().map(|u| (u.id.as_str(), u)).collect();
        let mut members = Vec::new();
        let mut unresolved = Vec::new();
        let mut seen = std::collections::BTreeSet::from([group.id.as_str()]);
        let mut pending = std::collections::VecDeque::from([group]);
        let mut added = std::collections::BTreeSet::new();
        while let Some(group) = pending.pop_front() {
            for id in &group.members {
                if let Some(record) = by_id.get(id.as_str()) {
                    if added.insert(id.as_str()) {
                        members.push((*record).clone());
                    }
                } else if let Some(inner) = groups.iter().find(|g| g.id == *id).filter(|_| nested) {
                    if seen.insert(inner.id.as_str()) {
                        pending.push_back(inner);
                    }
                } else {
                    unresolved.push(id.clone());
                }
            }
        }
        Ok(SourceGroup { id: group.id.clone(), name: group.name.clone(), members, unresolved })
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A file's fingerprint: the sha256 of its bytes (as `sha256_hex` makes it).
fn fingerprint_of(bytes: &[u8]) -> String {
    format!("sha256:{}", crate::scim::request::sha256_hex([bytes]))
}

fn parse_value(value: &Value) -> Result<Contents, String> {
    let (users, groups) = match value {
        Value::Array(users) => (users.as_slice(), &[][..]),
        Value::Object(object) => {
            if let Some(key) = object.keys().find(|k| !matches!(k.as_str(), "users" | "groups")) {
                return Err(format!("unknown top-level key `{key}` (expected `users` and `groups`)"));
            }
            let list = |key: &str| match object.get(key) {
                None | Some(Value::Null) => Ok(&[][..]),
                Some(Value::Array(items)) => Ok(items.as_slice()),
                Some(_) => Err(format!("`{key}` must be a list")),
            };
            (list("users")?, list("groups")?)
        }
        _ => return Err("expected a list of users or a mapping with `users` and `groups`".into()),
    };
    let mut contents = Contents::default();
    let mut seen = std::collections::HashMap::new();
    for (index, user) in users.iter().enumerate() {
        Arc::make_mut(&mut contents.users).push(numbered_user(user, index, &mut seen)?);
    }
    contents.groups = parse_groups(groups)?;
    Ok(contents)
}

/// The file's `index`th user as a record, its id checked against those `seen` before; a problem
/// names the record (`users[3]`).
fn numbered_user(
    user: &Value,
    index: usize,
    seen: &mut std::collections::HashMap<String, String>,
) -> Result<SourceRecord, String> {
    let at = format!("users[{index}]");
    let record = parse_user(user).map_err(|e| format!("{at}: {e}"))?;
    unique(seen, &record.id, at)?;
    Ok(record)
}

/// The file's groups; a problem names the group (`groups[2]`).
fn parse_groups(groups: &[Value]) -> Result<Vec<FileGroup>, String> {
    groups.iter().enumerate().map(|(index, g)| parse_group(g).map_err(|e| format!("groups[{index}]: {e}"))).collect()
}

/// JSON, read user by user: each user becomes a record as it is parsed, so the file's whole
/// tree (for 100,000 users, several times the records it makes) is never held. The same shapes
/// and checks as `parse_value`: a record's problem names the record (`users[3]`), one in the
/// JSON itself the line and column.
fn parse_json(text: &str) -> Result<Contents, String> {
    let mut read = JsonRead::default();
    let mut parser = serde_json::Deserializer::from_str(text);
    let parsed = serde::de::DeserializeSeed::deserialize(JsonFile(&mut read), &mut parser).and_then(|()| parser.end());
    match (parsed, read.problem) {
        (Ok(()), _) => Ok(read.contents),
        // Said without the parser's position, which is past the record by then.
        (Err(_), Some(problem)) => Err(problem),
        (Err(error), None) => Err(error.to_string()),
    }
}

#[derive(Default)]
struct JsonRead {
    contents: Contents,
    /// What was wrong with a record or group, kept apart from the parser's error.
    problem: Option<String>,
}

impl JsonRead {
    fn refuse<E: serde::de::Error>(&mut self, problem: String) -> E {
        let error = E::custom(&problem);
        self.problem = Some(problem);
        error
    }
}

/// The whole file: a list of users, or a mapping with `users` and `groups`.
struct JsonFile<'a>(&'a mut JsonRead);

/// The list of users, parsed into records one by one.
struct JsonUsers<'a>(&'a mut JsonRead);

impl<'de> serde::de::DeserializeSeed<'de> for JsonFile<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, parser: D) -> Result<(), D::Error> {
        parser.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for JsonFile<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of users or a mapping with `users` and `groups`")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, users: A) -> Result<(), A::Error> {
        JsonUsers(self.0).visit_seq(users)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut file: A) -> Result<(), A::Error> {
        let (mut users, mut groups) = (false, false);
        while let Some(key) = file.next_key::<String>()? {
            let seen = match key.as_str() {
                "users" => std::mem::replace(&mut users, true),
                "groups" => std::mem::replace(&mut groups, true),
                _ => {
                    return Err(self
                        .0
                        .refuse(format!("unknown top-level key `{key}` (expected `users` and `groups`)")));
                }
            };
            if seen {
                return Err(self.0.refuse(format!("`{key}` is given twice")));
            }
            if key == "users" {
                file.next_value_seed(JsonUsers(&mut *self.0))?;
                continue;
            }
            match file.next_value::<Value>()? {
                Value::Null => {}
                Value::Array(items) => match parse_groups(&items) {
                    Ok(groups) => self.0.contents.groups = groups,
                    Err(problem) => return Err(self.0.refuse(problem)),
                },
                _ => return Err(self.0.refuse("`groups` must be a list".into())),
            }
        }
        Ok(())
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for JsonUsers<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, parser: D) -> Result<(), D::Error> {
        parser.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for JsonUsers<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("`users` to be a list")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut list: A) -> Result<(), A::Error> {
        // Grown as users come (a size hint is the file's word, not to be reserved on).
        let mut records = Vec::new();
        let mut seen = std::collections::HashMap::new();
        while let Some(user) = list.next_element::<Value>()? {
            match numbered_user(&user, records.len(), &mut seen) {
                Ok(record) => records.push(record),
                Err(problem) => return Err(self.0.refuse(problem)),
            }
        }
        records.shrink_to_fit();
        self.0.contents.users = Arc::new(records);
        Ok(())
    }
}

/// One id, one person: a second record with an id already seen would plan a second user with
/// the same ownership marker. `at` names the record (`users[3]`, `line 5`).
fn unique(seen: &mut std::collections::HashMap<String, String>, id: &str, at: String) -> Result<(), String> {
    if let Some(first) = seen.get(id) {
        return Err(format!("{at}: id `{id}` is also the id of {first}; each record needs its own `id`"));
    }
    seen.insert(id.to_owned(), at);
    Ok(())
}

fn parse_user(value: &Value) -> Result<SourceRecord, String> {
    let object = value.as_object().ok_or("a user must be a mapping of attribute names to values")?;
    let id = object.get("id").and_then(scalar_text).ok_or("a user needs an `id`")?;
    let mut record = SourceRecord::new(id);
    insert_attributes(&mut record, "", object)?;
    record.disabled = is_disabled(&record)?;
    Ok(record)
}

/// Inserts the attributes of `object` under `prefix`; a nested mapping's values are read as
/// dotted names (`employeeOrgData.division`), as Graph's complex properties are.
fn insert_attributes(
    record: &mut SourceRecord,
    prefix: &str,
    object: &serde_json::Map<String, Value>,
) -> Result<(), String> {
    for (name, value) in object {
        let name = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        let attr = match value {
            Value::Null => continue,
            Value::Bool(b) => AttrValue::Bool(*b),
            Value::Array(items) => AttrValue::List(
                items
                    .iter()
                    .map(|item| scalar_text(item).ok_or_else(|| format!("`{name}` must be a list of plain values")))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(members) => {
                insert_attributes(record, &name, members)?;
                continue;
            }
            other => AttrValue::Text(scalar_text(other).unwrap_or_default()),
        };
        record.insert(&name, attr);
    }
    Ok(())
}

/// `disabled: true` or `accountEnabled: false` (Graph's spelling) marks a disabled account.
fn is_disabled(record: &SourceRecord) -> Result<bool, String> {
    let flag = |name: &str| match record.get(name) {
        None => Ok(None),
        Some(AttrValue::Bool(b)) => Ok(Some(*b)),
        Some(AttrValue::Text(t)) => match t.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(Some(true)),
            "false" | "0" | "no" | "" => Ok(Some(false)),
            _ => Err(format!("`{name}` must be true or false, found `{t}`")),
        },
        Some(AttrValue::List(_)) => Err(format!("`{name}` must be true or false, found a list")),
    };
    Ok(flag("disabled")?.unwrap_or(false) || flag("accountEnabled")? == Some(false))
}

fn parse_group(value: &Value) -> Result<FileGroup, String> {
    let object = value.as_object().ok_or("a group must be a mapping with `id`, `name` and `members`")?;
    let id = object.get("id").and_then(scalar_text).ok_or("a group needs an `id`")?;
    let name = object.get("name").and_then(scalar_text).unwrap_or_else(|| id.clone());
    let members = match object.get("members") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            items.iter().map(|m| scalar_text(m).ok_or("`members` must list user ids")).collect::<Result<_, _>>()?
        }
        Some(_) => return Err("`members` must be a list of user ids".into()),
    };
    Ok(FileGroup { id, name, members })
}

fn parse_csv(text: &str) -> Result<Contents, String> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    if !headers.iter().any(|h| h == "id") {
        return Err("the header row needs an `id` column".into());
    }
    let mut contents = Contents::default();
    let mut seen = std::collections::HashMap::new();
    for (index, row) in reader.records().enumerate() {
        let row = row.map_err(|e| e.to_string())?;
        let line = row.position().map_or(index + 2, |p| usize::try_from(p.line()).unwrap_or(usize::MAX));
        let mut object = serde_json::Map::new();
        for (header, cell) in headers.iter().zip(row.iter()) {
            if cell.is_empty() {
                continue;
            }
            match object.get_mut(header) {
                None => {
                    object.insert(header.to_owned(), Value::String(cell.to_owned()));
                }
                Some(Value::Array(items)) => items.push(Value::String(cell.to_owned())),
                Some(existing) => *existing = Value::Array(vec![existing.take(), Value::String(cell.to_owned())]),
            }
        }
        let record = parse_user(&Value::Object(object)).map_err(|e| format!("line {line}: {e}"))?;
        unique(&mut seen, &record.id, format!("line {line}"))?;
        Arc::make_mut(&mut contents.users).push(record);
    }
    Ok(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(name: &str, text: &str) -> FileSource {
        FileSource::from_text("people", PathBuf::from(name), text.to_owned())
    }

    #[test]
    fn reads_yaml_users_and_groups() {
        let file = source(
            "people.yaml",
            "users:\n  - {id: 1, mail: a@x, proxyAddresses: [p1, p2], disabled: true}\n  - {id: u2, accountEnabled: false}\n  - {id: u3}\ngroups:\n  - {id: g1, name: Sales, members: [1, u2]}\n",
        );
        let users = file.users().unwrap();
        assert_eq!(users.len(), 3);
        assert_eq!(users[0].id, "1");
        assert_eq!(users[0].get("PROXYADDRESSES"), Some(&AttrValue::List(vec!["p1".into(), "p2".into()])));
        assert!(users[0].disabled && users[1].disabled && !users[2].disabled);
        let group = file.group(&GroupSelector::Name("sales".into()), false).unwrap();
        let ids: Vec<&str> = group.members.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, vec!["1", "u2"]);
        assert!(matches!(file.group(&GroupSelector::Id("nope".into()), false), Err(SourceError::GroupNotFound { .. })));
    }

    /// Users and every paired group come from one read of the file.
    #[test]
    #[expect(clippy::disallowed_methods, reason = "the test writes and removes the file it reads")]
    fn the_file_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("people.yaml");
        std::fs::write(&path, "users:\n  - {id: '1'}\ngroups:\n  - {id: g, members: ['1']}\n").unwrap();
        let file = FileSource::new("people", path.clone());
        assert_eq!(file.users().unwrap().len(), 1);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(file.group(&GroupSelector::Id("g".into()), false).unwrap().members.len(), 1);
    }

    #[test]
    fn reads_json_and_csv() {
        let json = source("p.json", r#"[{"id": "1", "mail": "a@x"}]"#);
        assert_eq!(json.users().unwrap()[0].get("mail"), Some(&AttrValue::Text("a@x".into())));
        let csv = source("p.csv", "id,mail,proxy,proxy,disabled\n1,a@x,p1,p2,false\n2,b@x,,,true\n");
        let users = csv.users().unwrap();
        assert_eq!(users[0].get("proxy"), Some(&AttrValue::List(vec!["p1".into(), "p2".into()])));
        assert_eq!(users[1].get("proxy"), None);
        assert!(users[1].disabled);
    }

    /// JSON, read user by user, gives what the same text read as YAML (JSON is YAML) gives, in
    /// each shape a file may have; its errors name the record, and the line and column.
    #[test]
    fn json_read_user_by_user_reads_as_yaml_does() {
        let texts = [
            r#"{"users": [{"id": 1, "mail": "a@x", "proxy": ["p1", 2], "org": {"division": "West"}, "accountEnabled": false},
                          {"id": "2", "mail": null, "disabled": "yes"}],
                "groups": [{"id": "g", "name": "G", "members": ["1", "2"]}, {"id": "h", "members": ["g"]}]}"#,
            r#"[{"id": "1", "mail": "a@x"}, {"id": "2", "title": "Lead"}]"#,
            r#"{"groups": [{"id": "g"}], "users": null}"#,
            r#"{"users": []}"#,
            "{}",
        ];
        for text in texts {
            let (json, yaml) = (source("p.json", text), source("p.yaml", text));
            assert_eq!(json.users().unwrap(), yaml.users().unwrap(), "{text}");
            assert_eq!(json.group_names().unwrap(), yaml.group_names().unwrap(), "{text}");
            for (id, _) in yaml.group_names().unwrap() {
                let selector = GroupSelector::Id(id);
                assert_eq!(json.group(&selector, true).unwrap(), yaml.group(&selector, true).unwrap(), "{text}");
            }
        }
        let error = |text: &str| source("p.json", text).users().unwrap_err().to_string();
        let duplicate = error(r#"{"users": [{"id": 7}, {"id": 8}, {"id": "7"}]}"#);
        assert!(duplicate.contains("users[2]: id `7` is also the id of users[0]"), "{duplicate}");
        let no_id = error(r#"[{"id": 1}, {"mail": "a@x"}]"#);
        assert!(no_id.contains("users[1]: a user needs an `id`"), "{no_id}");
        let unknown = error(r#"{"users": [], "people": []}"#);
        assert!(unknown.contains("unknown top-level key `people`"), "{unknown}");
        let twice = error(r#"{"users": [], "users": [{"id": 1}]}"#);
        assert!(twice.contains("`users` is given twice"), "{twice}");
        let not_a_list = error(r#"{"users": {"id": 1}}"#);
        assert!(not_a_list.contains("expected `users` to be a list"), "{not_a_list}");
        let bad_group = error(r#"{"groups": [{"name": "G"}]}"#);
        assert!(bad_group.contains("groups[0]: a group needs an `id`"), "{bad_group}");
        let broken = error("[{\"id\": 1},\n {\"id\": 2,, }]");
        assert!(broken.contains("key must be a string at line 2 column 11"), "{broken}");
        let trailing = error(r#"[{"id": 1}] []"#);
        assert!(trailing.contains("trailing characters"), "{trailing}");
    }

    /// Nested mappings read as dotted names, as Graph's complex properties do.
    #[test]
    fn nested_objects_read_as_dotted_names() {
        let file = source(
            "people.yaml",
            "users:\n  - id: 1\n    onPremisesExtensionAttributes: {extensionAttribute3: 'Sales:2', extensionAttribute4: null}\n    employeeOrgData: {division: EMEA, costCenter: 42}\n",
        );
        let users = file.users().unwrap();
        let text = |name: &str| users[0].get(name).cloned();
        assert_eq!(text("onPremisesExtensionAttributes.extensionAttribute3"), Some(AttrValue::Text("Sales:2".into())));
        assert_eq!(text("onPremisesExtensionAttributes.extensionAttribute4"), None);
        assert_eq!(text("employeeOrgData.division"), Some(AttrValue::Text("EMEA".into())));
        assert_eq!(text("employeeorgdata.costcenter"), Some(AttrValue::Text("42".into())));
        assert_eq!(text("employeeOrgData"), None, "the object itself is no value");
    }

    #[test]
    fn bad_files_name_the_record() {
        let error = source("p.yaml", "users:\n  - {mail: a}\n").users().unwrap_err();
        assert!(error.to_string().contains("users[0]: a user needs an `id`"), "{error}");
        let error = source("p.csv", "id,disabled\n1,maybe\n").users().unwrap_err();
        assert!(error.to_string().contains("line 2: `disabled` must be true or false"), "{error}");
        let error = source("p.yaml", "users:\n  - {id: 7}\n  - {id: 8}\n  - {id: '7'}\n").users().unwrap_err();
        assert!(error.to_string().contains("users[2]: id `7` is also the id of users[0]"), "{error}");
        let error = source("p.csv", "id,mail\n7,a@x\n8,b@x\n7,c@x\n").users().unwrap_err();
        assert!(error.to_string().contains("line 4: id `7` is also the id of line 2"), "{error}");
    }
}
