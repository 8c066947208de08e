"""Reads infra/template.yaml the way CloudFormation does: the short forms of intrinsic
functions (`!Ref`, `!GetAtt`, `!Sub`, ...) become their long forms (`{"Ref": ...}`,
`{"Fn::GetAtt": [...]}`), so the SAM translator and the checks see one plain dictionary."""

import yaml

TEMPLATE = "infra/template.yaml"


class _Loader(yaml.SafeLoader):
    pass


def _intrinsic(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_Loader.add_multi_constructor("!", _intrinsic)


def load(path=TEMPLATE):
    with open(path) as f:
        return yaml.load(f, Loader=_Loader)


def functions(template):
    """The SAM functions of a template, by logical id."""
    return {k: r for k, r in template["Resources"].items()
            if r["Type"] == "AWS::Serverless::Function"}


def referenced(value):
    """The logical ids and attributes a resource expression points at (`Ref`, `GetAtt` and the
    `${...}` of a `Sub`), as strings; empty for a literal."""
    if isinstance(value, dict):
        if "Ref" in value:
            return [value["Ref"]]
        if "Fn::GetAtt" in value:
            return [".".join(value["Fn::GetAtt"])]
        if "Fn::Sub" in value:
            import re
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            return re.findall(r"\$\{([^}!]+)\}", text)
    return []
