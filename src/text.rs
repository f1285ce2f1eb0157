//! Text from files a user hands us (manifests, people files): UTF-8, or an error that says on
//! which line it is not, so the user can find the byte an editor saved in another encoding.

use std::fmt;

/// Where a file stops being UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotUtf8 {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for NotUtf8 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {} is not UTF-8; save the file as UTF-8", self.line, self.column)
    }
}

impl std::error::Error for NotUtf8 {}

/// The bytes as text, or where they stop being UTF-8 (1-based line and column, in characters).
pub fn utf8(bytes: Vec<u8>) -> Result<String, NotUtf8> {
    String::from_utf8(bytes).map_err(|error| {
        let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
        // The prefix is valid UTF-8 by definition.
        let valid = std::str::from_utf8(valid).unwrap_or_default();
        let line = valid.matches('\n').count() + 1;
        let column = valid.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        NotUtf8 { line, column }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_line_and_column() {
        assert_eq!(utf8(b"a: 1\n".to_vec()).unwrap(), "a: 1\n");
        let error = utf8(b"a: 1\nb: caf\xe9\n".to_vec()).unwrap_err();
        assert_eq!(error, NotUtf8 { line: 2, column: 7 });
        assert_eq!(error.to_string(), "line 2, column 7 is not UTF-8; save the file as UTF-8");
        assert_eq!(utf8(b"\xc3\xa9\n\xc3\xa9\xff".to_vec()).unwrap_err(), NotUtf8 { line: 2, column: 2 });
    }
}
