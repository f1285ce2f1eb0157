//! What a manifest may read from a Microsoft Graph source: the properties of Graph v1.0's
//! `microsoft.graph.user` (sources serve users and group members, which are users), checked at
//! load so that a typo fails in `validate` instead of as Graph's
//! `400 Could not find a property named 'x' on type 'microsoft.graph.user'` in a scheduled run.
//!
//! Taken from Graph's v1.0 `user` resource documentation (properties and the JSON
//! representation): only these names may appear in `$select`; nested values are read as
//! `parent.child` and selected by their top-level property; directory extensions
//! (`extension_{appId}_{name}`) are the tenant's own and pass as written.

use super::error::did_you_mean;

/// The properties of `microsoft.graph.user` in v1.0 that `$select` accepts (navigation
/// properties excluded: `manager` is expanded, never selected).
pub const USER_PROPERTIES: &[&str] = &[
    "aboutMe",
    "accountEnabled",
    "ageGroup",
    "assignedLicenses",
    "assignedPlans",
    "authorizationInfo",
    "birthday",
    "businessPhones",
    "city",
    "companyName",
    "consentProvidedForMinor",
    "country",
    "createdDateTime",
    "creationType",
    "customSecurityAttributes",
    "deletedDateTime",
    "department",
    "displayName",
    "employeeHireDate",
    "employeeId",
    "employeeLeaveDateTime",
    "employeeOrgData",
    "employeeType",
    "externalUserState",
    "externalUserStateChangeDateTime",
    "faxNumber",
    "givenName",
    "hireDate",
    "id",
    "identities",
    "imAddresses",
    "interests",
    "isResourceAccount",
    "jobTitle",
    "lastPasswordChangeDateTime",
    "legalAgeGroupClassification",
    "licenseAssignmentStates",
    "mail",
    "mailNickname",
    "mailboxSettings",
    "mobilePhone",
    "mySite",
    "officeLocation",
    "onPremisesDistinguishedName",
    "onPremisesDomainName",
    "onPremisesExtensionAttributes",
    "onPremisesImmutableId",
    "onPremisesLastSyncDateTime",
    "onPremisesProvisioningErrors",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled",
    "onPremisesUserPrincipalName",
    "otherMails",
    "passwordPolicies",
    "passwordProfile",
    "pastProjects",
    "postalCode",
    "preferredDataLocation",
    "preferredLanguage",
    "preferredName",
    "provisionedPlans",
    "proxyAddresses",
    "responsibilities",
    "schools",
    "securityIdentifier",
    "showInAddressList",
    "signInSessionsValidFromDateTime",
    "skills",
    "state",
    "streetAddress",
    "surname",
    "usageLocation",
    "userPrincipalName",
    "userType",
];

/// The properties of `microsoft.graph.group` in v1.0 that scimform selects (a group's own
/// reads: `id`, `displayName`, and `members` on a group delta query).
pub const GROUP_PROPERTIES: &[&str] = &[
    "allowExternalSenders",
    "assignedLabels",
    "assignedLicenses",
    "autoSubscribeNewMembers",
    "classification",
    "createdDateTime",
    "deletedDateTime",
    "description",
    "displayName",
    "expirationDateTime",
    "groupTypes",
    "hasMembersWithLicenseErrors",
    "hideFromAddressLists",
    "hideFromOutlookClients",
    "id",
    "isArchived",
    "isAssignableToRole",
    "isSubscribedByMail",
    "licenseProcessingState",
    "mail",
    "mailEnabled",
    "mailNickname",
    "membershipRule",
    "membershipRuleProcessingState",
    "onPremisesDomainName",
    "onPremisesLastSyncDateTime",
    "onPremisesNetBiosName",
    "onPremisesProvisioningErrors",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled",
    "preferredDataLocation",
    "preferredLanguage",
    "proxyAddresses",
    "renewedDateTime",
    "securityEnabled",
    "securityIdentifier",
    "serviceProvisioningErrors",
    "theme",
    "uniqueName",
    "unseenCount",
    "visibility",
];

