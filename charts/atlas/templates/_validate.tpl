{{/*
Checks across several values that values.schema.json cannot express clearly. Each failure names
the key to fix. Included once, from validate.yaml.
*/}}
{{- define "atlas.validate" -}}
{{- range $name := list "users" "projects" }}
{{- $svc := index $.Values $name }}
{{- if $svc.enabled }}
{{- if not $svc.postgresql.enabled }}
{{- if not $svc.externalDatabase.host }}
{{- fail (printf "%s.externalDatabase.host is required when %s.postgresql.enabled is false" $name $name) }}
{{- end }}
{{- if not $svc.externalDatabase.existingSecret }}
{{- fail (printf "%s.externalDatabase.existingSecret is required when %s.postgresql.enabled is false (a Secret holding the password)" $name $name) }}
{{- end }}
{{- end }}
{{- if and $svc.autoscaling.enabled (gt (int $svc.autoscaling.minReplicas) (int $svc.autoscaling.maxReplicas)) }}
{{- fail (printf "%s.autoscaling.minReplicas (%v) must not exceed %s.autoscaling.maxReplicas (%v)" $name $svc.autoscaling.minReplicas $name $svc.autoscaling.maxReplicas) }}
{{- end }}
{{- /* The checks the services' settings declarations ask for (generated: _settings.tpl). */}}
{{- include "atlas.settings.validate" (dict "name" $name "svc" $svc) }}
{{- $drain := add $svc.preStopSleepSeconds $svc.config.gracefulTimeout }}
{{- if le (int $svc.terminationGracePeriodSeconds) (int $drain) }}
{{- fail (printf "%s.terminationGracePeriodSeconds (%v) must exceed %s.preStopSleepSeconds + %s.config.gracefulTimeout (%v), or requests are cut off" $name $svc.terminationGracePeriodSeconds $name $name $drain) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and .Values.ingress.enabled .Values.ingress.tls.enabled (not .Values.ingress.tls.secretName) }}
{{- fail "ingress.tls.secretName is required when ingress.tls.enabled is true" }}
{{- end }}
{{- end -}}
