"""deploy/aws/scrypt-helper.yaml: cfn-lint clean, the shape it promises, and user data that bash parses."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

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
    return launch["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Sub"]


def test_user_data_installs_runs_and_ships_logs(template: dict):
    script = user_data(template)
    assert "pip install" in script
    assert "ExecStart=/opt/scrypt-helper/bin/scrypt-helper serve" in script
    assert "SCRYPT_HELPER_TRUSTED_PROXIES=1" in script  # the ALB appends the client to X-Forwarded-For
    assert "SCRYPT_HELPER_REDIS_URL=rediss://" in script
    assert "SCRYPT_HELPER_CORS_ORIGINS=${CorsOrigins}" in script
    origins = template["Parameters"]["CorsOrigins"]
    assert re.fullmatch(origins["AllowedPattern"], origins["Default"])
    for any_page in ("*", f"{origins['Default']},*", "https://*.example"):
        assert not re.fullmatch(origins["AllowedPattern"], any_page)
    drain = float(re.search(r"SCRYPT_HELPER_DRAIN_SECONDS=(\S+)", script).group(1))  # type: ignore[union-attr]
    shutdown = float(re.search(r"SCRYPT_HELPER_SHUTDOWN_TIMEOUT=(\S+)", script).group(1))  # type: ignore[union-attr]
    assert int(re.search(r"TimeoutStopSec=(\d+)", script).group(1)) > drain + shutdown  # type: ignore[union-attr]
    (group,) = resources_of(template, "AWS::ElasticLoadBalancingV2::TargetGroup")
    delay = {a["Key"]: a["Value"] for a in group["TargetGroupAttributes"]}[
        "deregistration_delay.timeout_seconds"
    ]
    assert int(delay) >= drain + shutdown
    agent = re.search(r"<<'AGENT'\n(.*?)\nAGENT\n", script, re.DOTALL)
    assert agent
    config = json.loads(agent.group(1))
    (collected,) = config["logs"]["logs_collected"]["files"]["collect_list"]
    assert collected["log_group_name"] == "${LogGroup}"
    assert collected["file_path"] in script.split("StandardOutput=append:")[1]


def test_user_data_is_valid_bash(template: dict):
    # Fn::Sub fills ${Name} and ${Resource.Attribute}; ${!x} would be a literal ${x}.
    script = re.sub(r"\$\{([A-Za-z0-9:.]+)\}", "value", user_data(template)).replace("${!", "${")
    result = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
