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
{{- if eq .name "projects" }}
{{- /* Unset USERS_SERVICE_URL switches the owner check off, which is right when users is not deployed. */}}
{{- if .root.Values.users.enabled }}
USERS_SERVICE_URL: {{ include "atlas.serviceUrl" (dict "root" .root "name" "users") | quote }}
{{- end }}
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

{{/* /tmp is the only writable path the services need (docs/interfaces.md). */}}
{{- define "atlas.service.tmpMount" -}}
volumeMounts:
  - name: tmp
    mountPath: /tmp
{{- end -}}
