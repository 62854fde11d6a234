{{/*
Metrics: the Prometheus Operator's resources (ServiceMonitor; PrometheusRule) and the databases'
postgres_exporter sidecars.
*/}}

{{/*
True (non-empty) when the cluster serves the Prometheus Operator's API group monitoring.coreos.com/v1.
Every operator resource the chart renders (ServiceMonitor, PrometheusRule) is guarded by it: applying
one to a cluster without the CRDs fails the whole install ("no matches for kind"). `helm install` and
`helm upgrade` ask the cluster; `helm template` and --dry-run know only the built-in APIs unless given
`--api-versions monitoring.coreos.com/v1`. NOTES.txt says when a switched-on resource was left out.
Args: the root context.
  {{- if and .Values.metrics.serviceMonitor.enabled (include "atlas.metrics.operatorAvailable" .) }}
*/}}
{{- define "atlas.metrics.operatorAvailable" -}}
{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" -}}true{{- end -}}
{{- end -}}
