"""deploy/aws/global.yaml: cfn-lint clean; every region health-checked on its heartbeat and latency-routed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.cloudformation import assert_cfn_lint_clean, load_template

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "aws" / "global.yaml"
REGIONS = ("Region1", "Region2", "Region3")


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template(TEMPLATE)


def test_cfn_lint_is_clean():
    assert_cfn_lint_clean(TEMPLATE)


@pytest.mark.parametrize("region", REGIONS)
def test_each_region_is_checked_on_its_heartbeat_over_https(template: dict, region: str):
    check = template["Resources"][f"{region}HealthCheck"]
    config = check["Properties"]["HealthCheckConfig"]
    assert check["Type"] == "AWS::Route53::HealthCheck"
    assert (config["Type"], config["Port"], config["ResourcePath"]) == ("HTTPS", 443, "/__lbheartbeat__")
    assert config["FullyQualifiedDomainName"] == {"Ref": f"{region}LoadBalancerDNSName"}
    assert config["RequestInterval"] == {"Ref": "HealthCheckInterval"}


@pytest.mark.parametrize("region", REGIONS)
def test_the_service_name_routes_by_latency_to_healthy_regions_only(template: dict, region: str):
    record = template["Resources"][f"{region}LatencyRecord"]["Properties"]
    assert record["Name"] == {"Ref": "ServiceName"}
    assert record["Region"] == record["SetIdentifier"] == {"Ref": region}
    assert record["HealthCheckId"] == {"Ref": f"{region}HealthCheck"}
    alias = record["AliasTarget"]
    assert alias["DNSName"] == {"Ref": f"{region}LoadBalancerDNSName"}
    assert alias["HostedZoneId"] == {"Ref": f"{region}LoadBalancerHostedZoneId"}
    assert alias["EvaluateTargetHealth"] is True


@pytest.mark.parametrize("region", REGIONS)
def test_each_region_has_its_own_name_for_clients_that_fail_over_themselves(template: dict, region: str):
    record = template["Resources"][f"{region}Record"]["Properties"]
    assert record["Name"] == {"Fn::Sub": f"${{{region}}}.${{ServiceName}}"}
    assert "Region" not in record
    assert "HealthCheckId" not in record
    assert f"${{{region}}}.${{ServiceName}}" in str(template["Outputs"]["ClientUrls"]["Value"])


@pytest.mark.parametrize("record", ["LatencyRecord", "Record"])
@pytest.mark.parametrize("region", REGIONS)
def test_every_name_answers_ipv6_too_as_the_load_balancers_are_dualstack(
    template: dict, region: str, record: str
):
    ipv4 = template["Resources"][f"{region}{record}"]
    ipv6 = template["Resources"][f"{region}{record}Ipv6"]
    assert (ipv4["Properties"]["Type"], ipv6["Properties"]["Type"]) == ("A", "AAAA")
    # The same name, routing, health check and alias target: only the address family differs.
    assert {**ipv6["Properties"], "Type": "A"} == ipv4["Properties"]
    assert ipv6.get("Condition") == ipv4.get("Condition")


def test_the_third_region_is_optional(template: dict):
    optional = [name for name, resource in template["Resources"].items() if resource.get("Condition")]
    assert sorted(optional) == [
        "Region3HealthCheck",
        "Region3LatencyRecord",
        "Region3LatencyRecordIpv6",
        "Region3Record",
        "Region3RecordIpv6",
    ]
    assert template["Parameters"]["Region3"]["Default"] == ""
