//! A YAML document as a tree that remembers where each node came from.
//!
//! serde's YAML deserialisers forget positions once a value is built; manifest errors must name
//! line and column, so documents are first read into this tree (with `saphyr-parser`, the only
//! module that names the YAML crate), then converted to JSON values for serde, and the tree is
//! kept to locate every error afterwards.

use std::collections::HashMap;
use std::fmt;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::{Map, Number, Value};

/// 1-based line and column of a node in its document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A YAML node with its location.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub location: Location,
    pub kind: NodeKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// A scalar; `quoted` scalars are always strings, plain ones are resolved by YAML 1.2's core
    /// schema (`true`, `42`, `null`, ...). `offset` is where the text begins relative to
    /// `location` (1 for quoted scalars), so errors can point inside it.
    Scalar {
        text: String,
        quoted: bool,
        offset: usize,
    },
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

/// A mapping key and its location.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub text: String,
    pub location: Location,
    /// Where the text begins relative to `location` (1 for a quoted key).
    pub offset: usize,
}

/// One step of a path into a document.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A YAML syntax error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub location: Location,
    pub message: String,
}

fn location(span: &Span) -> Location {
    Location { line: span.start.line(), column: span.start.col() + 1 }
}

/// How deep a document may nest (aliases included): far beyond any manifest or people file,
/// and shallow enough that every walk over the tree stays well within the stack.
pub const MAX_DEPTH: usize = 64;
/// How many nodes aliases may add to a document in all. An alias copies its anchored node, so
/// nested anchors grow a few hundred bytes into billions of nodes (a "billion laughs" alias
/// bomb); this bounds the work and memory to a few megabytes.
pub const MAX_ALIAS_NODES: usize = 100_000;

enum Frame {
    Seq(Location, Vec<Node>, usize),
    Map(Location, Vec<(Key, Node)>, Option<Key>, usize),
}

/// Parses one YAML document. An empty document is an empty mapping.
pub fn parse(text: &str) -> Result<Node, YamlError> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    // Each anchored node, with how many nodes it holds and how deep it goes.
    let mut anchors: HashMap<usize, (Node, usize, usize)> = HashMap::new();
    let mut alias_nodes = 0usize;
    let mut root: Option<Node> = None;
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| YamlError {
            location: Location { line: e.marker().line(), column: e.marker().col() + 1 },
            message: e.info().to_owned(),
        })?;
        let here = location(&span);
        if stack.len() >= MAX_DEPTH && matches!(event, Event::SequenceStart(..) | Event::MappingStart(..)) {
            return Err(YamlError {
                location: here,
                message: format!("the document nests deeper than {MAX_DEPTH} levels"),
            });
        }
        let (node, anchor) = match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentStart(_) | Event::Nothing => continue,
            Event::DocumentEnd => break,
            Event::SequenceStart(anchor, _) => {
                stack.push(Frame::Seq(here, Vec::new(), anchor));
                continue;
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Frame::Map(here, Vec::new(), None, anchor));
                continue;
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq(loc, items, anchor)) => (Node { location: loc, kind: NodeKind::Seq(items) }, anchor),
                _ => return Err(YamlError { location: here, message: "unbalanced sequence".into() }),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map(loc, entries, _, anchor)) => {
                    (Node { location: loc, kind: NodeKind::Map(entries) }, anchor)
                }
                _ => return Err(YamlError { location: here, message: "unbalanced mapping".into() }),
            },
            Event::Scalar(text, style, anchor, _) => {
                let quoted = !matches!(style, ScalarStyle::Plain);
                let offset = usize::from(matches!(style, ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted));
                let kind = NodeKind::Scalar { text: text.into_owned(), quoted, offset };
                (Node { location: here, kind }, anchor)
            }
            Event::Alias(id) => match anchors.get(&id) {
                Some((node, nodes, depth)) => {
                    alias_nodes = alias_nodes.saturating_add(*nodes);
                    if alias_nodes > MAX_ALIAS_NODES {
                        return Err(YamlError {
                            location: here,
                            message: format!(
                                "aliases expand to more than {MAX_ALIAS_NODES} nodes in all (nested anchors \
                                 multiply: an alias bomb?); write the values out instead of aliasing them"
                            ),
                        });
                    }
                    if stack.len() + depth > MAX_DEPTH {
                        return Err(YamlError {
                            location: here,
                            message: format!("this alias nests the document deeper than {MAX_DEPTH} levels"),
                        });
                    }
                    (Node { location: here, ..node.clone() }, 0)
                }
                None => return Err(YamlError { location: here, message: "alias to an unknown anchor".into() }),
            },
        };
        if anchor != 0 {
            let (nodes, depth) = node.extent();
            anchors.insert(anchor, (node.clone(), nodes, depth));
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq(_, items, _)) => items.push(node),
            Some(Frame::Map(_, entries, pending, _)) => match pending.take() {
                None => {
                    let NodeKind::Scalar { text, offset, .. } = node.kind else {
                        return Err(YamlError {
                            location: node.location,
                            message: "mapping keys must be plain strings".into(),
                        });
                    };
                    if let Some((first, _)) = entries.iter().find(|(k, _)| k.text == text) {
                        return Err(YamlError {
                            location: node.location,
                            message: format!("duplicate key `{text}` (first defined at line {})", first.location.line),
                        });
                    }
                    *pending = Some(Key { text, location: node.location, offset });
                }
                Some(key) => entries.push((key, node)),
            },
        }
    }
    Ok(root.unwrap_or(Node { location: Location { line: 1, column: 1 }, kind: NodeKind::Map(Vec::new()) }))
}

