"""Least privilege in infra/template.yaml: each function runs with its own role (no SAM policy
templates, no managed policies), whose statements allow only the actions the function calls
(function-calls.yaml, beside this file), each on resources of the template itself; no `*`
action or resource anywhere. Then the same check is shown to catch a wildcard, an action
no code calls, a SAM Crud policy and a stale entry of the list (mutated copies of the
template), so a broken check cannot pass quietly. Run from the repository's root."""

import copy
import os
import sys

import yaml

sys.path.insert(0, os.path.dirname(__file__))
import template as tpl  # noqa: E402

CALLS = os.path.join(os.path.dirname(__file__), "function-calls.yaml")


def as_list(v):
    return v if isinstance(v, list) else [v]


def flat(statements):
    """The statements of a policy, each branch of an `Fn::If` counted (a deployment may take
    either)."""
    for st in as_list(statements):
        if isinstance(st, dict) and "Fn::If" in st:
            yield from flat([b for b in st["Fn::If"][1:] if b != {"Ref": "AWS::NoValue"}])
        else:
            yield st


def evidence_problems(calls):
    """Each place the list names must still make its call."""
    problems = []
    for fn, actions in calls.items():
        for action, places in actions.items():
            for place in places:
                path, text = place.split(": ", 1)
                try:
                    body = open(path).read()
                except OSError as e:
                    problems.append(f"{fn} {action}: {path}: {e}")
                    continue
                if text not in body:
                    problems.append(f"{fn} {action}: {path} no longer holds {text!r}")
    return problems


def role_of(template, name, fn):
    role = fn["Properties"].get("Role")
    refs = tpl.referenced(role) if role is not None else []
    if len(refs) != 1 or not refs[0].endswith(".Arn"):
        return None, f"{name} has no role of its own (Role: !GetAtt <role>.Arn)"
    role_id = refs[0][: -len(".Arn")]
    resource = template["Resources"].get(role_id)
    if not resource or resource["Type"] != "AWS::IAM::Role":
        return None, f"{name}'s Role {role_id} is not an AWS::IAM::Role of the template"
    return role_id, None


def problems(template, calls):
    calls = dict(calls)
    exceptions = calls.pop("Exceptions", {})
    unscoped = set(exceptions.get("unscoped", []))
    account_scoped = set(exceptions.get("account_scoped", []))
    # Actions on resources the deployer names in a parameter (functions outside the stack).
    given = {a: set(ps) for a, ps in exceptions.get("given", {}).items()}
    found = []
    resources = template["Resources"]
    roles_seen = {}
    for name, fn in tpl.functions(template).items():
        props = fn["Properties"]
        for key in ("Policies", "PermissionsBoundary"):
            if key in props:
                found.append(f"{name} has {key}: its rights belong in its own role's statements")
        role_id, problem = role_of(template, name, fn)
        if problem:
            found.append(problem)
            continue
        if role_id in roles_seen:
            found.append(f"{name} shares role {role_id} with {roles_seen[role_id]}")
        roles_seen[role_id] = name
        role = resources[role_id]["Properties"]
        if role.get("ManagedPolicyArns"):
            found.append(f"{role_id} attaches managed policies {role['ManagedPolicyArns']}")
        granted = set()
        for policy in role.get("Policies", []):
            for st in flat(policy["PolicyDocument"]["Statement"]):
                sid = f"{role_id}/{st.get('Sid', '?')}"
                if st.get("Effect") != "Allow":
                    continue
                if "NotAction" in st or "NotResource" in st:
                    found.append(f"{sid} uses NotAction/NotResource")
                for action in as_list(st.get("Action", [])):
                    if "*" in action:
                        found.append(f"{sid} allows the wildcard action {action!r}")
                    granted.add(action)
                    if action not in calls.get(name, {}):
                        found.append(f"{sid} allows {action}, which {name}'s code never calls "
                                     f"(not in {os.path.basename(CALLS)})")
                actions = set(as_list(st.get("Action", [])))
                for res in as_list(st.get("Resource", [])):
                    refs = tpl.referenced(res)
                    if res == "*" and actions <= unscoped:
                        continue
                    if refs and all(r.startswith("AWS::") for r in refs) and actions <= account_scoped:
                        continue
                    if refs and all(r in given.get(a, set()) for a in actions for r in refs):
                        continue
                    if res == "*" or (isinstance(res, str) and "*" in res):
                        found.append(f"{sid} allows {st.get('Action')} on {res!r}")
                    elif not refs or not all(r.split(".")[0] in resources for r in refs):
                        found.append(f"{sid}: resource {res!r} is not one of the template's")
        for action in calls.get(name, {}):
            if action not in granted:
                found.append(f"{name} calls {action} ({os.path.basename(CALLS)}) but "
                             f"{role_id} does not grant it")
    for name in calls:
        if name not in tpl.functions(template):
            found.append(f"{os.path.basename(CALLS)} lists {name}, which the template lacks")
    return found


def statements(template, role_id):
    return template["Resources"][role_id]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]


def statement(template, role_id, sid):
    return next(st for st in flat(statements(template, role_id)) if st.get("Sid") == sid)


def main():
    template = tpl.load()
    with open(CALLS) as f:
        calls = yaml.safe_load(f)
    bad = evidence_problems({k: v for k, v in calls.items() if k != "Exceptions"}) + problems(template, calls)
    if bad:
        sys.exit("least privilege: infra/template.yaml\n  " + "\n  ".join(bad))
    print("ok: each function's role holds only the actions its code calls, on the template's "
          "own resources, without wildcards", file=sys.stderr)

    # The check catches what it is for.
    mutations = {
        "a wildcard action": lambda t: statement(t, "WorkerFunctionRole", "Items").update(Action="dynamodb:*"),
        "a wildcard resource": lambda t: statement(t, "ApiFunctionRole", "Files").update(Resource="*"),
        "an action no code calls": lambda t: statement(t, "SchedulerFunctionRole", "Items")["Action"].append("dynamodb:Scan"),
        "a `*` resource for an action IAM can scope": lambda t: statement(t, "WorkerFunctionRole", "NetworkInterfaces").update(Resource="*"),
        "a SAM Crud policy": lambda t: t["Resources"]["ApiFunction"]["Properties"].update(
            Policies=[{"DynamoDBCrudPolicy": {"TableName": {"Ref": "Table"}}}]),
        "a stale entry of the list": lambda t: statements(t, "ApiFunctionRole").pop(),
    }
    for what, mutate in mutations.items():
        copied = copy.deepcopy(template)
        mutate(copied)
        if not problems(copied, calls):
            sys.exit(f"least privilege: the check let {what} through")
    print(f"ok: the check refuses {', '.join(mutations)}", file=sys.stderr)


if __name__ == "__main__":
    main()
