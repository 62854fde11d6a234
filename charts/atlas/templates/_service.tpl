{{/*
What a service container is given. Shared by the Deployment's main and migration containers and by
the ConfigMap, so the two can never disagree. Args: root, name, svc.
*/}}

{{/* ConfigMap data: the libpq variables (without the password) and the tuning knobs. */}}
{{- define "atlas.service.configData" -}}
PGHOST: {{ include "atlas.db.host" . | quote }}
PGPORT: {{ include "atlas.db.port" . | quote }}
PGDATABASE: {{ include "atlas.db.database" . | quote }}
PGUSER: {{ include "atlas.db.user" . | quote }}
ATLAS_LOG_LEVEL: {{ .svc.config.logLevel | quote }}
ATLAS_DB_POOL_SIZE: {{ .svc.config.poolSize | quote }}
ATLAS_DB_CONNECT_TIMEOUT: {{ .svc.config.dbConnectTimeout | quote }}
ATLAS_DB_WAIT_SECONDS: {{ .svc.config.dbWaitSeconds | quote }}
ATLAS_DB_STATEMENT_TIMEOUT_MS: {{ .svc.config.dbStatementTimeoutMs | quote }}
ATLAS_MAX_BODY_BYTES: {{ .svc.config.maxBodyBytes | quote }}
GUNICORN_BIND: {{ printf "0.0.0.0:%s" (include "atlas.containerPort" .) | quote }}
GUNICORN_WORKERS: {{ .svc.config.workers | quote }}
GUNICORN_THREADS: {{ .svc.config.threads | quote }}
GUNICORN_TIMEOUT: {{ .svc.config.timeout | quote }}
GUNICORN_GRACEFUL_TIMEOUT: {{ .svc.config.gracefulTimeout | quote }}
{{- if eq .name "projects" }}
{{- /* Unset USERS_SERVICE_URL switches the owner check off, which is right when users is not deployed. */}}
{{- if .root.Values.users.enabled }}
USERS_SERVICE_URL: {{ include "atlas.serviceUrl" (dict "root" .root "name" "users") | quote }}
{{- end }}
USERS_SERVICE_TIMEOUT: {{ .svc.usersService.timeout | quote }}
USERS_SERVICE_RETRIES: {{ .svc.usersService.retries | quote }}
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
