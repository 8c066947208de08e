"""infra/template.yaml deployed as a new user would, in moto: the parameters checked as
CloudFormation checks them before creating anything (constraints, then the template's Rules;
moto checks neither, so this script does, with CloudFormation's semantics), the SAM template
turned into plain CloudFormation by aws-sam-translator (what `sam deploy` has CloudFormation
do), and the stack created with `create-stack`. Then what was created is read back through
the services' own APIs: the jobs queue and its dead-letter queue (redrive policy, visibility
timeout of at least six times the worker's timeout), the files bucket (public access blocked,
encryption, the lifecycle rules for abandoned uploads), the table (its indexes, whatever
others it gains, and TTL), each function's own role, and the worker's event source mapping
(batch item failures, its batch size and concurrency). Needs AWS_ENDPOINT_URL (moto); run from
the repository's root."""

import ast
import copy
import io
import json
import logging
import os
import sys
import time
import uuid
import zipfile

import boto3
from samtranslator.translator.transform import transform

sys.path.insert(0, os.path.dirname(__file__))
import template as tpl  # noqa: E402

# The translator reports its own metrics through logging ("unpublished metrics").
logging.getLogger("samtranslator").setLevel(logging.ERROR)
failures = []


def check(ok, what):
    print(("ok: " if ok else "FAILED: ") + what, file=sys.stderr)
    if not ok:
        failures.append(what)


# --- what CloudFormation checks before it creates anything -------------------------------

def _value(expr, params):
    if isinstance(expr, dict):
        (fn, arg), = expr.items()
        if fn == "Ref":
            return params[arg]
        if fn == "Fn::Equals":
            return str(_value(arg[0], params)) == str(_value(arg[1], params))
        if fn == "Fn::Not":
            return not _value(arg[0], params)
        if fn == "Fn::And":
            return all(_value(a, params) for a in arg)
        if fn == "Fn::Or":
            return any(_value(a, params) for a in arg)
        if fn == "Fn::Contains":
            return str(_value(arg[1], params)) in [str(_value(v, params)) for v in _value(arg[0], params)]
        raise ValueError(f"this check does not evaluate {fn} in Rules")
    return expr


def refusal(template, given):
    """Why CloudFormation refuses these parameters, or None."""
    params = {}
    for name, p in template["Parameters"].items():
        if name not in given and "Default" not in p:
            return f"Parameters: [{name}] must have values"
        value = str(given.get(name, p.get("Default")))
        params[name] = value
        constraint = p.get("ConstraintDescription", "")
        if p["Type"] == "Number":
            try:
                number = float(value)
            except ValueError:
                return f"Parameter '{name}' must be a number"
            if "MinValue" in p and number < p["MinValue"] or "MaxValue" in p and number > p["MaxValue"]:
                return f"Parameter '{name}' must be a number from {p.get('MinValue')} to {p.get('MaxValue')}: {constraint}"
        if "AllowedValues" in p and value not in [str(v) for v in p["AllowedValues"]]:
            return f"Parameter '{name}' must be one of AllowedValues {p['AllowedValues']}"
    for rule_name, rule in template.get("Rules", {}).items():
        if "RuleCondition" in rule and not _value(rule["RuleCondition"], params):
            continue
        for assertion in rule["Assertions"]:
            if not _value(assertion["Assert"], params):
                return f"Template rule {rule_name}: {assertion['AssertDescription']}"
    return None


# --- the stack ---------------------------------------------------------------------------

def artefact_bucket():
    """Where `sam deploy` would upload the zips; a placeholder zip stands in for each."""
    s3 = boto3.client("s3")
    bucket = "realnet-artefacts-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=bucket)
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\nexit 1\n")
    s3.put_object(Bucket=bucket, Key="function.zip", Body=code.getvalue())
    return f"s3://{bucket}/function.zip"


class NoManagedPolicies:
    """The translator asks for AWS's managed policies only for a function's `Policies`, which
    this template has none of."""

    def load(self):
        return {}


