{{/*
berth.netpolDnsEgress: egress rule to cluster DNS (networkPolicy.dnsPeers, port 53).
*/}}
{{- define "berth.netpolDnsEgress" -}}
- to:
    {{- toYaml .Values.networkPolicy.dnsPeers | nindent 4 }}
  ports:
    - {port: 53, protocol: UDP}
    - {port: 53, protocol: TCP}
{{- end }}

{{/*
berth.netpolRedisEgress: egress rule to Redis: the in-cluster one (redis.deploy) or
networkPolicy.redisPeers on redisPorts (no peers: any destination on those ports).
*/}}
{{- define "berth.netpolRedisEgress" -}}
{{- if .Values.redis.deploy -}}
- to:
    - podSelector:
        matchLabels:
          {{- include "berth.componentSelector" (dict "ctx" . "component" "redis") | nindent 10 }}
  ports:
    - {port: 6379, protocol: TCP}
{{- else -}}
- ports:
    {{- range .Values.networkPolicy.redisPorts }}
    - {port: {{ . }}, protocol: TCP}
    {{- end }}
  {{- with .Values.networkPolicy.redisPeers }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end }}

{{/*
berth.netpolStorageEgress: egress rule to object storage and the Feast registry
(networkPolicy.storagePeers on storagePorts; no peers: any destination on those ports).
*/}}
{{- define "berth.netpolStorageEgress" -}}
- ports:
    {{- range .Values.networkPolicy.storagePorts }}
    - {port: {{ . }}, protocol: TCP}
    {{- end }}
  {{- with .Values.networkPolicy.storagePeers }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/*
berth.netpolPrometheusIngress: ingress rule letting networkPolicy.prometheusPeers scrape
/metrics on port 8080.
*/}}
{{- define "berth.netpolPrometheusIngress" -}}
- from:
    {{- toYaml .Values.networkPolicy.prometheusPeers | nindent 4 }}
  ports:
    - {port: 8080, protocol: TCP}
{{- end }}
