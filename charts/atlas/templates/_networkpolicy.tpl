{{/* Rules shared by the NetworkPolicies. */}}

{{/* Egress to the cluster DNS, in whatever namespace it runs. Args: root. */}}
{{- define "atlas.networkPolicy.dnsEgress" -}}
- to:
    - namespaceSelector: {}
  ports:
    - protocol: UDP
      port: {{ .root.Values.networkPolicy.dnsPort }}
    - protocol: TCP
      port: {{ .root.Values.networkPolicy.dnsPort }}
{{- end -}}

{{/* A peer: this release's pods of one component. Args: root, component. */}}
{{- define "atlas.networkPolicy.peer" -}}
- podSelector:
    matchLabels:
      {{- include "atlas.selectorLabels" . | nindent 6 }}
{{- end -}}

{{/* The component label of the `helm test` pods, allowed in to every service. */}}
{{- define "atlas.testComponent" -}}helm-test{{- end -}}
