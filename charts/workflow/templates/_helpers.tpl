{{/*
Shared names, labels and values of the workflow chart. Every define is
prefixed with the chart name so it cannot clash with a parent chart's.
*/}}

{{/* workflow.name: the chart's name, or nameOverride. */}}
{{- define "workflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* workflow.fullname: the base name of every object (release-chart, or fullnameOverride). */}}
{{- define "workflow.fullname" -}}
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

{{/* workflow.chart: chart name and version, for the helm.sh/chart label. */}}
{{- define "workflow.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* workflow.labels: the recommended labels of every object; pass (dict "ctx" $ "component" "operator"). */}}
{{- define "workflow.labels" -}}
helm.sh/chart: {{ include "workflow.chart" .ctx }}
{{ include "workflow.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: workflow
{{- end }}

{{/* workflow.selectorLabels: the immutable subset of the labels, used in selectors. */}}
{{- define "workflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "workflow.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end }}

{{/* workflow.operatorName: name of the operator's Deployment, ServiceAccount and RBAC objects. */}}
{{- define "workflow.operatorName" -}}
{{- printf "%s-operator" (include "workflow.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* workflow.bucketsName: name of the buckets Deployment, Service and volume claim. */}}
{{- define "workflow.bucketsName" -}}
{{- printf "%s-buckets" (include "workflow.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* workflow.serviceAccountName: the ServiceAccount the operator runs as. */}}
{{- define "workflow.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "workflow.operatorName" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* workflow.image: the one image of the operator, buckets and Work pods. */}}
{{- define "workflow.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* workflow.tokenSecretName: the Secret holding the operator's and the Work pods' buckets tokens. */}}
{{- define "workflow.tokenSecretName" -}}
{{- default (printf "%s-tokens" (include "workflow.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{/*
workflow.watchedNamespaces: the namespaces the operator watches, comma-separated;
empty means every namespace (only with rbac.clusterWide). Namespaced mode with
no list watches the release namespace.
*/}}
{{- define "workflow.watchedNamespaces" -}}
{{- if .Values.operator.namespaces }}
{{- join "," (uniq .Values.operator.namespaces) }}
{{- else if not .Values.rbac.clusterWide }}
{{- .Release.Namespace }}
{{- end }}
{{- end }}

{{/* workflow.bucketsUrl: buckets as the operator reaches it. */}}
{{- define "workflow.bucketsUrl" -}}
{{- if .Values.operator.bucketsUrl }}
{{- .Values.operator.bucketsUrl }}
{{- else }}
{{- printf "http://%s.%s.svc:%d" (include "workflow.bucketsName" .) .Release.Namespace (int .Values.buckets.service.port) }}
{{- end }}
{{- end }}

{{/*
workflow.tokens: the generated buckets tokens as a dict {operator, works}:
kept from the Secret already in the cluster (so upgrades keep them), else new
random ones. Computed once per render and memoised, because the Secret and its
copies in the Work namespaces must carry the same values.
*/}}
{{- define "workflow.tokens" -}}
{{- if not (hasKey .Values.auth "generatedTokens") }}
{{- $tokens := dict "operator" (randAlphaNum 40) "works" (randAlphaNum 40) }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "workflow.tokenSecretName" .) }}
{{- if and $existing $existing.data }}
{{- if hasKey $existing.data "operator-token" }}
{{- $_ := set $tokens "operator" (index $existing.data "operator-token" | b64dec) }}
{{- end }}
{{- if hasKey $existing.data "works-token" }}
{{- $_ := set $tokens "works" (index $existing.data "works-token" | b64dec) }}
{{- end }}
{{- end }}
{{- $_ := set .Values.auth "generatedTokens" $tokens }}
{{- end }}
{{- toJson .Values.auth.generatedTokens }}
{{- end }}

{{/* workflow.podSecurityContext: the restricted pod security context of every pod. */}}
{{- define "workflow.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext }}
{{- end }}

{{/* workflow.securityContext: the restricted container security context of every container. */}}
{{- define "workflow.securityContext" -}}
{{- toYaml .Values.securityContext }}
{{- end }}

{{/* workflow.scheduling: nodeSelector, tolerations and affinity shared by every pod. */}}
{{- define "workflow.scheduling" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
workflow.rbacRules: what the operator does with the API, and nothing more.
The same rules go into each namespaced Role or into the one ClusterRole.
*/}}
{{- define "workflow.rbacRules" -}}
# Works: the operator lists and watches them, and patches its finalizer
# onto an unfinished Work (and off it once finished); delete is for
# spec.ttlSecondsAfterFinished.
- apiGroups: ["workflow.dev"]
  resources: ["works"]
  verbs: ["list", "watch", "patch", "delete"]
# The status of a Work: written by the Work's controller loop only.
- apiGroups: ["workflow.dev"]
  resources: ["works/status"]
  verbs: ["patch"]
# Jobs: one per attempt, created once (deterministic names; a name taken
# means adopt, never create twice), followed by a watch, deleted when a pod
# stays pending or the Work is deleted while running.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["create", "list", "watch", "delete"]
# Pods of those Jobs: followed (phase, exit code, termination message); never changed.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
# Secrets: one per attempt, holding the token minted for it (name <job>-token),
# written before its Job; replaced when a start is repeated after a crash.
# Never read: no get, list or watch.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["create", "update"]
# Events on Works: JobCreated, Succeeded, AttemptFailed, ...
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create"]
{{- end }}

{{/* workflow.admissionName: name of the admission policy, its binding and its params ConfigMap. */}}
{{- define "workflow.admissionName" -}}
{{- printf "%s-works" (include "workflow.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
workflow.checkNamespaces: fails the render when the operator would run Works in
its own namespace (it holds the operator's token and buckets' secrets) and
operator.runWorksInReleaseNamespace does not accept it. Watching every
namespace is allowed: then the admission policy refuses Works in the release
namespace, and without the policy the render fails too.
*/}}
{{- define "workflow.checkNamespaces" -}}
{{- if not .Values.operator.runWorksInReleaseNamespace }}
{{- $namespaces := include "workflow.watchedNamespaces" . }}
{{- if and $namespaces (has .Release.Namespace (splitList "," $namespaces)) }}
{{- fail (printf "the operator would run Works in its own namespace %q, where its token and buckets' secrets are: anyone allowed to create a Work there could read them. Set operator.namespaces to the namespaces where Works run (e.g. --set operator.namespaces='{team-a}'), or accept the risk with operator.runWorksInReleaseNamespace=true" .Release.Namespace) }}
{{- end }}
{{- if and (not $namespaces) (not .Values.admission.enabled) }}
{{- fail (printf "the operator watches every namespace, including its own %q, and admission.enabled=false leaves nothing to refuse Works there: enable admission, list operator.namespaces, or accept the risk with operator.runWorksInReleaseNamespace=true" .Release.Namespace) }}
{{- end }}
{{- end }}
{{- end }}
