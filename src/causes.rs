//! An error and the errors that caused it, on one line: libraries (reqwest, tokio-postgres) keep
//! the reason out of their message, a TLS handshake's say. `report` adds the hint.

use std::error::Error;

/// `error: cause: cause's cause`.
pub fn causes(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    for cause in std::iter::successors(error.source(), |e| (*e).source()) {
        text.push_str(": ");
        text.push_str(&cause.to_string());
    }
    text
}
