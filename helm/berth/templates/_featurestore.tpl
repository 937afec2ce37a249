{{/*
berth.featureStoreYaml: Feast's feature_store.yaml for the cluster, mounted from the ConfigMap
and named by BERTH_TRANSFORMER_FEATURE_STORE_YAML. Feast expands ${VAR} when it loads it: the
Redis connection string (and a secret registry URL) come from Secret-backed env vars, never
from this file.
*/}}
{{- define "berth.featureStoreYaml" -}}
{{- $fs := .Values.featureStore -}}
# Berth's Feast config in the cluster (rendered by the berth Helm chart).
# project: the Feast project the definitions in /app/feature_repo belong to.
project: {{ $fs.project }}
# registry: the applied definitions. A relative path is inside the Feast repo (the image's
# data/registry.db, written by `feast apply` at image build); production uses a shared one.
registry:
  registry_type: {{ $fs.registry.type }}
  {{- if $fs.registry.pathSecret.name }}
  path: ${FEAST_REGISTRY_PATH}
  {{- else }}
  path: {{ $fs.registry.path }}
  {{- end }}
  cache_ttl_seconds: {{ $fs.registry.cacheTtlSeconds }}
# provider: "local" runs materialization inside the CronJob's pod.
provider: local
# offline_store: parquet files under the repo's data/ (the materialization job's data volume).
offline_store:
  type: file
# online_store: Redis; REDIS_CONNECTION_STRING comes from {{ if .Values.redis.deploy }}the development Redis{{ else }}Secret {{ include "berth.redisSecretName" . }}{{ end }}.
online_store:
  type: redis
  redis_type: {{ $fs.redis.type }}
  connection_string: ${REDIS_CONNECTION_STRING}
# entity_key_serialization_version: the key layout of Feast's online stores.
entity_key_serialization_version: {{ $fs.entityKeySerializationVersion }}
{{- end }}

{{/*
berth.feastEnv: environment every Feast process of the release needs: the Redis connection
string (and registry URL) from Secrets, no usage telemetry.
*/}}
{{- define "berth.feastEnv" -}}
{{- if .Values.redis.deploy -}}
- name: REDIS_CONNECTION_STRING
  value: {{ include "berth.redisAddress" . }}
{{- else -}}
- name: REDIS_CONNECTION_STRING
  valueFrom:
    secretKeyRef:
      name: {{ include "berth.redisSecretName" . }}
      key: {{ .Values.featureStore.redis.secretKey }}
{{- end }}
{{- with .Values.featureStore.registry.pathSecret }}
{{- if .name }}
- name: FEAST_REGISTRY_PATH
  valueFrom:
    secretKeyRef:
      name: {{ .name }}
      key: {{ .key }}
{{- end }}
{{- end }}
- name: FEAST_USAGE
  value: "False"
{{- end }}
