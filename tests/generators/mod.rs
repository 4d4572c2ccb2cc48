//! Generators shared by the property tests: valid privileges over the catalog.

use orgaccess::core::catalog::{CATALOG, Create};
use orgaccess::core::privilege::{AccessLevel, PrivilegeSpec, ResourceAccess, ResourceLevel, spec};

/// One valid privilege on catalog domain `i`, chosen by `pick`; a Custom level
/// names resources from `names` (index modulo its length).
pub fn privilege(
    names: &[&str],
    i: usize,
    pick: u8,
    create: bool,
    res: Vec<(usize, bool)>,
) -> PrivilegeSpec {
    let d = &CATALOG[i];
    let o = d.offers;
    let mut options = vec![];
    if o.view {
        options.push(AccessLevel::View);
    }
    if o.edit {
        options.push(AccessLevel::Edit);
    }
    if o.allowed {
        options.push(AccessLevel::Allowed);
    }
    if o.push {
        options.push(AccessLevel::Push);
        options.push(AccessLevel::PushAndView);
    }
    if o.custom.is_some() {
        options.push(AccessLevel::Custom);
        options.push(AccessLevel::Custom);
    }
    let level = options[pick as usize % options.len()];
    let mut s = spec(d.service, d.name, level);
    if level == AccessLevel::Custom {
        let mut seen = std::collections::BTreeSet::new();
        s.resources = res
            .into_iter()
            .filter(|(r, _)| seen.insert(*r))
            .map(|(r, edit)| ResourceAccess {
                name: names[r % names.len()].into(),
                level: if edit {
                    ResourceLevel::Edit
                } else {
                    ResourceLevel::View
                },
            })
            .collect();
    }
    if create && o.create == Create::Choosable && level != AccessLevel::Edit {
        s.can_create = Some(true);
    }
    s
}
