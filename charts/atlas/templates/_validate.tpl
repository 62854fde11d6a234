{{/*
Checks across several values that values.schema.json cannot express clearly. Each failure names
the key to fix, and all of them are reported at once (one install attempt shows every mistake).
Included once, from validate.yaml. The check templates it includes print their failures, one per line.
*/}}
{{- define "atlas.validate" -}}
{{- $errors := list }}
{{- $services := include "atlas.services" $ | fromJsonArray }}
{{- range $name := $services }}
{{- $svc := index $.Values $name }}
{{- if $svc.enabled }}
{{- range $callee := $svc.calls }}
{{- if not (has $callee $services) }}
{{- $errors = append $errors (printf "%s.calls names %s, which is not a service of this chart (services: %s)" $name $callee (join ", " $services)) }}
{{- else if eq $callee $name }}
{{- $errors = append $errors (printf "%s.calls names the service itself" $name) }}
{{- end }}
{{- end }}
{{- range $i, $file := $svc.secretFiles }}
{{- if not $file.secretName }}
{{- $errors = append $errors (printf "%s.secretFiles[%d].secretName is required (the Secret holding %s for %s; the playbooks create it)" $name $i $file.key $file.env) }}
{{- end }}
{{- end }}
{{- if not $svc.postgresql.enabled }}
{{- if $svc.postgresql.backup.enabled }}
{{- $errors = append $errors (printf "%s.postgresql.backup.enabled needs %s.postgresql.enabled: the chart backs up only the database it runs (back up an external database where it runs)" $name $name) }}
{{- end }}
{{- if not $svc.externalDatabase.host }}
{{- $errors = append $errors (printf "%s.externalDatabase.host is required when %s.postgresql.enabled is false" $name $name) }}
{{- end }}
{{- if not $svc.externalDatabase.existingSecret }}
{{- $errors = append $errors (printf "%s.externalDatabase.existingSecret is required when %s.postgresql.enabled is false (a Secret holding the password)" $name $name) }}
{{- end }}
{{- end }}
{{- if and $svc.autoscaling.enabled (gt (int $svc.autoscaling.minReplicas) (int $svc.autoscaling.maxReplicas)) }}
{{- $errors = append $errors (printf "%s.autoscaling.minReplicas (%v) must not exceed %s.autoscaling.maxReplicas (%v)" $name $svc.autoscaling.minReplicas $name $svc.autoscaling.maxReplicas) }}
{{- end }}
{{- /* The checks the services' settings declarations ask for (generated: _settings.tpl). */}}
{{- $errors = concat $errors (include "atlas.settings.validate" (dict "name" $name "svc" $svc) | splitList "\n" | compact) }}
{{- $errors = concat $errors (include "atlas.validate.schedule" (dict "key" (printf "%s.postgresql.backup.schedule" $name) "schedule" $svc.postgresql.backup.schedule) | splitList "\n" | compact) }}
{{- $drain := add $svc.preStopSleepSeconds $svc.config.gracefulTimeout }}
{{- if le (int $svc.terminationGracePeriodSeconds) (int $drain) }}
{{- $errors = append $errors (printf "%s.terminationGracePeriodSeconds (%v) must exceed %s.preStopSleepSeconds + %s.config.gracefulTimeout (%v), or requests are cut off" $name $svc.terminationGracePeriodSeconds $name $name $drain) }}
{{- end }}
{{- end }}
{{- end }}
{{- $auth := .Values.authentication }}
{{- if and $auth.provider (not (has $auth.provider $services)) }}
{{- $errors = append $errors (printf "authentication.provider names %s, which is not a service of this chart (services: %s; \"\" for an external issuer)" $auth.provider (join ", " $services)) }}
{{- else if and $auth.required (not (include "atlas.auth.providerEnabled" .)) (not $auth.issuer) }}
{{- $errors = append $errors (printf "authentication.required needs someone to issue the tokens: enable %s, or set authentication.issuer to an external issuer" (default "authentication.provider" $auth.provider)) }}
{{- else if and (or $auth.required (include "atlas.auth.providerEnabled" .)) (not $auth.issuer) (not (include "atlas.entryHost" .)) }}
{{- $errors = append $errors (printf "authentication.issuer is required when the entry has no host (%s is empty): the issuer defaults to http://<that host>" (ternary "gateway.host" "ingress.host" .Values.gateway.enabled)) }}
{{- end }}
{{- if and .Values.ingress.enabled .Values.ingress.tls.enabled (not .Values.ingress.tls.secretName) }}
{{- $errors = append $errors "ingress.tls.secretName is required when ingress.tls.enabled is true" }}
{{- end }}
{{- $errors = concat $errors (include "atlas.metrics.validate" . | splitList "\n" | compact) }}
{{- if $errors }}
{{- fail (printf "%d problem(s) in the values:\n  - %s" (len $errors) (join "\n  - " $errors)) }}
{{- end }}
{{- end -}}


{{/*
A cron range the schema's pattern lets through but Kubernetes refuses (robfig/cron: "beginning of range
beyond end of range"): a-b with a > b, names counted as Kubernetes counts them. Prints each, one per line.
Args: key, schedule.
*/}}
{{- define "atlas.validate.schedule" -}}
{{- $names := dict "jan" 1 "feb" 2 "mar" 3 "apr" 4 "may" 5 "jun" 6 "jul" 7 "aug" 8 "sep" 9 "oct" 10 "nov" 11 "dec" 12 "sun" 0 "mon" 1 "tue" 2 "wed" 3 "thu" 4 "fri" 5 "sat" 6 -}}
{{- if not (hasPrefix "@" .schedule) }}
{{- range $field := regexSplit "[ \\t]+" .schedule -1 }}
{{- range $element := splitList "," $field }}
{{- $ends := splitList "-" (first (splitList "/" $element)) }}
{{- if eq (len $ends) 2 }}
{{- $low := lower (index $ends 0) }}
{{- $high := lower (index $ends 1) }}
{{- $lowN := ternary (index $names $low) (atoi $low) (hasKey $names $low) | int }}
{{- $highN := ternary (index $names $high) (atoi $high) (hasKey $names $high) | int }}
{{- if gt $lowN $highN }}
{{- printf "%s %q: the range %s runs backwards (%d > %d); Kubernetes refuses it\n" $.key $.schedule $element $lowN $highN }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}
