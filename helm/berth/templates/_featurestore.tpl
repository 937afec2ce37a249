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

{{/*
berth.feastPod: the pod spec of a Feast CLI run with the transformer image (the materialization
CronJob, the apply hook): Feast's config from the ConfigMap, secrets read from files and
exported for Feast's ${VAR} expansion. The image's repo (definitions, demo offline parquet
files, the registry `feast apply` wrote at image build) is read-only: without
materialization.dataClaim it is copied to /tmp and Feast runs there, so a file registry can be
written (materialization intervals); with it, the claim is mounted at the repo's data/ folder
(offline files and a file registry that persist). Call with (dict "ctx" $ "container" "name"
"command" "<feast subcommand and arguments>").
*/}}
{{- define "berth.feastPod" -}}
{{- $ := .ctx }}
{{- $m := $.Values.materialization -}}
restartPolicy: Never
serviceAccountName: {{ include "berth.serviceAccountName" $ }}
automountServiceAccountToken: {{ $.Values.serviceAccount.automountToken }}
enableServiceLinks: false
securityContext:
  {{- include "berth.podSecurityContext" $ | nindent 2 }}
{{- with $.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
containers:
  - name: {{ .container }}
    image: {{ include "berth.image" (dict "ctx" $ "image" $.Values.transformer.image) }}
    imagePullPolicy: {{ $.Values.transformer.image.pullPolicy }}
    command: ["/bin/sh", "-ec"]
    args:
      - |
        {{- if $.Values.redis.deploy }}
        export REDIS_CONNECTION_STRING={{ include "berth.redisAddress" $ }}
        {{- else }}
        REDIS_CONNECTION_STRING="$(cat /var/run/secrets/berth/redis/{{ $.Values.featureStore.redis.secretKey }})"
        export REDIS_CONNECTION_STRING
        {{- end }}
        {{- if $.Values.featureStore.registry.pathSecret.name }}
        FEAST_REGISTRY_PATH="$(cat /var/run/secrets/berth/registry/{{ $.Values.featureStore.registry.pathSecret.key }})"
        export FEAST_REGISTRY_PATH
        {{- end }}
        {{- if $m.dataClaim }}
        repo=/app/feature_repo
        {{- else }}
        cp -R /app/feature_repo /tmp/feature_repo
        repo=/tmp/feature_repo
        {{- end }}
        exec feast -c "$repo" -f /etc/berth/feast/feature_store.yaml {{ .command }}
    env:
      - name: FEAST_USAGE
        value: "False"
      - name: HOME
        value: /tmp
    resources:
      {{- toYaml $m.resources | nindent 6 }}
    securityContext:
      {{- include "berth.containerSecurityContext" $ | nindent 6 }}
    volumeMounts:
      - name: feature-store
        mountPath: /etc/berth/feast
        readOnly: true
      {{- if not $.Values.redis.deploy }}
      - name: redis
        mountPath: /var/run/secrets/berth/redis
        readOnly: true
      {{- end }}
      {{- if $.Values.featureStore.registry.pathSecret.name }}
      - name: registry
        mountPath: /var/run/secrets/berth/registry
        readOnly: true
      {{- end }}
      {{- if $m.dataClaim }}
      - name: data
        mountPath: /app/feature_repo/data
      {{- end }}
      - name: tmp
        mountPath: /tmp
volumes:
  - name: feature-store
    configMap:
      name: {{ include "berth.fullname" $ }}-feature-store
  {{- if not $.Values.redis.deploy }}
  - name: redis
    secret:
      secretName: {{ include "berth.redisSecretName" $ }}
      items:
        - key: {{ $.Values.featureStore.redis.secretKey }}
          path: {{ $.Values.featureStore.redis.secretKey }}
  {{- end }}
  {{- with $.Values.featureStore.registry.pathSecret }}
  {{- if .name }}
  - name: registry
    secret:
      secretName: {{ .name }}
      items:
        - key: {{ .key }}
          path: {{ .key }}
  {{- end }}
  {{- end }}
  {{- with $m.dataClaim }}
  - name: data
    persistentVolumeClaim:
      claimName: {{ . }}
  {{- end }}
  - name: tmp
    emptyDir:
      sizeLimit: {{ $.Values.tmpSizeLimit }}
{{- end }}
