{{/*
What a service container is given. Shared by the Deployment's main and migration containers and by
the ConfigMap, so the two can never disagree. Args: root, name, svc.
*/}}

{{/*
ConfigMap data: the libpq variables (without the password), the service's settings blocks (chart key ->
environment variable, generated from the services' declarations into _settings.tpl), and the settings the
chart wires itself, which are not chart values (declared env_only in the services).
*/}}
{{- define "atlas.service.configData" -}}
PGHOST: {{ include "atlas.db.host" . | quote }}
PGPORT: {{ include "atlas.db.port" . | quote }}
PGDATABASE: {{ include "atlas.db.database" . | quote }}
PGUSER: {{ include "atlas.db.user" . | quote }}
{{- include "atlas.settings.env" . }}
ATLAS_BIND: {{ printf "0.0.0.0:%s" (include "atlas.containerPort" .) | quote }}
{{- /* A callee that is not deployed gets no URL: the caller runs without it (projects: owner check off). */}}
{{- range $callee := include "atlas.callees" . | fromJsonArray }}
{{ printf "%s_SERVICE_URL" (upper $callee) }}: {{ include "atlas.serviceUrl" (dict "root" $.root "name" $callee) | quote }}
{{- end }}
{{- include "atlas.auth.configData" . }}
{{- range $i, $file := .svc.secretFiles }}
{{ $file.env }}: {{ printf "%s/%d/%s" (include "atlas.secretFilesDir" $.root) $i $file.key | quote }}
{{- end }}
{{- end -}}

{{/* Environment of every service container: the ConfigMap plus the password from its Secret. */}}
{{- define "atlas.service.env" -}}
envFrom:
  - configMapRef:
      name: {{ include "atlas.componentName" (dict "root" .root "component" .name) }}
env:
  - name: PGPASSWORD
    valueFrom:
      secretKeyRef:
        name: {{ include "atlas.db.secretName" . }}
        key: {{ include "atlas.db.secretKey" . }}
{{- end -}}

{{/* Where a service's secretFiles are mounted, one folder each (read-only). */}}
{{- define "atlas.secretFilesDir" -}}/run/secrets/atlas{{- end -}}

{{/*
/tmp is the only writable path the services need (docs/interfaces.md). The serving container also gets its
secretFiles, read-only; the migrate init container does not need them (a signing key has no business there).
Args: root, svc, serving (bool).
*/}}
{{- define "atlas.service.mounts" -}}
volumeMounts:
  - name: tmp
    mountPath: /tmp
{{- range $i, $file := ternary .svc.secretFiles (list) .serving }}
  - name: {{ printf "secret-file-%d" $i }}
    mountPath: {{ printf "%s/%d" (include "atlas.secretFilesDir" $.root) $i }}
    readOnly: true
{{- end }}
{{- end -}}

{{/* The volumes of a service's pods: /tmp and its secretFiles. Args: root, svc. */}}
{{- define "atlas.service.volumes" -}}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: 64Mi
{{- range $i, $file := .svc.secretFiles }}
  - name: {{ printf "secret-file-%d" $i }}
    secret:
      secretName: {{ $file.secretName }}
      defaultMode: 0440
      items:
        - key: {{ $file.key }}
          path: {{ $file.key }}
{{- end }}
{{- end -}}
