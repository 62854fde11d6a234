{{/*
Names and labels. Every resource name is "<fullname>-<component>", e.g. atlas-users,
atlas-users-postgresql (docs/interfaces.md). Named templates that need more than the root context
take a dict: root (the top context), name (a service: users, projects, ...), svc (that service's values).
*/}}

{{- define "atlas.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Bitnami convention: a release name that already contains the chart name is used as is. */}}
{{- define "atlas.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "atlas.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Name of one component's resources. Args: root, component. */}}
{{- define "atlas.componentName" -}}
{{- printf "%s-%s" (include "atlas.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select one component's pods; never change them on upgrade. Args: root, component. */}}
{{- define "atlas.selectorLabels" -}}
app.kubernetes.io/name: {{ include "atlas.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Every resource's labels. Args: root, component. */}}
{{- define "atlas.labels" -}}
helm.sh/chart: {{ include "atlas.chart" .root }}
{{ include "atlas.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: atlas
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
The services, as a JSON list in name order: every top-level block of values.yaml in the service shape
(it has image, config and postgresql; values.schema.json's atlasService). A new service is a new block,
never a new template:
  range $name := include "atlas.services" . | fromJsonArray
*/}}
{{- define "atlas.services" -}}
{{- $names := list -}}
{{- range $name := keys .Values | sortAlpha -}}
{{- $block := index $.Values $name -}}
{{- if and (kindIs "map" $block) (hasKey $block "image") (hasKey $block "config") (hasKey $block "postgresql") -}}
{{- $names = append $names $name -}}
{{- end -}}
{{- end -}}
{{- toJson $names -}}
{{- end -}}

{{/* The enabled services, as a JSON list: range $name := include "atlas.enabledServices" . | fromJsonArray */}}
{{- define "atlas.enabledServices" -}}
{{- $names := list -}}
{{- range $name := include "atlas.services" . | fromJsonArray -}}
{{- if (index $.Values $name).enabled -}}
{{- $names = append $names $name -}}
{{- end -}}
{{- end -}}
{{- toJson $names -}}
{{- end -}}

{{/*
The enabled services a service calls (its `calls`), as a JSON list: each gets <NAME>_SERVICE_URL in the
caller's ConfigMap and a NetworkPolicy path between the two. A callee that is not deployed is left out:
the caller runs without it (projects: the owner check is off). Args: root, svc.
*/}}
{{- define "atlas.callees" -}}
{{- $names := list -}}
{{- range $callee := .svc.calls -}}
{{- if (index $.root.Values $callee).enabled -}}
{{- $names = append $names $callee -}}
{{- end -}}
{{- end -}}
{{- toJson $names -}}
{{- end -}}

{{/* The ServiceAccount a service runs as. Args: root, name. */}}
{{- define "atlas.serviceAccountName" -}}
{{- include "atlas.componentName" (dict "root" .root "component" .name) -}}
{{- end -}}

{{/* The container port every service listens on (docs/interfaces.md: 8080, named http). */}}
{{- define "atlas.containerPort" -}}8080{{- end -}}

{{/* URL of a service inside the cluster. Args: root, name. */}}
{{- define "atlas.serviceUrl" -}}
{{- printf "http://%s:%v" (include "atlas.componentName" (dict "root" .root "component" .name)) (index .root.Values .name).service.port -}}
{{- end -}}

{{/* repository:tag, the tag defaulting to the chart appVersion. Args: root, image. */}}
{{- define "atlas.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) -}}
{{- end -}}

{{- define "atlas.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* URL of a service from anywhere in the cluster (the gateway's proxies run in another namespace). Args: root, name. */}}
{{- define "atlas.serviceFqdnUrl" -}}
{{- $svc := index .root.Values .name -}}
{{- printf "http://%s.%s.svc.cluster.local:%v" (include "atlas.componentName" (dict "root" .root "component" .name)) .root.Release.Namespace $svc.service.port -}}
{{- end -}}

{{/* The Gateway the routes attach to: gateway.name, else the one the chart renders. Args: the root context. */}}
{{- define "atlas.gateway.name" -}}
{{- default (include "atlas.fullname" .) .Values.gateway.name -}}
{{- end -}}

{{/* An HTTPRoute's parentRefs entry: the Gateway, its namespace and listener when set. Args: the root context. */}}
{{- define "atlas.gateway.parentRef" -}}
- name: {{ include "atlas.gateway.name" . }}
  {{- with .Values.gateway.namespace }}
  namespace: {{ . }}
  {{- end }}
  {{- with .Values.gateway.sectionName }}
  sectionName: {{ . }}
  {{- end }}
{{- end -}}
