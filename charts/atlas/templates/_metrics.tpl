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

{{/* True (non-empty) when the ServiceMonitors render: switched on and the cluster can take them. Args: root. */}}
{{- define "atlas.metrics.serviceMonitorEnabled" -}}
{{- if and .Values.metrics.serviceMonitor.enabled (include "atlas.metrics.operatorAvailable" .) -}}true{{- end -}}
{{- end -}}

{{/*
True (non-empty) when this service's database runs the postgres_exporter sidecar: only beside a database
the chart runs (_validate.tpl refuses metrics.enabled with an external one). Args: root, name, svc.
*/}}
{{- define "atlas.metrics.exporterEnabled" -}}
{{- if and .svc.enabled .svc.postgresql.enabled .svc.postgresql.metrics.enabled -}}true{{- end -}}
{{- end -}}

{{/* The exporter's port: upstream's default (9187), named for the ServiceMonitor and the NetworkPolicy. */}}
{{- define "atlas.metrics.exporterPort" -}}9187{{- end -}}
{{- define "atlas.metrics.exporterPortName" -}}http-metrics{{- end -}}

{{/*
The postgres_exporter sidecar of a database pod (a container of the StatefulSet's pod template, so turning it
on or off is an update the apiserver allows). Environment and flags as upstream documents them at the pinned
tag (prometheus-community/postgres_exporter v0.20.1: README.md "Environment Variables", exporter/datasource.go
GetDataSources) and as Debian's 0.11.1 (cmd/postgres_exporter/datasource.go, main.go) reads them too:
DATA_SOURCE_URI + DATA_SOURCE_USER + DATA_SOURCE_PASS_FILE become one postgresql:// URL, the password read
from the file the StatefulSet already mounts from its Secret, so it is in no environment variable.
It connects over the pod's loopback (same network namespace), so no NetworkPolicy egress rule is needed; note
that the official image's initdb trusts loopback TCP, so there the password is not what lets it in.
The listen address is a flag, not PG_EXPORTER_WEB_LISTEN_ADDRESS: 0.11.1 reads that variable, v0.20.1 does not
(its listen flag comes from exporter-toolkit and has no variable). No readiness probe on purpose: the pod's
readiness is the database's (its headless Service's DNS only lists ready pods), and a slow scrape must not take
the database away from its service. Args: root, name, svc.
*/}}
{{- define "atlas.metrics.exporterContainer" -}}
{{- $metrics := .svc.postgresql.metrics -}}
- name: metrics
  image: {{ include "atlas.image" (dict "root" .root "image" $metrics.image) }}
  imagePullPolicy: {{ $metrics.image.pullPolicy }}
  args:
    - --web.listen-address=:{{ include "atlas.metrics.exporterPort" . }}
    - --web.telemetry-path=/metrics
  env:
    - name: DATA_SOURCE_URI
      value: {{ printf "127.0.0.1:%s/%s?sslmode=disable" (include "atlas.db.port" .) (include "atlas.db.database" .) | quote }}
    - name: DATA_SOURCE_USER
      value: {{ include "atlas.db.user" . | quote }}
    - name: DATA_SOURCE_PASS_FILE
      value: {{ include "atlas.db.passwordDir" . }}/password
  ports:
    - name: {{ include "atlas.metrics.exporterPortName" . }}
      containerPort: {{ include "atlas.metrics.exporterPort" . }}
      protocol: TCP
  {{- /* "/" is the landing page: it answers while the process serves, whatever the database does. */}}
  livenessProbe:
    httpGet:
      path: /
      port: {{ include "atlas.metrics.exporterPortName" . }}
    periodSeconds: 10
    timeoutSeconds: 5
    failureThreshold: 6
  securityContext:
    {{- /* The image's user (nobody); the password file is readable through the pod's fsGroup. */}}
    runAsUser: 65534
    runAsGroup: 65534
    {{- include "atlas.containerSecurityContext" . | nindent 4 }}
  resources:
    {{- toYaml $metrics.resources | nindent 4 }}
  volumeMounts:
    - name: password
      mountPath: {{ include "atlas.db.passwordDir" . }}
      readOnly: true
{{- end -}}

{{/*
One scrape endpoint of a ServiceMonitor, with the metrics.serviceMonitor settings. Args: root, port (the
Service's port name: the operator keeps only endpoints of that name).
*/}}
{{- define "atlas.metrics.endpoint" -}}
{{- $sm := .root.Values.metrics.serviceMonitor -}}
- port: {{ .port }}
  path: /metrics
  interval: {{ $sm.interval }}
  scrapeTimeout: {{ $sm.scrapeTimeout }}
  honorLabels: {{ $sm.honorLabels }}
  {{- with $sm.relabelings }}
  relabelings:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $sm.metricRelabelings }}
  metricRelabelings:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* A duration (schema: digits and ms, s, m or h) in milliseconds, for comparing two. Args: a duration string. */}}
{{- define "atlas.metrics.durationMs" -}}
{{- $factor := dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000 -}}
{{- mul (regexFind "^[0-9]+" .) (index $factor (regexFind "(ms|s|m|h)$" .)) -}}
{{- end -}}

{{/*
The metrics checks across keys; prints each failure, one per line (atlas.validate reports them all).
Args: the root context.
*/}}
{{- define "atlas.metrics.validate" -}}
{{- range $name := include "atlas.services" $ | fromJsonArray }}
{{- $svc := index $.Values $name }}
{{- if and $svc.enabled $svc.postgresql.metrics.enabled (not $svc.postgresql.enabled) }}
{{- printf "%s.postgresql.metrics.enabled needs %s.postgresql.enabled: the exporter runs beside the database the chart runs (monitor an external database where it runs)\n" $name $name }}
{{- end }}
{{- end }}
{{- $sm := .Values.metrics.serviceMonitor }}
{{- if $sm.enabled }}
{{- if gt (include "atlas.metrics.durationMs" $sm.scrapeTimeout | int64) (include "atlas.metrics.durationMs" $sm.interval | int64) }}
{{- printf "metrics.serviceMonitor.scrapeTimeout (%s) must not exceed metrics.serviceMonitor.interval (%s): Prometheus refuses the whole configuration\n" $sm.scrapeTimeout $sm.interval }}
{{- end }}
{{- if and .Values.networkPolicy.enabled (not $sm.networkPolicy.namespaceSelector) (not $sm.networkPolicy.podSelector) }}
{{- printf "metrics.serviceMonitor.networkPolicy: namespaceSelector and podSelector are both empty, which would let every pod in the cluster reach the metrics ports; select the Prometheus pods\n" }}
{{- end }}
{{- end }}
{{- end -}}
