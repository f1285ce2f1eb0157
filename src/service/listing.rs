//! One listing of a SCIM collection, page by page, without trusting the service to page
//! correctly: a resource seen twice (a service that ignores `startIndex` sends the first page
//! again and again), more resources than the first page's `totalResults` (plus a page and 1 %
//! for users added meanwhile), more than `target.max_resources`, or an empty page before
//! `totalResults` is reached each stop the listing: a plan on a partial listing would create
//! users that exist and miss owned ones.
//!
//! The pages after the first are fetched several at a time (a window of the client's
//! `concurrency`): once the first page tells `totalResults` and how many a page holds, the next
//! pages' `startIndex`es are known. They are taken in order of `startIndex`, so the result is the same whatever order
//! they arrive in; a page shorter than the first means the guesses after it were wrong, and the
//! listing goes on from where that page ended.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};

use serde_json::Value;

use super::TargetError;
use crate::scim::resource::{ListResponse, id_of};
use crate::scim::{ScimRequest, ScimResponse};

/// Guards against a server whose `totalResults` never ends.
pub const MAX_PAGES: usize = 100_000;

/// The list response a request was answered with.
pub fn page_of(request: &ScimRequest, response: ScimResponse) -> Result<ListResponse<Value>, TargetError> {
    response
        .body
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| TargetError::Protocol { request: request.to_string(), detail: e.to_string() })?
        .ok_or_else(|| TargetError::Protocol { request: request.to_string(), detail: "empty list response".into() })
}

/// What a listing has read so far.
pub struct Walk<T> {
    path: String,
    page_size: usize,
    max_resources: usize,
    /// Ids already read, hashed: a repeat means the service is not paging.
    seen: HashSet<u64>,
    hasher: RandomState,
    first_total: Option<usize>,
    /// `totalResults` as the last page said it.
    total: usize,
    read: usize,
    /// How many resources the first page held: what the next pages are expected to hold.
    step: usize,
    resources: Vec<T>,
}

impl<T> Walk<T> {
    pub fn new(path: &str, page_size: usize, max_resources: usize) -> Self {
        Self {
            path: path.to_owned(),
            page_size,
            max_resources,
            seen: HashSet::new(),
            hasher: RandomState::new(),
            first_total: None,
            total: 0,
            read: 0,
            step: page_size,
            resources: Vec::new(),
        }
    }

    /// The `startIndex` the next page must have.
    pub fn next(&self) -> usize {
        self.read + 1
    }

    /// The `startIndex`es of the pages from the next one as far as `totalResults` reaches (at
    /// least the next one), each a page after the other.
    pub fn remaining_starts(&self) -> Vec<usize> {
        let mut starts: Vec<usize> = (self.next()..=self.total).step_by(self.step.max(1)).collect();
        if starts.is_empty() {
            starts.push(self.next());
        }
        starts
    }

    /// The resources read, in listing order.
    pub fn into_resources(self) -> Vec<T> {
        self.resources
    }

    fn broken(&self, detail: String) -> TargetError {
        TargetError::Listing { path: self.path.clone(), detail }
    }

    /// Takes the page that starts at `start` (`next()`), keeping what `keep` makes of each
    /// resource `selected` lets through. `Ok(true)` when the listing is complete; `Ok(false)`
    /// when it goes on from `next()` (`short` tells whether the page held fewer than expected).
    pub fn take(
        &mut self,
        start: usize,
        page: ListResponse<Value>,
        selected: impl Fn(&Value) -> bool,
        keep: impl Fn(Value) -> Option<T>,
    ) -> Result<Taken, TargetError> {
        let received = page.resources.len();
        let first = self.first_total.is_none();
        if received > self.page_size && first {
            // RFC 7644 makes `count` a maximum; some services send everything at once. The
            // bounds below still hold, and the body is within `max_response_mib`.
            tracing::warn!(
                "GET {}: the service sent {received} resources where {} were asked for; reading on",
                self.path,
                self.page_size
            );
        }
        let limit = self.max_resources;
        let reported = *self.first_total.get_or_insert(page.total_results);
        let bound = reported + self.page_size + reported / 100;
        if page.total_results > limit || self.read + received > limit {
            return Err(self.broken(format!(
                "the service reports {} resources, more than `target.max_resources` ({limit}); raise it if that is expected",
                page.total_results.max(self.read + received)
            )));
        }
        if self.read + received > bound {
            return Err(self.broken(format!(
                "the service keeps sending resources beyond the {reported} its first page reported \
                 ({} read, totalResults now {})",
                self.read + received,
                page.total_results
            )));
        }
        for resource in &page.resources {
            let id = id_of(resource).unwrap_or_default();
            if !id.is_empty() && !self.seen.insert(self.hasher.hash_one(id)) {
                return Err(self.broken(format!(
                    "`{id}` came again in the page at startIndex {start}: the service does not page \
                     (does it ignore `startIndex`?)"
                )));
            }
        }
        if received == 0 && self.read < page.total_results {
            return Err(self.broken(format!(
                "the page at startIndex {start} is empty after {} of the {} resources it reports: \
                 the listing ended short",
                self.read, page.total_results
            )));
        }
        if first && received > 0 {
            self.step = received.min(self.page_size);
        }
        self.resources.extend(page.resources.into_iter().filter(|r| selected(r)).filter_map(keep));
        self.read += received;
        self.total = page.total_results;
        Ok(if received == 0 || self.read >= page.total_results {
            Taken::Complete
        } else if received < self.step {
            Taken::Short
        } else {
            Taken::Full
        })
    }
}

