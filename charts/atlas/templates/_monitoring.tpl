{{/*
Alerting rules and dashboards (metrics.prometheusRule, metrics.dashboards). Scraped through
ServiceMonitors, a series' job label is its Service's name (prometheus-operator v0.93.0,
pkg/prometheus/promcfg.go, generateServiceMonitorConfig: job <- __meta_kubernetes_service_name) and
the operator adds its own `service` target label, which pushes the services' `service` label aside
to exported_service (honorLabels false). So rules and dashboards select by job and namespace only.
The same goes for the services' `endpoint` label (the URL rule): the operator's `endpoint` target label
(the port's name, "http") takes its place, and it is kept as exported_endpoint.
The operator's API check is atlas.metrics.operatorAvailable (_metrics.tpl).
*/}}

{{/* The job label of a service's metrics. Args: root, name. */}}
{{- define "atlas.metrics.serviceJob" -}}
{{- include "atlas.componentName" (dict "root" .root "component" .name) -}}
{{- end -}}

{{/* The job label of a database's exporter metrics: its headless Service's name. Args: root, name, svc. */}}
{{- define "atlas.metrics.databaseJob" -}}
{{- include "atlas.db.fullname" . -}}
{{- end -}}

{{/* The enabled services whose database runs the exporter (atlas.metrics.exporterEnabled), as a JSON list. */}}
{{- define "atlas.metrics.monitoredDatabases" -}}
{{- $names := list -}}
{{- range $name := include "atlas.enabledServices" . | fromJsonArray -}}
{{- if include "atlas.metrics.exporterEnabled" (dict "root" $ "name" $name "svc" (index $.Values $name)) -}}
{{- $names = append $names $name -}}
{{- end -}}
{{- end -}}
{{- toJson $names -}}
{{- end -}}

{{/*
A latency threshold as the `le` label the services export. prometheus_client writes bucket bounds
with Python's float repr (1.0, not 1: prometheus/client_python v0.26.0, prometheus_client/utils.py,
floatToGoString) and Prometheus 2 compares `le` as a string, so "1" would match no series.
*/}}
{{- define "atlas.metrics.le" -}}
{{- $le := toString . -}}
{{- if not (regexMatch "[.e]" $le) -}}{{- $le = printf "%s.0" $le -}}{{- end -}}
{{- $le -}}
{{- end -}}

{{/* An alert's runbook: its section of docs/troubleshooting.md. Args: root, anchor. */}}
{{- define "atlas.metrics.runbookUrl" -}}
{{- $base := .root.Values.metrics.prometheusRule.runbookBaseUrl | default "docs/troubleshooting.md" -}}
{{- printf "%s#%s" $base .anchor -}}
{{- end -}}

{{/*
Each alert's section of docs/troubleshooting.md (the heading's GitHub anchor), as JSON; one place to
update when the sections are renumbered (tests/chart/test_monitoring.py checks every anchor exists).
*/}}
{{- define "atlas.metrics.runbookAnchors" -}}
{{- toJson (dict
  "AtlasAvailabilityBudgetBurn" "17-alert-atlasavailabilitybudgetburn"
  "AtlasLatencyBudgetBurn" "18-alert-atlaslatencybudgetburn"
  "AtlasDbPoolSaturated" "19-alert-atlasdbpoolsaturated"
  "AtlasServiceDown" "20-alert-atlasservicedown"
  "AtlasServiceAbsent" "21-alert-atlasserviceabsent"
  "AtlasDatabaseDown" "22-alert-atlasdatabasedown"
  "AtlasDatabaseConnectionsNearLimit" "23-alert-atlasdatabaseconnectionsnearlimit"
) -}}
{{- end -}}

{{/* An alert's annotations: summary, description, runbook_url. Args: root, alert, summary, description. */}}
{{- define "atlas.metrics.annotations" -}}
summary: {{ .summary | quote }}
description: {{ .description | quote }}
runbook_url: {{ include "atlas.metrics.runbookUrl" (dict "root" .root "anchor" (index (include "atlas.metrics.runbookAnchors" .root | fromJson) .alert)) | quote }}
{{- end -}}

{{/*
The label holding the services' URL rule once scraped: exported_endpoint, unless the ServiceMonitor
honours the scraped labels (metrics.serviceMonitor.honorLabels), when it stays `endpoint`.
files/dashboards/*.json are written with exported_endpoint and get this instead.
*/}}
{{- define "atlas.metrics.endpointLabel" -}}
{{- if (dig "serviceMonitor" "honorLabels" false .Values.metrics) -}}endpoint{{- else -}}exported_endpoint{{- end -}}
{{- end -}}
