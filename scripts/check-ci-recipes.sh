#!/usr/bin/env bash
# The CI recipes of docs/ci-recipes.md, run on synthetic pull requests.
#
# Makes a git repository whose base branch `main` holds examples/*.yaml as
# org/ (an "origin" bare repository, as a CI checkout has one), then two
# pull requests as branches pushed to it:
#   admin   Member ada-atlassian joins Administrators: the diff step fails
#           (--fail-on new-administrator) and its comment and SARIF name her;
#   viewer  she joins Analytics Viewers instead: every step passes.
# For each, the CI system's checkout is a fresh clone at the branch, and the
# recipes' own commands run in it as the CI systems run them: the GitHub
# Actions steps whose id starts with `orgaccess-` (one shell each,
# `bash -eo pipefail`, with the workflow's env), and the GitLab job's script
# (one shell, with its variables). The base is a second git worktree the
# steps add themselves (`git worktree add ... origin/main`).
#
# The commands come from the recipe files, extracted with a YAML parser by
# tests/cli/ci_recipes.rs, which runs this script and then validates what
# it leaves (the SARIF against the official schema, the JUnit XML with an
# XML parser): the documentation and this test cannot drift.
#
# Environment:
#   ORGACCESS_BIN     the orgaccess binary (on PATH as `orgaccess`)
#   RECIPE_STEPS      the extracted steps: github-env.sh, github-NN-<id>.sh..., gitlab-env.sh, gitlab.sh
#   CI_RECIPES_WORK   an empty directory to work in (kept: the test reads the outputs)
# Prints `check-ci-recipes: OK` when every expectation holds.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${ORGACCESS_BIN:?the orgaccess binary}
steps=${RECIPE_STEPS:?the steps extracted from the recipes}
work=${CI_RECIPES_WORK:?a directory to work in}

fail() { echo "check-ci-recipes: FAIL: $*" >&2; exit 1; }
ls "$steps"/github-[0-9][0-9]-*.sh >/dev/null 2>&1 || fail "no GitHub steps in $steps"
[[ -s $steps/gitlab.sh ]] || fail "no GitLab script in $steps"

mkdir -p "$work/bin" "$work/home"
ln -sf "$bin" "$work/bin/orgaccess"
export PATH="$work/bin:$PATH" HOME="$work/home" GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME=ci GIT_AUTHOR_EMAIL=ci@example.invalid
export GIT_COMMITTER_NAME=ci GIT_COMMITTER_EMAIL=ci@example.invalid
git config --global init.defaultBranch main
git config --global advice.detachedHead false

