{{/*
Helpers of the per-attempt Work tokens (workTokens): whether the operator
mints them, and the Secret holding the key that signs and checks them.
*/}}

{{/* workflow.mintTokens: "true" when the operator mints Work tokens (a key buckets also has). */}}
{{- define "workflow.mintTokens" -}}
{{- if and .Values.workTokens.mint (or .Values.buckets.enabled .Values.workTokens.signingKeySecret) -}}
true
{{- end }}
{{- end }}

{{/* workflow.signingKeySecretName: the Secret with key `signing-key` (generated or existing). */}}
{{- define "workflow.signingKeySecretName" -}}
{{- default (printf "%s-signing-key" (include "workflow.fullname" .)) .Values.workTokens.signingKeySecret }}
{{- end }}
