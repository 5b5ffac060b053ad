"""Where a cloud region processes prompts: a cloud's own region names -> our region codes.

Used by `authz catalog build` (the region of a provider endpoint's host) and by `authz catalog
import` (a LiteLLM deployment's `aws_region_name`, Azure `region_name` or endpoint, Vertex
`vertex_location`). Each table lists the regions its cloud publishes, with the country or area
its data centres are in (AWS: docs.aws.amazon.com/global-infrastructure/latest/regions;
Azure: learn.microsoft.com/azure/reliability/regions-list; Google Cloud:
cloud.google.com/vertex-ai/docs/general/locations; Alibaba Cloud:
alibabacloud.com/help/en/cloud-migration-guide-for-beginners/latest/regions-and-zones). Codes
are ours (docs/policy.md): "eu" is the European Union only, so London and Zurich are "uk" and
"ch"; a region not listed stays unknown and fails a residency requirement closed.
"""

from __future__ import annotations

import re

AWS: dict[str, str] = {
    "us-east-1": "us",
    "us-east-2": "us",
    "us-west-1": "us",
    "us-west-2": "us",
    "us-gov-east-1": "us",
    "us-gov-west-1": "us",
    "ca-central-1": "ca",
    "ca-west-1": "ca",
    "eu-central-1": "eu",
    "eu-central-2": "ch",
    "eu-north-1": "eu",
    "eu-south-1": "eu",
    "eu-south-2": "eu",
    "eu-west-1": "eu",
    "eu-west-2": "uk",
    "eu-west-3": "eu",
    "ap-northeast-1": "jp",
    "ap-northeast-3": "jp",
    "ap-northeast-2": "kr",
    "ap-southeast-1": "sg",
    "ap-southeast-2": "au",
    "ap-southeast-4": "au",
    "ap-south-1": "in",
    "ap-south-2": "in",
    "ap-east-1": "hk",
    "sa-east-1": "br",
    "me-central-1": "ae",
    "il-central-1": "il",
}
# Bedrock's cross-region inference profiles ("eu.anthropic.claude-..."): processing stays within
# the profile's geography. "global" may use any region: no code.
AWS_GEOGRAPHIES: dict[str, str] = {"us": "us", "eu": "eu", "apac": "apac", "au": "au", "jp": "jp", "ca": "ca"}
AZURE: dict[str, str] = {
    "eastus": "us",
    "eastus2": "us",
    "centralus": "us",
    "northcentralus": "us",
    "southcentralus": "us",
    "westus": "us",
    "westus2": "us",
    "westus3": "us",
    "westcentralus": "us",
    "canadacentral": "ca",
    "canadaeast": "ca",
    "brazilsouth": "br",
    "northeurope": "eu",
    "westeurope": "eu",
    "francecentral": "eu",
    "germanywestcentral": "eu",
    "swedencentral": "eu",
    "italynorth": "eu",
    "polandcentral": "eu",
    "spaincentral": "eu",
    "uksouth": "uk",
    "ukwest": "uk",
    "switzerlandnorth": "ch",
    "switzerlandwest": "ch",
    "norwayeast": "no",
    "japaneast": "jp",
    "japanwest": "jp",
    "koreacentral": "kr",
    "australiaeast": "au",
    "australiasoutheast": "au",
    "southeastasia": "sg",
    "eastasia": "hk",
    "centralindia": "in",
    "southindia": "in",
    "uaenorth": "ae",
    "southafricanorth": "za",
}
GCP: dict[str, str] = {
    "us-central1": "us",
    "us-east1": "us",
    "us-east4": "us",
    "us-east5": "us",
    "us-south1": "us",
    "us-west1": "us",
    "us-west4": "us",
    "northamerica-northeast1": "ca",
    "southamerica-east1": "br",
    "europe-west1": "eu",
    "europe-west3": "eu",
    "europe-west4": "eu",
    "europe-west8": "eu",
    "europe-west9": "eu",
    "europe-north1": "eu",
    "europe-southwest1": "eu",
    "europe-central2": "eu",
    "europe-west2": "uk",
    "europe-west6": "ch",
    "asia-northeast1": "jp",
    "asia-northeast3": "kr",
    "asia-southeast1": "sg",
    "asia-south1": "in",
    "asia-east1": "tw",
    "asia-east2": "hk",
    "australia-southeast1": "au",
    "me-central1": "qa",
    "me-west1": "il",
    # multi-region locations
    "us": "us",
    "eu": "eu",
}
ALIBABA: dict[str, str] = {
    "cn-beijing": "cn",
    "cn-hangzhou": "cn",
    "cn-shanghai": "cn",
    "cn-shenzhen": "cn",
    "ap-southeast-1": "sg",
    "us-east-1": "us",
    "us-west-1": "us",
    "eu-central-1": "eu",
    "eu-west-1": "uk",
    "ap-northeast-1": "jp",
}
# Hosts that name no region in a form above, as each provider documents them.
HOSTS: dict[str, str] = {
    "dashscope.aliyuncs.com": "cn",  # Model Studio, China (Beijing)
    "dashscope-intl.aliyuncs.com": "sg",  # Model Studio, International (Singapore)
    "dashscope-us.aliyuncs.com": "us",  # Model Studio, US (Virginia)
}

_AWS_HOST = re.compile(r"(?:^|\.)([a-z]{2}(?:-gov)?-[a-z]+-\d)\.(?:amazonaws\.com|api\.aws)$")
_ALIBABA_HOST = re.compile(r"(?:^|\.)([a-z]{2}-[a-z]+(?:-\d)?)\.[a-z.]*aliyuncs\.com$")
_GCP_HOST = re.compile(r"^([a-z]+-[a-z]+\d)-aiplatform\.googleapis\.com$")
_AZURE_HOST = re.compile(r"(?:^|\.)([a-z]+\d?)\.(?:models\.ai\.azure\.com|api\.cognitive\.microsoft\.com)$")


def of_host(host: str) -> str | None:
    """The region code of an endpoint's host name, or None when the host does not say."""
    host = host.lower().rstrip(".")
    if host in HOSTS:
        return HOSTS[host]
    for pattern, table in ((_AWS_HOST, AWS), (_ALIBABA_HOST, ALIBABA), (_GCP_HOST, GCP), (_AZURE_HOST, AZURE)):
        found = pattern.search(host)
        if found:
            return table.get(found.group(1))
    return None


def azure_region_of_host(host: str) -> str | None:
    """The Azure region an endpoint host names (serverless models, regional Cognitive Services)."""
    found = _AZURE_HOST.search(host.lower().rstrip("."))
    return found.group(1) if found and found.group(1) in AZURE else None
