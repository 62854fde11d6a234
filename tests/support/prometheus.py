"""Prometheus for the monitoring tests: promtool, a real Prometheus server, postgres_exporter, and the
scrape config the Prometheus Operator makes from a ServiceMonitor.

The binaries are Debian 12's (``make setup``): prometheus and promtool 2.42.0, prometheus-postgres-exporter
0.11.1. Each server runs on 127.0.0.1 in a temporary directory and is stopped by its context manager.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import requests
import yaml

from .chart import template_raw
from .net import free_port
from .postgres import wait_until

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
EXPORTER = shutil.which("prometheus-postgres-exporter") or "/usr/bin/prometheus-postgres-exporter"
OPERATOR_API = "monitoring.coreos.com/v1"


def render_monitoring(values: Mapping | None = None, values_files=()) -> list[dict]:
    """The chart rendered as on a cluster that serves the Prometheus Operator's API."""
    text = template_raw(values, values_files, extra=["--api-versions", OPERATOR_API])
    return [doc for doc in yaml.safe_load_all(text) if doc]


def promtool(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False)


# -- the operator's translation of a ServiceMonitor -------------------------------------------------


def _sanitize(name: str) -> str:
    # promcfg.go's sanitizeLabelName: every character outside [a-zA-Z0-9_] becomes "_".
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def operator_scrape_config(monitor: dict, index: int, targets: list[dict]) -> dict:
    """The scrape config prometheus-operator v0.93.0 generates for endpoint ``index`` of ``monitor``
    (pkg/prometheus/promcfg.go, generateServiceMonitorConfig and initRelabelings), for the defaults the
    chart's ServiceMonitors use: no scrape class, no sharding, relabel selector mechanism, port by name.

    Kubernetes service discovery is what cannot run here: each of ``targets`` stands for one discovered
    endpoint and carries the ``__meta_kubernetes_*`` labels the endpoints role would give it (see
    ``discovered``). They go into static_configs, so the operator's relabelings run in the real
    Prometheus as they would on a cluster and make the same job, namespace, service, pod, container and
    endpoint labels.
    """
    spec, meta = monitor["spec"], monitor["metadata"]
    ep = spec["endpoints"][index]
    relabel: list[dict] = [{"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"}]
    for key, value in sorted(spec["selector"].get("matchLabels", {}).items()):
        relabel.append(
            {
                "action": "keep",
                "source_labels": [
                    f"__meta_kubernetes_service_label_{_sanitize(key)}",
                    f"__meta_kubernetes_service_labelpresent_{_sanitize(key)}",
                ],
                "regex": f"({value});true",
            }
        )
    assert not spec["selector"].get("matchExpressions"), "not translated: matchExpressions"
    relabel.append({"action": "keep", "source_labels": ["__meta_kubernetes_endpoint_port_name"], "regex": ep["port"]})
    kind = ["__meta_kubernetes_endpoint_address_target_kind", "__meta_kubernetes_endpoint_address_target_name"]
    relabel += [
        {"source_labels": kind, "separator": ";", "regex": "Node;(.*)", "replacement": "${1}", "target_label": "node"},
        {"source_labels": kind, "separator": ";", "regex": "Pod;(.*)", "replacement": "${1}", "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
        {"action": "drop", "source_labels": ["__meta_kubernetes_pod_phase"], "regex": "(Failed|Succeeded)"},
    ]  # fmt: skip
    for name in spec.get("targetLabels", []):
        relabel.append(
            {"source_labels": [f"__meta_kubernetes_service_label_{_sanitize(name)}"], "target_label": _sanitize(name),
             "regex": "(.+)", "replacement": "${1}"}
        )  # fmt: skip
    for name in spec.get("podTargetLabels", []):
        relabel.append(
            {"source_labels": [f"__meta_kubernetes_pod_label_{_sanitize(name)}"], "target_label": _sanitize(name),
             "regex": "(.+)", "replacement": "${1}"}
        )  # fmt: skip
    relabel.append({"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job", "replacement": "${1}"})
    if spec.get("jobLabel"):
        relabel.append(
            {"source_labels": [f"__meta_kubernetes_service_label_{_sanitize(spec['jobLabel'])}"], "target_label": "job",
             "regex": "(.+)", "replacement": "${1}"}
        )  # fmt: skip
    relabel.append({"target_label": "endpoint", "replacement": ep["port"]})
    relabel += [_snake(r) for r in ep.get("relabelings", [])]
    config = {
        "job_name": f"serviceMonitor/{meta['namespace']}/{meta['name']}/{index}",
        "honor_labels": bool(ep.get("honorLabels", False)),
        "static_configs": targets,
        "relabel_configs": relabel,
    }
    for key, ours in (("interval", "scrape_interval"), ("scrapeTimeout", "scrape_timeout"), ("path", "metrics_path")):
        if key in ep:
            config[ours] = ep[key]
    if ep.get("metricRelabelings"):
        config["metric_relabel_configs"] = [_snake(r) for r in ep["metricRelabelings"]]
    return config


def _snake(relabel: dict) -> dict:
    # The operator's RelabelConfig is camelCase; Prometheus's relabel_config snake_case.
    return {re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), k): v for k, v in relabel.items()}