/// The complex user properties whose members are known, and those members.
const USER_COMPLEX: &[(&str, &[&str])] = &[
    (
        "onPremisesExtensionAttributes",
        &[
            "extensionAttribute1",
            "extensionAttribute2",
            "extensionAttribute3",
            "extensionAttribute4",
            "extensionAttribute5",
            "extensionAttribute6",
            "extensionAttribute7",
            "extensionAttribute8",
            "extensionAttribute9",
            "extensionAttribute10",
            "extensionAttribute11",
            "extensionAttribute12",
            "extensionAttribute13",
            "extensionAttribute14",
            "extensionAttribute15",
        ],
    ),
    ("employeeOrgData", &["costCenter", "division"]),
    ("authorizationInfo", &["certificateUserIds"]),
    ("passwordProfile", &["forceChangePasswordNextSignIn", "forceChangePasswordNextSignInWithMfa", "password"]),
];

/// Names a mapping reads that every source supplies: the record's `id` and whether it is
/// `disabled` (Graph: `accountEnabled: false`); `manager` is Graph's navigation property, read
/// by `$expand`.
const PSEUDO: &[&str] = &["id", "disabled", "manager"];

/// The top-level property a (possibly dotted) name reads: `employeeOrgData.division` ->
/// `employeeOrgData`.
pub fn top_level(name: &str) -> &str {
    name.split_once('.').map_or(name, |(top, _)| top)
}

/// Whether a name is a directory extension property (`extension_{appId without dashes}_{name}`).
fn is_directory_extension(name: &str) -> bool {
    name.get(..10).is_some_and(|p| p.eq_ignore_ascii_case("extension_"))
}

/// Checks a name a mapping reads from a Graph source; `Err((message, hint))` when Graph would
/// refuse it.
pub fn check_user_read(name: &str) -> Result<(), (String, Option<String>)> {
    if PSEUDO.iter().any(|p| p.eq_ignore_ascii_case(name)) || is_directory_extension(name) {
        return Ok(());
    }
    let (top, rest) = match name.split_once('.') {
        Some((top, rest)) => (top, Some(rest)),
        None => (name, None),
    };
    let Some(property) = USER_PROPERTIES.iter().find(|p| p.eq_ignore_ascii_case(top)) else {
        return Err((
            format!("`{top}` is not a property of a Microsoft Graph user (v1.0)"),
            did_you_mean(top, USER_PROPERTIES.iter().copied())
                .or_else(|| Some("see the `user` resource in Graph's v1.0 reference".into())),
        ));
    };
    let Some(rest) = rest else { return Ok(()) };
    let Some((_, members)) = USER_COMPLEX.iter().find(|(p, _)| p == property) else {
        return Err((
            format!("`{property}` has no properties of its own to read as `{name}`"),
            Some(format!("read `{property}` itself")),
        ));
    };
    if members.iter().any(|m| m.eq_ignore_ascii_case(rest)) {
        return Ok(());
    }
    let dotted: Vec<String> = members.iter().map(|m| format!("{property}.{m}")).collect();
    Err((format!("`{property}` has no property `{rest}`"), did_you_mean(name, dotted.iter().map(String::as_str))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_properties_pass_and_typos_get_a_suggestion() {
        assert!(check_user_read("userPrincipalName").is_ok());
        assert!(check_user_read("MAIL").is_ok(), "Graph names ignore case");
        assert!(check_user_read("onPremisesExtensionAttributes.extensionAttribute3").is_ok());
        assert!(check_user_read("employeeOrgData.costCenter").is_ok());
        assert!(check_user_read("extension_0123456789abcdef_costCentre").is_ok());
        assert!(check_user_read("disabled").is_ok());
        let (message, hint) = check_user_read("objectGUID").unwrap_err();
        assert_eq!(message, "`objectGUID` is not a property of a Microsoft Graph user (v1.0)");
        assert!(hint.is_some());
        let (_, hint) = check_user_read("userPrincipleName").unwrap_err();
        assert_eq!(hint.as_deref(), Some("did you mean `userPrincipalName`?"));
        let (message, hint) = check_user_read("employeeOrgData.divison").unwrap_err();
        assert_eq!(message, "`employeeOrgData` has no property `divison`");
        assert_eq!(hint.as_deref(), Some("did you mean `employeeOrgData.division`?"));
        let (message, _) = check_user_read("mail.value").unwrap_err();
        assert_eq!(message, "`mail` has no properties of its own to read as `mail.value`");
    }

    #[test]
    fn dotted_names_select_their_top_level_property() {
        assert_eq!(top_level("onPremisesExtensionAttributes.extensionAttribute3"), "onPremisesExtensionAttributes");
        assert_eq!(top_level("mail"), "mail");
    }
}
