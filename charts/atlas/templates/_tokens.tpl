{{/*
Authentication: who issues the tokens, where their keys are, and which services check them. The
provider is a service of this chart (authentication.provider, the auth service) or an external issuer.
*/}}

{{/* "true" when the provider is a service of this chart and enabled. Args: the root context. */}}
{{- define "atlas.auth.providerEnabled" -}}
{{- $p := .Values.authentication.provider -}}
{{- if and $p (hasKey .Values $p) -}}
{{- if (index .Values $p).enabled -}}true{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The tokens' issuer: authentication.issuer, else http:// and the entry's host; without a trailing slash, as
the services read it (atlas_common.config: a base URL), since the gateway compares the `iss` claim as a
string. Args: the root context.
*/}}
{{- define "atlas.auth.issuer" -}}
{{- if .Values.authentication.issuer -}}
{{- .Values.authentication.issuer | trimSuffix "/" -}}
{{- else -}}
{{- printf "http://%s" (include "atlas.entryHost" .) -}}
{{- end -}}
{{- end -}}

{{/* The host the entry answers on: the gateway's or the Ingress's. Args: the root context. */}}
{{- define "atlas.entryHost" -}}
{{- ternary .Values.gateway.host .Values.ingress.host .Values.gateway.enabled -}}
{{- end -}}

{{/* "true" when the keys are outside the chart (an external issuer, or authentication.jwksUri). Args: root. */}}
{{- define "atlas.auth.keysOutside" -}}
{{- if or .Values.authentication.jwksUri (not (include "atlas.auth.providerEnabled" .)) -}}true{{- end -}}
{{- end -}}

{{/* The TCP port of the keys' URL (its own, else the scheme's). Args: the root context. */}}
{{- define "atlas.auth.jwksPort" -}}
{{- $url := urlParse (include "atlas.auth.jwksUri" .) -}}
{{- $port := regexFind ":[0-9]+$" $url.host | trimPrefix ":" -}}
{{- default (ternary "443" "80" (eq $url.scheme "https")) $port -}}
{{- end -}}

{{/*
Where the public keys are: authentication.jwksUri, else the provider's own endpoint by its cluster name
(reachable from the services and from the gateway's proxies alike), else <issuer>/.well-known/jwks.json.
Args: the root context.
*/}}
{{- define "atlas.auth.jwksUri" -}}
{{- if .Values.authentication.jwksUri -}}
{{- .Values.authentication.jwksUri | trimSuffix "/" -}}
{{- else if include "atlas.auth.providerEnabled" . -}}
{{- printf "%s/.well-known/jwks.json" (include "atlas.serviceFqdnUrl" (dict "root" . "name" .Values.authentication.provider)) -}}
{{- else -}}
{{- printf "%s/.well-known/jwks.json" (include "atlas.auth.issuer" . | trimSuffix "/") -}}
{{- end -}}
{{- end -}}

{{/* "true" when a service checks tokens on its /api/v1 calls: every service but the provider. Args: root, name. */}}
{{- define "atlas.auth.enforced" -}}
{{- if and .root.Values.authentication.required (ne .name .root.Values.authentication.provider) -}}true{{- end -}}
{{- end -}}

{{/* ConfigMap lines of the authentication settings a service reads. Args: root, name. */}}
{{- define "atlas.auth.configData" -}}
{{- $a := .root.Values.authentication }}
{{- if or (eq .name $a.provider) (include "atlas.auth.enforced" .) }}
ATLAS_AUTH_ISSUER: {{ include "atlas.auth.issuer" .root | quote }}
ATLAS_AUTH_AUDIENCE: {{ $a.audience | quote }}
{{- end }}
{{- if include "atlas.auth.enforced" . }}
ATLAS_AUTH_JWKS_URL: {{ include "atlas.auth.jwksUri" .root | quote }}
{{- end }}
{{- end -}}

{{/*
The services a service reaches over HTTP, as a JSON list: the ones it calls, and the provider when it
checks tokens (their keys). Args: root, name, svc.
*/}}
{{- define "atlas.reaches" -}}
{{- $names := include "atlas.callees" . | fromJsonArray -}}
{{- $p := .root.Values.authentication.provider -}}
{{- if and (include "atlas.auth.enforced" .) (include "atlas.auth.providerEnabled" .root) (not (has $p $names)) -}}
{{- $names = append $names $p -}}
{{- end -}}
{{- toJson $names -}}
{{- end -}}

{{/* The enabled services that reach a service (atlas.reaches), as a JSON list. Args: root, name. */}}
{{- define "atlas.reachedBy" -}}
{{- $names := list -}}
{{- range $other := include "atlas.enabledServices" .root | fromJsonArray -}}
{{- $ctx := dict "root" $.root "name" $other "svc" (index $.root.Values $other) -}}
{{- if has $.name (include "atlas.reaches" $ctx | fromJsonArray) -}}
{{- $names = append $names $other -}}
{{- end -}}
{{- end -}}
{{- toJson $names -}}
{{- end -}}
