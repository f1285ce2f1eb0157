//! Graph URLs: values percent-encoded, paths for messages (without the query).

/// Percent-encodes a query or path value (RFC 3986 unreserved characters pass).
pub(super) fn encode(value: &str) -> String {
    value.bytes().fold(String::with_capacity(value.len()), |mut out, b| {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b',' | b'$') {
            out.push(char::from(b));
        } else {
            let _ = std::fmt::Write::write_fmt(&mut out, format_args!("%{b:02X}"));
        }
        out
    })
}

pub(super) fn path_of(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, r)| r);
    after_scheme.find('/').map_or("/", |i| after_scheme[i..].split('?').next().unwrap_or("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_and_paths() {
        assert_eq!(encode("displayName eq 'A&B'"), "displayName%20eq%20%27A%26B%27");
        assert_eq!(path_of("https://graph.example/v1.0/users?$top=1"), "/v1.0/users");
    }
}
