//! A saved plan's preconditions checked against the target before it is applied: every
//! resource it touches read again, and those no longer as the plan found them named.

use futures_util::StreamExt;
use futures_util::stream;

use super::Subject;
use crate::plan::precondition::{group_fingerprint, user_fingerprint};
use crate::plan::{Plan, Precondition, UserChange};
use crate::scim::ScimPath;
use crate::scim::resource::version_of;
use crate::service::{CurrentGroup, TargetError, TargetReader};

/// A resource a saved plan touches that is no longer as the plan found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    /// The user or group the request is about.
    pub subject: Subject,
    pub what: String,
}

/// Reads every resource the plan touches again and returns those that changed since the plan
/// was made, in plan order. `managed` must be the paths the plan's fingerprints were made of.
pub async fn check_preconditions<R: TargetReader>(
    plan: &Plan,
    reader: &R,
    managed: &[ScimPath],
    concurrency: usize,
) -> Result<Vec<Stale>, TargetError> {
    enum Kind<'a> {
        User(&'a UserChange),
        Group(&'a crate::plan::GroupChange),
    }
    let items: Vec<Kind> = plan.users.iter().map(Kind::User).chain(plan.groups.iter().map(Kind::Group)).collect();
    let mut checked: Vec<(usize, Option<Stale>)> = stream::iter(items.iter().enumerate())
        .map(|(index, item)| async move {
            let (resource, what) = match item {
                Kind::User(change) => (Subject::User(change.key.clone()), check_user(change, reader, managed).await?),
                Kind::Group(change) => (Subject::Group(change.name.clone()), check_group(change, reader).await?),
            };
            Ok::<_, TargetError>((index, what.map(|what| Stale { subject: resource, what })))
        })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    checked.sort_by_key(|(index, _)| *index);
    Ok(checked.into_iter().filter_map(|(_, stale)| stale).collect())
}

async fn check_user<R: TargetReader>(
    change: &UserChange,
    reader: &R,
    managed: &[ScimPath],
) -> Result<Option<String>, TargetError> {
    let Some(id) = &change.target_id else {
        let Some(user_name) = change.user_name() else { return Ok(None) };
        let found = reader.find("/Users", "userName", user_name).await?;
        return Ok((!found.is_empty()).then(|| "a user with this userName was created in the target".to_owned()));
    };
    let Some(resource) = reader.fetch(&format!("/Users/{id}")).await? else {
        return Ok(Some(format!("user {id} was deleted from the target")));
    };
    Ok(match &change.precondition {
        Precondition::Etag(planned) => {
            let now = version_of(&resource);
            (now.as_deref() != Some(planned.as_str())).then(|| {
                format!("its version is {} now, the plan was made at {planned}", now.as_deref().unwrap_or("(none)"))
            })
        }
        Precondition::Sha256(planned) => (user_fingerprint(&resource, managed) != *planned)
            .then(|| "its managed attributes changed in the target".to_owned()),
        Precondition::Absent => None,
    })
}

async fn check_group<R: TargetReader>(
    change: &crate::plan::GroupChange,
    reader: &R,
) -> Result<Option<String>, TargetError> {
    if change.create {
        let found = reader.find("/Groups", "displayName", &change.display_name).await?;
        return Ok((!found.is_empty()).then(|| "a group with this displayName was created in the target".to_owned()));
    }
    let Some(group) = reader.fetch(&format!("/Groups/{}", change.target_id)).await? else {
        return Ok(Some(format!("group {} was deleted from the target", change.target_id)));
    };
    let Some(group) = CurrentGroup::from_resource(&group) else {
        return Ok(Some("the target answered a group without an id".to_owned()));
    };
    Ok(match &change.precondition {
        Precondition::Etag(planned) => (group.version.as_deref() != Some(planned.as_str())).then(|| {
            format!(
                "its version is {} now, the plan was made at {planned}",
                group.version.as_deref().unwrap_or("(none)")
            )
        }),
        Precondition::Sha256(planned) => (group_fingerprint(&group.display_name, &group.members) != *planned)
            .then(|| "its name or members changed in the target".to_owned()),
        Precondition::Absent => None,
    })
}
