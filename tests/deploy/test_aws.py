"""deploy/aws/scrypt-helper.yaml: cfn-lint clean, the shape it promises, the edge (AWS WAF) agreeing with
the nodes' rules, and user data that bash parses."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from scrypt_helper.abuse import DEFAULT_RULES, Rule, parse_rules
from scrypt_helper.abuse.rules import divided_rules
from scrypt_helper.core.config import Settings
from tests.deploy.cloudformation import assert_cfn_lint_clean, load_template

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "aws" / "scrypt-helper.yaml"


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template(TEMPLATE)


def resources_of(template: dict, kind: str) -> list[dict]:
    return [r["Properties"] | {"_r": r} for r in template["Resources"].values() if r["Type"] == kind]


def test_cfn_lint_is_clean():
    assert_cfn_lint_clean(TEMPLATE)


def test_parameters_and_the_load_balancer(template: dict):
    params = template["Parameters"]
    assert params["VpcId"]["Type"] == "AWS::EC2::VPC::Id"
    assert params["PublicSubnetIds"]["Type"] == "List<AWS::EC2::Subnet::Id>"
    assert params["PrivateSubnetIds"]["Type"] == "List<AWS::EC2::Subnet::Id>"
    assert "CertificateArn" in params
    (https,) = [
        listener
        for listener in resources_of(template, "AWS::ElasticLoadBalancingV2::Listener")
        if listener["Port"] == 443
    ]
    assert https["Protocol"] == "HTTPS"
    assert https["Certificates"] == [{"CertificateArn": {"Ref": "CertificateArn"}}]
    assert "TLS13" in https["SslPolicy"]
    (group,) = resources_of(template, "AWS::ElasticLoadBalancingV2::TargetGroup")
    assert group["HealthCheckPath"] == "/__lbheartbeat__"
    attributes = {a["Key"]: a["Value"] for a in group["TargetGroupAttributes"]}
    assert attributes["load_balancing.algorithm.type"] == "least_outstanding_requests"
    (rule,) = resources_of(template, "AWS::ElasticLoadBalancingV2::ListenerRule")
    assert "/metrics" not in rule["Conditions"][0]["PathPatternConfig"]["Values"]


def test_autoscaling_across_zones_with_cpu_target_tracking(template: dict):
    (group,) = resources_of(template, "AWS::AutoScaling::AutoScalingGroup")
    assert group["VPCZoneIdentifier"] == {"Ref": "PrivateSubnetIds"}
    assert group["HealthCheckType"] == "ELB"
    assert group["_r"]["UpdatePolicy"]["AutoScalingRollingUpdate"]["WaitOnResourceSignals"] is True
    (policy,) = resources_of(template, "AWS::AutoScaling::ScalingPolicy")
    assert policy["PolicyType"] == "TargetTrackingScaling"
    spec = policy["TargetTrackingConfiguration"]["PredefinedMetricSpecification"]
    assert spec["PredefinedMetricType"] == "ASGAverageCPUUtilization"
    (redis,) = resources_of(template, "AWS::ElastiCache::ReplicationGroup")
    assert redis["MultiAZEnabled"] is True
    assert redis["TransitEncryptionEnabled"] is True
    assert resources_of(template, "AWS::Logs::LogGroup")


def user_data(template: dict) -> str:
    (launch,) = resources_of(template, "AWS::EC2::LaunchTemplate")
    script, _ = launch["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Sub"]
    return script


def test_the_budget_is_divided_among_the_regions_that_share_it(template: dict):
    """Each region's nodes keep their share of every rule: a client that hops among the regions gets
    one budget in all, not one in each."""
    (launch,) = resources_of(template, "AWS::EC2::LaunchTemplate")
    _, variables = launch["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Sub"]
    assert variables["NodeRules"] == {
        "Fn::FindInMap": ["BudgetShares", {"Ref": "RegionsSharingBudget"}, "Rules"]
    }
    assert "\nSCRYPT_HELPER_RULES=${NodeRules}\n" in user_data(template)
    parameter = template["Parameters"]["RegionsSharingBudget"]
    assert parameter["Default"] == "1"
    shares = template["Mappings"]["BudgetShares"]
    assert sorted(shares) == parameter["AllowedValues"]
    defaults = parse_rules(DEFAULT_RULES)
    assert parse_rules(shares["1"]["Rules"]) == defaults  # one region: the nodes' defaults
    for regions, share in shares.items():
        assert share["Rules"] == divided_rules(defaults, int(regions))
        for rule, whole in zip(parse_rules(share["Rules"]), defaults, strict=True):
            assert int(regions) * rule.attempts <= whole.attempts  # never more than one budget in all


def unit(script: str) -> str:
    """The systemd unit the user data writes."""
    found = re.search(r"<<'UNIT'\n(.*?)\nUNIT\n", script, re.DOTALL)
    assert found
    return found.group(1)


def test_the_image_is_a_digest_of_the_project_image():
    image = load_template(TEMPLATE)["Parameters"]["Image"]
    assert "Default" not in image  # every stack names the digest it runs
    digest = "sha256:" + "0123456789abcdef" * 4
    assert re.fullmatch(image["AllowedPattern"], f"ghcr.io/mozilla-services/scrypt-helper@{digest}")
    for moving_or_foreign in (
        "ghcr.io/mozilla-services/scrypt-helper:1.2.3",
        "ghcr.io/mozilla-services/scrypt-helper:latest",
        f"ghcr.io/mozilla-services/scrypt-helper:latest@{digest[:-1]}",
        f"docker.io/someone/scrypt-helper@{digest}",
    ):
        assert not re.fullmatch(image["AllowedPattern"], moving_or_foreign), moving_or_foreign


def test_user_data_runs_the_image_under_systemd_without_installing_the_package(template: dict):
    script = user_data(template)
    assert "pip install" not in script
    assert "python3.11" not in script
    assert re.search(r"^dnf install .*\bdocker\b", script, re.MULTILINE)
    assert "docker pull -q '${Image}'" in script
    service = unit(script)
    (start,) = re.findall(r"^ExecStart=(.*)$", service.replace("\\\n", " "), re.MULTILINE)
    command = start.split()
    assert command[:3] == ["/usr/bin/docker", "run", "--rm"]
    assert command[-1] == "${Image}"  # the parameter, a digest: what was load-tested runs here
    for flag in ("--read-only", "--network", "--env-file"):
        assert flag in command
    assert command[command.index("--network") + 1] == "host"
    assert "Restart=always" in service
    stop = re.search(r"^ExecStop=/usr/bin/docker stop --time (\d+) scrypt-helper$", service, re.MULTILINE)
    assert stop
    # The settings the node had before it ran in a container.
    env = re.search(r"<<ENV\n(.*?)\nENV\n", script, re.DOTALL)
    assert env
    assert command[command.index("--env-file") + 1] == "/etc/scrypt-helper/env"
    settings = dict(line.split("=", 1) for line in env.group(1).splitlines())
    assert settings["SCRYPT_HELPER_TRUSTED_PROXIES"] == "1"  # the ALB appends the client to X-Forwarded-For
    assert settings["SCRYPT_HELPER_REDIS_URL"].startswith("rediss://")
    assert settings["SCRYPT_HELPER_CORS_ORIGINS"] == "${CorsOrigins}"
    assert (settings["SCRYPT_HELPER_PORT"], settings["SCRYPT_HELPER_METRICS_PORT"]) == ("8080", "9100")
    assert settings["SCRYPT_HELPER_ENGINE"] == "native"
    origins = template["Parameters"]["CorsOrigins"]
    assert re.fullmatch(origins["AllowedPattern"], origins["Default"])
    for any_page in ("*", f"{origins['Default']},*", "https://*.example"):
        assert not re.fullmatch(origins["AllowedPattern"], any_page)
    # Stopping drains: docker waits for the drain and the in-flight hashes, systemd for docker.
    drain = float(settings["SCRYPT_HELPER_DRAIN_SECONDS"])
    shutdown = float(settings["SCRYPT_HELPER_SHUTDOWN_TIMEOUT"])
    timeout_stop = int(re.search(r"^TimeoutStopSec=(\d+)$", service, re.MULTILINE).group(1))  # type: ignore[union-attr]
    assert drain + shutdown < int(stop.group(1)) < timeout_stop
    (group,) = resources_of(template, "AWS::ElasticLoadBalancingV2::TargetGroup")
    delay = {a["Key"]: a["Value"] for a in group["TargetGroupAttributes"]}[
        "deregistration_delay.timeout_seconds"
    ]
    assert int(delay) >= drain + shutdown


def test_a_new_image_replaces_the_instances_one_at_a_time(template: dict):
    (launch,) = [name for name, r in template["Resources"].items() if r["Type"] == "AWS::EC2::LaunchTemplate"]
    (group,) = resources_of(template, "AWS::AutoScaling::AutoScalingGroup")
    # The group follows the template's newest version, so a new digest in the user data is a change
    # of the group, which the rolling update carries out.
    assert group["LaunchTemplate"]["Version"] == {"Fn::GetAtt": [launch, "LatestVersionNumber"]}
    rolling = group["_r"]["UpdatePolicy"]["AutoScalingRollingUpdate"]
    assert rolling["MaxBatchSize"] == 1
    assert rolling["MinInstancesInService"] == {"Ref": "MinSize"}
    assert rolling["WaitOnResourceSignals"] is True


def test_logs_are_shipped_with_the_time_they_are_read(template: dict):
    script = user_data(template)
    agent = re.search(r"<<'AGENT'\n(.*?)\nAGENT\n", script, re.DOTALL)
    assert agent
    config = json.loads(agent.group(1))
    (collected,) = config["logs"]["logs_collected"]["files"]["collect_list"]
    assert collected["log_group_name"] == "${LogGroup}"
    assert collected["file_path"] in unit(script).split("StandardOutput=append:")[1]
    # MozLog's Timestamp is integer nanoseconds, which no strftime-style format can match: a
    # timestamp_format would be a pattern that never matches.
    assert "timestamp_format" not in collected


def test_user_data_is_valid_bash(template: dict):
    # Fn::Sub fills ${Name} and ${Resource.Attribute}; ${!x} would be a literal ${x}.
    script = re.sub(r"\$\{([A-Za-z0-9:.]+)\}", "value", user_data(template)).replace("${!", "${")
    result = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def edge_rules(template: dict) -> dict[str, dict]:
    (acl,) = resources_of(template, "AWS::WAFv2::WebACL")
    assert acl["Scope"] == "REGIONAL"
    assert acl["DefaultAction"] == {"Allow": {}}
    return {rule["Name"]: rule for rule in acl["Rules"]}


def node_scrypt_rule() -> Rule:
    (rule,) = [r for r in parse_rules(DEFAULT_RULES) if r.action == "scrypt" and r.property == "ip"]
    return rule


def test_the_edge_acl_guards_the_load_balancer(template: dict):
    (association,) = resources_of(template, "AWS::WAFv2::WebACLAssociation")
    assert association["ResourceArn"] == {"Ref": "LoadBalancer"}
    assert association["WebACLArn"] == {"Fn::GetAtt": ["EdgeAcl", "Arn"]}
    reputation = edge_rules(template)["ip-reputation"]["Statement"]["ManagedRuleGroupStatement"]
    assert (reputation["VendorName"], reputation["Name"]) == ("AWS", "AWSManagedRulesAmazonIpReputationList")


def test_the_edge_refuses_bodies_the_nodes_would_refuse_as_too_large(template: dict):
    rule = edge_rules(template)["body-size"]
    assert rule["Action"] == {"Block": {}}
    size = rule["Statement"]["SizeConstraintStatement"]
    assert size["FieldToMatch"] == {"Body": {"OversizeHandling": "MATCH"}}
    assert (size["ComparisonOperator"], size["Size"]) == (
        "GT",
        Settings.model_fields["max_body_bytes"].default,
    )


def test_the_edge_rate_limit_is_twice_the_nodes_scrypt_rule_per_address(template: dict):
    rule = edge_rules(template)["hashes-per-address"]
    assert rule["Action"] == {"Block": {}}
    rate = rule["Statement"]["RateBasedStatement"]
    assert rate["Limit"] == {"Ref": "EdgeHashesPerMinute"}
    assert (rate["AggregateKeyType"], rate["EvaluationWindowSec"]) == ("IP", 60)
    node = node_scrypt_rule()
    per_minute = node.attempts * 60 / node.window
    assert template["Parameters"]["EdgeHashesPerMinute"]["Default"] == 2 * per_minute
    scope = json.dumps(rate["ScopeDownStatement"])
    assert '"SearchString": "POST"' in scope
    assert '"SearchString": "/"' in scope
    assert '"NotStatement"' in scope
    assert "x-api-key" in scope  # key holders count against their own rules, on the nodes
