//! Reading a response body with a bound: a service (or something posing as one) that answers
//! 100 MB, or an endless stream, is stopped at `limit` bytes instead of read whole.

/// A body larger than the bound, or one that broke off.
#[derive(Debug)]
pub enum BodyError {
    TooLarge { limit: usize },
    Transport(reqwest::Error),
}

/// The body of `response`, at most `limit` bytes: refused at once when `Content-Length` says
/// more, and as soon as the chunks read exceed it otherwise.
pub async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|length| length > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A limit in bytes, in the MiB a manifest writes it in, for messages.
pub fn mib(limit: usize) -> usize {
    limit / (1024 * 1024)
}