/// What a page did to its listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// The listing is complete.
    Complete,
    /// A page as long as expected: the next guessed page follows it.
    Full,
    /// Fewer than expected: the guessed pages after it start in the wrong place.
    Short,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A page of `ids` (as the service numbers them) from a listing of `total`.
    fn page(ids: std::ops::Range<usize>, total: usize) -> ListResponse<Value> {
        serde_json::from_value(json!({
            "totalResults": total,
            "Resources": ids.map(|i| json!({"id": format!("u{i}")})).collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    fn take(walk: &mut Walk<String>, start: usize, page: ListResponse<Value>) -> Result<Taken, TargetError> {
        walk.take(start, page, |_| true, |r| r["id"].as_str().map(str::to_owned))
    }

    #[test]
    fn the_next_pages_are_guessed_from_the_first_and_stop_at_the_total() {
        let mut walk = Walk::new("/Users", 4, 1_000);
        assert_eq!(take(&mut walk, 1, page(0..4, 10)).unwrap(), Taken::Full);
        assert_eq!(walk.remaining_starts(), [5, 9]);
        assert_eq!(take(&mut walk, 5, page(4..8, 10)).unwrap(), Taken::Full);
        assert_eq!(take(&mut walk, 9, page(8..10, 10)).unwrap(), Taken::Complete);
        assert_eq!(walk.into_resources().len(), 10);
    }

    #[test]
    fn a_service_that_gives_fewer_than_asked_sets_the_step() {
        let mut walk = Walk::new("/Users", 100, 1_000);
        assert_eq!(take(&mut walk, 1, page(0..30, 100)).unwrap(), Taken::Full);
        assert_eq!(walk.remaining_starts(), [31, 61, 91]);
    }

    #[test]
    fn a_short_page_says_the_guesses_after_it_are_wrong() {
        let mut walk = Walk::new("/Users", 4, 1_000);
        take(&mut walk, 1, page(0..4, 12)).unwrap();
        assert_eq!(take(&mut walk, 5, page(4..6, 12)).unwrap(), Taken::Short);
        assert_eq!(walk.next(), 7, "goes on from where the short page ended");
        assert_eq!(walk.remaining_starts(), [7, 11]);
    }

    #[test]
    fn a_repeated_page_an_empty_page_and_too_many_stop_the_listing() {
        let mut walk = Walk::new("/Users", 4, 1_000);
        take(&mut walk, 1, page(0..4, 12)).unwrap();
        let repeated = take(&mut walk, 5, page(0..4, 12)).unwrap_err().to_string();
        assert!(repeated.contains("came again in the page at startIndex 5"), "{repeated}");

        let mut walk = Walk::new("/Users", 4, 1_000);
        take(&mut walk, 1, page(0..4, 12)).unwrap();
        let empty = take(&mut walk, 5, page(0..0, 12)).unwrap_err().to_string();
        assert!(empty.contains("is empty after 4 of the 12"), "{empty}");

        let mut walk = Walk::new("/Users", 4, 10);
        let many = take(&mut walk, 1, page(0..4, 11)).unwrap_err().to_string();
        assert!(many.contains("more than `target.max_resources` (10)"), "{many}");
    }
}
