//! What differs between SCIM services, as data: page sizes, listing passes, attributes to leave
//! out of lists, how a stale `If-Match` is answered.

use crate::manifest::model::Profile;
use crate::scim::ScimPath;

pub use crate::scim::GENESYS_USER_SCHEMA;

/// Attributes Genesys computes per user on every list; a page over 25 can be refused with 429
/// unless they are excluded.
const GENESYS_EXPENSIVE: &[&str] = &[
    "externalId",
    "roles",
    "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User:routingSkills",
    "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User:routingLanguages",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileSettings {
    /// Users per list request when the service does not say how many it gives (`filter.maxResults`).
    pub page_size: usize,
    /// The most per list request, whatever the service says it gives.
    pub max_page_size: usize,
    /// Genesys lists only active users without a filter: list `active eq false` as a second pass.
    pub list_inactive_separately: bool,
    /// `excludedAttributes` for user lists.
    pub excluded_attributes: Vec<String>,
    /// Whether to trust the service's `/ServiceProviderConfig` (generic) or known facts (Genesys).
    pub read_service_provider_config: bool,
    /// Whether the service may filter users on `meta.lastModified` (asked once; Genesys does not).
    pub filters_modified: bool,
    /// The page size that asks only for `totalResults`: RFC 7644's `count=0`, or a page of one
    /// where the service does not document `0` (Genesys).
    pub count_probe: usize,
}

impl ProfileSettings {
    /// Settings for a profile; `managed` are the attributes the manifest compares, which are never
    /// excluded from lists.
    pub fn new(profile: Profile, managed: &[ScimPath]) -> Self {
        match profile {
            Profile::Generic => Self {
                page_size: 100,
                max_page_size: 1000,
                list_inactive_separately: false,
                excluded_attributes: Vec::new(),
                read_service_provider_config: true,
                filters_modified: true,
                count_probe: 0,
            },
            Profile::Genesys => Self {
                page_size: 25,
                max_page_size: 25,
                list_inactive_separately: true,
                excluded_attributes: GENESYS_EXPENSIVE
                    .iter()
                    .filter(|expensive| {
                        let expensive = ScimPath::parse(expensive).ok();
                        !managed.iter().any(|m| Some(m.parent()) == expensive.as_ref().map(ScimPath::parent))
                    })
                    .map(|s| (*s).to_owned())
                    .collect(),
                read_service_provider_config: false,
                filters_modified: false,
                count_probe: 1,
            },
        }
    }
}

impl ProfileSettings {
    /// Resources per list request: what the service says it gives (`filter.maxResults`), within
    /// the profile's bound, else the profile's default.
    pub fn page_size_for(&self, max_results: Option<usize>) -> usize {
        max_results.map_or(self.page_size, |m| m.clamp(1, self.max_page_size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesys_excludes_only_what_is_not_managed() {
        let managed = [ScimPath::parse("externalId").unwrap(), ScimPath::parse("title").unwrap()];
        let settings = ProfileSettings::new(Profile::Genesys, &managed);
        assert_eq!(settings.page_size, 25);
        assert!(!settings.excluded_attributes.contains(&"externalId".to_owned()));
        assert!(settings.excluded_attributes.contains(&"roles".to_owned()));
        assert_eq!(settings.excluded_attributes.len(), 3);
        assert!(ProfileSettings::new(Profile::Generic, &managed).excluded_attributes.is_empty());
        assert_eq!(settings.page_size_for(Some(1000)), 25, "Genesys: 25 a page with expensive attributes");
        let generic = ProfileSettings::new(Profile::Generic, &managed);
        assert_eq!(generic.page_size_for(None), 100);
        assert_eq!(generic.page_size_for(Some(1000)), 1000);
        assert_eq!(generic.page_size_for(Some(50_000)), 1000);
        assert_eq!(generic.page_size_for(Some(0)), 1);
    }
}
