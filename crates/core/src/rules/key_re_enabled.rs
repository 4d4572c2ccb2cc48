//! NoEscalation, keys: enabling a disabled API key again is judged as
//! creating it. Cases: `key_re_enabled_cases.rs`.

use super::holdings::holds;
use super::{Change, Object, Requester, Rule, Violation, violation};
use crate::model::OrgState;
use crate::privilege::PrivilegeSet;

/// NoEscalation, keys: a disabled key holds nothing live; enabling it again
/// brings everything it holds back (its privileges, template and what access
/// lists grant it), so the requester must hold all of it, as for a new key.
/// Cases: `rules/key_cases.rs`.
pub(super) fn key_re_enabled(
    state: &OrgState,
    change: &Change,
    requester: &Requester,
    mine: &PrivilegeSet,
) -> Option<Violation> {
    let (Some(Object::ApiKey(old)), Some(Object::ApiKey(new))) = (change.old, change.new) else {
        return None;
    };
    if old.enabled || !new.enabled {
        return None;
    }
    let lacking = mine.missing(&holds(state, change.new, change.name));
    (!lacking.is_empty()).then(|| {
        violation(
            Rule::NoEscalation,
            "spec.enabled",
            format!(
                "{} cannot enable API key '{}' again: enabling a disabled key grants everything it holds, and they lack: {lacking}. \
                 Ask someone who holds it, or create a key with what you hold",
                requester.describe(),
                change.name
            ),
        )
    })
}