def discovered(address: str, service: dict, pod: str, container: str, port_name: str) -> dict:
    """One endpoint as Kubernetes' endpoints discovery labels it (Prometheus v2.42.0,
    discovery/kubernetes/endpoints.go and service.go): the Service's name, namespace and labels, the
    backing pod and the port's name."""
    labels = {
        "__meta_kubernetes_namespace": service["metadata"]["namespace"],
        "__meta_kubernetes_service_name": service["metadata"]["name"],
        "__meta_kubernetes_endpoint_port_name": port_name,
        "__meta_kubernetes_endpoint_address_target_kind": "Pod",
        "__meta_kubernetes_endpoint_address_target_name": pod,
        "__meta_kubernetes_pod_name": pod,
        "__meta_kubernetes_pod_container_name": container,
        "__meta_kubernetes_pod_phase": "Running",
    }
    for key, value in service["metadata"].get("labels", {}).items():
        labels[f"__meta_kubernetes_service_label_{_sanitize(key)}"] = value
        labels[f"__meta_kubernetes_service_labelpresent_{_sanitize(key)}"] = "true"
    return {"targets": [address], "labels": labels}


# -- processes ---------------------------------------------------------------------------------------


@dataclass
class PrometheusServer:
    """A real Prometheus on 127.0.0.1 with the given scrape configs and rule files."""

    scrape_configs: list[dict]
    rule_files: list[str] = field(default_factory=list)
    interval: str = "1s"
    port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.workdir = tempfile.mkdtemp(prefix="atlas-prometheus-")
        self.url = f"http://127.0.0.1:{self.port}"

    @contextmanager
    def running(self) -> Iterator[PrometheusServer]:
        config = {
            "global": {"scrape_interval": self.interval, "evaluation_interval": self.interval},
            "rule_files": self.rule_files,
            "scrape_configs": self.scrape_configs,
        }
        path = os.path.join(self.workdir, "prometheus.yml")
        with open(path, "w") as f:
            yaml.safe_dump(config, f)
        log = open(os.path.join(self.workdir, "prometheus.log"), "wb")  # noqa: SIM115 - the process's lifetime
        proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={path}", f"--storage.tsdb.path={self.workdir}/data",
             f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_until(lambda: self._ready(proc), timeout=30, interval=0.1)
            yield self
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _ready(self, proc: subprocess.Popen) -> bool:
        if proc.poll() is not None:
            with open(os.path.join(self.workdir, "prometheus.log")) as f:
                raise RuntimeError(f"prometheus exited {proc.returncode}:\n{f.read()}")
        try:
            return requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    def api(self, path: str, **params) -> dict:
        response = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["result"]

    def targets(self) -> list[dict]:
        return self.api("targets", state="active")["activeTargets"]


@contextmanager
def postgres_exporter(dsn: str) -> Iterator[str]:
    """prometheus-postgres-exporter for one database; yields its address (host:port)."""
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="atlas-pg-exporter-")
    log = open(os.path.join(workdir, "exporter.log"), "wb")  # noqa: SIM115 - the process's lifetime
    env = {"PATH": os.environ.get("PATH", ""), "DATA_SOURCE_NAME": dsn}
    proc = subprocess.Popen([EXPORTER, f"--web.listen-address=127.0.0.1:{port}"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, cwd=workdir)  # fmt: skip

    def listening() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"postgres_exporter exited {proc.returncode}")
        try:
            return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        wait_until(listening, timeout=20, interval=0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


def metric_names(exposition: str) -> set[str]:
    """Names of the samples in a text exposition (histograms: their _bucket, _sum and _count)."""
    names = set()
    for line in exposition.splitlines():
        if line and not line.startswith("#"):
            names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return names


def wait_for(predicate, timeout: float, what: str) -> float:
    started = time.monotonic()
    try:
        wait_until(predicate, timeout=timeout, interval=0.25)
    except Exception as err:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from err
    return time.monotonic() - started
