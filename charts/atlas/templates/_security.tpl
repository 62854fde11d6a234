{{/*
Restricted pod security (Pod Security Standards "restricted") for every pod the chart makes.
The uid is numeric so runAsNonRoot can be checked by the kubelet without reading /etc/passwd.
*/}}

{{/* Args: uid. fsGroup makes mounted volumes writable by that group. */}}
{{- define "atlas.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
fsGroup: {{ .uid }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "atlas.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The uid the service images run as (docs/interfaces.md). */}}
{{- define "atlas.serviceUid" -}}10001{{- end -}}

{{/* The postgres user of the official Alpine image. */}}
{{- define "atlas.postgresqlUid" -}}70{{- end -}}
