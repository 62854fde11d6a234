{{/*
Where each service's database is: the chart's own PostgreSQL (<svc>.postgresql.enabled) or an
external server (<svc>.externalDatabase). All take a dict: root, name, svc.
*/}}

{{- define "atlas.db.componentName" -}}
{{- printf "%s-postgresql" .name -}}
{{- end -}}

{{/* The chart's PostgreSQL resources (StatefulSet, headless Service, generated Secret). */}}
{{- define "atlas.db.fullname" -}}
{{- include "atlas.componentName" (dict "root" .root "component" (include "atlas.db.componentName" .)) -}}
{{- end -}}

{{- define "atlas.db.host" -}}
{{- if .svc.postgresql.enabled -}}
{{- include "atlas.db.fullname" . -}}
{{- else -}}
{{- .svc.externalDatabase.host -}}
{{- end -}}
{{- end -}}

{{- define "atlas.db.port" -}}
{{- if .svc.postgresql.enabled -}}5432{{- else -}}{{- .svc.externalDatabase.port -}}{{- end -}}
{{- end -}}

{{- define "atlas.db.database" -}}
{{- if .svc.postgresql.enabled -}}{{- .svc.postgresql.auth.database -}}{{- else -}}{{- .svc.externalDatabase.database -}}{{- end -}}
{{- end -}}

{{- define "atlas.db.user" -}}
{{- if .svc.postgresql.enabled -}}{{- .svc.postgresql.auth.username -}}{{- else -}}{{- .svc.externalDatabase.user -}}{{- end -}}
{{- end -}}

{{/* True (non-empty) when the chart itself must create the password Secret. */}}
{{- define "atlas.db.createSecret" -}}
{{- if and .svc.postgresql.enabled (not .svc.postgresql.auth.existingSecret) -}}true{{- end -}}
{{- end -}}

{{/* The Secret holding the password, whoever made it. */}}
{{- define "atlas.db.secretName" -}}
{{- if not .svc.postgresql.enabled -}}
{{- .svc.externalDatabase.existingSecret -}}
{{- else if .svc.postgresql.auth.existingSecret -}}
{{- .svc.postgresql.auth.existingSecret -}}
{{- else -}}
{{- include "atlas.db.fullname" . -}}
{{- end -}}
{{- end -}}

{{- define "atlas.db.secretKey" -}}
{{- if not .svc.postgresql.enabled -}}
{{- .svc.externalDatabase.secretKey -}}
{{- else if .svc.postgresql.auth.existingSecret -}}
{{- .svc.postgresql.auth.secretKey -}}
{{- else -}}
password
{{- end -}}
{{- end -}}

{{/*
The base64 password for the Secret the chart makes: the given auth.password, else the one already
in the cluster (lookup, so `helm upgrade` keeps the password the database was initialised with),
else a fresh random one. `helm template` and --dry-run cannot look up, so they render a fresh one.
*/}}
{{- define "atlas.db.passwordB64" -}}
{{- if .svc.postgresql.auth.password -}}
{{- .svc.postgresql.auth.password | b64enc -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace (include "atlas.db.fullname" .) -}}
{{- if and $existing $existing.data (hasKey $existing.data "password") -}}
{{- index $existing.data "password" -}}
{{- else -}}
{{- randAlphaNum 32 | b64enc -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The password as a file: the Secret above, its one key mounted as "password" (mode 0440: readable through
fsGroup by uid 70, nobody else), for the database's entrypoint and the backup job alike.
*/}}
{{- define "atlas.db.passwordDir" -}}/run/secrets/postgresql{{- end -}}

{{- define "atlas.db.passwordVolume" -}}
- name: password
  secret:
    secretName: {{ include "atlas.db.secretName" . }}
    defaultMode: 0440
    items:
      - key: {{ include "atlas.db.secretKey" . }}
        path: password
{{- end -}}

{{/*
Scheduled backups (<svc>.postgresql.backup): only of a database the chart runs (_validate.tpl refuses
backup.enabled with an external one). True (non-empty) when this service's CronJob and claim render.
*/}}
{{- define "atlas.db.backupEnabled" -}}
{{- if and .svc.enabled .svc.postgresql.enabled .svc.postgresql.backup.enabled -}}true{{- end -}}
{{- end -}}

{{- define "atlas.db.backupComponentName" -}}
{{- printf "%s-postgresql-backup" .name -}}
{{- end -}}

{{/* The CronJob and its claim. At most 52 characters: the controller appends 11 to name each Job. */}}
{{- define "atlas.db.backupFullname" -}}
{{- include "atlas.componentName" (dict "root" .root "component" (include "atlas.db.backupComponentName" .)) | trunc 52 | trimSuffix "-" -}}
{{- end -}}
