//! `--as USER [--as-group GROUP]...`: the one flag set of every command that
//! acts as a Kubernetes identity (`check`, `duplicate group`, `can-i`),
//! flattened into each (`#[command(flatten)]`). It means what kubectl's
//! `--as` means: the apiserver admits the request as that user, in the
//! groups given and `system:authenticated`, and the organization maps the
//! user to the Members whose `spec.subjects` match it, as admission does.

use clap::Args;

use crate::judge::Asker;

/// The group the apiserver adds to every authenticated (or impersonated) user.
pub const AUTHENTICATED: &str = "system:authenticated";

#[derive(Args, Clone, Debug, Default)]
pub struct AsArgs {
    /// Act as this Kubernetes user (as `kubectl --as`): it is mapped to the
    /// Members whose spec.subjects match it, as admission maps a requester.
    #[arg(long = "as", value_name = "USER")]
    pub as_user: Option<String>,
    /// A Kubernetes group of the --as user (as `kubectl --as-group`). Repeatable.
    #[arg(long = "as-group", value_name = "GROUP", requires = "as_user")]
    pub as_groups: Vec<String>,
}

/// A Kubernetes identity as admission sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    /// The `--as-group`s, then `system:authenticated`, each once.
    pub groups: Vec<String>,
}

impl AsArgs {
    /// The identity the apiserver admits `kubectl --as USER --as-group G...`
    /// as: the user, the groups given and `system:authenticated`. `None`
    /// without `--as`.
    pub fn identity(&self) -> Option<Identity> {
        let user = self.as_user.clone()?;
        let mut groups: Vec<String> = Vec::with_capacity(self.as_groups.len() + 1);
        for g in self
            .as_groups
            .iter()
            .map(String::as_str)
            .chain([AUTHENTICATED])
        {
            if !groups.iter().any(|x| x == g) {
                groups.push(g.to_string());
            }
        }
        Some(Identity { user, groups })
    }
}

impl Identity {
    /// Who asks, for the judging pipeline.
    pub fn asker(&self) -> Asker<'_> {
        Asker::Identity {
            user: &self.user,
            groups: &self.groups,
        }
    }
}

/// Who asks: `identity`, or without `--as` a trusted platform principal.
pub fn asker(identity: Option<&Identity>) -> Asker<'_> {
    identity.map_or(Asker::Trusted, Identity::asker)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        who: AsArgs,
    }

    fn identity(args: &[&str]) -> Option<Identity> {
        Cli::try_parse_from(["orgaccess"].iter().chain(args))
            .unwrap()
            .who
            .identity()
    }

    /// As kubectl's `--as`: the user, the groups given, `system:authenticated`;
    /// nothing else (a service account gets no `system:serviceaccounts`
    /// groups here: no Member subject can name a `system:` group anyway).
    #[test]
    fn as_means_what_kubectl_means() {
        type Case<'a> = (&'a [&'a str], Option<(&'a str, &'a [&'a str])>);
        let cases: [Case; 5] = [
            (&[], None),
            (&["--as", "ada"], Some(("ada", &[AUTHENTICATED]))),
            (
                &["--as", "ada", "--as-group", "devs", "--as-group", "ops"],
                Some(("ada", &["devs", "ops", AUTHENTICATED])),
            ),
            (
                &["--as", "ada", "--as-group", AUTHENTICATED],
                Some(("ada", &[AUTHENTICATED])),
            ),
            (
                &["--as", "system:serviceaccount:ci:deployer"],
                Some(("system:serviceaccount:ci:deployer", &[AUTHENTICATED])),
            ),
        ];
        for (args, want) in cases {
            let want = want.map(|(user, groups)| Identity {
                user: user.into(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
            });
            assert_eq!(identity(args), want, "{args:?}");
        }
    }

    #[test]
    fn a_group_needs_a_user() {
        assert!(Cli::try_parse_from(["orgaccess", "--as-group", "devs"]).is_err());
    }

    #[test]
    fn without_as_the_asker_is_trusted() {
        assert!(matches!(asker(None), Asker::Trusted));
        let id = identity(&["--as", "ada"]).unwrap();
        assert!(matches!(
            asker(Some(&id)),
            Asker::Identity { user: "ada", .. }
        ));
    }
}
