"""The custom resources the gateway and verify roles ask for, served by the stand-in API server (tests/support/
kube_api.py) as an API server serves them once Envoy Gateway's chart has installed its CRDs.

    with KubeApi() as api, serving_gateway_crds():
        ...  # GatewayClass, HTTPRoute, EnvoyProxy, SecurityPolicy, BackendTrafficPolicy are served

What the API server's discovery says about a custom resource comes from its CRD (apiextensions-apiserver: the
group in /apis with the CRD's served versions, each resource's plural, singular, kind, scope, shortNames,
categories and the status subresource; verbs are every verb for a CR), read in the CRDs (R: the repositories'
files; checked again against envoyproxy/gateway tag v1.9.0, the version Atlas installs, whose chart bundles them in
charts/gateway-helm/charts/crds/crds/: gatewayapi-crds.yaml (Gateway API v1.6.1) and generated/*.yaml):
  R kubernetes-sigs/gateway-api config/crd/standard/gateway.networking.k8s.io_{gatewayclasses,gateways,httproutes}.yaml:
    GatewayClass (Cluster, shortNames gc), Gateway (gtw), HTTPRoute (none), categories gateway-api, served as v1
    (older versions too, not served here), status subresource.
  R envoyproxy/gateway charts/gateway-helm/crds/generated/gateway.envoyproxy.io_{envoyproxies,securitypolicies,
    backendtrafficpolicies}.yaml: EnvoyProxy (eproxy), SecurityPolicy (sp), BackendTrafficPolicy (btp), Namespaced,
    categories envoy-gateway, served v1alpha1, status subresource.
  G the storageVersionHash (left out: no client here reads it); a CR's status is set by its controller (tests do
    that with accept_when_read or add()), and generation counts spec changes, as the stand-in does for its kinds.
The stand-in's tables are module-level tuples, extended for the duration of the context and restored after it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from tests.support import kube_api
from tests.support.kube_api import ApiResource

_CR_VERBS = ("delete", "deletecollection", "get", "list", "patch", "create", "update", "watch")
GATEWAY_API = "gateway.networking.k8s.io"
ENVOY_GATEWAY = "gateway.envoyproxy.io"


def _cr(group: str, version: str, plural: str, kind: str, namespaced: bool, short: str, category: str) -> ApiResource:
    return ApiResource(
        group,
        version,
        plural,
        kind.lower(),
        kind,
        namespaced,
        verbs=_CR_VERBS,
        short_names=(short,) if short else (),
        categories=(category,),
        has_status=True,
        initial_status=None,
        generation=True,
    )


RESOURCES = (
    _cr(GATEWAY_API, "v1", "gatewayclasses", "GatewayClass", False, "gc", "gateway-api"),
    _cr(GATEWAY_API, "v1", "gateways", "Gateway", True, "gtw", "gateway-api"),
    _cr(GATEWAY_API, "v1", "httproutes", "HTTPRoute", True, "", "gateway-api"),
    _cr(ENVOY_GATEWAY, "v1alpha1", "envoyproxies", "EnvoyProxy", True, "eproxy", "envoy-gateway"),
    _cr(ENVOY_GATEWAY, "v1alpha1", "securitypolicies", "SecurityPolicy", True, "sp", "envoy-gateway"),
    _cr(ENVOY_GATEWAY, "v1alpha1", "backendtrafficpolicies", "BackendTrafficPolicy", True, "btp", "envoy-gateway"),
)


@contextlib.contextmanager
def serving_gateway_crds() -> Iterator[None]:
    saved = (kube_api.RESOURCES, kube_api.SUBRESOURCES, kube_api.API_GROUPS)
    subresources = tuple(
        (
            r.group,
            r.version,
            {"name": f"{r.name}/status", "singularName": "", "namespaced": r.namespaced, "kind": r.kind},
        )
        for r in RESOURCES
    )
    kube_api.RESOURCES = saved[0] + RESOURCES
    kube_api.SUBRESOURCES = saved[1] + subresources
    kube_api.API_GROUPS = saved[2] + ((GATEWAY_API, ("v1",)), (ENVOY_GATEWAY, ("v1alpha1",)))
    try:
        yield
    finally:
        kube_api.RESOURCES, kube_api.SUBRESOURCES, kube_api.API_GROUPS = saved


def condition(kind: str, status: str = "True", reason: str = "Accepted", message: str = "") -> dict:
    """A metav1.Condition as a controller writes it."""
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-12-01T10:00:00Z",
        "observedGeneration": 1,
    }


def accept_when_read(api: kube_api.KubeApi, name: str) -> None:
    """The controller at work: once the GatewayClass ``name`` exists, a read finds it Accepted (what Envoy
    Gateway's controller writes into status.conditions for a class of its controllerName)."""

    def answer(_: int) -> dict | None:
        current = api.get("GatewayClass", None, name)
        if current is None:
            return None
        current["status"] = {"conditions": [condition("Accepted", message="Valid GatewayClass")]}
        return current

    api.on_get("GatewayClass", None, name, answer)