impl Key {
    /// Where a position inside the key's text is.
    pub fn location_within(&self, byte_offset: usize) -> Location {
        let chars = self.text.get(..byte_offset).map_or(0, |t| t.chars().count());
        Location { line: self.location.line, column: self.location.column + self.offset + chars }
    }
}

impl Node {
    /// How many nodes this one holds (itself included) and how deep it goes (1 for a scalar).
    fn extent(&self) -> (usize, usize) {
        let children: Box<dyn Iterator<Item = &Node>> = match &self.kind {
            NodeKind::Scalar { .. } => return (1, 1),
            NodeKind::Seq(items) => Box::new(items.iter()),
            NodeKind::Map(entries) => Box::new(entries.iter().map(|(_, v)| v)),
        };
        children.fold((1, 1), |(nodes, depth), child| {
            let (n, d) = child.extent();
            (nodes.saturating_add(n), depth.max(d + 1))
        })
    }

    /// Converts to a JSON value, resolving plain scalars by YAML 1.2's core schema.
    pub fn to_json(&self) -> Value {
        match &self.kind {
            NodeKind::Scalar { text, quoted: true, .. } => Value::String(text.clone()),
            NodeKind::Scalar { text, quoted: false, .. } => resolve_plain(text),
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(entries) => {
                Value::Object(entries.iter().map(|(k, v)| (k.text.clone(), v.to_json())).collect::<Map<_, _>>())
            }
        }
    }