def deploy(template, parameters):
    sam = copy.deepcopy(template)
    code = artefact_bucket()
    for fn in tpl.functions(sam).values():
        fn["Properties"]["CodeUri"] = code
    plain = transform(sam, parameters, NoManagedPolicies())
    cfn = boto3.client("cloudformation")
    name = "realnet-" + uuid.uuid4().hex[:10]
    cfn.create_stack(
        StackName=name,
        TemplateBody=json.dumps(plain),
        Parameters=[{"ParameterKey": k, "ParameterValue": str(v)} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    for _ in range(120):
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS"):
            break
        time.sleep(0.5)
    if stack["StackStatus"] != "CREATE_COMPLETE":
        events = cfn.describe_stack_events(StackName=name)["StackEvents"]
        sys.exit(f"the stack is {stack['StackStatus']}: " + "; ".join(
            f"{e['LogicalResourceId']} {e['ResourceStatus']} {e.get('ResourceStatusReason', '')}" for e in events))
    # (moto leaves out the logical id of a few resources it only records.)
    resources = {r["LogicalResourceId"]: r for r in cfn.describe_stack_resources(StackName=name)["StackResources"]
                 if "LogicalResourceId" in r}
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return name, plain, resources, outputs


def physical(resources, logical):
    return resources[logical]["PhysicalResourceId"]


def main():
    template = tpl.load()

    # Parameters that make no sense stop the deployment, with a message that says why.
    bad = {
        "a receive count below 1": ({"MaxJobReceives": 0}, "MaxJobReceives"),
        "a PostgreSQL store without its secret": ({"Store": "postgresql", "DbHost": "db.example"}, "needs DbSecretArn"),
        "a PostgreSQL store without its server": (
            {"Store": "postgresql", "DbSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db"}, "needs DbHost"),
        "a PostgreSQL store with unbounded api containers": (
            {"Store": "postgresql", "DbHost": "db.example",
             "DbSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db"}, "needs ApiReservedConcurrency"),
        "a database server beside DynamoDB": ({"DbHost": "db.example"}, "leave them empty"),
        "an unknown store": ({"Store": "mysql"}, "AllowedValues"),
    }
    for what, (params, expected) in bad.items():
        why = refusal(template, params)
        check(why is not None and expected in why, f"{what} is refused at deploy: {why}")
    check(refusal(template, {}) is None, "the default parameters are accepted")
    check(refusal(template, {"Store": "postgresql", "DbHost": "proxy.example", "ApiReservedConcurrency": 20,
                             "DbSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db"}) is None,
          "a PostgreSQL store with its server and secret is accepted")

    parameters = {"MaxJobReceives": 4, "WorkerMaxConcurrency": 3}
    name, plain, resources, outputs = deploy(template, parameters)
    check(True, f"stack {name} created in moto from the SAM template ({len(resources)} resources)")

    aws_lambda = boto3.client("lambda")
    functions = {fn: aws_lambda.get_function_configuration(FunctionName=physical(resources, fn))
                 for fn in ("ApiFunction", "WorkerFunction", "SchedulerFunction")}
    for fn, conf in functions.items():
        # moto 5.2.5 records every function as x86_64 and drops LoggingConfig: those two are
        # read from the CloudFormation the stack was made of.
        declared = plain["Resources"][fn]["Properties"]
        check(declared.get("Architectures") == [{"Ref": "Architecture"}]
              and template["Parameters"]["Architecture"]["Default"] == "arm64"
              and conf["Runtime"] == "provided.al2023" and conf["Handler"] == "bootstrap",
              f"{fn} runs bootstrap on provided.al2023, arm64 unless Architecture says otherwise")
        binary = {"ApiFunction": "api", "WorkerFunction": "worker", "SchedulerFunction": "scheduler"}[fn]
        check(template["Resources"][fn]["Properties"]["CodeUri"] == f"dist/{binary}/bootstrap.zip",
              f"{fn}'s code is the zip infra/build makes (infra/dist/{binary}/bootstrap.zip)")
        check("LogGroup" in declared.get("LoggingConfig", {}), f"{fn} logs to its own log group")
        check(not (conf.get("VpcConfig") or {}).get("SubnetIds"), f"{fn} is in no VPC unless VpcSubnetIds says so")

    # The queue pair.
    sqs = boto3.client("sqs")
    queue = sqs.get_queue_attributes(QueueUrl=outputs["JobsQueueUrl"], AttributeNames=["All"])["Attributes"]
    dlq = sqs.get_queue_attributes(QueueUrl=outputs["JobsDeadLetterQueueUrl"], AttributeNames=["All"])["Attributes"]
    redrive = json.loads(queue.get("RedrivePolicy", "{}"))
    check(redrive.get("deadLetterTargetArn") == dlq["QueueArn"]
          and int(redrive.get("maxReceiveCount", 0)) == parameters["MaxJobReceives"],
          f"the jobs queue moves a job to the dead-letter queue after MaxJobReceives deliveries: {redrive}")
    worker_timeout = functions["WorkerFunction"]["Timeout"]
    check(int(queue["VisibilityTimeout"]) >= 6 * worker_timeout,
          f"the queue's visibility timeout ({queue['VisibilityTimeout']} s) is at least six times "
          f"the worker's timeout ({worker_timeout} s)")
    check(int(dlq["MessageRetentionPeriod"]) >= int(queue["MessageRetentionPeriod"]),
          "dead letters are kept at least as long as jobs")
    # moto keeps an AWS::SQS::QueuePolicy to itself: read from the stack's CloudFormation.
    policy = plain["Resources"]["JobsQueuePolicy"]["Properties"]
    check(policy["Queues"] == [{"Ref": "JobsQueue"}]
          and {s.get("Sid") for s in policy["PolicyDocument"]["Statement"]} == {"SendersOnly", "NoOtherSenders"},
          "the queue's policy lets only the api and scheduler roles (and producers') send")

    # The bucket.
    s3 = boto3.client("s3")
    bucket = outputs["FilesBucketName"]
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    check(any(r["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms") for r in rules),
          "the files bucket encrypts what it holds")
    # moto applies a bucket's encryption from CloudFormation but not its public access block
    # or lifecycle rules: those are read from the stack's CloudFormation.
    declared = plain["Resources"]["FilesBucket"]["Properties"]
    block = declared.get("PublicAccessBlockConfiguration", {})
    check(all(block.get(k) is True for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")),
          f"the files bucket blocks public access: {block}")
    lifecycle = declared.get("LifecycleConfiguration", {}).get("Rules", [])
    check(any(r.get("Status") == "Enabled" and r.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation")
              for r in lifecycle)
          and any(r.get("Status") == "Enabled" and r.get("Prefix") == "uploads/" and r.get("ExpirationInDays")
                  for r in lifecycle),
          "the files bucket aborts incomplete multipart uploads and expires stray uploads/")

    # The table: the indexes the store queries (others may be added) and TTL.
    dynamodb = boto3.client("dynamodb")
    table = dynamodb.describe_table(TableName=outputs["TableName"])["Table"]
    indexes = {g["IndexName"] for g in table.get("GlobalSecondaryIndexes", [])}
    check(indexes >= {"by_type", "by_parent", "by_created"}, f"the table has its indexes: {sorted(indexes)}")
    # moto leaves a table's TimeToLiveSpecification out: read from the stack's CloudFormation.
    ttl = plain["Resources"]["Table"]["Properties"].get("TimeToLiveSpecification", {})
    check(ttl == {"AttributeName": "ttl", "Enabled": True}, f"the table's TTL is on `ttl`: {ttl}")

    # One role per function, holding only its inline policy.
    iam = boto3.client("iam")
    roles = {fn: conf["Role"].rsplit("/", 1)[-1] for fn, conf in functions.items()}
    check(len(set(roles.values())) == 3, f"each function has its own role: {roles}")
    held = {}
    for fn, role in roles.items():
        attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
        inline = iam.list_role_policies(RoleName=role)["PolicyNames"]
        actions = set()
        for p in inline:
            doc = iam.get_role_policy(RoleName=role, PolicyName=p)["PolicyDocument"]
            if isinstance(doc, str):  # moto answers with Python's text of the document
                doc = ast.literal_eval(doc) if doc.startswith("{'") else json.loads(doc)
            # (moto keeps a statement of AWS::NoValue as null; CloudFormation drops it.)
            for st in filter(None, doc["Statement"]):
                a = st["Action"]
                actions.update(a if isinstance(a, list) else [a])
        check(not attached and inline and not any("*" in a for a in actions),
              f"{fn}'s role {role} holds its own policy only ({len(actions)} actions, no managed policy)")
        held[fn] = actions
    check("sqs:SendMessage" not in held["WorkerFunction"] and "sqs:ReceiveMessage" in held["WorkerFunction"],
          "the worker's role takes jobs and may not send any")
    check(held["SchedulerFunction"].isdisjoint({"s3:GetObject", "s3:PutObject", "dynamodb:UpdateItem"}),
          "the scheduler's role reads no files and updates nothing in place")

    # The worker's event source mapping.
    mappings = aws_lambda.list_event_source_mappings(FunctionName=physical(resources, "WorkerFunction"))["EventSourceMappings"]
    check(len(mappings) == 1, f"the worker has one event source mapping ({len(mappings)})")
    if mappings:
        m = mappings[0]
        check(m["EventSourceArn"] == queue["QueueArn"], "it reads the jobs queue")
        check(m.get("FunctionResponseTypes") == ["ReportBatchItemFailures"], "it reports batch item failures")
        check(m.get("BatchSize") == 10, f"batches of 10, what the worker is tuned for ({m.get('BatchSize')})")
        declared = plain["Resources"]["WorkerFunctionJobs"]["Properties"]
        check(declared.get("ScalingConfig", {}).get("MaximumConcurrency") == {"Ref": "WorkerMaxConcurrency"},
              "its maximum concurrency is the WorkerMaxConcurrency parameter")

    boto3.client("cloudformation").delete_stack(StackName=name)

    # On PostgreSQL in a VPC: no table, no DynamoDB rights, the connection from the parameters
    # and the secret (a dynamic reference CloudFormation resolves at deploy; moto keeps it as
    # text), the functions in the subnets given.
    secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:realnet-db"
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.42.{i}.0/24")["Subnet"]["SubnetId"] for i in (1, 2)]
    group = ec2.create_security_group(GroupName="realnet-" + uuid.uuid4().hex[:8], Description="realnet", VpcId=vpc)["GroupId"]
    name, plain, resources, outputs = deploy(template, {
        "Store": "postgresql", "DbHost": "realnet.proxy-abc.us-east-1.rds.amazonaws.com",
        "DbSecretArn": secret, "ApiReservedConcurrency": 20,
        "VpcSubnetIds": ",".join(subnets), "VpcSecurityGroupIds": group})
    check("Table" not in resources and "TableName" not in outputs, "on PostgreSQL the stack makes no table")
    api = aws_lambda.get_function_configuration(FunctionName=physical(resources, "ApiFunction"))
    env = api["Environment"]["Variables"]
    check(env.get("REALNET_DB_TYPE") == "postgresql" and env.get("REALNET_DB_HOST", "").startswith("realnet.proxy")
          and str(env.get("REALNET_DB_POOL_SIZE")) == "2" and "REALNET_DYNAMODB_TABLE" not in env,
          f"the functions connect to the server given, {env.get('REALNET_DB_POOL_SIZE')} connections per container")
    check(env.get("REALNET_DB_PASS") == f"{{{{resolve:secretsmanager:{secret}:SecretString:password}}}}",
          "the password comes from the secret, resolved by CloudFormation")
    for fn in ("ApiFunction", "WorkerFunction", "SchedulerFunction"):
        role = aws_lambda.get_function_configuration(FunctionName=physical(resources, fn))["Role"].rsplit("/", 1)[-1]
        docs = [str(iam.get_role_policy(RoleName=role, PolicyName=p)["PolicyDocument"])
                for p in iam.list_role_policies(RoleName=role)["PolicyNames"]]
        check(not any("dynamodb:" in d for d in docs), f"{fn}'s role holds no DynamoDB rights on PostgreSQL")
        check(any("ec2:CreateNetworkInterface" in d for d in docs), f"{fn}'s role may place it in the VPC")
        vpc_config = aws_lambda.get_function_configuration(FunctionName=physical(resources, fn)).get("VpcConfig", {})
        check(sorted(vpc_config.get("SubnetIds", [])) == sorted(subnets) and vpc_config.get("SecurityGroupIds") == [group],
              f"{fn} runs in the subnets and security group given: {vpc_config}")
    reserved = aws_lambda.get_function_concurrency(FunctionName=physical(resources, "ApiFunction"))
    check(reserved.get("ReservedConcurrentExecutions") == 20,
          f"the api function's reserved concurrency is the ApiReservedConcurrency parameter: {reserved}")
    boto3.client("cloudformation").delete_stack(StackName=name)

    if failures:
        sys.exit(f"{len(failures)} check(s) of the deployed stack failed")


if __name__ == "__main__":
    main()
