{{/*
Pieces of the batch-score workloads (batch-job.yaml, batch-rayjob.yaml): the command line, the
environment, the mounts and the pod-level fields, the same restricted security as every Berth
pod and no service links (a batch pod talks to nothing it would find in them).
*/}}

{{- define "berth.batchArgs" -}}
{{- $b := .Values.batch -}}
- batch-score
- --engine
- {{ $b.engine }}
- --entities
- {{ $b.entities | quote }}
- --output
- {{ $b.output | quote }}
- --artifact
- {{ $b.artifact | quote }}
- --repo
- /app/feature_repo
- --chunk-rows
- {{ $b.chunkRows | quote }}
- --batch-rows
- {{ $b.batchRows | quote }}
- --workers
- {{ $b.workers | quote }}
{{- with $b.featureService }}
- --feature-service
- {{ . }}
{{- end }}
{{- end }}

{{- define "berth.batchEnv" -}}
- name: FEAST_USAGE
  value: "False"
- name: HOME
  value: /tmp
- name: REDIS_CONNECTION_STRING
  value: localhost:6379
{{- with .Values.batch.mlflowTrackingUri }}
- name: MLFLOW_TRACKING_URI
  value: {{ . | quote }}
{{- end }}
{{- end }}

{{- define "berth.batchMounts" -}}
- name: data
  mountPath: /data
- name: feature-data
  mountPath: /app/feature_repo/data
{{- if .Values.batch.artifactsClaim }}
- name: artifacts
  mountPath: /artifacts
{{- end }}
- name: tmp
  mountPath: /tmp
{{- end }}

{{- define "berth.batchVolumes" -}}
{{- $b := .Values.batch -}}
- name: data
  persistentVolumeClaim:
    claimName: {{ required "batch.dataClaim is required" $b.dataClaim }}
- name: feature-data
  persistentVolumeClaim:
    claimName: {{ required "batch.featureDataClaim is required" $b.featureDataClaim }}
{{- with $b.artifactsClaim }}
- name: artifacts
  persistentVolumeClaim:
    claimName: {{ . }}
{{- end }}
- name: tmp
  emptyDir:
    sizeLimit: 2Gi
{{- end }}

{{- define "berth.batchPodFields" -}}
serviceAccountName: {{ include "berth.serviceAccountName" . }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountToken }}
enableServiceLinks: false
securityContext:
  {{- include "berth.podSecurityContext" . | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}


{{/* berth.rayPodTemplate: a Ray head or worker pod (dict "ctx" . "name" NAME "image" IMAGE). */}}
{{- define "berth.rayPodTemplate" -}}
{{- $ctx := .ctx }}
metadata:
  labels:
    {{- include "berth.componentLabels" (dict "ctx" $ctx "component" "batch") | nindent 4 }}
spec:
  {{- include "berth.batchPodFields" $ctx | nindent 2 }}
  containers:
    - name: {{ .name }}
      image: {{ .image }}
      imagePullPolicy: {{ $ctx.Values.batch.image.pullPolicy }}
      env:
        {{- include "berth.batchEnv" $ctx | nindent 8 }}
      resources:
        {{- toYaml $ctx.Values.batch.resources | nindent 8 }}
      securityContext:
        {{- include "berth.containerSecurityContext" $ctx | nindent 8 }}
      volumeMounts:
        {{- include "berth.batchMounts" $ctx | nindent 8 }}
        - name: dshm
          mountPath: /dev/shm
  volumes:
    {{- include "berth.batchVolumes" $ctx | nindent 4 }}
    - name: dshm
      emptyDir:
        medium: Memory
        sizeLimit: 1Gi
{{- end }}
