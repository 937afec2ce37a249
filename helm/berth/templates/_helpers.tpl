{{/*
berth.name: the chart name (or .Values.nameOverride), cut to 63 characters because some
Kubernetes name fields are limited to that (DNS-1123 label).
*/}}
{{- define "berth.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
berth.fullname: the prefix of every resource name the release owns: .Values.fullnameOverride,
else the release name when it already contains the chart name, else "<release>-<chart>"; cut
to 63 characters. The InferenceService keeps its own name (inferenceService.name): it is the
model name clients call.
*/}}
{{- define "berth.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
berth.chart: "<chart>-<version>" for the helm.sh/chart label.
*/}}
{{- define "berth.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
berth.selectorLabels: the labels that select this release's pods. They never change over the
release's life (selectors are immutable), so they hold no version.
*/}}
{{- define "berth.selectorLabels" -}}
app.kubernetes.io/name: {{ include "berth.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
berth.labels: the common labels of every object: selector labels plus chart, version and
manager.
*/}}
{{- define "berth.labels" -}}
helm.sh/chart: {{ include "berth.chart" . }}
{{ include "berth.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: berth
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
berth.componentSelector: selector labels of one component's pods. Call with
(dict "ctx" $ "component" "transformer") and optionally "variant" (primary, canary, shadow)
for predictors.
*/}}
{{- define "berth.componentSelector" -}}
{{ include "berth.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- with .variant }}
berth.io/variant: {{ . }}
{{- end }}
{{- end }}

{{/*
berth.componentLabels: common labels plus the component (and variant) labels.
*/}}
{{- define "berth.componentLabels" -}}
{{ include "berth.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- with .variant }}
berth.io/variant: {{ . }}
{{- end }}
{{- end }}

{{/*
berth.serviceAccountName: the ServiceAccount every pod runs as.
*/}}
{{- define "berth.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "berth.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
berth.image: "<repository>:<tag>[@<digest>]" of an image block {repository, tag, digest}; the
tag defaults to the chart's appVersion.
*/}}
{{- define "berth.image" -}}
{{- $tag := default .ctx.Chart.AppVersion .image.tag }}
{{- if .image.digest }}
{{- printf "%s:%s@%s" .image.repository $tag .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository $tag }}
{{- end }}
{{- end }}

{{/*
berth.knative: "true" when the InferenceService runs in Knative (Serverless) mode.
*/}}
{{- define "berth.knative" -}}
{{- if eq .Values.inferenceService.deploymentMode "Knative" }}true{{ end }}
{{- end }}

{{/*
berth.scaleMetric: a component's scaleMetric, defaulting by mode (Knative: concurrency,
Standard: cpu), and refusing a metric the mode's autoscaler does not take (KServe's webhook
would). Call with (dict "ctx" $ "component" .Values.predictor "name" "predictor").
*/}}
{{- define "berth.scaleMetric" -}}
{{- $knative := include "berth.knative" .ctx }}
{{- $metric := .component.scaleMetric | default (ternary "concurrency" "cpu" (eq $knative "true")) }}
{{- if and $knative (has $metric (list "cpu" "memory")) }}
{{- fail (printf "%s.scaleMetric=%s needs deploymentMode Standard (HPA); Knative scales on concurrency or rps" .name $metric) }}
{{- end }}
{{- if and (not $knative) (has $metric (list "concurrency" "rps")) }}
{{- fail (printf "%s.scaleMetric=%s needs deploymentMode Knative; Standard (HPA) scales on cpu or memory" .name $metric) }}
{{- end }}
{{- $metric }}
{{- end }}

{{/*
berth.predictorHost: "HOST:PORT" of a predictor-only or main InferenceService's predictor, as
the transformer reaches it. Knative: the revision's route on port 80 (h2c or HTTP/1). Standard:
KServe's Service, port 8081 (h2c) for gRPC, 80 (-> 8080) for REST. Call with
(dict "ctx" $ "isvc" "<name>").
*/}}
{{- define "berth.predictorHost" -}}
{{- $port := 80 }}
{{- if and (not (include "berth.knative" .ctx)) (eq .ctx.Values.transformer.predictorProtocol "grpc-v2") }}
{{- $port = 8081 }}
{{- end }}
{{- printf "%s-predictor.%s.svc.cluster.local:%d" .isvc .ctx.Release.Namespace $port }}
{{- end }}

{{/*
berth.ports: a serving container's ports. Knative allows one port per container: the
transformer serves HTTP/1 (REST) on 8080; the predictor serves what the transformer calls, gRPC
(h2c 8081) or REST (http1 8080), and its other port stays reachable inside the pod (probes,
metrics). Standard mode declares both; KServe maps the first to Service port 80 and keeps 8081
as is (appProtocol h2c). Call with (dict "ctx" $ "predictor" bool).
*/}}
{{- define "berth.ports" -}}
{{- $grpc := and .predictor (eq .ctx.Values.transformer.predictorProtocol "grpc-v2") -}}
{{- if and (include "berth.knative" .ctx) $grpc -}}
- name: h2c
  containerPort: 8081
  protocol: TCP
{{- else if include "berth.knative" .ctx -}}
- name: http1
  containerPort: 8080
  protocol: TCP
{{- else -}}
- name: http1
  containerPort: 8080
  protocol: TCP
- name: h2c
  containerPort: 8081
  protocol: TCP
{{- end }}
{{- end }}

{{/*
berth.podMetricsEndpoint: a PodMonitor endpoint scraping the model container's /metrics on its
REST port 8080, one target per pod, in either mode. The Prometheus Operator selects targets by
container port name; Knative replaces a container's ports with one "user-port" (the h2c port
8081 on the gRPC hop; knative/serving pkg/reconciler/revision/resources/deploy.go), Standard
keeps "http1". So the target kept is the model container's user-port or http1 port, and its
address is set to the pod's 8080.
*/}}
{{- define "berth.podMetricsEndpoint" -}}
- path: /metrics
  interval: {{ .Values.metrics.podMonitor.interval }}
  scrapeTimeout: {{ .Values.metrics.podMonitor.scrapeTimeout }}
  relabelings:
    - sourceLabels: [__meta_kubernetes_pod_container_name, __meta_kubernetes_pod_container_port_name]
      regex: kserve-container;(user-port|http1)
      action: keep
    - sourceLabels: [__meta_kubernetes_pod_ip]
      regex: (.+)
      targetLabel: __address__
      replacement: ${1}:8080
      action: replace
{{- end }}

{{/*
berth.grpcOnly: "true" when a predictor's one declared port is gRPC (Knative mode, gRPC hop).
Knative then rewrites its liveness probe to that port: the probe must speak gRPC or TCP.
*/}}
{{- define "berth.grpcOnly" -}}
{{- if and (include "berth.knative" .) (eq .Values.transformer.predictorProtocol "grpc-v2") }}true{{ end }}
{{- end }}

{{/*
berth.probes: startup, liveness and readiness probes, each on a port that speaks it. Startup and
readiness are KServe's V2 health endpoints on the REST port 8080 (kubelet runs the startup
probe as given; Knative's queue-proxy runs the readiness probe on the port it names). Liveness
is /v2/health/live too, except where Knative rewrites it to a gRPC-only port ("grpcOnly"):
there it is probes.grpcPortProbe, a tcpSocket probe or a Kubernetes grpc: probe
(grpc.health.v1). Call with (dict "probes" <component>.probes "grpcOnly" "true"|"").
*/}}
{{- define "berth.probes" -}}
{{- $p := .probes -}}
{{- if $p.startup.enabled -}}
startupProbe:
  httpGet:
    path: /v2/health/live
    port: 8080
  periodSeconds: {{ $p.startup.periodSeconds }}
  timeoutSeconds: {{ $p.startup.timeoutSeconds }}
  failureThreshold: {{ $p.startup.failureThreshold }}
{{ end -}}
livenessProbe:
  {{- if not .grpcOnly }}
  httpGet:
    path: /v2/health/live
    port: 8080
  {{- else if eq (default "tcpSocket" $p.grpcPortProbe) "grpc" }}
  grpc:
    port: 8081
  {{- else }}
  tcpSocket:
    port: 8081
  {{- end }}
  initialDelaySeconds: {{ $p.liveness.initialDelaySeconds }}
  periodSeconds: {{ $p.liveness.periodSeconds }}
  timeoutSeconds: {{ $p.liveness.timeoutSeconds }}
  failureThreshold: {{ $p.liveness.failureThreshold }}
readinessProbe:
  httpGet:
    path: /v2/health/ready
    port: 8080
  initialDelaySeconds: {{ $p.readiness.initialDelaySeconds }}
  periodSeconds: {{ $p.readiness.periodSeconds }}
  timeoutSeconds: {{ $p.readiness.timeoutSeconds }}
  failureThreshold: {{ $p.readiness.failureThreshold }}
{{- end }}

{{/*
berth.scaleTarget: a component's autoscaling target. Knative: scaleTarget (in-flight requests
or requests per second per pod). Standard: the HPA's target, cpuTargetPercent (percent of the
CPU request) for cpu, scaleTarget for memory. Call with (dict "ctx" $ "component" <values>
"name" "predictor").
*/}}
{{- define "berth.scaleTarget" -}}
{{- $metric := include "berth.scaleMetric" . }}
{{- if eq $metric "cpu" }}{{ .component.cpuTargetPercent }}{{ else }}{{ .component.scaleTarget }}{{ end }}
{{- end }}

{{/*
berth.componentPod: the pod-level fields of an InferenceService component (predictor,
transformer, the predictor-only variants): replicas and autoscaling, KServe's
containerConcurrency and timeout, pod annotations and labels, identity, scheduling. Call with
(dict "ctx" $ "component" <values> "name" "predictor" "variant" "primary" "minReplicas" 1
"maxReplicas" 2 "annotations" {...}).
*/}}
{{- define "berth.componentPod" -}}
{{- $ := .ctx }}
{{- $c := .component -}}
labels:
  {{- with $c.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  {{- include "berth.componentSelector" (dict "ctx" $ "component" .name "variant" .variant) | nindent 2 }}
{{- $annotations := merge (dict) (.annotations | default dict) ($c.podAnnotations | default dict) }}
{{- with $annotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
minReplicas: {{ .minReplicas }}
maxReplicas: {{ .maxReplicas }}
scaleMetric: {{ include "berth.scaleMetric" (dict "ctx" $ "component" $c "name" .name) }}
scaleTarget: {{ include "berth.scaleTarget" (dict "ctx" $ "component" $c "name" .name) }}
containerConcurrency: {{ $c.containerConcurrency }}
timeout: {{ $c.timeout }}
serviceAccountName: {{ include "berth.serviceAccountName" $ }}
{{- if not $.Values.serviceAccount.automountToken }}
{{- /* Knative accepts this field only when false. */}}
automountServiceAccountToken: false
{{- end }}
enableServiceLinks: false
{{- if not (include "berth.knative" $) }}
{{- /* Knative sets the grace period from the revision timeout and refuses this field. */}}
terminationGracePeriodSeconds: {{ $.Values.terminationGracePeriodSeconds }}
{{- end }}
{{- with $.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- range $field := list "nodeSelector" "tolerations" "affinity" "topologySpreadConstraints" }}
{{- with index $c $field }}
{{ $field }}:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- end }}

{{/*
berth.podSecurityContext: the pod-level security context of the Deployments, Jobs and Pods
(restricted profile). InferenceService components carry theirs per container: Knative only
accepts pod-level fields behind a feature flag.
*/}}
{{- define "berth.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.runAsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
berth.containerSecurityContext: the restricted container security context of every
container: non-root numeric user, no privilege escalation, no capabilities, RuntimeDefault
seccomp, read-only root filesystem (writable paths are emptyDir volumes).
*/}}
{{- define "berth.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
berth.shutdownGraceSeconds: how long a container drains on SIGTERM: the pod's
terminationGracePeriodSeconds less shutdownDelaySeconds and 5 s of margin.
*/}}
{{- define "berth.shutdownGraceSeconds" -}}
{{- $grace := sub (sub .Values.terminationGracePeriodSeconds .Values.shutdownDelaySeconds) 5 }}
{{- if lt (int $grace) 1 }}
{{- fail "terminationGracePeriodSeconds must exceed shutdownDelaySeconds + 5" }}
{{- end }}
{{- $grace }}
{{- end }}

{{/*
berth.redisAddress: Feast connection string of the in-cluster development Redis (redis.deploy):
no password, so no Secret.
*/}}
{{- define "berth.redisAddress" -}}
{{- printf "%s-redis.%s.svc.cluster.local:6379" (include "berth.fullname" .) .Release.Namespace }}
{{- end }}

{{/*
berth.redisSecretName: the existing Secret holding Feast's Redis connection string (key
featureStore.redis.secretKey), created outside the chart: no secret value is in git.
*/}}
{{- define "berth.redisSecretName" -}}
{{- required "featureStore.redis.secretName is required (a Secret with the Redis connection string)" .Values.featureStore.redis.secretName }}
{{- end }}

{{/*
berth.predictorComponent: the predictor spec of an InferenceService (primary, shadow,
transformer-level canary): one custom container running berth_predictor with
the artifact at storageUri (KServe's storage initializer copies it to /mnt/models). Call with
(dict "ctx" $ "storageUri" "s3://..." "variant" "primary" "minReplicas" 1 "maxReplicas" 2).
*/}}
{{- define "berth.predictorComponent" -}}
{{- $ := .ctx }}
{{- $p := $.Values.predictor -}}
{{ include "berth.componentPod" (dict "ctx" $ "component" $p "name" "predictor" "variant" .variant "minReplicas" .minReplicas "maxReplicas" .maxReplicas) }}
containers:
  - name: kserve-container
    image: {{ include "berth.image" (dict "ctx" $ "image" $p.image) }}
    imagePullPolicy: {{ $p.image.pullPolicy }}
    args:
      - --model_name
      - {{ $.Values.inferenceService.name }}
      - --model_dir
      - /mnt/models
      - --http_port
      - "8080"
      - --grpc_port
      - "8081"
    ports:
      {{- include "berth.ports" (dict "ctx" $ "predictor" true) | nindent 6 }}
    env:
      - name: STORAGE_URI
        value: {{ required "a predictor needs a storageUri (the Berth artifact)" .storageUri | quote }}
      - name: BERTH_PREDICTOR_INTRA_OP_THREADS
        value: {{ $p.intraOpThreads | quote }}
      - name: BERTH_PREDICTOR_GRAPH_OPTIMIZATION
        value: {{ $p.graphOptimization | quote }}
      - name: BERTH_PREDICTOR_BATCHING
        value: {{ $p.batching | quote }}
      - name: BERTH_PREDICTOR_MAX_BATCH_ROWS
        value: {{ $p.maxBatchRows | quote }}
      - name: BERTH_PREDICTOR_MAX_BATCH_WAIT_MS
        value: {{ $p.maxBatchWaitMs | quote }}
      - name: BERTH_PREDICTOR_INLINE_MAX_ROWS
        value: {{ $p.inlineMaxRows | quote }}
      - name: BERTH_PREDICTOR_MAX_REQUEST_ROWS
        value: {{ $p.maxRequestRows | quote }}
      - name: BERTH_PREDICTOR_MAX_INFLIGHT
        value: {{ $p.maxInflight | quote }}
      - name: BERTH_PREDICTOR_SHUTDOWN_GRACE_S
        value: {{ include "berth.shutdownGraceSeconds" $ | quote }}
      - name: BERTH_PREDICTOR_SHUTDOWN_DELAY_S
        value: {{ $.Values.shutdownDelaySeconds | quote }}
      - name: BERTH_PREDICTOR_LOG_LEVEL
        value: {{ $p.logLevel | quote }}
      {{- $sig := $.Values.modelSigning.publicKey }}
      {{- if $sig.enabled }}
      - name: BERTH_PREDICTOR_VERIFY_KEY
        value: /etc/berth/signing/{{ $sig.key }}
      {{- end }}
      {{- with $p.extraEnv }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    resources:
      {{- toYaml $p.resources | nindent 6 }}
    {{- include "berth.probes" (dict "probes" $p.probes "grpcOnly" (include "berth.grpcOnly" $)) | nindent 4 }}
    securityContext:
      {{- include "berth.containerSecurityContext" $ | nindent 6 }}
    volumeMounts:
      - name: tmp
        mountPath: /tmp
      {{- if $sig.enabled }}
      - name: signing-key
        mountPath: /etc/berth/signing
        readOnly: true
      {{- end }}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: {{ $.Values.tmpSizeLimit }}
  {{- if $sig.enabled }}
  - name: signing-key
    {{- if $sig.secretName }}
    secret:
      secretName: {{ $sig.secretName }}
    {{- else }}
    configMap:
      name: {{ required "modelSigning.publicKey: set secretName or configMapName" $sig.configMapName }}
    {{- end }}
      items:
        - key: {{ $sig.key }}
          path: {{ $sig.key }}
  {{- end }}
{{- end }}
