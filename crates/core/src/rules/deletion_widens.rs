//! NoEscalation, deletions: deleting a group or API key that a re-creation
//! from its manifest would bring back wider. Cases:
//! `deletion_widens_cases.rs`.

use super::holdings::holds;
use super::{Change, Object, Operation, Requester, Rule, Violation, violation};
use crate::model::{ApiKeyDef, GroupDef, OrgState};
use crate::privilege::PrivilegeSet;

/// Deleting hands an object's re-creation to whoever applies its manifest
/// (a GitOps self-heal restores deleted objects), and every field the
/// manifest does not name comes back with its default: a disabled key
/// enabled, a group's or key's template without the explicit privileges that
/// narrowed it. What the object would hold then beyond what it holds now is
/// granted by the deletion: the requester must hold it (the second-order
/// invariant, docs/security.md).
pub(super) fn deletion_widens(
    state: &OrgState,
    change: &Change,
    requester: &Requester,
    mine: &PrivilegeSet,
) -> Vec<Violation> {
    if change.operation != Operation::Delete {
        return Vec::new();
    }
    let (now, restored, what) = match change.old {
        Some(Object::ApiKey(k)) => {
            let now = if k.enabled {
                holds(state, change.old, change.name)
            } else {
                PrivilegeSet::new()
            };
            let bare = ApiKeyDef {
                enabled: true,
                privileges: Vec::new(),
                ..k.clone()
            };
            let restored = holds(state, change.old, change.name).merge(&holds(
                state,
                Some(Object::ApiKey(&bare)),
                change.name,
            ));
            let what = if k.enabled {
                "its template without the explicit privileges that narrow it"
            } else {
                "enabled again, and its template without the explicit privileges that narrow it"
            };
            (now, restored, ("API key", what))
        }
        Some(Object::Group(g)) => {
            let bare = GroupDef {
                privileges: Vec::new(),
                ..g.clone()
            };
            let now = holds(state, change.old, change.name);
            let restored = now.merge(&holds(state, Some(Object::Group(&bare)), change.name));
            (
                now,
                restored,
                (
                    "group",
                    "its template without the explicit privileges that narrow it",
                ),
            )
        }
        _ => return Vec::new(),
    };
    let widened = now.missing(&restored);
    let lacking = mine.missing(&widened);
    if lacking.is_empty() {
        return Vec::new();
    }
    let (kind, what) = what;
    vec![violation(
        Rule::NoEscalation,
        "metadata.name",
        format!(
            "{} cannot delete {kind} '{}': re-created from its manifest (a GitOps sync restores deleted objects) with the \
             defaults of the fields the manifest does not name ({what}), it would grant {widened}, and they lack: {lacking}. \
             Ask someone who holds it, or leave it",
            requester.describe(),
            change.name
        ),
    )]
}