# The base branch: the examples as the organization's manifests.
git init -q --bare "$work/origin.git"
git clone -q "$work/origin.git" "$work/seed" 2>/dev/null
mkdir "$work/seed/org"
cp "$root"/examples/*.yaml "$work/seed/org/"
git -C "$work/seed" add org
git -C "$work/seed" commit -qm "the organization"
git -C "$work/seed" push -q origin HEAD:main

# A pull request: a branch pushed to origin whose org/20-members.yaml gives
# ada-atlassian one more group.
pull_request() {
  local name=$1 group=$2 dir="$work/edit-$1"
  git clone -q "$work/origin.git" "$dir"
  git -C "$dir" checkout -qb "$name"
  sed -i "s/groups: \[atlassian-administrators\]/groups: [atlassian-administrators, $group]/" \
    "$dir/org/20-members.yaml"
  git -C "$dir" diff --quiet && fail "$name: the edit changed nothing"
  git -C "$dir" commit -qam "ada-atlassian joins $group"
  git -C "$dir" push -q origin "$name"
}

# The CI system's checkout of pull request $1: a fresh clone at its branch.
checkout() {
  mkdir -p "$work/$1"
  git clone -q --branch "$1" "$work/origin.git" "$work/$1/$2"
}

# run_in DIR LABEL ENV_FILE SCRIPT: one recipe shell in a checkout; records
# its output and exit status beside the checkout.
run_in() {
  local dir=$1 label=$2 env_file=$3 script=$4 status=0
  (
    cd "$dir"
    set -a
    . "$env_file"
    set +a
    exec bash --noprofile --norc -eo pipefail "$script"
  ) >"$dir.$label.out" 2>"$dir.$label.err" || status=$?
  echo "$status" >"$dir.$label.exit"
  echo "$(basename "$(dirname "$dir")") $(basename "$dir"): $label exited $status"
}

github() {
  local name=$1 dir="$work/$1/github" step
  checkout "$name" github
  mkdir -p "$work/$name/runner"
  : >"$work/$name/github-output"
  : >"$work/$name/step-summary"
  {
    echo "GITHUB_BASE_REF=main"
    echo "GITHUB_HEAD_REF=$name"
    echo "GITHUB_EVENT_NAME=pull_request"
    echo "GITHUB_OUTPUT=$work/$name/github-output"
    echo "GITHUB_STEP_SUMMARY=$work/$name/step-summary"
    echo "RUNNER_TEMP=$work/$name/runner"
    echo "CI=true"
    cat "$steps/github-env.sh"
  } >"$work/$name/github.env"
  for step in "$steps"/github-[0-9][0-9]-*.sh; do
    run_in "$dir" "$(basename "$step" .sh)" "$work/$name/github.env" "$step"
  done
}

gitlab() {
  local name=$1 dir="$work/$1/gitlab"
  checkout "$name" gitlab
  {
    echo "CI_PIPELINE_SOURCE=merge_request_event"
    echo "CI_MERGE_REQUEST_TARGET_BRANCH_NAME=main"
    echo "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME=$name"
    echo "CI=true"
    cat "$steps/gitlab-env.sh"
  } >"$work/$name/gitlab.env"
  run_in "$dir" gitlab "$work/$name/gitlab.env" "$steps/gitlab.sh"
}

# expect_exit PR SYSTEM LABEL STATUS
expect_exit() {
  local got
  got=$(cat "$work/$1/$2.$3.exit")
  [[ $got == "$4" ]] || fail "$1: $2 $3 exited $got, expected $4; stderr:
$(cat "$work/$1/$2.$3.err")"
}

# names PR SYSTEM FILE TEXT: the file the recipe wrote holds TEXT.
names() {
  grep -qF -- "$4" "$work/$1/$2/$3" || fail "$1: $2's $3 does not name '$4':
$(head -c 3000 "$work/$1/$2/$3")"
}

pull_request admin administrators
pull_request viewer analytics-viewers
for pr in admin viewer; do
  github "$pr"
  gitlab "$pr"
done

check=$(basename "$(ls "$steps"/github-[0-9][0-9]-orgaccess-check.sh)" .sh)
diff=$(basename "$(ls "$steps"/github-[0-9][0-9]-orgaccess-diff.sh)" .sh)

# A new administrator: the check allows it (the platform applies it), the
# diff fails the job, and its comment, SARIF and Code Quality report say who.
expect_exit admin github "$check" 0
expect_exit admin github "$diff" 1
expect_exit admin gitlab gitlab 1
for system in github gitlab; do
  names admin $system orgaccess-diff.md '### ❌ orgaccess diff'
  names admin $system orgaccess-diff.md '| ❌ | new-administrator | error | 1 | 1 |'
  names admin $system orgaccess-diff.md 'Member/ada-atlassian becomes an administrator'
done
names admin github orgaccess-diff.sarif '"ruleId": "new-administrator"'
names admin github orgaccess-diff.sarif 'Member/ada-atlassian becomes an administrator'
names admin github orgaccess-diff.sarif '"uri": "org/20-members.yaml"'
names admin github orgaccess-check.sarif '"version": "2.1.0"'
names admin gitlab orgaccess-diff-codequality.json '"check_name": "new-administrator"'
names admin gitlab orgaccess-check.xml '<testsuites name="orgaccess check"'
names admin gitlab orgaccess-check-codequality.json '['
grep -q '^orgaccess check: ' "$work/admin/github.$check.out" ||
  fail "admin: no verdict line from check -o github"

# A new viewer: a gain, not an administrator; nothing fails.
expect_exit viewer github "$check" 0
expect_exit viewer github "$diff" 0
expect_exit viewer gitlab gitlab 0
names viewer github orgaccess-diff.md '### ✅ orgaccess diff'
names viewer github orgaccess-diff.md 'privilege-gained'
if grep -q 'new-administrator' "$work/viewer/github/orgaccess-diff.md"; then
  fail "viewer: the comment names a new administrator"
fi

echo "check-ci-recipes: OK"