    /// The string a scalar holds, whatever its resolved type.
    pub fn as_scalar(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    pub fn entries(&self) -> &[(Key, Node)] {
        match &self.kind {
            NodeKind::Map(entries) => entries,
            _ => &[],
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries().iter().find(|(k, _)| k.text == key).map(|(_, v)| v)
    }

    pub fn key(&self, key: &str) -> Option<&Key> {
        self.entries().iter().find(|(k, _)| k.text == key).map(|(k, _)| k)
    }

    /// The node at `path`, or the deepest node on the way there.
    pub fn descend(&self, path: &[Segment]) -> &Node {
        let mut node = self;
        for segment in path {
            let next = match (segment, &node.kind) {
                (Segment::Key(k), NodeKind::Map(_)) => node.get(k),
                (Segment::Index(i), NodeKind::Seq(items)) => items.get(*i),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node
    }

    /// Where a position inside a scalar's text is, for errors that point into a template.
    pub fn location_within(&self, byte_offset: usize) -> Location {
        match &self.kind {
            NodeKind::Scalar { text, offset, .. } if !text[..byte_offset.min(text.len())].contains('\n') => {
                let chars = text.get(..byte_offset).map_or(0, |t| t.chars().count());
                Location { line: self.location.line, column: self.location.column + offset + chars }
            }
            _ => self.location,
        }
    }
}

fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return Value::Number(i.into());
    }
    let looks_numeric = text.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
        && text.bytes().any(|b| b.is_ascii_digit());
    if looks_numeric && let Some(n) = text.parse::<f64>().ok().and_then(Number::from_f64) {
        return Value::Number(n);
    }
    Value::String(text.to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keeps_locations_and_resolves_scalars() {
        let doc = parse("a: 1\nb:\n  - 'x'\n  - true\n  - ~\nc: \"2\"\n").unwrap();
        assert_eq!(doc.to_json(), json!({"a": 1, "b": ["x", true, null], "c": "2"}));
        assert_eq!(doc.key("b").unwrap().location, Location { line: 2, column: 1 });
        let item = doc.descend(&[Segment::Key("b".into()), Segment::Index(1)]);
        assert_eq!(item.location, Location { line: 4, column: 5 });
        assert_eq!(doc.get("c").unwrap().location_within(0), Location { line: 6, column: 5 });
    }

    #[test]
    fn reports_syntax_errors_and_duplicate_keys() {
        let error = parse("a: [1, 2\n").unwrap_err();
        assert!(error.location.line >= 1);
        let error = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(error.location, Location { line: 2, column: 1 });
        assert!(error.message.contains("duplicate key `a`"));
    }

    #[test]
    fn expands_aliases() {
        let doc = parse("x: &v {k: 1}\ny: *v\n").unwrap();
        assert_eq!(doc.to_json(), json!({"x": {"k": 1}, "y": {"k": 1}}));
    }

    /// Nine levels of nine aliases each: 9^9 (387 million) nodes if expanded, from 400 bytes.
    const ALIAS_BOMB: &str = "a: &a [x, x, x, x, x, x, x, x, x]\n\
        b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n\
        c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n\
        d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n\
        e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n\
        f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n\
        g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n\
        h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n\
        i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n";

    /// Peak memory of this process (Linux), in KiB.
    #[expect(clippy::disallowed_methods, reason = "reads the process's own peak memory")]
    fn peak_kib() -> usize {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    #[test]
    fn an_alias_bomb_is_a_located_error_in_bounded_memory() {
        let error = parse(ALIAS_BOMB).unwrap_err();
        assert_eq!(error.location.line, 6, "{error:?}");
        assert!(error.message.contains("alias bomb"), "{}", error.message);
        assert!(peak_kib() < 1024 * 1024, "peak {} KiB", peak_kib());
        // Legitimate reuse stays well within the bound.
        let reuse = "defaults: &d {a: 1, b: 2}\nusers:\n".to_owned() + &"  - {x: *d}\n".repeat(1000);
        assert!(parse(&reuse).is_ok());
    }

    #[test]
    fn depth_is_bounded_with_and_without_aliases() {
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(parse(&deep).unwrap_err().message.contains("deeper than 64 levels"));
        let nested = "[".repeat(MAX_DEPTH - 1) + &"]".repeat(MAX_DEPTH - 1);
        assert!(parse(&nested).is_ok());
        let anchored = format!("a: &a {}x{}\nb: [[[*a]]]\n", "[".repeat(MAX_DEPTH - 2), "]".repeat(MAX_DEPTH - 2));
        assert!(parse(&anchored).unwrap_err().message.contains("this alias nests"), "{:?}", parse(&anchored));
    }
}
