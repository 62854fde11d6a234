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

{{/*
A NetworkPolicy's head: its name and labels, the component's pods it selects, and both policy types, so
that whatever its rules do not allow is denied (no ingress rule: nothing gets in). Args: root, component, name.
*/}}
{{- define "atlas.networkPolicy.head" -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ .name }}
  namespace: {{ .root.Release.Namespace | quote }}
  labels:
    {{- include "atlas.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "atlas.selectorLabels" . | nindent 6 }}
  policyTypes:
    - Ingress
    - Egress
{{- end -}}

{{/*
A peer: the Prometheus pods that scrape the ServiceMonitors' ports (metrics.serviceMonitor.networkPolicy:
the namespaces and the pods, both must match; {} as namespaceSelector is every namespace). Args: root.
*/}}
{{- define "atlas.networkPolicy.prometheusPeer" -}}
{{- $np := .root.Values.metrics.serviceMonitor.networkPolicy -}}
- namespaceSelector:
    {{- with $np.namespaceSelector }}
    matchLabels:
      {{- toYaml . | nindent 6 }}
    {{- else }} {}
    {{- end }}
  podSelector:
    {{- with $np.podSelector }}
    matchLabels:
      {{- toYaml . | nindent 6 }}
    {{- else }} {}
    {{- end }}
{{- end -}}
